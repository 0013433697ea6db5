"""Parser behaviour on Scapy-built packets, checked against the E810 facts."""

from __future__ import annotations

import pytest
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop
from scapy.layers.l2 import GRE, Dot1AD, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Raw

from e810pipe.parser import STATUSES, Parser

IDS = {"MAC": 1, "MAC_IL": 4, "ETYPE_OL": 9, "EVLAN_O": 16, "VLAN_O": 17, "IPV4": 32}


@pytest.fixture(scope="module")
def os_parser() -> Parser:
    return Parser.load(["os-default"])


@pytest.fixture(scope="module")
def vx_parser() -> Parser:
    return Parser.load(["os-default"], vxlan_ports=[4789])


def tag(tpid: int, vid: int = 10) -> Dot1Q:
    return Dot1Q(vlan=vid) if tpid == 0x8100 else Dot1AD(vlan=vid)


def qinq(outer: int, inner: int | None) -> bytes:
    """Ether with one or two tags of the given TPIDs, then IPv4/UDP."""
    eth = Ether(dst="00:11:22:33:44:55", src="00:66:77:88:99:aa", type=outer)
    body = Dot1Q(vlan=5, type=inner if inner is not None else 0x0800)
    if inner is not None:
        body = body / Dot1Q(vlan=6, type=0x0800)
    return bytes(eth / body / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=2))


@pytest.mark.parametrize(
    "outer, inner, dvm, ptype, po_vlan",
    [
        (0x8100, None, False, 24, {(17, 14)}),
        (0x88A8, None, False, 24, {(16, 14)}),
        (0x9100, None, False, 1, {(16, 14)}),  # a lone 0x9100 tag stops the parse
        (0x88A8, 0x8100, False, 24, {(16, 14), (17, 18)}),
        (0x9100, 0x8100, False, 24, {(16, 14), (17, 18)}),
        (0x8100, 0x8100, False, 1, {(17, 14)}),  # any tag behind 0x8100 stops (SVM)
        (0x88A8, 0x88A8, False, 1, {(16, 14)}),
        (0x8100, None, True, 24, {(16, 14)}),  # DVM: the outer 0x8100 is EVLAN_O
        (0x8100, 0x8100, True, 24, {(16, 14), (17, 18)}),
        (0x8100, 0x88A8, True, 1, {(16, 14)}),
    ],
)
def test_vlan_modes(outer: int, inner: int | None, dvm: bool, ptype: int, po_vlan: set) -> None:
    res = Parser.load(["os-default"], dvm=dvm).parse(qinq(outer, inner))
    assert res.ptype == ptype
    assert {p for p in res.po if p[0] in (16, 17)} == po_vlan
    # ETYPE_OL points at the last EtherType/TPID field read
    assert res.offset_of(9) == 12 + 4 * len(po_vlan)


def test_vxlan_needs_a_registered_port(os_parser: Parser, vx_parser: Parser) -> None:
    inner = Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=5, dport=80)
    pkt = bytes(Ether() / IP() / UDP(sport=1234, dport=4789) / VXLAN(vni=42) / inner)
    plain = os_parser.parse(pkt)
    assert (plain.ptype, [h.name for h in plain.headers]) == (24, ["eth", "ipv4", "udp"])
    assert (53, 34) in plain.po
    tun = vx_parser.parse(pkt)
    assert tun.ptype == 63  # IPv4 / tunnel / MAC / IPv4 / TCP
    assert [h.name for h in tun.headers] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "tcp"]
    assert (52, 34) in tun.po and (53, 34) not in tun.po  # UDP_OF for the tunnel's UDP
    assert {(4, 50), (10, 62), (33, 64), (49, 84)} <= set(tun.po)
    assert "tunnel_vxlan" in tun.flags
    # a non-standard port works once registered, and 4789 then is plain UDP
    odd = bytes(Ether() / IP() / UDP(sport=1, dport=48879) / VXLAN(vni=1) / inner)
    assert Parser.load(["os-default"], vxlan_ports=[48879]).parse(odd).ptype == 63
    assert Parser.load(["os-default"], vxlan_ports=[48879]).parse(pkt).ptype == 24


@pytest.mark.parametrize("labels", [1, 2, 5, 20, 21])
def test_mpls_stacks_of_any_depth(os_parser: Parser, labels: int) -> None:
    stack = Ether(type=0x8847)
    for i in range(labels):
        stack = stack / MPLS(label=100 + i, s=1 if i == labels - 1 else 0, ttl=64)
    v4 = os_parser.parse(bytes(stack / IP() / ICMP()))
    assert v4.ptype == 28
    assert v4.offset_of(32) == 14 + 4 * labels
    assert [h.name for h in v4.headers].count("mpls") == labels
    v6 = os_parser.parse(bytes(stack / IPv6() / UDP()))
    assert v6.ptype == 90 and v6.offset_of(40) == 14 + 4 * labels
    # a payload that is neither IPv4 nor IPv6 has no parse-graph entry
    other = os_parser.parse(bytes(stack / Raw(b"\x00\x00\x00\x00" + b"x" * 30)))
    assert (other.ptype, other.status) == (1, "no_match")


def test_mpls_multicast_ethertype_is_not_parsed(os_parser: Parser) -> None:
    res = os_parser.parse(bytes(Ether(type=0x8848) / MPLS(s=1) / IP() / UDP()))
    assert (res.ptype, res.status, res.po) == (1, "unknown_next", ((1, 0), (9, 12)))


@pytest.mark.parametrize(
    "flags, gre_len",
    [
        ({}, 4),
        ({"chksum_present": 1}, 8),
        ({"key_present": 1}, 8),
        ({"seqnum_present": 1}, 8),
        ({"chksum_present": 1, "key_present": 1, "seqnum_present": 1}, 16),
    ],
)
def test_gre_optional_words(os_parser: Parser, flags: dict, gre_len: int) -> None:
    pkt = Ether() / IP() / GRE(proto=0x0800, **flags) / IP() / UDP()
    res = os_parser.parse(bytes(pkt))
    assert res.ptype == 46  # IPv4 / GRE / IPv4 / UDP
    assert res.offset_of(64) == 34
    assert res.offset_of(33) == 34 + gre_len
    assert res.offset_of(53) == 34 + gre_len + 20


def test_nvgre_inner_ethernet(os_parser: Parser) -> None:
    inner = Ether() / IPv6() / UDP()
    pkt = Ether() / IP() / GRE(proto=0x6558, key_present=1, key=0x123401) / inner
    res = os_parser.parse(bytes(pkt))
    assert res.ptype == 68  # IPv4 / tunnel / MAC / IPv6 / UDP
    assert {(4, 42), (10, 54), (41, 56), (53, 96)} <= set(res.po)


def test_only_one_tunnel_level(os_parser: Parser) -> None:
    pkt = Ether() / IP() / GRE() / IP() / GRE() / IP() / UDP()
    res = os_parser.parse(bytes(pkt))
    assert res.ptype == 45 and res.status == "unknown_next"
    assert [h.name for h in res.headers] == ["eth", "ipv4", "gre", "ipv4"]


def test_fragments(os_parser: Parser) -> None:
    first = os_parser.parse(bytes(Ether() / IP(flags="MF") / UDP() / Raw(b"x" * 20)))
    later = os_parser.parse(bytes(Ether() / IP(frag=100) / Raw(b"x" * 20)))
    assert first.ptype == later.ptype == 22
    assert first.offset_of(53) is None and "fragment" in first.flags
    v6 = os_parser.parse(bytes(Ether() / IPv6() / IPv6ExtHdrFragment() / UDP()))
    assert v6.ptype == 88 and v6.offset_of(47) == 54 and v6.offset_of(53) is None
    hbh = os_parser.parse(bytes(Ether() / IPv6() / IPv6ExtHdrHopByHop() / TCP()))
    assert hbh.ptype == 92 and hbh.offset_of(49) == 62


def test_window_stops_reading_at_504_bytes(os_parser: Parser) -> None:
    # An MPLS stack that ends past byte 504: the labels past the window read as zero
    # (bottom-of-stack 0), so the parse runs on to the packet's end.
    stack = Ether(type=0x8847)
    for i in range(130):
        stack = stack / MPLS(label=i, s=1 if i == 129 else 0)
    pkt = bytes(stack / IP() / UDP() / Raw(b"p" * 40))
    res = os_parser.parse(pkt)
    assert res.ptype == 1 and "window" in res.flags and res.status == "window"
    # the same stack, ending inside the window, is parsed to its IPv4/UDP payload
    short = Ether(type=0x8847)
    for i in range(100):
        short = short / MPLS(label=i, s=1 if i == 99 else 0)
    ok = os_parser.parse(bytes(short / IP() / UDP()))
    assert ok.ptype == 24 and ok.offset_of(32) == 414 and "window" not in ok.flags
    # a smaller window cuts it short
    assert Parser.load(["os-default"], window=128).parse(bytes(short / IP() / UDP())).ptype == 1


def test_bytes_past_the_window_never_matter(os_parser: Parser) -> None:
    base = bytes(Ether() / IPv6() / UDP() / Raw(bytes(range(256)) * 3))
    for tail in (b"\x00" * 400, b"\xff" * 400, bytes(range(200)) + b"\x11" * 200):
        other = base[:504] + tail[: len(base) - 504]
        assert len(other) == len(base)
        assert os_parser.parse(other) == os_parser.parse(base)


def test_every_truncation_gives_a_defined_result(vx_parser: Parser) -> None:
    inner = Ether() / Dot1Q(vlan=3) / IP() / TCP(options=[("MSS", 1460)])
    pkt = bytes(Ether() / IP() / UDP(dport=4789) / VXLAN() / inner)
    for cut in range(len(pkt) + 1):
        res = vx_parser.parse(pkt[:cut])
        assert res.status in STATUSES
        assert res.depth <= cut
        assert all(off <= max(cut, 14) + 64 for _, off in res.po)
        if cut < len(pkt) - 20:  # cut inside the headers
            assert res.status != "ok" or "truncated" in res.flags


def test_results_are_frozen_and_cached_consistently(vx_parser: Parser) -> None:
    pkt = bytes(Ether() / IP() / UDP(dport=4789) / VXLAN() / Ether() / IP() / UDP())
    res = vx_parser.parse(pkt)
    with pytest.raises(AttributeError):
        res.ptype = 1  # type: ignore[misc]
    fresh = Parser.load(["os-default"], vxlan_ports=[4789]).parse(pkt)
    assert fresh == res == vx_parser.parse(pkt)


def test_comms_only_protocols() -> None:
    from scapy.contrib.gtp import GTP_U_Header

    pkt = bytes(Ether() / IP() / UDP(sport=2152, dport=2152) / GTP_U_Header(teid=7) / IP() / TCP())
    comms = Parser.load(["comms"]).parse(pkt)
    assert comms.ptype == 334 and (52, 34) in comms.po and (33, 50) in comms.po
    assert Parser.load(["os-default"]).parse(pkt).ptype == 24


def test_a_header_starting_at_the_packet_end(os_parser: Parser) -> None:
    # After Ethernet (whose step looks ahead), a header that starts exactly where the
    # packet ends is still parsed, as Intel's model reports: IPv6 at 14 in 14 bytes.
    eth_only = bytes(Ether(type=0x86DD))
    res = os_parser.parse(eth_only)
    assert (res.ptype, res.offset_of(40)) == (89, 14)
    # After IPv4 it is not: UDP at 34 in a 34-byte packet is not reported.
    ip_only = bytes(Ether() / IP(proto=17))[:34]
    res = os_parser.parse(ip_only)
    assert (res.ptype, res.offset_of(53), res.status) == (23, None, "truncated")


def test_lookahead_is_declared_in_the_profile() -> None:
    from e810pipe.package import load_package

    pkg = load_package(["os-default"])
    assert {n for n, p in pkg.protocols.items() if p.lookahead} == {
        "eth",
        "vlan",
        "stag",
        "stag9100",
        "vlan_inner",
    }

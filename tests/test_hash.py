"""Tests for e810pipe.hash: hash-engine rules, profiles per flow type, port RSS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.sctp import SCTP
from test_rss import IPV4_VECTORS, IPV6_VECTORS

from e810pipe.cli import main
from e810pipe.console import Testpmd
from e810pipe.errors import RuleError
from e810pipe.hash import (
    H_IPV4,
    H_IPV_OTHER,
    H_UDP,
    field_names,
    parse_rule,
    seg_ptypes,
)
from e810pipe.pcapio import write_pcap
from e810pipe.testpmd import parse_command


def rule(text: str):  # noqa: ANN201 - FlowRule
    cmd = parse_command(f"flow create 0 ingress pattern {text}")
    return cmd.rule  # type: ignore[attr-defined]


def fields(text: str) -> list[str]:
    hr = parse_rule(rule(text))
    assert hr.cfg is not None
    return field_names(hr.cfg.hash_flds)


def test_types_refine_the_template() -> None:
    acts = "end actions rss types {} end key_len 0 queues end / end"
    udp = "eth / ipv4 / udp / " + acts
    # ice_refine_hash_cfg: the template's fields less what the types leave out; the
    # IPv4 protocol field of the L4 templates stays
    assert fields(udp.format("ipv4-udp")) == [
        "IPV4_PROT",
        "IPV4_SA",
        "IPV4_DA",
        "UDP_SRC_PORT",
        "UDP_DST_PORT",
    ]
    assert fields(udp.format("ipv4-udp l3-src-only")) == ["IPV4_PROT", "IPV4_SA"]
    assert fields(udp.format("ipv4-udp l3-dst-only l4-src-only")) == [
        "IPV4_PROT",
        "IPV4_DA",
        "UDP_SRC_PORT",
    ]
    assert fields(udp.format("eth l2-dst-only")) == ["ETH_DA", "IPV4_PROT"]
    assert fields(udp.format("l4-chksum")) == ["IPV4_PROT", "UDP_CHKSUM"]
    v6 = "eth / ipv6 / " + acts
    assert fields(v6.format("ipv6 l3-pre64 l3-src-only")) == ["IPV6_PRE64_SA"]
    assert fields(v6.format("ipv6 l3-pre48")) == ["IPV6_PRE48_SA", "IPV6_PRE48_DA"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("eth / ipv4 / end actions rss types eth l3-src-only end queues end / end", "type"),
        ("eth / ipv4 / udp / end actions rss types ipv4-tcp end queues end / end", "type"),
        ("eth / ipv4 / udp / end actions rss types udp end queues end / end", "type"),
        (
            "eth / ipv4 / end actions rss func symmetric_toeplitz types ipv4 l3-src-only end / end",
            "type",
        ),
        ("eth / ipv4 / end actions rss func simple_xor types ipv4 end / end", "XOR"),
        ("eth / ipv4 / end actions rss types ipv4 end queues 1 2 end / end", "queue"),
        ("eth / ipv4 / end actions rss types ipv4 end key_len 40 / end", "key_len"),
        ("eth / ipv4 / end actions rss level 1 types ipv4 end / end", "level"),
        ("eth / ipv4 / udp / vxlan / end actions rss types ipv4 end / end", "pattern"),
        ("eth / ipv4 / end actions rss types ipv4 end / mark / end", "action"),
    ],
)
def test_what_the_hash_engine_refuses(text: str, why: str) -> None:
    with pytest.raises(RuleError) as exc:
        parse_rule(rule(text))
    assert why.lower() in exc.value.message.lower()


def test_profile_ptypes_follow_the_segment_headers() -> None:
    # IPv4 with IPV_OTHER covers IPv4 packets with any L4 but not fragments or PPPoE
    v4, _ = seg_ptypes((H_IPV4 | H_IPV_OTHER,))
    assert {23, 24, 26, 27, 28} <= v4 and 22 not in v4 and 304 not in v4
    udp, _ = seg_ptypes((H_IPV4 | H_IPV_OTHER | H_UDP,))
    assert 24 in udp and 26 not in udp


def session(*rules: str, rss: str = "none") -> Testpmd:
    tp = Testpmd(["-a", "0000:18:00.0", "--", "-i", "--rxq=64", "--txq=64"])
    tp.execute(f"port config all rss {rss}")
    for r in rules:
        out = tp.execute(f"flow create 0 ingress pattern {r}")
        assert "created" in out, out
    return tp


def decide(tp: Testpmd, pkt) -> tuple[int | None, int]:  # noqa: ANN001
    dec = tp.pipe.process(bytes(pkt), 0)
    return (dec.rss_hash if dec.hashed else None), dec.vsi_queue or 0


UDP_RULE = (
    "eth / ipv4 / udp / end actions rss types ipv4-udp l3-src-only end key_len 0 queues end / end"
)


def test_a_rule_hashes_its_flow_type_only() -> None:
    tp = session(UDP_RULE)
    base = Ether() / IP(src="192.168.0.2", dst="192.168.0.1") / UDP(sport=22, dport=23)
    h, q = decide(tp, base)
    assert h is not None and q == h % 64  # LUT[hash & 511] of a 64-queue PF
    other_src = Ether() / IP(src="192.168.1.2", dst="192.168.0.1") / UDP(sport=22, dport=23)
    same_src = Ether() / IP(src="192.168.0.2", dst="192.168.1.1") / UDP(sport=32, dport=33)
    assert decide(tp, other_src)[0] != h
    assert decide(tp, same_src)[0] == h
    # another flow type: no profile, no hash, queue 0
    tcp = Ether() / IP(src="192.168.0.2", dst="192.168.0.1") / TCP()
    assert decide(tp, tcp) == (None, 0)
    out = tp.execute("flow destroy 0 rule 0")
    assert out == "Flow rule #0 destroyed\n"
    assert decide(tp, base) == (None, 0)


def test_the_newest_profile_of_a_ptype_hashes_it() -> None:
    l4 = (
        "eth / ipv4 / udp / end actions rss types ipv4-udp l4-src-only end key_len 0 "
        "queues end / end"
    )
    l3 = "eth / ipv4 / end actions rss types ipv4 l3-src-only end key_len 0 queues end / end"
    tp = session(l4, l3, rss="all")
    pkt = Ether() / IP(src="192.168.0.3", dst="192.168.0.5") / UDP(sport=23, dport=45)
    h = decide(tp, pkt)[0]
    # the IPv4 profile (newest) covers UDP PTYPEs too: the source address only
    moved = Ether() / IP(src="192.168.0.3", dst="192.168.0.8") / UDP(sport=25, dport=99)
    assert decide(tp, moved)[0] == h
    tp.execute("flow destroy 0 rule 1")
    # back to the UDP rule's profile: the source port
    assert decide(tp, moved)[0] != decide(tp, pkt)[0]


def test_symmetric_toeplitz_hashes_both_directions_alike() -> None:
    sym = (
        "eth / ipv4 / tcp / end actions rss func symmetric_toeplitz types ipv4-tcp end "
        "key_len 0 queues end / end"
    )
    tp = session(sym)
    a = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=10, dport=20)
    b = Ether() / IP(src="2.2.2.2", dst="1.1.1.1") / TCP(sport=20, dport=10)
    assert decide(tp, a)[0] == decide(tp, b)[0] is not None


def test_simple_xor_on_the_empty_pattern_until_destroyed() -> None:
    tp = session(rss="all")
    a = Ether() / IPv6(src="::1", dst="::2") / UDP(sport=5, dport=5)
    b = Ether() / IPv6(src="::2", dst="::1") / UDP(sport=5, dport=5)
    assert decide(tp, a)[0] != decide(tp, b)[0]
    out = tp.execute(
        "flow create 0 ingress pattern end actions rss func simple_xor key_len 0 queues end / end"
    )
    assert out == "Flow rule #0 created\n"
    assert decide(tp, a)[0] == decide(tp, b)[0]
    tp.execute("flow destroy 0 rule 0")
    assert decide(tp, a)[0] != decide(tp, b)[0]


def test_a_refused_create_prints_the_pmd_error_line() -> None:
    tp = session()
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 / end actions rss types ipv6 end "
        "key_len 0 queues end / end"
    )
    assert out.startswith("ice_flow_create(): Failed to create flow\nport_flow_complain(): ")


def test_port_rss_as_ice_rss_hash_set_applies_it() -> None:
    tp = session(rss="ip")
    assert tp.execute("show port 0 rss-hash") == "RSS functions:\n  ipv4  ipv6\n"
    tcp = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=1, dport=2)
    moved = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=3, dport=4)
    # the IPv4 profile covers TCP packets too: addresses only
    assert decide(tp, tcp)[0] == decide(tp, moved)[0] is not None
    out = tp.execute("port config all rss all")
    assert out.startswith("Port 0 modified RSS hash function based on hardware support,")
    assert decide(tp, tcp)[0] != decide(tp, moved)[0]
    assert tp.execute("show port 0 rss-hash") == (
        "RSS functions:\n  sctp  ipv4  ipv4-tcp  ipv4-udp  ipv4-sctp  ipv6  ipv6-tcp\n"
        "  ipv6-udp  ipv6-sctp\n"
    )
    sctp = Ether() / IP() / SCTP()
    assert decide(tp, sctp)[0] is not None
    tp.execute("port config all rss none")
    assert tp.execute("show port 0 rss-hash") == "RSS disabled\n"
    assert decide(tp, tcp) == (None, 0)


def test_port_rss_removes_rule_profiles() -> None:
    # ice_rss_hash_set starts with ice_rem_vsi_rss_cfg: every profile of the VSI goes
    tp = session(UDP_RULE)
    pkt = Ether() / IP() / UDP()
    assert decide(tp, pkt)[0] is not None
    tp.execute("port config all rss tcp")
    assert decide(tp, pkt) == (None, 0)


def _vectors(path: Path) -> list[tuple[int, int]]:
    pkts, want = [], []
    for dst, dport, src, sport, l3, l4 in IPV4_VECTORS:
        pkts.append(bytes(Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport)))
        want.append((l3, l4))
    for dst, dport, src, sport, l3, l4 in IPV6_VECTORS:
        pkts.append(bytes(Ether() / IPv6(src=src, dst=dst) / TCP(sport=sport, dport=dport)))
        want.append((l3, l4))
    write_pcap(path, pkts)
    return want


@pytest.mark.parametrize(("types", "column"), [("tcp", 1), ("ip", 0)])
def test_microsoft_vectors_through_run_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], types: str, column: int
) -> None:
    capture = tmp_path / "ms.pcap"
    want = _vectors(capture)
    key = "6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa"
    code = main(
        [
            "run",
            str(capture),
            "--json",
            # the key first: rss-hash-key also sets rss_hf to its one type
            "--cmd",
            f"port config 0 rss-hash-key ipv4-tcp {key}{key[:24]}",
            "--cmd",
            f"port config all rss {types}",
        ]
    )
    out, _ = capsys.readouterr()
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["rss_hash"] for r in rows] == [w[column] for w in want]


def test_a_pattern_the_package_has_no_ptype_for_is_refused() -> None:
    # ice_pattern_is_supported: PFCP PTYPEs come with the COMMS package only
    pfcp = (
        "flow validate 0 ingress pattern eth / ipv4 / udp / pfcp / end actions rss types pfcp "
        "end key_len 0 queues end / end"
    )
    base = ["-a", "0000:18:00.0", "--", "-i", "--rxq=16", "--txq=16"]
    assert "port_flow_complain()" in Testpmd(base).execute(pfcp)
    assert Testpmd([*base, "--profile", "comms"]).execute(pfcp) == "Flow rule validated\n"


def test_gtpu_rules_read_the_teid_and_the_inner_headers() -> None:
    from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer

    tp = Testpmd(["-a", "0000:18:00.0", "--", "-i", "--rxq=64", "--txq=64", "--profile", "comms"])
    tp.execute("port config all rss none")
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 / udp / gtpu / gtp_psc pdu_t is 1 / ipv4 / "
        "end actions rss types gtpu end key_len 0 queues end / end"
    )
    assert out == "Flow rule #0 created\n"

    def pkt(teid: int, pdu: int, src: str = "1.1.1.1"):  # noqa: ANN202
        return (
            Ether()
            / IP()
            / UDP(dport=2152)
            / GTP_U_Header(teid=teid)
            / GTPPDUSessionContainer(type=pdu)
            / IP(src=src)
        )

    up = decide(tp, pkt(1, 1))[0]
    assert up is not None
    assert decide(tp, pkt(1, 1, src="2.2.2.2"))[0] == up  # the TEID only
    assert decide(tp, pkt(2, 1))[0] != up
    # a downlink packet is no uplink profile's
    assert decide(tp, pkt(1, 0)) == (None, 0)


def test_a_raw_pattern_hashes_its_masked_words_on_its_ptype() -> None:
    # ice_hash_parse_raw_pattern: the sample's PTYPE and the words its mask selects
    tp = Testpmd(["-a", "0000:18:00.0", "--", "-i", "--rxq=16", "--txq=16", "--disable-rss"])
    sample = bytes(
        Ether(dst="00:11:22:33:44:55") / IP(src="192.168.0.20", dst="192.168.0.21") / UDP()
    )
    mask = bytearray(len(sample))
    mask[26:30] = b"\xff" * 4  # the IPv4 source address
    out = tp.execute(
        f"flow create 0 ingress pattern raw pattern spec {sample.hex()} pattern mask "
        f"{bytes(mask).hex()} / end actions rss queues end / end"
    )
    assert out == "Flow rule #0 created\n", out
    a = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1)
    h = decide(tp, a)[0]
    assert h is not None
    assert decide(tp, Ether() / IP(src="1.1.1.1", dst="3.3.3.3") / UDP(sport=9))[0] == h
    assert decide(tp, Ether() / IP(src="1.1.1.2", dst="2.2.2.2") / UDP(sport=1))[0] != h
    # another PTYPE (TCP) is no raw profile's
    assert decide(tp, Ether() / IP(src="1.1.1.1") / TCP()) == (None, 0)
    tp.execute("flow destroy 0 rule 0")
    assert decide(tp, a) == (None, 0)


def test_rss_hash_key_sets_the_key_and_its_type() -> None:
    # port_rss_hash_key_update: rss_hf is the command's one type (ice_rss_hash_set)
    tp = session(rss="all")
    key = bytes(range(52))
    assert tp.execute(f"port config 0 rss-hash-key ipv4-udp {key.hex()}") == ""
    assert tp.execute("show port 0 rss-hash key") == (
        f"RSS functions:\n  ipv4-udp\nRSS key:\n{key.hex().upper()}\n"
    )
    assert decide(tp, Ether() / IP() / TCP()) == (None, 0)
    assert decide(tp, Ether() / IP() / UDP())[0] is not None
    out = tp.execute(f"port config 0 rss-hash-key ipv4-udp {key[:40].hex()}")
    assert out == "key length: 80 invalid - key must be a string of 104 hexa-decimal numbers\n"


def test_rss_hash_key_before_dpdk_25_07_keeps_the_types() -> None:
    # testpmd before commit 24e94a4c86 read the port's configuration back over the
    # user's type, so only the key changed (the testpmd DTS's suites were written for)
    key = bytes(range(52))
    for option, tcp_hashed in (("--rss-key-keeps-types", True), (None, False)):
        argv = ["-a", "0000:18:00.0", "--", "-i", "--rxq=64", "--txq=64"]
        tp = Testpmd(argv + ([option] if option else []))
        tp.execute("port config all rss all")
        assert tp.execute(f"port config 0 rss-hash-key ipv4-udp {key.hex()}") == ""
        assert tp.execute("show port 0 rss-hash key").endswith(f"{key.hex().upper()}\n")
        assert (decide(tp, Ether() / IPv6() / TCP())[0] is not None) is tcp_hashed
        assert decide(tp, Ether() / IP() / UDP())[0] is not None


def test_gre_inner_patterns_are_a_vfs_only() -> None:
    from scapy.layers.inet import GRE

    gre = (
        "flow create {} ingress pattern eth / ipv4 / gre / ipv4 / udp / end actions rss "
        "types ipv4-udp l3-src-only end key_len 0 queues end / end"
    )
    pf = session()
    assert "port_flow_complain()" in pf.execute(gre.format(0))
    vf = Testpmd(["-a", "0000:18:01.0", "--", "-i", "--rxq=16", "--txq=16"])
    assert vf.execute(gre.format(0)) == "Flow rule #0 created\n"

    def pkt(src: str, dst: str):  # noqa: ANN202
        return Ether() / IP() / GRE() / IP(src=src, dst=dst) / UDP(sport=22, dport=23)

    mac = vf.pipe.device.vsi(vf.pipe.port_binding(0).vsi).mac
    base = Ether(dst=mac) / pkt("192.168.0.2", "192.168.0.1").payload
    h = vf.pipe.process(bytes(base), 0)
    assert h.hashed
    same = vf.pipe.process(bytes(Ether(dst=mac) / pkt("192.168.0.2", "192.168.1.1").payload), 0)
    other = vf.pipe.process(bytes(Ether(dst=mac) / pkt("192.168.1.2", "192.168.0.1").payload), 0)
    assert same.rss_hash == h.rss_hash != other.rss_hash


def test_reta_update_as_testpmd_prints_it() -> None:
    tp = session(rss="ip")
    assert tp.execute("port config 0 rss reta (0,5),(511,6)") == "The reta size of port 0 is 512\n"
    lut = tp.pipe.rss_for(tp.pipe.pf_vsi(0).number).luts[tp.pipe.pf_vsi(0).number]
    assert (lut[0], lut[511], lut[1]) == (5, 6, 1)
    assert tp.execute("port config 0 rss reta (512,1)") == (
        "The reta size of port 0 is 512\nInvalid RETA hash index=512\n"
        "Invalid RSS Redirection Table config entered\n"
    )
    assert tp.execute("port config 0 rss reta (3,64)").endswith(
        "Bad redirection table parameter, return code = -22\n"
    )
    # a hashed packet goes to LUT[hash & 511]
    pkt = Ether() / IP(src="9.9.9.9", dst="8.8.8.8")
    h, q = decide(tp, pkt)
    assert h is not None and q == lut[h & 511]


def test_a_dcf_port_has_no_hash_engine() -> None:
    # ice_dcf_init_parent_adapter: the DCF's adapter disables the hash engine
    tp = Testpmd(["-a", "0000:18:01.0,cap=dcf", "--", "-i"])
    out = tp.execute(
        "flow validate 0 ingress pattern eth / ipv4 / end actions rss types ipv4 end "
        "key_len 0 queues end / end"
    )
    assert out.startswith("port_flow_complain()")

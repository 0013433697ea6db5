"""IP fragment Flow Director rules as ice_fdir_parse_pattern() (ice_fdir_filter.c) and
iavf_fdir_parse_pattern() (iavf_fdir.c) read them, with the frames DTS sends: the two
fragments Scapy's fragment(p, fragsize=500) / fragment6(p, 500) make."""

from __future__ import annotations

from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from e810pipe.console import Testpmd

V4_FRAG = "eth / ipv4 fragment_offset spec 0x2000 fragment_offset mask 0x2000"
V6_FRAG = "eth / ipv6 / ipv6_frag_ext frag_data spec 0x0001 frag_data mask 0x0001"


def console(vf: bool = False) -> Testpmd:
    dev = "0000:18:01.0" if vf else "0000:18:00.0"
    argv = ["-a", dev, "--", "-i", "--rxq=16", "--txq=16"]
    if vf:
        argv += ["--vf", "mac=00:11:22:33:55:66,queues=16"]
    tp = Testpmd(argv)
    for cmd in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(cmd)
    return tp


def seen(tp: Testpmd, frames: list[Packet]) -> list[tuple[int, str | None]]:
    """(queue, FDIR mark) of each received frame."""
    out = tp.inject(0, [bytes(f) for f in frames])
    got = []
    for line in out.splitlines():
        if line.startswith("port "):
            queue = int(line.split("/queue ")[1].split(":")[0])
        elif line.startswith("  src="):
            mark = line.split("FDIR matched ID=")[1].split(" ")[0] if "FDIR" in line else None
            got.append((queue, mark))
    return got


def v4_fragments(src: str = "192.168.1.1") -> list[Packet]:
    pkt = Ether(dst="00:11:22:33:55:66") / IP(src=src, dst="192.168.1.2", id=47750)
    return list(fragment(pkt / Raw(b"X" * 666), fragsize=500))


def v6_fragments(src: str = "2001::1") -> list[Packet]:
    pkt = Ether(dst="00:11:22:33:55:66") / IPv6(src=src, dst="2001::2")
    return list(fragment6(pkt / IPv6ExtHdrFragment(id=47750) / Raw(b"X" * 1000), 500))


def test_an_ipv4_fragment_rule_catches_both_fragments() -> None:
    # FRAG_IPV4: the MF selector picks the flow type; every fragment has the FRAG PTYPE
    tp = console()
    out = tp.execute(
        f"flow create 0 ingress pattern {V4_FRAG} / end actions queue index 3 / mark id 7 / end"
    )
    assert out == "Flow rule #0 created\n", out
    frags = v4_fragments()
    assert len(frags) == 2 and frags[0][IP].flags == 1 and frags[1][IP].frag > 0
    assert seen(tp, frags) == [(3, "0x7"), (3, "0x7")]
    # a packet that is no fragment is not the rule's
    assert seen(tp, [Ether() / IP() / UDP()])[0][1] is None


def test_an_ipv6_fragment_rule_catches_both_fragments() -> None:
    tp = console()
    out = tp.execute(
        f"flow create 0 ingress pattern {V6_FRAG} / end actions queue index 2 / mark id 1 / end"
    )
    assert out == "Flow rule #0 created\n", out
    frags = v6_fragments()
    assert len(frags) >= 2
    assert seen(tp, frags) == [(2, "0x1")] * len(frags)
    assert seen(tp, [Ether() / IPv6() / UDP()])[0][1] is None


def test_fragment_rules_with_l3_fields() -> None:
    tp = console()
    rule = V4_FRAG.replace("ipv4 ", "ipv4 src is 192.168.1.1 ")
    # (with a mark, as DTS has it: a drop alone is the switch's, which ice's switch
    # takes without the fragment bits)
    out = tp.execute(f"flow create 0 ingress pattern {rule} / end actions drop / mark / end")
    assert out.endswith("created\n")
    assert seen(tp, v4_fragments()) == []  # both dropped
    assert len(seen(tp, v4_fragments(src="192.168.1.9"))) == 2
    rule6 = V6_FRAG.replace("ipv6 /", "ipv6 dst is 2001::2 /")
    assert tp.execute(
        f"flow create 0 ingress pattern {rule6} / end actions queue index 5 / mark / end"
    ).endswith("created\n")
    frags = v6_fragments()
    assert seen(tp, frags) == [(5, "0x0")] * len(frags)


def test_what_the_fragment_parsers_refuse() -> None:
    tp = console()
    # without the MF selector a full packet_id mask is an invalid IPv4 mask (FD), and the
    # switch has no IPv4 identification either (ice_switch_parse_pattern)
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 packet_id is 47750 / end "
        "actions queue index 1 / end"
    )
    assert "Invalid IPv4 mask." in out
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv6 / ipv6_frag_ext packet_id is 47750 / end "
        "actions queue index 1 / end"
    )
    assert "Invalid IPv6 mask." in out
    # DPDK main (since 25.03) takes an MF bit under a wider mask, with the fragment
    # offset in the input set (ICE_INSET_IPV4_FRAG_OFS); iavf still wants exactly 0x2000
    wide = (
        "flow create 0 ingress pattern eth / ipv4 packet_id is 47750 fragment_offset spec "
        "0x2000 fragment_offset mask 0xffff / end actions queue index 1 / end"
    )
    assert tp.execute(wide).endswith("created\n")
    assert "Invalid IPv4 mask." in console(vf=True).execute(wide)


def test_a_vf_fragment_rule_and_broadcast_frames() -> None:
    tp = console(vf=True)
    out = tp.execute(
        f"flow create 0 ingress pattern {V4_FRAG} / end actions queue index 4 / mark id 2 / end"
    )
    assert out == "Flow rule #0 created\n", out
    assert seen(tp, v4_fragments()) == [(4, "0x2"), (4, "0x2")]
    # the kernel PF gives a VF a broadcast MAC filter (ice_vf_rebuild_host_mac_cfg)
    assert len(seen(tp, [Ether() / IPv6() / IPv6ExtHdrFragment() / Raw(b"X" * 20)])) == 1


def test_the_switch_reads_no_fragment_bits() -> None:
    # a queue-only rule with an address is the switch's (ice_flow_process_filter), and
    # ice_switch_parse_pattern never reads fragment_offset: fragments and whole
    # packets from that address alike
    tp = Testpmd(["-a", "0000:18:00.0", "--", "-i", "--rxq=16", "--txq=16", "--log-level=ice,7"])
    for cmd in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(cmd)
    rule = V4_FRAG.replace("ipv4 ", "ipv4 src is 192.168.1.1 ")
    out = tp.execute(f"flow create 0 ingress pattern {rule} / end actions queue index 6 / end")
    assert out.startswith("ice_flow_create(): Succeeded to create (2) flow"), out
    whole = Ether(dst="00:11:22:33:55:66") / IP(src="192.168.1.1") / UDP()
    assert seen(tp, [*v4_fragments(), whole]) == [(6, None)] * 3

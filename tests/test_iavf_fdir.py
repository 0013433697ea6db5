"""Flow Director rules made through a VF port, as iavf_fdir_parse_pattern() and
iavf_fdir_parse_action_check() (drivers/net/intel/iavf/iavf_fdir.c) read them, with
Scapy-built G-PDUs and plain packets."""

from __future__ import annotations

from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from e810pipe.console import Testpmd

MAC = "00:11:22:33:55:66"


def console() -> Testpmd:
    argv = ["-a", "0000:18:01.0", "--", "-i", "--rxq=16", "--txq=16", "--profile", "comms"]
    argv += ["--vf", f"mac={MAC},queues=16"]
    tp = Testpmd(argv)
    for cmd in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(cmd)
    return tp


def marks(tp: Testpmd, frames: list[Packet]) -> list[tuple[int, str | None]]:
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


def gpdu(inner: Packet, pdu_type: int | None = None) -> Packet:
    outer = Ether(dst=MAC) / IP() / UDP(dport=2152) / GTP_U_Header(gtp_type=255, teid=0x12)
    if pdu_type is not None:
        outer[GTP_U_Header].E = 1
        outer[GTP_U_Header].next_ex = 0x85
        outer = outer / GTPPDUSessionContainer(type=pdu_type, QFI=0x34)
    return outer / inner / Raw(b"x" * 20)


def test_pdu_type_selects_uplink_or_downlink_profiles() -> None:
    # iavf_fdir_parse_pattern: gtp_psc pdu_t 1 is VIRTCHNL_PROTO_HDR_GTPU_EH_PDU_UP, 0
    # ..._PDU_DWN, a header type rather than a field: only that PDU type matches
    tp = console()
    ul = "eth / ipv4 / udp / gtpu / gtp_psc pdu_t is 1 / ipv4 src is 192.168.0.20 / end"
    dl = "eth / ipv4 / udp / gtpu / gtp_psc pdu_t is 0 / ipv4 src is 192.168.0.20 / end"
    out = tp.execute(f"flow create 0 ingress pattern {ul} actions queue index 1 / mark id 1 / end")
    assert out == "Flow rule #0 created\n", out
    out = tp.execute(f"flow create 0 ingress pattern {dl} actions queue index 2 / mark id 2 / end")
    assert out == "Flow rule #1 created\n", out
    inner = IP(src="192.168.0.20", dst="192.168.0.21")
    assert marks(tp, [gpdu(inner, pdu_type=1), gpdu(inner, pdu_type=0)]) == [
        (1, "0x1"),
        (2, "0x2"),
    ]
    # another inner source, or no PDU session container: no rule
    assert [m for _, m in marks(tp, [gpdu(IP(src="192.168.0.22"), 1), gpdu(inner)])] == [
        None,
        None,
    ]


def test_inner_headers_after_gtpu() -> None:
    # tun_inner: an IPv4 item after gtpu is the payload's; its profile covers every inner
    # IPv4 packet of G-PDUs over IPv4, whatever the inner L4
    tp = console()
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 / udp / gtpu / ipv4 src is 192.168.0.20 "
        "/ end actions queue index 3 / mark id 3 / end"
    )
    assert out == "Flow rule #0 created\n", out
    src = IP(src="192.168.0.20", dst="192.168.0.21")
    frames = [gpdu(src), gpdu(src / UDP(sport=53)), gpdu(src / TCP()), gpdu(src / ICMP())]
    assert marks(tp, frames) == [(3, "0x3")] * 4
    assert [m for _, m in marks(tp, [gpdu(IP(src="192.168.0.22")), gpdu(IPv6())])] == [
        None,
        None,
    ]


def test_a_tcp_pattern_without_an_input_set_matches_the_protocol() -> None:
    # iavf_fdir_refine_input_set: no field, the pattern ends with tcp after ipv4: the IPv4
    # protocol 6 is the input set
    tp = console()
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 / tcp / end actions queue index 5 / end"
    )
    assert out == "Flow rule #0 created\n", out
    got = marks(tp, [Ether(dst=MAC) / IP() / TCP(), Ether(dst=MAC) / IP() / UDP()])
    assert got[0] == (5, None) and got[1][0] != 5
    # any other pattern without an input set is still refused
    out = tp.execute("flow create 0 ingress pattern eth / ipv4 / end actions queue index 5 / end")
    assert "Invalid input set" in out, out


def create(tp: Testpmd, pattern: str, queue: int = 10) -> str:
    return tp.execute(
        f"flow create 0 ingress pattern {pattern} / end actions queue index {queue} / end"
    )


def test_a_vf_port_has_no_switch_engine() -> None:
    # iavf registers hash and Flow Director engines only; iavf_fdir_parse_pattern refuses
    # the IPv4 and IPv6 ethertypes, so no engine takes these rules
    tp = console()
    for ethertype in ("0x0800", "0x86dd"):
        out = create(tp, f"eth type is {ethertype}", 1)
        assert "Unsupported ether_type.: Invalid argument" in out, out
    out = create(tp, "eth type is 0x8863", 1)
    assert out == "Flow rule #0 created\n", out


def test_overlapping_gtpu_inner_profiles_conflict() -> None:
    tp = console()
    inner = "ipv4 src is 192.168.0.20 dst is 192.168.0.21"
    gtpu = "eth / ipv4 / udp / gtpu"
    assert create(tp, f"{gtpu} / gtp_psc pdu_t is 0 / {inner} / udp dst is 23") == (
        "Flow rule #0 created\n"
    )
    # inner "other" beside inner UDP of one tunnel type; GTPU_EH beside its downlink form
    for pattern in (
        f"{gtpu} / gtp_psc pdu_t is 0 / {inner}",
        f"{gtpu} / gtp_psc / {inner} / udp dst is 23",
        f"{gtpu} / gtp_psc / {inner}",
    ):
        out = create(tp, pattern)
        assert "due to the rule is conflict with existing rule" in out, (pattern, out)
    # the uplink form and inner TCP overlap no downlink UDP G-PDU
    assert create(tp, f"{gtpu} / gtp_psc pdu_t is 1 / {inner}") == "Flow rule #1 created\n"
    assert create(tp, f"{gtpu} / gtp_psc pdu_t is 0 / {inner} / tcp dst is 23") == (
        "Flow rule #2 created\n"
    )


def test_a_vf_receives_the_multicast_macs_it_added() -> None:
    # testpmd's mcast_addr add -> iavf_set_mc_addr_list: the PF adds a MAC filter for the
    # address to the VF's VSI (ice_vc_add_mac_addr); before that the frame is not the VF's
    tp = console()
    frame = Ether(dst="01:00:5e:00:00:01") / IP(src="192.168.0.20", dst="224.0.0.1") / UDP()
    assert marks(tp, [frame]) == []
    assert tp.execute("mcast_addr add 0 01:00:5e:00:00:01") == ""
    assert tp.execute("mcast_addr add 0 01:00:5e:00:00:01") == (
        "multicast address already filtered by port\n"
    )
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 dst is 224.0.0.1 / end "
        "actions queue index 3 / mark id 9 / end"
    )
    assert out == "Flow rule #0 created\n", out
    assert marks(tp, [frame]) == [(3, "0x9")]
    assert tp.execute("mcast_addr add 0 00:11:22:33:44:55") == (
        "Invalid multicast addr 00:11:22:33:44:55\n"
    )
    assert tp.execute("mcast_addr remove 0 01:00:5e:00:00:01") == ""
    assert marks(tp, [frame]) == []


def test_pfcp_s_field_and_sctp_tag_as_the_pf_reads_them() -> None:
    # VIRTCHNL_PROTO_HDR_PFCP_S_FIELD: the S flag picks the PFCP node or session flow
    # type, the PF matches UDP port 8805 (ice_vc_fdir_parse_pattern); iavf reads the
    # SCTP ports only, so a tag is no part of the rule
    from scapy.contrib.pfcp import PFCP
    from scapy.layers.sctp import SCTP

    tp = console()
    out = create(tp, "eth / ipv4 / udp / pfcp s_field is 1", 4)
    assert out == "Flow rule #0 created\n", out
    out = create(tp, "eth / ipv4 / sctp src is 22 dst is 23 tag is 1", 6)
    assert out == "Flow rule #1 created\n", out
    session = Ether(dst=MAC) / IP() / UDP(sport=8805, dport=8805) / PFCP(S=1, seid=5)
    node = Ether(dst=MAC) / IP() / UDP(sport=8805, dport=8805) / PFCP(S=0)
    sctp = Ether(dst=MAC) / IP() / SCTP(sport=22, dport=23, tag=7)
    got = marks(tp, [session, node, sctp])
    assert got[0] == (4, None) and got[1][0] != 4 and got[2] == (6, None), got


def test_what_the_pf_refuses_reads_as_iavf_reports_it() -> None:
    # ice_vc_add_fdir_fltr answers VIRTCHNL_FDIR_FAILURE_RULE_EXIST / _CONFLICT;
    # iavf_fdir_add logs the status and iavf_fdir_create sets "Failed to add filter
    # rule." (EPERM); a validate_only request is answered before those checks
    tp = console()
    rule = "eth / ipv4 src is 192.168.0.20"
    assert create(tp, rule, 1) == "Flow rule #0 created\n"
    assert create(tp, rule, 2) == (
        "iavf_fdir_add(): Failed to add rule request due to the rule is already existed\n"
        "iavf_flow_create(): Failed to create flow\n"
        "port_flow_complain(): Caught PMD error type 2 (flow rule (handle)): "
        "Failed to add filter rule.: Operation not permitted\n"
    )
    out = create(tp, "eth / ipv4 src is 192.168.0.20 dst is 192.168.0.21", 2)
    assert out.startswith(
        "iavf_fdir_add(): Failed to add rule request due to the rule is conflict with "
        "existing rule\n"
    ), out
    out = tp.execute(f"flow validate 0 ingress pattern {rule} / end actions drop / end")
    assert out == "Flow rule validated\n", out


def test_actions_as_iavf_fdir_parse_checks_them() -> None:
    # ci_flow_check_actions (allowed types, two actions at most, contiguous RSS queues),
    # then iavf_fdir_parse_action_check; iavf's Flow Director has no count action
    tp = console()
    pattern = "eth / ipv4 src is 192.168.0.20"
    for actions, said in (
        ("count", "Unsupported action"),
        ("queue index 1 / mark id 1 / mark id 2", "Too many actions"),
        ("rss queues 1 2 3 5 end", "RSS queues must be contiguous"),
        ("queue index 16", "Invalid queue index."),
        ("rss queues 15 16 end", "Invalid queue region indexes."),
        ("queue index 1 / rss queues 2 3 end", "Unsupported action combination"),
    ):
        out = tp.execute(f"flow create 0 ingress pattern {pattern} / end actions {actions} / end")
        assert f"): {said}: Invalid argument" in out, (actions, out)

"""The whole pipeline: precedence between blocks, RSS, VSIs, and accounting."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN

from e810pipe.control import Controller, configure, read_setup
from e810pipe.device import Device
from e810pipe.errors import RuleError
from e810pipe.package import load_package
from e810pipe.pcapio import LINKTYPE_ETHERNET, iter_packets
from e810pipe.pipeline import Pipeline, PipelineConfig
from e810pipe.rss import MS_KEY
from e810pipe.testpmd import parse_commands

OS = load_package(["os-default"])


def pipeline(cmds: str = "", rxq: int = 16, config: PipelineConfig | None = None) -> Pipeline:
    pipe = Pipeline(OS, Device.build(rxq=rxq), config=config)
    ctl = Controller(pipe)
    for cmd in parse_commands(cmds, "test"):
        ctl.apply(cmd)
    return pipe


def tcp(src: str = "1.1.1.1", dst: str = "2.2.2.2", sport: int = 1000, dport: int = 80) -> bytes:
    return bytes(Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport))


def test_rss_spreads_and_reproduces_microsoft_hash() -> None:
    pipe = pipeline(f"port config 0 rss-hash-key ipv4-tcp {(MS_KEY + MS_KEY[:12]).hex()}")
    dec = pipe.process(tcp("66.9.149.187", "161.142.100.80", 2794, 1766))
    assert dec.rss_hash == 0x51CCC178
    assert dec.queue == (0x51CCC178 & 511) % 16  # PF LUT of 512, filled i % 16
    queues = {pipe.process(tcp(sport=p)).queue for p in range(200)}
    assert len(queues) > 8


def test_fd_queue_beats_rss_and_switch_beats_fd() -> None:
    pipe = pipeline(
        "flow create 0 pattern eth / ipv4 / tcp dst is 80 / end "
        "actions queue index 3 / mark id 5 / end"
    )
    dec = pipe.process(tcp())
    assert (dec.queue, dec.mark, dec.hits) == (3, 5, (("fd", 0),))
    assert dec.reason.startswith("fd rule 0")
    # a switch rule (pipeline mode, priority 0) for the same packet wins over FD
    pipe = pipeline(
        "flow create 0 priority 1 pattern eth / ipv4 / tcp dst is 80 / end "
        "actions queue index 3 / end\n"
        "flow create 0 priority 0 pattern eth / ipv4 dst is 2.2.2.2 / end "
        "actions queue index 7 / end",
        config=PipelineConfig(pipeline_mode=True),
    )
    assert [e.engine for e in pipe.rules.values()] == ["fd", "switch"]
    dec = pipe.process(tcp())
    assert dec.queue == 7 and ("fd", 0) in dec.hits and ("switch", 1) in dec.hits


def test_passthru_keeps_rss_and_reports_mark() -> None:
    pipe = pipeline(
        "flow create 0 pattern eth / ipv4 / tcp dst is 80 / end actions passthru / mark id 9 / end"
    )
    plain = pipeline()
    dec = pipe.process(tcp())
    assert dec.mark == 9 and dec.queue == plain.process(tcp()).queue


def test_queue_region_uses_hash_bits() -> None:
    pipe = pipeline(
        "flow create 0 pattern eth / ipv4 / tcp dst is 80 / end "
        "actions rss queues 4 5 6 7 end / end"
    )
    for sport in range(50):
        dec = pipe.process(tcp(sport=sport))
        assert dec.queue == 4 + (dec.rss_hash & 3)


def test_acl_drop_and_configurable_precedence() -> None:
    # ice gives a port no ACL and Flow Director both (ACL is DCF-only, a DCF has no
    # FDIR); the fallback placement does: a port range (64..127) only the ACL's TCAM
    # takes, and a marked rule for Flow Director
    cmds = (
        "flow create 0 pattern eth / ipv4 / tcp dst spec 64 dst last 127 / end "
        "actions drop / end\n"
        "flow create 0 pattern eth / ipv4 / tcp dst is 80 / end "
        "actions queue index 2 / mark id 1 / end"
    )
    pipe = pipeline(cmds, config=PipelineConfig(placement="fallback"))
    assert sorted(e.engine for e in pipe.rules.values()) == ["acl", "fd"]
    dec = pipe.process(tcp())
    assert dec.drop and dec.drop_reason == "acl rule 0: drop" and dec.queue is None
    soft = pipeline(cmds, config=PipelineConfig(placement="fallback", drop_wins=False))
    assert soft.process(tcp()).queue == 2  # FD's queue outranks the ACL drop


def test_vf_mac_goes_to_its_vsi_with_absolute_queues() -> None:
    dev = Device.from_dict(
        {"pfs": [{"rxq": 8, "vfs": [{"queues": 4, "mac": "02:00:00:00:00:01"}]}]}
    )
    pipe = Pipeline(OS, dev)
    dec = pipe.process(bytes(Ether(dst="02:00:00:00:00:01") / IP() / UDP(sport=5, dport=6)))
    assert dec.vsi_name == "pf0.vf0" and 8 <= dec.queue < 12
    assert dec.queue == 8 + dec.vsi_queue


def test_tunnel_port_commands_change_the_parse_and_rules() -> None:
    pkt = bytes(Ether() / IP() / UDP(dport=4789) / VXLAN(vni=42) / Ether() / IP() / UDP())
    rule = (
        "flow create 0 pattern eth / ipv4 / udp / vxlan vni is 42 / end actions queue index 6 / end"
    )
    unregistered = pipeline(rule).process(pkt)  # no port: plain UDP, the rule cannot hit
    assert unregistered.ptype == 24 and unregistered.hits == ()
    pipe = pipeline("port config 0 udp_tunnel_port add vxlan 4789\n" + rule)
    assert pipe.process(pkt).queue == 6
    Controller(pipe).apply(parse_commands("port config 0 udp_tunnel_port rm vxlan 4789")[0])
    assert pipe.process(pkt).ptype == 24


def test_rule_rejection_is_the_last_engines_and_notes_every_engine() -> None:
    """ice_flow_process_filter tries the hash engine, the switch, then FDIR on a PF (ACL
    is DCF-only); each overwrites the rte_flow error, so testpmd shows Flow Director's.
    The others are kept as notes."""
    with pytest.raises(RuleError) as info:
        pipeline(
            "flow create 0 pattern eth / ipv4 / tcp dst is 80 / end actions queue index 99 / end"
        )
    assert "Invalid queue for FDIR" in info.value.message
    notes = info.value.notes
    assert [n.split(":")[0] for n in notes] == ["hash", "switch", "fd"]


def test_yaml_device_and_rules(tmp_path: Path) -> None:
    cfg = tmp_path / "dev.yaml"
    cfg.write_text(
        """
device:
  pfs:
    - rxq: 8
      vfs: [{queues: 4, mac: "02:00:00:00:00:07"}]
tunnel_ports: {vxlan: [4789]}
rss: {types: [ip], pf_lut_size: 128}
rules:
  - "flow create 0 pattern eth / ipv4 / tcp dst is 443 / end actions queue index 1 / end"
  - pattern: [eth, {ipv4: {dst: 9.9.9.9}}, {udp: {dst: 53}}]
    actions: [{queue: 5}, {mark: 77}]
  - pattern: [eth, {ipv4: {src: 7.7.7.7}}]
    to_vsi: pf0.vf0
    priority: 0
"""
    )
    setup = read_setup([str(cfg)])
    pipe, _ = configure(OS, setup)
    assert len(pipe.rules) == 3 and pipe.device.total_queues == 12
    dec = pipe.process(bytes(Ether() / IP(dst="9.9.9.9") / UDP(sport=1, dport=53)))
    assert (dec.queue, dec.mark) == (5, 77)
    dec = pipe.process(bytes(Ether() / IP(src="7.7.7.7") / TCP()))
    assert dec.vsi_name == "pf0.vf0"


def test_yaml_errors_are_located(tmp_path: Path) -> None:
    from e810pipe.yamlfile import ConfigError

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "device:\n  pfs:\n    - rxq: 8\nrules:\n  - pattern: [eth]\n    actons: [drop]\n"
    )
    with pytest.raises(ConfigError) as info:
        read_setup([str(cfg)])
    assert str(info.value).startswith(f"{cfg}:6:5: unknown rule key 'actons'")
    cfg.write_text("rules:\n  - flow create 0 pattern eth / ipv9 / end actions drop / end\n")
    with pytest.raises(RuleError) as err:
        read_setup([str(cfg)])
    assert f"{cfg}:2" in str(err.value)


def real_captures() -> list[Path]:
    root = Path(__file__).parent / "data" / "real"
    return sorted(p for p in root.rglob("*") if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("config", ["os", "comms+rules"])
def test_nothing_is_lost_on_real_captures(config: str) -> None:
    if config == "os":
        pipe = Pipeline(OS, Device.build(rxq=8))
    else:
        pipe = Pipeline(load_package(["comms"]), Device.build(rxq=32))
        ctl = Controller(pipe)
        for cmd in parse_commands(
            "port config 0 udp_tunnel_port add vxlan 4789\n"
            "flow create 0 pattern eth / ipv4 / udp dst is 53 / end "
            "actions rss queues 8 9 10 11 end / end\n"
            "flow create 0 pattern eth / ipv6 / tcp dst is 80 / end actions drop / end\n"
            "flow create 0 pattern eth / ipv4 / tcp src spec 0 src mask 0xfc00 / end "
            "actions drop / end\n"
            "flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.0.0.0 / udp / end "
            "actions queue index 3 / end\n"
        ):
            ctl.apply(cmd)
    read = skipped = 0
    for path in real_captures():
        for pkt in iter_packets(path):
            read += 1
            if pkt.linktype != LINKTYPE_ETHERNET:
                skipped += 1
                continue
            dec = pipe.process(pkt.data)
            assert dec.drop == (dec.queue is None)
            assert dec.drop or dec.drop_reason is None
    c = pipe.counters
    assert read == 2278
    assert c.packets == read - skipped
    assert sum(c.per_queue.values()) + sum(c.drops.values()) == c.packets
    assert sum(c.per_vsi.values()) == sum(c.per_queue.values())
    assert sum(c.per_ptype.values()) == c.packets
    if config != "os":
        assert sum(c.drops.values()) > 0 and any(e.hits for e in pipe.rules.values())


def test_qfi_rules_need_the_pdu_session_container() -> None:
    from e810pipe.layerspec import build

    pipe = Pipeline(load_package(["comms"]), Device.build(rxq=16))
    for cmd in parse_commands(
        "flow create 0 pattern eth / ipv4 / udp / gtpu / gtp_psc qfi is 6 / end "
        "actions queue index 9 / end"
    ):
        Controller(pipe).apply(cmd)
    # no container: the byte where a QFI would sit is the inner IPv6 next header (6)
    plain = build("Ether()/IP()/UDP(sport=2152,dport=2152)/GTP_U_Header(teid=1)/IPv6()/TCP()")
    assert pipe.process(plain).hits == ()
    psc = build(
        "Ether()/IP()/UDP(sport=2152,dport=2152)/GTP_U_Header(teid=1,E=1,next_ex=0x85)"
        "/GTPPDUSessionContainer(QFI=6,type=1)/IPv6()/TCP()"
    )
    dec = pipe.process(psc)
    assert dec.hits == (("switch", 0),) and dec.queue == 9  # ice's switch takes GTP-U QFI


def test_rules_go_where_ice_flow_process_filter_sends_them() -> None:
    """On a PF: the switch (masked or exact fields, no mark, priority 0 or 1), then Flow
    Director (marks, passthru, count). The ACL is DCF-only (ice.rst), so a masked
    address is the switch's (DTS ice_switch_filter tv_ip_dst_mask: engine 2)."""
    pipe = pipeline(
        "flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.0.0.0 / end "
        "actions drop / end\n"
        "flow create 0 pattern eth / ipv4 src is 10.0.0.1 / end actions queue index 1 / end\n"
        "flow create 0 priority 1 pattern eth / ipv4 src is 10.0.0.2 / end actions drop / end\n"
        "flow create 0 pattern eth / ipv4 src is 10.0.0.3 / end actions queue index 1 / "
        "mark id 3 / end\n"
        "flow create 0 pattern eth / ipv4 src is 10.0.0.4 / end actions passthru / count / end"
    )
    assert [e.engine for e in pipe.port_rules(0)] == ["switch", "switch", "switch", "fd", "fd"]
    with pytest.raises(RuleError) as info:
        pipeline(
            "flow create 0 priority 2 pattern eth / ipv4 src is 10.0.0.5 / end actions drop / end"
        )
    assert info.value.message.startswith("Priority not supported")  # FDIR's, the last tried
    assert "switch: Invalid priority for switch filter" in info.value.notes


def test_fallback_placement_keeps_acl_ranges() -> None:
    pipe = pipeline(
        "flow create 0 pattern eth / ipv4 / tcp dst spec 70 dst last 90 / end actions drop / end",
        config=PipelineConfig(placement="fallback"),
    )
    assert [e.engine for e in pipe.port_rules(0)] == ["acl"]
    assert pipe.process(tcp()).drop


def test_qinq_rules_read_both_tags() -> None:
    """In double VLAN mode the outer 0x8100 tag of a stack is the S-tag (EVLAN_O): the
    first `vlan` item of a QinQ pattern reads it, the second the C-tag (VLAN_O)."""
    pipe = Pipeline(OS, Device.build(rxq=16), dvm=True)
    Controller(pipe).apply(
        parse_commands(
            "flow create 0 pattern eth / vlan tci is 2 / vlan tci is 1 / ipv4 / end "
            "actions queue index 5 / end"
        )[0]
    )

    def qinq(outer: int, inner: int) -> bytes:
        return bytes(Ether() / Dot1Q(vlan=outer) / Dot1Q(vlan=inner) / IP() / UDP())

    assert pipe.process(qinq(2, 1)).vsi_queue == 5
    assert pipe.process(qinq(1, 1)).hits == ()
    assert pipe.process(qinq(2, 2)).hits == ()


def test_any_matches_every_packet_in_the_switch() -> None:
    pipe = pipeline("flow create 0 pattern any / end actions queue index 4 / end")
    assert [e.engine for e in pipe.port_rules(0)] == ["switch"]
    assert pipe.process(tcp()).vsi_queue == 4
    assert pipe.process(bytes(Ether(type=0x0806)) + bytes(28)).vsi_queue == 4


def test_a_switch_drop_at_a_lower_priority_still_drops() -> None:
    """DTS's ice_switch_filter priority cases: `any` drop at priority 1 with a priority 0
    queue rule on the same packets drops them (drop_wins); without drop_wins the
    higher recipe priority decides."""
    cmds = (
        "flow create 0 priority 1 pattern any / end actions drop / end\n"
        "flow create 0 priority 0 pattern eth / ipv4 src is 1.1.1.1 / end "
        "actions queue index 2 / end"
    )
    assert pipeline(cmds).process(tcp()).drop
    soft = pipeline(cmds, config=PipelineConfig(drop_wins=False))
    assert soft.process(tcp()).vsi_queue == 2


def test_pipeline_mode_splits_rules_by_priority() -> None:
    """pipeline-mode-support=1 (DPDK 23.07 ice_flow_process_filter): priority 0 goes to
    the switch's permission-stage list (ice_switch_pattern_perm_list), other priorities
    to Flow Director's list (ice_fdir_supported_pattern); neither tries the other."""
    mode = PipelineConfig(pipeline_mode=True)
    rule = "pattern eth / ipv4 src is 1.1.1.1 / tcp dst is 80 / end actions queue index {} / end"
    pipe = pipeline(
        f"flow create 0 priority 1 {rule.format(3)}\nflow create 0 priority 0 {rule.format(1)}",
        config=mode,
    )
    assert [e.engine for e in pipe.port_rules(0)] == ["fd", "switch"]
    assert pipe.process(tcp()).vsi_queue == 1  # the switch (permission stage) decides
    for prio, pattern, engine in (
        (0, "eth / ipv6 / sctp src is 25 / end", "switch"),  # no SCTP in the perm list
        (1, "eth / ipv4 / nvgre / eth / ipv4 src is 1.1.1.1 / end", "fd"),  # no NVGRE in FD
    ):
        with pytest.raises(RuleError) as info:
            pipeline(
                f"flow create 0 priority {prio} pattern {pattern} actions drop / end", 16, mode
            )
        assert info.value.message.startswith("Unsupported pattern")
        assert [n.split(":")[0] for n in info.value.notes] == ["hash", engine]


def comms_pipeline(cmds: str) -> Pipeline:
    # double VLAN mode, as ice_set_vlan_mode starts the PMD with the stock packages
    pipe = Pipeline(load_package(["comms"]), Device.build(rxq=16), dvm=True)
    ctl = Controller(pipe)
    for cmd in parse_commands(cmds, "test"):
        ctl.apply(cmd)
    return pipe


def test_switch_nat_t_esp_reads_the_spi_behind_udp() -> None:
    """ice_switch_parse_pattern: `esp` after `udp` is the ICE_NAT_T lookup (the SPI 8
    bytes into UDP) with the NAT-T tunnel type; the OS default package has no NAT-T."""
    rule = "flow create 0 pattern eth / ipv4 / udp / esp spi is 7 / end actions queue index 3 / end"
    pipe = comms_pipeline(rule)
    assert [e.engine for e in pipe.port_rules(0)] == ["switch"]

    def natt(spi: int) -> bytes:
        return bytes(Ether() / IP() / UDP(sport=4500, dport=4500) / spi.to_bytes(4, "big")) + (
            bytes(40)
        )

    assert pipe.process(natt(7)).vsi_queue == 3
    assert pipe.process(natt(8)).hits == ()
    with pytest.raises(RuleError):
        pipeline(rule)


def test_switch_pfcp_s_field_selects_the_profile() -> None:
    """A PFCP switch rule is a profile rule (ICE_SW_TUN_PROFID_IPV4_PFCP_NODE/SESSION):
    s_field picks the node or session PTYPE and no field is looked up; a SEID mask is
    refused ("Invalid pfcp mask")."""
    pipe = comms_pipeline(
        "flow create 0 pattern eth / ipv4 / udp / pfcp s_field is 1 / end "
        "actions queue index 5 / end"
    )

    def pfcp(s: int) -> bytes:
        head = bytes([0x20 | s, 1, 0, 12 if s else 4])
        body = bytes(8) + b"\x00\x00\x01\x00" if s else b"\x00\x00\x01\x00"
        return bytes(Ether() / IP() / UDP(sport=8805, dport=8805) / (head + body))

    assert pipe.process(pfcp(1)).vsi_queue == 5
    assert pipe.process(pfcp(0)).hits == ()
    with pytest.raises(RuleError) as info:
        comms_pipeline(
            "flow create 0 pattern eth / ipv4 / udp / pfcp s_field is 1 seid is 3 / end "
            "actions queue index 5 / end"
        )
    assert "Invalid pfcp mask" in info.value.notes[-2]  # the switch's; FD's is last


def test_switch_input_set_is_at_most_32_bytes() -> None:
    """ice_switch_parse_pattern's MAX_INPUT_SET_BYTE: IPv6 addresses (16 + 16) and the
    traffic class (4) are 36 bytes, too many for the switch; FDIR takes it on a PF."""
    pipe = pipeline(
        "flow create 0 pattern eth / ipv6 src is ::1 dst is ::2 tc is 3 / end "
        "actions queue index 1 / end\n"
        "flow create 0 pattern eth / ipv6 src is ::1 dst is ::2 / end actions queue index 1 / end"
    )
    assert [e.engine for e in pipe.port_rules(0)] == ["fd", "switch"]


def test_non_pppoe_switch_rules_skip_pppoe_profiles() -> None:
    """ice_get_compat_fv_bitmap: a rule of tunnel type ICE_NON_TUN uses the
    ICE_PROF_NON_TUN profiles only, and PPPoE's are ICE_PROF_TUN_PPPOE: an `eth / vlan`
    drop leaves PPPoE sessions on that VLAN alone (DTS ice_dcf_switch_filter
    test_mac_drop_action)."""
    pipe = comms_pipeline(
        "flow create 0 pattern eth dst is 00:11:22:33:44:55 / vlan tci is 1 / end "
        "actions drop / end"
    )
    tagged = Ether(dst="00:11:22:33:44:55") / Dot1Q(vlan=1)
    assert pipe.process(bytes(tagged / IP() / UDP())).drop
    session = bytes(tagged / PPPoE(sessionid=3) / PPP(proto=0x0021) / IP() / UDP())
    assert not pipe.process(session).drop


def test_single_vlan_mode_vlan_item_reads_the_vlan_tag() -> None:
    """In single VLAN mode an 0x8100 tag is the vlan header (VLAN_O); a `vlan` item reads
    it there, not where an 0x88a8 S-tag would report (EVLAN_O)."""
    pipe = pipeline(
        "flow create 0 pattern eth dst is 00:11:22:33:44:55 / vlan tci is 1 / end "
        "actions drop / end"
    )
    assert not pipe.dvm
    assert pipe.process(bytes(Ether(dst="00:11:22:33:44:55") / Dot1Q(vlan=1) / IP())).drop
    assert not pipe.process(bytes(Ether(dst="00:11:22:33:44:55") / Dot1Q(vlan=2) / IP())).drop

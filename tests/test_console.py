"""The testpmd console: launch options, ports, commands, injection and testpmd's output."""

from __future__ import annotations

import io
import re

import pytest

from e810pipe.build import LaunchOptions
from e810pipe.cli import main
from e810pipe.conformance import parse_rx
from e810pipe.console import Testpmd
from e810pipe.errors import UsageError
from e810pipe.layerspec import build
from e810pipe.mbuf import ptype_name, sw_ptype

UDP_PKT = (
    'Ether(dst="00:11:22:33:44:55")/IP(src="192.168.0.20",dst="192.168.0.21")'
    '/UDP(sport=22,dport=23)/Raw("x"*80)'
)
RULE = (
    "flow create 0 ingress pattern eth dst is 00:11:22:33:44:55 / ipv4 src is 192.168.0.20 "
    "dst is 192.168.0.21 / udp src is 22 dst is 23 / end actions queue index 5 / mark id 7 / end"
)


def session(*args: str) -> Testpmd:
    tp = Testpmd(["-a", "0000:18:00.0", "-a", "0000:18:00.1", "--", "-i", *args])
    for line in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(line)
    return tp


def test_launch_options_as_testpmd_spells_them() -> None:
    o = LaunchOptions.parse(
        ["-l", "1-3", "-n", "4", "-a", "0000:18:00.0,pipeline-mode-support=1", "-a",
         "18:01.1,cap=dcf", "--", "-i", "--rxq=16", "--txq=16", "--disable-rss",
         "--port-topology=chained", "--log-level=ice,7", "--nb-cores=2"]
    )  # fmt: skip
    assert [(p.kind, p.pf, p.vf, p.dcf) for p in o.ports] == [
        ("pf", 0, None, False),
        ("vf", 0, 1, True),
    ]
    assert (o.rxq, o.txq, o.rss_types, o.topology, o.log_info) == (16, 16, (), "chained", True)
    assert o.pipeline_mode and o.interactive
    assert o.ignored == ("-l=1-3", "-n=4", "--nb-cores=2")
    assert LaunchOptions.parse([]).rss_types == ("ip",)  # testpmd's default rss_hf
    with pytest.raises(UsageError, match="unknown testpmd option"):
        LaunchOptions.parse(["--frobnicate"])


def test_rule_ids_are_per_port_and_reused() -> None:
    tp = session("--rxq=16", "--txq=16")
    assert tp.execute(RULE) == "Flow rule #0 created\n"
    assert tp.execute(RULE.replace("create 0", "create 1")) == "Flow rule #0 created\n"
    second = RULE.replace("dst is 23", "dst is 24")
    assert tp.execute(second) == "Flow rule #1 created\n"
    assert tp.execute("flow destroy 0 rule 1") == "Flow rule #1 destroyed\n"
    assert tp.execute(second) == "Flow rule #1 created\n"  # newest + 1, as testpmd numbers
    listing = tp.execute("flow list 0")
    assert re.search(r"ID\s+Group\s+Prio\s+Attr\s+Rule", listing)  # check_rule_in_list_by_id
    assert re.findall(r"^(\d+)\t", listing, re.M) == ["0", "1"]
    assert "ETH IPV4 UDP => QUEUE MARK" in listing
    tp.execute("flow flush 0")
    assert tp.execute(RULE) == "Flow rule #0 created\n"


def test_errors_read_as_testpmd_prints_them() -> None:
    tp = session("--rxq=16", "--txq=16")
    assert tp.execute("flow validate 0 ingress pattern eth / ipv4 / and actions end") == (
        "Bad arguments\n"
    )
    assert tp.execute("flow list 2") == "Invalid port 2\n"
    out = tp.execute(RULE.replace("create 0", "create 2"))
    assert out.endswith("No such device: No such device\n")
    out = tp.execute(RULE.replace("index 5", "index 64"))
    # ice_flow_create's ERR log line, then testpmd's complaint
    first, second = out.splitlines()
    assert first == "ice_flow_create(): Failed to create flow"
    assert second.startswith("port_flow_complain(): Caught PMD error type ")
    assert out.endswith(": Invalid argument\n")
    # a validation fails without the PMD's log line
    out = tp.execute(RULE.replace("index 5", "index 64").replace("create", "validate"))
    assert out.startswith("port_flow_complain(): Caught PMD error type ")
    assert tp.execute("flow query 0 3 count") == "Flow rule #3 not found\n"


def test_verbose_lines_carry_the_decision() -> None:
    tp = session("--rxq=16", "--txq=16")
    tp.execute(RULE)
    data = build(UDP_PKT)
    out = tp.inject(0, [data])
    dec = tp.pipe.process(data, 0)
    assert out.startswith(f"port 0/queue {dec.vsi_queue}: received 1 packets\n")
    line = out.splitlines()[1]
    assert f"RSS hash=0x{dec.rss_hash:x} - RSS queue=0x{dec.vsi_queue:x}" in line
    assert f"length={len(data)}" in line and "type=0x0800" in line
    assert (
        "hw ptype: L2_ETHER L3_IPV4_EXT_UNKNOWN L4_UDP  - sw ptype: L2_ETHER L3_IPV4 L4_UDP "
        in line
    )
    assert "l2_len=14 - l3_len=20 - l4_len=8 - Destination UDP port=23" in line
    assert line.endswith(f"Receive queue=0x{dec.vsi_queue:x}")
    assert "RTE_MBUF_F_RX_RSS_HASH" in out.splitlines()[2]
    # DTS's own regular expression (RssProcessing.get_hash_and_queues) reads it, on the
    # output as DTS gets it through a terminal (whose line discipline turns \n into \r\n)
    tty = out.replace("\n", "\r\n")
    hp = re.compile(
        r"port\s0/queue\s\d+:\sreceived\s\d+\spackets.+?\n.*RSS\shash=(\w+)\s-\sRSS\squeue=(\w+)"
    )
    assert hp.findall(tty) == [(f"0x{dec.rss_hash:x}", f"0x{dec.vsi_queue:x}")]
    assert [(p.port, p.queue, p.hash) for p in parse_rx(out)] == [(0, dec.vsi_queue, dec.rss_hash)]


def test_disable_rss_means_no_hash_and_queue_0() -> None:
    tp = session("--rxq=16", "--txq=16", "--disable-rss")
    out = tp.inject(0, [build(UDP_PKT)])
    assert out.startswith("port 0/queue 0: received 1 packets")
    assert "RSS hash" not in out
    assert tp.execute("show port 0 rss-hash") == "RSS disabled\n"


def test_drops_count_as_rx_dropped_and_print_nothing() -> None:
    tp = session("--rxq=4", "--txq=4")
    tp.execute(RULE.replace("queue index 5 / mark id 7", "drop"))
    out = tp.inject(0, [build(UDP_PKT)] * 3)
    assert out == ""
    stats = tp.execute("stop")
    # DTS's check_drop pattern
    p = re.compile(
        r"Forward\sstatistics\s+for\s+port\s+0\s+.*\n.*RX-packets:\s(\d+)\s+RX-dropped:\s(\d+)"
        r"\s+RX-total:\s(\d+)\s"
    )
    assert p.findall(stats) == [("0", "3", "3")]


def test_stop_prints_per_queue_and_port_statistics() -> None:
    tp = session("--rxq=16", "--txq=16")
    tp.execute(RULE)
    tp.inject(0, [build(UDP_PKT)] * 2)
    stats = tp.execute("stop")
    # get_queue_rx_packets_number's pattern
    q = re.compile(
        r"Forward\sStats\s+for\s+RX\s+Port=\s*0/Queue=\s*(\d+)\s+.*\n.*RX-packets:\s(\d+)\s+"
    )
    got = {int(a): int(b) for a, b in q.findall(stats)}
    assert sum(got.values()) == 2
    assert "Accumulated forward statistics for all ports" in stats
    assert stats.rstrip().endswith("Done.")
    assert tp.execute("stop") == "Packet forwarding not started\n"


def test_log_level_shows_the_engine() -> None:
    tp = session("--rxq=16", "--txq=16", "--log-level=ice,7")
    out = tp.execute(RULE)
    assert re.fullmatch(
        r"ice_flow_create\(\): Succeeded to create \([1-4]\) flow\nFlow rule #0 created\n", out
    )


def test_sw_ptype_of_a_vxlan_packet_follows_rte_net_rules() -> None:
    d = build("Ether()/IP()/UDP(dport=4789)/VXLAN(vni=2)/Ether()/IP()/TCP()")
    pt, lens = sw_ptype(d)
    assert ptype_name(pt) == (
        "L2_ETHER L3_IPV4 L4_UDP TUNNEL_VXLAN INNER_L2_ETHER INNER_L3_IPV4 INNER_L4_TCP "
    )
    assert (lens.l2_len, lens.l3_len, lens.l4_len, lens.tunnel_len) == (14, 20, 8, 8)
    assert (lens.inner_l2_len, lens.inner_l3_len, lens.inner_l4_len) == (8 + 8 + 14 + 14, 20, 20)


def test_vf_port_receives_what_the_switch_gives_its_vsi() -> None:
    tp = Testpmd(["-a", "0000:18:01.0", "--", "-i", "--rxq=4", "--vf", "mac=00:11:22:33:44:55"])
    tp.execute("set verbose 1")
    tp.execute("start")
    mine = tp.inject(0, [build(UDP_PKT)])
    assert mine.startswith("port 0/queue ")
    other = tp.inject(0, [build(UDP_PKT.replace("00:11:22:33:44:55", "00:11:22:33:44:66"))])
    assert other == ""  # for the PF, which no port of this session is


def test_cmdline_file_and_pipe_replay(tmp_path, capsys) -> None:
    script = tmp_path / "session.txt"
    script.write_text(f"set verbose 1\nstart\n{RULE}\ninject 0 {UDP_PKT}\nstop\n")
    assert main(["testpmd", "--", f"--cmdline-file={script}", "--rxq=16", "--txq=16"]) == 0
    out = capsys.readouterr().out
    assert "Flow rule #0 created" in out and "received 1 packets" in out
    assert out.rstrip().endswith("Bye...")
    from e810pipe.console import main as console_main

    buf = io.StringIO()
    assert console_main(["--", "--rxq=2"], io.StringIO("show port 0 rss-hash\nquit\n"), buf) == 0
    assert "testpmd> show port 0 rss-hash\nRSS functions:\n" in buf.getvalue()


def test_run_takes_the_port_packets_arrive_on(tmp_path, capsys) -> None:
    from e810pipe.pcapio import PcapWriter

    cap = tmp_path / "one.pcap"
    w = PcapWriter(str(cap))
    w.write(build(UDP_PKT))
    w.close()
    rules = tmp_path / "r.yaml"
    rules.write_text("device:\n  pfs: [{rxq: 4}, {rxq: 4}]\n")
    assert main(["run", str(cap), "--rules", str(rules), "--port", "1", "--json"]) == 0
    assert '"vsi":1' in capsys.readouterr().out  # PF 1's VSI took it
    assert main(["run", str(cap), "--rules", str(rules), "--port", "2"]) == 2


def test_packets_before_start_are_counted_not_printed() -> None:
    tp = Testpmd(["--", "--rxq=2"])
    tp.execute("set verbose 1")
    assert tp.inject(0, [build(UDP_PKT)]) == ""  # nothing polls the queues yet
    assert tp.ports[0].rx_packets == 1 and tp.ports[0].rx_dropped == 0
    tp.execute("start")
    assert tp.inject(0, [build(UDP_PKT)]).startswith("port 0/queue ")
    tp.execute("port stop 0")
    assert tp.inject(0, [build(UDP_PKT)]) == "" and tp.ports[0].rx_packets == 2  # link down


def test_dcf_rules_forward_to_vfs_and_vsi_lists_replicate() -> None:
    """A DCF port's switch rules forward to other ports' VSIs; two rules with the same
    lookups to two ports form a VSI list, and each port receives a copy."""
    tp = Testpmd(
        ["-a", "0000:18:01.0,cap=dcf,representor=[1]", "-a", "0000:18:01.1", "--", "-i",
         "--vf", "mac=02:00:00:00:00:00,trust=on", "--vf", "mac=02:00:00:00:00:01"]
    )  # fmt: skip
    assert [p.spec.kind for p in tp.ports] == ["vf", "repr", "vf"]
    for line in ("set verbose 1", "set fwd rxonly", "start"):
        tp.execute(line)
    pattern = "pattern eth dst is 00:11:22:33:44:55 / ipv4 / end actions"
    assert tp.execute(f"flow create 0 {pattern} represented_port ethdev_port_id 1 / end") == (
        "Flow rule #0 created\n"
    )
    out = tp.inject(0, [build(UDP_PKT)], wire=True)  # onto PF 0's wire
    assert [p.port for p in parse_rx(out)] == [2]  # VF 1's port (1 is its representor)
    tp.execute(f"flow create 0 {pattern} port_representor port_id 0 / end")
    out = tp.inject(0, [build(UDP_PKT)], wire=True)
    assert sorted(p.port for p in parse_rx(out)) == [0, 2]
    bad = tp.execute(f"flow create 0 {pattern} represented_port ethdev_port_id 9 / end")
    assert "Invalid port ID: Invalid argument" in bad


def test_dcf_engines_are_acl_and_the_switch() -> None:
    """A DCF port has the ACL (DCF-only, ice.rst) and the switch; its FDIR and hash
    engines are disabled (ice_dcf_init_parent_adapter), so a rule neither takes fails
    with "engine is not enabled." (ice_parse_engine_create's, the last engine tried).
    represented_port must name a representor this DCF backs (ice_switch_dcf_action_check);
    a PF sends the same masked rule to the switch."""
    tp = Testpmd(
        ["-a", "0000:18:01.0,cap=dcf,representor=[1]", "-a", "0000:18:01.1", "--", "-i",
         "--log-level=ice,7", "--vf", "mac=02:00:00:00:00:00,trust=on",
         "--vf", "mac=02:00:00:00:00:01"]
    )  # fmt: skip
    masked = "pattern eth / ipv4 dst spec 192.168.0.0 dst mask 255.255.255.0 / end actions"
    out = tp.execute(f"flow create 0 {masked} drop / end")
    assert "Succeeded to create (4) flow" in out  # ICE_FLOW_ENGINE_ACL
    out = tp.execute(f"flow create 0 {masked} represented_port ethdev_port_id 2 / end")
    assert "Invalid port ID" in out  # port 2 is VF 1's own port, not a representor
    out = tp.execute("flow create 0 pattern eth / ipv4 src is 1.1.1.1 / end actions mark / end")
    assert "engine is not enabled.: Invalid argument" in out
    # a DCF port's switch actions: represented_port, port_representor, drop (dcf_param)
    out = tp.execute(
        "flow validate 0 pattern eth / ipv4 src is 1.1.1.1 / end actions vf id 1 / end"
    )
    assert "Flow rule validated" not in out
    assert tp.execute(
        "flow validate 0 pattern eth / ipv4 src is 1.1.1.1 / end actions drop / end"
    ) == ("Flow rule validated\n")
    pf = Testpmd(["-a", "0000:18:00.0", "--", "-i", "--log-level=ice,7"])
    assert "Succeeded to create (2) flow" in pf.execute(f"flow create 0 {masked} drop / end")

"""Kernel ntuple rules (``ethtool -N``): Flow Director filters as ice_ethtool_fdir.c
makes them, the same rule values as testpmd's, and the kernel's refusals."""

from __future__ import annotations

from errno import EINVAL, ENODEV, ENOENT, ENOSPC, EOPNOTSUPP
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.sctp import SCTP
from scapy.packet import Packet

from e810pipe import Pipeline
from e810pipe.cli import main
from e810pipe.errors import RuleError
from e810pipe.ethtool import EthtoolCommand, parse_ethtool
from e810pipe.testpmd import parse_command


def _pipe() -> Pipeline:
    return Pipeline.load(["comms"], cmds=["port config all rxq 16"])


def _refusal(pipe: Pipeline, text: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        pipe.apply(text)
    return info.value


def test_udp4_rule_steers_to_its_queue_and_drop_drops() -> None:
    pipe = _pipe()
    assert pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 4789 action 5") == [
        "Added rule with ID 16383"  # ethtool's pick: the highest free location
    ]
    assert pipe.apply("ethtool -U eth0 flow-type udp4 dst-port 53 action -1 loc 7") == []
    hit = pipe.process(Ether() / IP(dst="10.0.0.1") / UDP(sport=1, dport=4789))
    assert (hit.queue, hit.drop, hit.hits) == (5, False, (("fd", 16383),))
    dropped = pipe.process(Ether() / IP() / UDP(dport=53))
    assert dropped.drop and dropped.hits == (("fd", 7),)
    miss = pipe.process(Ether() / IP() / UDP(dport=4790))
    assert not miss.drop and miss.hits == ()
    # ethtool rules go to Flow Director only; testpmd's rule alike goes to the switch
    assert {e.engine for e in pipe.rules.values()} == {"fd"}
    assert pipe.apply(
        "flow create 0 pattern eth / ipv4 / udp dst is 9 / end actions queue index 2 / end"
    ) == ["Flow rule #16384 created (switch)"]


CASES: list[tuple[str, str, list[Packet]]] = [
    (
        "flow-type tcp4 src-ip 10.0.0.1 dst-ip 10.0.0.2 src-port 1000 dst-port 80 action 3",
        "eth / ipv4 src is 10.0.0.1 dst is 10.0.0.2 / tcp src is 1000 dst is 80 / end "
        "actions queue index 3 / end",
        [
            Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=80),
            Ether() / IP(src="10.0.0.1", dst="10.0.0.3") / TCP(sport=1000, dport=80),
            Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=80),
        ],
    ),
    (
        "flow-type udp6 dst-ip 2001:db8::1 dst-port 4789 action 9",
        "eth / ipv6 dst is 2001:db8::1 / udp dst is 4789 / end actions queue index 9 / end",
        [
            Ether() / IPv6(dst="2001:db8::1") / UDP(dport=4789),
            Ether() / IPv6(dst="2001:db8::2") / UDP(dport=4789),
            Ether() / IP() / UDP(dport=4789),
        ],
    ),
    (
        "flow-type sctp4 dst-ip 192.168.1.1 dst-port 5000 action -1",
        "eth / ipv4 dst is 192.168.1.1 / sctp dst is 5000 / end actions drop / end",
        [
            Ether() / IP(dst="192.168.1.1") / SCTP(dport=5000),
            Ether() / IP(dst="192.168.1.1") / SCTP(dport=5001),
        ],
    ),
    (
        "flow-type ip4 src-ip 172.16.0.9 action 4",
        "eth / ipv4 src is 172.16.0.9 / end actions queue index 4 / end",
        [
            Ether() / IP(src="172.16.0.9", proto=253),
            Ether() / IP(src="172.16.0.8", proto=253),
        ],
    ),
    (
        "flow-type ip6 src-ip fe80::7 action 2",
        "eth / ipv6 src is fe80::7 / end actions queue index 2 / end",
        [Ether() / IPv6(src="fe80::7", nh=59), Ether() / IPv6(src="fe80::8", nh=59)],
    ),
    (
        # a mask of all ones (every bit ignored) leaves the field out of the input set
        "flow-type tcp6 src-ip ::1 m ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff dst-port 22 "
        "m 0 action 1",
        "eth / ipv6 / tcp dst is 22 / end actions queue index 1 / end",
        [Ether() / IPv6(src="::2") / TCP(dport=22), Ether() / IPv6() / TCP(dport=23)],
    ),
]


@pytest.mark.parametrize(("ethtool", "testpmd", "packets"), CASES)
def test_ethtool_and_testpmd_fd_rule_decide_alike(
    ethtool: str, testpmd: str, packets: list[Packet]
) -> None:
    kernel, dpdk = _pipe(), _pipe()
    kernel.apply(f"ethtool -N eth0 {ethtool} loc 0")
    cmd = parse_command(f"flow create 0 pattern {testpmd}")
    assert cmd.rule is not None
    dpdk.create(cmd.rule, engines=("fd",))
    (k,), (d,) = kernel.rules.values(), dpdk.rules.values()
    # the same rule values: the front ends differ, the engine sees one rule
    assert (k.rule.pattern, k.rule.actions) == (cmd.rule.pattern, cmd.rule.actions)
    assert k.engine == d.engine == "fd"
    hits = 0
    for pkt in packets:
        a, b = kernel.process(pkt), dpdk.process(pkt)
        assert (a.queue, a.drop, a.hits) == (b.queue, b.drop, b.hits), pkt.summary()
        hits += bool(a.hits)
    assert hits == 1  # the first packet matches, the others do not


REFUSALS = [
    # ice_set_fdir_ip4_seg: no field; tos; a partial mask
    ("flow-type udp4 action 1", EINVAL, None),
    ("flow-type tcp4 tos 4 dst-port 1 action 1", EOPNOTSUPP, None),
    ("flow-type udp4 dst-ip 10.0.0.0 m 0.0.0.255 action 1", EOPNOTSUPP, None),
    ("flow-type udp4 dst-port 99 m 0xff action 1", EOPNOTSUPP, None),
    # ice_set_fdir_ip4_usr_seg: l4proto is -EOPNOTSUPP, tos and l4 bytes -EINVAL
    ("flow-type ip4 dst-ip 1.1.1.1 l4proto 6 action 1", EOPNOTSUPP, None),
    ("flow-type ip4 dst-ip 1.1.1.1 tos 8 action 1", EINVAL, None),
    ("flow-type ip4 dst-ip 1.1.1.1 l4data 5 action 1", EINVAL, None),
    # ice_set_fdir_ip6_seg / ip6_usr_seg: tclass, l4proto
    ("flow-type tcp6 dst-ip ::1 tclass 1 action 1", EOPNOTSUPP, None),
    ("flow-type ip6 dst-ip ::1 l4proto 17 action 1", EOPNOTSUPP, None),
    # ice_cfg_fdir_xtrct_seq has no ESP/AH case; FLOW_MAC_EXT
    ("flow-type esp4 spi 5 action 1", EINVAL, None),
    ("flow-type udp4 dst-port 1 dst-mac 00:11:22:33:44:55 action 1", EINVAL, None),
    # ice_set_fdir_input_set: VF bits of the ring cookie, a queue past num_rxq
    (
        "flow-type udp4 dst-port 1 action 0x100000002",
        EINVAL,
        "Flow director filters are not supported on VF queues",
    ),
    (
        "flow-type udp4 dst-port 1 vf 1 queue 2",
        EINVAL,
        "Flow director filters are not supported on VF queues",
    ),
    ("flow-type udp4 dst-port 1 action 16", EINVAL, None),
    # ice_add_fdir_ethtool: the location past ice_get_fdir_cnt_all
    (
        "flow-type udp4 dst-port 1 action 1 loc 16384",
        ENOSPC,
        "The number of ntuple filters or provided location exceed max 16384.",
    ),
]


@pytest.mark.parametrize(("args", "errno", "log"), REFUSALS)
def test_kernel_refusals(args: str, errno: int, log: str | None) -> None:
    pipe = _pipe()
    err = _refusal(pipe, f"ethtool -N eth0 {args}")
    assert err.errno == errno
    assert str(err).startswith("rmgr: Cannot insert RX class rule: ")
    assert "(<apply>:1)" in str(err)
    if log is not None:
        assert f"eth0: Failed to add filter. {log}" in str(err)
    assert err.exit_code == 5
    assert not pipe.rules


def test_vf_zero_queue_is_the_pf_queue() -> None:
    pipe = _pipe()
    pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 1 vf 0 queue 6 loc 1")
    assert pipe.process(Ether() / IP() / UDP(dport=1)).queue == 6


def test_same_input_set_per_flow_type_and_a_freed_flow_type() -> None:
    pipe = _pipe()
    pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 4789 action 5 loc 1")
    err = _refusal(pipe, "ethtool -N eth0 flow-type udp4 src-ip 10.0.0.1 action 5 loc 2")
    assert err.errno == EINVAL
    assert str(err).endswith(
        "eth0: Failed to add filter. Flow director filters on each port must have the "
        "same input set."
    )
    # another flow type has its own input set
    pipe.apply("ethtool -N eth0 flow-type tcp4 src-ip 10.0.0.1 action 5 loc 2")
    # the filter a rule replaces still counts (ice_cfg_fdir_xtrct_seq runs first)
    err = _refusal(pipe, "ethtool -N eth0 flow-type udp4 src-port 7 action 5 loc 1")
    assert "same input set" in str(err)
    pipe.apply("ethtool -N eth0 delete 1")
    pipe.apply("ethtool -N eth0 flow-type udp4 src-ip 10.0.0.1 action 6 loc 1")
    assert pipe.process(Ether() / IP(src="10.0.0.1") / UDP(dport=9)).queue == 6


def test_location_update_and_duplicates() -> None:
    pipe = _pipe()
    pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 53 action 5 loc 3")
    # ice_fdir_is_dup_fltr: the same values elsewhere, or here with the same queue
    assert _refusal(pipe, "ethtool -N eth0 flow-type udp4 dst-port 53 action 6").errno == EINVAL
    assert (
        _refusal(pipe, "ethtool -N eth0 flow-type udp4 dst-port 53 action 5 loc 3").errno == EINVAL
    )
    # a drop's q_index is 0: against `action 0` at the location it is a duplicate
    pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 60 action 0 loc 4")
    assert (
        _refusal(pipe, "ethtool -N eth0 flow-type udp4 dst-port 60 action -1 loc 4").errno == EINVAL
    )
    # here with another queue: the location's filter is replaced
    pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 53 action 9 loc 3")
    assert pipe.process(Ether() / IP() / UDP(dport=53)).queue == 9
    assert [e.rule_id for e in pipe.port_rules(0)] == [3, 4]
    # another rule at the location is replaced too
    pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 54 action 2 loc 3")
    assert pipe.process(Ether() / IP() / UDP(dport=53)).hits == ()
    assert pipe.process(Ether() / IP() / UDP(dport=54)).queue == 2


def test_delete_and_auto_locations() -> None:
    pipe = _pipe()
    assert pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 1 action 1") == [
        "Added rule with ID 16383"
    ]
    assert pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 2 action 1") == [
        "Added rule with ID 16382"
    ]
    assert pipe.apply("ethtool -N eth0 delete 16383") == []
    assert pipe.process(Ether() / IP() / UDP(dport=1)).hits == ()
    err = _refusal(pipe, "ethtool -N eth0 delete 16383")
    assert err.errno == ENOENT
    assert str(err) == "rmgr: Cannot delete RX class rule: No such file or directory (<apply>:1)"
    assert _refusal(pipe, "ethtool -N eth9 delete 1").errno == ENODEV


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ethtool -K eth0 ntuple on", "only ntuple rules are modelled"),
        ("ethtool -N eth0 flow-type udp5 action 1", "Add rule, invalid syntax (flow-type udp5"),
        ("ethtool -N eth0 flow-type udp4 spi 1 action 1", "Add rule, unrecognized option[spi]"),
        ("ethtool -N eth0 flow-type udp4 dst-port 70000 action 1", "Invalid dst-port value[70000]"),
        ("ethtool -N eth0 flow-type tcp6 src-ip 1.2.3.4 action 1", "Invalid src-ip value[1.2.3.4]"),
        ("ethtool -N eth0 flow-type udp4 dst-port 1 m x action 1", "Invalid dst-port mask[x]"),
        (
            "ethtool -N eth0 flow-type udp4 dst-port 1 dst-port 2 action 1",
            "Invalid dst-port value[2]",
        ),
        ("ethtool -N eth0 flow-type ip4 src-port 1 spi 2 action 1", "Invalid spi value[2]"),
        ("ethtool -N eth0 flow-type ether dst-mac 0:1:2:3:4:5 action 1", "unrecognized option"),
        ("ethtool -N eth0 flow-type udp4 dst-port 1", "no action"),
        ("ethtool -N eth0 flow-type udp4 dst-port 1 action 1 queue 2", "action with vf / queue"),
    ],
)
def test_ethtool_syntax_errors_are_located(text: str, message: str) -> None:
    with pytest.raises(RuleError) as info:
        parse_ethtool(text, "rules.txt:4")
    assert str(info.value).startswith("rules.txt:4: ")
    assert message in str(info.value)


def test_mixed_text_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipe = _pipe()
    answers = pipe.apply(
        "flow create 0 pattern eth / ipv4 / udp dst is 9 / end actions queue index 2 / end\n"
        "# a kernel rule\n"
        "ethtool -N eth0 flow-type udp4 dst-port 10 action 3 loc 5\n"
        "flow list 0\n"
    )
    assert answers[0] == "Flow rule #0 created (switch)"
    assert any(line.startswith("5\t") and "\tfd\t" in line for line in answers)
    rules = tmp_path / "rules.txt"
    rules.write_text(
        "port config all rxq 16\n"
        "ethtool -N eth0 flow-type udp4 dst-port 4789 action 5 loc 1\n"
        "ethtool -N eth0 flow-type udp4 src-port 1 action 5 loc 2\n"
    )
    assert main(["flow", "validate", "--rules", str(rules)]) == 5
    out = capsys.readouterr().out
    assert f"{rules}:3: rmgr: Cannot insert RX class rule: Invalid argument ({rules}:3)" in out
    assert "same input set" in out
    code = main(
        [
            "flow",
            "validate",
            "--cmd",
            "port config all rxq 16",
            "--cmd",
            "ethtool -N eth0 flow-type udp4 dst-port 4789 action 5",
        ]
    )
    assert code == 0
    assert "--cmd[1]:1: Added rule with ID 16383" in capsys.readouterr().out
    cmd = parse_ethtool("ethtool -N eth0 flow-type udp4 dst-port 4789 action 5", "x:1")
    assert isinstance(cmd, EthtoolCommand) and cmd.rule is not None


def test_yaml_rules_take_ethtool_strings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = tmp_path / "dev.yaml"
    dev.write_text(
        "rules:\n"
        "  - ethtool -N eth0 flow-type udp4 dst-port 4789 action 0 loc 2\n"
        "  - ethtool -N eth0 flow-type udp4 dst-ip 10.0.0.1 action -1 loc 3\n"
    )
    assert main(["flow", "validate", "--rules", str(dev)]) == 5
    out = capsys.readouterr().out
    assert f"rmgr: Cannot insert RX class rule: Invalid argument ({dev}:3)" in out
    dev.write_text("rules:\n  - ethtool -N eth0 flow-type udp4 dst-port 4789 action 0 loc 2\n")
    pipe = Pipeline.load(rules=[str(dev)])
    assert pipe.process(Ether() / IP() / UDP(dport=4789)).hits == (("fd", 2),)


def test_overlapping_flow_types_are_the_models_refusal() -> None:
    pipe = _pipe()
    pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 1 action 1 loc 1")
    err = _refusal(pipe, "ethtool -N eth0 flow-type ip4 dst-ip 1.1.1.1 action 2 loc 2")
    assert str(err).startswith("rmgr: Cannot insert RX class rule: Invalid argument (<apply>:1)")
    assert "\nFlow Director model: Profile configure failed." in str(err)
    assert "ice_fdir_cross_prof_conflict" in str(err)
    assert [e.rule_id for e in pipe.port_rules(0)] == [1]
    # a refused replacement leaves the location's filter as it was
    pipe.apply("ethtool -N eth0 flow-type udp4 dst-port 2 action 3 loc 5")
    _refusal(pipe, "ethtool -N eth0 flow-type ip4 dst-ip 1.1.1.1 action 2 loc 1")
    assert pipe.process(Ether() / IP() / UDP(dport=1)).hits == (("fd", 1),)
    assert [e.rule_id for e in pipe.port_rules(0)] == [1, 5]

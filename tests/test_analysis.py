"""Rule analysis: coverage and overlap of matches, shadowed rules (checked against
packets), ties with different actions, patterns the profiles cannot produce."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from e810pipe.analysis import Finding, analyze, covers, explain_rejected, overlaps
from e810pipe.cli import main
from e810pipe.control import Controller
from e810pipe.device import Device
from e810pipe.engine import Match
from e810pipe.errors import RuleError
from e810pipe.fields import Word
from e810pipe.package import load_package
from e810pipe.pipeline import Pipeline, PipelineConfig
from e810pipe.rules import FlowRule
from e810pipe.testpmd import parse_commands

OS = load_package(["os-default"])


def pipeline(
    cmds: str,
    *,
    mode: bool = False,
    vfs: int = 0,
    ports: dict[str, set[int]] | None = None,
    **config: object,
) -> Pipeline:
    # The analysis is exercised over every block, ACL priorities and ranges included:
    # e810pipe's "fallback" placement keeps those reachable (ice's own placement is
    # tested in test_pipeline.py and by the DTS suites).
    config.setdefault("placement", "fallback")
    pipe = Pipeline(
        OS,
        Device.build(rxq=16, vfs=vfs),
        config=PipelineConfig(pipeline_mode=mode, **config),  # type: ignore[arg-type]
        ports=ports,
    )
    ctl = Controller(pipe)
    for cmd in parse_commands(cmds, "test"):
        ctl.apply(cmd)
    return pipe


def kinds(findings: list[Finding]) -> list[tuple[str, tuple[int, ...]]]:
    return [(f.kind, f.rule_ids) for f in findings]


W = Word(32, 16)  # IPv4 destination, upper half
W2 = Word(32, 18)


def m(
    ptypes: set[int], *words: tuple[Word, int, int], flag: str | None = None, **kw: object
) -> Match:
    return Match(frozenset(ptypes), flag, tuple(words), **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------ coverage, overlap


def test_ternary_overlap_and_coverage() -> None:
    a = m({23, 24}, (W, 0x0A00, 0xFF00))  # 10.x/8 on the first word
    b = m({24}, (W, 0x0A01, 0xFFFF), (W2, 0x0001, 0xFFFF))  # 10.1.0.1
    c = m({24}, (W, 0x0B00, 0xFF00))
    assert overlaps(a, b) and covers(a, b) and not covers(b, a)
    assert not overlaps(a, c) and not overlaps(b, c)
    # (v1 ^ v2) & m1 & m2 == 0 on every common word, whatever the other bits
    assert overlaps(m({24}, (W, 0x0A00, 0xFF00)), m({24}, (W, 0x0001, 0x00FF)))
    assert not covers(m({24}, (W, 0x0A00, 0xFF00)), m({24}, (W, 0x0001, 0x00FF)))
    # PTYPE sets and tunnel flags
    assert not overlaps(a, m({88}, (W, 0x0A01, 0xFFFF)))
    assert not covers(a, m({24, 25}, (W, 0x0A01, 0xFFFF)))
    vx = m({60}, flag="tunnel_vxlan")
    assert overlaps(vx, m({60})) and covers(m({60}), vx) and not covers(vx, m({60}))
    assert not overlaps(vx, m({60}, flag="tunnel_gre"))


def test_ranges() -> None:
    port = Word(53, 2)
    r = m({24}, ranges=((port, 1000, 2000),))
    assert covers(r, m({24}, (port, 1500, 0xFFFF)))
    assert not covers(r, m({24}, (port, 2500, 0xFFFF)))
    assert covers(r, m({24}, (port, 0x0400, 0xFF00)))  # 1024..1279
    assert covers(r, m({24}, ranges=((port, 1200, 1300),)))
    assert not covers(r, m({24}))
    assert overlaps(r, m({24}, (port, 0x0400, 0xFF00)))
    # no value in 1000..2000 ends in 0xff and has bit 15 set
    assert not overlaps(r, m({24}, (port, 0x80FF, 0x80FF)))
    assert overlaps(r, m({24}, (port, 0x00FF, 0x00FF)))  # 1023 fits
    assert not overlaps(r, m({24}, ranges=((port, 3000, 4000),)))
    assert covers(m({24}, (port, 0x0000, 0xF000)), m({24}, ranges=((port, 0, 100),)))


# --------------------------------------------------------- shadowing, checked


def test_switch_rule_shadowed_by_higher_priority_or_earlier_rule() -> None:
    pipe = pipeline(
        "flow create 0 priority 0 pattern eth / ipv4 dst is 10.0.0.1 / end actions drop / end\n"
        "flow create 0 priority 1 pattern eth / ipv4 dst is 10.0.0.1 / udp dst is 53 / end "
        "actions queue index 2 / end\n"
        "flow create 0 priority 0 pattern eth / ipv4 dst is 10.0.0.1 / tcp dst is 80 / end "
        "actions drop / end\n",
        mode=True,
    )
    assert [e.engine for e in pipe.rules.values()] == ["switch", "fd", "switch"]
    found = analyze(pipe)
    assert kinds(found) == [("shadowed", (1, 0)), ("shadowed", (2, 0))]
    assert found[0].message.startswith(
        "FD rule 1 (queue 2) never takes effect: switch rule 0 (drop) drops every packet"
    )
    assert "(same priority, added first)" in found[1].message
    assert "redundant" in found[1].message
    dec = pipe.process(bytes(Ether() / IP(dst="10.0.0.1") / UDP(dport=53)))
    assert dec.drop and dec.hits[0] == ("switch", 0)
    dec = pipe.process(bytes(Ether() / IP(dst="10.0.0.1") / TCP(dport=80)))
    assert dec.hits[0] == ("switch", 0)


def test_a_lower_priority_switch_drop_is_not_hidden() -> None:
    """Switch.lookup with drop_wins (DTS's priority cases): a drop at priority 1 still
    drops packets a priority-0 queue rule matches, so the drop is never shadowed; the
    queue rule is, when the drop covers it, and overlaps it otherwise. A priority-1
    queue rule under a priority-0 one is shadowed (higher priority)."""
    cmds = (
        "flow create 0 priority 0 pattern eth / ipv4 src is 1.1.1.1 / udp dst is 5 / end "
        "actions queue index 1 / end\n"
        "flow create 0 priority 1 pattern eth / ipv4 src is 1.1.1.1 / end actions drop / end\n"
        "flow create 0 priority 0 pattern eth / ipv4 dst is 2.2.2.2 / end "
        "actions queue index 2 / end\n"
        "flow create 0 priority 1 pattern eth / ipv4 src is 3.3.3.3 dst is 2.2.2.2 / end "
        "actions drop / end\n"
        "flow create 0 priority 1 pattern eth / ipv4 dst is 2.2.2.2 / tcp / end "
        "actions queue index 3 / end\n"
    )
    pipe = pipeline(cmds, placement="ice")
    assert [e.engine for e in pipe.port_rules(0)] == ["switch"] * 5
    found = analyze(pipe)
    assert kinds(found) == [("shadowed", (0, 1)), ("overlap", (2, 3)), ("shadowed", (4, 2))]
    assert "a switch drop at a lower priority still drops" in found[0].message
    assert pipe.process(bytes(Ether() / IP(src="1.1.1.1") / UDP(dport=5))).drop
    assert pipe.process(bytes(Ether() / IP(src="3.3.3.3", dst="2.2.2.2") / UDP())).drop
    assert pipe.process(bytes(Ether() / IP(src="4.4.4.4", dst="2.2.2.2") / TCP())).vsi_queue == 2
    soft = analyze(pipeline(cmds, placement="ice", drop_wins=False))
    assert ("shadowed", (3, 2)) in kinds(soft)  # without drop_wins priority decides


def test_switch_ties_with_different_actions_overlap() -> None:
    pipe = pipeline(
        "flow create 0 priority 0 pattern eth / ipv4 dst is 10.0.0.1 / end "
        "actions queue index 1 / end\n"
        "flow create 0 priority 0 pattern eth / ipv4 src is 10.0.0.2 / end "
        "actions queue index 2 / end\n"
        "flow create 0 priority 0 pattern eth / ipv4 src is 10.0.0.3 / end "
        "actions queue index 1 / end\n"
        "flow create 0 priority 1 pattern eth / ipv4 src is 10.0.0.4 / end "
        "actions queue index 3 / end\n",
        mode=True,
    )
    found = analyze(pipe)
    # rule 2 has rule 0's action; rule 3 has another priority
    assert kinds(found) == [("overlap", (0, 1))]
    assert "where both match, rule 0 wins" in found[0].message
    dec = pipe.process(bytes(Ether() / IP(src="10.0.0.2", dst="10.0.0.1") / UDP()))
    assert dec.hits == (("switch", 0),)


def test_identical_vsi_forwards_merge_and_are_not_shadowed() -> None:
    text = "flow create 0 priority 0 pattern eth / ipv4 dst is 10.0.0.9 / end actions end"
    pipe = pipeline("", mode=True, vfs=2)
    rule = parse_commands(text, "t")[0].rule
    assert rule is not None
    pipe.create(replace(rule, extra={"to_vsi": 1}))
    pipe.create(replace(rule, extra={"to_vsi": 2}))
    assert analyze(pipe) == []


def test_acl_entries_and_acl_drop_shadowing_other_blocks() -> None:
    pipe = pipeline(
        "flow create 0 priority 2 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.0.0.0 "
        "/ end actions drop / end\n"
        "flow create 0 priority 2 pattern eth / ipv4 src spec 10.1.0.0 src mask 255.255.0.0 "
        "/ end actions queue index 1 / end\n"
        "flow create 0 priority 0 pattern eth / ipv4 src spec 10.2.0.0 src mask 255.255.0.0 "
        "/ end actions queue index 2 / end\n"
        "flow create 0 priority 2 pattern eth / ipv4 dst spec 20.0.0.0 dst mask 255.0.0.0 "
        "/ end actions queue index 3 / end\n"
        "flow create 0 pattern eth / ipv4 src is 10.3.0.1 / udp dst is 53 / end "
        "actions queue index 4 / end\n"
        "flow create 0 priority 3 pattern eth / ipv4 src spec 10.4.0.0 src mask 255.255.0.0 "
        "/ end actions queue index 5 / end\n"
    )
    assert [e.engine for e in pipe.rules.values()] == ["acl", "acl", "switch", "acl", "fd", "acl"]
    found = analyze(pipe)
    assert kinds(found) == [
        ("overlap", (0, 3)),
        ("shadowed", (1, 0)),
        ("shadowed", (2, 0)),
        ("shadowed", (4, 0)),
        ("shadowed", (5, 0)),
    ]
    assert "ACL rule 1 (queue 1) can never match: ACL rule 0 (drop) (same priority" in (
        found[1].message
    )
    assert "(a drop wins: drop_wins)" in found[2].message
    for src in ("10.1.2.3", "10.2.2.3", "10.3.0.1"):
        dec = pipe.process(bytes(Ether() / IP(src=src) / UDP(dport=53)))
        assert dec.drop and dec.drop_reason == "acl rule 0: drop"
    # rte_flow priorities 2 and 3 are both the LOW entry priority: the first added wins
    assert "ACL rule 5 (queue 5) can never match: ACL rule 0 (drop) (same priority" in (
        found[4].message
    )


def test_fd_profile_selection_hides_profiles() -> None:
    tag = Ether() / Dot1Q(vlan=3) / IP() / UDP(dport=4789) / VXLAN(vni=5) / Ether()
    pkt = tag / IP(dst="1.1.1.1")
    # the more specific profile (one PTYPE) is looked up first: the broad VNI rule
    # never sees that PTYPE (patterns with a vlan item are not in ice's list, so their
    # profiles cover the PTYPEs of the pattern's path)
    pipe = pipeline(
        "flow create 0 pattern eth / vlan vid is 3 / ipv4 / udp / vxlan vni is 5 / end "
        "actions queue index 1 / end\n"
        "flow create 0 pattern eth / vlan vid is 3 / ipv4 / udp / vxlan / eth / "
        "ipv4 dst is 1.1.1.1 / end actions queue index 2 / end\n",
        ports={"vxlan": {4789}},
    )
    found = analyze(pipe)
    assert kinds(found) == [("overlap", (0, 1))]
    assert "FD rule 0 (flow type IPv4/VXLAN) never matches PTYPE 60: for it the profile TCAM" in (
        found[0].message
    )
    assert pipe.process(bytes(pkt)).hits == (("fd", 1),)
    other = tag / IP(dst="2.2.2.2")
    assert pipe.process(bytes(other)).hits == ()  # vni 5, but profile 1 is looked up
    # a tunnel-flag profile is looked up before one without
    pipe = pipeline(
        "flow create 0 pattern eth / ipv4 / udp / vxlan / eth / ipv4 dst is 1.1.1.1 / end "
        "actions queue index 2 / end\n"
        "flow create 0 pattern eth / ipv4 / gre / eth / ipv4 dst is 1.1.1.1 / end "
        "actions queue index 3 / end\n",
        ports={"vxlan": {4789}},
    )
    found = analyze(pipe)
    assert found == []  # the GRE profile needs the GRE flag, the VXLAN one the VXLAN flag
    assert pipe.process(bytes(pkt)).hits == (("fd", 0),)


def test_switch_forward_to_another_vsi_hides_fd_rules() -> None:
    pipe = pipeline(
        "flow create 0 pattern eth / ipv4 dst is 10.0.0.1 / udp dst is 53 / end "
        "actions queue index 3 / end",
        vfs=1,
    )
    rule = parse_commands(
        "flow create 0 priority 0 pattern eth / ipv4 dst is 10.0.0.1 / end actions end", "t"
    )[0].rule
    assert rule is not None
    pipe.create(replace(rule, extra={"to_vsi": 1}))
    found = analyze(pipe)
    assert kinds(found) == [("shadowed", (0, 1))]
    assert "sends every packet it matches to pf0.vf0, and FD looks up only that VSI" in (
        found[0].message
    )
    dec = pipe.process(bytes(Ether() / IP(dst="10.0.0.1") / UDP(dport=53)))
    assert dec.vsi_name == "pf0.vf0" and ("fd", 0) not in dec.hits


def test_switch_queue_over_fd_queue_keeps_the_mark() -> None:
    pipe = pipeline(
        "flow create 0 priority 1 pattern eth / ipv4 dst is 10.0.0.1 / udp dst is 53 / end "
        "actions queue index 3 / mark id 9 / end\n"
        "flow create 0 priority 0 pattern eth / ipv4 dst is 10.0.0.1 / end "
        "actions queue index 7 / end\n",
        mode=True,
    )
    found = analyze(pipe)
    assert kinds(found) == [("overlap", (0, 1))]
    assert "its queue never applies" in found[0].message
    assert "(its mark 9 still applies)" in found[0].message
    dec = pipe.process(bytes(Ether() / IP(dst="10.0.0.1") / UDP(dport=53)))
    assert (dec.vsi_queue, dec.mark) == (7, 9)


# ------------------------------------------------------------------ unproducible


def test_vxlan_rule_without_a_vxlan_port() -> None:
    text = (
        "flow create 0 pattern eth / ipv4 / udp / vxlan vni is 5 / eth / ipv4 dst is 1.1.1.1 "
        "/ end actions queue index 1 / end"
    )
    found = analyze(pipeline(text))
    assert kinds(found) == [("unproducible", (0,))]
    assert "no VXLAN port is registered" in found[0].message
    assert "udp_tunnel_port add vxlan PORT" in found[0].message
    assert analyze(pipeline(text, ports={"vxlan": {4789}})) == []
    # a port registered later, as testpmd would
    pipe = pipeline(text)
    Controller(pipe).apply(parse_commands("port config 0 udp_tunnel_port add vxlan 4789", "t")[0])
    assert analyze(pipe) == []


def test_a_header_sequence_no_packet_takes_is_rejected_with_the_reason(tmp_path: Path) -> None:
    prof = tmp_path / "mpls.ddp"
    prof.write_text("extend protocol mpls { report MPLS_OL_OR_OS | MPLS_IL; }\n")
    pkg = load_package(["os-default", str(prof)])
    pipe = Pipeline(pkg, Device.build(rxq=4))
    ctl = Controller(pipe)
    (ok, bad) = parse_commands(
        "flow create 0 pattern eth / mpls label is 16 / ipv4 / end actions queue index 1 / end\n"
        # GRE does not lead to MPLS in these profiles: no MPLS header inside GRE
        "flow create 0 pattern eth / ipv4 / gre / mpls label is 16 / end "
        "actions queue index 2 / end",
        "t",
    )
    ctl.apply(ok)
    with pytest.raises(RuleError) as err:
        ctl.apply(bad)
    assert "no packet has 'mpls' after eth / ipv4 / gre" in err.value.message
    assert "the parse graph leads to ipv4, ipv6" in err.value.message
    assert err.value.index == 3
    assert analyze(pipe) == []


def test_acl_priorities_and_ranges() -> None:
    pipe = pipeline(
        "flow create 0 priority 0 pattern eth / ipv4 / udp dst spec 1000 dst last 2000 / end "
        "actions drop / end\n"
        "flow create 0 priority 2 pattern eth / ipv4 / udp dst spec 0x400 dst mask 0xff00 / end "
        "actions queue index 1 / end\n"
        "flow create 0 priority 2 pattern eth / ipv4 / udp dst spec 0x700 dst mask 0xff00 / end "
        "actions queue index 1 / end\n"
    )
    assert [e.engine for e in pipe.rules.values()] == ["acl", "acl", "acl"]
    found = analyze(pipe)
    assert kinds(found) == [("shadowed", (1, 0))]  # 1024..1279 lies in 1000..2000
    assert "(higher priority)" in found[0].message
    assert pipe.process(bytes(Ether() / IP() / UDP(dport=1030))).drop
    assert pipe.process(bytes(Ether() / IP() / UDP(dport=2040))).hits == (("acl", 2),)


def test_items_that_add_no_condition() -> None:
    pipe = pipeline(
        "flow create 0 pattern eth / vlan / ipv4 dst is 9.9.9.9 / end actions queue index 1 / end"
    )
    found = analyze(pipe)
    assert kinds(found) == [("ignored-item", (0,))]
    assert "item 'vlan' (#1) adds no condition" in found[0].message
    dec = pipe.process(bytes(Ether() / IP(dst="9.9.9.9")))  # untagged: matches anyway
    assert dec.hits == (("fd", 0),)
    tagged = pipe.process(bytes(Ether() / Dot1Q(vlan=5) / IP(dst="9.9.9.9")))
    assert tagged.hits == (("fd", 0),)


def test_large_rule_sets_are_fast() -> None:
    lines = [
        f"flow create 0 pattern eth / ipv4 src is 10.{i // 256}.{i % 256}.1 / udp dst is 53 "
        f"/ end actions queue index {i % 16} / end"
        for i in range(3000)
    ] + [
        f"flow create 0 priority 2 pattern eth / ipv4 dst spec 20.{i}.0.0 dst mask "
        "255.255.0.0 / end actions queue index 1 / end"
        for i in range(200)
    ]
    pipe = pipeline("\n".join(lines))
    t = time.perf_counter()
    assert analyze(pipe) == []
    assert time.perf_counter() - t < 5


# -------------------------------------------------------------------- the CLI


def test_flow_validate_analyze(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text(
        "flow create 0 pattern eth / ipv4 / udp / vxlan vni is 5 / eth / ipv4 dst is 1.1.1.1 "
        "/ end actions queue index 0 / end\n"
    )
    code = main(["flow", "validate", "--rules", str(rules), "--analyze"])
    out = capsys.readouterr().out
    assert code == 0
    assert "warning: rule 0: switch rule 0 (queue 0) can never match:" in out  # ice: switch
    assert "[unproducible]" in out and "# analysis: 1 finding(s)" in out
    assert main(["flow", "validate", "--rules", str(rules), "--analyze", "--strict"]) == 1
    capsys.readouterr()
    code = main(
        ["flow", "validate", "--rules", str(rules), "--analyze", "--strict", "--vxlan-port", "4789"]
    )
    assert code == 0 and "# analysis: 0 finding(s)" in capsys.readouterr().out
    # without --analyze nothing changes
    assert main(["flow", "validate", "--rules", str(rules)]) == 0
    assert "analysis" not in capsys.readouterr().out


def test_rejected_patterns_get_a_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipe = pipeline("")

    def rule(text: str) -> FlowRule:
        r = parse_commands(text, "r.txt:1")[0].rule
        assert r is not None
        return r

    gtp = rule("flow create 0 pattern eth / ipv4 / udp / gtpu teid is 5 / end actions drop / end")
    hint = explain_rejected(pipe, gtp)
    assert hint is not None and hint.kind == "unproducible" and hint.rule_ids == ()
    assert "ICE COMMS Package 1.3.37.0 parses it: load it with --profile comms" in hint.message
    assert str(hint).startswith("warning: r.txt:1:1: the loaded profiles")
    mpls = rule("flow create 0 pattern eth / mpls label is 16 / ipv4 / end actions drop / end")
    hint = explain_rejected(pipe, mpls)
    assert hint is not None
    assert "extend protocol mpls { report MPLS_OL_OR_OS; }" in hint.message
    assert (
        explain_rejected(pipe, rule("flow create 0 pattern eth / end actions drop / end")) is None
    )

    rules = tmp_path / "rules.txt"
    rules.write_text(
        "flow create 0 pattern eth / ipv4 / udp / gtpu teid is 5 / end actions drop / end\n"
    )
    assert main(["flow", "validate", "--rules", str(rules), "--analyze"]) == 5
    out = capsys.readouterr().out
    assert f"warning: {rules}:1" in out and "--profile comms" in out
    assert main(["flow", "validate", "--rules", str(rules), "--profile", "comms"]) == 0


def test_vsi_forwards_at_one_priority_are_not_hidden() -> None:
    """Two VSI forwards of different recipes at one priority both deliver (the switch
    replicates to both VSIs), so neither hides nor overlaps the other."""
    pipe = pipeline(
        "flow create 0 pattern eth / ipv4 src is 192.0.2.9 / end actions vf id 0 / end\n"
        "flow create 0 pattern eth / ipv4 src is 192.0.2.9 dst is 192.0.2.1 / end "
        "actions vf id 1 / end\n",
        vfs=2,
        placement="ice",
    )
    assert analyze(pipe) == []
    dec = pipe.process(bytes(Ether() / IP(src="192.0.2.9", dst="192.0.2.1") / UDP()))
    assert dec.verdicts[0].vsis == (1, 2)

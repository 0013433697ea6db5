"""Scenario files, the check command, the layer-spec reader and the pytest plugin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e810pipe.cli import main
from e810pipe.layerspec import LayerSpecError, build
from e810pipe.scenario import load_scenario
from e810pipe.yamlfile import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((ROOT / "scenarios").rglob("*.scenario.yaml"))

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_scenarios_pass(path: Path) -> None:
    sc = load_scenario(path)
    outcomes = sc.run()
    failed = [o for o in outcomes if not o.passed]
    assert outcomes and not failed, "\n".join(f"{o.expectation}: {o.actual}" for o in failed)
    c = sc.pipe.counters
    assert sum(c.per_queue.values()) + sum(c.drops.values()) == len(sc.sent)


def test_the_custom_profile_is_what_steers_the_custom_packets() -> None:
    with_p = load_scenario(ROOT / "scenarios/gre/custom-gre.scenario.yaml")
    without = load_scenario(ROOT / "scenarios/gre/custom-gre-without-profile.scenario.yaml")
    with_p.run()
    without.run()
    custom = [s for s in with_p.sent if s.data[36:38] == b"\x88\xb5"]
    assert len(custom) == 20
    assert {s.decision.queue for s in custom} == {13}  # type: ignore[union-attr]
    lost = [s for s in without.sent if s.data[36:38] == b"\x88\xb5"]
    assert {s.decision.ptype for s in lost} == {43}  # type: ignore[union-attr]
    assert {s.decision.queue for s in lost} <= {0, 1, 2, 3}  # type: ignore[union-attr]


def write(tmp_path: Path, text: str, name: str = "t.scenario.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD = """
name: inline packets
rules:
  - "port config all rxq 8"
  - "flow create 0 pattern eth / ipv4 / udp dst is 53 / end actions queue index 5 / end"
  - "flow create 0 pattern eth / ipv4 / tcp dst is 22 / end actions drop / end"
packets:
  - name: dns
    scapy: 'Ether()/IP(dst="10.0.0.1")/UDP(sport=1000, dport=53)/"query"'
  - name: ssh
    scapy: Ether()/IP()/TCP(dport=22)
  - hex: "ffffffffffff00000000000108060001080006040001000000000001c000020100000000000000000000"
expect:
  - name: dns
    queue: 5
    ptype: 24
  - name: ssh
    drop: true
    drop_reason: "switch rule"
  - packet: 2
    ptype: MAC_ARP
  - match: {ipv4.dst: 10.0.0.1}
    queue: 5
queues: {5: 1, "*": 1}
drops: 1
"""


def test_inline_packets_and_expectations(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, GOOD))
    outcomes = sc.run()
    assert [o.passed for o in outcomes] == [True] * 6


def test_check_reports_failures_with_a_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, GOOD.replace("queue: 5\n    ptype: 24", "queue: 4\n    ptype: 24"))
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  name dns: queue 4, ptype 24" in out
    assert "expected: {'queue': 4, 'ptype': 24}" in out
    assert "actual:   {'queue': 5, 'ptype': 24}" in out
    assert "trace of packet 0:" in out and "Final: VSI pf0" in out
    assert main(["check", str(bad), "--json"]) == 1
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert list(rows[0]) == ["scenario", "expectation", "passed", "expected", "actual"]
    assert [r["passed"] for r in rows].count(False) == 1


@pytest.mark.parametrize(
    "text, where, message",
    [
        (
            "name: x\npackets: [{scapy: 'Ether()'}]\nexpect:\n  - packet: 0\n    queu: 1\n",
            ":5:5:",
            "unknown expectation key 'queu'",
        ),
        (
            "packets:\n  - scapy: 'Ether()/IP(dst=open(\"x\"))'\n",
            ":2:28:",
            "argument values must be literals",
        ),
        ("packets:\n  - hex: zz\n", ":2:10:", "not hex bytes"),
        ("pcaps: [nothere.pcap]\n", ":1:9:", "no capture"),
        ("packets: [{scapy: 'Ether()'}]\nbogus: 1\n", ":2:1:", "unknown key 'bogus'"),
        ("packets: [{scapy: 'Ether()'}]\nexpect:\n  - packet: 0\n", ":3:5:", "checks nothing"),
    ],
)
def test_bad_scenarios_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, where: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert f"{path}{where}" in str(info.value) and message in str(info.value)
    assert main(["check", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_layer_specs_never_run_code() -> None:
    assert build("Ether()/IP()/UDP(dport=4789)")[12:14] == b"\x08\x00"
    for spec in (
        '__import__("os").system("true")',
        "Ether()/IP().src",
        "[x for x in ()]",
        "IP(**{'dst': 1})",
        "eval('1')",
    ):
        with pytest.raises(LayerSpecError):
            build(spec)


def test_pytest_collects_scenarios(pytester: pytest.Pytester) -> None:
    pytester.makefile(".scenario.yaml", ok=GOOD)
    pytester.makefile(".scenario.yaml", bad=GOOD.replace("drop: true", "drop: false"))
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(passed=11, failed=1)
    result.stdout.fnmatch_lines(["*expected: {'drop': False, 'drop_reason': 'switch rule'}*"])


def test_ptf_style_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from scapy.layers.inet import IP, UDP
        from scapy.layers.l2 import Ether

        def test_send(send, verify_packet, verify_no_other_packets):
            a = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=1, dport=2)
            b = Ether() / IP(src="3.3.3.3", dst="4.4.4.4") / UDP(sport=1, dport=2)
            send(a)
            send(b)
            d = verify_packet(a, vsi="pf0")
            assert 0 <= d.queue < 16
            verify_no_other_packets()   # b was not verified: this fails
        """
    )
    result = pytester.runpytest_subprocess("-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*packets [[]1[]] reached a queue but were not verified*"])

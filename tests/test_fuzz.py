"""The parser fuzzer: graph-guided generation, invariants, shrinking, findings, CLI.

The seeded runs here are CI's fuzz run: a few thousand packets over the stock
packages, a user profile and double-VLAN mode, with full edge coverage and no
broken invariant. A longer run is a command (README, "Fuzzing").
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.packet import Raw

from e810pipe.cli import main
from e810pipe.fuzz import (
    INVARIANTS,
    Checker,
    Fuzzer,
    GraphModel,
    PacketBuilder,
    RandomSource,
    parser_config,
    replay,
    save_findings,
    shrink,
)
from e810pipe.parser import Parser, ParseResult
from e810pipe.refwalk import RefWalker
from e810pipe.strategies import any_packets, generated, mutated_packets, packets

CONFIGS = {
    "os+ports": dict(profiles=["os-default"], vxlan_ports=[4789, 8472], geneve_ports=[6081]),
    "comms+ports": dict(profiles=["comms"], vxlan_ports=[4789], geneve_ports=[6081]),
    "os+ports+dvm": dict(profiles=["os-default"], vxlan_ports=[4789], dvm=True),
    "custom-gre": dict(profiles=["comms", "examples/custom-gre.ddp"], vxlan_gpe_ports=[4789]),
}
COUNTS = {"os+ports": 2500, "comms+ports": 3000, "os+ports+dvm": 1500, "custom-gre": 2000}


def load(config: str, **kw: object) -> Parser:
    return Parser.load(**{**CONFIGS[config], **kw})  # type: ignore[arg-type]


ZERO_PROFILE = """\
# A header typed by UDP destination port 0. Past the window the port reads as zero,
# so the NIC would report a header it was never shown: a genuine finding.
proto_ids { ZERO_F = 131; }
protocol zero { fields { a: 32; } report ZERO_F; mark zero; }
extend select udp.dport { 0 => zero; }
"""


@pytest.fixture(scope="module")
def zero_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profiles") / "zero.ddp"
    path.write_text(ZERO_PROFILE)
    return path


# ------------------------------------------------------------- the CI run


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_seeded_run_keeps_every_invariant_and_covers_every_edge(config: str) -> None:
    parser = load(config)
    report = Fuzzer(parser, seed=2024).run(count=COUNTS[config])
    summary = report.summary()
    print(f"\n{config}: {summary} ({report.packets / report.seconds:,.0f} packets/s)")
    assert report.failures == 0, [(f.invariant, f.message, f.data.hex()) for f in report.findings]
    assert summary["packets"] >= COUNTS[config]
    assert summary["edges_covered"] == summary["edges_total"] > 90
    assert set(report.coverage.nodes) == report.model.reachable_nodes
    assert summary["max_depth"] > parser.window  # headers start past the window
    assert summary["ptypes_reached"] >= 50
    long = [p for p in report.coverage.paths if any(s.endswith("+") for s in p)]
    assert long, "no header repeated: no MPLS, VLAN or extension-header chains"


def test_user_profile_edges_are_generated() -> None:
    parser = load("custom-gre")
    report = Fuzzer(parser, seed=5).run(count=800)
    vendor = parser.graph.by_name["vendor"]
    into = [i for i, e in enumerate(parser.graph.edges) if e.target == vendor]
    assert into and all(report.coverage.edges[i] for i in into)
    assert {600, 601, 602} & set(report.coverage.ptypes)


def test_same_seed_same_run() -> None:
    a = Fuzzer(load("os+ports"), seed=9).run(count=600)
    b = Fuzzer(load("os+ports"), seed=9).run(count=600)
    assert a.summary() == b.summary()
    assert a.coverage.paths == b.coverage.paths


# ------------------------------------------------------------ generation


def test_generated_packets_follow_the_graph() -> None:
    parser = load("os+ports")
    model = GraphModel(parser)
    builder = PacketBuilder(model)
    src = RandomSource(__import__("random").Random(3))
    crossed = 0
    for _ in range(300):
        gen = builder.build(src, target=600, limit=760, deep=True)
        res = parser.parse(gen.data)
        laid = [(h.nid, h.offset) for h in gen.headers]
        got = list(zip(res.nodes, (h.offset for h in res.headers)))
        assert got[: len(laid)] == laid  # the parser walks what the builder laid out
        last = res.headers[-1]
        crossed += last.offset + last.length > parser.window  # the headers cross the window
    assert crossed > 50


def test_model_reachability_follows_runtime_config() -> None:
    plain = GraphModel(load("os+ports", vxlan_ports=[], geneve_ports=[]))
    ports = GraphModel(load("os+ports"))
    vxlan = plain.graph.by_name["vxlan"]
    assert vxlan not in plain.reachable_nodes and vxlan in ports.reachable_nodes
    dvm = GraphModel(load("os+ports+dvm"))
    names = {dvm.edge_name(e) for e in dvm.reachable_edges}
    assert "eth -[0x8100]-> stag" in names and "eth -[0x8100]-> vlan" not in names


# ------------------------------------------------------------ invariants


def test_depth_is_not_cached_across_packet_lengths() -> None:
    # Found by the fuzzer: the result cache keyed a cut packet's result by its path
    # only, so a second packet cut inside the same header got the first one's depth.
    parser = load("os+ports")
    pkt = bytes(Ether() / IP() / UDP() / Raw(bytes(20)))
    for n in (30, 31, 38, 40, 0, 13, 14):
        assert parser.parse(pkt[:n]).depth == Parser(parser.graph).parse(pkt[:n]).depth
        assert parser.parse(pkt[:n]).depth == min(n, 42)


def test_invariants_hold_on_intel_edge_cases() -> None:
    parser = load("os+ports")
    checker = Checker(parser)
    tagged = bytes(Ether(type=0x88A8) / Dot1Q(vlan=3, type=0x8100) / Dot1Q() / IP() / UDP())
    # cut after 15 bytes: the tag is incomplete, ETYPE_OL@16 is past the end (golden)
    res, _, fails = checker.check(tagged[:15])
    assert not fails and res is not None and (9, 16) in res.po
    # a header starting exactly at the end of the packet is still walked (golden)
    res, _, fails = checker.check(tagged[:18])
    assert not fails and res is not None and res.headers[-1].offset == 18
    # caveat 3: UDP starts past byte 504, typed by a next-header field inside the window
    first = bytes([0, 55]) + bytes(446)  # hop-by-hop at 54, (55 + 1) * 8 bytes, then another
    last = bytes([17, 0]) + bytes(6)  # at 502: its next header (UDP) is byte 502
    data = bytes(Ether() / IPv6(nh=0, plen=0)) + first + last + bytes(UDP(dport=53)) + bytes(60)
    res, ref, fails = checker.check(data)
    assert not fails, fails
    assert res is not None and res.status == "window" and (53, 510) in res.po


class _Buggy(Parser):
    """A parser with a planted bug, to show that the invariants catch it."""

    bug = ""

    def parse(self, data: bytes) -> ParseResult:
        res = super().parse(data)
        n = len(data)
        if self.bug == "window" and n > self.window and data[-1] & 1:
            return res._replace(flags=res.flags + ("odd_tail",))
        if self.bug == "depth" and n >= 100:
            return res._replace(depth=res.depth + 1)
        if self.bug == "po" and n >= 100 and res.po:
            return res._replace(po=res.po[:-1])
        if self.bug == "status" and res.status == "truncated":
            return res._replace(status="ok")
        if self.bug == "ptype" and res.ptype == 24:
            return res._replace(ptype=999)
        if self.bug == "offset" and res.po:
            pid, off = res.po[-1]
            return res._replace(po=res.po[:-1] + ((pid, n + 70),))
        if self.bug == "crash" and n % 61 == 17:
            raise KeyError("boom")
        return res


@pytest.mark.parametrize(
    "bug, invariant",
    [
        ("window", "window"),
        ("depth", "well_formed"),
        ("po", "differential"),
        ("status", "status"),
        ("ptype", "ptype_declared"),
        ("offset", "differential"),
        ("crash", "exception"),
    ],
)
def test_invariants_catch_planted_bugs(bug: str, invariant: str) -> None:
    base = load("os+ports")

    class Bug(_Buggy):
        pass

    Bug.bug = bug
    parser = Bug(base.graph, base.window)
    report = Fuzzer(parser, seed=1, max_findings=2, shrink_budget=300).run(count=500)
    assert report.failures > 0
    assert invariant in report.failed_invariants
    assert any(f.invariant == invariant for f in report.findings)
    assert set(report.failed_invariants) <= set(INVARIANTS)


def test_a_finding_that_needs_earlier_packets_says_so() -> None:
    base = load("os+ports")

    class Sticky(Parser):
        """Remembers a long packet and then breaks short ones: state across packets."""

        seen = False

        def parse(self, data: bytes) -> ParseResult:
            res = super().parse(data)
            if len(data) >= 300:
                self.seen = True
            elif len(data) < 20 and self.seen:
                return res._replace(flags=(*res.flags, "sticky"))
            return res

    report = Fuzzer(Sticky(base.graph, base.window), seed=2, max_findings=1).run(count=500)
    [finding] = report.findings
    assert finding.invariant == "deterministic" and len(finding.data) < 20
    assert finding.message.endswith(
        "(only after earlier packets: a fresh parser passes; suspect its cache)"
    )


def test_po_bounds_catches_a_header_typed_past_the_window(zero_profile: Path) -> None:
    parser = Parser.load(["os-default", str(zero_profile)], window=64)
    report = Fuzzer(parser, seed=1, max_findings=1).run(count=600)
    assert report.failed_invariants.keys() == {"po_bounds"}
    f = report.findings[0]
    assert "ZERO_F@" in f.message and "past the 64-byte window" in f.message
    assert len(f.data) < f.original_len
    # the same profile is clean when the window holds the whole packet
    assert Fuzzer(Parser.load(["os-default", str(zero_profile)]), seed=1).run(300).failures == 0


def test_reference_walk_agrees_on_the_golden_packets(data_dir: Path) -> None:
    parser = load("comms+ports", vxlan_ports=[4789, 8472])
    checker = Checker(parser)
    ref = RefWalker(parser.package, parser.graph.config.ports, window=parser.window)
    with open(data_dir / "e810-parser-golden.jsonl") as f:
        rows = [json.loads(line) for line in f]
    for row in rows[::3]:
        data = bytes.fromhex(row["hex"])
        _, _, fails = checker.check(data)
        assert not fails, (row["label"], fails)
        assert ref.walk(data).ptype == parser.parse(data).ptype


# ------------------------------------------------------------ shrinking


def test_shrink_finds_the_fewest_bytes() -> None:
    def fails(d: bytes) -> bool:
        return len(d) >= 40 and b"\x47" in d

    data = bytes(range(200))
    small = shrink(data, fails)
    assert len(small) == 40 and b"\x47" in small
    assert small.count(0) == 39  # everything that does not matter is zeroed


def test_findings_are_shrunk_saved_and_replayed(tmp_path: Path) -> None:
    base = load("os+ports")

    class Bug(_Buggy):
        bug = "po"

    parser = Bug(base.graph, base.window)
    report = Fuzzer(parser, seed=3, max_findings=1).run(count=400)
    [finding] = report.findings
    assert finding.invariant == "differential" and len(finding.data) == 100
    paths = save_findings(tmp_path, report.findings, parser_config(base), seed=3)
    assert [p.name for p in paths] == ["001-differential.json"]
    assert (tmp_path / "001-differential.pcap").exists()
    desc = json.loads(paths[0].read_text())
    assert desc["invariant"] == "differential" and desc["len"] == 100
    assert desc["config"]["ports"] == {"geneve": [6081], "vxlan": [4789, 8472]}
    # replay rebuilds the real parser from the saved configuration: the bug is not in it
    [again] = replay(tmp_path)
    assert not again.still_fails


# ------------------------------------------------------------ the command


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "fuzz", "--count", "400", "--json", "--vxlan-port", "4789", "--seed", "4"
    )
    assert code == 0
    [line] = out.splitlines()
    summary = json.loads(line)
    assert list(summary) == [
        "packets",
        "failures",
        "edges_covered",
        "edges_total",
        "ptypes_reached",
        "max_depth",
        "no_ptype_paths",
    ]
    assert summary["packets"] >= 400 and summary["failures"] == 0


def test_cli_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fuzz", "--count", "300", "--profile", "comms", "--dvm")
    assert code == 0
    assert "ICE COMMS Package 1.3.37.0; window 504 bytes; options dvm; seed 1" in out
    for word in ("packets", "failures  0", "nodes", "edges", "PTYPEs reached", "deepest offset"):
        assert word in out
    assert "  eth " in out and "0x8100->stag " in out  # edges exercised, per node
    assert "20 deepest of" in out
    code, out, _ = run(capsys, "fuzz", "--count", "300", "-v")
    assert code == 0 and "-v lists them all" not in out


def test_cli_finds_saves_and_replays(
    zero_profile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "findings"
    args = ["fuzz", "--window", "64", "--profile", str(zero_profile), "--count", "500"]
    code, out, _ = run(capsys, *args, "--out", str(out_dir))
    assert code == 1 and "po_bounds" in out and f"--replay {out_dir}" in out
    assert sorted(p.suffix for p in out_dir.iterdir()) == [".json", ".pcap"]
    code, out, _ = run(capsys, "fuzz", "--replay", str(out_dir))
    assert code == 1 and "001-po_bounds: still fails: po_bounds" in out
    code, out, _ = run(capsys, "fuzz", "--replay", str(out_dir), "--json")
    assert code == 1 and json.loads(out)["failures"] == 1


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "fuzz", "--count", "5", "--seconds", "1")[0] == 2
    assert run(capsys, "fuzz", "--count", "0")[0] == 2
    assert run(capsys, "fuzz", "--replay", str(tmp_path / "nope"))[0] == 2
    bad = tmp_path / "bad.ddp"
    bad.write_text("protocol {")
    code, _, err = run(capsys, "fuzz", "--profile", str(bad), "--count", "10")
    assert code == 3 and f"{bad}:1:10" in err


def test_cli_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fuzz", "--seconds", "0.5", "--json")
    assert code == 0 and json.loads(out)["packets"] > 50


# ----------------------------------------------- the public Hypothesis strategies

STRATEGY_PARSER = Parser.load(["comms", "examples/custom-gre.ddp"], vxlan_ports=[4789])
STRATEGY_CHECKER = Checker(STRATEGY_PARSER)
FAST = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FAST
@given(packets(STRATEGY_PARSER))
def test_strategy_packets_keep_the_invariants(data: bytes) -> None:
    assert len(data) <= STRATEGY_PARSER.window
    assert STRATEGY_CHECKER.check(data)[2] == []


@FAST
@given(mutated_packets(STRATEGY_PARSER))
def test_strategy_mutants_keep_the_invariants(data: bytes) -> None:
    assert len(data) <= STRATEGY_PARSER.window
    assert STRATEGY_CHECKER.check(data)[2] == []


@FAST
@given(any_packets(STRATEGY_PARSER, max_size=700))
def test_strategy_past_the_window(data: bytes) -> None:
    assert len(data) <= 700
    assert STRATEGY_CHECKER.check(data)[2] == []


@FAST
@given(generated(STRATEGY_PARSER, deep=True))
def test_strategy_generated_headers(gen: object) -> None:
    data = gen.data  # type: ignore[attr-defined]
    res = STRATEGY_PARSER.parse(data)
    assert res.headers[0].offset == 0 and len(data) <= STRATEGY_PARSER.window

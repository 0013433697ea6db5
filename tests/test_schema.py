"""The JSON Schemas of the --json outputs, checked against real output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e810pipe.cli import main, make_argparser
from e810pipe.schema import NAMES, check_lines, load_schema, validator

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
RULES = """\
port config all rxq 8
port config 0 udp_tunnel_port add vxlan 4789
flow create 0 pattern eth / ipv4 / udp / vxlan vni is 3267157 / end \
actions queue index 3 / mark id 11 / end
flow create 0 pattern eth / ipv4 / udp dst is 5201 / end actions drop / end
flow create 0 pattern eth / ipv4 / tcp dst spec 0x9c00 dst mask 0xff00 / end actions drop / end
flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.0.0.0 / tcp / end \
actions queue index 1 / end
"""


# a port range only the ACL's TCAM takes (with the fallback placement)
ACL_RANGE = (
    "flow create 0 pattern eth / ipv4 / tcp dst spec 0x9c00 dst last 0x9cff / end "
    "actions drop / end"
)


def commands() -> set[str]:
    ap = make_argparser()
    sub = next(a for a in ap._actions if a.dest == "command")
    return set(sub.choices)  # type: ignore[arg-type]


def output(capsys: pytest.CaptureFixture[str], *argv: object) -> list[str]:
    main([str(a) for a in argv])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines
    return lines


def valid(name: str, lines: list[str]) -> None:
    assert check_lines(name, lines) == []


@pytest.mark.parametrize("name", NAMES)
def test_schemas_are_draft_2020_12(name: str) -> None:
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_parse_output_validates(capsys: pytest.CaptureFixture[str]) -> None:
    lines = output(capsys, "parse", *sorted(PCAPS.glob("*.pcap")), "--json", "--vxlan-port", 4789)
    valid("parse", lines)
    assert json.loads(lines[0])["file"]
    real = sorted((ROOT / "tests/data/real").rglob("*.pcap"))[:20]
    valid("parse", output(capsys, "parse", *real, "--json", "--profile", "comms"))
    valid("parse", output(capsys, "parse", PCAPS / "gre-kinds.pcap", "--json", "--profile",
                          "examples/custom-gre.ddp"))  # fmt: skip


def test_run_output_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text(RULES)
    # the fallback placement gives the PF's rules all three engines (ice's ACL is DCF-only)
    fallback = tmp_path / "fallback.yaml"
    fallback.write_text("pipeline: {placement: fallback}\n")
    lines = output(capsys, "run", PCAPS / "mixed-tunnels.pcap", PCAPS / "vxlan.pcap",
                   "--rules", fallback, "--rules", rules, "--cmd", ACL_RANGE, "--json")  # fmt: skip
    valid("run", lines)
    rows = [json.loads(line) for line in lines]
    assert any(r["drop"] for r in rows) and any(r["mark"] == 11 for r in rows)
    assert {h["block"] for r in rows for h in r["hits"]} >= {"fd", "acl", "switch"}
    single = output(capsys, "run", PCAPS / "vxlan.pcap", "--rules", rules, "--json")
    valid("run", single)
    assert "file" not in json.loads(single[0])


def test_the_schemas_reject_drift() -> None:
    row = {"index": 0, "ptype": 24, "vsi": 0, "queue": 3, "drop": False, "drop_reason": None,
           "mark": None, "rss_hash": 5, "hits": [{"block": "fd", "rule": 0}]}  # fmt: skip
    v = validator("run")
    assert v.is_valid(row)
    assert not v.is_valid({**row, "extra": 1})
    assert not v.is_valid({**row, "drop": True})  # a dropped packet has no queue
    assert not v.is_valid({**row, "hits": [{"block": "rss", "rule": 0}]})
    problems = check_lines("run", [json.dumps(row), "{", json.dumps({**row, "queue": "3"})])
    assert problems[0].startswith("line 2: not JSON") and problems[1].startswith("line 3: queue")


def test_schema_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "fuzz"]) == 0
    assert json.loads(capsys.readouterr().out)["title"].startswith("e810pipe fuzz --json")
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(output(capsys, "parse", PCAPS / "vxlan.pcap", "--json")) + "\n")
    assert main(["schema", "parse", "--check", str(good)]) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"index": -1}\n')
    assert main(["schema", "parse", "--check", str(bad)]) == 1
    assert "line 1:" in capsys.readouterr().out


@pytest.mark.skipif("check" not in commands(), reason="no `check` command in this tree")
def test_check_output_validates(capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = sorted((ROOT / "scenarios").rglob("*.yaml"))
    assert scenarios
    main(["check", *map(str, scenarios), "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert lines
    valid("check", lines)


@pytest.mark.skipif("fuzz" not in commands(), reason="no `fuzz` command in this tree")
def test_fuzz_output_validates(capsys: pytest.CaptureFixture[str]) -> None:
    main(["fuzz", "--count", "200", "--json", "--seed", "3"])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    valid("fuzz", lines)
    assert json.loads(lines[0])["packets"] >= 200


def test_flow_validate_output_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text(RULES + "flow create 0 pattern eth / ipv4 / udp / end actions drop / end\n")
    orbit = ROOT / "tests/data/vendor/orbit.ddp"
    orbit_rule = (
        "flow create 0 pattern eth / ipv4 / gre / orbit ring is 5 / ipv4 / udp / end "
        "actions queue index 5 / end"
    )
    assert main(["flow", "validate", "--rules", str(rules), "--profile", str(orbit),
                 "--cmd", orbit_rule, "--json", "--analyze"]) == 5  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    valid("flow-validate", lines)
    rows = [json.loads(line) for line in lines]
    assert [r["kind"] for r in rows][-1] == "summary" and rows[-1]["rejected"] == 1
    cmds = [r for r in rows if r["kind"] == "command"]
    assert [r["ok"] for r in cmds] == [True] * 6 + [False, True]
    assert cmds[-1]["raw_forms"][0]["ptype"] == 612 and cmds[1]["raw_forms"] == []
    assert any(r["kind"] == "finding" for r in rows)


def test_profile_check_output_validates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ddp"
    bad.write_text("ptype 700 X: mac foo;\n")
    profiles = [ROOT / "tests/data/vendor/orbit.ddp", ROOT / "profiles/examples/custom-gre.ddp"]
    assert main(["profile", "check", "--json", *map(str, profiles), str(bad)]) == 3
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    valid("profile-check", lines)
    assert json.loads(lines[2])["error"]["line"] == 1

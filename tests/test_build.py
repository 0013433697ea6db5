"""The device builder is the one place that builds a pipeline from options."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import e810pipe
from e810pipe.build import profile_stack, summarise_created
from e810pipe.cli import main

PKG = Path(e810pipe.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            names.add(("." * node.level) + mod)
            if node.level and not mod:
                names.update("." + a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_module_imports_the_command_line() -> None:
    offenders = [
        p.name
        for p in PKG.glob("*.py")
        if p.name not in ("cli.py", "__main__.py") and ({".cli", "e810pipe.cli"} & _imports(p))
    ]
    assert offenders == []


def test_profile_stack_puts_one_stock_package_first() -> None:
    assert profile_stack(None) == ["os-default"]
    assert profile_stack(["x.ddp", "comms"]) == ["comms", "x.ddp"]


def _run(capsys: pytest.CaptureFixture[str], tmp_path: Path, rules: int, *extra: str) -> list[str]:
    text = tmp_path / "r.txt"
    lines = ["port config all rxq 4", "port config all rss all"]
    lines += [
        f"flow create 0 pattern eth / ipv4 src is 10.0.0.{i} / udp / end "
        f"actions queue index {i % 4} / end"
        for i in range(rules)
    ]
    text.write_text("\n".join(lines) + "\n")
    pcap = Path(__file__).parents[1] / "pcaps" / "vxlan.pcap"
    assert main(["run", str(pcap), "--rules", str(text), *extra]) == 0
    return [x for x in capsys.readouterr().out.splitlines() if x.startswith("# ")]


def test_many_created_rules_are_summed_up_when_not_on_a_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    few = _run(capsys, tmp_path, 3)
    assert few[:3] == [f"# Flow rule #{i} created (switch)" for i in range(3)]
    many = _run(capsys, tmp_path, 40)
    assert many[0] == "# 40 flow rule(s) created (switch 40)"
    assert not any("Flow rule #" in x for x in many)
    quiet = _run(capsys, tmp_path, 3, "-q")
    assert quiet[0] == "# 3 flow rule(s) created (switch 3)"


def test_summing_up_keeps_the_other_answers() -> None:
    lines = ["Flow rule #0 created (fd)", "Flow rule #1 destroyed", "Flow rule #7 created (acl)"]
    assert summarise_created(lines) == [
        "Flow rule #1 destroyed",
        "2 flow rule(s) created (acl 1, fd 1)",
    ]
    assert summarise_created(["Flow rule #1 destroyed"]) == ["Flow rule #1 destroyed"]

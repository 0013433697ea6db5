"""The device builder is the one place that builds a pipeline from options."""

from __future__ import annotations

import ast
from pathlib import Path

import e810pipe
from e810pipe.build import profile_stack

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

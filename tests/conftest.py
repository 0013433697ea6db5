from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Print the DTS conformance score per suite and the failing case ids."""
    import sys

    mod = sys.modules.get("test_conformance")
    if mod is None or not getattr(mod, "RESULTS", None):
        return
    terminalreporter.section("DTS conformance (tests/data/dts)")
    for line in mod.pytest_terminal_summary_lines():
        if line.startswith("  FAIL"):
            terminalreporter.write_line(line[:160])
        else:
            terminalreporter.write_line(line)

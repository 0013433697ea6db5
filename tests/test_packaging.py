"""Packaging: the licence files in the wheel and sdist, one version, the extras."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import e810pipe

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_version_is_written_once() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["hatch"]["version"]["path"] == "e810pipe/__init__.py"
    assert re.fullmatch(r"\d+\.\d+\.\d+", e810pipe.__version__)


def test_extras_and_licence_metadata() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    assert any(d.startswith("dask[distributed]") for d in extras["dask"])
    assert any(d.startswith("hypothesis") for d in extras["fuzz"])
    assert any(d.startswith("jsonschema") for d in extras["schema"])
    assert meta["license"] == {"text": "Apache-2.0"}
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    notice = (ROOT / "NOTICE").read_text()
    for licence in ("BSD-3-Clause", "MPL-2.0"):
        assert licence in notice


@pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import hatchling"], capture_output=True).returncode,
    reason="hatchling (the test extra) is not installed",
)
def test_wheel_and_sdist_ship_the_licences(tmp_path: Path) -> None:
    for kind in ("wheel", "sdist"):
        subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", kind, "-d", str(tmp_path)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    (whl,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith("dist-info/METADATA"))).decode()
    assert any(n.endswith("dist-info/licenses/LICENSE") for n in names)
    assert any(n.endswith("dist-info/licenses/NOTICE") for n in names)
    assert "\nLicense: Apache-2.0\n" in meta  # what `pip show` prints, with any pip
    for extra in ("dask", "fuzz", "schema"):
        assert f"Provides-Extra: {extra}" in meta
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as t:
        members = {m.name.split("/", 1)[1] for m in t.getmembers() if "/" in m.name}
    assert {"LICENSE", "NOTICE", "tests/data/real/SOURCES.md"} <= members

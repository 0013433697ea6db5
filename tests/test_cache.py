"""The on-disk cache: compiled packages are reused only while their sources are unchanged,
damage is ignored, and E810PIPE_NO_CACHE turns it off."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from e810pipe import cache
from e810pipe.errors import ProfileError
from e810pipe.package import load_package
from e810pipe.resources import profiles_dir

EXAMPLE = profiles_dir() / "examples" / "custom-gre.ddp"


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("E810PIPE_CACHE_DIR", str(root))
    monkeypatch.delenv("E810PIPE_NO_CACHE", raising=False)
    return root


def pickles(root: Path) -> list[Path]:
    return sorted(root.glob("package-*.pickle"))


def same(a: object, b: object) -> bool:
    return a == b


def test_a_cached_package_equals_a_fresh_one(cache_root: Path) -> None:
    first = load_package(["comms"])
    assert len(pickles(cache_root)) == 1
    again = load_package(["comms"])
    assert again is not first and same(again, first)
    assert again.title == first.title and again.ptypes == first.ptypes


def test_a_changed_profile_is_reloaded(cache_root: Path, tmp_path: Path) -> None:
    prof = tmp_path / "mine.ddp"
    shutil.copy(EXAMPLE, prof)
    before = load_package(["os-default", str(prof)])
    text = prof.read_text()
    # a comment changes nothing in the package, but the cache must still notice it
    prof.write_text(text + "\n# edited\n")
    after = load_package(["os-default", str(prof)])
    assert after.texts[str(prof)].endswith("# edited\n")
    assert not before.texts[str(prof)].endswith("# edited\n")
    # a broken edit gives the error, not the cached package
    prof.write_text(text + "\nprotocol {\n")
    with pytest.raises(ProfileError) as err:
        load_package(["os-default", str(prof)])
    assert str(prof) in str(err.value)


def test_a_damaged_cache_file_is_ignored_and_replaced(cache_root: Path) -> None:
    good = load_package(["os-default"])
    (path,) = pickles(cache_root)
    for junk in (b"", b"not a pickle", pickle.dumps(("wrong", "shape")), path.read_bytes()[:99]):
        path.write_bytes(junk)
        assert same(load_package(["os-default"]), good)
        assert cache.load(path.name) is not None  # rewritten whole


def test_no_cache_env_var_and_unwritable_dir(
    cache_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("E810PIPE_NO_CACHE", "1")
    load_package(["os-default"])
    assert not cache_root.exists()
    monkeypatch.setenv("E810PIPE_NO_CACHE", "0")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("E810PIPE_CACHE_DIR", str(blocker / "sub"))
    assert cache.cache_dir() is None
    load_package(["os-default"])  # still works


def test_run_does_not_import_scapy_or_lark_when_cached(cache_root: Path, tmp_path: Path) -> None:
    pcap = Path(__file__).parents[1] / "pcaps" / "vxlan.pcap"
    code = (
        "import sys, e810pipe.cli as c\n"
        f"c.main(['run', {str(pcap)!r}, '--json'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('scapy', 'lark', 'yaml'))\n"
        "sys.stderr.write(repr(bad))\n"
    )
    env = {
        "E810PIPE_CACHE_DIR": str(cache_root),
        "PYTHONPATH": str(Path(cache.__file__).parents[1]),
    }
    for _ in range(2):  # the first run fills the cache (and may import Lark)
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
    assert done.stderr == "[]"

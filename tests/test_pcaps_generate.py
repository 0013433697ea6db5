"""The bundled captures under pcaps/: reproducible from pcaps/generate.py, and parseable.

The generator runs into a temporary directory and its output must be byte-identical to
the committed files, so a capture cannot drift from the script that documents it. If
a change is intended, rerun ``python pcaps/generate.py`` and commit the captures.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import scapy

from e810pipe.parser import STATUS_OK, Parser, ParseResult
from e810pipe.pcapio import iter_packets

ROOT = Path(__file__).resolve().parents[1]
PCAPS = ROOT / "pcaps"
GENERATOR = PCAPS / "generate.py"
CAPTURES = (
    "mixed-tunnels.pcap",
    "gre-kinds.pcap",
    "vxlan.pcap",
    "mpls.pcap",
    "geneve-gtpu.pcap",
)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pcaps")
    proc = subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out)],
        cwd=out,  # not the checkout: the script must find e810pipe by itself
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def mixed() -> list[bytes]:
    return [p.data for p in iter_packets(PCAPS / "mixed-tunnels.pcap")]


def test_generator_writes_exactly_the_bundled_captures(generated: Path) -> None:
    assert sorted(p.name for p in generated.iterdir()) == sorted(CAPTURES)
    # Every bundled capture comes from the generator: no orphans that nothing rebuilds.
    assert sorted(p.name for p in PCAPS.glob("*.pcap*")) == sorted(CAPTURES)


@pytest.mark.parametrize("name", CAPTURES)
def test_capture_matches_generator(generated: Path, name: str) -> None:
    committed = (PCAPS / name).read_bytes()
    fresh = (generated / name).read_bytes()
    assert fresh == committed, (
        f"pcaps/{name} differs from what pcaps/generate.py produces now "
        f"(Scapy {scapy.VERSION}); if the change is intended, run "
        "`python pcaps/generate.py` and commit the captures"
    )


def test_mixed_tunnels_parses_without_exception(mixed: list[bytes]) -> None:
    assert len(mixed) >= 1500
    parser = Parser.load(["os-default"], vxlan_ports=[4789], geneve_ports=[6081])
    for i, data in enumerate(mixed):
        try:
            res = parser.parse(data)
        except Exception as exc:  # pragma: no cover - the failure report
            pytest.fail(f"packet {i} ({len(data)} bytes, {data[:64].hex()}...): {exc!r}")
        assert isinstance(res, ParseResult)
        assert res.headers and res.headers[0].name == "eth"


def test_mixed_tunnels_parses_cleanly(mixed: list[bytes]) -> None:
    """Well-formed packets: every walk reaches a terminal, and the tunnels are seen."""
    parser = Parser.load(["os-default"], vxlan_ports=[4789], geneve_ports=[6081])
    results = [parser.parse(d) for d in mixed]
    statuses = Counter(r.status for r in results)
    assert statuses == {STATUS_OK: len(mixed)}, statuses
    names = Counter(r.ptype_name for r in results)
    assert "UNKNOWN" not in names
    tunneled = sum(n for name, n in names.items() if "_TUN_" in name)
    assert tunneled >= len(mixed) // 5, names
    assert any("_TUN_MAC_" in name for name in names)  # VXLAN, GENEVE, NVGRE
    assert any("FRAG" in name for name in names)

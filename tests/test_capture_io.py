"""Captures in and out: `-` for standard input, `trace --packet`, `run --annotate`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from e810pipe.cli import main
from e810pipe.pcapio import PcapngWriter, PcapWriter, iter_packets, write_pcap

ROOT = Path(__file__).resolve().parent.parent
RULES = [
    "port config all rxq 16",
    "flow create 0 pattern eth / ipv4 / udp dst is 53 / end "
    "actions queue index 5 / mark id 9 / end",
    "flow create 0 pattern eth / ipv4 / udp dst is 54 / end actions drop / end",
]
PACKETS = [bytes(Ether() / IP(dst="10.0.0.1") / UDP(dport=d)) for d in (53, 54, 55, 53)]


def cli(*argv: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "e810pipe", *argv],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )


def test_a_capture_from_standard_input(tmp_path: Path) -> None:
    cap = tmp_path / "in.pcap"
    write_pcap(cap, PACKETS)
    data = cap.read_bytes()
    from_file = cli("run", str(cap), "--json", *sum((["--cmd", c] for c in RULES), []))
    from_stdin = cli("run", "-", "--json", *sum((["--cmd", c] for c in RULES), []), stdin=data)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout and from_stdin.stdout.count(b"\n") == 4
    # with workers too: the parent reads the stream and ships the packets
    par = cli("parse", "-", "--json", "--workers", "2", stdin=data)
    assert par.returncode == 0 and par.stdout == cli("parse", str(cap), "--json").stdout
    bad = cli("parse", "-", stdin=b"not a capture")
    assert bad.returncode == 4
    assert b"e810pipe: standard input: file header, byte offset 0: not a pcap" in bad.stderr


def test_trace_takes_a_packet_in_hex_or_as_layers(capsys: pytest.CaptureFixture[str]) -> None:
    cmds = sum((["--cmd", c] for c in RULES), [])
    assert main(["trace", "--packet", PACKETS[0].hex(), *cmds]) == 0
    by_hex = capsys.readouterr().out
    assert "Final: VSI pf0 (number 0), queue 5" in by_hex and "mark 9" in by_hex
    spec = "Ether()/IP(dst='10.0.0.1')/UDP(dport=53)"
    assert main(["trace", "--packet", spec, *cmds]) == 0
    by_spec = capsys.readouterr().out
    final = [ln for ln in by_hex.splitlines() if ln.startswith(("Final", "       mark"))]
    assert final == [ln for ln in by_spec.splitlines() if ln.startswith(("Final", "       mark"))]
    # names are never looked up; a capture and --packet exclude each other
    assert main(["trace", "--packet", "Ether()/IP(dst='www.example.com')"]) == 2
    assert "names are not looked up" in capsys.readouterr().err
    assert main(["trace"]) == 2
    assert "give a capture" in capsys.readouterr().err


def test_annotate_writes_each_decision_as_a_packet_comment(tmp_path: Path) -> None:
    cap = tmp_path / "in.pcap"
    with PcapWriter(cap) as w:
        for i, p in enumerate(PACKETS):
            w.write(p, 1_700_000_000 + i + 0.25)
    out = tmp_path / "out.pcapng"
    cmds = sum((["--cmd", c] for c in RULES), [])
    assert main(["run", str(cap), "--annotate", str(out), *cmds]) == 0
    got = list(iter_packets(out))
    assert [p.data for p in got] == PACKETS
    assert [p.ts for p in got] == [1_700_000_000 + i + 0.25 for i in range(4)]
    if shutil.which("tshark"):
        res = subprocess.run(
            ["tshark", "-r", str(out), "-Y", 'frame.comment contains "queue=5"', "-T", "fields",
             "-e", "frame.number", "-e", "frame.comment"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        rows = [ln.split("\t") for ln in res.stdout.splitlines()]
        assert [r[0] for r in rows] == ["1", "4"], res.stderr
        assert rows[0][1].startswith("queue=5 vsi=pf0 mark=9 ptype=24 ")
        res = subprocess.run(
            ["tshark", "-r", str(out), "-T", "fields", "-e", "frame.comment"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert res.stdout.splitlines()[1].startswith("drop ptype=24 ")
    # --workers writes the same file
    out2 = tmp_path / "out2.pcapng"
    assert main(["run", str(cap), "--annotate", str(out2), "--workers", "2", *cmds]) == 0
    assert out2.read_bytes() == out.read_bytes()


def test_the_pcapng_writer_ends_on_whole_blocks(tmp_path: Path) -> None:
    path = tmp_path / "x.pcapng"
    with PcapngWriter(path) as w:
        w.write(b"\x00" * 61, 1.5, comment="odd lengths pad")
        w.write(b"\x11" * 64, 2.0)
    data = path.read_bytes()
    assert len(data) % 4 == 0
    assert [(p.data, p.ts) for p in iter_packets(path)] == [
        (b"\x00" * 61, 1.5),
        (b"\x11" * 64, 2.0),
    ]

"""The progress bar of `run`: on a terminal only, with packets/s, off with --quiet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from e810pipe import progress
from e810pipe.cli import main
from e810pipe.pcapio import write_pcap
from e810pipe.progress import Progress, progress_for


class Tty(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bar_line_shows_share_rate_and_eta() -> None:
    clock = Clock()
    out = Tty()
    bar = Progress(out, 24 + 1000 * 100, delay=0.5, interval=0.2, clock=clock)
    for _ in range(200):
        bar.advance(1, 100)
    assert out.getvalue() == ""  # nothing before the delay
    clock.now += 2.0
    for _ in range(300):  # crosses a clock check (every 256 packets)
        bar.advance(1, 100)
    text = out.getvalue()
    assert text.startswith("\r[") and text.endswith("\x1b[K")
    assert " 26%  256 packets  128 packets/s  ETA 0:06" in text  # drawn at packet 256
    assert bar.line().endswith(" 50%  500 packets  250 packets/s  ETA 0:02")
    bar.close()
    assert out.getvalue().endswith("\r\x1b[K")  # erased at the end


def test_bar_without_a_known_size() -> None:
    clock = Clock()
    bar = Progress(Tty(), None, clock=clock)
    bar.packets = 1234
    clock.now += 1
    assert bar.line() == "1,234 packets  1,234 packets/s"


def test_bar_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    f = tmp_path / "x.pcap"
    f.write_bytes(bytes(1000))
    monkeypatch.delenv("TERM", raising=False)
    assert progress_for([str(f)], io.StringIO()) is None
    assert progress_for([str(f)], Tty(), quiet=True) is None
    bar = progress_for([str(f)], Tty())
    assert bar is not None and bar.total == 1000
    monkeypatch.setenv("TERM", "dumb")
    assert progress_for([str(f)], Tty()) is None


def _write(path: Path, copies: int) -> Path:
    pkts = [
        bytes(Ether() / IP(src=f"10.0.0.{i}") / TCP(sport=1000 + i, dport=80)) for i in range(8)
    ] + [bytes(Ether() / IP() / UDP(sport=2000 + i, dport=53)) for i in range(8)]
    write_pcap(path, pkts * copies)
    return path


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write(tmp_path_factory.mktemp("progress") / "many.pcap", 2000)  # 32,000 packets


@pytest.fixture(scope="module")
def long_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 400,000 packets: the run lasts well past the bar's half-second delay
    return _write(tmp_path_factory.mktemp("progress") / "long.pcap", 25_000)


def test_run_draws_on_a_tty_stderr(
    capture: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    monkeypatch.delenv("TERM", raising=False)
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["run", str(capture)]) == 0
    out = capsys.readouterr().out
    text = err.getvalue()
    assert "packets/s" in text and "100%" in text and "32,000 packets" in text
    assert text.endswith("\r\x1b[K")
    assert "packets: 32000 read" in out and "\x1b" not in out and "packets/s" not in out
    # --quiet: nothing on stderr
    err2 = Tty()
    monkeypatch.setattr(sys, "stderr", err2)
    assert main(["run", str(capture), "--quiet"]) == 0
    assert err2.getvalue() == ""


def test_bar_is_erased_before_a_trace(
    capture: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    monkeypatch.delenv("TERM", raising=False)
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["run", str(capture), "--trace", "5000", "--json"]) == 0
    text = err.getvalue()
    assert "\r\x1b[KPacket 5000:" in text  # the trace starts on a clean line


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_run_in_a_pseudo_terminal(capture: Path, long_capture: Path) -> None:
    import pty

    def run(*extra: str) -> tuple[str, str]:
        master, slave = pty.openpty()
        env = {**os.environ, "TERM": "xterm"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "e810pipe", "run", str(long_capture), *extra],
            stdout=subprocess.PIPE,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        out = proc.communicate(timeout=120)[0].decode()
        os.close(master)
        assert proc.returncode == 0
        return out, b"".join(chunks).decode(errors="replace")

    out, err = run()
    assert "packets: 400000 read" in out and "\x1b" not in out
    assert "packets/s" in err and "\r[" in err and err.endswith("\r\x1b[K")
    out, err = run("--quiet")
    assert "packets: 400000 read" in out and err == ""
    # not a terminal: no bar
    proc = subprocess.run(
        [sys.executable, "-m", "e810pipe", "run", str(capture)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stderr == ""


def test_parallel_run_draws_packets_and_rate(
    capture: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    monkeypatch.delenv("TERM", raising=False)
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["run", str(capture), "--workers", "2"]) == 0
    text = err.getvalue()
    assert "32,000 packets" in text and "packets/s" in text and text.endswith("\r\x1b[K")
    assert "packets: 32000 read" in capsys.readouterr().out
    err2 = Tty()
    monkeypatch.setattr(sys, "stderr", err2)
    assert main(["run", str(capture), "--workers", "2", "-q"]) == 0
    assert err2.getvalue() == ""


def test_parse_draws_on_a_tty_stderr(
    capture: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "INTERVAL", 0.0)
    monkeypatch.delenv("TERM", raising=False)
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["parse", str(capture), "--json"]) == 0
    out = capsys.readouterr().out
    text = err.getvalue()
    assert "packets/s" in text and "100%" in text and text.endswith("\r\x1b[K")
    assert len(out.splitlines()) == 32000 and "\x1b" not in out
    err2 = Tty()
    monkeypatch.setattr(sys, "stderr", err2)
    assert main(["parse", str(capture), "--json", "-q"]) == 0
    assert err2.getvalue() == ""

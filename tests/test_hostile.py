"""Hostile and extreme inputs: a located error with a documented exit code, never an
internal error (exit 70), within bounded time and memory.

Every input is generated here. Each command runs in its own process with a wall-clock
timeout and an address-space limit (resource.setrlimit), so a regression shows as a
failed test, not as a hung or swapping machine.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e810pipe import Pipeline
from e810pipe import parser as parser_mod
from e810pipe import pipeline as pipeline_mod
from e810pipe.errors import RuleError
from e810pipe.layerspec import LayerSpecError, build
from e810pipe.parser import MAX_HEADERS, Parser
from e810pipe.pcapio import PcapWriter, iter_packets, write_pcap

ROOT = Path(__file__).resolve().parent.parent
MEMORY = 1 << 30  # address space per command: 1 GiB (e810pipe needs ~100 MB)
DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7, 130}  # README "Exit codes", minus 70
ETH_IPV4 = bytes.fromhex(
    "000000000002000000000001080045000028000100004011f97dc0000201c0000202"
    "04d2003500140000" + "00" * 12
)


def _limits(memory: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def e810(
    *argv: str | Path,
    cwd: Path,
    timeout: float = 60,
    memory: int = MEMORY,
    stdout: int | None = subprocess.PIPE,
) -> subprocess.CompletedProcess:
    """Run the command line in a child process, bounded in time and memory."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), E810PIPE_DEBUG="")
    env.pop("E810PIPE_DEBUG")
    return subprocess.run(
        [sys.executable, "-m", "e810pipe", *map(str, argv)],
        cwd=cwd,
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        preexec_fn=_limits(memory),
    )


def located(proc: subprocess.CompletedProcess, code: int, where: str) -> str:
    """Assert exit `code` and an error message starting `e810pipe: WHERE`."""
    err = proc.stderr
    assert proc.returncode == code, (proc.returncode, err[-2000:])
    assert "internal error" not in err and "Traceback" not in err, err[-2000:]
    assert f"e810pipe: {where}" in err, err[-2000:]
    return err


@pytest.fixture
def one_pcap(tmp_path: Path) -> Path:
    path = tmp_path / "one.pcap"
    write_pcap(path, [ETH_IPV4] * 3)
    return path


# ------------------------------------------------------------------ profiles

PROTO = "proto_ids {{ X_F = 131; }}\nprotocol foo {{ fields {{ a: 8; b: 8; }} {body} }}\n"


@pytest.mark.parametrize(
    ("name", "text", "where", "message"),
    [
        (
            "long-expression",
            PROTO.format(body="length " + "+".join(["1"] * 100_000) + "; report X_F;"),
            "long-expression.ddp:2:",
            "nested too deeply",
        ),
        (
            "deep-parentheses",
            PROTO.format(body="length " + "(" * 3000 + "a+b" + ")" * 3000 + "; report X_F;"),
            "deep-parentheses.ddp:2:",
            "",
        ),
        (
            "huge-number",
            "proto_ids { X_F = " + "9" * 100_000 + "; }\n",
            "huge-number.ddp:1:19",
            "20 digits",
        ),
        (
            "negative-shift",
            PROTO.format(body="length 8 >> (0-1); report X_F;"),
            "negative-shift.ddp:2:10",
            "shift count is -1",
        ),
        (
            "field-shift",
            PROTO.format(body="length 1 << a; report X_F;"),
            "field-shift.ddp:2:10",
            "shift count depends on a field",
        ),
        (
            "far-peek",
            PROTO.format(body="report X_F; select peek(99999999999, 8) { 1 => pass; }"),
            "far-peek.ddp:2:58",
            "past any packet",
        ),
        (
            "far-report",
            PROTO.format(body="report X_F at 99999999;"),
            "far-report.ddp:2:39",
            "past any packet",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 20 and "\n" not in v else "",
)
def test_profile_problems_are_located(
    tmp_path: Path, one_pcap: Path, name: str, text: str, where: str, message: str
) -> None:
    path = tmp_path / f"{name}.ddp"
    path.write_text(text)
    check = e810("profile", "check", path.name, cwd=tmp_path)
    parse = e810("parse", one_pcap, "--profile", path.name, cwd=tmp_path)
    if not message:  # deep parentheses are fine: no error from the nesting itself
        for proc in (check, parse):
            assert proc.returncode in (0, 3) and "internal error" not in proc.stderr
        return
    # `profile check` rejects what `parse` would stumble on; both say where
    assert check.returncode == 3, check.stdout[-500:] + check.stderr[-500:]
    assert check.stdout.startswith(where) and message in check.stdout, check.stdout[:300]
    err = located(parse, 3, where)
    assert message in err
    assert len(err) < 2000  # the 100,000-term line is not echoed whole


def test_extends_reads_only_regular_profiles(tmp_path: Path, one_pcap: Path) -> None:
    (tmp_path / "zero.ddp").write_text('package "z" version 1.0 extends "/dev/zero";\nstart eth;\n')
    err = located(e810("parse", one_pcap, "--profile", "zero.ddp", cwd=tmp_path), 3, "zero.ddp:1:1")
    assert "not a regular file" in err
    secret = tmp_path / "secret.conf"
    secret.write_text("root:$6$very-secret-hash:19000:0:99999:7:::\n")
    (tmp_path / "leak.ddp").write_text(f'package "l" version 1.0 extends "{secret}";\nstart eth;\n')
    proc = e810("parse", one_pcap, "--profile", "leak.ddp", cwd=tmp_path)
    err = located(proc, 3, "leak.ddp:1:1")
    assert "not a DDP profile" in err and "very-secret" not in err + proc.stdout


def test_oversized_and_binary_profiles(tmp_path: Path, one_pcap: Path) -> None:
    big = tmp_path / "big.ddp"
    with open(big, "wb") as f:
        f.truncate((16 << 20) + 1)  # sparse: costs no disk
    err = located(e810("parse", one_pcap, "--profile", "big.ddp", cwd=tmp_path), 3, "big.ddp")
    assert "limit for a profile file" in err
    (tmp_path / "latin.ddp").write_bytes(b"proto_ids { X_F = 131; }\n# caf\xe9\n")
    err = located(
        e810("parse", one_pcap, "--profile", "latin.ddp", cwd=tmp_path), 3, "latin.ddp:2:6"
    )
    assert "not UTF-8" in err


# ---------------------------------------------------------------------- YAML


def billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + f"\nrules: *a{levels - 1}\n"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        # 500 levels: past e810pipe's limit (64), below libyaml's own (1000, PyYAML 6.0.4)
        ("rules: " + "[" * 500 + "]" * 500 + "\n", "dev.yaml:1:71", "nested too deeply"),
        (billion_laughs(), "dev.yaml:", "alias bomb"),
        ("rules: !!python/object/apply:os.system ['true']\n", "dev.yaml:1:8", "!!python/object"),
        ("rules: !include other.yaml\n", "dev.yaml:1:8", "unsupported YAML tag '!include'"),
        ("dvm: !!set {a, b}\n", "dev.yaml:1:6", "unsupported YAML tag '!!set'"),
        ("rules: [1, 2]\n---\nrules: []\n", "dev.yaml:2:1", "second YAML document"),
        ("rss: {reta: " + "7" * 5000 + "}\n", "dev.yaml:1:13", "too large"),
    ],
    ids=["deep", "alias-bomb", "python-tag", "local-tag", "set-tag", "two-documents", "big-number"],
)
def test_yaml_problems_are_located(
    tmp_path: Path, one_pcap: Path, text: str, where: str, message: str
) -> None:
    (tmp_path / "dev.yaml").write_text(text)
    proc = e810("run", one_pcap, "--rules", "dev.yaml", cwd=tmp_path, memory=512 << 20)
    assert message in located(proc, 2, where)


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2\n",
        "a: b: c\n",
        "a:\n  - x\n - y\n",
        "k: 'unterminated\n",
        "\tx: 1\n",
        "a: 1\na: 2\n",
    ],
)
def test_the_c_and_python_yaml_parsers_locate_alike(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from e810pipe import yamlfile

    if not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML without libyaml")
    seen = []
    for loader in (yaml.CSafeLoader, yaml.SafeLoader):
        monkeypatch.setattr(yamlfile, "_Loader", loader)
        with pytest.raises(yamlfile.ConfigError) as info:
            yamlfile.load("x.yaml", text)
        seen.append((info.value.line, info.value.column))
    assert seen[0] == seen[1] and seen[0][0] >= 1


def test_yaml_reads_only_regular_files(tmp_path: Path, one_pcap: Path) -> None:
    os.mkfifo(tmp_path / "fifo.yaml")  # opening a FIFO for reading would block forever
    err = located(e810("run", one_pcap, "--rules", "fifo.yaml", cwd=tmp_path), 2, "fifo.yaml")
    assert "not a regular file" in err
    (tmp_path / "bin.yaml").write_bytes(b"rules: []\n\x00\x01\x02")
    err = located(e810("run", one_pcap, "--rules", "bin.yaml", cwd=tmp_path), 2, "bin.yaml:2:1")
    assert "NUL" in err


# ------------------------------------------------------------------ scenarios

SCENARIO = "packets: [{{hex: '{hex}'{extra}}}]\nexpect: [{{{select}, queue: 0}}]\n{more}"


@pytest.mark.parametrize(
    ("fields", "where", "message"),
    [
        ({"more": "window: 0\n"}, "s.scenario.yaml:3:9", "use 14..65535"),
        ({"extra": ", count: 1000000000"}, "s.scenario.yaml:1:", "1..1000000 packets"),
        ({"select": "packet: " + "9" * 5000}, "s.scenario.yaml:2:19", "too large"),
        (
            {"select": "packets: 'x..y'"},
            "s.scenario.yaml:2:",
            "give an index, a list of indexes or a range",
        ),
    ],
)
def test_scenario_values_are_bounded(
    tmp_path: Path, fields: dict, where: str, message: str
) -> None:
    values = {"hex": ETH_IPV4.hex(), "extra": "", "select": "packet: 0", "more": "", **fields}
    (tmp_path / "s.scenario.yaml").write_text(SCENARIO.format(**values))
    assert message in located(e810("check", "s.scenario.yaml", cwd=tmp_path), 2, where)


def test_a_huge_packet_range_costs_nothing(tmp_path: Path) -> None:
    values = {"hex": ETH_IPV4.hex(), "extra": "", "select": "packets: '0..999999999999'"}
    (tmp_path / "s.scenario.yaml").write_text(SCENARIO.format(**values, more=""))
    proc = e810("check", "s.scenario.yaml", cwd=tmp_path, timeout=30, memory=512 << 20)
    assert proc.returncode in (0, 1) and "internal error" not in proc.stderr


def test_scenarios_never_quote_files_of_another_kind(tmp_path: Path) -> None:
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$very-secret-hash:19000:0:99999:7:::\n")
    for key in ("rules_files", "profiles"):
        text = f"{key}: [{secret}]\npackets: [{{hex: '{ETH_IPV4.hex()}'}}]\n"
        (tmp_path / "s.scenario.yaml").write_text(text)
        proc = e810("check", "s.scenario.yaml", cwd=tmp_path)
        err = located(proc, 2, "s.scenario.yaml:1:")
        assert "very-secret" not in err + proc.stdout


def test_scapy_specs_are_bounded(tmp_path: Path) -> None:
    spec = "Ether()" + "/Dot1Q()" * 3000
    (tmp_path / "s.scenario.yaml").write_text(
        f'packets: ["{spec}"]\nexpect: [{{packet: 0, queue: 0}}]\n'
    )
    err = located(e810("check", "s.scenario.yaml", cwd=tmp_path), 2, "s.scenario.yaml:1:")
    assert "at most 256 layers" in err or "too many layers" in err


def test_scenario_packets_never_look_names_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    real = socket.getaddrinfo

    def no_lookup(host: object, *args: object, **kwargs: object) -> object:
        try:  # a literal address is converted, not looked up
            ipaddress.ip_address(str(host))
        except ValueError:
            raise AssertionError(f"a name lookup: {host}") from None
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(socket, "gethostbyname", no_lookup)
    for spec in (
        "Ether()/IP(dst='www.example.com')/UDP()",
        "Ether()/IPv6(src='localhost')/UDP()",
        "Ether()/IPv6(dst='fe80::1%eth0')/UDP()",
        "Ether(dst='router')/IP()",
    ):
        with pytest.raises(LayerSpecError, match="names are not looked up"):
            build(spec)
    assert len(build("Ether()/IP(dst='10.0.0.1')/UDP()")) == 42


# ---------------------------------------------------------------- rules files


def test_rules_files_that_cannot_be_read(tmp_path: Path, one_pcap: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(b"flow list 0\n\x89PNG\r\n")
    err = located(e810("flow", "validate", "--rules", "bin.txt", cwd=tmp_path), 2, "bin.txt:2:1")
    assert "not UTF-8" in err
    err = located(e810("flow", "validate", "--rules", "nope.txt", cwd=tmp_path), 2, "nope.txt:")
    assert "No such file" in err
    err = located(e810("flow", "validate", "--rules", ".", cwd=tmp_path), 2, ".:")
    assert "directory" in err


def test_long_rule_lines_are_not_echoed_whole(tmp_path: Path) -> None:
    line = (
        "flow create 0 pattern eth / ipv4 dst is " + "1" * 1_000_000 + " / end actions drop / end"
    )
    (tmp_path / "r.txt").write_text(line + "\n")
    proc = e810("flow", "validate", "--rules", "r.txt", cwd=tmp_path)
    assert proc.returncode == 5
    assert len(proc.stdout) + len(proc.stderr) < 2000
    assert "999920 more characters" in proc.stdout + proc.stderr


def test_long_patterns_are_not_echoed_whole() -> None:
    # 10,000 items no packet has: the message names the first and last few
    pipe = Pipeline.load()
    with pytest.raises(RuleError) as exc:
        pipe.apply("flow create 0 pattern eth / " + "ipv4 / " * 10_000 + "end actions drop / end")
    msg = str(exc.value)
    assert len(msg) < 600, len(msg)
    assert "eth / ipv4 / ipv4" in msg and "(9989 more)" in msg


def test_scoped_ipv6_addresses_are_rejected(tmp_path: Path) -> None:
    rule = (
        "flow create 0 pattern eth / ipv6 dst is 2001:db8::1%eth0 / end actions queue index 1 / end"
    )
    proc = e810("flow", "validate", "--cmd", rule, cwd=tmp_path)
    assert proc.returncode == 5
    assert "expected an IPv6 address" in proc.stdout + proc.stderr


# -------------------------------------------------------------------- outputs


def test_output_errors_have_their_own_code(tmp_path: Path, one_pcap: Path) -> None:
    with open("/dev/full", "w") as full:
        proc = e810("parse", one_pcap, "--json", cwd=tmp_path, stdout=full.fileno())
    assert "No space left" in located(proc, 6, "standard output")
    # --split where a file is, or under a file: exit 6, not a capture-read error
    err = located(
        e810("run", one_pcap, "--split", one_pcap, cwd=tmp_path), 6, f"--split {one_pcap}"
    )
    assert "File exists" in err
    under = one_pcap / "queues"
    located(e810("run", one_pcap, "--split", under, cwd=tmp_path), 6, f"--split {under}")


def test_a_cut_write_leaves_whole_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C or a full disk in the middle of a write: the file ends on a record."""
    import e810pipe.pcapio as pcapio

    path = tmp_path / "cut.pcap"
    w = PcapWriter(path)
    for i in range(2000):  # more than one buffer's worth
        w.write(ETH_IPV4 + bytes(i % 200))
    real_write = os.write

    def half_then_interrupt(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2 + 3]))
        raise KeyboardInterrupt

    monkeypatch.setattr(pcapio.os, "write", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        for _ in range(3000):
            w.write(ETH_IPV4)
    monkeypatch.setattr(pcapio.os, "write", real_write)
    w.close()
    packets = list(iter_packets(path))  # reads to the end: no cut-off record
    size = path.stat().st_size
    assert size == 24 + sum(16 + len(p.data) for p in packets) and 0 < len(packets) < 5000


def test_ctrl_c_exits_130_with_whole_split_records(tmp_path: Path) -> None:
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)  # the capture never ends: the run waits for more packets
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "e810pipe", "run", str(fifo), "--split", "q", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_limits(MEMORY),
    )
    try:
        with open(fifo, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for i in range(500):
                data = ETH_IPV4 + bytes(i % 64)
                f.write(struct.pack("<IIII", 0, i, len(data), len(data)) + data)
            f.flush()
            assert proc.stdout is not None
            for _ in range(500):  # the run has decided every packet written so far
                assert proc.stdout.readline()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "interrupted" in err, err[-1000:]
    total = 0
    for split in sorted((tmp_path / "q").glob("*.pcap")):
        packets = list(iter_packets(split))
        total += len(packets)
        assert split.stat().st_size == 24 + sum(16 + len(p.data) for p in packets)
    assert total == 500


def test_ctrl_c_with_workers_stops_at_once(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_memory import write_capture
    finally:
        sys.path.pop(0)
    write_capture(tmp_path / "many.pcap", 150_000)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "e810pipe", "run", "many.pcap", "--workers", "2", "--split", "q"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=_limits(2 * MEMORY),
    )
    split = tmp_path / "q" / "queue-0.pcap"
    try:
        deadline = time.monotonic() + 120
        while not (split.exists() and split.stat().st_size > 1 << 20):
            assert proc.poll() is None and time.monotonic() < deadline, "no output in time"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the parent and its workers
        start = time.monotonic()
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err, err[-1000:]
    assert took < 10  # the tasks in flight are not waited for
    packets = list(iter_packets(split))
    assert 0 < len(packets) < 150_000
    assert split.stat().st_size == 24 + sum(16 + len(p.data) for p in packets)


# ----------------------------------------------------------- other commands


def test_schema_check_and_fuzz_replay_inputs(tmp_path: Path) -> None:
    (tmp_path / "bin.jsonl").write_bytes(b'{"index": 0}\n\xff\xfe\n')
    err = located(e810("schema", "parse", "--check", "bin.jsonl", cwd=tmp_path), 2, "bin.jsonl:2:1")
    assert "not UTF-8" in err
    err = located(e810("schema", "parse", "--check", "/dev/zero", cwd=tmp_path), 2, "/dev/zero")
    assert "not a regular file" in err
    found = tmp_path / "found"
    found.mkdir()
    (found / "001-x.json").write_text("{not json")
    err = located(e810("fuzz", "--replay", "found", cwd=tmp_path), 2, "found/001-x.json:1:2")
    assert "not JSON" in err
    (found / "001-x.json").write_text('{"config": {"profiles": 7}}')
    located(e810("fuzz", "--replay", "found", cwd=tmp_path), 2, "found/001-x.json")


def test_trace_past_the_end_is_reported(tmp_path: Path, one_pcap: Path) -> None:
    err = located(e810("run", one_pcap, "--trace", "999999", cwd=tmp_path), 2, "--trace 999999")
    assert "no Ethernet packet with that index" in err
    located(e810("run", one_pcap, "--trace", "-1", cwd=tmp_path), 2, "--trace -1")


def test_out_of_range_options(tmp_path: Path, one_pcap: Path) -> None:
    located(e810("run", one_pcap, "--port", "-1", cwd=tmp_path), 2, "--port -1")
    located(e810("fuzz", "--seconds", "nan", cwd=tmp_path, timeout=30), 2, "--seconds nan")
    located(e810("graph", "-o", tmp_path / "no" / "g.dot", cwd=tmp_path), 6, "-o ")
    located(e810("schema", "parse", "--check", ".", cwd=tmp_path), 2, ".: cannot read")
    err = located(e810("profile", "diff", "os-default", "/dev/zero", cwd=tmp_path), 3, "/dev/zero:")
    assert ":0:0" not in err


def test_workers_are_clamped(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from e810pipe import parallel

    args = argparse.Namespace(workers=1000, dask=None)
    backend = parallel._backend(args)
    try:
        assert backend.workers == parallel.max_workers() == 4 * (os.cpu_count() or 1)
    finally:
        backend.close()
    assert "warning: --workers 1000" in capsys.readouterr().err


@pytest.fixture
def silent_and_wrong_peers() -> Iterator[tuple[int, int]]:
    """Two local ports: one accepts and never answers, one answers with HTTP."""
    servers = [socket.create_server(("127.0.0.1", 0)) for _ in range(2)]
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve(srv: socket.socket, answer: bytes) -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            held.append(conn)
            if answer:
                try:
                    conn.sendall(answer)
                except OSError:
                    pass

    http = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" * 4
    threads = [
        threading.Thread(target=serve, args=(servers[0], b""), daemon=True),
        threading.Thread(target=serve, args=(servers[1], http), daemon=True),
    ]
    for t in threads:
        t.start()
    yield servers[0].getsockname()[1], servers[1].getsockname()[1]
    stop.set()
    for t in threads:
        t.join()
    for s in [*servers, *held]:
        s.close()


def test_dask_peers_that_do_not_answer(
    tmp_path: Path, one_pcap: Path, silent_and_wrong_peers: tuple[int, int]
) -> None:
    pytest.importorskip("dask.distributed")
    silent, wrong = silent_and_wrong_peers
    for port in (silent, wrong):
        address = f"tcp://127.0.0.1:{port}"
        start = time.monotonic()
        proc = e810(
            "run", one_pcap, "--dask", address, "--dask-timeout", "2",
            cwd=tmp_path, timeout=60, memory=4 << 30,
        )  # fmt: skip
        err = located(proc, 7, f"--dask {address}")
        assert time.monotonic() - start < 40
        if port == wrong:  # it answers with what the client reads as a huge frame
            assert "its answer is not Dask's protocol" in err, err


# ------------------------------------------------------------- bounded memory


def test_pathological_packets_parse_into_bounded_results(tmp_path: Path) -> None:
    mpls = bytes.fromhex("0000000000020000000000018847") + bytes(60_000)
    write_pcap(tmp_path / "mpls.pcap", [mpls + bytes(i) for i in range(200)])
    proc = e810("parse", "mpls.pcap", "--json", cwd=tmp_path, timeout=60, memory=512 << 20)
    assert proc.returncode == 0, proc.stderr[-1000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 200 and all('"header_limit"' in ln for ln in lines)
    res = Parser.load().parse(mpls)
    assert len(res.headers) == MAX_HEADERS and res.status == "window"


def test_the_result_cache_stays_within_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parser_mod, "CACHE_BYTES", 200_000)
    p = Parser.load()
    first = p.parse(ETH_IPV4)
    eth = bytes.fromhex("0000000000020000000000018847")
    label, bottom = bytes.fromhex("00001040"), bytes.fromhex("00001140")
    distinct = set()
    for k in range(1, 200):  # MPLS stacks of 1..199 labels, cut 0..3 bytes short
        whole = eth + label * (k - 1) + bottom + ETH_IPV4[14:34]
        for cut in range(4):
            res = p.parse(whole[: len(whole) - cut])
            distinct.add((len(res.headers), res.depth, res.status))
            assert p.parse(ETH_IPV4) is first  # in use all along: survives every change
            # each generation passes its half of the budget by at most one entry
            most = parser_mod.COST_BASE + parser_mod.COST_HEADER * MAX_HEADERS
            assert p.cache_bytes <= 200_000 + 2 * most
    assert len(distinct) > 500  # far more results than the budget holds


def test_the_hash_plans_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # each hash plan keeps its parse result alive: the plans must let go of results as
    # the parser's cache does, or memory grows with the distinct packets of a run
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import Ether

    from e810pipe import rss as rss_mod

    monkeypatch.setattr(rss_mod, "PLAN_CACHE", 8)
    pipe = Pipeline.load(cmds=["port config all rxq 16", "port config all rss all"])
    pipe.flow_cache = False
    hashed = 0
    for n in range(60):  # hop-by-hop headers of 8..480 bytes: each its own parse path
        opts = b"\x01\x04" + bytes(4 + 8 * n)
        hbh = IPv6ExtHdrHopByHop(nh=17, len=n, autopad=0, options=opts)
        hashed += pipe.process(Ether() / IPv6(nh=0) / hbh / UDP(sport=1, dport=2)).hashed
    assert hashed == 60
    (stage,) = pipe._rss_stages.values()
    assert len(stage._plans) + len(stage._plans_old) <= 2 * 8


def test_the_flow_cache_evicts_gradually(monkeypatch: pytest.MonkeyPatch) -> None:
    from e810pipe.control import Setup, configure
    from e810pipe.package import load_package

    monkeypatch.setattr(pipeline_mod, "FLOW_CACHE_SIZE", 64)
    pipe, _ = configure(load_package(["os-default"]), Setup())
    hot = ETH_IPV4
    first = pipe.process(hot)
    for sport in range(2000):
        data = bytearray(ETH_IPV4)
        data[34:36] = sport.to_bytes(2, "big")
        pipe.process(bytes(data))
        assert pipe._cached < 32 and len(pipe._old) <= 32
        if sport % 16 == 0:
            assert pipe.process(hot) is first  # a flow in use is never dropped
    assert pipe.counters.packets == 1 + 2000 + 125


def test_the_fuzzer_finds_unbounded_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    from e810pipe.fuzz import Checker

    mpls = bytes.fromhex("0000000000020000000000018847") + bytes(60_000)
    fails = Checker(Parser.load()).check(mpls)[2]
    assert not fails, fails
    monkeypatch.setattr(parser_mod, "MAX_HEADERS", 100_000)  # as the walk was before
    monkeypatch.setattr("e810pipe.refwalk.MAX_HEADERS", 100_000)
    fails = Checker(Parser.load()).check(mpls)[2]
    assert [f.invariant for f in fails] == ["bounded"], fails
    assert "budget" in fails[0].message


def test_the_console_reads_standard_input_bounded(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def console(stdin: object) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "e810pipe", "testpmd"],
            stdin=stdin, capture_output=True, text=True, env=env, timeout=60,
            preexec_fn=_limits(MEMORY),
        )  # fmt: skip

    with open("/dev/zero", "rb") as zero:  # endless, no newline, not text
        proc = console(zero)
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "e810pipe: <stdin>:1: standard input is not text (a NUL byte)" in proc.stderr
    long = tmp_path / "long.txt"
    long.write_text("flow create 0 pattern eth / ipv4 dst is " + "1" * 3_000_000 + "\nquit\n")
    with open(long) as f:
        proc = console(f)
    assert proc.returncode == 0 and len(proc.stdout) < 5000, len(proc.stdout)
    assert "<stdin>:1: a command line of 3000041 characters; at most 1048576" in proc.stdout

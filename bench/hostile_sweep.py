"""A sweep of hostile and extreme inputs over the whole command line.

    python bench/hostile_sweep.py [--only SUBSTRING] [--memory MIB] [--timeout S]
                                  [--sizes 20000,200000] [--json PATH] [--keep DIR]

Every input is generated afresh in a temporary directory. Each command runs in its
own process under ``timeout`` (wall clock) and ``prlimit --as`` (address space), and
its peak RSS is read with ``os.wait4``. A case passes when

- it ended (no hang: ``timeout`` did not fire) with the exit code the case expects,
  which is always one the README's "Exit codes" table documents; 70 (internal error)
  never passes;
- an error message names where the problem is (the case's location: ``file:line:col``,
  the option, the output, the packet index), on one line, without a traceback, and
  quotes at most ~2 KB of input;
- its peak RSS stays under the memory budget (``--rss``, default 300 MiB);
- whatever else the case checks (no secret file content echoed, split pcaps ending on a
  whole record, peak RSS flat between capture sizes).

The classes are those of the hostile-input report: memory (distinct packets,
pathological packets), unbounded reads and hangs (devices, FIFOs, alias bombs, huge
files, silent services), internal errors from input (recursion depth, huge numbers,
values out of range, unwritable outputs, non-UTF-8 text, non-Dask peers), unlocated
errors, silently accepted input, and Ctrl-C. The last line counts the failures; the
exit status is 1 if there are any.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from bench_memory import write_capture  # noqa: E402

DOCUMENTED = {0, 1, 2, 3, 4, 5, 6, 7, 130}  # README "Exit codes" (70 is a bug)
ETH_IPV4_UDP = bytes.fromhex(
    "000000000002000000000001080045000028000100004011f97dc0000201c0000202"
    "04d2003500140000" + "00" * 12
)
SECRET = "SWEEP-SECRET-7f3a"  # content of a file that is no input: never echoed


@dataclass
class Result:
    rc: int
    seconds: float
    rss: int  # bytes
    stdout: str
    stderr: str
    hung: bool


@dataclass
class Case:
    klass: str
    name: str
    argv: list[str]
    codes: set[int]  # acceptable exit codes
    where: str = ""  # regex the error message must contain (its location)
    stdin: str | None = None  # a file for standard input
    stdout: str | None = None  # a file (e.g. /dev/full) for standard output
    check: Callable[[Result], str] | None = None  # returns "" or what is wrong
    interrupt: float | None = None  # send SIGINT after this many seconds
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------ running


def run_case(case: Case, work: Path, args: argparse.Namespace) -> tuple[Result, list[str]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("E810PIPE_DEBUG", None)
    rss_path = work / f".rss-{os.getpid()}"
    rss_path.unlink(missing_ok=True)
    # GNU time forks the command itself, so its peak RSS is that process's alone (the
    # RSS a child reports after fork and exec starts at its parent's high-water mark)
    timer = ["/usr/bin/time", "-f", "%M", "-o", str(rss_path)] if TIME else []
    cmd = [
        "timeout",
        "--kill-after=5",
        str(args.timeout),
        *timer,
        "prlimit",
        f"--as={args.memory << 20}",
        "--core=0",
        "--",
        sys.executable,
        "-m",
        "e810pipe",
        *case.argv,
    ]
    out_path = work / f".out-{os.getpid()}"
    err_path = work / f".err-{os.getpid()}"
    sin = open(case.stdin, "rb") if case.stdin else subprocess.DEVNULL
    sout = open(case.stdout or out_path, "wb")
    with open(err_path, "wb") as serr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=sin, stdout=sout, stderr=serr)
        if case.interrupt is not None:
            time.sleep(case.interrupt)
            # as a terminal does: to the command and its workers (timeout -> time ->
            # prlimit, which execs python -> workers); GNU time ignores it
            for pid in _descendants(proc.pid)[1 if TIME else 0 :]:
                try:
                    os.kill(pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
    for f in (sin, sout):
        if not isinstance(f, int):
            f.close()
    rc = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss
    if TIME:
        try:
            rss = int(rss_path.read_text().split()[-1])
        except (OSError, ValueError, IndexError):
            pass
    res = Result(
        rc=rc,
        seconds=seconds,
        rss=rss * 1024,
        stdout="" if case.stdout else _tail(out_path),
        stderr=_tail(err_path),
        hung=rc in (124, 137, -9),
    )
    return res, judge(case, res, args)


TIME = os.access("/usr/bin/time", os.X_OK)


def _tail(path: Path, size: int = 100_000) -> str:
    """The last `size` bytes of a file (a run's output may be large)."""
    with open(path, "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - size))
        return f.read().decode(errors="replace")


def _descendants(pid: int) -> list[int]:
    """The processes below `pid`, parents before children."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop(0)
        try:
            kids = [int(x) for x in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except OSError:
            kids = []
        out.extend(kids)
        todo.extend(kids)
    return out


def judge(case: Case, res: Result, args: argparse.Namespace) -> list[str]:
    bad: list[str] = []
    if res.hung:
        bad.append(f"hang (no exit within {args.timeout} s)")
    elif res.rc == 70 or "internal error" in res.stderr:
        bad.append("internal error (exit 70)")
    elif res.rc not in DOCUMENTED:
        bad.append(f"exit {res.rc} is not a documented code")
    elif res.rc not in case.codes:
        bad.append(f"exit {res.rc}, expected {sorted(case.codes)}")
    if "Traceback" in res.stderr:
        bad.append("traceback on stderr")
    if res.rc not in (0, 1) and not res.hung:
        # `profile check` and `flow validate` report on standard output, as lines of
        # their report; every other command says `e810pipe: WHERE: ...` on stderr
        report = case.argv[:1] in (["profile"], ["flow"])
        text = res.stdout + res.stderr if report else res.stderr
        first = first_error(res, report)
        if not first:
            bad.append("no error message")
        elif case.where and not re.search(case.where, text):
            bad.append(f"unlocated: {case.where!r} not in {first[:160]!r}")
    if res.rc != 0 and max(map(len, (res.stderr + res.stdout).splitlines()), default=0) > 2000:
        bad.append("an output line of more than 2,000 characters (long input echoed?)")
    if SECRET in res.stderr or SECRET in res.stdout:
        bad.append("echoed the content of a file that is not an input")
    if res.rss > args.rss << 20:
        bad.append(f"peak RSS {res.rss >> 20} MiB over the {args.rss} MiB budget")
    if case.check is not None and not res.hung:
        why = case.check(res)
        if why:
            bad.append(why)
    return bad


# ------------------------------------------------------------------ inputs


def pcap(path: Path, packets: list[bytes], ts: bool = False) -> Path:
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for i, p in enumerate(packets):
            f.write(struct.pack("<IIII", 1_700_000_000 + i if ts else 0, i, len(p), len(p)))
            f.write(p)
    return path


def whole_records(directory: Path) -> str:
    """'' if every pcap in `directory` ends on a whole record."""
    for p in sorted(directory.glob("*.pcap")):
        data = p.read_bytes()
        off = 24
        while off + 16 <= len(data):
            incl = struct.unpack_from("<I", data, off + 8)[0]
            off += 16 + incl
        if off != len(data):
            return f"{p.name} ends inside a record (at {len(data)} of {off})"
    return ""


def silent_server() -> int:
    """A TCP port that accepts and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    conns: list[socket.socket] = []

    def serve() -> None:
        while True:
            c, _ = s.accept()
            conns.append(c)

    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1]


def chatty_server() -> int:
    """A TCP port that answers every connection with an HTTP error: no Dask scheduler."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)

    def serve() -> None:
        while True:
            c, _ = s.accept()
            try:
                c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4)
                c.close()
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1]


def first_error(res: Result, report: bool = False) -> str:
    """The first error line: `e810pipe: ...` on stderr, or a report's error line."""
    for ln in res.stderr.splitlines():
        if ln.startswith("e810pipe: "):
            return ln
    if report:
        for ln in res.stdout.splitlines():
            if "error" in ln.lower() or "rejected" in ln:
                return ln
    return ""


def build_cases(work: Path, args: argparse.Namespace) -> list[Case]:
    w = work
    one = pcap(w / "one.pcap", [ETH_IPV4_UDP] * 3)
    (w / "secret.txt").write_text(SECRET + "\n")
    proto = "proto_ids {{ X_F = 131; }}\nprotocol foo {{ fields {{ a: 8; b: 8; }} {body} }}\n"

    def ddp(name: str, text: str | bytes) -> str:
        p = w / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return name

    def txt(name: str, text: str | bytes) -> str:
        p = w / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return name

    cases: list[Case] = []

    def add(klass: str, name: str, argv: list[str], codes: set[int], where: str = "", **kw):
        cases.append(Case(klass, name, argv, codes, where, **kw))

    # ---- memory
    for n in args.sizes:
        cap = w / f"distinct-{n}.pcap"
        write_capture(cap, n)
        rules = txt(
            "mem-rules.txt",
            "port config all rxq 16\nport config all rss all\nflow create 0 ingress pattern "
            "eth / ipv4 / udp dst is 53 / end actions queue index 3 / end\n",
        )
        add("memory", f"parse --json, {n:,} distinct packets", ["parse", cap.name, "--json"], {0})
        add(
            "memory",
            f"run --json, {n:,} distinct packets",
            ["run", cap.name, "--json", "--rules", rules],
            {0},
        )
        add("memory", f"fuzz, {n // 10:,} packets", ["fuzz", "--count", str(n // 10)], {0})
    mpls = b"\x00" * 12 + b"\x88\x47" + bytes(60_000)
    pcap(w / "mpls.pcap", [mpls] * 600)
    add("memory", "600 MPLS packets of 60 KB of zeros", ["run", "mpls.pcap", "--json"], {0})
    vlans = b"\x00" * 12 + b"\x81\x00\x00\x01" * 15_000 + b"\x08\x00" + bytes(20)
    pcap(w / "vlans.pcap", [vlans] * 50)
    add("memory", "50 packets of 15,000 VLAN tags", ["parse", "vlans.pcap", "--json"], {0})

    # ---- unbounded reads and hangs
    add(
        "reads",
        'extends "/dev/zero"',
        [
            "parse",
            one.name,
            "--profile",
            ddp("z.ddp", 'package "x" version 1.0 extends "/dev/zero";'),
        ],
        {3},
        r"/dev/zero",
    )
    add("reads", "--profile /dev/zero", ["profile", "check", "/dev/zero"], {3}, r"/dev/zero")
    add("reads", "--rules /dev/zero", ["run", one.name, "--rules", "/dev/zero"], {2}, r"/dev/zero")
    add("reads", "scenario /dev/zero", ["check", "/dev/zero"], {2}, r"/dev/zero")
    add(
        "reads",
        "testpmd --cmdline-file /dev/zero",
        ["testpmd", "--cmdline-file=/dev/zero"],
        {2},
        r"/dev/zero",
    )
    add(
        "reads",
        "testpmd console < /dev/zero",
        ["testpmd"],
        {2},
        r"<stdin>:1: standard input is not text",
        stdin="/dev/zero",
    )
    (w / "long-line.txt").write_text("flow create 0 pattern " + "x" * 5_000_000 + "\nquit\n")
    add(
        "reads",
        "testpmd console, a 5 MB line",
        ["testpmd"],
        {0},
        stdin=str(w / "long-line.txt"),
        check=lambda r: "" if len(r.stdout) < 10_000 else f"{len(r.stdout)} bytes of output",
    )
    os.mkfifo(w / "fifo.yaml")
    add("reads", "a FIFO as rules file", ["run", one.name, "--rules", "fifo.yaml"], {2}, "fifo")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")
    )
    add(
        "reads",
        "alias bomb, device file",
        ["run", one.name, "--rules", txt("bomb.yaml", bomb)],
        {2},
        r"bomb\.yaml:\d+:\d+",
    )
    add(
        "reads",
        "alias bomb, scenario",
        ["check", txt("bomb.scenario.yaml", bomb)],
        {2},
        r"bomb\.scenario\.yaml:\d+:\d+",
    )
    big_lines = []
    for i in range(40_000):
        big_lines.append(f"protocol p{i} {{ fields {{ a: 8; b: 8; }} }}")
    add(
        "reads",
        "profile check, 40,000 protocols (2 MB)",
        ["profile", "check", ddp("big.ddp", "\n".join(big_lines) + "\n")],
        {0, 3},
        r"big\.ddp",
        check=lambda r: "" if r.seconds < 30 else f"took {r.seconds:.0f} s",
    )
    with open(w / "huge.ddp", "wb") as f:
        f.truncate(40 << 20)
    add("reads", "a 40 MiB profile", ["profile", "check", "huge.ddp"], {3}, r"huge\.ddp")
    silent = silent_server()
    add(
        "reads",
        "--dask at a port that never answers",
        ["run", one.name, "--dask", f"tcp://127.0.0.1:{silent}", "--dask-timeout", "3"],
        {7},
        rf"127\.0\.0\.1:{silent}",
    )
    chatty = chatty_server()
    add(
        "internal",
        "--dask at a non-Dask service",
        ["run", one.name, "--dask", f"tcp://127.0.0.1:{chatty}", "--dask-timeout", "3"],
        {7},
        rf"127\.0\.0\.1:{chatty}",
    )
    (w / "big.pcapng").write_bytes(
        struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1)
        + struct.pack("<I", 28)
        + struct.pack("<II", 1, 0xFFFFFFF0)
    )
    add("reads", "pcapng block of 4 GiB", ["parse", "big.pcapng"], {4}, r"big\.pcapng")
    add("reads", "a capture that is /dev/zero", ["parse", "/dev/zero"], {4}, r"/dev/zero")
    huge_rec = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1) + struct.pack(
        "<IIII", 0, 0, 0x7FFFFFFF, 0x7FFFFFFF
    )
    add(
        "reads",
        "pcap record of 2 GiB",
        ["run", txt("huge-rec.pcap", huge_rec)],
        {4},
        r"huge-rec\.pcap.*packet 0",
    )

    # ---- internal errors from input
    add(
        "internal",
        "100,000-term length expression",
        [
            "profile",
            "check",
            ddp("long.ddp", proto.format(body="length " + "+".join(["1"] * 100_000) + ";")),
        ],
        {3},
        r"long\.ddp:2:\d+",
    )
    add(
        "internal",
        "3,000 nested parentheses",
        [
            "parse",
            one.name,
            "--profile",
            ddp("paren.ddp", proto.format(body="length " + "(" * 3000 + "a" + ")" * 3000 + ";")),
        ],
        {3},
        r"paren\.ddp:2:\d+",
    )
    add(
        "internal",
        "length 8 >> (0-1)",
        ["profile", "check", ddp("shift.ddp", proto.format(body="length 8 >> (0-1);"))],
        {3},
        r"shift\.ddp:2:\d+",
    )
    add(
        "internal",
        "select peek(99999999999, 8)",
        [
            "profile",
            "check",
            ddp("peek.ddp", proto.format(body="select peek(99999999999, 8) { 1 => pass; }")),
        ],
        {3},
        r"peek\.ddp:2:\d+",
    )
    add(
        "internal",
        "a 5,000-digit PTYPE number",
        ["profile", "check", ddp("ptnum.ddp", "ptype " + "7" * 5000 + " X: mac;\n")],
        {3},
        r"ptnum\.ddp:1:\d+",
    )
    add(
        "internal",
        "extends itself",
        ["profile", "check", ddp("self.ddp", 'package "s" version 1.0 extends "self.ddp";\n')],
        {3},
        r"self\.ddp",
    )
    add(
        "internal",
        "YAML nested 2,000 deep",
        ["run", one.name, "--rules", txt("deep.yaml", "rules: " + "[" * 2000 + "]" * 2000 + "\n")],
        {2},
        r"deep\.yaml:1:\d+",
    )
    layers = "/".join(["Dot1Q()"] * 3000)
    add(
        "internal",
        "a Scapy spec of 3,000 layers",
        ["check", txt("layers.scenario.yaml", f'packets:\n  - scapy: "Ether()/{layers}"\n')],
        {2},
        r"layers\.scenario\.yaml:2:\d+",
    )
    for name, body, where in (
        ("window: 0", "window: 0\n", r":1:\d+"),
        ("packets: 0..999999999999", "packets:\n  - range: 0..999999999999\n", r":\d+:\d+"),
        ("count: 1000000000", "packets:\n  - hex: '00'\n    count: 1000000000\n", r":\d+:\d+"),
        ("a 5,000-digit number", "window: " + "9" * 5000 + "\n", r":1:\d+"),
        (
            "a scoped IPv6 address",
            "packets:\n  - scapy: \"Ether()/IPv6(dst='fe80::1%eth0')\"\n",
            r":2:\d+",
        ),
        (
            "a name to look up",
            "packets:\n  - scapy: \"Ether()/IP(dst='www.example.com')\"\n",
            r":2:\d+",
        ),
        ("!!python/object tag", "window: !!python/object:os.system echo\n", r":1:\d+"),
        ("unknown tag", "window: !foo 3\n", r":1:\d+"),
    ):
        fname = "sc-" + re.sub(r"\W+", "-", name)[:20] + ".scenario.yaml"
        add(
            "internal",
            f"scenario {name}",
            ["check", txt(fname, body)],
            {2},
            re.escape(fname) + where,
        )
    add(
        "internal",
        "rule: queue index 2**40",
        [
            "flow",
            "validate",
            "--cmd",
            "flow create 0 pattern eth / end actions queue index 1099511627776 / end",
        ],
        {5},
        r"--cmd|<cmd>|index",
    )
    add(
        "internal",
        "rule: mark id 2**40",
        [
            "flow",
            "validate",
            "--cmd",
            "flow create 0 pattern eth / ipv4 / end actions mark id 1099511627776 / end",
        ],
        {5},
        r"mark",
    )
    add(
        "internal",
        "rule: a 40-digit address",
        [
            "flow",
            "validate",
            "--cmd",
            "flow create 0 pattern eth / ipv4 dst is " + "9" * 40 + " / end actions drop / end",
        ],
        {5},
        r"ipv4|dst",
    )
    add(
        "internal",
        "rule: 10,000 pattern items",
        [
            "flow",
            "validate",
            "--cmd",
            "flow create 0 pattern " + "vlan / " * 10_000 + "end actions drop / end",
        ],
        {5},
        r"item|pattern",
    )
    add(
        "internal",
        "port config all rxq 99999999",
        ["run", one.name, "--cmd", "port config all rxq 99999999"],
        {5},
        r"rxq|queue",
    )
    add("internal", "--window 0", ["parse", one.name, "--window", "0"], {2}, r"--window")
    add(
        "internal",
        "--window 2**40",
        ["parse", one.name, "--window", str(1 << 40)],
        {2},
        r"--window",
    )
    add(
        "internal",
        "--vxlan-port 70000",
        ["parse", one.name, "--vxlan-port", "70000"],
        {2},
        r"--vxlan-port",
    )
    add("internal", "--vxlan-port -1", ["parse", one.name, "--vxlan-port=-1"], {2}, r"--vxlan-port")
    add(
        "internal",
        "trace --index 10**30",
        ["trace", one.name, "--index", "1" + "0" * 30],
        {2},
        r"one\.pcap has no Ethernet packet with index",
    )
    add("internal", "fuzz --count -5", ["fuzz", "--count", "-5"], {2}, r"--count")
    add("internal", "fuzz --seconds inf", ["fuzz", "--seconds", "inf"], {2}, r"--seconds")
    add(
        "internal",
        "--html-packets -1",
        ["run", one.name, "--html", "r.html", "--html-packets", "-1"],
        {2},
        r"--html-packets",
    )
    add(
        "internal",
        "output to /dev/full",
        ["parse", one.name, "--json"],
        {6},
        r"standard output",
        stdout="/dev/full",
    )
    add(
        "internal",
        "--split at a file",
        ["run", one.name, "--split", one.name],
        {6},
        r"--split one\.pcap",
    )
    os.makedirs(w / "ro", exist_ok=True)
    os.chmod(w / "ro", stat.S_IRUSR | stat.S_IXUSR)
    add(
        "internal",
        "--split into a read-only directory",
        ["run", one.name, "--split", "ro/out"],
        {0} if os.geteuid() == 0 else {6},  # root writes anywhere
        r"--split ro/out",
    )
    add(
        "internal",
        "--html to /dev/full",
        ["run", one.name, "--html", "/dev/full"],
        {6},
        r"--html /dev/full",
    )
    add(
        "internal",
        "graph -o into a missing directory",
        ["graph", "-o", "no/such/g.dot"],
        {6},
        r"-o no/such/g\.dot",
    )
    (w / "bin.jsonl").write_bytes(b'{"index": 0}\n\xff\xfe\x00garbage\n')
    add(
        "internal",
        "schema --check on binary",
        ["schema", "parse", "--check", "bin.jsonl"],
        {2},
        r"bin\.jsonl:2:\d+",
    )
    os.makedirs(w / "found", exist_ok=True)
    (w / "found" / "001-x.json").write_text("{not json")
    (w / "found" / "001-x.pcap").write_bytes(b"")
    add(
        "internal",
        "fuzz --replay on bad JSON",
        ["fuzz", "--replay", "found"],
        {2},
        r"found/001-x\.json:1:\d+",
    )
    add(
        "internal",
        "graph --packet of 60 KB",
        ["graph", "-o", "g.dot", "--packet", "ab" * 60_000],
        {0, 2},
        r"--packet",
    )
    add(
        "internal",
        "graph --packet not hex",
        ["graph", "-o", "g.dot", "--packet", "zz" * 100],
        {2},
        r"--packet",
    )

    # ---- unlocated or wrong errors
    add(
        "located",
        "a non-UTF-8 profile",
        ["profile", "check", ddp("latin.ddp", b"# ok\nptype 700 X\xe9: mac;\n")],
        {3},
        r"latin\.ddp:2:\d+",
    )
    add(
        "located",
        "a 100,000-digit number",
        ["profile", "check", ddp("digits.ddp", "proto_ids { X_F = " + "9" * 100_000 + "; }\n")],
        {3},
        r"digits\.ddp:1:\d+",
    )
    (w / "bin.txt").write_bytes(b"port config all rxq 4\n\x00\xff\x81binary\n")
    add(
        "located",
        "a binary rules file",
        ["run", one.name, "--rules", "bin.txt"],
        {2},
        r"bin\.txt:2:\d+",
    )
    add(
        "located",
        "a missing rules file",
        ["run", one.name, "--rules", "nope.txt"],
        {2},
        r"nope\.txt",
    )
    add(
        "located", "a directory as rules file", ["run", one.name, "--rules", "found"], {2}, r"found"
    )
    add("located", "a missing capture", ["run", "nope.pcap"], {4}, r"nope\.pcap")
    add(
        "located",
        "a 1 MB rule line",
        [
            "flow",
            "validate",
            "--rules",
            txt(
                "long.txt",
                "flow create 0 pattern eth / ipv4 dst is "
                + "1" * 1_000_000
                + " / end actions drop / end\n",
            ),
        ],
        {2, 5},
        r"long\.txt:1",
    )
    add(
        "located",
        'extends "secret.txt" (not a profile)',
        ["profile", "check", ddp("leak.ddp", 'package "l" version 1.0 extends "secret.txt";\n')],
        {3},
        r"secret\.txt",
    )
    add(
        "located",
        "--profile secret.txt",
        ["parse", one.name, "--profile", "secret.txt"],
        {3},
        r"secret\.txt",
    )
    # a rules file is testpmd text, the user's own input: its bad line may be quoted
    (w / "notrules.txt").write_text("NOT-A-COMMAND here\n")
    add(
        "located",
        "--rules with a line that is no command",
        ["run", one.name, "--rules", "notrules.txt"],
        {2, 5},
        r"notrules\.txt:1",
    )
    add("located", "scenario secret.txt", ["check", "secret.txt"], {2}, r"secret\.txt")
    cut = pcap(w / "cut.pcap", [ETH_IPV4_UDP] * 2)
    (w / "cut.pcap").write_bytes(cut.read_bytes()[:-10])
    add(
        "located", "a capture cut inside a record", ["run", "cut.pcap"], {4}, r"cut\.pcap.*packet 1"
    )

    # ---- silently accepted
    add(
        "accepted",
        "rule: scoped IPv6 address",
        [
            "flow",
            "validate",
            "--cmd",
            "flow create 0 pattern eth / ipv6 dst is fe80::1%eth0 / end actions drop / end",
        ],
        {5},
        r"fe80::1%eth0|scope",
    )
    add(
        "accepted",
        "YAML !!python tag in rules",
        [
            "run",
            one.name,
            "--rules",
            txt("py.yaml", "rules: !!python/object/apply:os.system ['true']\n"),
        ],
        {2},
        r"py\.yaml:1:\d+",
    )
    add(
        "accepted",
        "run --trace 999999",
        ["run", one.name, "--trace", "999999"],
        {2},
        r"--trace 999999",
    )
    add(
        "accepted",
        "--workers 1000",
        ["parse", one.name, "--workers", "1000", "--json"],
        {0},
        check=lambda r: "" if "--workers" in r.stderr else "no warning about --workers",
    )

    # ---- Ctrl-C
    big = w / "ctrlc.pcap"
    write_capture(big, 300_000)
    os.makedirs(w / "split1", exist_ok=True)
    add(
        "ctrl-c",
        "Ctrl-C during run --split",
        ["run", big.name, "--split", "split1/out", "-q"],
        {130},
        r"interrupted",
        interrupt=4.0,
        check=lambda r: whole_records(w / "split1" / "out"),
    )
    add(
        "ctrl-c",
        "Ctrl-C during run --split --workers 2",
        ["run", big.name, "--split", "split2", "--workers", "2", "-q"],
        {130},
        r"interrupted",
        interrupt=5.0,
        check=lambda r: whole_records(w / "split2") if (w / "split2").exists() else "",
    )
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="run the cases whose class or name contains this")
    ap.add_argument("--memory", type=int, default=2048, help="address space per command, MiB")
    ap.add_argument("--rss", type=int, default=300, help="peak RSS budget per command, MiB")
    ap.add_argument("--timeout", type=int, default=60, help="seconds per command")
    ap.add_argument("--sizes", default="20000,200000", help="distinct-packet capture sizes")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--keep", metavar="DIR", help="generate the inputs here and keep them")
    args = ap.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    work = Path(args.keep or tempfile.mkdtemp(prefix="e810-hostile-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cases = build_cases(work, args)
    if args.only:
        cases = [c for c in cases if args.only in c.klass or args.only in c.name]
    rows = []
    failures = 0
    mem: dict[str, list[tuple[int, int]]] = {}
    print(f"{'class':<9} {'case':<44} {'exit':>4} {'time':>6} {'RSS':>7}  verdict")
    for case in cases:
        res, bad = run_case(case, work, args)
        failures += bool(bad)
        m = re.match(r"(\w+ --json|fuzz), ([\d,]+)", case.name)
        if m:
            mem.setdefault(m.group(1), []).append((int(m.group(2).replace(",", "")), res.rss))
        first = first_error(res, case.argv[:1] in (["profile"], ["flow"]))
        print(
            f"{case.klass:<9} {case.name[:44]:<44} {res.rc:>4} {res.seconds:>5.1f}s "
            f"{res.rss / 2**20:>5.0f}Mi  {'ok' if not bad else 'FAIL: ' + '; '.join(bad)}",
            flush=True,
        )
        if first and args.keep:
            print(f"{'':>10}{first[:150]}")
        rows.append(
            {
                "class": case.klass,
                "case": case.name,
                "exit": res.rc,
                "seconds": round(res.seconds, 2),
                "peak_rss": res.rss,
                "error": first[:300],
                "problems": bad,
            }
        )
    growing = 0
    for name, pts in sorted(mem.items()):
        if len(pts) >= 2:
            (n0, r0), (n1, r1) = min(pts), max(pts)
            flat = r1 <= r0 * 1.5 + (64 << 20)
            failures += not flat
            growing += not flat
            print(
                f"memory    {name}: {n0:,} -> {n1:,} packets: {r0 / 2**20:.0f} -> "
                f"{r1 / 2**20:.0f} MiB {'(bounded)' if flat else 'FAIL: grows'}"
            )
    counts = {
        "cases": len(rows),
        "failed": sum(1 for r in rows if r["problems"]),
        "exit_70": sum(1 for r in rows if r["exit"] == 70),
        "hangs": sum(1 for r in rows if any("hang" in p for p in r["problems"])),
        "unlocated": sum(1 for r in rows if any("unlocated" in p for p in r["problems"])),
        "over_memory": sum(1 for r in rows if any("RSS" in p for p in r["problems"])),
        "memory_grows": growing,
    }
    print(
        f"# {counts['cases']} cases, {counts['failed']} failed: {counts['exit_70']} exit 70, "
        f"{counts['hangs']} hangs, {counts['over_memory']} over the memory budget, "
        f"{counts['unlocated']} unlocated; peak RSS grows with the capture in "
        f"{counts['memory_grows']} command(s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"counts": counts, "rows": rows}, indent=1) + "\n")
    if not args.keep:
        os.chmod(work / "ro", stat.S_IRWXU)
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of `parse --json` and `run --json` against the number of distinct packets.

    python bench/bench_memory.py [--sizes 20000,200000,2000000] [--json PATH] [--keep DIR]

A benchmark, not a test. For each size N it writes a capture of N packets that are all
different, in their flows and in their parse paths, then runs each command on it in
its own process and reads that process's peak RSS (``ru_maxrss`` of the child, from
``os.wait4``: resource usage of exactly that process). The caches are bounded (the
parser's result cache in bytes, the flow cache in decisions, both evicting in two
generations: README, "Memory"), so the peak must stop growing once they are full:
the last line compares the largest size with the second largest.

The packets: Ethernet, 0-2 VLAN tags, then IPv4 or IPv6. IPv4 carries UDP or TCP
with 0-10 words of IP options; IPv6 a chain of up to three extension headers (hop by
hop, destination options, routing) of 8-128 bytes each, then UDP or TCP. Addresses
and ports come from the packet's index, so every packet is its own flow; one in four
is cut at a random length inside its headers, so parse results differ in depth too.
The run has an RSS rule set (RSS on UDP and TCP over 16 queues) and one Flow Director
rule, so the flow cache keys on the 5-tuple.

Each capture is about 150 bytes a packet (2M packets: 330 MB), written to a temporary
directory and deleted afterwards (--keep DIR keeps them). On a 2-core machine the 2M
runs take a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RULES = [
    "port config all rxq 16",
    "port config all rss all",
    "flow create 0 ingress pattern eth / ipv4 / udp dst is 53 / end actions queue index 3 / end",
]


def packet(i: int, rng: random.Random) -> bytes:
    """Packet number `i`: its own flow (addresses and ports from i) and a random path."""
    eth = b"\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00\x00\x01"
    tags = b"".join(struct.pack("!HH", 0x8100, rng.randrange(1, 4095)) for _ in range(i % 3))
    sport, dport = 1024 + (i * 7919) % 60000, 1 + (i >> 3) % 65000
    proto = 17 if rng.random() < 0.5 else 6
    l4 = (
        struct.pack("!HHHH", sport, dport, 8, 0)
        if proto == 17
        else struct.pack("!HHIIBBHHH", sport, dport, i, 0, 5 << 4, 0x10, 1024, 0, 0)
    )
    if i % 2:
        words = rng.randrange(0, 11)
        ihl = 5 + words
        total = ihl * 4 + len(l4)
        ip = struct.pack(
            "!BBHHHBBHII",
            0x40 | ihl,
            0,
            total,
            i & 0xFFFF,
            0,
            64,
            proto,
            0,
            0x0A000000 | i,
            0xC0A80001,
        ) + b"\x01" * (4 * words)
        l3 = struct.pack("!H", 0x0800) + ip
    else:
        chain = rng.sample([0, 60, 43], rng.randrange(0, 4))  # hop-by-hop, dst opts, routing
        exts = b""
        nxt = [*chain[1:], proto]
        for kind, after in zip(chain, nxt):
            n = rng.randrange(0, 16)  # (n + 1) * 8 bytes
            if kind == 43:
                body = struct.pack("!BBBB", after, n, 0, 0) + bytes(4 + 8 * n)
            else:
                body = struct.pack("!BB", after, n) + b"\x01\x04" + bytes(4 + 8 * n)
            exts += body
        first = chain[0] if chain else proto
        src = struct.pack("!QQ", 0x20010DB800000000, i)
        ip6 = struct.pack("!IHBB", 0x60000000, len(exts) + len(l4), first, 64)
        l3 = struct.pack("!H", 0x86DD) + ip6 + src + struct.pack("!QQ", 0x20010DB8FFFF0000, 1)
        l3 += exts
    data = eth + tags + l3 + l4
    if i % 4 == 3:
        data = data[: rng.randrange(15, len(data))]
    return data


def write_capture(path: Path, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with open(path, "wb", buffering=1 << 20) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        rec = struct.Struct("<IIII")
        for i in range(count):
            data = packet(i, rng)
            f.write(rec.pack(i // 1_000_000, i % 1_000_000, len(data), len(data)))
            f.write(data)


def measure(cmd: list[str]) -> tuple[int, float]:
    """Peak RSS (bytes) and wall time of `cmd`, run in its own process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {proc.returncode}: {err.decode()[-500:]}")
    return usage.ru_maxrss * 1024, wall  # Linux reports KiB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", default="20000,200000,2000000", help="packet counts, comma-separated"
    )
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--keep", metavar="DIR", help="write the captures here and keep them")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")]
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="e810-mem-"))
    work.mkdir(parents=True, exist_ok=True)
    rules = work / "rules.txt"
    rules.write_text("\n".join(RULES) + "\n")
    py = [sys.executable, "-m", "e810pipe"]
    rows = []
    try:
        for n in sizes:
            cap = work / f"distinct-{n}.pcap"
            if not cap.exists():
                write_capture(cap, n)
            for name, cmd in (
                ("parse", [*py, "parse", str(cap), "--json", "-q"]),
                ("run", [*py, "run", str(cap), "--json", "--rules", str(rules)]),
            ):
                rss, wall = measure(cmd)
                rows.append({"command": name, "packets": n, "peak_rss": rss, "seconds": wall})
                print(
                    f"{name:>5} {n:>9,} packets: peak RSS {rss / 2**20:7.1f} MiB, "
                    f"{wall:6.1f} s ({n / wall:,.0f} packets/s)",
                    flush=True,
                )
            if not args.keep:
                cap.unlink()
    finally:
        if not args.keep:
            rules.unlink(missing_ok=True)
            try:
                work.rmdir()
            except OSError:
                pass
    verdicts = []
    if len(sizes) >= 2:
        big, prev = max(sizes), sorted(sizes)[-2]
        for name in ("parse", "run"):
            a = next(r["peak_rss"] for r in rows if r["command"] == name and r["packets"] == prev)
            b = next(r["peak_rss"] for r in rows if r["command"] == name and r["packets"] == big)
            flat = b <= a * 1.10 + (8 << 20)
            verdicts.append(flat)
            print(
                f"{name}: {big:,} packets peak {b / 2**20:.1f} MiB vs {prev:,}: "
                f"{a / 2**20:.1f} MiB ({b / a:.2f}x): {'flat' if flat else 'GROWS'}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())

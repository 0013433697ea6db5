"""Rule loading: 16K Flow Director rules from testpmd text and from YAML.

    python bench/bench_load.py [--rules N] [--repeat R] [--json PATH]

A benchmark, not a test. It writes (deterministically, seed 1) N Flow Director rules
(default 16,384: IPv4/IPv6 TCP/UDP 5-tuples with a queue and a mark, priority 1, a
device of 16 queues in ice's pipeline mode) once as a testpmd text file and once as
a YAML rules file, and times, in a fresh process each run (median of R, default 5):

  read     reading the file into commands (control.read_setup)
  install  installing them (control.configure: engine choice, compile, FD tables)

as CPU time of that process (user + system), with the wall time beside it, and the
process's peak RSS. Targets (issue "speed on real traffic"): <= 0.5 s from testpmd
text, <= 1 s from YAML, read and install together.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"testpmd text": 0.5, "YAML": 1.0}
DEVICE_YAML = "device:\n  pfs:\n    - rxq: 16\npipeline: {mode: pipeline}\n"
KINDS = [("ipv4", "tcp"), ("ipv4", "udp"), ("ipv6", "tcp"), ("ipv6", "udp")]

CHILD = r"""
import gc, json, resource, sys, time
from e810pipe.control import configure, read_setup
from e810pipe.package import load_package
pkg = load_package(["comms"])
gc.collect()
c0, w0 = time.process_time(), time.perf_counter()
setup = read_setup(sys.argv[1:], (), pkg.protocols)
c1, w1 = time.process_time(), time.perf_counter()
pipe, lines = configure(pkg, setup)
c2, w2 = time.process_time(), time.perf_counter()
print(json.dumps({"read": c1 - c0, "install": c2 - c1, "wall": w2 - w0,
                  "rules": len(pipe.rules),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _addr(rng: random.Random, ip: str) -> str:
    if ip == "ipv4":
        return ".".join(str(x) for x in rng.randbytes(4))
    b = rng.randbytes(16)
    return ":".join(b[i : i + 2].hex() for i in range(0, 16, 2))


def write_rules(n: int, where: Path) -> dict[str, list[str]]:
    rng = random.Random(1)
    rules = []
    for i in range(n):
        ip, l4 = KINDS[i % 4]
        rules.append((ip, _addr(rng, ip), _addr(rng, ip), l4, rng.randrange(65536),
                      rng.randrange(65536), i % 16, i))  # fmt: skip
    device = where / "device.yaml"
    device.write_text(DEVICE_YAML)
    text = where / "rules.txt"
    text.write_text(
        "".join(
            f"flow create 0 priority 1 ingress pattern eth / {ip} src is {s} dst is {d} / "
            f"{l4} src is {sp} dst is {dp} / end actions queue index {q} / mark id {m} / end\n"
            for ip, s, d, l4, sp, dp, q, m in rules
        )
    )
    yaml = where / "rules.yaml"
    yaml.write_text(
        DEVICE_YAML
        + "rules:\n"
        + "".join(
            f"  - pattern: [eth, {{{ip}: {{src: '{s}', dst: '{d}'}}}}, "
            f"{{{l4}: {{src: {sp}, dst: {dp}}}}}]\n"
            f"    actions: [{{queue: {q}}}, {{mark: {m}}}]\n"
            "    priority: 1\n"
            for ip, s, d, l4, sp, dp, q, m in rules
        )
    )
    return {"testpmd text": [str(device), str(text)], "YAML": [str(yaml)]}


def run_child(files: list[str]) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *files],
        env=env,
        cwd=tempfile.gettempdir(),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="16K Flow Director rules: text and YAML.")
    ap.add_argument("--rules", type=int, default=16_384, help="FD rules (16,384)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per format (5)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(argv)
    loadavg = " ".join(f"{x:.1f}" for x in os.getloadavg())
    res: dict = {"rules": args.rules, "python": platform.python_version(), "loadavg": loadavg}
    with tempfile.TemporaryDirectory() as tmp:
        files = write_rules(args.rules, Path(tmp))
        for fmt, paths in files.items():
            runs = []
            for i in range(args.repeat):
                r = run_child(paths)
                assert r["rules"] == args.rules, r
                runs.append(r)
                print(
                    f"  {fmt} {i + 1}/{args.repeat}: read {r['read']:.3f} s, install "
                    f"{r['install']:.3f} s CPU, {r['wall']:.3f} s wall",
                    file=sys.stderr,
                )
            res[fmt] = {
                k: statistics.median(r[k] for r in runs) for k in ("read", "install", "wall")
            }
            res[fmt]["rss_mib"] = max(r["rss_mib"] for r in runs)
    print(
        f"{args.rules:,} FD rules, median of {args.repeat} fresh processes, Python "
        f"{res['python']}, load average at start {loadavg}\n\n"
        "| from | read (CPU) | install (CPU) | total (CPU) | wall | target | peak RSS |\n"
        "|---|---:|---:|---:|---:|---:|---:|"
    )
    for fmt, target in TARGETS.items():
        r = res[fmt]
        total = r["read"] + r["install"]
        met = "met" if total <= target else "NOT met"
        print(
            f"| {fmt} | {r['read']:.3f} s | {r['install']:.3f} s | {total:.3f} s "
            f"| {r['wall']:.3f} s | ≤ {target} s: {met} | {r['rss_mib']:.0f} MiB |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

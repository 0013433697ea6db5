"""Full-pipeline benchmark: rules loaded, packets/s, per-packet cost vs rules, scaling.

    python bench/bench_pipeline.py [PCAP] [--repeat N] [--json PATH] [--cpu K]
                                   [--scale-copies C] [--no-scaling]

A benchmark, not a test. It generates the rule sets (deterministic, seed 1):

  FD      N exact 5-tuple rules (IPv4/IPv6 x TCP/UDP, 4 flow types): first the
          plain flows of the capture itself (so rules hit), then random ones
  ACL     1,024 rules: an IPv4 source plus an L4 destination-port range (ranges send
          them to the ACL), a quarter of them drops
  RSS     `port config all rss all`, Microsoft's key; 16 queues; VXLAN 4789 and
          GENEVE 6081 registered

and measures, on the capture (default pcaps/mixed-tunnels.pcap, read into memory):

  load     reading the rule file and applying it (read_setup + configure), for
           0 / 1K / 16K FD rules + 1K ACL; the DDP package compile is separate
  process  Pipeline.process per packet with 0, 1K and 16K FD rules + 1K ACL + RSS:
           "warm" (the flow cache has seen the capture), "cold" (cache emptied
           before every pass: every flow is decided once per pass), "no cache"
           (flow_cache off: every packet runs every block), "stream" (iter_packets
           over the file + process, warm)
  curve    per-packet cost (warm and no cache) vs FD rule count
  refs     Scapy `Ether(raw)` and dpkt `Ethernet(raw)` on the same packets, for
           scale: they only dissect; the pipeline parses and steers
  scaling  `e810pipe run --json` (to /dev/null) over the capture repeated C times,
           with --workers 1, 2, ... up to the CPUs: wall time, median of 3

Timing follows bench_parse.py: medians of N repeats, each repeat as many passes as
last --min-time seconds, the GC off while timing; memory is a separate untimed pass
under tracemalloc. Targets: >= 200,000 packets/s with 16K FD + 1K ACL + RSS (warm),
and loading 16K FD + 1K ACL rules in < 2 s.
"""

from __future__ import annotations

import argparse
import gc
import io
import ipaddress
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import e810pipe  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from bench_parse import (  # noqa: E402
    Phase,
    dpkt_phase,
    emit,
    fmt_bytes,
    maxrss_mib,
    scapy_phase,
    streaming,
    time_phase,
)

from e810pipe.cli import main as cli_main  # noqa: E402
from e810pipe.control import configure, read_setup  # noqa: E402
from e810pipe.package import load_package  # noqa: E402
from e810pipe.parser import Parser  # noqa: E402
from e810pipe.pcapio import iter_packets, write_pcap  # noqa: E402
from e810pipe.pipeline import Pipeline  # noqa: E402

DEFAULT_PCAP = ROOT / "pcaps" / "mixed-tunnels.pcap"
TARGET_PPS = 200_000
TARGET_LOAD_S = 2.0
ACL_RULES = 1024
FD_COUNTS = (0, 1024, 16384)
CURVE = (0, 256, 1024, 4096, 16384)
SETUP = [
    "port config all rxq 16",
    "port config 0 udp_tunnel_port add vxlan 4789",
    "port config 0 udp_tunnel_port add geneve 6081",
    "port config all rss all",
    "port config 0 rss-hash-key ipv4 6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da3"
    "8030f20c6a42b73bbeac01fa6d5a56da255b0ec24167253d",
]


# ------------------------------------------------------------------------ rule sets


def capture_flows(packets: list[bytes]) -> list[tuple[str, str, str, str, int, int]]:
    """The distinct plain (untunnelled) TCP/UDP 5-tuples of the capture."""
    parser = Parser.load(["os-default"], vxlan_ports=(4789,), geneve_ports=(6081,))
    seen: dict[tuple, None] = {}
    for d in packets:
        r = parser.parse(d)
        po = dict(r.po)
        if r.flags:
            continue
        if 32 in po:
            b, ip = po[32], "ipv4"
            src, dst = (
                ipaddress.IPv4Address(d[b + 12 : b + 16]),
                ipaddress.IPv4Address(d[b + 16 : b + 20]),
            )
        elif 40 in po:
            b, ip = po[40], "ipv6"
            src, dst = (
                ipaddress.IPv6Address(d[b + 8 : b + 24]),
                ipaddress.IPv6Address(d[b + 24 : b + 40]),
            )
        else:
            continue
        l4, b = ("tcp", po[49]) if 49 in po else ("udp", po.get(53, -1))
        if b < 0:
            continue
        sport, dport = int.from_bytes(d[b : b + 2], "big"), int.from_bytes(d[b + 2 : b + 4], "big")
        seen[(ip, str(src), str(dst), l4, sport, dport)] = None
    return list(seen)


def rule_lines(flows: list[tuple], n_fd: int, n_acl: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    lines = list(SETUP)
    fd = []
    for i, (ip, s, d, l4, sp, dp) in enumerate(flows[: n_fd // 2]):
        fd.append(
            f"flow create 0 pattern eth / {ip} src is {s} dst is {d} / {l4} src is {sp} "
            f"dst is {dp} / end actions queue index {i % 16} / mark id {i} / end"
        )
    kinds = [("ipv4", "tcp"), ("ipv4", "udp"), ("ipv6", "tcp"), ("ipv6", "udp")]
    while len(fd) < n_fd:
        ip, l4 = kinds[len(fd) % 4]
        bits = 32 if ip == "ipv4" else 128
        addr = ipaddress.IPv4Address if ip == "ipv4" else ipaddress.IPv6Address
        s, d = addr(rng.getrandbits(bits)), addr(rng.getrandbits(bits))
        fd.append(
            f"flow create 0 pattern eth / {ip} src is {s} dst is {d} / {l4} src is "
            f"{rng.randrange(65536)} dst is {rng.randrange(65536)} / end "
            f"actions queue index {len(fd) % 16} / end"
        )
    srcs = [f[1] for f in flows if f[0] == "ipv4"]
    for i in range(n_acl):
        s = (
            srcs[i % len(srcs)]
            if srcs and i % 3 == 0
            else str(ipaddress.IPv4Address(rng.getrandbits(32)))
        )
        l4 = "tcp" if i % 2 else "udp"
        act = "drop" if i % 4 == 0 else f"queue index {i % 16}"
        lines.append(
            f"flow create 0 pattern eth / ipv4 src is {s} / {l4} dst spec 1024 dst last 65535 "
            f"/ end actions {act} / end"
        )
    return lines[: len(SETUP)] + fd[:n_fd] + lines[len(SETUP) :]


def load(rules: Path, package: object) -> Pipeline:
    setup = read_setup([str(rules)])
    pipe, _ = configure(package, setup)  # type: ignore[arg-type]
    return pipe


# ------------------------------------------------------------------------ phases


def process_phases(key: str, pipe: Pipeline, pcap: Path, packets: list[bytes]) -> list[Phase]:
    n = len(packets)

    def warm_run(passes: object) -> int:
        assert isinstance(passes, int)
        process = pipe.process
        for _ in range(passes):
            for d in packets:
                process(d)
        return n * passes

    def warm_prepare(passes: int) -> int:
        pipe.flow_cache = True
        for d in packets:
            pipe.process(d)
        return passes

    def cold_run(passes: object) -> int:
        assert isinstance(passes, int)
        process = pipe.process
        for _ in range(passes):
            pipe.invalidate()
            for d in packets:
                process(d)
        return n * passes

    def off_prepare(passes: int) -> int:
        pipe.flow_cache = False
        pipe.invalidate()
        return passes

    def on_prepare(passes: int) -> int:
        pipe.flow_cache = True
        pipe.invalidate()
        return passes

    stream_run = streaming(pcap, pipe.process)

    return [
        Phase(f"{key}_warm", f"{key}: `Pipeline.process`, warm flow cache", warm_prepare, warm_run),
        Phase(f"{key}_cold", f"{key}: cold flow cache (emptied every pass)", on_prepare, cold_run),
        Phase(f"{key}_nocache", f"{key}: flow cache off", off_prepare, warm_run),
        Phase(
            f"{key}_stream",
            f"{key}: `iter_packets` + `process` (file, warm)",
            warm_prepare,
            stream_run,
        ),
    ]


def scaling(pcap: Path, rules: Path, copies: int, repeat: int) -> list[dict]:
    """`e810pipe run --json` wall time with 1..CPUs workers on a repeated capture."""
    packets = [p.data for p in iter_packets(pcap)]
    out: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.pcap"
        total = write_pcap(big, (d for _ in range(copies) for d in packets))
        cpus = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
        base = None
        for workers in sorted({1, 2, *range(2, max(cpus, 2) + 1)}):
            times = []
            for _ in range(repeat):
                sink = io.StringIO()
                t0 = time.perf_counter()
                with redirect_stdout(sink), redirect_stderr(io.StringIO()):
                    code = cli_main(
                        [
                            "run",
                            str(big),
                            "--rules",
                            str(rules),
                            "--json",
                            "--workers",
                            str(workers),
                        ]
                    )
                times.append(time.perf_counter() - t0)
                assert code == 0
                del sink
            wall = statistics.median(times)
            base = base or wall
            out.append(
                {
                    "workers": workers,
                    "packets": total,
                    "wall_s": wall,
                    "pps": total / wall,
                    "speedup": base / wall,
                }
            )
            print(f"scaling: {workers} worker(s) {wall:.2f} s", file=sys.stderr, flush=True)
    return out


# ------------------------------------------------------------------------ output


def markdown(res: dict) -> str:
    out = [
        f"`{res['pcap']}`: {res['packets']} packets; median of {res['repeat']} repeats; "
        f"Python {res['python']}, {res['machine']}; load average at start {res['loadavg']}",
        "",
        "| rules (+ RSS) | load (median) | target | pipeline memory | load peak |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in res["load"]:
        tgt = (
            f"< {TARGET_LOAD_S:.0f} s: {'MET' if r['s'] < TARGET_LOAD_S else 'NOT MET'}"
            if r["fd"] == 16384
            else ""
        )
        out.append(
            f"| {r['fd']:,} FD + {r['acl']:,} ACL | {r['s']:.2f} s | {tgt} "
            f"| {fmt_bytes(r['retained_bytes'])} | {fmt_bytes(r['peak_bytes'])} |"
        )
    out += [
        "",
        "| phase | median pkt/s | µs/pkt | min–max pkt/s | tracemalloc peak | maxrss after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in res["phases"]:
        out.append(
            f"| {r['label']} | {r['pps_median']:,.0f} | {r['us_per_packet']:.2f} "
            f"| {r['pps_min']:,.0f}–{r['pps_max']:,.0f} "
            f"| {fmt_bytes(r['tracemalloc_peak_bytes'])} | {r['maxrss_mib_after']:.1f} MiB |"
        )
    out += ["", "| FD rules (+1K ACL, RSS) | µs/pkt warm | µs/pkt no cache |", "|---:|---:|---:|"]
    for c in res["curve"]:
        out.append(f"| {c['fd']:,} | {c['us_warm']:.2f} | {c['us_nocache']:.2f} |")
    if res["scaling"]:
        out += [
            "",
            f"| `run --json --workers N` ({res['scaling'][0]['packets']:,} packets, "
            "1K FD + 1K ACL) | wall (median) | pkt/s | speedup |",
            "|---:|---:|---:|---:|",
        ]
        for s in res["scaling"]:
            out.append(
                f"| {s['workers']} | {s['wall_s']:.2f} s | {s['pps']:,.0f} | {s['speedup']:.2f}× |"
            )
    r = res["ratios"]
    out += [
        "",
        f"References on the same packets: Scapy `Ether(raw)` {r['scapy_pps']:,.0f} pkt/s, dpkt "
        f"{r['dpkt_pps']:,.0f} pkt/s. The full pipeline with 16K FD + 1K ACL + RSS (warm) is "
        f"{r['warm_vs_scapy']:.0f}× Scapy and {r['warm_vs_dpkt']:.1f}× dpkt; with the flow "
        f"cache off {r['nocache_vs_scapy']:.1f}× Scapy and {r['nocache_vs_dpkt']:.2f}× dpkt.",
        "",
    ]
    t = res["target"]
    out.append(
        f"Target ≥ {TARGET_PPS:,} pkt/s (16K FD + 1K ACL + RSS, warm, one core): "
        f"**{'MET' if t['met'] else 'NOT MET'}** ({t['measured']:,.0f} pkt/s; cold "
        f"{t['cold']:,.0f}, no cache {t['nocache']:,.0f}, stream {t['stream']:,.0f}). "
        f"Loading 16K FD + 1K ACL: {t['load_s']:.2f} s (target < {TARGET_LOAD_S:.0f} s: "
        f"**{'MET' if t['load_s'] < TARGET_LOAD_S else 'NOT MET'}**)."
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Full pipeline: rule loading, packets/s, scaling.")
    ap.add_argument("pcap", nargs="?", type=Path, default=DEFAULT_PCAP)
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats per phase (default 5)")
    ap.add_argument("--min-time", type=float, default=0.25, help="seconds per timed repeat (0.25)")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON (- = stdout)")
    ap.add_argument("--cpu", type=int, help="pin the process to this CPU first (Linux)")
    ap.add_argument("--scale-copies", type=int, default=50, help="capture copies for scaling (50)")
    ap.add_argument("--no-scaling", action="store_true", help="skip the --workers scaling runs")
    args = ap.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    loadavg = " ".join(f"{x:.1f}" for x in os.getloadavg())
    packets = [p.data for p in iter_packets(args.pcap)]
    flows = capture_flows(packets)
    t0 = time.perf_counter()
    package = load_package(["os-default"])
    package_ms = (time.perf_counter() - t0) * 1e3

    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for fd in sorted({*FD_COUNTS, *CURVE}):
            path = Path(tmp) / f"rules-{fd}.txt"
            path.write_text("\n".join(rule_lines(flows, fd, ACL_RULES)) + "\n")
            files[fd] = path
        empty = Path(tmp) / "rss-only.txt"
        empty.write_text("\n".join(SETUP) + "\n")

        loads = []
        for fd in FD_COUNTS:
            print(f"loading {fd} FD + {ACL_RULES} ACL ...", file=sys.stderr, flush=True)
            times = []
            for _ in range(max(1, min(args.repeat, 3))):
                gc.collect()
                t0 = time.perf_counter()
                pipe = load(files[fd], package)
                times.append(time.perf_counter() - t0)
                del pipe
            gc.collect()
            tracemalloc.start()
            pipe = load(files[fd], package)
            retained, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            del pipe
            loads.append(
                {"fd": fd, "acl": ACL_RULES, "s": statistics.median(times), "runs_s": times,
                 "retained_bytes": retained, "peak_bytes": peak}
            )  # fmt: skip

        results = []
        configs: list[tuple[str, Path]] = [("no rules", empty)]
        configs += [
            (f"{fd // 1024}K FD + 1K ACL" if fd else "0 FD + 1K ACL", files[fd]) for fd in FD_COUNTS
        ]
        pipes: dict[str, Pipeline] = {}
        for key, path in configs:
            pipes[key] = load(path, package)
            for ph in process_phases(key, pipes[key], args.pcap, packets):
                print(f"timing {ph.key} ...", file=sys.stderr, flush=True)
                results.append(time_phase(ph, args.repeat, args.min_time))
            if key != "16K FD + 1K ACL":
                del pipes[key]
            gc.collect()

        curve = []
        for fd in CURVE:
            pipe = load(files[fd], package)
            row = {"fd": fd}
            for mode, phase in (("warm", 0), ("nocache", 2)):
                ph = process_phases("curve", pipe, args.pcap, packets)[phase]
                row[f"us_{mode}"] = time_phase(ph, max(1, args.repeat // 2 + 1), args.min_time)[
                    "us_per_packet"
                ]
            curve.append(row)
            del pipe
            gc.collect()

        refs = [time_phase(dpkt_phase(packets), args.repeat, args.min_time),
                time_phase(scapy_phase(packets), args.repeat, args.min_time)]  # fmt: skip
        results += refs
        scale = [] if args.no_scaling else scaling(args.pcap, files[1024], args.scale_copies, 3)

    by = {r["phase"]: r for r in results}
    big = "16K FD + 1K ACL"
    warm = by[f"{big}_warm"]["pps_median"]
    nocache = by[f"{big}_nocache"]["pps_median"]
    scapy, dpk = by["scapy"]["pps_median"], by["dpkt"]["pps_median"]
    try:
        shown = str(args.pcap.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = str(args.pcap)
    res = {
        "pcap": shown,
        "packets": len(packets),
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "loadavg": loadavg,
        "package_ms": package_ms,
        "load": loads,
        "phases": results,
        "curve": curve,
        "scaling": scale,
        "maxrss_mib": maxrss_mib(),
        "ratios": {
            "scapy_pps": scapy,
            "dpkt_pps": dpk,
            "warm_vs_scapy": warm / scapy,
            "warm_vs_dpkt": warm / dpk,
            "nocache_vs_scapy": nocache / scapy,
            "nocache_vs_dpkt": nocache / dpk,
        },
        "target": {
            "pps": TARGET_PPS,
            "measured": warm,
            "cold": by[f"{big}_cold"]["pps_median"],
            "nocache": nocache,
            "stream": by[f"{big}_stream"]["pps_median"],
            "met": warm >= TARGET_PPS,
            "load_s": loads[-1]["s"],
        },
    }
    table = markdown(res)
    emit(res, table, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Parser throughput benchmark: e810pipe vs Scapy vs dpkt on the same packets.

    python bench/bench_parse.py [PCAP] [--repeat N] [--json PATH] [--cpu K]

A benchmark, not a test. The capture (default pcaps/mixed-tunnels.pcap) is read once
into memory as a list of bytes; then every phase runs over that same list:

  e810pipe cold    Parser.parse with a fresh Parser (empty result cache) per pass;
                   os-default profile, VXLAN 4789 and GENEVE 6081 registered
  e810pipe warm    Parser.parse on a Parser whose cache has already seen the packets
  e810pipe stream  end to end: iter_packets over the file + Parser.parse (warm)
  scapy            Ether(raw): Scapy's full dissection, with the contrib layers
                   (MPLS, GENEVE, GTP) and VXLAN bound
  dpkt             dpkt.ethernet.Ethernet(raw), then following .data down to the
                   innermost decoded layer

Each phase is timed N times (--repeat, default 5); a timed repeat makes as many passes
over the packets as it takes to last about --min-time seconds, so fast phases are not
lost in timer noise. The table reports the MEDIAN packets/s of the repeats. The garbage
collector is off while timing (as in timeit) and on otherwise.

Memory is measured in a separate, untimed pass per phase under tracemalloc (which slows
Python down too much to time with it on): "peak" is the tracemalloc peak of that pass
above what was allocated before it. "maxrss" is the process's resource.getrusage
high-water mark after the phase; it only ever grows, so it shows how far each phase
pushed the process (Scapy's import alone adds tens of MB).

The markdown table goes to stdout; --json PATH also writes the results as JSON
(--json - writes the JSON to stdout and the table to stderr).

The target: e810pipe's warm Parser.parse must reach 300,000 packets/s on one core on
the mixed tunnel capture; the last line says whether this run did.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import e810pipe  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from e810pipe.parser import Parser  # noqa: E402
from e810pipe.pcapio import iter_packets  # noqa: E402

DEFAULT_PCAP = ROOT / "pcaps" / "mixed-tunnels.pcap"
TARGET_PPS = 300_000
VXLAN_PORTS = (4789,)
GENEVE_PORTS = (6081,)


def maxrss_mib() -> float:
    """The process's peak resident set size so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1 << 20) if sys.platform == "darwin" else rss / 1024


class Phase:
    """One measured workload.

    ``prepare(passes)`` runs untimed before each timed repeat and returns the state
    ``run(state)`` needs; ``run`` makes the passes and returns how many packets it
    handled. ``memory()`` makes one untimed pass for the tracemalloc measurement.
    """

    def __init__(
        self,
        key: str,
        label: str,
        prepare: Callable[[int], object],
        run: Callable[[object], int],
    ) -> None:
        self.key = key
        self.label = label
        self.prepare = prepare
        self.run = run


def time_phase(phase: Phase, repeat: int, min_time: float) -> dict:
    # Calibrate: one pass, untimed by the results, to size the repeats.
    state = phase.prepare(1)
    gc.collect()
    t0 = time.perf_counter()
    phase.run(state)
    one = max(time.perf_counter() - t0, 1e-6)
    passes = max(1, round(min_time / one))
    rates = []
    for _ in range(repeat):
        state = phase.prepare(passes)
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            count = phase.run(state)
            elapsed = time.perf_counter() - t0
        finally:
            gc.enable()
        rates.append(count / elapsed)
    del state
    # Memory: one more pass under tracemalloc.
    state = phase.prepare(1)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    phase.run(state)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del state
    gc.collect()
    med = statistics.median(rates)
    return {
        "phase": phase.key,
        "label": phase.label,
        "passes_per_repeat": passes,
        "pps_median": med,
        "pps_min": min(rates),
        "pps_max": max(rates),
        "us_per_packet": 1e6 / med,
        "pps_runs": rates,
        "tracemalloc_peak_bytes": peak,
        "maxrss_mib_after": maxrss_mib(),
    }


# ------------------------------------------------------------------------- the phases


def streaming(pcap: Path, handle: Callable[[bytes], object]) -> Callable[[object], int]:
    """A phase body that reads `pcap` from disk and hands each packet to `handle`."""

    def run(passes: object) -> int:
        assert isinstance(passes, int)
        count = 0
        for _ in range(passes):
            for pkt in iter_packets(pcap):
                handle(pkt.data)
                count += 1
        return count

    return run


def e810pipe_phases(pcap: Path, packets: list[bytes], base: Parser) -> list[Phase]:
    n = len(packets)

    def fresh() -> Parser:
        # A new Parser on the already compiled graph: the same as Parser.load(...) but
        # without recompiling; its result cache starts empty.
        return Parser(base.graph, base.window)

    def cold_prepare(passes: int) -> list[Parser]:
        return [fresh() for _ in range(passes)]

    def cold_run(parsers: object) -> int:
        assert isinstance(parsers, list)
        for p in parsers:
            parse = p.parse
            for d in packets:
                parse(d)
        return n * len(parsers)

    warm = fresh()
    for d in packets:
        warm.parse(d)

    def warm_prepare(passes: int) -> int:
        return passes

    def warm_run(passes: object) -> int:
        assert isinstance(passes, int)
        parse = warm.parse
        for _ in range(passes):
            for d in packets:
                parse(d)
        return n * passes

    stream_run = streaming(pcap, warm.parse)

    return [
        Phase("e810pipe_cold", "e810pipe `Parser.parse`, cold cache", cold_prepare, cold_run),
        Phase("e810pipe_warm", "e810pipe `Parser.parse`, warm cache", warm_prepare, warm_run),
        Phase(
            "e810pipe_stream",
            "e810pipe `iter_packets` + `parse` (file, warm)",
            warm_prepare,
            stream_run,
        ),
    ]


def dpkt_phase(packets: list[bytes]) -> Phase:
    import dpkt

    n = len(packets)
    Ethernet = dpkt.ethernet.Ethernet
    Pkt = dpkt.Packet

    def run(passes: object) -> int:
        assert isinstance(passes, int)
        for _ in range(passes):
            for d in packets:
                x = Ethernet(d)
                while isinstance(x, Pkt):
                    x = x.data
        return n * passes

    return Phase("dpkt", "dpkt `Ethernet(raw)` + `.data` walk", lambda k: k, run)


def scapy_phase(packets: list[bytes]) -> Phase:
    # scapy.all binds every standard layer (VXLAN on 4789 among them); the contrib
    # layers must be imported for MPLS, GENEVE and GTP-U to be dissected.
    import scapy.contrib.geneve  # noqa: F401
    import scapy.contrib.gtp  # noqa: F401
    import scapy.contrib.mpls  # noqa: F401
    from scapy.all import Ether

    n = len(packets)

    def run(passes: object) -> int:
        assert isinstance(passes, int)
        for _ in range(passes):
            for d in packets:
                Ether(d)
        return n * passes

    return Phase("scapy", "Scapy `Ether(raw)`", lambda k: k, run)


# ---------------------------------------------------------------------- layer counts


def layer_depths(packets: list[bytes], parser: Parser) -> dict[str, float]:
    """Mean number of headers each tool decodes per packet (how much work each does)."""
    import dpkt
    import scapy.contrib.geneve  # noqa: F401
    import scapy.contrib.gtp  # noqa: F401
    import scapy.contrib.mpls  # noqa: F401
    from scapy.all import Ether, Padding, Raw

    e = d = s = 0
    for raw in packets:
        e += len(parser.parse(raw).headers)
        x = dpkt.ethernet.Ethernet(raw)
        while isinstance(x, dpkt.Packet):
            d += 1
            x = x.data
        layer = Ether(raw)
        while layer and not isinstance(layer, (Raw, Padding)):
            s += 1
            layer = layer.payload
    n = max(len(packets), 1)
    return {"e810pipe": e / n, "dpkt": d / n, "scapy": s / n}


# ---------------------------------------------------------------------------- output


def fmt_bytes(n: float) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    return f"{n / 1024:.1f} KiB"


def emit(res: dict, table: str, json_to: str | None) -> None:
    """Print the table; with --json PATH also write JSON, with --json - JSON to stdout."""
    if json_to == "-":
        print(table, file=sys.stderr)
        json.dump(res, sys.stdout, indent=2)
        print()
        return
    print(table)
    if json_to:
        Path(json_to).write_text(json.dumps(res, indent=2) + "\n")


def markdown(res: dict) -> str:
    rows = res["phases"]
    out = [
        f"`{res['pcap']}`: {res['packets']} packets, {res['bytes']} bytes; "
        f"median of {res['repeat']} repeats; Python {res['python']}, {res['machine']}; "
        f"maxrss before the phases {res['maxrss_mib_start']:.1f} MiB",
        "",
        "| phase | median pkt/s | µs/pkt | min–max pkt/s | tracemalloc peak | maxrss after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['label']} | {r['pps_median']:,.0f} | {r['us_per_packet']:.2f} "
            f"| {r['pps_min']:,.0f}–{r['pps_max']:,.0f} "
            f"| {fmt_bytes(r['tracemalloc_peak_bytes'])} | {r['maxrss_mib_after']:.1f} MiB |"
        )
    ratios = res["ratios"]
    depth = res["mean_headers_per_packet"]
    out += [
        "",
        "| ratio (median pkt/s) | cold | warm |",
        "|---|---:|---:|",
        f"| e810pipe / Scapy | {ratios['cold_vs_scapy']:.1f}× | {ratios['warm_vs_scapy']:.1f}× |",
        f"| e810pipe / dpkt | {ratios['cold_vs_dpkt']:.1f}× | {ratios['warm_vs_dpkt']:.1f}× |",
        "",
        f"Headers decoded per packet (mean): e810pipe {depth['e810pipe']:.2f}, "
        f"Scapy {depth['scapy']:.2f}, dpkt {depth['dpkt']:.2f}. "
        f"Parser.load: {res['load_ms']:.0f} ms; distinct cached parse paths: "
        f"{res['cache_entries']}.",
        "",
    ]
    t = res["target"]
    verdict = "MET" if t["met"] else "NOT MET"
    out.append(
        f"Target ≥ {t['pps']:,} pkt/s (e810pipe warm, one core): **{verdict}** "
        f"({t['measured']:,.0f} pkt/s; cold {t['cold']:,.0f}, stream {t['stream']:,.0f})"
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Parser throughput: e810pipe vs Scapy vs dpkt (median packets/s)."
    )
    ap.add_argument("pcap", nargs="?", type=Path, default=DEFAULT_PCAP)
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats per phase (default 5)")
    ap.add_argument(
        "--min-time",
        type=float,
        default=0.25,
        help="seconds one timed repeat should last at least (default 0.25)",
    )
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON (- = stdout)")
    ap.add_argument("--cpu", type=int, help="pin the process to this CPU first (Linux)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")

    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    packets = [p.data for p in iter_packets(args.pcap)]
    if not packets:
        ap.error(f"{args.pcap}: no packets")

    t0 = time.perf_counter()
    base = Parser.load(["os-default"], vxlan_ports=VXLAN_PORTS, geneve_ports=GENEVE_PORTS)
    load_ms = (time.perf_counter() - t0) * 1e3
    rss_start = maxrss_mib()  # packets read, profile loaded, nothing else imported

    # Each phase is built (and its library imported) only when its turn comes, so the
    # maxrss column shows what each library adds.
    makers: list[Callable[[], list[Phase]]] = [
        lambda: e810pipe_phases(args.pcap, packets, base),
        lambda: [dpkt_phase(packets)],
        lambda: [scapy_phase(packets)],
    ]
    results = []
    for make in makers:
        for ph in make():
            print(f"timing {ph.key} ...", file=sys.stderr, flush=True)
            results.append(time_phase(ph, args.repeat, args.min_time))
    by = {r["phase"]: r for r in results}

    cache_probe = Parser(base.graph, base.window)
    for d in packets:
        cache_probe.parse(d)

    cold = by["e810pipe_cold"]["pps_median"]
    warm = by["e810pipe_warm"]["pps_median"]
    scapy = by["scapy"]["pps_median"]
    dpk = by["dpkt"]["pps_median"]
    try:
        shown = str(args.pcap.resolve().relative_to(Path.cwd()))
    except ValueError:
        shown = str(args.pcap)
    res = {
        "pcap": shown,
        "packets": len(packets),
        "bytes": sum(map(len, packets)),
        "repeat": args.repeat,
        "min_time_s": args.min_time,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_ms": load_ms,
        "cache_entries": len(cache_probe._cache),
        "maxrss_mib_start": rss_start,
        "phases": results,
        "ratios": {
            "cold_vs_scapy": cold / scapy,
            "warm_vs_scapy": warm / scapy,
            "cold_vs_dpkt": cold / dpk,
            "warm_vs_dpkt": warm / dpk,
        },
        "mean_headers_per_packet": layer_depths(packets, base),
        "target": {
            "pps": TARGET_PPS,
            "measured": warm,
            "cold": cold,
            "stream": by["e810pipe_stream"]["pps_median"],
            "met": warm >= TARGET_PPS,
        },
    }
    table = markdown(res)
    emit(res, table, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())

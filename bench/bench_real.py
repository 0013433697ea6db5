"""End-to-end benchmark on traffic of real shape: many flows, few repeats, many rules.

    python bench/bench_real.py [--packets N] [--flows F] [--zipf S] [--repeat R]
                               [--scapy-packets K] [--workers 1,2] [--json PATH]

A benchmark, not a test. It builds (deterministically, seed 1) and caches in a
temporary directory:

  capture  N packets (default 1,000,000) of F distinct flows (default 100,000). Each
           flow is one packet of the bundled captures (pcaps/*.pcap: plain IPv4/IPv6
           TCP/UDP, VLAN, QinQ, MPLS stacks, the GRE variants, NVGRE, VXLAN, GENEVE,
           GTP-U with and without the PDU session container, IPv6 extension headers,
           IPv4 and IPv6 fragments) used as a byte template: its outer destination MAC
           (one of 2,048), every IPv4/IPv6 source and destination address and every
           TCP/UDP source port are rewritten with the flow's own random values (the
           bytes are patched, no packet library runs per packet). Flow k is seen about
           C / k**S times (Zipf-like, S default 1.0, at least once); the packets are
           shuffled and no flow is seen twice in a row.
  rules    15,360 Flow Director 5-tuple rules with a queue and a mark (half of them
           the capture's own plain TCP/UDP flows, so they hit; half random), 1,024
           switch destination-MAC rules to a queue (half of the capture's MACs), RSS on
           all types with Microsoft's key over 16 queues, VXLAN 4789 and GENEVE 6081:
           a testpmd text file plus a small YAML file for the device (16 queues) and
           ice's pipeline mode (priority 0 rules go to the switch).

and measures, median of R runs (default 3) each:

  run       `e810pipe run CAPTURE --rules ... -q` in a subprocess, summary to /dev/null:
            start-up, reading, deciding, the summary; wall time and the child's peak RSS
  run-json  the same with `--json` (one JSON line per packet) to /dev/null
  workers   run-json with --workers W for each W of --workers (default: none)
  startup   `e810pipe run` of a one-packet capture, no rules (median of 5)
  dpkt      dpkt.ethernet.Ethernet(raw) and the .data walk over every packet, in
            memory (this process; dpkt only dissects)
  scapy     Scapy Ether(raw) over K packets (default 20,000) spread evenly over the
            capture (every N/K-th), in memory; reported per packet

Wall time is what the targets speak of; on a shared machine it mostly measures the
other processes, so the CPU time of each child (user + system, from wait4) is shown
too, with the packets per CPU-second it gives, and the references are timed both ways
(wall and process CPU time). The ratios divide e810pipe's end-to-end rate (start-up
and file reading included) by the references' in-memory dissection rate, wall by
wall and CPU by CPU. Targets (issue "speed on real
traffic"): >= 500,000 pkt/s, >= 100x Scapy, >= 5x dpkt; peak RSS <= 150 MiB;
one-packet run <= 0.3 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    import e810pipe  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(ROOT))

from e810pipe.parser import Parser  # noqa: E402
from e810pipe.pcapio import iter_packets  # noqa: E402

GEN_VERSION = 2  # bump when the generator changes, so cached captures are rebuilt
PROFILE = "comms"  # parses GTP-U too
FD_RULES = 15_360
SWITCH_RULES = 1_024
MAC_POOL = 2_048
QUEUES = 16
TARGET_PPS = 500_000
TARGET_SCAPY = 100
TARGET_DPKT = 5
TARGET_RSS_MIB = 150
TARGET_STARTUP_S = 0.3
SETUP = [
    "port config 0 udp_tunnel_port add vxlan 4789",
    "port config 0 udp_tunnel_port add geneve 6081",
    "port config all rss all",
    "port config 0 rss-hash-key ipv4 6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da3"
    "8030f20c6a42b73bbeac01fa6d5a56da255b0ec24167253d",
]
DEVICE_YAML = f"""\
device:
  pfs:
    - rxq: {QUEUES}
pipeline: {{mode: pipeline}}
"""
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


# --------------------------------------------------------------------- templates


class Template:
    """One bundled packet and the byte ranges a flow rewrites."""

    __slots__ = ("data", "slots", "plain")

    def __init__(self, data: bytes, slots: list[tuple[int, int]], plain: tuple | None) -> None:
        self.data = data
        self.slots = slots  # (offset, length): outer dst MAC first, then addresses, ports
        # plain (untunnelled, unfragmented) TCP/UDP: (ip, l4, ip offset, l4 offset)
        self.plain = plain


def templates(parser: Parser) -> list[Template]:
    out = []
    for pcap in sorted((ROOT / "pcaps").glob("*.pcap")):
        for pkt in iter_packets(pcap):
            res = parser.parse(pkt.data)
            names = [h.name for h in res.headers]
            slots: list[tuple[int, int]] = [(0, 6)]
            ips = []
            l4s = []
            for h in res.headers:
                if h.name == "ipv4" and h.offset + 20 <= len(pkt.data):
                    slots += [(h.offset + 12, 4), (h.offset + 16, 4)]
                    ips.append(("ipv4", h.offset))
                elif h.name == "ipv6" and h.offset + 40 <= len(pkt.data):
                    slots += [(h.offset + 8, 16), (h.offset + 24, 16)]
                    ips.append(("ipv6", h.offset))
                elif h.name in ("tcp", "udp") and h.offset + 4 <= len(pkt.data):
                    slots.append((h.offset, 2))  # the source port: tunnel ports stay
                    l4s.append((h.name, h.offset))
            plain = None
            if (
                len(ips) == 1
                and len(l4s) == 1
                and names[-1] in ("tcp", "udp")
                and not res.flags
                and res.status == "ok"
            ):
                plain = (ips[0][0], l4s[0][0], ips[0][1], l4s[0][1])
            out.append(Template(pkt.data, slots, plain))
    return out


# ------------------------------------------------------------------------ capture


def zipf_counts(packets: int, flows: int, s: float) -> list[int]:
    """Per-flow packet counts ~ C / rank**s, each at least 1, summing to `packets`."""
    flows = min(flows, packets)
    w = [1.0 / (k**s) for k in range(1, flows + 1)]
    lo, hi = 0.0, float(packets)
    for _ in range(60):
        c = (lo + hi) / 2
        total = sum(max(1, int(c * x)) for x in w)
        if total > packets:
            hi = c
        else:
            lo = c
    counts = [max(1, int(lo * x)) for x in w]
    counts[0] += packets - sum(counts)
    return counts


def no_repeats(seq: list[int], rng: random.Random) -> None:
    """Move packets so that no flow is seen twice in a row (where possible)."""
    n = len(seq)
    for i in range(1, n):
        if seq[i] != seq[i - 1]:
            continue
        for _ in range(64):
            j = rng.randrange(n)
            a, b = seq[j], seq[i]
            if (
                a != seq[i - 1]
                and (i + 1 >= n or a != seq[i + 1])
                and b != seq[j - 1]
                and (j + 1 >= n or b != seq[j + 1])
            ):
                seq[i], seq[j] = a, b
                break


def build(args: argparse.Namespace, cache: Path) -> dict:
    """Generate the capture and the rules (or reuse the cached ones)."""
    parser = Parser.load([args.profile], vxlan_ports=[4789], geneve_ports=[6081])
    tpls = templates(parser)
    key = hashlib.sha256(
        json.dumps(
            [GEN_VERSION, args.packets, args.flows, args.zipf, args.profile, args.seed]
        ).encode()
        + b"".join(t.data for t in tpls)
    ).hexdigest()[:16]
    pcap = cache / f"real-{key}.pcap"
    rules = cache / f"real-{key}.rules.txt"
    device = cache / f"real-{key}.device.yaml"
    meta = cache / f"real-{key}.json"
    one = cache / "one.pcap"
    if all(p.exists() for p in (pcap, rules, device, meta, one)):
        return {**json.loads(meta.read_text()), "pcap": pcap, "rules": rules, "device": device,
                "one": one, "cached": True}  # fmt: skip
    t0 = time.perf_counter()
    rng = random.Random(args.seed)
    macs = [bytes([2, 0, 0]) + rng.randbytes(3) for _ in range(MAC_POOL)]
    flows: list[bytes] = []
    plain: list[tuple] = []
    for _ in range(min(args.flows, args.packets)):
        t = tpls[rng.randrange(len(tpls))]
        b = bytearray(t.data)
        b[0:6] = macs[rng.randrange(MAC_POOL)]
        for off, ln in t.slots[1:]:
            b[off : off + ln] = rng.randbytes(ln)
        flows.append(bytes(b))
        if t.plain is not None:
            plain.append((len(flows) - 1, *t.plain))
    counts = zipf_counts(args.packets, len(flows), args.zipf)
    order = list(range(len(flows)))
    rng.shuffle(order)  # which flow gets which popularity rank
    seq = [order[rank] for rank, c in enumerate(counts) for _ in range(c)]
    rng.shuffle(seq)
    no_repeats(seq, rng)
    with open(pcap, "wb") as f:
        f.write(PCAP_HEADER)
        pack = struct.Struct("<IIII").pack
        buf = []
        for i, k in enumerate(seq):
            d = flows[k]
            buf.append(pack(1_700_000_000 + i // 1_000_000, i % 1_000_000, len(d), len(d)))
            buf.append(d)
            if len(buf) >= 8192:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
    # rules: the capture's own plain flows first (the most popular first), then random
    rank = {k: r for r, k in enumerate(order)}
    plain.sort(key=lambda p: rank[p[0]])
    lines = list(SETUP)
    for i, (k, ip, l4, ipo, l4o) in enumerate(plain[: FD_RULES // 2]):
        d = flows[k]
        if ip == "ipv4":
            src, dst = _v4(d[ipo + 12 : ipo + 16]), _v4(d[ipo + 16 : ipo + 20])
        else:
            src, dst = _v6(d[ipo + 8 : ipo + 24]), _v6(d[ipo + 24 : ipo + 40])
        sp, dp = struct.unpack_from("!HH", d, l4o)
        lines.append(_fd(i, ip, src, dst, l4, sp, dp))
    kinds = [("ipv4", "tcp"), ("ipv4", "udp"), ("ipv6", "tcp"), ("ipv6", "udp")]
    while len(lines) < len(SETUP) + FD_RULES:
        i = len(lines) - len(SETUP)
        ip, l4 = kinds[i % 4]
        if ip == "ipv4":
            src, dst = _v4(rng.randbytes(4)), _v4(rng.randbytes(4))
        else:
            src, dst = _v6(rng.randbytes(16)), _v6(rng.randbytes(16))
        lines.append(_fd(i, ip, src, dst, l4, rng.randrange(65536), rng.randrange(65536)))
    for i, m in enumerate(macs[:: MAC_POOL // SWITCH_RULES][:SWITCH_RULES]):
        lines.append(
            f"flow create 0 priority 0 ingress pattern eth dst is {_mac(m)} / end "
            f"actions queue index {i % QUEUES} / end"
        )
    rules.write_text("\n".join(lines) + "\n")
    device.write_text(DEVICE_YAML)
    with open(one, "wb") as f:
        d = flows[0]
        f.write(PCAP_HEADER + struct.pack("<IIII", 0, 0, len(d), len(d)) + d)
    info = {
        "packets": len(seq),
        "flows": len(flows),
        "distinct_seen": len(set(seq)),
        "top_flow_packets": max(counts),
        "flows_seen_once": sum(1 for c in counts if c == 1),
        "fd_rules": FD_RULES,
        "fd_rules_on_capture_flows": min(len(plain), FD_RULES // 2),
        "switch_rules": SWITCH_RULES,
        "templates": len(tpls),
        "bytes": pcap.stat().st_size,
        "generate_s": time.perf_counter() - t0,
    }
    meta.write_text(json.dumps(info))
    return {**info, "pcap": pcap, "rules": rules, "device": device, "one": one, "cached": False}


def _v4(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def _v6(b: bytes) -> str:
    return ":".join(b[i : i + 2].hex() for i in range(0, 16, 2))


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _fd(i: int, ip: str, src: str, dst: str, l4: str, sp: int, dp: int) -> str:
    return (
        f"flow create 0 priority 1 ingress pattern eth / {ip} src is {src} dst is {dst} / "
        f"{l4} src is {sp} dst is {dp} / end actions queue index {i % QUEUES} / "
        f"mark id {i} / end"
    )


# ------------------------------------------------------------------------ timing


def run_child(cmd: Sequence[str]) -> tuple[float, float, float]:
    """Run `cmd` with stdout to /dev/null: wall seconds, the child's peak RSS in MiB and
    its CPU seconds (user + system, its own children included: --workers)."""
    env = dict(os.environ)
    # as installed: pip compiles the modules, so a run does not compile them each time
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(e810pipe.__file__).resolve().parents[1]), env.get("PYTHONPATH"))
        if p
    )  # fmt: skip
    t0 = time.perf_counter()
    # cwd: a directory without an e810pipe/ in it, so `-m` imports the one on PYTHONPATH
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tempfile.gettempdir()
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {proc.returncode}\n{err.decode(errors='replace')}")
    rss = usage.ru_maxrss / (1 << 20) if sys.platform == "darwin" else usage.ru_maxrss / 1024
    return wall, rss, usage.ru_utime + usage.ru_stime


def e810pipe_cmd(info: dict, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "e810pipe", "run", str(info["pcap"]), "--profile", PROFILE,
        "--rules", str(info["device"]), "--rules", str(info["rules"]), "-q", *extra,
    ]  # fmt: skip


def timed_runs(label: str, cmd: list[str], repeat: int, packets: int) -> dict:
    walls, rsss, cpus = [], [], []
    for i in range(repeat):
        wall, rss, cpu = run_child(cmd)
        walls.append(wall)
        rsss.append(rss)
        cpus.append(cpu)
        print(
            f"  {label} {i + 1}/{repeat}: {wall:.2f} s wall, {cpu:.2f} s CPU, {rss:.0f} MiB",
            file=sys.stderr,
        )
    med = statistics.median(walls)
    return {
        "label": label,
        "wall_s": med,
        "walls_s": walls,
        "cpu_s": statistics.median(cpus),
        "cpus_s": cpus,
        "pps": packets / med,
        "pps_cpu": packets / statistics.median(cpus),
        "peak_rss_mib": max(rsss),
    }


def read_packets(pcap: Path) -> list[bytes]:
    return [p.data for p in iter_packets(pcap)]


def dpkt_rate(packets: list[bytes], repeat: int) -> tuple[float, float]:
    """Median packets/s over `repeat` passes: by the wall clock and by CPU time."""
    import dpkt

    eth, pkt = dpkt.ethernet.Ethernet, dpkt.Packet
    rates, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for d in packets:
            x = eth(d)
            while isinstance(x, pkt):
                x = x.data
        rates.append(len(packets) / (time.perf_counter() - t0))
        cpu.append(len(packets) / (time.process_time() - c0))
    return statistics.median(rates), statistics.median(cpu)


def scapy_rate(packets: list[bytes], repeat: int) -> tuple[float, float]:
    import scapy.contrib.geneve  # noqa: F401
    import scapy.contrib.gtp  # noqa: F401
    import scapy.contrib.mpls  # noqa: F401
    from scapy.all import Ether

    rates, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        for d in packets:
            Ether(d)
        rates.append(len(packets) / (time.perf_counter() - t0))
        cpu.append(len(packets) / (time.process_time() - c0))
    return statistics.median(rates), statistics.median(cpu)


# ------------------------------------------------------------------------ output


def markdown(res: dict) -> str:
    c = res["capture"]
    out = [
        f"{c['packets']:,} packets, {c['distinct_seen']:,} distinct flows (Zipf s={res['zipf']}, "
        f"top flow {c['top_flow_packets']:,} packets, {c['flows_seen_once']:,} flows seen once), "
        f"{c['templates']} templates from pcaps/*.pcap; {c['fd_rules']:,} FD 5-tuple rules "
        f"({c['fd_rules_on_capture_flows']:,} on the capture's flows) + {c['switch_rules']:,} "
        f"switch dst-MAC rules + RSS; profile {PROFILE}; median of {res['repeat']} runs; "
        f"Python {res['python']}, {res['machine']}; load average at start {res['loadavg']}",
        "",
        "| measurement | wall | pkt/s | × Scapy | × dpkt | CPU | pkt/CPU-s | × Scapy | × dpkt "
        "| peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ref = res["refs"]
    scapy, dpk = ref["scapy_pps"], ref["dpkt_pps"]
    for r in res["runs"]:
        cpu = (
            f"{r['cpu_s']:.2f} s | {r['pps_cpu']:,.0f} "
            f"| {r['pps_cpu'] / ref['scapy_pps_cpu']:.1f}× "
            f"| {r['pps_cpu'] / ref['dpkt_pps_cpu']:.2f}×"
            if "--workers" not in r["label"]
            else "— | — | — | —"  # the workers are the fork server's children: not counted
        )
        out.append(
            f"| {r['label']} | {r['wall_s']:.2f} s | {r['pps']:,.0f} | {r['pps'] / scapy:.1f}× "
            f"| {r['pps'] / dpk:.2f}× | {cpu} | {r['peak_rss_mib']:.0f} MiB |"
        )
    s = res["startup"]
    out += [
        f"| one-packet `run` (start-up) | {s['wall_s']:.3f} s | | | | {s['cpu_s']:.3f} s | | | "
        f"| {s['peak_rss_mib']:.0f} MiB |",
        "",
        f"References, in memory, this process: dpkt {dpk:,.0f} pkt/s wall, "
        f"{ref['dpkt_pps_cpu']:,.0f} per CPU-second (all packets); Scapy {scapy:,.0f} pkt/s "
        f"wall, {ref['scapy_pps_cpu']:,.0f} per CPU-second ({ref['scapy_packets']:,} packets "
        "spread over the capture).",
        "",
    ]
    main = res["runs"][0]
    checks = [
        (f"≥ {TARGET_PPS:,} pkt/s", main["pps"] >= TARGET_PPS, f"{main['pps']:,.0f}"),
        (f"≥ {TARGET_SCAPY}× Scapy", main["pps"] / scapy >= TARGET_SCAPY,
         f"{main['pps'] / scapy:.1f}×"),
        (f"≥ {TARGET_DPKT}× dpkt", main["pps"] / dpk >= TARGET_DPKT, f"{main['pps'] / dpk:.2f}×"),
        (f"peak RSS ≤ {TARGET_RSS_MIB} MiB", main["peak_rss_mib"] <= TARGET_RSS_MIB,
         f"{main['peak_rss_mib']:.0f} MiB"),
        (f"one-packet run ≤ {TARGET_STARTUP_S} s", s["wall_s"] <= TARGET_STARTUP_S,
         f"{s['wall_s']:.3f} s"),
    ]  # fmt: skip
    out.append(
        "Targets (run, summary): "
        + "; ".join(f"{t}: **{'MET' if ok else 'NOT MET'}** ({v})" for t, ok, v in checks)
    )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="End to end on real-shaped traffic.")
    ap.add_argument("--packets", type=int, default=1_000_000, help="capture size (1,000,000)")
    ap.add_argument("--flows", type=int, default=100_000, help="distinct flows (100,000)")
    ap.add_argument("--zipf", type=float, default=1.0, help="Zipf exponent of flow sizes (1.0)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default=PROFILE, help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (3)")
    ap.add_argument("--scapy-packets", type=int, default=20_000, help="Scapy sample (20,000)")
    ap.add_argument("--workers", default="", help="also time --json with these worker counts")
    ap.add_argument("--no-json-run", action="store_true", help="skip the --json run")
    ap.add_argument("--cache", type=Path, help="where to keep the generated files")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON (- = stdout)")
    args = ap.parse_args(argv)
    if args.packets < 1 or args.flows < 1 or args.repeat < 1:
        ap.error("--packets, --flows and --repeat must be positive")
    loadavg = " ".join(f"{x:.1f}" for x in os.getloadavg())
    cache = args.cache or Path(tempfile.gettempdir()) / "e810pipe-bench-real"
    cache.mkdir(parents=True, exist_ok=True)
    info = build(args, cache)
    print(
        f"capture {info['pcap']} ({'cached' if info['cached'] else 'generated'}): "
        f"{info['packets']:,} packets, {info['flows']:,} flows",
        file=sys.stderr,
    )
    n = info["packets"]
    runs = [timed_runs("`run` (summary)", e810pipe_cmd(info), args.repeat, n)]
    if not args.no_json_run:
        runs.append(timed_runs("`run --json` > /dev/null", e810pipe_cmd(info, "--json"),
                               args.repeat, n))  # fmt: skip
    for w in (int(x) for x in args.workers.split(",") if x.strip()):
        runs.append(
            timed_runs(
                f"`run --json --workers {w}`",
                e810pipe_cmd(info, "--json", "--workers", str(w)),
                args.repeat,
                n,
            )  # fmt: skip
        )
    one = [sys.executable, "-m", "e810pipe", "run", str(info["one"])]
    startup = timed_runs("start-up", one, 5, 1)
    packets = read_packets(info["pcap"])
    print("  dpkt ...", file=sys.stderr)
    dpk, dpk_cpu = dpkt_rate(packets, args.repeat)
    step = max(1, len(packets) // max(1, args.scapy_packets))
    sample = packets[::step][: args.scapy_packets]
    del packets
    print(f"  scapy ({len(sample):,} packets) ...", file=sys.stderr)
    scapy, scapy_cpu = scapy_rate(sample, args.repeat)
    res = {
        "capture": {k: v for k, v in info.items() if not isinstance(v, Path)},
        "zipf": args.zipf,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "loadavg": loadavg,
        "runs": runs,
        "startup": startup,
        "refs": {
            "dpkt_pps": dpk,
            "dpkt_pps_cpu": dpk_cpu,
            "scapy_pps": scapy,
            "scapy_pps_cpu": scapy_cpu,
            "scapy_packets": len(sample),
        },
    }
    table = markdown(res)
    if args.json == "-":
        print(table, file=sys.stderr)
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        print(table)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `e810pipe` command line.

Exit codes (also in the README):
    0  success
    1  a check failed (reserved for `check` and `fuzz`)
    2  bad command-line usage
    3  a DDP profile is invalid (file:line:column in the message)
    4  a capture file cannot be read (packet index and byte offset in the message)
    5  a rule or device command was rejected
   70  internal error (a bug: please report it with the input that caused it)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from . import __version__, parallel
from .control import Controller, Setup, apply_tables, build_pipeline, configure, read_setup
from .errors import E810PipeError, RuleError, UsageError
from .package import Package, load_package
from .parser import DEFAULT_WINDOW, Parser, ParseResult
from .pcapio import LINKTYPE_ETHERNET, PcapWriter, iter_packets
from .pipeline import Pipeline
from .progress import PCAP_RECORD, progress_for
from .report import add_run_options, check_parallel, run_extras
from .resources import stock_profile_names
from .trace import format_trace

EXIT_INTERNAL = 70


def profile_stack(refs: Sequence[str] | None) -> list[str]:
    """Turn repeated --profile options into a stack: one stock package, then user files.

    A stock name ("os-default", "comms") picks the base package; any other value is
    a path to a user profile added on top. Without a stock name the base is
    os-default.
    """
    stock = stock_profile_names()
    base = "os-default"
    users: list[str] = []
    for ref in refs or ():
        if ref in stock:
            base = ref
        else:
            users.append(ref)
    return [base, *users]


def add_parser_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--profile",
        action="append",
        metavar="NAME|PATH",
        help="stock package (os-default, comms) or a user profile to add on top; repeatable",
    )
    p.add_argument("--vxlan-port", type=int, action="append", default=[], metavar="N")
    p.add_argument("--geneve-port", type=int, action="append", default=[], metavar="N")
    p.add_argument("--vxlan-gpe-port", type=int, action="append", default=[], metavar="N")
    p.add_argument("--dvm", action="store_true", help="double-VLAN mode")
    p.add_argument(
        "--window",
        type=int,
        default=DEFAULT_WINDOW,
        metavar="BYTES",
        help=f"parser window in bytes (default {DEFAULT_WINDOW}, as ICE_PARSER_MAX_PKT_LEN)",
    )


def check_parser_options(args: argparse.Namespace) -> None:
    for name in ("vxlan_port", "geneve_port", "vxlan_gpe_port"):
        for port in getattr(args, name):
            if not 0 < port < 65536:
                raise UsageError(f"--{name.replace('_', '-')} {port}: a UDP port is 1..65535")
    if not 14 <= args.window <= 65535:
        raise UsageError(f"--window {args.window}: use 14..65535 bytes")


def build_parser(args: argparse.Namespace) -> Parser:
    check_parser_options(args)
    package = load_package(profile_stack(args.profile))
    return Parser.load(
        package=package,
        vxlan_ports=args.vxlan_port,
        geneve_ports=args.geneve_port,
        vxlan_gpe_ports=args.vxlan_gpe_port,
        dvm=args.dvm,
        window=args.window,
    )


def ethernet_packets(paths: Sequence[str], skipped: list[str]) -> Iterator[tuple[str, int, bytes]]:
    """Yield (file, index, bytes) for Ethernet packets; note the others in `skipped`."""
    for path in paths:
        for pkt in iter_packets(path):
            if pkt.linktype != LINKTYPE_ETHERNET:
                skipped.append(f"{path}: packet {pkt.index}: link type {pkt.linktype}")
                continue
            yield path, pkt.index, pkt.data


def _po_text(res: ParseResult, parser: Parser) -> str:
    names = {v: k for k, v in parser.package.proto_ids.items()}
    return " ".join(f"{names.get(pid, pid)}@{off}" for pid, off in res.po)


def cmd_parse(args: argparse.Namespace, out: TextIO) -> int:
    if parallel.wanted(args):
        return parallel.cmd_parse_parallel(args, out)
    parser = build_parser(args)
    skipped: list[str] = []
    several = len(args.pcap) > 1
    count = 0
    if not args.json:
        out.write(f"# {parser.package.title}; window {parser.window} bytes\n")
        out.write(f"{'index':>6} {'len':>5}  {'ptype':<40} {'status':<16} path\n")
    bar = progress_for(args.pcap, sys.stderr, args.quiet)
    for path, index, data in ethernet_packets(args.pcap, skipped):
        res = parser.parse(data)
        count += 1
        if bar is not None:
            bar.advance(1, len(data) + PCAP_RECORD)
        if args.json:
            obj = res.to_json(index, len(data))
            if several:
                obj = {"file": path, **obj}
            out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        else:
            hdrs = " / ".join(f"{h.name}@{h.offset}" for h in res.headers)
            pt = f"{res.ptype} {res.ptype_name}"
            out.write(f"{index:>6} {len(data):>5}  {pt:<40} {res.status:<16} {hdrs}\n")
            if args.verbose:
                out.write(f"{'':14}po: {_po_text(res, parser)}\n")
                if res.flags:
                    out.write(f"{'':14}flags: {' '.join(res.flags)}\n")
    if bar is not None:
        bar.close()
    if skipped:
        sys.stderr.write(
            f"e810pipe: skipped {len(skipped)} packet(s) that are not Ethernet; "
            f"first: {skipped[0]}\n"
        )
    if not args.json:
        out.write(f"# {count} packet(s) parsed, {len(skipped)} skipped (not Ethernet)\n")
    return 0


def read_args_setup(args: argparse.Namespace) -> tuple[Package, Setup]:
    """The package and setup that --profile, --rules, --cmd and the parser options give."""
    check_parser_options(args)
    package = load_package(profile_stack(args.profile))
    setup = read_setup(args.rules, args.cmd)
    for kind, ports in (
        ("vxlan", args.vxlan_port),
        ("geneve", args.geneve_port),
        ("vxlan_gpe", args.vxlan_gpe_port),
    ):
        setup.ports.setdefault(kind, set()).update(ports)
    setup.dvm = setup.dvm or args.dvm
    return package, setup


def setup_pipeline(args: argparse.Namespace, out: TextIO | None = None) -> Pipeline:
    """Build the pipeline from --profile, --rules, --cmd and the tunnel-port options."""
    package, setup = read_args_setup(args)
    pipe, lines = configure(package, setup, window=args.window)
    if out is not None and lines and not getattr(args, "json", False):
        for line in lines:
            out.write(f"# {line}\n")
    return pipe


def add_rule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rules",
        action="append",
        default=[],
        metavar="FILE",
        help="testpmd commands (text) or a YAML device-and-rules file; repeatable",
    )
    p.add_argument(
        "--cmd",
        action="append",
        default=[],
        metavar="TESTPMD COMMAND",
        help="one testpmd command, e.g. 'flow create 0 pattern ... / end actions ... / end'",
    )


class _Split:
    """One pcap per queue (queue-N.pcap, N the device queue) plus drop.pcap."""

    def __init__(self, directory: str) -> None:
        import os

        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.writers: dict[str, PcapWriter] = {}

    def write(self, name: str, data: bytes) -> None:
        w = self.writers.get(name)
        if w is None:
            w = PcapWriter(f"{self.dir}/{name}.pcap")
            self.writers[name] = w
        w.write(data)

    def close(self) -> None:
        for w in self.writers.values():
            w.close()


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    if parallel.wanted(args):
        check_parallel(args)
        return parallel.cmd_run_parallel(args, out)
    pipe = setup_pipeline(args, out)
    skipped: list[str] = []
    split = _Split(args.split) if args.split else None
    several = len(args.pcap) > 1
    traced = False
    extras = run_extras(args, pipe)  # --html and the progress bar; None: neither
    try:
        for path, index, data in ethernet_packets(args.pcap, skipped):
            dec = pipe.process(data)
            if extras is not None:
                extras.packet(path, index, data, dec)
            if split is not None:
                split.write("drop" if dec.drop else f"queue-{dec.queue}", data)
            if args.json:
                obj = dec.to_json(index)
                if several:
                    obj = {"file": path, **obj}
                out.write(json.dumps(obj, separators=(",", ":")) + "\n")
            if args.trace is not None and index == args.trace and not traced:
                traced = True
                sys.stderr.write(format_trace(pipe, dec, data, index) + "\n")
    finally:
        if split is not None:
            split.close()
        if extras is not None:
            extras.close()
    if extras is not None:
        extras.finish(len(skipped))
    if skipped:
        sys.stderr.write(
            f"e810pipe: skipped {len(skipped)} packet(s) that are not Ethernet; "
            f"first: {skipped[0]}\n"
        )
    if not args.json:
        write_summary(pipe, out, len(skipped))
    return 0


def write_summary(pipe: Pipeline, out: TextIO, skipped: int) -> None:
    c = pipe.counters
    dev = pipe.device
    engines: dict[str, int] = {}
    for e in pipe.rules.values():
        engines[e.engine] = engines.get(e.engine, 0) + 1
    out.write(
        f"# {pipe.package.title}; {len(dev.pfs)} PF(s), {len(dev.vsis)} VSI(s), "
        f"{dev.total_queues} queue(s); rules: "
        + (", ".join(f"{k} {v}" for k, v in sorted(engines.items())) or "none")
        + "\n"
    )
    dropped = sum(c.drops.values())
    queued = sum(c.per_queue.values())
    out.write(
        f"packets: {c.packets + skipped} read, {queued} to queues, {dropped} dropped, "
        f"{skipped} skipped (not Ethernet)\n"
    )
    out.write("\nper queue:\n  queue  vsi            vsi-queue  packets\n")
    for q, n in sorted(c.per_queue.items()):
        v = next((x for x in dev.vsis if x.owns(q)), None)
        name = v.name if v else "?"
        rel = q - v.base_queue if v else q
        out.write(f"  {q:>5}  {name:<14} {rel:>9}  {n:>7}\n")
    out.write("\nper VSI:\n")
    for name, n in sorted(c.per_vsi.items()):
        out.write(f"  {name:<14} {n:>7}\n")
    out.write("\ndrops by reason:\n")
    for reason, n in sorted(c.drops.items(), key=lambda kv: -kv[1]):
        out.write(f"  {n:>7}  {reason}\n")
    if not c.drops:
        out.write("  none\n")
    out.write("\nhits per rule:\n  rule  engine  hits     bytes     rule\n")
    for rid, e in sorted(pipe.rules.items()):
        out.write(f"  {rid:>4}  {e.engine:<6}  {e.hits:>7}  {e.bytes:>9}  {e.rule.text}\n")
    if not pipe.rules:
        out.write("  no rules\n")
    out.write("\nper PTYPE:\n")
    for pt, n in sorted(c.per_ptype.items()):
        name = pipe.package.ptypes[pt].name if pt in pipe.package.ptypes else "NO_PTYPE"
        out.write(f"  {pt:>5}  {name:<40} {n:>7}\n")


def cmd_trace(args: argparse.Namespace, out: TextIO) -> int:
    pipe = setup_pipeline(args, out)
    skipped: list[str] = []
    for _path, index, data in ethernet_packets([args.pcap], skipped):
        dec = pipe.process(data)
        if index == args.index:
            out.write(format_trace(pipe, dec, data, index) + "\n")
            return 0
    raise UsageError(f"{args.pcap} has no Ethernet packet with index {args.index}")


def cmd_flow_validate(args: argparse.Namespace, out: TextIO) -> int:
    package, setup = read_args_setup(args)
    pipe = build_pipeline(package, setup, window=args.window)
    ctl = Controller(pipe)
    failed = 0
    rejected = []
    for cmd, extra in setup.commands:
        where = getattr(cmd, "where", "")
        try:
            for line in ctl.apply(cmd, extra):
                out.write(f"{where}: {line}\n")
        except RuleError as err:
            failed += 1
            out.write(f"{where}: {err}\n")
            rejected.append(getattr(cmd, "rule", None))
    apply_tables(pipe, setup)
    out.write(f"# {len(setup.commands)} command(s), {failed} rejected\n")
    findings = []
    if args.analyze:
        from .analysis import analyze, explain_rejected

        hints = (explain_rejected(pipe, r) for r in rejected if r is not None)
        findings = [h for h in hints if h is not None] + analyze(pipe)
        for f in findings:
            out.write(f"{f}\n")
        out.write(f"# analysis: {len(findings)} finding(s)\n")
    if failed:
        return 5
    return 1 if findings and args.strict else 0


def cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    """Run scenario files; exit 0 if every expectation holds, 1 if not, 2 on bad input."""
    from .scenario import format_outcomes, load_scenario

    failed = 0
    for path in args.scenario:
        try:
            sc = load_scenario(path)
            outcomes = sc.run()
        except E810PipeError as err:
            sys.stderr.write(f"e810pipe: {err}\n")
            return 2
        failed += sum(1 for o in outcomes if not o.passed)
        if args.json:
            for o in outcomes:
                out.write(json.dumps(o.to_json(path), separators=(",", ":")) + "\n")
        else:
            out.write(format_outcomes(sc, outcomes) + "\n\n")
    return 1 if failed else 0


def make_argparser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="e810pipe",
        description="A software model of the Intel E810 (ice) receive pipeline.",
        epilog="Exit codes: 0 ok, 1 check failed, 2 usage, 3 profile error, "
        "4 capture error, 5 rule error, 70 internal error.",
    )
    ap.add_argument("--version", action="version", version=f"e810pipe {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("parse", help="run the parser over captures and print each result")
    p.add_argument("pcap", nargs="+", metavar="PCAP")
    add_parser_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per packet per line")
    p.add_argument("-v", "--verbose", action="store_true", help="also print po and flags")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar on stderr (drawn on a tty)"
    )
    parallel.add_cli_options(p)
    p.set_defaults(func=cmd_parse)

    r = sub.add_parser("run", help="run captures through the whole pipeline")
    r.add_argument("pcap", nargs="+", metavar="PCAP")
    add_parser_options(r)
    add_rule_options(r)
    r.add_argument("--json", action="store_true", help="one JSON decision per packet per line")
    r.add_argument("--split", metavar="DIR", help="write one pcap per queue (and drop.pcap)")
    r.add_argument("--trace", type=int, metavar="N", help="also explain packet N on stderr")
    parallel.add_cli_options(r)
    add_run_options(r)
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("trace", help="explain one packet's way through the pipeline")
    t.add_argument("pcap", metavar="PCAP")
    t.add_argument("--index", type=int, default=0, metavar="N", help="packet index (0-based)")
    add_parser_options(t)
    add_rule_options(t)
    t.set_defaults(func=cmd_trace)

    fl = sub.add_parser("flow", help="check flow rules without packets")
    fsub = fl.add_subparsers(dest="flow_command", metavar="SUBCOMMAND")
    fsub.required = True
    fv = fsub.add_parser("validate", help="apply the rules and report each one's fate")
    add_parser_options(fv)
    add_rule_options(fv)
    fv.add_argument(
        "--analyze",
        action="store_true",
        help="also report shadowed, overlapping and unproducible rules",
    )
    fv.add_argument("--strict", action="store_true", help="with --analyze: exit 1 on findings")
    fv.set_defaults(func=cmd_flow_validate)

    ck = sub.add_parser("check", help="run scenario files and check where packets land")
    ck.add_argument("scenario", nargs="+", metavar="SCENARIO")
    ck.add_argument("--json", action="store_true", help="one JSON object per expectation")
    ck.set_defaults(func=cmd_check)

    # extra commands: each module registers its own subcommand(s) here
    # (one line per module: `from .MODULE import register_cli as _r; _r(sub)`)
    from .schema import register_cli as _r

    _r(sub)
    from .drawing import register_cli as _r

    _r(sub)
    from .fuzz import register_cli as _r

    _r(sub)

    prof = sub.add_parser("profile", help="work with DDP profiles")
    psub = prof.add_subparsers(dest="profile_command", metavar="SUBCOMMAND")
    psub.required = True
    from .lint import register_profile_cli

    register_profile_cli(psub)  # profile check, profile diff
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = make_argparser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # argparse already printed the usage message
        return int(exc.code or 0) if exc.code in (0, None) else 2
    try:
        return int(args.func(args, sys.stdout))
    except E810PipeError as err:
        sys.stderr.write(f"e810pipe: {err}\n")
        return err.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # pragma: no cover - a bug; say so without a traceback dump
        sys.stderr.write(
            f"e810pipe: internal error: {type(err).__name__}: {err}\n"
            "This is a bug in e810pipe; set E810PIPE_DEBUG=1 for a traceback.\n"
        )
        import os

        if os.environ.get("E810PIPE_DEBUG"):
            raise
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

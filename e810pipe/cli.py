"""The `e810pipe` command line.

Exit codes (also in the README):
    0  success
    1  a check failed (reserved for `check` and `fuzz`)
    2  bad command-line usage
    3  a DDP profile is invalid (file:line:column in the message)
    4  a capture file cannot be read (packet index and byte offset in the message)
    5  a rule or device command was rejected
    6  an output cannot be written (no space left, permission denied...)
    7  a service (a Dask scheduler) did not answer as expected, or in time
   70  internal error (a bug: please report it with the input that caused it)
  130  interrupted (Ctrl-C); files written so far end on a whole record
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from . import __version__, parallel
from .build import (
    add_parser_options,
    add_rule_options,
    build_parser,
    ethernet_packets,
    ethernet_records,
    packet_arg,
    po_text,
    read_args_setup,
    setup_pipeline,
)
from .control import Controller, apply_tables, build_pipeline
from .errors import E810PipeError, OutputError, RuleError, UsageError
from .output import Annotate, JsonLines, Split, annotation, write_summary
from .progress import PCAP_RECORD, progress_for
from .report import add_run_options, check_parallel, run_extras
from .trace import format_trace

if TYPE_CHECKING:
    from .pipeline import Pipeline

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class _Stdout:
    """Standard output whose write errors (a full disk, /dev/full, a closed pipe's
    EIO) are OutputError, exit 6, instead of an internal error."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as err:
            raise OutputError("standard output", err) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as err:
            raise OutputError("standard output", err) from None

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


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
                out.write(f"{'':14}po: {po_text(res, parser)}\n")
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


def check_trace(args: argparse.Namespace) -> None:
    if args.trace is not None and args.trace < 0:
        raise UsageError(f"--trace {args.trace}: a packet index is 0 or more")
    check_port(args)


def check_port(args: argparse.Namespace) -> None:
    if getattr(args, "port", 0) < 0:
        raise UsageError(f"--port {args.port}: a port number is 0 or more")


def trace_missing(args: argparse.Namespace) -> UsageError:
    return UsageError(
        f"--trace {args.trace}: the captures have no Ethernet packet with that index "
        "(the run itself completed)"
    )


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    check_trace(args)
    if parallel.wanted(args):
        if args.port:
            raise UsageError("--port with --workers or --dask: not supported; run on one core")
        check_parallel(args)
        return parallel.cmd_run_parallel(args, out)
    pipe = setup_pipeline(args, out)
    # The rules and tables live as long as the run: keep the collector off them.
    gc.freeze()
    skipped: list[str] = []
    split = Split(args.split) if args.split else None
    notes = Annotate(args.annotate) if args.annotate else None
    several = len(args.pcap) > 1
    traced = False
    extras = run_extras(args, pipe)  # --html and the progress bar; None: neither
    line = JsonLines().line if args.json else None
    process, write, port = pipe.process, out.write, args.port
    try:
        for path, pkt in ethernet_records(args.pcap, skipped):
            index, data = pkt.index, pkt.data
            dec = process(data, port)
            if extras is not None:
                extras.packet(path, index, data, dec)
            if split is not None:
                split.write("drop" if dec.drop else f"queue-{dec.queue}", data, pkt.ts)
            if notes is not None:
                notes.write(data, pkt.ts, annotation(dec))
            if line is not None:
                write(line(dec, index, path if several else None))
            if args.trace is not None and index == args.trace and not traced:
                traced = True
                sys.stderr.write(format_trace(pipe, dec, data, index) + "\n")
    finally:
        if split is not None:
            split.close()
        if notes is not None:
            notes.close()
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
    if args.trace is not None and not traced:
        raise trace_missing(args)
    return 0


def cmd_trace(args: argparse.Namespace, out: TextIO) -> int:
    if args.index < 0:
        raise UsageError(f"--index {args.index}: a packet index is 0 or more")
    check_port(args)
    if (args.pcap is None) == (args.packet is None):
        raise UsageError("trace: give a capture (PCAP, or - for standard input) or --packet")
    if args.packet is not None:
        data = packet_arg(args.packet)
        pipe = setup_pipeline(args, out)
        out.write(format_trace(pipe, pipe.process(data, args.port), data, 0) + "\n")
        return 0
    pipe = setup_pipeline(args, out)
    skipped: list[str] = []
    for _path, index, data in ethernet_packets([args.pcap], skipped):
        dec = pipe.process(data, args.port)
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
    records: list[dict] = []  # --json: one object per command
    for cmd, extra in setup.commands:
        where = getattr(cmd, "where", "")
        before = set(pipe.rules)
        try:
            answer = ctl.apply(cmd, extra)
            ok = True
        except RuleError as err:
            failed += 1
            answer, ok = [str(err)], False
            rejected.append(getattr(cmd, "rule", None))
        if args.json:
            new = [pipe.rules[h] for h in pipe.rules if h not in before]
            records.append(
                {
                    "kind": "command",
                    "where": where,
                    "ok": ok,
                    "answer": answer,
                    "rule": new[0].rule_id if new else None,
                    "engine": new[0].engine if new else None,
                    "raw_forms": [],
                    "_entry": new[0] if new else None,
                }
            )
        else:
            for line in answer:
                out.write(f"{where}: {line}\n")
    apply_tables(pipe, setup)
    findings = []
    if args.analyze:
        from .analysis import analyze, explain_rejected

        hints = (explain_rejected(pipe, r) for r in rejected if r is not None)
        findings = [h for h in hints if h is not None] + analyze(pipe)
    if args.json:
        write_validate_json(pipe, records, findings, failed, args.analyze, out)
    else:
        out.write(f"# {len(setup.commands)} command(s), {failed} rejected\n")
        write_raw_forms(pipe, out)
        if args.analyze:
            for f in findings:
                out.write(f"{f}\n")
            out.write(f"# analysis: {len(findings)} finding(s)\n")
    if failed:
        return 5
    return 1 if findings and args.strict else 0


def write_validate_json(
    pipe: Pipeline, records: list[dict], findings: list, failed: int, analyzed: bool, out: TextIO
) -> None:
    """`flow validate --json` (schema flow-validate.json): one object per command, one
    per finding, then the summary."""
    from .rawform import profile_items, raw_forms, rule_text

    for rec in records:
        entry = rec.pop("_entry")
        if entry is not None and profile_items(pipe, entry.rule):
            forms, note = raw_forms(pipe, entry.rule, entry.match)
            rec["raw_forms"] = [
                {"ptype": f.ptype, "command": rule_text(entry.rule, f)} for f in forms
            ]
            if note:
                rec["raw_note"] = note
        out.write(json.dumps(rec, separators=(",", ":")) + "\n")
    for f in findings:
        obj = f.to_json()
        obj = {"kind": "finding", "finding": obj.pop("kind"), **obj}
        out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    summary = {
        "kind": "summary",
        "commands": len(records),
        "rejected": failed,
        "findings": len(findings) if analyzed else None,
    }
    out.write(json.dumps(summary, separators=(",", ":")) + "\n")


def write_raw_forms(pipe: Pipeline, out: TextIO) -> None:
    """The raw-pattern form of each rule on a profile's own protocol: what real ice
    takes for it, since real testpmd has no item for those protocols."""
    from .rawform import profile_items, raw_forms, rule_text

    entries = [e for e in pipe.rules.values() if profile_items(pipe, e.rule)]
    if not entries:
        return
    out.write(
        "# on the NIC: rules on a profile's own protocols as ice's raw patterns "
        "(one per PTYPE the rule covers):\n"
    )
    for e in entries:
        forms, note = raw_forms(pipe, e.rule, e.match)
        where = e.rule.where or f"rule #{e.rule_id}"
        for f in forms:
            out.write(f"{where}: PTYPE {f.ptype}: {rule_text(e.rule, f)}\n")
        if note:
            out.write(f"{where}: {note}\n")


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


# The commands defined in this module; the others come from their own modules, which
# are imported (for their options) only when one of them, or the full help, is asked for.
CORE_COMMANDS = frozenset({"parse", "run", "trace", "flow", "check"})


def make_argparser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with `command` one of CORE_COMMANDS, without the others."""
    ap = argparse.ArgumentParser(
        prog="e810pipe",
        description="A software model of the Intel E810 (ice) receive pipeline.",
        epilog="Exit codes: 0 ok, 1 check failed, 2 usage, 3 profile error, "
        "4 capture error, 5 rule error, 6 output error, 7 service error, "
        "70 internal error, 130 interrupted.",
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
    r.add_argument(
        "--annotate",
        metavar="OUT.pcapng",
        help="write the packets to a pcapng file, each with its decision as its comment",
    )
    parallel.add_cli_options(r)
    add_run_options(r)
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("trace", help="explain one packet's way through the pipeline")
    t.add_argument("pcap", nargs="?", metavar="PCAP", help="a capture, or - for standard input")
    t.add_argument("--index", type=int, default=0, metavar="N", help="packet index (0-based)")
    t.add_argument(
        "--packet",
        metavar="HEX|LAYERS",
        help="trace this packet instead: hex bytes or a Scapy layer string "
        '("Ether()/IP()/UDP(dport=53)")',
    )
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
    fv.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per command and finding, then a summary",
    )
    fv.set_defaults(func=cmd_flow_validate)

    tp = sub.add_parser(
        "testpmd",
        help="an emulated E810 driven as testpmd: console, launch options, ports, verbose Rx",
        description="Takes testpmd's launch options (e.g. -a 0000:18:00.0 -a 0000:18:00.1 -- "
        "-i --rxq=16 --txq=16) plus --profile, --dvm/--svm, --vxlan-port N, --vf SPEC. "
        "Commands come from the terminal, --cmdline-file FILE or standard input.",
    )
    tp.add_argument("testpmd_args", nargs=argparse.REMAINDER, metavar="TESTPMD-OPTION")
    tp.set_defaults(func=cmd_testpmd)

    ck = sub.add_parser("check", help="run scenario files and check where packets land")
    ck.add_argument("scenario", nargs="+", metavar="SCENARIO")
    ck.add_argument("--json", action="store_true", help="one JSON object per expectation")
    ck.set_defaults(func=cmd_check)

    if command in CORE_COMMANDS:
        return ap
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


def cmd_testpmd(args: argparse.Namespace, out: TextIO) -> int:
    from .console import main as console_main

    return console_main(args.testpmd_args, sys.stdin, out)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    ap = make_argparser(words[0] if words and not words[0].startswith("-") else None)
    try:
        if words[:1] == ["testpmd"] and words[1:2] not in (["-h"], ["--help"]):
            # testpmd's own options (-a, --rxq=N, -- ...) are not argparse's
            args = argparse.Namespace(func=cmd_testpmd, testpmd_args=words[1:])
        else:
            args = ap.parse_args(words)
    except SystemExit as exc:  # argparse already printed the usage message
        return int(exc.code or 0) if exc.code in (0, None) else 2
    try:
        rc = int(args.func(args, _Stdout(sys.stdout)))
        _Stdout(sys.stdout).flush()  # a full disk shows here for short outputs
        return rc
    except E810PipeError as err:
        sys.stderr.write(f"e810pipe: {err}\n")
        if isinstance(err, OutputError) and err.what == "standard output":
            _quiet_stdout()  # what is still buffered cannot be written either
        return err.exit_code
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("e810pipe: interrupted\n")
        return EXIT_INTERRUPTED
    except RecursionError:  # pragma: no cover - every input has a depth limit; a bug
        return _internal(RecursionError("maximum recursion depth exceeded"))
    except Exception as err:  # pragma: no cover - a bug; say so without a traceback dump
        return _internal(err)


def _quiet_stdout() -> None:
    """After a closed pipe: send what is left of stdout nowhere, so that the flush
    at exit does not complain."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _internal(err: BaseException) -> int:
    import os

    sys.stderr.write(
        f"e810pipe: internal error: {type(err).__name__}: {str(err)[:500]}\n"
        "This is a bug in e810pipe; set E810PIPE_DEBUG=1 for a traceback.\n"
    )
    if os.environ.get("E810PIPE_DEBUG"):
        raise err
    return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Build a device and its pipeline from options: the one place that does it.

The command line, the testpmd console, ``fuzz``, ``graph``, ``--workers`` and the
scenario runner all describe a device the same way (profiles, UDP tunnel ports,
double-VLAN mode, the parser window, rules files and commands) and get it built
here. Nothing in the package imports the command-line module.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from typing import TextIO

from .control import Setup, configure, read_setup
from .errors import UsageError
from .package import Package, load_package
from .parser import DEFAULT_WINDOW, Parser, ParseResult
from .pcapio import LINKTYPE_ETHERNET, Packet, iter_packets
from .pipeline import Pipeline
from .resources import stock_profile_names


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
    for path, pkt in ethernet_records(paths, skipped):
        yield path, pkt.index, pkt.data


def ethernet_records(paths: Sequence[str], skipped: list[str]) -> Iterator[tuple[str, Packet]]:
    """Yield (file, packet record: index, bytes, timestamp...) for Ethernet packets."""
    for path in paths:
        for pkt in iter_packets(path):
            if pkt.linktype != LINKTYPE_ETHERNET:
                skipped.append(f"{path}: packet {pkt.index}: link type {pkt.linktype}")
                continue
            yield path, pkt


def po_text(res: ParseResult, parser: Parser) -> str:
    names = {v: k for k, v in parser.package.proto_ids.items()}
    return " ".join(f"{names.get(pid, pid)}@{off}" for pid, off in res.po)


def read_args_setup(args: argparse.Namespace) -> tuple[Package, Setup]:
    """The package and setup that --profile, --rules, --cmd and the parser options give."""
    check_parser_options(args)
    package = load_package(profile_stack(args.profile))
    setup = read_setup(args.rules, args.cmd, package.protocols)
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


__all__ = [
    "add_parser_options",
    "add_rule_options",
    "build_parser",
    "check_parser_options",
    "ethernet_packets",
    "ethernet_records",
    "po_text",
    "profile_stack",
    "read_args_setup",
    "setup_pipeline",
]

"""Draw the loaded parse graph with Graphviz: ``e810pipe graph``.

The DOT text is written here; Graphviz's ``dot`` binary (Debian ``graphviz``) turns it
into SVG or PNG. Each protocol is a node showing its display name and the protocol
IDs it reports; each select case is an edge labelled with its values (and the
tunnel it enters, the markers it adds). Whatever a user profile adds on top of the
stock package is highlighted: new protocols and edges are filled or drawn in orange,
stock protocols that a profile extends get an orange border, and its PTYPEs are
shaded in the PTYPE table. One packet's path can be marked in blue.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from .errors import E810PipeError, OutputError, UsageError
from .graph import END, ERROR, CompiledGraph, EdgeInfo, compile_graph
from .package import Package, ResolvedProtocol, load_package
from .parser import Parser, ParseResult
from .resources import profiles_dir, stock_profile_names

FORMATS = ("svg", "png", "dot")

# colours
USER = "#e65100"  # what a user profile adds
USER_FILL = "#ffe0b2"
PATH = "#1565c0"  # the marked packet's path
USED = "#2e7d32"  # edges a run took
PATH_FILL = "#bbdefb"
PTYPE_ROWS = 40  # rows per column of the PTYPE table


class GraphvizMissing(UsageError):
    """Graphviz's ``dot`` is not installed, so SVG or PNG cannot be drawn.

    Install Debian's ``graphviz`` (``make system-deps`` does), or write ``.dot`` text.
    """


@dataclass
class Highlights:
    """What a user profile adds to the stock package, by node index and edge id."""

    stock_title: str | None = None  # None: the package is stock only
    nodes: set[int] = field(default_factory=set)  # protocols a user profile declares
    extended: set[int] = field(default_factory=set)  # stock protocols a profile extends
    edges: set[int] = field(default_factory=set)
    ptypes: set[int] = field(default_factory=set)
    user_profiles: list[str] = field(default_factory=list)


def _stock_paths() -> set[Path]:
    return {(profiles_dir() / f"{n}.ddp").resolve() for n in stock_profile_names()}


def _is_stock(path: str) -> bool:
    try:
        return Path(path).resolve() in _stock_paths()
    except OSError:  # pragma: no cover - a path that cannot be resolved is a user file
        return False


def _edge_key(graph: CompiledGraph, e: EdgeInfo) -> tuple:
    target = graph.nodes[e.target].name if e.target >= 0 else e.target
    return (graph.nodes[e.source].name, target, e.label, e.tunnel, e.marks, e.flags)


def _proto_key(p: ResolvedProtocol) -> tuple:
    def reps(rs: tuple) -> tuple:
        return tuple((r.ids, r.at) for r in rs)

    return (reps(p.reports), reps(p.carriers), p.marks, p.flags)


def user_additions(graph: CompiledGraph) -> Highlights:
    """Compare `graph` with the stock package it is built on (same runtime settings)."""
    pkg = graph.package
    stock_files = [p for p in pkg.profiles if _is_stock(p)]
    users = [p for p in pkg.profiles if not _is_stock(p)]
    if not users or not stock_files:
        return Highlights()
    stock_pkg = load_package(stock_files)
    stock = compile_graph(stock_pkg, graph.config)
    hl = Highlights(stock_title=stock_pkg.title, user_profiles=users)
    for node in graph.nodes:
        base = stock_pkg.protocols.get(node.name)
        if base is None or not _is_stock(node.proto.origin):
            hl.nodes.add(node.index)
        elif _proto_key(base) != _proto_key(node.proto):
            hl.extended.add(node.index)
    have = Counter(_edge_key(stock, e) for e in stock.edges)
    for eid, e in enumerate(graph.edges):
        key = _edge_key(graph, e)
        if have[key] > 0:
            have[key] -= 1
        else:
            hl.edges.add(eid)
    hl.ptypes = {n for n, pt in pkg.ptypes.items() if not _is_stock(pt.pos.path)}
    return hl


@dataclass
class Focus:
    """What `graph --focus` draws: the focus protocols, their neighbours (one edge
    away, either way), a shortest path from the start to each, and the PTYPEs whose
    marker sequences go through them."""

    names: list[str]
    nodes: set[int]
    ptypes: set[int]


def focus_on(graph: CompiledGraph, names: Sequence[str], hl: Highlights) -> Focus:
    """The focus for `names` (protocol names), or, when empty, for the protocols the
    user profiles declare or extend."""
    by_name = graph.by_name
    if names:
        bad = [n for n in names if n not in by_name]
        if bad:
            raise UsageError(
                f"--focus: no protocol {', '.join(map(repr, bad))} in the loaded profiles"
            )
        core = {by_name[n] for n in names}
    else:
        core = set(hl.nodes)
        if not core:  # a profile that only extends stock protocols: what it binds
            core = set(hl.extended)
            for eid in hl.edges:
                e = graph.edges[eid]
                core |= {e.source} | ({e.target} if e.target >= 0 else set())
        if not core:
            raise UsageError("--focus: the loaded profiles add nothing; name protocols")
    keep = set(core)
    for e in graph.edges:
        if e.source in core and e.target >= 0:
            keep.add(e.target)
        if e.target in core:
            keep.add(e.source)
    # a shortest path from the start to each focus protocol
    prev: dict[int, int] = {graph.start: -1}
    todo = [graph.start]
    while todo:
        nxt = []
        for n in todo:
            for e in graph.edges:
                if e.source == n and e.target >= 0 and e.target not in prev:
                    prev[e.target] = n
                    nxt.append(e.target)
        todo = nxt
    for n in core:
        while n in prev and n >= 0:
            keep.add(n)
            n = prev[n]
    marks = {m for n in core for m in graph.nodes[n].proto.marks}
    for e in graph.edges:
        if e.source in core or e.target in core:
            marks |= set(e.marks)
    pts = {num for num, pt in graph.package.ptypes.items() if marks & set(pt.markers)}
    shown = [graph.nodes[n].name for n in sorted(core)]
    return Focus(shown, keep, pts | (hl.ptypes if not names else set()))


# ------------------------------------------------------------------------ DOT text


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _h(text: str) -> str:
    """Text for a Graphviz HTML-like label."""
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _ids(pkg: Package, reps: tuple) -> str:
    out = []
    for r in reps:
        names = " | ".join(f"{n}({pkg.proto_ids.get(n, '?')})" for n in r.ids)
        out.append(names + (f" @{r.at}" if r.at else ""))
    return "; ".join(out)


def _node_label(pkg: Package, p: ResolvedProtocol) -> str:
    title = f"<B>{_h(p.display)}</B>"
    if p.name != p.display:
        title += f' <FONT POINT-SIZE="9">({_h(p.name)})</FONT>'
    rows = [title]
    if p.reports:
        rows.append(f'<FONT POINT-SIZE="9">{_h(_ids(pkg, p.reports))}</FONT>')
    if p.carriers:
        rows.append(f'<FONT POINT-SIZE="9">carrier {_h(_ids(pkg, p.carriers))}</FONT>')
    if p.marks:
        rows.append(f'<FONT POINT-SIZE="9" COLOR="#555555">mark {_h(" ".join(p.marks))}</FONT>')
    return "<" + "<BR/>".join(rows) + ">"


def _node_tooltip(p: ResolvedProtocol) -> str:
    fields = ", ".join(f"{f.name}:{f.bits}" + (" (opt)" if f.cond else "") for f in p.fields)
    return f"{p.name}: {fields}\nfrom {Path(p.origin).name}:{p.pos.line}"


def edge_text(e: EdgeInfo) -> str:
    """An edge's label: the select value(s), then the tunnel, markers and flags it adds."""
    parts = [e.label]
    if e.tunnel:
        parts.append(f"tunnel {e.tunnel}")
    if e.marks:
        parts.append("mark " + " ".join(e.marks))
    if e.flags:
        parts.append("flag " + " ".join(e.flags))
    return "\n".join(parts)


def _ptype_table(
    pkg: Package, hl: Highlights, packet_ptype: int | None, only: set[int] | None = None
) -> str:
    items = sorted((n, p) for n, p in pkg.ptypes.items() if only is None or n in only)
    cols = [items[i : i + PTYPE_ROWS] for i in range(0, len(items), PTYPE_ROWS)] or [[]]
    ncols = len(cols)
    rows = [
        f'<TR><TD COLSPAN="{2 * ncols}" BGCOLOR="#eeeeee"><B>PTYPEs ({len(items)})</B></TD></TR>'
    ]
    for r in range(PTYPE_ROWS if len(cols) > 1 else len(cols[0])):
        cells = []
        for col in cols:
            if r < len(col):
                num, pt = col[r]
                bg = ""
                if num == packet_ptype:
                    bg = f' BGCOLOR="{PATH_FILL}"'
                elif num in hl.ptypes:
                    bg = f' BGCOLOR="{USER_FILL}"'
                cells.append(
                    f'<TD ALIGN="RIGHT"{bg}>{num}</TD><TD ALIGN="LEFT"{bg}>{_h(pt.name)}</TD>'
                )
            else:
                cells.append("<TD></TD><TD></TD>")
        rows.append("<TR>" + "".join(cells) + "</TR>")
    return (
        '<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
        + "".join(rows)
        + "</TABLE>>"
    )


def graph_dot(
    graph: CompiledGraph,
    *,
    highlights: Highlights | None = None,
    packet: ParseResult | None = None,
    ptypes: bool = True,
    edge_use: Mapping[int, int] | None = None,
    focus: Focus | None = None,
) -> str:
    """The DOT text of `graph`; `packet` marks one parse's nodes and edges, `edge_use`
    (edge id -> packets that took it) marks and counts the edges a run used; `focus`
    draws only its nodes, the edges between them and its PTYPEs."""
    pkg = graph.package
    hl = highlights if highlights is not None else Highlights()
    path_nodes = set(packet.nodes) if packet is not None else set()
    path_edges = {e for e in packet.edges if e >= 0} if packet is not None else set()
    title = pkg.title
    if hl.user_profiles:
        title += " + " + ", ".join(Path(p).name for p in hl.user_profiles)
    opts = sorted(graph.config.options)
    ports = {k: sorted(v) for k, v in graph.config.ports.items() if v}
    if ports:
        title += "; ports " + ", ".join(f"{k} {','.join(map(str, v))}" for k, v in ports.items())
    if opts:
        title += "; options " + ", ".join(opts)
    if packet is not None:
        path = " → ".join(f"{h.name}@{h.offset}" for h in packet.headers)
        title += f"\npacket: {path}; PTYPE {packet.ptype} {packet.ptype_name} ({packet.status})"
    out = [
        "digraph parse_graph {",
        "  rankdir=LR; ranksep=0.6; nodesep=0.18; newrank=true;",
        f"  label={_q(title)}; labelloc=t; fontname=Helvetica; fontsize=16;",
        '  node [shape=box, style="rounded,filled", fillcolor=white, fontname=Helvetica, '
        'fontsize=11, margin="0.08,0.04"];',
        '  edge [fontname=Helvetica, fontsize=9, color="#666666", arrowsize=0.6];',
        '  start [shape=point, width=0.12, tooltip="start"];',
    ]
    if focus is not None:
        title += f"\nfocus: {', '.join(focus.names)} (their neighbours and the paths to them)"
        out[2] = f"  label={_q(title)}; labelloc=t; fontname=Helvetica; fontsize=16;"
    keep = focus.nodes if focus is not None else None
    for node in graph.nodes:
        if keep is not None and node.index not in keep:
            continue
        p = node.proto
        attrs = [
            f"label={_node_label(pkg, p)}",
            f"tooltip={_q(_node_tooltip(p))}",
            f"id={_q(f'proto_{node.name}')}",
        ]
        cls = ["proto"]
        if node.index in hl.nodes:
            attrs += [f'fillcolor="{USER_FILL}"', f'color="{USER}"', "penwidth=2"]
            cls.append("user")
        elif node.index in hl.extended:
            attrs += [f'color="{USER}"', "penwidth=2"]
            cls.append("extended")
        if not p.selects:
            attrs.append("peripheries=2")  # a leaf: the parse ends after it
        if node.index in path_nodes:
            attrs += [f'color="{PATH}"', "penwidth=3"]
            if node.index not in hl.nodes:
                attrs.append(f'fillcolor="{PATH_FILL}"')
            cls.append("path")
        attrs.append(f"class={_q(' '.join(cls))}")
        out.append(f"  n{node.index} [{', '.join(attrs)}];")
    shown = [
        (eid, e)
        for eid, e in enumerate(graph.edges)
        if keep is None or (e.source in keep and (e.target in keep or e.target in (END, ERROR)))
    ]
    used = {e.target for _, e in shown}
    if END in used:
        out.append('  t_end [label="end", shape=doublecircle, fontsize=9, width=0.3, margin=0];')
    if ERROR in used:
        out.append(
            '  t_error [label="error", shape=octagon, fontsize=9, color="#b71c1c", '
            'fontcolor="#b71c1c"];'
        )
    start_attrs = f' [color="{PATH}", penwidth=3]' if packet is not None else ""
    out.append(f"  start -> n{graph.start}{start_attrs};")
    for eid, e in shown:
        if e.target >= 0:
            target = f"n{e.target}"
        elif e.target == END:
            target = "t_end"
        elif e.target == ERROR:
            target = "t_error"
        else:
            continue  # `pass`: falls through to the protocol's next select
        attrs = [f"label={_q(edge_text(e))}", f"id={_q(f'edge{eid}')}"]
        if e.tunnel:
            attrs.append("style=dashed")
        cls = []
        if eid in hl.edges:
            attrs += [f'color="{USER}"', f'fontcolor="{USER}"', "penwidth=2"]
            cls.append("user")
        if eid in path_edges:
            attrs += [f'color="{PATH}"', f'fontcolor="{PATH}"', "penwidth=3"]
            cls.append("path")
        if edge_use:
            n = edge_use.get(eid, 0)
            if n:
                attrs[0] = f"label={_q(edge_text(e) + f' [{n:,} pkts]')}"
                attrs += [f'color="{USED}"', f"penwidth={1.5 + min(n, 10**6) ** 0.25 / 4:.2f}"]
                cls.append("used")
            else:
                attrs += ['color="#bbbbbb"', 'fontcolor="#999999"']
        attrs.append(f"class={_q(' '.join(cls))}")
        out.append(f"  n{e.source} -> {target} [{', '.join(attrs)}];")
    if ptypes:
        pt = packet.ptype if packet is not None else None
        only = focus.ptypes if focus is not None else None
        table = _ptype_table(pkg, hl, pt, only)
        out.append(f'  ptypes [shape=plaintext, style="", label={table}];')
    legend = [
        '<TR><TD COLSPAN="2" BGCOLOR="#eeeeee"><B>legend</B></TD></TR>',
        '<TR><TD BORDER="1">name</TD><TD ALIGN="LEFT">protocol: proto IDs it reports '
        "(outer | inner)</TD></TR>",
        '<TR><TD>- - -&gt;</TD><TD ALIGN="LEFT">edge that enters a tunnel</TD></TR>',
        '<TR><TD>double box</TD><TD ALIGN="LEFT">no select: the parse ends there</TD></TR>',
    ]
    if hl.stock_title is not None:
        legend.append(
            f'<TR><TD BGCOLOR="{USER_FILL}"><FONT COLOR="{USER}">orange</FONT></TD>'
            f'<TD ALIGN="LEFT">added on top of {_h(hl.stock_title)} '
            "(border only: a stock protocol extended)</TD></TR>"
        )
    if edge_use:
        legend.append(
            f'<TR><TD><FONT COLOR="{USED}">green</FONT></TD><TD ALIGN="LEFT">edges this run '
            "took, with their packet counts (grey: not taken)</TD></TR>"
        )
    if packet is not None:
        legend.append(
            f'<TR><TD BGCOLOR="{PATH_FILL}"><FONT COLOR="{PATH}">blue</FONT></TD>'
            '<TD ALIGN="LEFT">the packet\'s path and PTYPE</TD></TR>'
        )
    out.append(
        '  legend [shape=plaintext, style="", label=<<TABLE BORDER="1" CELLBORDER="0" '
        'CELLSPACING="0" CELLPADDING="2">' + "".join(legend) + "</TABLE>>];"
    )
    out.append("  { rank=sink; legend; " + ("ptypes; " if ptypes else "") + "}")
    out.append("}")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------ rendering


def dot_available() -> bool:
    return shutil.which("dot") is not None


def render(dot_text: str, fmt: str) -> bytes:
    """Run Graphviz's ``dot`` on `dot_text`; `fmt` is svg or png."""
    if fmt not in ("svg", "png"):
        raise UsageError(f"cannot render '{fmt}'; use svg or png (or write .dot text)")
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing(
            "Graphviz's 'dot' is not installed, so SVG/PNG cannot be drawn: install it "
            "(Debian: apt-get install graphviz; 'make system-deps' does it), or write "
            "a .dot file instead"
        )
    try:
        proc = subprocess.run(
            [exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=300
        )
    except subprocess.TimeoutExpired:  # pragma: no cover
        raise E810PipeError("Graphviz's dot took more than 300 s") from None
    if proc.returncode != 0:  # pragma: no cover - a bug in the DOT text
        raise E810PipeError(f"dot failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def inline_svg(dot_text: str) -> str:
    """SVG for embedding in HTML: dot's output without the XML prolog and DOCTYPE."""
    svg = render(dot_text, "svg").decode()
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def draw_parser(
    parser: Parser,
    packet: bytes | None = None,
    ptypes: bool = True,
    edge_use: Mapping[int, int] | None = None,
) -> str:
    """DOT text for a parser's graph, with user additions, an optional packet path and
    optional per-edge packet counts."""
    res = parser.parse(packet) if packet is not None else None
    return graph_dot(
        parser.graph,
        highlights=user_additions(parser.graph),
        packet=res,
        ptypes=ptypes,
        edge_use=edge_use,
    )


# ------------------------------------------------------------------------ command line


def _packet_bytes(args: argparse.Namespace) -> bytes | None:
    from .build import ethernet_packets, packet_arg

    if args.packet is not None:
        return packet_arg(args.packet)  # hex bytes or a Scapy layer string
    if args.pcap is not None:
        skipped: list[str] = []
        want = args.index if args.index is not None else 0
        for _path, index, data in ethernet_packets([args.pcap], skipped):
            if index == want:
                return data
        raise UsageError(f"{args.pcap} has no Ethernet packet with index {want}")
    return None


def cmd_graph(args: argparse.Namespace, out: TextIO) -> int:
    from .build import build_parser

    target = Path(args.output)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise UsageError(f"-o {args.output}: the name must end in .svg, .png or .dot")
    if args.index is not None and args.pcap is None:
        raise UsageError("--index needs --pcap")
    parser = build_parser(args)
    data = _packet_bytes(args)
    res = parser.parse(data) if data is not None else None
    hl = user_additions(parser.graph)
    focus = None
    if args.focus is not None:
        names = [n for n in args.focus.split(",") if n.strip()]
        focus = focus_on(parser.graph, [n.strip() for n in names], hl)
    text = graph_dot(
        parser.graph, highlights=hl, packet=res, ptypes=not args.no_ptypes, focus=focus
    )
    body = text.encode() if fmt == "dot" else render(text, fmt)
    try:
        target.write_bytes(body)
    except OSError as err:
        raise OutputError(f"-o {args.output}", err) from None
    g = parser.graph
    drawn = sum(1 for e in g.edges if e.target >= 0 or e.target in (END, ERROR))
    msg = f"{target}: {len(g.nodes)} protocols, {drawn} edges, {len(g.package.ptypes)} PTYPEs"
    if hl.stock_title is not None:
        msg += (
            f"; added on top of {hl.stock_title}: {len(hl.nodes)} protocols, "
            f"{len(hl.edges)} edges, {len(hl.ptypes)} PTYPEs"
        )
    if focus is not None:
        msg += f"; focus on {', '.join(focus.names)}: {len(focus.nodes)} protocols drawn"
    if res is not None:
        msg += f"; packet path {' -> '.join(h.name for h in res.headers)} (PTYPE {res.ptype})"
    out.write(msg + "\n")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    from .build import add_parser_options

    g = sub.add_parser("graph", help="draw the parse graph with Graphviz")
    add_parser_options(g)
    g.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="FILE.svg, FILE.png or FILE.dot"
    )
    src = g.add_mutually_exclusive_group()
    src.add_argument(
        "--packet",
        metavar="HEX|LAYERS",
        help="mark this packet's path: hex bytes or a Scapy layer string",
    )
    src.add_argument("--pcap", metavar="PCAP", help="mark the path of packet --index of PCAP")
    g.add_argument("--index", type=int, metavar="N", help="packet index in --pcap (default 0)")
    g.add_argument("--no-ptypes", action="store_true", help="leave out the PTYPE table")
    g.add_argument(
        "--focus",
        nargs="?",
        const="",
        metavar="PROTO,...",
        help="draw only these protocols (default: what the user profiles add), their "
        "neighbours and the paths to them",
    )
    g.set_defaults(func=cmd_graph)


__all__: Sequence[str] = (
    "Focus",
    "GraphvizMissing",
    "Highlights",
    "cmd_graph",
    "draw_parser",
    "dot_available",
    "edge_text",
    "focus_on",
    "graph_dot",
    "inline_svg",
    "register_cli",
    "render",
    "user_additions",
)

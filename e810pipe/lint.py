"""Profile tools: a linter (`profile check`) and a structural diff (`profile diff`).

The resolver (:mod:`e810pipe.package`) rejects profiles that cannot work: each
problem is a located :class:`ProfileError`. The linter loads a profile the same way
and then looks for things that load but probably do not do what the author meant.
Every warning points at the profile text (``file:line:column``):

- **conditional** / **unreachable**: a protocol (or an edge) that the parse graph
  reaches only once a runtime setting is made (a UDP port registered in a
  ``@table``, an ``option`` set), or never (past ``tunnel_depth``, behind a select
  that always decides, excluded by ``if tunnel`` guards);
- **ptype-range**: a PTYPE number in the ranges Intel's packages number (1..153 of
  the kernel's decode table, the COMMS ranges) that the loaded stack leaves free, so
  the profile collides with a stock package that declares it;
- **ptype-markers**: a PTYPE whose marker sequence another PTYPE already has (the
  marker TCAM keeps one of them), or that no parse path produces;
- **field**: a ``match`` field no rule can reach: its protocol reports no protocol
  ID, or it is optional and sits at a varying offset that a field-vector word (a
  fixed offset from a reported protocol) cannot follow;
- **proto-id**: a protocol ID number that another name already has.

:class:`GraphModel` is the parse graph under one runtime configuration, as
:func:`e810pipe.graph.compile_graph` builds it (same guards, port tables and
tunnel levels); rule analysis (:mod:`e810pipe.analysis`) uses it too.
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from .ddp_model import Case, KeyItem, Pos, Profile
from .errors import ProfileError, context_line
from .fields import _CATALOG
from .graph import _pattern_keys
from .package import (
    TERMINALS,
    Package,
    ResolvedProtocol,
    expand_stack,
    load_package,
    resolve,
)
from .resources import profiles_dir, resolve_profile_ref, stock_profile_names

# ----------------------------------------------------------------- the graph model


@dataclass(frozen=True)
class LiveEdge:
    """A select case that some key value takes at one tunnel level."""

    source: str
    select: int  # index of the select in the protocol
    index: int  # index of the case in the select (after `use` expansion)
    case: Case

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.source, self.select, self.index)


def _key_widths(proto: ResolvedProtocol, key: tuple[KeyItem, ...]) -> list[int]:
    widths = []
    for k in key:
        if k.field is not None:
            f = proto.field(k.field)
            widths.append(f.bits if f is not None else 0)
        else:
            widths.append(k.peek_bits)
    return widths


class GraphModel:
    """The parse graph of a package under one runtime configuration.

    Args:
        ports: UDP tunnel port tables (``{"vxlan": {4789}}``); missing tables are empty.
        options: the options that are set (``{"dvm"}``).
        depth: honour ``tunnel_depth`` (a tunnel edge past it is not taken).
        order: honour select order (a select that always decides hides later ones).

    :meth:`step` gives, per protocol and tunnel level, the edges some key value
    takes, as the compiled graph's tables have them (runtime ports override literal
    values; the first default wins), and whether the walk may stop at the header
    with no edge (every select can fall through).
    """

    def __init__(
        self,
        package: Package,
        ports: Mapping[str, Iterable[int]] | None = None,
        options: Iterable[str] = (),
        *,
        depth: bool = True,
        order: bool = True,
    ) -> None:
        self.package = package
        self.ports = {k: frozenset(v) for k, v in (ports or {}).items()}
        self.options = frozenset(options)
        self.depth = depth
        self.order = order
        self.max_level = package.tunnel_depth
        self._steps: dict[tuple[str, int], tuple[list[LiveEdge], bool]] = {}

    def _select(self, proto: ResolvedProtocol, si: int, level: int) -> tuple[list[LiveEdge], bool]:
        sel = proto.selects[si]
        widths = _key_widths(proto, sel.key)
        table: dict[int, int] = {}
        default: int | None = None
        for ci, case in enumerate(sel.cases):
            if any((g in self.options) != want for g, want in case.guards if g != "tunnel"):
                continue
            if self.depth and case.tunnel is not None and level >= self.package.tunnel_depth:
                continue
            if any(g == "tunnel" and (level > 0) != want for g, want in case.guards):
                continue
            if case.patterns is None:
                if default is None:
                    default = ci
                continue
            for pat in case.patterns:
                is_port = any(v[0] == "port" for v in pat)
                for k in _pattern_keys(pat, widths, self.ports):
                    if is_port:
                        table[k] = ci
                    else:
                        table.setdefault(k, ci)
        live = sorted(set(table.values()) | ({default} if default is not None else set()))
        edges = [LiveEdge(proto.name, si, ci, sel.cases[ci]) for ci in live]
        space = 1 << sum(widths)
        can_pass = any(e.case.target == "pass" for e in edges)
        if default is None:
            can_pass = can_pass or len(table) < space
        elif sel.cases[default].target == "pass":
            can_pass = True
        return edges, can_pass

    def step(self, name: str, level: int) -> tuple[list[LiveEdge], bool]:
        hit = self._steps.get((name, level))
        if hit is not None:
            return hit
        proto = self.package.protocols[name]
        out: list[LiveEdge] = []
        falls_through = True
        for si in range(len(proto.selects)):
            edges, can_pass = self._select(proto, si, level)
            out.extend(edges)
            if not can_pass:
                falls_through = False
                if self.order:
                    break
        self._steps[(name, level)] = (out, falls_through)
        return out, falls_through

    def next_level(self, level: int, case: Case) -> int:
        if case.tunnel is None:
            return level
        return min(level + 1, self.max_level)

    def reach(self) -> tuple[set[str], set[tuple[str, int, int]]]:
        """The protocols the walk can reach, and the edges it can take (their keys)."""
        start = (self.package.start, 0)
        seen = {start}
        todo = [start]
        edges: set[tuple[str, int, int]] = set()
        while todo:
            name, level = todo.pop()
            out, _ = self.step(name, level)
            for e in out:
                edges.add(e.key)
                if e.case.target in TERMINALS:
                    continue
                nxt = (e.case.target, self.next_level(level, e.case))
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return {n for n, _ in seen}, edges

    def produces(
        self,
        sequences: Iterable[tuple[str, ...]],
        flag: str | None = None,
        ids: Iterable[int] = (),
    ) -> bool:
        """Whether some packet ends with one of the marker `sequences` (its PTYPE),
        with parser flag `flag` set and every protocol ID in `ids` in its ``po``.

        Every header boundary is a possible end (a packet may be cut anywhere), so
        this is what :meth:`e810pipe.parser.Parser.parse` can report.
        """
        trie: dict[tuple[int, str], int] = {}
        final: set[int] = set()
        for seq in sequences:
            node = 0
            for m in seq:
                nxt = trie.get((node, m))
                if nxt is None:
                    nxt = trie[(node, m)] = len(trie) + 1
                node = nxt
            final.add(node)
        if not final:
            return False
        pkg = self.package
        need = frozenset(ids)
        by_name = pkg.proto_ids

        def advance(node: int, marks: Iterable[str]) -> int | None:
            for m in marks:
                nxt = trie.get((node, m))
                if nxt is None:
                    return None
                node = nxt
            return node

        def level_ids(reports: Iterable[Any], level: int) -> frozenset[int]:
            got = set()
            for rep in reports:
                pid = by_name.get(rep.ids[min(level, len(rep.ids) - 1)])
                if pid in need:
                    got.add(pid)
            return frozenset(got)

        def done(node: int, has_flag: bool, got: frozenset[int]) -> bool:
            return node in final and (flag is None or has_flag) and need <= got

        State = tuple[str, int, int, bool, frozenset[int], str | None]
        start: State = (pkg.start, 0, 0, False, frozenset(), None)
        seen = {start}
        todo = [start]
        while todo:
            name, level, node, has_flag, got, carrier = todo.pop()
            proto = pkg.protocols[name]
            adv = advance(node, proto.marks)
            if adv is None:
                continue
            node = adv
            has_flag = has_flag or flag in proto.flags
            got = got | level_ids(proto.reports, level)
            if proto.carriers:
                carrier = name
            out, falls_through = self.step(name, level)
            if falls_through and done(node, has_flag, got):
                return True
            for e in out:
                c = e.case
                if c.target == "pass":
                    continue  # falls through to the next select: not an edge
                n2 = advance(node, c.marks)
                if n2 is None:
                    continue
                f2 = has_flag or flag in c.flags
                g2 = got
                lvl2 = level
                car2 = carrier
                if c.tunnel is not None:
                    f2 = f2 or flag == f"tunnel_{c.tunnel}"
                    if carrier is not None:
                        g2 = g2 | level_ids(pkg.protocols[carrier].carriers, level)
                    lvl2 = self.next_level(level, c)
                    car2 = None
                if done(n2, f2, g2):
                    return True  # the packet ends here (a terminal, or cut short)
                if c.target in TERMINALS:
                    continue
                st: State = (c.target, lvl2, n2, f2, g2, car2)
                if st not in seen:
                    seen.add(st)
                    todo.append(st)
        return False


def _literal_values(package: Package) -> set[int]:
    out: set[int] = set()
    for proto in package.protocols.values():
        for sel in proto.selects:
            for case in sel.cases:
                for pat in case.patterns or ():
                    for v in pat:
                        if v[0] == "int":
                            out.add(v[1])
    return out


def filled_ports(package: Package, tables: Iterable[str] | None = None) -> dict[str, set[int]]:
    """One made-up port per UDP tunnel table, a port no select names literally."""
    used = _literal_values(package)
    free = (p for p in range(65535, 1024, -1) if p not in used)
    names = package.udp_tunnels if tables is None else list(tables)
    return {t: {next(free)} for t in names}


def option_combos(package: Package) -> list[frozenset[str]]:
    opts = sorted(package.options)
    out: list[frozenset[str]] = [frozenset()]
    for o in opts:
        out += [s | {o} for s in out]
    return out


# ------------------------------------------------------------------------ linting


@dataclass(frozen=True)
class LintWarning:
    kind: str  # conditional, unreachable, ptype-range, ptype-markers, ptype-hole, field, proto-id
    message: str
    path: str
    line: int
    column: int
    context: str = ""

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}:{self.column}: warning: {self.message} [{self.kind}]"
        return text + ("\n" + self.context if self.context else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "column": self.column,
        }


@dataclass
class LintReport:
    """The result of linting one profile on its stack."""

    path: str
    stack: list[str]
    package: Package | None = None
    error: ProfileError | None = None
    warnings: list[LintWarning] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        err = self.error
        return {
            "file": self.path,
            "ok": self.ok,
            "package": self.package.title if self.package else None,
            "error": None
            if err is None
            else {
                "message": err.message,
                "path": err.path,
                "line": err.line,
                "column": err.column,
            },
            "warnings": [w.to_json() for w in self.warnings],
        }


# PTYPE numbers Intel's packages use (/work/shared/e810-facts.md section 2).
_L2_PTYPES = {1: "MAC_PAY", 2: "L2 timesync", 6: "LLDP", 7: "ECP", 10: "EAPOL", 11: "ARP"}
_IP_LAYOUT = ("fragment", "payload", "UDP", "unused slot", "TCP", "SCTP", "ICMP")
_IP_BLOCKS: list[tuple[int, int, str]] = []  # (first, size, description)
for _outer, _base in (("IPv4", 22), ("IPv6", 88)):
    _IP_BLOCKS += [
        (_base, 7, f"MAC / {_outer}"),
        (_base + 7, 7, f"MAC / {_outer} / IP-in-IP IPv4"),
        (_base + 14, 7, f"MAC / {_outer} / IP-in-IP IPv6"),
    ]
    _tun = _base + 21
    for _inner, _off in (("", 0), (" / MAC", 15), (" / MAC + VLAN", 30)):
        _IP_BLOCKS += [
            (_tun + _off, 1, f"MAC / {_outer} / GRE-NAT tunnel{_inner}, payload"),
            (_tun + _off + 1, 7, f"MAC / {_outer} / GRE-NAT tunnel{_inner} / IPv4"),
            (_tun + _off + 8, 7, f"MAC / {_outer} / GRE-NAT tunnel{_inner} / IPv6"),
        ]
_PACKAGE_RANGES: list[tuple[int, int, str]] = [
    (160, 169, "IPsec ESP, AH and NAT-T"),
    (278, 278, "MAC control"),
    (300, 313, "PPPoE"),
    (325, 330, "GTP-C and GTP-U"),
    (331, 350, "GTP-U carrying IPv4 or IPv6"),
    (351, 354, "PFCP"),
    (360, 361, "L2TPv3"),
    (372, 391, "eCPRI over UDP"),
    (392, 395, "GTP-U carrying SCTP"),
    (396, 425, "L2TPv2 and PPPoL2TPv2"),
    (450, 497, "IP / GRE / IP / GTP-U / IP"),
]
FREE_PTYPES = "600..1023"


def intel_ptype_use(number: int) -> str | None:
    """What Intel's numbering uses PTYPE `number` for, or None if it is free."""
    if 1 <= number <= 21:
        what = _L2_PTYPES.get(number, "a reserved L2 slot")
        return f"the kernel's decode table (ice_ptype_lkup) has {number} as {what}"
    for first, size, desc in _IP_BLOCKS:
        if first <= number < first + size:
            what = desc if size == 1 else f"{desc}, {_IP_LAYOUT[number - first]}"
            return f"the kernel's decode table (ice_ptype_lkup) has {number} as {what}"
    for lo, hi, desc in _PACKAGE_RANGES:
        if lo <= number <= hi:
            return f"Intel's packages number {desc} as {lo}..{hi}"
    return None


@functools.lru_cache(maxsize=4)
def _stock_package(name: str) -> Package:
    return load_package([name])


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:  # pragma: no cover
        return a == b


def _stock_paths() -> set[Path]:
    return {(profiles_dir() / f"{n}.ddp").resolve() for n in stock_profile_names()}


def default_stack(refs: Sequence[str] | None) -> list[str]:
    """Repeated --profile values to a stack (as the other commands read them)."""
    from .build import profile_stack

    return profile_stack(refs)


_CLI_PORTS = ("vxlan", "geneve", "vxlan_gpe")  # tables with a --KIND-port option


class _Linter:
    def __init__(self, path: str, profiles: list[Profile], package: Package) -> None:
        self.package = package
        self.profiles = profiles
        self.own = [p for p in profiles if _same_file(p.path, path)]
        self.own_paths = {p.path for p in self.own}
        self.texts = {p.path: p.text for p in profiles}
        self.stock = any(Path(p.path).resolve() in _stock_paths() for p in self.own)
        self.warnings: list[LintWarning] = []
        self._models: list[GraphModel] | None = None

    def mine(self, pos: Pos) -> bool:
        return pos.path in self.own_paths

    def warn(self, kind: str, message: str, pos: Pos) -> None:
        ctx = context_line(self.texts.get(pos.path, ""), pos.line, pos.column)
        path = _display(pos.path)
        self.warnings.append(LintWarning(kind, message, path, pos.line, pos.column, ctx))

    def where(self, pos: Pos) -> str:
        return f"{_display(pos.path)}:{pos.line}:{pos.column}"

    def run(self) -> list[LintWarning]:
        self.reachability()
        self.ptypes()
        self.holes()
        self.match_fields()
        self.proto_ids()
        self.warnings.sort(key=lambda w: (w.path, w.line, w.column))
        return self.warnings

    # -- reachability ------------------------------------------------------------

    def _conditions(self) -> list[tuple[str, dict[str, set[int]], frozenset[str]]]:
        pkg = self.package
        out: list[tuple[str, dict[str, set[int]], frozenset[str]]] = []
        for t in pkg.udp_tunnels:
            out.append(
                (
                    f"@{t}, which is empty until a port is registered "
                    f"(udp_tunnel_port add {t.replace('_', '-')} PORT"
                    + (f", --{t.replace('_', '-')}-port)" if t in _CLI_PORTS else ")"),
                    filled_ports(pkg, [t]),
                    frozenset(),
                )
            )
        for o in sorted(pkg.options):
            out.append((f"option {o}, which is off by default", {}, frozenset({o})))
        return out

    def reachability(self) -> None:
        pkg = self.package
        default_protos, default_edges = GraphModel(pkg).reach()
        conds = self._conditions()
        per_cond = [(label, GraphModel(pkg, ports, opts).reach()) for label, ports, opts in conds]
        combos = [m.reach() for m in self._permissive()]
        any_protos = set().union(*(c[0] for c in combos))
        any_edges: set[tuple[str, int, int]] = set().union(*(c[1] for c in combos))
        incoming = self._incoming()
        flagged: set[str] = set()
        for name, proto in pkg.protocols.items():
            if not self.mine(proto.pos) or name in default_protos:
                continue
            flagged.add(name)
            via = [label for label, (protos, _) in per_cond if name in protos]
            edge = incoming.get(name)
            at = f" (edge at {self.where(edge)})" if edge is not None else ""
            if via:
                self.warn(
                    "conditional",
                    f"protocol '{name}' is reached only through " + " or ".join(via) + at,
                    proto.pos,
                )
            elif name in any_protos:
                self.warn(
                    "conditional",
                    f"protocol '{name}' is reached only with several runtime settings "
                    f"together (UDP tunnel ports and options){at}",
                    proto.pos,
                )
            else:
                self.warn(
                    "unreachable",
                    f"protocol '{name}' is never reached: {self._why_never(name)}{at}",
                    proto.pos,
                )
        # the profile's own edges: taken only under a runtime setting, or never.
        # A case of an edge set appears under every protocol that uses the set; it is
        # reported once, and not at all if it is taken from any of them by default.
        sites: dict[Pos, list[tuple[str, int, int, Case]]] = {}
        for name, proto in pkg.protocols.items():
            if name in flagged:
                continue
            for si, sel in enumerate(proto.selects):
                for ci, case in enumerate(sel.cases):
                    if self.mine(case.pos) and case.target not in flagged:
                        sites.setdefault(case.pos, []).append((name, si, ci, case))
        for pos, uses in sites.items():
            if any((n, si, ci) in default_edges for n, si, ci, _ in uses):
                continue
            name, si, ci, case = uses[0]
            desc = _edge_text(pkg.protocols[name], si, case)
            via = [
                label
                for label, (_, edges) in per_cond
                if any((n, s, c) in edges for n, s, c, _ in uses)
            ]
            if via:
                self.warn(
                    "conditional", f"edge {desc} is taken only through " + " or ".join(via), pos
                )
            elif any((n, s, c) in any_edges for n, s, c, _ in uses):
                self.warn(
                    "conditional",
                    f"edge {desc} is taken only with several runtime settings together",
                    pos,
                )
            else:
                self.warn(
                    "unreachable",
                    f"edge {desc} is never taken: {self._why_edge(name, si, case)}",
                    pos,
                )

    def _incoming(self) -> dict[str, Pos]:
        out: dict[str, Pos] = {}
        for proto in self.package.protocols.values():
            for sel in proto.selects:
                for case in sel.cases:
                    if case.target not in TERMINALS:
                        if case.target not in out or self.mine(case.pos):
                            out[case.target] = case.pos
        return out

    def _why_never(self, name: str) -> str:
        pkg = self.package
        ports = filled_ports(pkg)
        for opts in option_combos(pkg):
            if name in GraphModel(pkg, ports, opts, depth=False).reach()[0]:
                return f"every path to it enters a tunnel past tunnel_depth {pkg.tunnel_depth}"
        for opts in option_combos(pkg):
            if name in GraphModel(pkg, ports, opts, depth=False, order=False).reach()[0]:
                return "the selects leading to it come after a select that always decides"
        return "the guards on the edges into it ('if tunnel', options) exclude every path"

    def _why_edge(self, name: str, si: int, case: Case) -> str:
        pkg = self.package
        proto = pkg.protocols[name]
        ports = filled_ports(pkg)
        if not any(name in m.reach()[0] for m in self._permissive()):
            return f"protocol '{name}' is never reached"
        levels = range(pkg.tunnel_depth + 1)
        for opts in option_combos(pkg):
            model = GraphModel(pkg, ports, opts, order=False)
            if any(
                e.select == si and e.case is case for lv in levels for e in model.step(name, lv)[0]
            ):
                first = next(
                    (
                        s
                        for j, s in enumerate(proto.selects[:si])
                        if not GraphModel(pkg, ports, opts)._select(proto, j, 0)[1]
                    ),
                    proto.selects[si - 1] if si else proto.selects[si],
                )
                return f"an earlier select of '{name}' always decides ({self.where(first.pos)})"
        if case.tunnel is not None:
            return (
                f"it enters a tunnel, and '{name}' is only reached at tunnel_depth "
                f"{pkg.tunnel_depth}"
            )
        return "earlier cases or guards take every value it names"

    def _permissive(self) -> list[GraphModel]:
        """The graph with every port table filled, once per combination of options."""
        if self._models is None:
            pkg = self.package
            ports = filled_ports(pkg)
            self._models = [GraphModel(pkg, ports, o) for o in option_combos(pkg)]
        return self._models

    # -- PTYPEs ------------------------------------------------------------------

    def ptypes(self) -> None:
        pkg = self.package
        own = [pt for pt in pkg.ptypes.values() if self.mine(pt.pos)]
        if not own:
            return
        winner: dict[tuple[str, ...], int] = {}
        for n, pt in pkg.ptypes.items():
            winner[pt.markers] = n  # the parser's table: the last declaration wins
        comms = None if self.stock else _stock_package("comms")
        base_is_comms = "COMMS" in pkg.name
        for pt in own:
            if not self.stock:
                use = intel_ptype_use(pt.number)
                if comms is not None and not base_is_comms and pt.number in comms.ptypes:
                    other = comms.ptypes[pt.number]
                    self.warn(
                        "ptype-range",
                        f"PTYPE {pt.number} is {other.name} in Intel's COMMS package: this "
                        f"profile cannot be loaded with comms (duplicate PTYPE); pick a "
                        f"number the stock packages leave free (e.g. {FREE_PTYPES})",
                        pt.pos,
                    )
                elif use is not None:
                    self.warn(
                        "ptype-range",
                        f"PTYPE {pt.number} collides with Intel's numbering: {use}; the "
                        f"stock package leaves it undeclared, a newer package may not; pick "
                        f"a number the stock packages leave free (e.g. {FREE_PTYPES})",
                        pt.pos,
                    )
            for n, other in pkg.ptypes.items():
                if n == pt.number or other.markers != pt.markers:
                    continue
                kept = winner[pt.markers]
                lost = pt.number if kept != pt.number else n
                self.warn(
                    "ptype-markers",
                    f"PTYPE {pt.number} has the same markers ({' '.join(pt.markers)}) as "
                    f"PTYPE {n} {other.name} ({self.where(other.pos)}); the marker TCAM holds "
                    f"one entry per sequence, so packets get {kept} and {lost} is never "
                    "reported",
                    pt.pos,
                )
                break
            if not self._producible(pt.markers):
                self.warn(
                    "ptype-markers",
                    f"PTYPE {pt.number} is never reported: no parse path sets the markers "
                    f"{' '.join(pt.markers)} in this order",
                    pt.pos,
                )

    def holes(self, shown: int = 8) -> None:
        """Marker sequences that complete parses through this file's protocols end with
        and that no PTYPE declares: the marker TCAM has no entry, so such packets get
        PTYPE 0xFFFF and no rule can name them."""
        from .engine import reachable_markers  # the engine's graph walk (engine imports lint)

        pkg = self.package
        declared = {pt.markers for pt in pkg.ptypes.values()}
        holes: dict[str, list[str]] = {}
        for model in self._permissive():
            for markers, route in reachable_markers(model).items():
                if markers in declared:
                    continue
                own = [n for n in route if self.mine(pkg.protocols[n].pos)]
                if own:
                    seqs = holes.setdefault(own[0], [])
                    text = " ".join(markers)
                    if text not in seqs:
                        seqs.append(text)
        for name, seqs in holes.items():
            seqs.sort(key=lambda t: (len(t.split()), t))
            more = f" and {len(seqs) - shown} more" if len(seqs) > shown else ""
            self.warn(
                "ptype-hole",
                f"packets through {name} can end with {len(seqs)} marker sequence(s) that "
                f"no PTYPE declares, so they get PTYPE 0xFFFF and no rule can name them: "
                f"{'; '.join(seqs[:shown])}{more}",
                pkg.protocols[name].pos,
            )

    def _producible(self, markers: tuple[str, ...]) -> bool:
        return any(m.produces([markers]) for m in self._permissive())

    # -- match fields ------------------------------------------------------------

    def match_fields(self) -> None:
        pkg = self.package
        for mf in pkg.match_fields.values():
            if not self.mine(mf.pos):
                continue
            proto = pkg.protocols[mf.protocol]
            ids = [i for rep in proto.reports for i in rep.ids] or [
                i for rep in proto.carriers for i in rep.ids
            ]
            builtin = f"{mf.protocol}.{mf.field}"
            if not ids:
                alt = ""
                if builtin in _CATALOG:
                    cat = _CATALOG[builtin]
                    pid = cat[0][0]
                    if self._reported(pid):
                        alt = (
                            f"; rules can match the built-in field '{builtin}' instead "
                            f"({pid}+{cat[1] // 8})"
                        )
                    else:
                        alt = (
                            f"; the built-in field '{builtin}' needs {pid}, which no loaded "
                            "protocol reports either"
                        )
                self.warn(
                    "field",
                    f"match field '{mf.name}' = {builtin} cannot be matched by any rule: "
                    f"protocol '{mf.protocol}' reports no protocol ID, so no field-vector "
                    f"word can address it (add 'report ID;' to '{mf.protocol}'){alt}",
                    mf.pos,
                )
                continue
            fld = proto.field(mf.field)
            if fld is None or fld.cond is None:
                continue
            before = []
            for f in proto.fields:
                if f.name == mf.field:
                    break
                if f.cond is not None:
                    before.append(f.name)
            rep = ids[0]
            if before:
                self.warn(
                    "field",
                    f"match field '{mf.name}' = {builtin} has no fixed offset: it comes after "
                    f"the optional field(s) {' and '.join(before)}, but a field-vector word "
                    f"sits at a fixed offset from {rep}, so rules on it read other bytes "
                    "whenever those are present",
                    mf.pos,
                )
            else:
                self.warn(
                    "field",
                    f"match field '{mf.name}' = {builtin} is optional: where it is absent "
                    f"the field-vector word at its offset from {rep} reads the bytes that "
                    "follow, so a rule on it can also hit packets without it",
                    mf.pos,
                )

    def _reported(self, name: str) -> bool:
        return any(
            name in rep.ids
            for proto in self.package.protocols.values()
            for rep in (*proto.reports, *proto.carriers)
        )

    # -- protocol IDs ------------------------------------------------------------

    def proto_ids(self) -> None:
        by_value: dict[int, list[str]] = {}
        for name, value in self.package.proto_ids.items():
            by_value.setdefault(value, []).append(name)
        for prof in self.own:
            for name, value, pos in prof.proto_ids:
                others = [n for n in by_value.get(value, []) if n != name]
                if others:
                    self.warn(
                        "proto-id",
                        f"protocol ID {name} = {value} is also {', '.join(others)}: headers "
                        "reporting either share one po slot (the later one wins)",
                        pos,
                    )


def _edge_text(proto: ResolvedProtocol, si: int, case: Case) -> str:
    key = _key_text(proto.selects[si].key)
    return f"{proto.name}.{key} {_values_text(proto, proto.selects[si].key, case)} => {case.target}"


_HEX_KEYS = ("ethertype", "protocol", "protocol_type", "type")


def _values_text(proto: ResolvedProtocol, key: tuple[KeyItem, ...], case: Case) -> str:
    """A case's values as a profile would write them: EtherTypes in hex, ports in decimal."""
    if case.patterns is None:
        return "default"
    widths = _key_widths(proto, key)

    def one(v: tuple, k: KeyItem, w: int) -> str:
        hexa = w > 16 or (w == 16 and k.field in _HEX_KEYS)

        def num(x: int) -> str:
            return f"{x:#x}" if hexa and x > 9 else str(x)

        if v[0] == "int":
            return num(v[1])
        if v[0] == "range":
            return f"{num(v[1])}..{num(v[2])}"
        return f"@{v[1]}"

    out = []
    for pat in case.patterns:
        vals = [one(v, k, w) for v, k, w in zip(pat, key, widths)]
        out.append(vals[0] if len(vals) == 1 else "(" + ", ".join(vals) + ")")
    return ", ".join(out)


def _key_text(key: tuple[KeyItem, ...]) -> str:
    parts = [
        k.field if k.field is not None else f"peek({k.peek_offset}, {k.peek_bits})" for k in key
    ]
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def _short(path: str) -> str:
    p = Path(path)
    for base in (profiles_dir(), Path.cwd()):
        try:
            return str(p.resolve().relative_to(base.resolve()))
        except ValueError:
            continue
    return path


def _display(path: str) -> str:
    """`path` relative to the working directory when it lies below it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return path


def lint_file(path: str, base: Sequence[str] | None = None) -> LintReport:
    """Load `path` on the stack `base` (stock names or paths) and lint it."""
    stack = default_stack([*(base or []), path])
    report = LintReport(path, stack)
    own = str(resolve_profile_ref(stack[-1]))
    try:
        profiles = expand_stack(stack)
        package = resolve(profiles)
    except ProfileError as err:
        report.error = err
        return report
    report.package = package
    linter = _Linter(own, profiles, package)
    report.warnings = linter.run()
    for w in package.warnings:
        report.warnings.append(LintWarning("package", w, own, 0, 0))
    return report


# ------------------------------------------------------------------------ diffing


def _node_info(p: ResolvedProtocol) -> dict[str, Any]:
    return {
        "name": p.name,
        "display": p.display,
        "origin": _short(p.origin),
        "line": p.pos.line,
        "fields": [
            f"{f.name}:{f.bits}" + (" if ..." if f.cond is not None else "") for f in p.fields
        ],
        "reports": [" | ".join(r.ids) + (f" at {r.at}" if r.at else "") for r in p.reports],
        "carriers": [" | ".join(r.ids) for r in p.carriers],
        "marks": list(p.marks),
        "flags": list(p.flags),
    }


def _edges(pkg: Package) -> dict[tuple, dict[str, Any]]:
    out: dict[tuple, dict[str, Any]] = {}
    for p in pkg.protocols.values():
        for sel in p.selects:
            key = _key_text(sel.key)
            for case in sel.cases:
                attrs = [f"mark {m}" for m in case.marks]
                if case.tunnel:
                    attrs.append(f"tunnel {case.tunnel}")
                attrs += [f"flag {f}" for f in case.flags]
                attrs += [f"if {'' if want else '!'}{g}" for g, want in case.guards]
                vals = _values_text(p, sel.key, case)
                rec = {
                    "source": p.name,
                    "key": key,
                    "values": vals,
                    "target": case.target,
                    "attrs": attrs,
                    "origin": _short(case.pos.path),
                    "line": case.pos.line,
                }
                out[(p.name, key, vals, case.target, tuple(attrs))] = rec
    return out


@dataclass
class PackageDiff:
    """What package `b` adds over package `a`, and what it removes or changes."""

    a: Package
    b: Package
    a_stack: list[str]
    b_stack: list[str]
    sections: dict[str, dict[str, list[Any]]]

    @property
    def empty(self) -> bool:
        return not any(v for sec in self.sections.values() for v in sec.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "a": {"stack": self.a_stack, "package": self.a.title},
            "b": {"stack": self.b_stack, "package": self.b.title},
            **self.sections,
        }

    def text(self) -> str:
        s = self.sections
        lines = [
            f"--- {' + '.join(self.a_stack)} ({self.a.title})",
            f"+++ {' + '.join(self.b_stack)} ({self.b.title})",
        ]

        def head(title: str, sec: dict[str, list[Any]]) -> None:
            counts = [
                f"{sign}{len(sec.get(k, []))}"
                for k, sign in (("added", "+"), ("removed", "-"), ("changed", "~"))
                if sec.get(k)
            ]
            lines.append(f"\n{title} ({', '.join(counts)}):" if counts else f"\n{title}: no change")

        n = s["nodes"]
        head("nodes", n)
        for rec in n["added"]:
            lines.append(f"  + {_node_text(rec)}")
        for rec in n["removed"]:
            lines.append(f"  - {_node_text(rec)}")
        for rec in n["changed"]:
            lines.append(f"  ~ {rec['name']}")
            for attr, (old, new) in rec["changes"].items():
                lines.append(f"      {attr}: {_fmt(old)} -> {_fmt(new)}")
        e = s["edges"]
        head("edges", e)
        for sign, key in (("+", "added"), ("-", "removed")):
            for rec in e[key]:
                lines.append(f"  {sign} {_edge_line(rec)}")
        p = s["ptypes"]
        head("ptypes", p)
        for sign, key in (("+", "added"), ("-", "removed")):
            for rec in p[key]:
                lines.append(
                    f"  {sign} {rec['number']:>4} {rec['name']}: {' '.join(rec['markers'])}"
                )
        for rec in p["changed"]:
            old, new = rec["old"], rec["new"]
            lines.append(
                f"  ~ {rec['number']:>4} {old['name']}: {' '.join(old['markers'])} -> "
                f"{new['name']}: {' '.join(new['markers'])}"
            )
        i = s["proto_ids"]
        head("protocol IDs", i)
        for sign, key in (("+", "added"), ("-", "removed")):
            for rec in i[key]:
                lines.append(f"  {sign} {rec['name']} = {rec['value']}")
        for rec in i["changed"]:
            lines.append(f"  ~ {rec['name']} = {rec['old']} -> {rec['new']}")
        m = s["match_fields"]
        head("match fields", m)
        for sign, key in (("+", "added"), ("-", "removed")):
            for rec in m[key]:
                lines.append(f"  {sign} {rec['name']} = {rec['field']}")
        for rec in m["changed"]:
            lines.append(f"  ~ {rec['name']} = {rec['old']} -> {rec['new']}")
        st = s["settings"]
        if any(st.values()):
            head("settings", st)
            for sign, key in (("+", "added"), ("-", "removed")):
                for rec in st[key]:
                    lines.append(f"  {sign} {rec}")
            for rec in st["changed"]:
                lines.append(f"  ~ {rec}")
        return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v) or "(none)"
    return str(v)


def _node_text(rec: dict[str, Any]) -> str:
    parts = [f"{rec['name']}"]
    if rec["display"] != rec["name"]:
        parts.append(f'"{rec["display"]}"')
    parts.append(f"[{rec['origin']}:{rec['line']}]")
    parts.append("fields " + (" ".join(rec["fields"]) or "(none)"))
    if rec["reports"]:
        parts.append("report " + ", ".join(rec["reports"]))
    if rec["carriers"]:
        parts.append("carrier " + ", ".join(rec["carriers"]))
    if rec["marks"]:
        parts.append("mark " + " ".join(rec["marks"]))
    return "  ".join(parts)


def _edge_line(rec: dict[str, Any]) -> str:
    attrs = (" " + " ".join(rec["attrs"])) if rec["attrs"] else ""
    return (
        f"{rec['source']} -> {rec['target']}  [{rec['key']} = {rec['values']}]{attrs}"
        f"  ({rec['origin']}:{rec['line']})"
    )


def diff_packages(
    a: Package, b: Package, a_stack: list[str] | None = None, b_stack: list[str] | None = None
) -> PackageDiff:
    """Nodes, edges, PTYPEs, protocol IDs, match fields and settings: `b` against `a`."""
    sections: dict[str, dict[str, list[Any]]] = {}
    # nodes
    added = [_node_info(b.protocols[n]) for n in b.protocols if n not in a.protocols]
    removed = [_node_info(a.protocols[n]) for n in a.protocols if n not in b.protocols]
    changed = []
    for n in a.protocols:
        if n not in b.protocols:
            continue
        old, new = _node_info(a.protocols[n]), _node_info(b.protocols[n])
        diffs = {
            k: (old[k], new[k])
            for k in ("display", "fields", "reports", "carriers", "marks", "flags")
            if old[k] != new[k]
        }
        if diffs:
            changed.append({"name": n, "changes": diffs})
    sections["nodes"] = {"added": added, "removed": removed, "changed": changed}
    # edges
    ea, eb = _edges(a), _edges(b)
    sections["edges"] = {
        "added": [eb[k] for k in eb if k not in ea],
        "removed": [ea[k] for k in ea if k not in eb],
        "changed": [],
    }

    # PTYPEs
    def pt(p: Any) -> dict[str, Any]:
        return {"number": p.number, "name": p.name, "markers": list(p.markers)}

    sections["ptypes"] = {
        "added": [pt(b.ptypes[n]) for n in sorted(b.ptypes) if n not in a.ptypes],
        "removed": [pt(a.ptypes[n]) for n in sorted(a.ptypes) if n not in b.ptypes],
        "changed": [
            {"number": n, "old": pt(a.ptypes[n]), "new": pt(b.ptypes[n])}
            for n in sorted(a.ptypes)
            if n in b.ptypes
            and (a.ptypes[n].name, a.ptypes[n].markers) != (b.ptypes[n].name, b.ptypes[n].markers)
        ],
    }
    # protocol IDs
    sections["proto_ids"] = {
        "added": [{"name": k, "value": v} for k, v in b.proto_ids.items() if k not in a.proto_ids],
        "removed": [
            {"name": k, "value": v} for k, v in a.proto_ids.items() if k not in b.proto_ids
        ],
        "changed": [
            {"name": k, "old": v, "new": b.proto_ids[k]}
            for k, v in a.proto_ids.items()
            if k in b.proto_ids and b.proto_ids[k] != v
        ],
    }

    # match fields
    def mf(p: Package, n: str) -> str:
        m = p.match_fields[n]
        return f"{m.protocol}.{m.field}"

    sections["match_fields"] = {
        "added": [
            {"name": n, "field": mf(b, n)} for n in b.match_fields if n not in a.match_fields
        ],
        "removed": [
            {"name": n, "field": mf(a, n)} for n in a.match_fields if n not in b.match_fields
        ],
        "changed": [
            {"name": n, "old": mf(a, n), "new": mf(b, n)}
            for n in a.match_fields
            if n in b.match_fields and mf(a, n) != mf(b, n)
        ],
    }
    # runtime settings
    st: dict[str, list[Any]] = {"added": [], "removed": [], "changed": []}
    for o in sorted(b.options - a.options):
        st["added"].append(f"option {o}")
    for o in sorted(a.options - b.options):
        st["removed"].append(f"option {o}")
    for t in b.udp_tunnels:
        if t not in a.udp_tunnels:
            st["added"].append(f"udp_tunnel {t}")
    for t in a.udp_tunnels:
        if t not in b.udp_tunnels:
            st["removed"].append(f"udp_tunnel {t}")
    if a.tunnel_depth != b.tunnel_depth:
        st["changed"].append(f"tunnel_depth {a.tunnel_depth} -> {b.tunnel_depth}")
    if a.start != b.start:
        st["changed"].append(f"start {a.start} -> {b.start}")
    if a.title != b.title:
        st["changed"].append(f"package {a.title} -> {b.title}")
    sections["settings"] = st
    return PackageDiff(a, b, a_stack or a.profiles, b_stack or b.profiles, sections)


def parse_stack_arg(text: str) -> list[str]:
    """`comms` or `os-default,examples/custom-gre.ddp` (comma or + separated) to a stack."""
    refs = [r for r in text.replace("+", ",").split(",") if r]
    return default_stack(refs)


# ---------------------------------------------------------------- command line


def cmd_profile_check(args: argparse.Namespace, out: TextIO) -> int:
    reports = [lint_file(path, args.profile) for path in args.file]
    if getattr(args, "json", False):
        for r in reports:
            out.write(json.dumps(r.to_json(), separators=(",", ":")) + "\n")
    else:
        for r in reports:
            err = r.error
            if err is not None:
                out.write(f"{err.path}:{err.line}:{err.column}: error: {err.message}\n")
                if err.context:
                    out.write(err.context.rstrip("\n") + "\n")
                continue
            pkg = r.package
            assert pkg is not None
            out.write(
                f"{r.path}: OK ({len(pkg.protocols)} protocols, {len(pkg.ptypes)} PTYPEs, "
                f"on {pkg.title})"
                + (f", {len(r.warnings)} warning(s)" if r.warnings else "")
                + "\n"
            )
            for w in r.warnings:
                out.write(str(w) + "\n")
    if any(r.error is not None for r in reports):
        return 3
    if args.strict and any(r.warnings for r in reports):
        return 1
    return 0


def cmd_profile_diff(args: argparse.Namespace, out: TextIO) -> int:
    sa, sb = parse_stack_arg(args.a), parse_stack_arg(args.b)
    d = diff_packages(load_package(sa), load_package(sb), sa, sb)
    if args.json:
        out.write(json.dumps(d.to_json(), indent=1) + "\n")
    else:
        out.write(d.text())
    return 0


def register_profile_cli(psub: Any) -> None:
    """Add `profile check` and `profile diff` to the `profile` subcommand group."""
    chk = psub.add_parser(
        "check", help="load a profile on its stock package, report errors and warnings"
    )
    chk.add_argument("file", nargs="+", metavar="FILE")
    chk.add_argument("--profile", action="append", metavar="NAME", help="base package")
    chk.add_argument("--strict", action="store_true", help="exit 1 when there are warnings")
    chk.add_argument("--json", action="store_true", help="one JSON report per file per line")
    chk.set_defaults(func=cmd_profile_check)
    dif = psub.add_parser("diff", help="what profile stack B adds over A")
    dif.add_argument("a", metavar="A", help="a stock name, a profile, or a stack: comms,x.ddp")
    dif.add_argument("b", metavar="B")
    dif.add_argument("--json", action="store_true", help="the difference as one JSON object")
    dif.set_defaults(func=cmd_profile_diff)


__all__ = [
    "GraphModel",
    "LintReport",
    "LintWarning",
    "PackageDiff",
    "diff_packages",
    "intel_ptype_use",
    "lint_file",
    "register_profile_cli",
]

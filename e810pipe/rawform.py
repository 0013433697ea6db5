"""The raw-pattern form of a rule on a profile's own protocol, as the real NIC takes it.

Real testpmd cannot name a protocol that only a DDP package defines; ice steers such
packets with a protocol-agnostic rule instead: ``raw pattern spec HEX pattern mask
HEX``, a sample packet and a mask in ASCII hex (``ice_fdir_parse_pattern()`` in
ice_fdir_filter.c turns both into bytes). ice parses the sample with the package's
parser (``ice_parser_run()``), takes its PTYPE, and builds the profile's field
vector from the mask: each masked 16-bit word at the nearest preceding protocol
offset (``ice_parser_profile_init()``).

For a rule written with a profile's items, :func:`raw_forms` builds, for each PTYPE
the rule covers, a sample packet that parses to that PTYPE along the rule's headers
(walked from the parse graph, as the fuzzer builds packets), writes the rule's
values into it and masks exactly the bits the rule compares. Each form is checked:
the sample must parse to the same PTYPE and headers, and its raw Match must compare
the same bytes. A rule that compares a range (``last``) has no raw form.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .engine import PatternPath, walk_pattern
from .rules import Action, FlowRule, Item, RawSpec

if TYPE_CHECKING:
    from .engine import Match
    from .pipeline import Pipeline

ATTEMPTS = 64  # sample packets tried per PTYPE before giving up on it


@dataclass(frozen=True)
class RawForm:
    """One raw rule: the sample and mask, and the PTYPE the sample parses to."""

    ptype: int
    sample: bytes
    mask: bytes

    @property
    def pattern(self) -> str:
        """The pattern item, in testpmd syntax (ASCII hex, as ice takes it)."""
        return f"raw pattern spec {self.sample.hex()} pattern mask {self.mask.hex()}"


def profile_items(pipe: Pipeline, rule: FlowRule) -> list[str]:
    """The rule's items that real testpmd cannot name: a profile's own protocols."""
    from .testpmd import _ITEMS

    pkg = pipe.parser.package
    return [i.type for i in rule.items if i.type not in _ITEMS and i.type in pkg.protocols]


def rule_text(rule: FlowRule, form: RawForm) -> str:
    """The whole ``flow create`` command with the raw pattern."""
    attrs = []
    if rule.group:
        attrs.append(f"group {rule.group}")
    if rule.priority:
        attrs.append(f"priority {rule.priority}")
    attrs.append("ingress" if rule.ingress else "egress")
    acts = " / ".join(_action(a) for a in rule.actions)
    return (
        f"flow create {rule.port} {' '.join(attrs)} pattern {form.pattern} / end "
        f"actions {acts} / end"
    )


def _action(a: Action) -> str:
    if a.type == "queue":
        return f"queue index {a.queue}"
    if a.type == "mark":
        return f"mark id {a.mark}"
    if a.type == "rss":
        return "rss queues " + "".join(f"{q} " for q in a.queues) + "end"
    if a.type == "count" and a.counter is not None:
        return f"count identifier {a.counter}"
    return a.type


def raw_forms(pipe: Pipeline, rule: FlowRule, match: Match) -> tuple[list[RawForm], str]:
    """One raw form per PTYPE the rule covers (sorted), and a note on what could not
    be written ("" when every PTYPE has one)."""
    if match.raw:
        return [], "the rule is a raw pattern already"
    if match.ranges:
        return [], "a range ('last') has no raw form: a raw mask compares values"
    from .fuzz import GraphModel as FuzzModel
    from .fuzz import PacketBuilder

    parser = pipe.parser
    compiler = pipe.compiler
    pkg = parser.package
    names = [i.type for i in rule.pattern if i.type not in ("end", "void")]
    paths: dict[int, PatternPath] = {}
    by_markers = {p.markers: n for n, p in pkg.ptypes.items()}
    for exact in (True, False):
        walk = walk_pattern(compiler.model(), names, exact)
        for p in walk.paths:
            n = by_markers.get(p.markers)
            if p.complete and n in match.ptypes and n not in paths:
                paths[n] = p
    model = FuzzModel(parser)
    builder = PacketBuilder(model)
    forms: list[RawForm] = []
    missing: list[int] = []
    for n in sorted(match.ptypes):
        path = paths.get(n)
        form = _build(pipe, builder, model, match, n, path) if path is not None else None
        if form is None:
            missing.append(n)
        else:
            forms.append(form)
    note = ""
    if missing:
        note = "no sample packet found for PTYPE " + ", ".join(map(str, missing[:8]))
    return forms, note


def _build(
    pipe: Pipeline,
    builder: object,
    model: object,
    match: Match,
    ptype: int,
    path: PatternPath,
) -> RawForm | None:
    from .fuzz import PacketBuilder, RandomSource
    from .graph import END, ERROR

    assert isinstance(builder, PacketBuilder)
    parser = pipe.parser
    graph = parser.graph
    route = path.route
    allowed = set(zip(route, route[1:]))
    last = route[-1]

    def weight(nid: int, lvl: int, edge: object, going: bool) -> float:
        name = graph.nodes[nid].name
        if edge is None:
            return 1.0 if name == last else 1e-9
        target = edge[0]  # type: ignore[index]
        if target in (END, ERROR):
            return 1.0 if name == last and target == END else 1e-9
        return 1.0 if (name, graph.nodes[target].name) in allowed else 1e-9

    rng = random.Random(ptype)
    for _ in range(ATTEMPTS):
        gen = builder.build(
            RandomSource(rng), target=parser.window, limit=parser.window, weight=weight
        )
        res = parser.parse(gen.data)
        if res.ptype != ptype or tuple(h.name for h in res.headers) != route:
            continue
        data = bytearray(gen.data[: max(res.depth, 14)])
        res = parser.parse(bytes(data))
        if res.ptype != ptype:
            data = bytearray(gen.data)
        _zero(parser, data, ptype, route)
        form = _fill(pipe, match, ptype, route, data)
        if form is not None:
            return form
    return None


def _zero(parser: object, data: bytearray, ptype: int, route: tuple[str, ...]) -> None:
    """Zero every byte of the sample that the parse does not need (so the sample reads
    as its headers' select values and lengths, not as random bytes)."""
    from .parser import Parser

    assert isinstance(parser, Parser)

    def same() -> bool:
        res = parser.parse(bytes(data))
        return res.ptype == ptype and tuple(h.name for h in res.headers) == route

    for at in range(len(data)):
        old = data[at]
        if not old:
            continue
        data[at] = 0
        if same():
            continue
        data[at] = old
        for bit in range(8):  # the bits the parse needs stay (IPv4's IHL, a flag)
            if data[at] & (1 << bit):
                data[at] &= ~(1 << bit)
                if not same():
                    data[at] |= 1 << bit


def _fill(
    pipe: Pipeline, match: Match, ptype: int, route: tuple[str, ...], data: bytearray
) -> RawForm | None:
    """Write the rule's values into the sample and mask their bits; None if the values
    change the parse (a field that also selects the next header)."""
    parser = pipe.parser
    res = parser.parse(bytes(data))
    po = dict(res.po)
    mask = bytearray(len(data))
    for w, v, m in match.words:
        base = po.get(w.proto_id)
        if base is None:
            return None
        at = base + w.offset
        if at + 2 > len(data):
            return None
        old = int.from_bytes(data[at : at + 2], "big")
        data[at : at + 2] = ((old & ~m) | (v & m)).to_bytes(2, "big")
        mask[at : at + 2] = (int.from_bytes(mask[at : at + 2], "big") | m).to_bytes(2, "big")
    sample = bytes(data)
    res = parser.parse(sample)
    if res.ptype != ptype or tuple(h.name for h in res.headers) != route:
        return None
    raw = pipe.compiler.compile_raw(Item("raw", 0, raw=RawSpec(sample, bytes(mask))))
    if raw.ptypes != frozenset((ptype,)):
        return None
    return RawForm(ptype, sample, bytes(mask))

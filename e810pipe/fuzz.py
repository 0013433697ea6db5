"""Fuzz the parser at its depth limit: graph-guided packets, invariants, shrunk findings.

Packets are built by walking the compiled parse graph of the loaded package, not
by protocol-specific code: for each node the builder lays out the protocol's
fields, chooses values that satisfy its length expression, and chooses select
values that lead along one of the edges leaving it (user-profile edges, runtime
tunnel ports and option-guarded edges included, since they are in the compiled
tables). Headers are stacked until they cross the parser window, so long IPv6
extension chains, MPLS stacks, VLAN stacks, GRE optional words and GENEVE options
come out of the graph by themselves. Mutations then cut packets at and inside
header boundaries, make length fields lie, set select fields to values with no
binding and flip bits.

Every packet is checked against the invariants in :data:`INVARIANTS` (see
:class:`Checker`); a failing packet is shrunk to the fewest bytes that still fail
and can be saved as a pcap plus a JSON description (``e810pipe fuzz --out DIR``)
and re-run later (``e810pipe fuzz --replay DIR``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

from .ddp_model import Field, KeyItem, evaluate
from .errors import E810PipeError, OutputError, UsageError
from .graph import END, ERROR, LEAF_EDGE, PASS, CompiledGraph, Edge
from .inputs import clip, read_text
from .parser import FLAG_HEADER_LIMIT, NO_PTYPE, STATUSES, Header, Parser, ParseResult
from .parser import MAX_HEADERS as PARSER_MAX_HEADERS
from .pcapio import iter_packets, write_pcap
from .refwalk import RefResult, RefWalker
from .yamlfile import ConfigError

__all__ = [
    "INVARIANTS",
    "Checker",
    "Failure",
    "Finding",
    "FuzzReport",
    "Fuzzer",
    "GraphModel",
    "PacketBuilder",
    "RandomSource",
    "Source",
    "replay",
    "shrink",
]

#: The invariants checked on every packet, by name.
INVARIANTS = {
    "exception": "parsing raises no exception",
    "well_formed": "the result is well formed: types, contiguous headers, levels, "
    "edges that join the headers, po sorted by known protocol ID, depth",
    "po_bounds": "every header starts at or before the packet end; a po offset at or "
    "past the end belongs to a header the packet holds only in part; a po offset "
    "past the window belongs to a header whose type, and that of every header "
    "before it, was decided by bytes inside the window (golden README, caveat 3; "
    "a select with no value case, only a default, decides without reading bytes)",
    "status": "the status explains the stop: ok at a terminal, unknown_next when no "
    "select matched or after 256 headers (flag header_limit), no_match at an error "
    "case, malformed_length for a length below 1, truncated when the next header "
    "would start past the end, window when the last header runs past the window; "
    "the window and truncated flags agree",
    "deterministic": "the same bytes give the same result, warm or fresh parser",
    "window": "bytes past the window never matter: the same first W bytes and the "
    "same length give the same result",
    "ptype_declared": "the PTYPE is one the loaded profiles declare, for exactly "
    "these markers, or 0xFFFF when none does",
    "differential": "the compiled parser agrees with the plain reference walk "
    "(e810pipe.refwalk) of the same package",
    "bounded": "a cold parse (fresh parser, empty cache) takes at most 50 ms and its "
    "result takes at most 256 KiB, whatever the packet",
}
PARSE_TIME_BUDGET = 0.050  # seconds per cold parse (a 256-header walk takes ~1 ms)
PARSE_SIZE_BUDGET = 256 << 10  # bytes of one result (a 256-header one is ~60 KiB)

MAX_HEADERS = 1000  # headers per generated packet


# ------------------------------------------------------------------ randomness


class Source(Protocol):
    """Where the builder's choices come from: a seeded RNG, or a Hypothesis draw."""

    def integer(self, lo: int, hi: int) -> int: ...

    def blob(self, n: int) -> bytes: ...

    def weighted(self, weights: Sequence[float]) -> int: ...


class RandomSource:
    """Choices from a :class:`random.Random`; deterministic for a given seed."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def blob(self, n: int) -> bytes:
        return self.rng.randbytes(n) if n > 0 else b""

    def weighted(self, weights: Sequence[float]) -> int:
        return self.rng.choices(range(len(weights)), weights)[0]


# ------------------------------------------------------------ the graph model


def _eval(expr: tuple, values: dict[str, int]) -> int:
    """Expressions over generated field values: absent fields read 0, shifts are capped."""
    return evaluate(expr, values, default=0, max_shift=4095)


def _refs(expr: tuple | None) -> list[str]:
    if expr is None or expr[0] == "num":
        return []
    if expr[0] == "ref":
        return [expr[1]]
    return _refs(expr[1]) + _refs(expr[2])


@dataclass
class SelectModel:
    """One select of a node: its key layout and its compiled tables, per tunnel level."""

    items: tuple[KeyItem, ...]
    widths: tuple[int, ...]
    bits: int
    tables: tuple[dict[int, Edge], ...]
    defaults: tuple[Edge, ...]
    _inverse: dict[int, dict[Edge, list[int]]] = field(default_factory=dict)

    def inverse(self, lvl: int) -> dict[Edge, list[int]]:
        inv = self._inverse.get(lvl)
        if inv is None:
            inv = {}
            for k, e in sorted(self.tables[lvl].items()):
                inv.setdefault(e, []).append(k)
            self._inverse[lvl] = inv
        return inv

    def default_reachable(self, lvl: int) -> bool:
        return len(self.tables[lvl]) < (1 << self.bits)

    def can_pass(self, lvl: int) -> bool:
        if PASS in self.inverse(lvl):
            return True
        return self.defaults[lvl] == PASS and self.default_reachable(lvl)

    def outcomes(self, lvl: int) -> list[Edge]:
        out = [e for e in self.inverse(lvl) if e != PASS]
        d = self.defaults[lvl]
        if d != PASS and self.default_reachable(lvl) and d not in out:
            out.append(d)
        return out

    def unbound_key(self, src: Source, lvl: int) -> int | None:
        """A key with no table entry at `lvl` (it takes the default), or None."""
        table = self.tables[lvl]
        if not self.default_reachable(lvl):
            return None
        top = (1 << self.bits) - 1
        for _ in range(24):
            k = src.integer(0, top)
            if k not in table:
                return k
        start = src.integer(0, top)
        for i in range(min(top + 1, 1 << 17)):
            k = (start + i) & top
            if k not in table:
                return k
        return None

    def key_for(self, src: Source, lvl: int, edge: Edge) -> int | None:
        keys = self.inverse(lvl).get(edge)
        if keys:
            return keys[src.integer(0, len(keys) - 1)]
        if edge == self.defaults[lvl]:
            return self.unbound_key(src, lvl)
        return None

    def split(self, key: int) -> list[int]:
        parts: list[int] = []
        for w in reversed(self.widths):
            parts.append(key & ((1 << w) - 1))
            key >>= w
        parts.reverse()
        return parts


@dataclass
class NodeModel:
    """A node's field layout and selects, read from the resolved protocol."""

    nid: int
    name: str
    fixed_fields: list[Field]
    fixed: dict[str, tuple[int, int]]  # field -> (bit offset, bits)
    fixed_bytes: int
    optional: list[Field]
    length: tuple | None
    length_refs: tuple[str, ...]
    cond_refs: tuple[str, ...]
    selects: list[SelectModel]


@dataclass(frozen=True)
class Outcome:
    """What a node can do: take `edge` at select `select`, fall through all selects
    (edge None: unknown next protocol) or end (a node without selects)."""

    select: int | None
    edge: Edge | None


class GraphModel:
    """What the builder and the coverage report need to know about a compiled graph.

    The select tables are the compiled ones (so runtime ports, options and tunnel
    levels are exactly as the parser has them); field layouts and length
    expressions come from the resolved package.
    """

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.graph: CompiledGraph = parser.graph
        self.window = parser.window
        self.levels = self.graph.package.tunnel_depth + 1
        self.nodes = [self._node(i) for i in range(len(self.graph.nodes))]
        self._outcomes: dict[tuple[int, int], list[Outcome]] = {}
        self.states: set[tuple[int, int]] = set()
        self.reachable_edges: set[int] = set()
        self.reachable_nodes: set[int] = set()
        self._explore()
        self.cyclic: set[tuple[int, int]] = set()
        self.loopy = self._loopy()

    def _node(self, nid: int) -> NodeModel:
        node = self.graph.nodes[nid]
        proto = node.proto
        fixed: dict[str, tuple[int, int]] = {}
        bit = 0
        fixed_fields = [f for f in proto.fields if f.cond is None]
        for f in fixed_fields:
            fixed[f.name] = (bit, f.bits)
            bit += f.bits
        env = getattr(node.step, "__globals__", {})
        sels: list[SelectModel] = []
        for si, sel in enumerate(proto.selects):
            if f"T{si}" not in env:
                raise RuntimeError(
                    "e810pipe.graph no longer keeps select tables T<n>/D<n>; update fuzz.py"
                )
            widths = tuple(
                fixed[k.field][1] if k.field is not None else k.peek_bits for k in sel.key
            )
            sels.append(SelectModel(sel.key, widths, sum(widths), env[f"T{si}"], env[f"D{si}"]))
        cond_refs: list[str] = []
        for f in proto.fields:
            cond_refs.extend(_refs(f.cond))
        return NodeModel(
            nid=nid,
            name=node.name,
            fixed_fields=fixed_fields,
            fixed=fixed,
            fixed_bytes=bit // 8,
            optional=[f for f in proto.fields if f.cond is not None],
            length=proto.length,
            length_refs=tuple(dict.fromkeys(_refs(proto.length))),
            cond_refs=tuple(dict.fromkeys(cond_refs)),
            selects=sels,
        )

    def outcomes(self, nid: int, lvl: int) -> list[Outcome]:
        key = (nid, lvl)
        outs = self._outcomes.get(key)
        if outs is None:
            outs = []
            sels = self.nodes[nid].selects
            if not sels:
                outs.append(Outcome(None, LEAF_EDGE))
            for si, sel in enumerate(sels):
                for e in sel.outcomes(lvl):
                    outs.append(Outcome(si, e))
                if not sel.can_pass(lvl):
                    break
            else:
                if sels:
                    outs.append(Outcome(None, None))
            self._outcomes[key] = outs
        return outs

    def _explore(self) -> None:
        start = (self.graph.start, 0)
        todo = [start]
        self.states.add(start)
        while todo:
            nid, lvl = todo.pop()
            self.reachable_nodes.add(nid)
            for out in self.outcomes(nid, lvl):
                e = out.edge
                if e is None:
                    continue
                if e[2] >= 0:
                    self.reachable_edges.add(e[2])
                if e[0] >= 0:
                    nxt = (e[0], lvl + (1 if e[1] else 0))
                    if nxt not in self.states:
                        self.states.add(nxt)
                        todo.append(nxt)

    def successors(self, state: tuple[int, int]) -> list[tuple[int, int]]:
        nid, lvl = state
        out = []
        for o in self.outcomes(nid, lvl):
            if o.edge is not None and o.edge[0] >= 0:
                out.append((o.edge[0], lvl + (1 if o.edge[1] else 0)))
        return out

    def _loopy(self) -> set[tuple[int, int]]:
        """States from which a cycle of the graph can be reached (and, in
        ``self.cyclic``, the states on a cycle)."""
        cyclic = self.cyclic
        for s in self.states:
            seen: set[tuple[int, int]] = set()
            todo = list(self.successors(s))
            while todo:
                t = todo.pop()
                if t == s:
                    cyclic.add(s)
                    break
                if t in seen:
                    continue
                seen.add(t)
                todo.extend(self.successors(t))
        loopy = set(cyclic)
        changed = True
        while changed:
            changed = False
            for s in self.states:
                if s not in loopy and any(t in loopy for t in self.successors(s)):
                    loopy.add(s)
                    changed = True
        return loopy

    def edge_name(self, eid: int) -> str:
        return _edge_text(self.graph, eid)


# ------------------------------------------------------------ packet builder


def _write_bits(buf: bytearray, bit_off: int, width: int, value: int) -> None:
    """Write `value` as `width` bits at absolute bit offset `bit_off`, growing `buf`."""
    if bit_off < 0 or width <= 0:
        return
    end = (bit_off + width + 7) // 8
    if len(buf) < end:
        buf.extend(bytes(end - len(buf)))
    for i in range(width):
        pos = bit_off + i
        bit = (value >> (width - 1 - i)) & 1
        mask = 0x80 >> (pos % 8)
        if bit:
            buf[pos // 8] |= mask
        else:
            buf[pos // 8] &= ~mask & 0xFF


def _read_bits(data: bytes | bytearray, bit_off: int, width: int) -> int:
    value = 0
    for i in range(width):
        pos = bit_off + i
        b = data[pos // 8] if 0 <= pos // 8 < len(data) else 0
        value = (value << 1) | ((b >> (7 - pos % 8)) & 1)
    return value


def _random_field(src: Source, bits: int) -> int:
    top = (1 << bits) - 1
    r = src.integer(0, 7)
    if r == 0:
        return 0
    if r == 1:
        return top
    if r == 2:
        return min(top, src.integer(0, 3))
    return src.integer(0, top)


@dataclass(frozen=True)
class GenHeader:
    nid: int
    offset: int
    length: int
    level: int


@dataclass
class Generated:
    """A built packet and the headers the builder laid out in it."""

    data: bytes
    headers: list[GenHeader]


class PacketBuilder:
    """Build packets by walking a :class:`GraphModel`.

    ``weight(node, level, edge, deep)`` (optional) weighs the edges the walk may
    take, e.g. to favour edges not yet covered (``edge`` None: no select matches;
    ``deep``: the walk is still short of its target). ``deep`` prefers edges that
    can go on (cycles, long lengths) until the walk passes ``target`` bytes.
    Nothing past ``limit`` bytes is generated; the packet is at most ``limit``
    bytes long.
    """

    def __init__(self, model: GraphModel) -> None:
        self.model = model
        self._lengths: dict[tuple, list[tuple[int, tuple[int, ...]]]] = {}

    def _length_choices(
        self, nm: NodeModel, free: tuple[str, ...], vals: dict[str, int]
    ) -> list[tuple[int, tuple[int, ...]]]:
        assert nm.length is not None
        fixed = tuple((r, vals.get(r, 0)) for r in nm.length_refs if r not in free)
        key = (nm.nid, free, fixed)
        got = self._lengths.get(key)
        if got is not None:
            return got
        widths = [nm.fixed[r][1] if r in nm.fixed else 8 for r in free]
        combos: list[tuple[int, ...]] = [()]
        for w in widths:
            top = (1 << w) - 1
            vs = list(range(top + 1)) if w <= 8 else sorted({0, 1, 2, 3, top, top // 2})
            combos = [c + (v,) for c in combos for v in vs]
            if len(combos) > 4096:
                combos = combos[:: len(combos) // 4096 + 1]
        env = dict(fixed)
        seen: dict[int, tuple[int, ...]] = {}
        for c in combos:
            env.update(zip(free, c))
            hl = _eval(nm.length, env)
            seen.setdefault(hl, c)
        got = sorted(seen.items())
        self._lengths[key] = got
        return got

    def build(
        self,
        src: Source,
        *,
        target: int,
        limit: int,
        deep: bool = False,
        weight: Callable[[int, int, Edge | None, bool], float] | None = None,
    ) -> Generated:
        model = self.model
        graph = model.graph
        window = model.window
        buf = bytearray()
        pins: dict[int, int] = {}  # absolute bit -> value, set by peeks into later bytes
        headers: list[GenHeader] = []
        nid, o, lvl = graph.start, 0, 0
        last_end = 0
        for _ in range(MAX_HEADERS):
            nm = model.nodes[nid]
            outs = model.outcomes(nid, lvl)
            going = deep and o < target
            ws = []
            for out in outs:
                e = out.edge
                w = weight(nid, lvl, e, going) if weight is not None else 1.0
                if going:
                    nxt = (e[0], lvl + (1 if e[1] else 0)) if e is not None else None
                    if e is None or e[0] < 0:
                        w *= 0.01
                    elif nxt in model.cyclic:
                        w *= 20.0
                    elif nxt in model.loopy:
                        w *= 4.0
                ws.append(max(w, 1e-9))
            out = outs[src.weighted(ws)]
            vals = {f.name: _random_field(src, f.bits) for f in nm.fixed_fields}
            assigned: set[str] = set()
            peeks: list[tuple[KeyItem, int]] = []
            wanted: list[tuple[SelectModel, int | None]] = []
            upto = out.select if out.select is not None else len(nm.selects)
            for sel in nm.selects[:upto]:  # the selects before the chosen one fall through
                keys = sel.inverse(lvl).get(PASS)
                if keys:
                    wanted.append((sel, keys[src.integer(0, len(keys) - 1)]))
                elif sel.defaults[lvl] == PASS:
                    wanted.append((sel, sel.unbound_key(src, lvl)))
            if out.select is not None and out.edge is not None:
                sel = nm.selects[out.select]
                wanted.append((sel, sel.key_for(src, lvl, out.edge)))
            for sel, key in wanted:
                if key is None:
                    continue
                for item, part in zip(sel.items, sel.split(key)):
                    if item.field is not None:
                        vals[item.field] = part
                        assigned.add(item.field)
                    else:
                        peeks.append((item, part))
            # the length expression: choose its free fields to give a sane length
            present = [f for f in nm.optional if _eval(f.cond or ("num", 0), vals)]
            packed = nm.fixed_bytes + sum(f.bits // 8 for f in present)
            if nm.length is None:
                hl = packed
            elif nm.length[0] == "num":
                hl = int(nm.length[1])
            else:
                free = tuple(r for r in nm.length_refs if r not in assigned and r in nm.fixed)
                choices = self._length_choices(nm, free, vals) if free else []
                valid = [c for c in choices if c[0] >= max(packed, 1)]
                if valid:
                    mode = src.integer(0, 3)
                    need = target - o
                    if going and mode < 2 and valid[-1][0] >= need:
                        # land the next header just past the target (past the window)
                        over = [c for c in valid if c[0] >= need]
                        pick = over[src.integer(0, min(2, len(over) - 1))]
                    elif going and mode < 3:
                        pick = valid[-1 - src.integer(0, min(3, len(valid) - 1))]
                    elif mode == 0:
                        pick = valid[0]
                    else:
                        pick = valid[src.integer(0, len(valid) - 1)]
                    vals.update(zip(free, pick[1]))
                hl = _eval(nm.length, vals)
            # lay the header out
            acc = 0
            for f in nm.fixed_fields:
                acc = (acc << f.bits) | (vals[f.name] & ((1 << f.bits) - 1))
            hdr = acc.to_bytes(nm.fixed_bytes, "big") if nm.fixed_bytes else b""
            for f in present:
                hdr += _random_field(src, f.bits).to_bytes(f.bits // 8, "big")
            if hl > len(hdr):
                room = max(0, min(hl - len(hdr), limit - o - len(hdr)))
                if room:
                    hdr += src.blob(room) if src.integer(0, 3) else bytes(room)
            end = o + len(hdr)
            if len(buf) < end:
                buf.extend(bytes(end - len(buf)))
            buf[o:end] = hdr
            for bit, v in pins.items():
                if o * 8 <= bit < end * 8:
                    _write_bits(buf, bit, 1, v)
            for item, part in peeks:
                at = (o + hl + item.peek_offset) * 8
                if at < 0 or at >= limit * 8:
                    continue
                for i in range(item.peek_bits):
                    b = (part >> (item.peek_bits - 1 - i)) & 1
                    if at + i >= end * 8:
                        pins[at + i] = b
                    _write_bits(buf, at + i, 1, b)
            # what the parser will do with these bytes
            hl_real, e = _step(graph, nid, bytes(buf[:window]), o, lvl)
            headers.append(GenHeader(nid, o, hl_real, lvl))
            last_end = o + max(hl_real, 0)
            if e is None or e[0] < 0:
                break
            o += hl_real
            lvl += 1 if e[1] else 0
            nid = e[0]
            if o >= limit or (o >= target and not (deep and src.integer(0, 7) == 0)):
                last_end = o
                break
        n = min(limit, max(target, last_end))
        if len(buf) < n:
            buf.extend(src.blob(n - len(buf)))
        return Generated(bytes(buf[:n]), headers)


def _step(graph: CompiledGraph, nid: int, view: bytes, o: int, lvl: int) -> tuple[int, Edge | None]:
    d = view + bytes(graph.max_read + 4096)
    while True:
        try:
            return graph.nodes[nid].step(d, o, lvl)
        except IndexError:
            d += bytes(max(4096, len(d)))


# ---------------------------------------------------------------- mutations


def cut_points(gen: Generated, src: Source | None = None) -> list[int]:
    """Lengths that cut `gen` at every header boundary, next to it and inside headers."""
    n = len(gen.data)
    cuts: set[int] = set()
    for h in gen.headers:
        a, b = h.offset, h.offset + max(h.length, 0)
        cuts.update((a, a + 1, b - 1, b))
        if src is not None and b - a > 2:
            cuts.add(src.integer(a + 1, b - 1))
    return sorted(c for c in cuts if 0 <= c < n)


def mutate_length(model: GraphModel, gen: Generated, src: Source) -> bytes | None:
    """Make a length field (or a flag that adds optional words) lie."""
    spots = []
    for h in gen.headers:
        nm = model.nodes[h.nid]
        for name in nm.length_refs + nm.cond_refs:
            if name in nm.fixed:
                bit, width = nm.fixed[name]
                at = h.offset * 8 + bit
                if at + width <= len(gen.data) * 8:
                    spots.append((at, width))
    if not spots:
        return None
    at, width = spots[src.integer(0, len(spots) - 1)]
    top = (1 << width) - 1
    cur = _read_bits(gen.data, at, width)
    value = [0, 1, top, (cur + 1) & top, (cur - 1) & top, src.integer(0, top)][src.integer(0, 5)]
    buf = bytearray(gen.data)
    _write_bits(buf, at, width, value)
    return bytes(buf)


def mutate_select(model: GraphModel, gen: Generated, src: Source) -> bytes | None:
    """Set a select's key to a value the select has no binding for."""
    spots = []
    for h in gen.headers:
        for sel in model.nodes[h.nid].selects:
            spots.append((h, sel))
    if not spots:
        return None
    h, sel = spots[src.integer(0, len(spots) - 1)]
    key = sel.unbound_key(src, h.level)
    if key is None:
        return None
    nm = model.nodes[h.nid]
    buf = bytearray(gen.data)
    for item, part in zip(sel.items, sel.split(key)):
        if item.field is not None:
            bit, width = nm.fixed[item.field]
            at = h.offset * 8 + bit
        else:
            width = item.peek_bits
            at = (h.offset + h.length + item.peek_offset) * 8
        if 0 <= at and at + width <= len(buf) * 8:
            _write_bits(buf, at, width, part)
    return bytes(buf)


def mutate_bits(data: bytes, src: Source) -> bytes:
    """Flip a few bits, or overwrite a short run with random bytes."""
    if not data:
        return src.blob(src.integer(1, 64))
    buf = bytearray(data)
    if src.integer(0, 2):
        for _ in range(src.integer(1, 4)):
            pos = src.integer(0, len(buf) * 8 - 1)
            buf[pos // 8] ^= 0x80 >> (pos % 8)
    else:
        at = src.integer(0, len(buf) - 1)
        run = src.blob(min(src.integer(1, 8), len(buf) - at))
        buf[at : at + len(run)] = run
    return bytes(buf)


# ---------------------------------------------------------------- invariants


@dataclass(frozen=True)
class Failure:
    """A broken invariant: its name (a key of :data:`INVARIANTS`) and what was seen."""

    invariant: str
    message: str


def _first_difference(a: ParseResult, b: ParseResult) -> str:
    for name in ParseResult._fields:
        x, y = getattr(a, name), getattr(b, name)
        if x != y:
            return f"{name}: {x!r} != {y!r}"
    return "results differ"


def _footprint(res: ParseResult) -> int:
    """Bytes a parse result holds: the tuple, its fields, headers and offset pairs."""
    size = sys.getsizeof(res)
    for part in res:
        if isinstance(part, tuple):
            size += sys.getsizeof(part)
            size += sum(sys.getsizeof(x) for x in part if isinstance(x, tuple))
    return size


class Checker:
    """Check every invariant of :data:`INVARIANTS` on one packet.

    The check is a pure function of the bytes: it can be re-run to shrink a
    finding. It needs the parser under test and builds a :class:`RefWalker` of the
    same package and runtime configuration.
    """

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.graph = parser.graph
        self.package = parser.package
        self.window = parser.window
        cfg = self.graph.config
        self.ref = RefWalker(self.package, cfg.ports, cfg.options, parser.window)
        self.proto_ids = set(self.package.proto_ids.values())
        self.by_markers = {p.markers: p for p in self.package.ptypes.values()}

    def fresh(self) -> Parser:
        """A parser with an empty result cache, over the same compiled graph."""
        return type(self.parser)(self.graph, self.window)

    def check(self, data: bytes) -> tuple[ParseResult | None, RefResult | None, list[Failure]]:
        fails: list[Failure] = []
        try:
            res = self.parser.parse(data)
        except Exception as err:  # noqa: BLE001 - any exception is the finding
            return None, None, [Failure("exception", f"{type(err).__name__}: {err}")]
        n = len(data)

        def run(name: str, fn: Callable[[], str | None]) -> None:
            try:
                msg = fn()
            except Exception as err:  # noqa: BLE001 - a malformed result broke the check
                msg = f"checking raised {type(err).__name__}: {err}"
            if msg:
                fails.append(Failure(name, msg))

        run("well_formed", lambda: self._well_formed(res, n))
        if fails:
            return res, None, fails
        run("ptype_declared", lambda: self._ptype(res))
        run("status", lambda: self._status(res, n))
        run("deterministic", lambda: self._deterministic(res, data))
        run("bounded", lambda: self._bounded(data))
        run("window", lambda: self._window(res, data))
        ref: RefResult | None = None
        try:
            ref = self.ref.walk(data)
        except Exception as err:  # noqa: BLE001
            fails.append(
                Failure("differential", f"the reference walk raised {type(err).__name__}: {err}")
            )
        if ref is not None:
            run("differential", lambda: self._differential(res, ref))
            if not any(f.invariant == "differential" for f in fails):
                run("po_bounds", lambda: self._po_bounds(res, ref, n))
        return res, ref, fails

    # -- the invariants; each returns None or a message

    def _well_formed(self, res: ParseResult, n: int) -> str | None:
        g = self.graph
        if not isinstance(res, ParseResult):
            return f"result is a {type(res).__name__}"
        if not isinstance(res.ptype, int) or not isinstance(res.ptype_name, str):
            return f"ptype {res.ptype!r} {res.ptype_name!r}"
        if res.status not in STATUSES:
            return f"unknown status {res.status!r}"
        hs = res.headers
        k = len(hs)
        if k == 0:
            return "no headers"
        if not (len(res.levels) == len(res.nodes) == len(res.edges) == k):
            return "headers, levels, nodes and edges differ in length"
        for h in hs:
            if not (
                isinstance(h, Header)
                and isinstance(h.name, str)
                and isinstance(h.offset, int)
                and isinstance(h.length, int)
            ):
                return f"bad header {h!r}"
        if hs[0].offset != 0 or res.nodes[0] != g.start:
            return f"the first header is {hs[0]!r}, not the start node at 0"
        for i in range(k - 1):
            if hs[i].length < 0:
                return f"header {i} ({hs[i].name}) has length {hs[i].length}"
            if hs[i + 1].offset != hs[i].offset + hs[i].length:
                return f"headers {i} and {i + 1} are not contiguous: {hs[i]!r}, {hs[i + 1]!r}"
        if hs[-1].length < 0 and res.status != "malformed_length":
            return f"the last header has length {hs[-1].length} but status {res.status}"
        for i, (nid, h) in enumerate(zip(res.nodes, hs)):
            if not 0 <= nid < len(g.nodes):
                return f"header {i}: node {nid} does not exist"
            if g.nodes[nid].display != h.name:
                return f"header {i}: name {h.name!r} but node {g.nodes[nid].name!r}"
        if res.levels[0] != 0:
            return "the first header is not at tunnel level 0"
        for i in range(k - 1):
            eid = res.edges[i]
            if not 0 <= eid < len(g.edges):
                return f"header {i} is followed by another but its edge is {eid}"
            info = g.edges[eid]
            if info.source != res.nodes[i] or info.target != res.nodes[i + 1]:
                return f"edge {eid} does not join headers {i} and {i + 1}"
            step = 1 if info.tunnel is not None else 0
            if res.levels[i + 1] != res.levels[i] + step:
                return f"tunnel level {res.levels[i + 1]} after edge {eid} at {res.levels[i]}"
        if max(res.levels) > self.package.tunnel_depth:
            return f"tunnel level {max(res.levels)} past tunnel_depth"
        last = res.edges[-1]
        if last not in (-1, -3) and not 0 <= last < len(g.edges):
            return f"last edge {last} does not exist"
        if last >= 0 and g.edges[last].source != res.nodes[-1]:
            return f"last edge {last} does not leave the last header"
        pids = [p for p, _ in res.po]
        if pids != sorted(set(pids)):
            return f"po is not sorted by unique protocol ID: {res.po!r}"
        for pid, off in res.po:
            if pid not in self.proto_ids or not isinstance(off, int):
                return f"po entry {(pid, off)!r} is not a declared protocol ID and offset"
        if len(set(res.flags)) != len(res.flags) or not all(isinstance(f, str) for f in res.flags):
            return f"flags {res.flags!r}"
        end = hs[-1].offset + hs[-1].length
        if res.depth != min(end, n):
            return f"depth {res.depth}, but the last header ends at {end} and len is {n}"
        return None

    def _ptype(self, res: ParseResult) -> str | None:
        pt = self.by_markers.get(res.markers)
        if res.ptype == NO_PTYPE:
            if pt is not None:
                return f"no PTYPE, but PTYPE {pt.number} declares markers {res.markers}"
            return None
        decl = self.package.ptypes.get(res.ptype)
        if decl is None:
            return f"PTYPE {res.ptype} is not declared by the loaded profiles"
        if decl.name != res.ptype_name or decl.markers != res.markers:
            return (
                f"PTYPE {res.ptype} {res.ptype_name} for markers {res.markers}; "
                f"declared as {decl.name}: {decl.markers}"
            )
        return None

    def _status(self, res: ParseResult, n: int) -> str | None:
        g = self.graph
        w = self.window
        last = res.headers[-1]
        end = last.offset + last.length
        eid = res.edges[-1]
        proto = g.nodes[res.nodes[-1]].proto
        if eid == -3:
            stop = "malformed_length"
            if last.length >= 1 or proto.length is None or proto.length[0] == "num":
                return f"malformed stop on {last!r}, whose length is not a field below 1"
        elif eid == -1:
            stop = "unknown_next" if proto.selects else "ok"
        else:
            tgt = g.edges[eid].target
            if tgt == END:
                stop = "ok"
            elif tgt == ERROR:
                stop = "no_match"
            elif (end < n or (end == n and proto.lookahead)) and len(
                res.headers
            ) >= PARSER_MAX_HEADERS:
                stop = "unknown_next"  # the walk's header limit, flag header_limit
                if FLAG_HEADER_LIMIT not in res.flags:
                    return f"the walk stopped at {PARSER_MAX_HEADERS} headers without the flag"
            else:
                stop = "truncated"
                # a next header that starts right at the end is parsed only after a
                # protocol that looks ahead (`lookahead`)
                if end < n or (end == n and proto.lookahead):
                    return (
                        f"the walk stopped after {last.name} although the next header "
                        f"({g.nodes[tgt].name}) starts at {end}, inside the {n}-byte packet"
                    )
        beyond = end > w or (stop == "truncated" and n > w)
        want = stop
        if beyond and stop in ("ok", "unknown_next", "truncated"):
            want = "window"
        if res.status != want:
            return f"status {res.status!r}, but the walk stopped as {want!r}"
        if ("window" in res.flags) != beyond:
            return f"window flag {'window' in res.flags}, last header ends at {end}"
        cut = end > n or stop == "truncated"
        if ("truncated" in res.flags) != cut:
            return f"truncated flag {'truncated' in res.flags}, last end {end}, len {n}"
        return None

    def _bounded(self, data: bytes) -> str | None:
        parser = self.fresh()
        start = time.perf_counter()
        res = parser.parse(data)
        took = time.perf_counter() - start
        if took > PARSE_TIME_BUDGET:
            # time is noisy on a loaded machine: a finding only if it repeats
            start = time.perf_counter()
            self.fresh().parse(data)
            took = min(took, time.perf_counter() - start)
            if took > PARSE_TIME_BUDGET:
                return (
                    f"a cold parse took {took * 1e3:.1f} ms (budget {PARSE_TIME_BUDGET * 1e3} ms)"
                )
        size = _footprint(res)
        if size > PARSE_SIZE_BUDGET:
            return f"the result takes {size} bytes (budget {PARSE_SIZE_BUDGET})"
        return None

    def _deterministic(self, res: ParseResult, data: bytes) -> str | None:
        again = self.parser.parse(bytes(bytearray(data)))
        if again != res:
            return "parsing twice differs: " + _first_difference(res, again)
        fresh = self.fresh().parse(data)
        if fresh != res:
            return "a fresh parser differs from the warm one: " + _first_difference(fresh, res)
        return None

    def _window(self, res: ParseResult, data: bytes) -> str | None:
        w = self.window
        if len(data) <= w:
            return None
        other = data[:w] + bytes((~b) & 0xFF for b in data[w:])
        for parser in (self.parser, self.fresh()):
            got = parser.parse(other)
            if got != res:
                return "changing bytes past the window changed: " + _first_difference(res, got)
        return None

    def _differential(self, res: ParseResult, ref: RefResult) -> str | None:
        g = self.graph
        mine = [(h.name, h.offset, h.length) for h in res.headers]
        theirs = [(h.display, h.offset, h.length) for h in ref.headers]
        if mine != theirs:
            return f"headers: {mine} != reference {theirs}"
        names = [g.nodes[i].name for i in res.nodes]
        if names != [h.protocol for h in ref.headers]:
            return f"nodes {names} != reference {[h.protocol for h in ref.headers]}"
        if list(res.levels) != [h.level for h in ref.headers]:
            return f"levels {res.levels} != reference {[h.level for h in ref.headers]}"
        for i, (eid, h) in enumerate(zip(res.edges, ref.headers)):
            c = h.case
            if eid < 0:
                if c is not None:
                    return f"header {i}: no edge, reference took '{c.target}' ({c.pos.line})"
                continue
            info = g.edges[eid]
            tgt = {END: "end", ERROR: "error"}.get(info.target)
            if tgt is None:
                tgt = g.nodes[info.target].name
            if c is None:
                return f"header {i}: edge {_edge_text(g, eid)}, reference took none"
            if (tgt, info.marks, info.tunnel, info.flags) != (c.target, c.marks, c.tunnel, c.flags):
                return f"header {i}: edge {_edge_text(g, eid)}, reference took '{c.target}'"
        for name in ("ptype", "ptype_name", "po", "flags", "status", "depth", "markers"):
            a, b = getattr(res, name), getattr(ref, name)
            if a != b:
                return f"{name}: {a!r} != reference {b!r}"
        return None

    def _po_bounds(self, res: ParseResult, ref: RefResult, n: int) -> str | None:
        w = self.window
        for i, h in enumerate(res.headers):
            if h.offset > n:
                return f"header {i} ({h.name}) starts at {h.offset}, past the {n}-byte packet"
        # the last byte that any select up to each header read
        reach: list[int] = []
        top = -1
        for rh in ref.headers:
            reach.append(top)
            if rh.key_span is not None:
                top = max(top, rh.key_span[1])
        for pid, off in res.po:
            j = ref.po_owner[pid]
            rh = ref.headers[j]
            name = self.package.proto_id_name(pid) or str(pid)
            if off < 0:
                return f"{name}@{off} is a negative offset"
            if off >= n and rh.offset + max(rh.length, rh.fixed_length) <= n:
                return f"{name}@{off} is past the {n}-byte packet, in a complete {rh.display}"
            if off >= w and reach[j] >= w:
                return (
                    f"{name}@{off} is past the {w}-byte window, and the {rh.display} header "
                    f"was typed by byte {reach[j]}, which the parser does not see"
                )
        return None


def _edge_text(graph: CompiledGraph, eid: int) -> str:
    info = graph.edges[eid]
    tgt = {END: "end", ERROR: "error"}.get(info.target)
    if tgt is None:
        tgt = graph.nodes[info.target].name
    return f"{graph.nodes[info.source].name} -[{info.label}]-> {tgt}"


# ------------------------------------------------------------------ shrinking


def shrink(data: bytes, fails: Callable[[bytes], bool], budget: int = 3000) -> bytes:
    """The shortest (then simplest) bytes found that still make `fails` true.

    Delta debugging: remove halves, quarters... down to single bytes, then try
    every shorter prefix, then zero bytes so that what is left stands out.
    """
    best = data
    calls = 0

    def ok(cand: bytes) -> bool:
        nonlocal calls
        calls += 1
        return fails(cand)

    chunk = max(1, len(best) // 2)
    while chunk >= 1 and calls < budget:
        i = 0
        progress = False
        while i < len(best) and calls < budget:
            cand = best[:i] + best[i + chunk :]
            if len(cand) < len(best) and ok(cand):
                best = cand
                progress = True
            else:
                i += chunk
        if not progress:
            chunk //= 2
    for length in range(len(best)):
        if calls >= budget:
            break
        if ok(best[:length]):
            best = best[:length]
            break
    buf = bytearray(best)
    for i in range(len(buf)):
        if calls >= budget:
            break
        if buf[i]:
            old = buf[i]
            buf[i] = 0
            if not ok(bytes(buf)):
                buf[i] = old
    return bytes(buf)


# ------------------------------------------------------------------ the loop


@dataclass
class Finding:
    """A packet that broke an invariant, shrunk."""

    invariant: str
    message: str
    data: bytes
    original_len: int
    result: dict | None = None
    reference: dict | None = None

    def to_json(self, config: dict, seed: int | None) -> dict:
        return {
            "invariant": self.invariant,
            "description": INVARIANTS.get(self.invariant, ""),
            "message": self.message,
            "len": len(self.data),
            "hex": self.data.hex(),
            "original_len": self.original_len,
            "config": config,
            "seed": seed,
            "result": self.result,
            "reference": self.reference,
        }


@dataclass
class Coverage:
    nodes: Counter = field(default_factory=Counter)
    edges: Counter = field(default_factory=Counter)
    ptypes: Counter = field(default_factory=Counter)
    ends: Counter = field(default_factory=Counter)  # (node, -1) outcomes: unknown or leaf
    paths: dict[tuple[str, ...], list[int]] = field(default_factory=dict)
    max_depth: int = 0
    # complete parses that got no PTYPE: (marker sequence, path) -> packets
    no_ptype: Counter = field(default_factory=Counter)

    def add(self, res: ParseResult, graph: CompiledGraph) -> None:
        self.nodes.update(res.nodes)
        self.edges.update(e for e in res.edges if e >= 0)
        if res.edges[-1] < 0:
            self.ends[res.nodes[-1]] += 1
        self.ptypes[res.ptype] += 1
        deepest = res.headers[-1].offset
        self.max_depth = max(self.max_depth, deepest)
        path: list[str] = []
        for nid in res.nodes:
            name = graph.nodes[nid].name
            if path and path[-1] in (name, name + "+"):
                path[-1] = name + "+"
            else:
                path.append(name)
        key = tuple(path)
        if res.ptype == NO_PTYPE:
            self.no_ptype[(tuple(res.markers), key)] += 1
        slot = self.paths.get(key)
        if slot is None:
            self.paths[key] = [deepest, 1]
        else:
            slot[0] = max(slot[0], deepest)
            slot[1] += 1


@dataclass
class FuzzReport:
    packets: int
    failures: int
    seconds: float
    model: GraphModel
    coverage: Coverage
    findings: list[Finding]
    failed_invariants: Counter

    def summary(self) -> dict:
        """The `--json` object."""
        total = self.model.reachable_edges | set(self.coverage.edges)
        return {
            "packets": self.packets,
            "failures": self.failures,
            "edges_covered": len(set(self.coverage.edges) & total),
            "edges_total": len(total),
            "ptypes_reached": len([p for p in self.coverage.ptypes if p != NO_PTYPE]),
            "max_depth": self.coverage.max_depth,
            "no_ptype_paths": [
                {"markers": " ".join(m), "path": " ".join(p), "packets": n}
                for (m, p), n in self._no_ptype()
            ],
        }

    def _no_ptype(self) -> list[tuple[tuple[tuple[str, ...], tuple[str, ...]], int]]:
        """The paths that gave no PTYPE (0xFFFF): the marker sequence the parse ended
        with, which no PTYPE declares, and the headers, most packets first."""
        return sorted(self.coverage.no_ptype.items(), key=lambda kv: (-kv[1], kv[0]))

    def text(self, title: str, all_paths: bool = False) -> str:
        """The human-readable report; `all_paths` lists every path, not the 20 deepest."""
        m = self.model
        cov = self.coverage
        s = self.summary()
        rate = self.packets / self.seconds if self.seconds > 0 else 0.0
        nodes_total = m.reachable_nodes | set(cov.nodes)
        lines = [
            f"# e810pipe fuzz: {title}",
            f"packets   {self.packets} in {self.seconds:.1f} s ({rate:,.0f}/s)",
            f"failures  {self.failures}"
            + (
                " ("
                + ", ".join(f"{k} {v}" for k, v in sorted(self.failed_invariants.items()))
                + ")"
                if self.failed_invariants
                else ""
            ),
            f"nodes     {len(set(cov.nodes) & nodes_total)}/{len(nodes_total)} exercised",
            f"edges     {s['edges_covered']}/{s['edges_total']} covered",
            f"PTYPEs    {s['ptypes_reached']} reached of {len(m.graph.package.ptypes)} declared"
            + (f", {cov.ptypes[NO_PTYPE]} packet(s) with none" if cov.ptypes[NO_PTYPE] else ""),
            f"depth     deepest header starts at byte {cov.max_depth} (window {m.window})",
        ]
        missing_n = sorted(nodes_total - set(cov.nodes))
        if missing_n:
            lines.append(
                "nodes not exercised: " + " ".join(m.graph.nodes[i].name for i in missing_n)
            )
        missing_e = sorted(m.reachable_edges - set(cov.edges))
        if missing_e:
            lines.append("edges not covered:")
            lines.extend(f"  {m.edge_name(e)}" for e in missing_e)
        g = m.graph

        def wrapped(head: str, items: list[str]) -> None:
            row = head
            for it in items:
                if len(row) + len(it) > 99 and row.strip():
                    lines.append(row.rstrip(","))
                    row = " " * len(head)
                row += " " + it + ","
            lines.append(row.rstrip(","))

        lines.append("")
        lines.append("nodes exercised (headers):")
        wrapped(" ", [f"{g.nodes[i].name} {c}" for i, c in sorted(cov.nodes.items())])
        lines.append("edges exercised (packets), by node:")
        width = max((len(n.name) for n in g.nodes), default=4) + 2
        for nid, node in enumerate(g.nodes):
            taken = []
            for eid, c in sorted(cov.edges.items()):
                info = g.edges[eid]
                if info.source == nid:
                    tgt = {END: "end", ERROR: "error"}.get(info.target)
                    tgt = tgt if tgt is not None else g.nodes[info.target].name
                    taken.append(f"{info.label}->{tgt} {c}")
            if taken:
                wrapped(f"  {node.name:<{width}}", taken)
        lines.append("PTYPEs reached (packets):")
        wrapped(" ", [f"{p} {c}" for p, c in sorted(cov.ptypes.items()) if p != NO_PTYPE])
        holes = self._no_ptype()
        if holes:
            lines.append(
                f"paths that gave no PTYPE ({len(holes)}; their marker sequence is no "
                "PTYPE's, so the packets get 0xFFFF):"
            )
            lines.append(f"  {'packets':>7}  {'markers':<32} path")
            for (mk, path), n in holes[: None if all_paths else 20]:
                lines.append(f"  {n:>7}  {' '.join(mk) or '-':<32} {' '.join(path)}")
        lines.append("")
        deep = sorted(cov.paths.items(), key=lambda kv: (-kv[1][0], kv[0]))
        shown = deep if all_paths else deep[:20]
        lines.append(
            f"deepest offset per path ({len(shown)} deepest of {len(deep)} paths"
            + ("" if all_paths else "; -v lists them all")
            + "):"
        )
        lines.append(f"  {'offset':>6} {'packets':>8}  path")
        for path, (off, cnt) in shown:
            lines.append(f"  {off:>6} {cnt:>8}  {' '.join(path)}")
        lines.append("")
        if self.findings:
            lines.append(f"findings ({len(self.findings)}, shrunk):")
            for f in self.findings:
                lines.append(f"  {f.invariant}: {f.message}")
                lines.append(f"    {len(f.data)} bytes (from {f.original_len}): {f.data.hex()}")
        else:
            lines.append("findings: none")
        return "\n".join(lines)


class Fuzzer:
    """The fuzz loop: build, mutate, check, cover, shrink.

    ``run(count=N)`` checks N packets (generated ones and their mutants, each
    counted); ``run(seconds=T)`` runs for T seconds. The same seed, parser and
    count give the same packets and the same report.
    """

    def __init__(
        self,
        parser: Parser,
        seed: int = 1,
        *,
        max_findings: int = 10,
        shrink_budget: int = 3000,
        extra: int = 256,
    ) -> None:
        self.parser = parser
        self.seed = seed
        self.model = GraphModel(parser)
        self.builder = PacketBuilder(self.model)
        self.checker = Checker(parser)
        self.rng = random.Random(seed)
        self.src = RandomSource(self.rng)
        self.max_findings = max_findings
        self.shrink_budget = shrink_budget
        self.limit = parser.window + extra
        self.coverage = Coverage()
        self.findings: list[Finding] = []
        self._signatures: set[tuple[str, str]] = set()
        self.failures = 0
        self.failed_invariants: Counter = Counter()
        self.packets = 0
        self._frontier: dict[tuple[int, int], float] = {}
        self._rounds = 0

    def _weight(self, nid: int, lvl: int, edge: Edge | None, deep: bool) -> float:
        eid = edge[2] if edge is not None else -1
        hits = self.coverage.edges[eid] if eid >= 0 else self.coverage.ends[nid]
        w = 1.0 / (1.0 + hits) ** (0.5 if deep else 1.5)  # deep walks: depth first
        if eid >= 0 and not hits:
            w += 50.0  # an edge never taken: take it now
        if edge is not None and edge[0] >= 0:
            w += self._frontier.get((edge[0], lvl + (1 if edge[1] else 0)), 0.0)
        return w

    def _update_frontier(self) -> None:
        """Score each state by the uncovered edges that lie ahead of it."""
        m = self.model
        cov = self.coverage
        unc: dict[tuple[int, int], float] = {}
        for st in m.states:
            k = 0
            for out in m.outcomes(*st):
                e = out.edge
                eid = e[2] if e is not None else -1
                if eid >= 0 and not cov.edges[eid]:
                    k += 1
            unc[st] = float(k)
        score = dict(unc)
        for _ in range(6):
            score = {
                st: unc[st] + 0.7 * max((score[t] for t in m.successors(st)), default=0.0)
                for st in m.states
            }
        self._frontier = score

    def check(self, data: bytes) -> list[Failure]:
        self.packets += 1
        res, ref, fails = self.checker.check(data)
        if res is not None and not any(f.invariant == "well_formed" for f in fails):
            self.coverage.add(res, self.parser.graph)
        if fails:
            self.failures += 1
            for f in fails:
                self.failed_invariants[f.invariant] += 1
            self._record(data, fails[0])
        return fails

    def _record(self, data: bytes, failure: Failure) -> None:
        sig = (failure.invariant, "".join(c for c in failure.message if not c.isdigit())[:60])
        if sig in self._signatures or len(self.findings) >= self.max_findings:
            return
        self._signatures.add(sig)
        name = failure.invariant

        def still(cand: bytes) -> bool:
            return any(f.invariant == name for f in self.checker.check(cand)[2])

        small = shrink(data, still, self.shrink_budget)
        res, ref, fails = self.checker.check(small)
        msg = next((f.message for f in fails if f.invariant == name), failure.message)
        if not any(f.invariant == name for f in Checker(self.checker.fresh()).check(small)[2]):
            msg += " (only after earlier packets: a fresh parser passes; suspect its cache)"
        self.findings.append(
            Finding(
                name,
                msg,
                small,
                len(data),
                res.to_json(length=len(small)) if res is not None else None,
                ref.to_json() if ref is not None else None,
            )
        )

    def one_round(self) -> None:
        """One generated packet and its mutants."""
        src = self.src
        if self._rounds % 64 == 0:
            self._update_frontier()
        self._rounds += 1
        w = self.parser.window
        kind = src.integer(0, 9)
        if kind < 4:
            target, deep = w + src.integer(1, self.limit - w), True
        elif kind < 5:
            target, deep = w - src.integer(0, 32), True
        else:
            target, deep = src.integer(0, w), False
        gen = self.builder.build(
            src, target=target, limit=self.limit, deep=deep, weight=self._weight
        )
        self.check(gen.data)
        r = src.integer(0, 99)
        if r < 15:
            for cut in cut_points(gen, src):
                self.check(gen.data[:cut])
        elif r < 35:
            cuts = cut_points(gen, src)
            for _ in range(min(3, len(cuts))):
                self.check(gen.data[: cuts[src.integer(0, len(cuts) - 1)]])
        if src.integer(0, 2) == 0:
            m = mutate_length(self.model, gen, src)
            if m is not None:
                self.check(m)
        if src.integer(0, 2) == 0:
            m = mutate_select(self.model, gen, src)
            if m is not None:
                self.check(m)
        if src.integer(0, 3) == 0:
            self.check(mutate_bits(gen.data, src))
        if src.integer(0, 49) == 0:
            self.check(src.blob(src.integer(0, self.limit)))

    def run(self, count: int | None = None, seconds: float | None = None) -> FuzzReport:
        if count is None and seconds is None:
            count = 5000
        t0 = time.perf_counter()
        stop_at = t0 + seconds if seconds is not None else None
        while True:
            if count is not None and self.packets >= count:
                break
            if stop_at is not None and time.perf_counter() >= stop_at:
                break
            self.one_round()
        elapsed = time.perf_counter() - t0
        return FuzzReport(
            self.packets,
            self.failures,
            elapsed,
            self.model,
            self.coverage,
            self.findings,
            self.failed_invariants,
        )


# ------------------------------------------------------- saving and replaying


def parser_config(parser: Parser) -> dict:
    """What it takes to build `parser` again: profile files, ports, options, window."""
    cfg = parser.graph.config
    return {
        "profiles": [os.path.abspath(p) for p in parser.package.profiles],
        "ports": {k: sorted(v) for k, v in sorted(cfg.ports.items()) if v},
        "options": sorted(cfg.options),
        "window": parser.window,
    }


def parser_from_config(config: dict) -> Parser:
    return Parser.load(
        config["profiles"],
        ports={k: set(v) for k, v in config.get("ports", {}).items()},
        options=config.get("options", ()),
        window=int(config.get("window", 504)),
    )


def save_findings(
    directory: str | Path, findings: list[Finding], config: dict, seed: int
) -> list[Path]:
    """Write each finding as NNN-INVARIANT.pcap and NNN-INVARIANT.json; return the JSON paths."""
    out = Path(directory)
    paths = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        start = len(list(out.glob("*.json")))
        for i, f in enumerate(findings, start + 1):
            stem = out / f"{i:03d}-{f.invariant}"
            write_pcap(stem.with_suffix(".pcap"), [f.data])
            text = json.dumps(f.to_json(config, seed), indent=2) + "\n"
            stem.with_suffix(".json").write_text(text)
            paths.append(stem.with_suffix(".json"))
    except OSError as err:
        raise OutputError(f"--out {directory}", err) from None
    return paths


@dataclass
class ReplayResult:
    name: str
    invariant: str
    failures: list[Failure]
    result: ParseResult | None
    parser: Parser

    @property
    def still_fails(self) -> bool:
        return bool(self.failures)


def _read_finding(js: Path) -> tuple[dict, bytes]:
    """A saved finding's description and packet; located errors for anything else."""
    name = str(js)

    def error(message: str, line: int, column: int) -> ConfigError:
        return ConfigError(f"cannot read: {message}", name, line, column)

    try:
        desc = json.loads(read_text(js, "json", error))
    except json.JSONDecodeError as err:
        raise ConfigError(f"not JSON: {err.msg}", name, err.lineno, err.colno) from None
    except RecursionError:
        raise ConfigError("not a finding: JSON nested too deeply", name) from None
    if not isinstance(desc, dict) or not isinstance(desc.get("config"), dict):
        raise ConfigError("not a finding: expected an object with a 'config' object", name, 1, 1)
    pcap = js.with_suffix(".pcap")
    if pcap.exists():
        first = next(iter(iter_packets(pcap)), None)
        if first is None:
            raise ConfigError(f"{pcap} holds no packet", name)
        return desc, first.data
    hx = desc.get("hex")
    try:
        return desc, bytes.fromhex(hx if isinstance(hx, str) else "")
    except ValueError:
        raise ConfigError("not a finding: 'hex' is not hex bytes", name) from None


def replay(directory: str | Path) -> list[ReplayResult]:
    """Re-run every finding saved in `directory` with the configuration it was found in."""
    parsers: dict[str, tuple[Parser, Checker]] = {}
    out = []
    if not Path(directory).is_dir():
        raise UsageError(f"--replay {directory}: not a directory of findings")
    for js in sorted(Path(directory).glob("*.json")):
        desc, data = _read_finding(js)
        key = json.dumps(desc["config"], sort_keys=True)
        if key not in parsers:
            try:
                p = parser_from_config(desc["config"])
            except (TypeError, ValueError, KeyError, AttributeError) as err:
                if isinstance(err, E810PipeError):
                    raise
                raise ConfigError(
                    f"not a finding: bad 'config': {clip(str(err))}", str(js)
                ) from None
            parsers[key] = (p, Checker(p))
        parser, checker = parsers[key]
        res, _ref, fails = checker.check(data)
        out.append(ReplayResult(js.stem, desc.get("invariant", "?"), fails, res, parser))
    return out


# ------------------------------------------------------------------ the command


def _title(parser: Parser, seed: int | None) -> str:
    cfg = parser.graph.config
    ports = ", ".join(f"{k} {','.join(map(str, sorted(v)))}" for k, v in cfg.ports.items() if v)
    parts = [parser.package.title, f"window {parser.window} bytes"]
    if ports:
        parts.append(f"ports {ports}")
    if cfg.options:
        parts.append("options " + ",".join(sorted(cfg.options)))
    if seed is not None:
        parts.append(f"seed {seed}")
    return "; ".join(parts)


def cmd_fuzz(args: argparse.Namespace, out: TextIO) -> int:
    from .build import build_parser
    from .errors import UsageError

    if args.replay:
        if not Path(args.replay).is_dir():
            raise UsageError(f"--replay {args.replay}: not a directory")
        results = replay(args.replay)
        failing = [r for r in results if r.still_fails]
        if args.json:
            cov = Coverage()
            totals = 0
            seen: set[int] = set()
            for r in results:
                if r.result is not None and not any(
                    f.invariant == "well_formed" for f in r.failures
                ):
                    cov.add(r.result, r.parser.graph)
                if id(r.parser) not in seen:
                    seen.add(id(r.parser))
                    totals += len(GraphModel(r.parser).reachable_edges)
            summary = {
                "packets": len(results),
                "failures": len(failing),
                "edges_covered": len(cov.edges),
                "edges_total": totals,
                "ptypes_reached": len([p for p in cov.ptypes if p != NO_PTYPE]),
                "max_depth": cov.max_depth,
            }
            out.write(json.dumps(summary) + "\n")
        else:
            out.write(f"# e810pipe fuzz --replay {args.replay}: {len(results)} finding(s)\n")
            for r in results:
                if r.still_fails:
                    for f in r.failures:
                        out.write(f"{r.name}: still fails: {f.invariant}: {f.message}\n")
                else:
                    out.write(f"{r.name}: passes now ({r.invariant} was broken)\n")
            out.write(f"# {len(failing)} of {len(results)} still fail\n")
        return 1 if failing else 0

    if args.count is not None and args.count < 1:
        raise UsageError(f"--count {args.count}: use 1 or more")
    if args.seconds is not None and not 0 < args.seconds < float("inf"):
        raise UsageError(f"--seconds {args.seconds}: use a positive number")
    parser = build_parser(args)
    fuzzer = Fuzzer(parser, seed=args.seed)
    report = fuzzer.run(count=args.count, seconds=args.seconds)
    if args.out and report.findings:
        save_findings(args.out, report.findings, parser_config(parser), args.seed)
    if args.json:
        out.write(json.dumps(report.summary()) + "\n")
    else:
        out.write(report.text(_title(parser, args.seed), all_paths=args.verbose) + "\n")
        if args.out and report.findings:
            out.write(f"# findings saved in {args.out}; re-run them with --replay {args.out}\n")
    return 1 if report.failures else 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add `e810pipe fuzz` to the command line."""
    from .build import add_parser_options

    p = sub.add_parser(
        "fuzz",
        help="fuzz the parser: graph-guided packets, invariants, shrunk findings",
        description="Build packets by walking the loaded parse graph, mutate them, and "
        "check every invariant on each. Exit status 1 if any packet breaks one.",
    )
    add_parser_options(p)
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--count", type=int, metavar="N", help="check N packets (default 5000)")
    how.add_argument("--seconds", type=float, metavar="T", help="run for T seconds")
    p.add_argument("--out", metavar="DIR", help="save each shrunk finding as a pcap + JSON")
    p.add_argument("--json", action="store_true", help="print one JSON summary object")
    p.add_argument("--replay", metavar="DIR", help="re-run the findings saved in DIR")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="list every path, not the 20 deepest"
    )
    p.set_defaults(func=cmd_fuzz)

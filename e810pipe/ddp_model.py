"""Frozen values that a parsed DDP profile is made of.

The front end (:mod:`e810pipe.ddp`) builds these from profile text; the graph
compiler (:mod:`e810pipe.graph`) turns a stack of them into a parse graph. They
carry source positions so that semantic checks can point at the text.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pos:
    path: str
    line: int
    column: int


# Expressions are small tuples: ("num", value) | ("ref", name, pos) | (op, left, right)
# with op one of + - | * & << >> == !=.
Expr = tuple


@dataclass(frozen=True)
class Field:
    name: str
    bits: int
    cond: Expr | None
    pos: Pos


@dataclass(frozen=True)
class Report:
    ids: tuple[str, ...]  # one per tunnel level; the last repeats for deeper levels
    at: int
    pos: Pos


@dataclass(frozen=True)
class KeyItem:
    field: str | None  # a field of the header, or None for a peek
    peek_offset: int  # bytes from the end of the header (peek only)
    peek_bits: int
    pos: Pos


# A pattern value: ("int", v) | ("range", lo, hi) | ("port", table)
Value = tuple


@dataclass(frozen=True)
class Case:
    patterns: tuple[tuple[Value, ...], ...] | None  # None: the default case
    target: str  # a protocol name, or "end", "error", "pass"
    marks: tuple[str, ...]
    tunnel: str | None
    flags: tuple[str, ...]
    guards: tuple[tuple[str, bool], ...]  # (option, required value)
    pos: Pos


@dataclass(frozen=True)
class Use:
    edges: str
    pos: Pos


CaseItem = Case | Use


@dataclass(frozen=True)
class Select:
    key: tuple[KeyItem, ...]
    cases: tuple[CaseItem, ...]
    pos: Pos


@dataclass(frozen=True)
class Protocol:
    name: str
    display: str | None
    base: str | None
    fields: tuple[Field, ...] | None
    length: Expr | None
    reports: tuple[Report, ...] | None
    carriers: tuple[Report, ...] | None
    marks: tuple[str, ...] | None
    flags: tuple[str, ...] | None
    selects: tuple[Select, ...] | None
    pos: Pos
    lookahead: bool | None = None  # its step also parses a next header at the packet end


@dataclass(frozen=True)
class EdgeSet:
    name: str
    cases: tuple[CaseItem, ...]
    pos: Pos


@dataclass(frozen=True)
class ExtendSelect:
    protocol: str
    key_field: str
    cases: tuple[CaseItem, ...]
    pos: Pos


@dataclass(frozen=True)
class PType:
    number: int
    name: str
    markers: tuple[str, ...]
    pos: Pos


@dataclass(frozen=True)
class MatchField:
    name: str
    protocol: str
    field: str
    pos: Pos


@dataclass(frozen=True)
class PackageHeader:
    name: str
    version: str
    extends: str | None
    pos: Pos


@dataclass(frozen=True)
class Profile:
    """One profile file, as written. Nothing is resolved across files yet."""

    path: str
    text: str
    package: PackageHeader | None = None
    proto_ids: tuple[tuple[str, int, Pos], ...] = ()
    options: tuple[tuple[str, Pos], ...] = ()
    udp_tunnels: tuple[tuple[str, Pos], ...] = ()
    start: tuple[str, Pos] | None = None
    tunnel_depth: tuple[int, Pos] | None = None
    protocols: tuple[Protocol, ...] = ()
    edge_sets: tuple[EdgeSet, ...] = ()
    extend_protocols: tuple[Protocol, ...] = ()
    extend_selects: tuple[ExtendSelect, ...] = ()
    extend_edges: tuple[EdgeSet, ...] = ()
    ptypes: tuple[PType, ...] = ()
    match_fields: tuple[MatchField, ...] = ()
    extra: dict = field(default_factory=dict, compare=False, hash=False)


def evaluate(
    expr: Expr, values: dict[str, int], default: int | None = None, max_shift: int | None = None
) -> int:
    """The value of a length or condition expression, given the header's field values.

    A field missing from `values` raises KeyError unless `default` is given; `max_shift`
    caps shift amounts (a larger or negative shift gives 0), for callers that evaluate
    expressions over arbitrary field values.
    """
    kind = expr[0]
    if kind == "num":
        return int(expr[1])
    if kind == "ref":
        if default is None:
            return values[expr[1]]
        return values.get(expr[1], default)
    a = evaluate(expr[1], values, default, max_shift)
    b = evaluate(expr[2], values, default, max_shift)
    if kind in ("<<", ">>") and (b < 0 or (max_shift is not None and b > max_shift)):
        return 0
    ops = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "*": lambda: a * b,
        "|": lambda: a | b,
        "&": lambda: a & b,
        "<<": lambda: a << b,
        ">>": lambda: a >> b,
        "==": lambda: int(a == b),
        "!=": lambda: int(a != b),
    }
    if kind not in ops:
        raise ValueError(f"unknown operator {kind!r}")
    return ops[kind]()

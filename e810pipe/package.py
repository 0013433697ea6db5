"""Resolve a stack of profiles into one checked package (the semantic pass).

A stack starts with a stock package (``os-default`` or ``comms``) and may add user
profiles on top. Resolution expands ``extends``, ``from`` and ``extend`` and then
checks the whole graph; every problem is a :class:`ProfileError` that points at
the profile text.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .ddp_model import (
    Case,
    CaseItem,
    EdgeSet,
    ExtendSelect,
    Field,
    MatchField,
    Pos,
    Profile,
    Protocol,
    PType,
    Use,
)
from .errors import ProfileError, context_line, quotable
from .resources import resolve_profile_ref

TERMINALS = ("end", "error", "pass")


@dataclass(frozen=True)
class ResolvedSelect:
    key: tuple  # tuple[KeyItem, ...]
    cases: tuple[Case, ...]  # `use` expanded, in priority order
    pos: Pos


@dataclass(frozen=True)
class ResolvedProtocol:
    name: str
    display: str
    fields: tuple[Field, ...]
    length: tuple | None  # expression; None means "sum of present fields"
    reports: tuple  # tuple[Report, ...]
    carriers: tuple
    marks: tuple[str, ...]
    flags: tuple[str, ...]
    selects: tuple[ResolvedSelect, ...]
    origin: str  # path of the profile that declared it
    pos: Pos
    lookahead: bool = False  # a next header that starts at the packet end is still parsed

    @property
    def fixed_bits(self) -> int:
        return sum(f.bits for f in self.fields if f.cond is None)

    @property
    def min_length(self) -> int:
        if self.length is not None and self.length[0] == "num":
            return int(self.length[1])
        return self.fixed_bits // 8

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


@dataclass
class Package:
    """A resolved, checked stack of profiles, ready to compile."""

    name: str
    version: str
    profiles: list[str]
    proto_ids: dict[str, int]
    options: set[str]
    udp_tunnels: list[str]
    start: str
    tunnel_depth: int
    protocols: dict[str, ResolvedProtocol]
    ptypes: dict[int, PType]
    match_fields: dict[str, MatchField]
    texts: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.name} {self.version}"

    def proto_id_name(self, number: int) -> str | None:
        for k, v in self.proto_ids.items():
            if v == number:
                return k
        return None


class _Resolver:
    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def error(self, msg: str, pos: Pos) -> ProfileError:
        text = self.texts.get(pos.path, "")
        return ProfileError(
            msg, pos.path, pos.line, pos.column, context_line(text, pos.line, pos.column)
        )


def expand_stack(refs: list[str]) -> list[Profile]:
    """Load the profiles named by `refs`, following each package's ``extends``."""
    out: list[Profile] = []
    seen: set[str] = set()

    def load(ref: str, relative_to: Path | None, chain: tuple[str, ...]) -> None:
        path = resolve_profile_ref(ref, relative_to)
        key = str(path.resolve()) if path.exists() else str(path)
        if key in chain:
            raise ProfileError(f"profiles extend each other in a loop: {ref}", str(path), 0, 0)
        if key in seen:
            return
        from .ddp import load_profile_file  # Lark is imported only when a profile is parsed

        prof = load_profile_file(path)
        pkg = prof.package
        if pkg is not None and pkg.extends:
            try:
                load(pkg.extends, path.parent, chain + (key,))
            except ProfileError as err:
                if err.line and quotable(err.path):  # located in the extended profile
                    raise
                at = pkg.pos  # a missing file or a loop: point at the `extends`
                where = f"{err.path}:{err.line}:{err.column}" if err.line else err.path
                raise ProfileError(
                    f'extends "{pkg.extends}": {where}: {err.message}',
                    at.path,
                    at.line,
                    at.column,
                    context_line(prof.text, at.line, at.column),
                ) from None
        seen.add(key)
        out.append(prof)

    for ref in refs:
        load(ref, None, ())
    return out


def _expr_refs(expr: tuple | None) -> list[tuple[str, Pos]]:
    if expr is None:
        return []
    if expr[0] == "num":
        return []
    if expr[0] == "ref":
        return [(expr[1], expr[2])]
    return _expr_refs(expr[1]) + _expr_refs(expr[2])


MAX_OFFSET = 65535  # protocol offsets are 16-bit (ice_parser_rt.h: `u16 po`)
MAX_SHIFT = 63
MAX_EXPR_TERMS = 256  # fields and numbers in one expression


def _const(expr: tuple) -> int | None:
    """The value of `expr` if it uses no field, else None."""
    kind = expr[0]
    if kind == "num":
        return int(expr[1])
    if kind == "ref":
        return None
    a, b = _const(expr[1]), _const(expr[2])
    if a is None or b is None:
        return None
    if kind in ("<<", ">>") and not 0 <= b <= MAX_SHIFT:
        return None
    ops = {
        "+": lambda: a + b,
        "-": lambda: a - b,
        "|": lambda: a | b,
        "*": lambda: a * b,
        "&": lambda: a & b,
        "<<": lambda: a << b,
        ">>": lambda: a >> b,
        "==": lambda: int(a == b),
        "!=": lambda: int(a != b),
    }
    return ops[kind]()


def _check_expr(r: _Resolver, expr: tuple, pos: Pos, what: str) -> None:
    """Reject what the compiled walk could not compute: a shift by a negative, huge or
    field-dependent count, and expressions of more than MAX_EXPR_TERMS terms."""
    terms = 0
    todo = [expr]
    while todo:
        e = todo.pop()
        if e[0] in ("num", "ref"):
            terms += 1
            continue
        if e[0] in ("<<", ">>"):
            count = _const(e[2])
            if count is None or not 0 <= count <= MAX_SHIFT:
                shown = "depends on a field" if count is None else f"is {count}"
                raise r.error(
                    f"{what}: the shift count {shown}; a shift count is a constant 0..{MAX_SHIFT}",
                    pos,
                )
        todo.extend((e[1], e[2]))
    if terms > MAX_EXPR_TERMS:
        raise r.error(f"{what} has {terms} terms; at most {MAX_EXPR_TERMS}", pos)


def resolve(profiles: list[Profile]) -> Package:
    """Merge `profiles` (bottom first) and run every semantic check."""
    r = _Resolver()
    for p in profiles:
        r.texts[p.path] = p.text
    name, version = "user profile", "0.0.0"
    proto_ids: dict[str, int] = {}
    options: dict[str, Pos] = {}
    tunnels: dict[str, Pos] = {}
    start: tuple[str, Pos] | None = None
    depth = 1
    raw: dict[str, Protocol] = {}
    origin: dict[str, str] = {}
    edge_sets: dict[str, list[CaseItem]] = {}
    edge_pos: dict[str, Pos] = {}
    ptypes: dict[int, PType] = {}
    ptype_names: dict[str, PType] = {}
    matches: dict[str, MatchField] = {}
    extends_p: list[Protocol] = []
    extends_s: list[ExtendSelect] = []
    extends_e: list[EdgeSet] = []

    for prof in profiles:
        if prof.package is not None:
            name, version = prof.package.name, prof.package.version
        for n, v, pos in prof.proto_ids:
            if n in proto_ids and proto_ids[n] != v:
                raise r.error(f"protocol ID {n} is already {proto_ids[n]}, not {v}", pos)
            if not 0 <= v <= 255:
                raise r.error(f"protocol ID {n} = {v} is outside 0..255", pos)
            proto_ids[n] = v
        for n, pos in prof.options:
            options.setdefault(n, pos)
        for n, pos in prof.udp_tunnels:
            tunnels.setdefault(n, pos)
        if prof.start is not None:
            if start is not None and start[0] != prof.start[0]:
                raise r.error(
                    f"start node is already '{start[0]}'; a profile cannot move it",
                    prof.start[1],
                )
            start = prof.start
        if prof.tunnel_depth is not None:
            depth = prof.tunnel_depth[0]
            if not 1 <= depth <= 3:
                raise r.error("tunnel_depth must be 1, 2 or 3", prof.tunnel_depth[1])
        for proto in prof.protocols:
            if proto.name in raw or proto.name in TERMINALS:
                raise r.error(f"protocol '{proto.name}' is declared twice", proto.pos)
            raw[proto.name] = proto
            origin[proto.name] = prof.path
        for es in prof.edge_sets:
            if es.name in edge_sets:
                raise r.error(f"edge set '{es.name}' is declared twice", es.pos)
            edge_sets[es.name] = list(es.cases)
            edge_pos[es.name] = es.pos
        for pt in prof.ptypes:
            if pt.number in ptypes:
                first = ptypes[pt.number].pos
                raise r.error(
                    f"duplicate PTYPE number {pt.number} (first declared at "
                    f"{first.path}:{first.line}:{first.column})",
                    pt.pos,
                )
            if pt.name in ptype_names:
                raise r.error(f"duplicate PTYPE name {pt.name}", pt.pos)
            if not 0 <= pt.number <= 1023:
                raise r.error(f"PTYPE {pt.number} is outside 0..1023 (10 bits)", pt.pos)
            ptypes[pt.number] = pt
            ptype_names[pt.name] = pt
        for m in prof.match_fields:
            if m.name in matches:
                raise r.error(f"match field '{m.name}' is declared twice", m.pos)
            matches[m.name] = m
        extends_p.extend(prof.extend_protocols)
        extends_s.extend(prof.extend_selects)
        extends_e.extend(prof.extend_edges)

    if start is None:
        p0 = profiles[0] if profiles else None
        raise ProfileError(
            "no 'start' node: the bottom profile must name the first protocol (e.g. 'start eth;')",
            p0.path if p0 else "<none>",
            1,
            1,
            context_line(p0.text, 1, 1) if p0 else "",
        )

    # edge-set extensions
    for ext in extends_e:
        if ext.name not in edge_sets:
            raise r.error(f"unknown edge set '{ext.name}'", ext.pos)
        edge_sets[ext.name].extend(ext.cases)

    # `from` inheritance
    done: dict[str, Protocol] = {}

    def inherit(n: str, chain: tuple[str, ...]) -> Protocol:
        if n in done:
            return done[n]
        p = raw[n]
        if p.base is not None:
            if p.base not in raw:
                raise r.error(f"unknown protocol '{p.base}' in 'from'", p.pos)
            if p.base in chain:
                raise r.error(f"protocols inherit from each other in a loop: {n}", p.pos)
            b = inherit(p.base, chain + (n,))
            p = replace(
                p,
                display=p.display,
                fields=p.fields if p.fields is not None else b.fields,
                length=p.length if p.length is not None else b.length,
                reports=p.reports if p.reports is not None else b.reports,
                carriers=p.carriers if p.carriers is not None else b.carriers,
                marks=p.marks if p.marks is not None else b.marks,
                flags=p.flags if p.flags is not None else b.flags,
                selects=p.selects if p.selects is not None else b.selects,
                lookahead=p.lookahead if p.lookahead is not None else b.lookahead,
            )
        done[n] = p
        return p

    for n in list(raw):
        inherit(n, ())
    protos = dict(done)

    # protocol extensions
    for pext in extends_p:
        if pext.name not in protos:
            raise r.error(f"unknown protocol '{pext.name}' in 'extend protocol'", pext.pos)
        if pext.fields is not None or pext.length is not None:
            raise r.error(
                "'extend protocol' cannot change fields or length; declare a new protocol",
                pext.pos,
            )
        cur = protos[pext.name]
        protos[pext.name] = replace(
            cur,
            reports=(cur.reports or ()) + (pext.reports or ()),
            carriers=(cur.carriers or ()) + (pext.carriers or ()),
            marks=(cur.marks or ()) + (pext.marks or ()),
            flags=(cur.flags or ()) + (pext.flags or ()),
            selects=(cur.selects or ()) + (pext.selects or ()),
            lookahead=True if pext.lookahead else cur.lookahead,
        )
    # select extensions: add cases to the select keyed on that field
    for sext in extends_s:
        if sext.protocol not in protos:
            raise r.error(f"unknown protocol '{sext.protocol}' in 'extend select'", sext.pos)
        cur = protos[sext.protocol]
        sels = list(cur.selects or ())
        hit = [
            i for i, s in enumerate(sels) if len(s.key) == 1 and s.key[0].field == sext.key_field
        ]
        if not hit:
            raise r.error(
                f"protocol '{sext.protocol}' has no select on field '{sext.key_field}'", sext.pos
            )
        i = hit[-1]
        sels[i] = replace(sels[i], cases=sels[i].cases + sext.cases)
        protos[sext.protocol] = replace(cur, selects=tuple(sels))

    # resolve each protocol
    resolved: dict[str, ResolvedProtocol] = {}
    for n, proto in protos.items():
        resolved[n] = _resolve_protocol(r, proto, origin[n], edge_sets, proto_ids, options, tunnels)

    if start[0] not in resolved:
        raise r.error(f"unknown start protocol '{start[0]}'", start[1])

    # targets, markers, reachability
    emitted: set[str] = set()
    graph: dict[str, set[str]] = {}
    for n, rp in resolved.items():
        emitted.update(rp.marks)
        graph[n] = set()
        for s in rp.selects:
            for c in s.cases:
                emitted.update(c.marks)
                if c.target in TERMINALS:
                    continue
                if c.target not in resolved:
                    raise r.error(f"unknown protocol '{c.target}'", c.pos)
                graph[n].add(c.target)
    for pt in ptypes.values():
        for marker in pt.markers:
            if marker not in emitted:
                raise r.error(
                    f"PTYPE {pt.number} uses marker '{marker}', which no protocol or edge sets",
                    pt.pos,
                )
    reach = {start[0]}
    todo = [start[0]]
    while todo:
        for t in graph[todo.pop()]:
            if t not in reach:
                reach.add(t)
                todo.append(t)
    for n, rp in resolved.items():
        if n not in reach:
            raise r.error(
                f"protocol '{n}' is unreachable: no select from '{start[0]}' leads to it",
                rp.pos,
            )
    # loops that consume no bytes
    zero = {n for n, rp in resolved.items() if rp.min_length == 0}
    for n in zero:
        stack: list[tuple[str, tuple[str, ...]]] = [(n, (n,))]
        while stack:
            here, path = stack.pop()
            for t in graph[here]:
                if t == n:
                    raise r.error(
                        "loop that consumes no bytes: " + " -> ".join(path + (n,)),
                        resolved[n].pos,
                    )
                if t in zero and t not in path:
                    stack.append((t, path + (t,)))
    for mf in matches.values():
        if mf.protocol not in resolved:
            raise r.error(f"unknown protocol '{mf.protocol}' in 'match'", mf.pos)
        if resolved[mf.protocol].field(mf.field) is None:
            raise r.error(f"protocol '{mf.protocol}' has no field '{mf.field}'", mf.pos)

    return Package(
        name=name,
        version=version,
        profiles=[p.path for p in profiles],
        proto_ids=proto_ids,
        options=set(options),
        udp_tunnels=list(tunnels),
        start=start[0],
        tunnel_depth=depth,
        protocols=resolved,
        ptypes=ptypes,
        match_fields=matches,
        texts=r.texts,
    )


def _resolve_protocol(
    r: _Resolver,
    p: Protocol,
    origin: str,
    edge_sets: dict[str, list[CaseItem]],
    proto_ids: dict[str, int],
    options: dict[str, Pos],
    tunnels: dict[str, Pos],
) -> ResolvedProtocol:
    fields = p.fields or ()
    if not fields and p.length is None:
        raise r.error(f"protocol '{p.name}' has no fields and no length", p.pos)
    names: dict[str, Field] = {}
    seen_cond = False
    for f in fields:
        if f.name in names:
            raise r.error(f"field '{f.name}' is declared twice", f.pos)
        if not 1 <= f.bits <= 128:
            raise r.error(f"field '{f.name}' is {f.bits} bits wide; use 1..128", f.pos)
        if f.cond is not None:
            seen_cond = True
            if f.bits % 8:
                raise r.error(
                    f"optional field '{f.name}' is {f.bits} bits; optional fields must "
                    "be whole bytes",
                    f.pos,
                )
            _check_expr(r, f.cond, f.pos, f"condition of field '{f.name}'")
            for ref, pos in _expr_refs(f.cond):
                if ref not in names or names[ref].cond is not None:
                    raise r.error(
                        f"condition refers to '{ref}', which is not a fixed field "
                        "declared before it",
                        pos,
                    )
        elif seen_cond:
            raise r.error(
                f"fixed field '{f.name}' follows an optional field; put optional fields last",
                f.pos,
            )
        names[f.name] = f
    fixed = sum(f.bits for f in fields if f.cond is None)
    if fixed % 8:
        raise r.error(
            f"field widths of '{p.name}' add up to {fixed} bits, not a whole number of bytes",
            p.pos,
        )
    if p.length is not None:
        if p.length[0] == "num":
            if seen_cond:
                raise r.error(
                    "a protocol with optional fields cannot have a constant length", p.pos
                )
            if fields and fixed != p.length[1] * 8:
                raise r.error(
                    f"fields of '{p.name}' fill {fixed // 8} bytes but its length is "
                    f"{p.length[1]} bytes",
                    p.pos,
                )
        _check_expr(r, p.length, p.pos, f"length of '{p.name}'")
        for ref, pos in _expr_refs(p.length):
            if ref not in names:
                raise r.error(f"length refers to unknown field '{ref}'", pos)
            if names[ref].cond is not None:
                raise r.error(f"length refers to optional field '{ref}'; use fixed fields", pos)
    for rep in (p.reports or ()) + (p.carriers or ()):
        if not -MAX_OFFSET <= rep.at <= MAX_OFFSET:
            raise r.error(
                f"report offset {rep.at} is past any packet; use -{MAX_OFFSET}..{MAX_OFFSET}",
                rep.pos,
            )
        for i in rep.ids:
            if i not in proto_ids:
                raise r.error(
                    f"unknown protocol ID '{i}' (declare it in a proto_ids block)", rep.pos
                )
    selects = []
    for s in p.selects or ():
        widths = []
        for k in s.key:
            if k.field is not None:
                if k.field not in names:
                    raise r.error(f"select on unknown field '{k.field}' of '{p.name}'", k.pos)
                if names[k.field].cond is not None:
                    raise r.error(f"select on optional field '{k.field}'", k.pos)
                widths.append(names[k.field].bits)
            else:
                if not 1 <= k.peek_bits <= 32:
                    raise r.error("peek width must be 1..32 bits", k.pos)
                if not -MAX_OFFSET <= k.peek_offset <= MAX_OFFSET:
                    raise r.error(
                        f"peek offset {k.peek_offset} is past any packet; use "
                        f"-{MAX_OFFSET}..{MAX_OFFSET} bytes from the header end",
                        k.pos,
                    )
                widths.append(k.peek_bits)
        cases = _expand_cases(r, s.cases, edge_sets, ())
        for c in cases:
            for g, _ in c.guards:
                if g not in options and g != "tunnel":
                    raise r.error(f"unknown option '{g}' (declare it with 'option')", c.pos)
            for pat in c.patterns or ():
                if len(pat) != len(widths):
                    raise r.error(
                        f"pattern has {len(pat)} values but the select key has {len(widths)}",
                        c.pos,
                    )
                for v, w in zip(pat, widths):
                    if v[0] == "port":
                        if v[1] not in tunnels:
                            raise r.error(
                                f"unknown UDP tunnel table '@{v[1]}' "
                                "(declare it with 'udp_tunnel')",
                                c.pos,
                            )
                        continue
                    hi = v[-1]
                    if v[0] == "range" and v[1] > v[2]:
                        raise r.error(f"empty range {v[1]}..{v[2]}", c.pos)
                    if hi >= 1 << w:
                        raise r.error(f"value {hi:#x} does not fit in {w} bits", c.pos)
                span = 1
                for v in pat:
                    if v[0] == "range":
                        span *= v[2] - v[1] + 1
                if span > 1 << 16:  # the compiled select tables hold each value
                    raise r.error(
                        f"this case matches {span} values; at most 65536 (use 'default')", c.pos
                    )
        _check_duplicates(r, cases, sorted(options))
        selects.append(ResolvedSelect(s.key, tuple(cases), s.pos))
    return ResolvedProtocol(
        name=p.name,
        display=p.display or p.name,
        fields=fields,
        length=p.length,
        reports=p.reports or (),
        carriers=p.carriers or (),
        marks=p.marks or (),
        flags=p.flags or (),
        selects=tuple(selects),
        origin=origin,
        pos=p.pos,
        lookahead=bool(p.lookahead),
    )


def _expand_cases(
    r: _Resolver, items: tuple, edge_sets: dict[str, list[CaseItem]], chain: tuple[str, ...]
) -> list[Case]:
    out: list[Case] = []
    for it in items:
        if isinstance(it, Use):
            if it.edges not in edge_sets:
                raise r.error(f"unknown edge set '{it.edges}'", it.pos)
            if it.edges in chain:
                raise r.error(f"edge set '{it.edges}' uses itself", it.pos)
            out.extend(_expand_cases(r, tuple(edge_sets[it.edges]), edge_sets, chain + (it.edges,)))
        else:
            out.append(it)
    return out


def _values(pattern: tuple) -> list[tuple]:
    parts: list[Iterable] = []
    for v in pattern:
        if v[0] == "int":
            parts.append([v[1]])
        elif v[0] == "range":
            parts.append(range(v[1], v[2] + 1) if v[2] - v[1] < 4096 else [("range", v)])
        else:
            parts.append([v])
    return list(itertools.product(*parts))


def _check_duplicates(r: _Resolver, cases: list[Case], options: list[str]) -> None:
    combos = itertools.product((False, True), repeat=len(options)) if options else [()]
    for combo in combos:
        on = dict(zip(options, combo))
        seen: dict[tuple, Case] = {}
        default: Case | None = None
        for c in cases:
            if any(on.get(g, False) != want for g, want in c.guards):
                continue
            if c.patterns is None:
                if default is not None:
                    raise r.error("a select has two default cases", c.pos)
                default = c
                continue
            for pat in c.patterns:
                for key in _values(pat):
                    if key in seen and seen[key].target != c.target:
                        first = seen[key].pos
                        raise r.error(
                            f"value {_fmt_key(key)} already leads to '{seen[key].target}' "
                            f"(at {first.path}:{first.line}:{first.column})",
                            c.pos,
                        )
                    seen.setdefault(key, c)


def _fmt_key(key: tuple) -> str:
    parts = [hex(k) if isinstance(k, int) else str(k) for k in key]
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def load_package(refs: list[str]) -> Package:
    """Load and resolve a profile stack, e.g. ``["comms", "my.ddp"]``.

    The resolved package is cached on disk (:mod:`e810pipe.cache`) and reused while
    every profile file of the stack reads the same; a changed, moved or unreadable
    file means a fresh parse and resolve, with the errors that gives.
    """
    from . import cache

    name = f"package-{cache.key_for(list(refs), os.getcwd())}.pickle"
    hit = cache.load(name) if cache.enabled() else None
    if _fresh(hit, refs):
        return hit[1]  # type: ignore[index]
    profiles = expand_stack(refs)
    package = resolve(profiles)
    if cache.enabled():
        cache.store(name, ([(p.path, p.text) for p in profiles], package))
    return package


def _fresh(hit: object, refs: list[str]) -> bool:
    """Whether a cache entry is well formed, its stack's names still name the same files
    and every profile it read is unchanged."""
    if not (isinstance(hit, tuple) and len(hit) == 2 and isinstance(hit[1], Package)):
        return False
    sources = hit[0]
    if not isinstance(sources, list) or not sources:
        return False
    paths = {e[0] for e in sources if isinstance(e, tuple) and len(e) == 2}
    if any(str(resolve_profile_ref(r)) not in paths for r in refs):
        return False
    for entry in sources:
        try:
            path, text = entry
            if Path(path).read_text() != text:
                return False
        except (OSError, UnicodeDecodeError, TypeError, ValueError):
            return False
    return True

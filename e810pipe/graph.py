"""Compile a resolved package into a fast parse graph.

Each protocol becomes one generated Python function, built once, that reads its
length and select keys straight from the packet bytes at fixed offsets and looks
the next protocol up in a dict keyed by the key's integer value. Runtime settings
(UDP tunnel ports, options such as double-VLAN mode, the tunnel-level limit) are
folded into those dicts at compile time, so the per-packet walk does no
interpretation of the profile at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .ddp_model import Case, Field, KeyItem
from .errors import ProfileError
from .package import Package, ResolvedProtocol

END = -1
ERROR = -2
MALFORMED = -3

# An edge is (target node index or END/ERROR/MALFORMED, enters a tunnel, edge id).
Edge = tuple[int, bool, int]
PASS: Edge = (-9, False, -9)  # fall through to the protocol's next select
MALFORMED_EDGE: Edge = (MALFORMED, False, -3)
LEAF_EDGE: Edge = (END, False, -1)  # a protocol with no select ends the parse

StepFn = Callable[[bytes, int, int], tuple[int, "Edge | None"]]


@dataclass(frozen=True)
class EdgeInfo:
    source: int
    target: int
    marks: tuple[str, ...]
    tunnel: str | None
    flags: tuple[str, ...]
    label: str  # the select value(s), for traces and drawings


@dataclass
class Node:
    index: int
    name: str  # the protocol's identifier in the profile
    display: str  # the header name reported in results
    proto: ResolvedProtocol
    min_length: int
    step: StepFn
    source: str  # generated code, for debugging and `e810pipe graph`


@dataclass
class RuntimeConfig:
    """What `udp_tunnel_port add`, the VLAN mode and the driver set at run time."""

    ports: Mapping[str, frozenset[int]] = field(default_factory=dict)
    options: frozenset[str] = frozenset()


@dataclass
class CompiledGraph:
    package: Package
    config: RuntimeConfig
    nodes: list[Node]
    edges: list[EdgeInfo]
    start: int
    max_read: int  # bytes past a header start that fixed reads may touch
    by_name: dict[str, int]


# ---------------------------------------------------------------- code generation


def _read_bits(bit_off: int, width: int, base: str = "o") -> str:
    """Python source reading `width` bits at constant bit offset `bit_off` from `base`."""
    k = bit_off // 8
    end = (bit_off + width + 7) // 8
    nbytes = end - k
    shift = end * 8 - (bit_off + width)
    mask = (1 << width) - 1
    at = f"{base}+{k}" if k else base
    if nbytes == 1:
        src = f"d[{at}]"
    elif nbytes == 2:
        src = f"(d[{at}]<<8|d[{base}+{k + 1}])"
    else:
        src = f"int.from_bytes(d[{at}:{base}+{end}],'big')"
    if shift:
        src = f"({src}>>{shift})"
    if width != nbytes * 8:
        src = f"({src}&{mask:#x})"
    return src


class _Layout:
    """Bit offsets of a protocol's fields; optional fields shift later ones."""

    def __init__(self, proto: ResolvedProtocol) -> None:
        self.proto = proto
        self.fixed: dict[str, tuple[int, int]] = {}
        bit = 0
        for f in proto.fields:
            if f.cond is None:
                self.fixed[f.name] = (bit, f.bits)
                bit += f.bits
        self.fixed_bytes = bit // 8
        self.optional: list[Field] = [f for f in proto.fields if f.cond is not None]

    def read(self, name: str) -> str:
        bit, width = self.fixed[name]
        return _read_bits(bit, width)

    def expr(self, e: tuple) -> str:
        kind = e[0]
        if kind == "num":
            return str(e[1])
        if kind == "ref":
            return self.read(e[1])
        op = kind
        a, b = self.expr(e[1]), self.expr(e[2])
        if op in ("==", "!="):
            return f"(1 if {a}{op}{b} else 0)"
        return f"({a}{op}{b})"

    def length(self) -> str:
        p = self.proto
        if p.length is not None:
            return self.expr(p.length)
        parts = [str(self.fixed_bytes)]
        for f in self.optional:
            parts.append(f"({f.bits // 8} if {self.expr(f.cond)} else 0)")  # type: ignore[arg-type]
        return "+".join(parts)

    def optional_offset(self, name: str) -> str:
        """Byte offset (source) of optional field `name` from the header start."""
        parts = [str(self.fixed_bytes)]
        for f in self.optional:
            if f.name == name:
                return "+".join(parts)
            parts.append(f"({f.bits // 8} if {self.expr(f.cond)} else 0)")  # type: ignore[arg-type]
        raise KeyError(name)

    def key(self, items: tuple[KeyItem, ...]) -> tuple[str, list[int]]:
        parts: list[str] = []
        widths: list[int] = []
        for k in items:
            if k.field is not None:
                parts.append(self.read(k.field))
                widths.append(self.fixed[k.field][1])
            else:
                nb = (k.peek_bits + 7) // 8
                at = f"o+hl+{k.peek_offset}" if k.peek_offset else "o+hl"
                src = f"int.from_bytes(d[{at}:{at}+{nb}],'big')" if nb > 1 else f"d[{at}]"
                shift = nb * 8 - k.peek_bits
                if shift:
                    src = f"({src}>>{shift})"
                parts.append(src)
                widths.append(k.peek_bits)
        src = parts[0]
        for part, w in zip(parts[1:], widths[1:]):
            src = f"(({src})<<{w}|{part})"
        return src, widths

    def max_fixed_read(self) -> int:
        end = self.fixed_bytes
        for f in self.optional:
            end += f.bits // 8
        return end


def _pattern_keys(
    pattern: tuple, widths: list[int], ports: Mapping[str, frozenset[int]]
) -> list[int]:
    keys = [0]
    for v, w in zip(pattern, widths):
        if v[0] == "int":
            vals: list[int] | range = [v[1]]
        elif v[0] == "range":
            if v[2] - v[1] >= 1 << 16:
                raise ValueError(f"range {v[1]}..{v[2]} is too wide to compile")
            vals = range(v[1], v[2] + 1)
        else:
            vals = sorted(ports.get(v[1], frozenset()))
        keys = [(k << w) | x for k in keys for x in vals]
    return keys


def compile_graph(package: Package, config: RuntimeConfig | None = None) -> CompiledGraph:
    """Compile `package` for one runtime configuration."""
    config = config or RuntimeConfig()
    names = list(package.protocols)
    index = {n: i for i, n in enumerate(names)}
    edges: list[EdgeInfo] = []
    nodes: list[Node] = []
    levels = package.tunnel_depth + 1
    max_read = 64
    for name in names:
        proto = package.protocols[name]
        lay = _Layout(proto)
        max_read = max(max_read, lay.max_fixed_read() + 8)
        env: dict[str, object] = {
            "PASS": PASS,
            "MALFORMED_EDGE": MALFORMED_EDGE,
            "LEAF_EDGE": LEAF_EDGE,
        }
        lines = ["def step(d, o, lvl):", f"    hl = {lay.length()}"]
        min_len = proto.min_length
        if proto.length is not None and proto.length[0] != "num":
            lines.append("    if hl < 1: return hl, MALFORMED_EDGE")
        for si, sel in enumerate(proto.selects):
            key_src, widths = lay.key(sel.key)
            tables: list[dict[int, Edge]] = [{} for _ in range(levels)]
            defaults: list[Edge] = [PASS] * levels
            port_keys: list[tuple[list[int], Edge, bool]] = []
            for case in sel.cases:
                if any((g in config.options) != want for g, want in case.guards if g != "tunnel"):
                    continue
                if case.target == "pass":
                    tgt = PASS[0]
                elif case.target == "end":
                    tgt = END
                elif case.target == "error":
                    tgt = ERROR
                else:
                    tgt = index[case.target]
                eid = len(edges)
                label = "default" if case.patterns is None else _label(case, sel.key, widths)
                edges.append(EdgeInfo(index[name], tgt, case.marks, case.tunnel, case.flags, label))
                edge: Edge = PASS if tgt == PASS[0] else (tgt, case.tunnel is not None, eid)
                for lvl in range(levels):
                    if case.tunnel is not None and lvl >= package.tunnel_depth:
                        continue  # only `tunnel_depth` tunnel levels are parsed
                    if any(g == "tunnel" and (lvl > 0) != want for g, want in case.guards):
                        continue  # `if tunnel` / `if !tunnel`: inside a tunnel or not
                    if case.patterns is None:
                        if defaults[lvl] is PASS:
                            defaults[lvl] = edge
                        continue
                    for pat in case.patterns:
                        is_port = any(v[0] == "port" for v in pat)
                        keys = _pattern_keys(pat, widths, config.ports)
                        if is_port:
                            port_keys.append((keys, edge, True))
                            for k in keys:  # runtime ports override literal bindings
                                tables[lvl][k] = edge
                        else:
                            for k in keys:
                                tables[lvl].setdefault(k, edge)
            env[f"T{si}"] = tuple(tables)
            env[f"D{si}"] = tuple(defaults)
            lines.append(f"    e = T{si}[lvl].get({key_src}, D{si}[lvl])")
            lines.append("    if e is not PASS: return hl, e")
        lines.append("    return hl, None" if proto.selects else "    return hl, LEAF_EDGE")
        src = "\n".join(lines) + "\n"
        try:
            exec(compile(src, f"<protocol {name}>", "exec"), env)  # noqa: S102
        except SyntaxError as err:  # pragma: no cover - a bug in the generator
            raise ProfileError(f"internal: cannot compile '{name}': {err}", proto.pos.path) from err
        nodes.append(
            Node(
                index=index[name],
                name=name,
                display=proto.display,
                proto=proto,
                min_length=min_len,
                step=env["step"],  # type: ignore[arg-type]
                source=src,
            )
        )
    return CompiledGraph(
        package=package,
        config=config,
        nodes=nodes,
        edges=edges,
        start=index[package.start],
        max_read=max_read,
        by_name=index,
    )


def _label(case: Case, key: Sequence[Any] = (), widths: Sequence[int] = ()) -> str:
    """The case's values in the base their key field uses: 16-bit type fields
    (EtherTypes, GRE's protocol type) in hex, ports, protocol numbers and everything
    else in decimal."""
    out = []
    for pat in case.patterns or ():
        vals = []
        for i, v in enumerate(pat):
            item = key[i] if i < len(key) else None
            bits = widths[i] if i < len(widths) else 0
            name = (getattr(item, "field", None) or "").lower()
            as_hex = bits == 16 and "port" not in name and name not in ("len", "length")
            if v[0] == "int":
                vals.append(f"{v[1]:#06x}" if as_hex else str(v[1]))
            elif v[0] == "range":
                lo, hi = (f"{v[1]:#06x}", f"{v[2]:#06x}") if as_hex else (v[1], v[2])
                vals.append(f"{lo}..{hi}")
            else:
                vals.append(f"@{v[1]}")
        out.append(vals[0] if len(vals) == 1 else "(" + ",".join(vals) + ")")
    return ",".join(out)

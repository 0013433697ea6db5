"""A slow, plain reference walk of a resolved package, for differential testing.

:class:`e810pipe.parser.Parser` walks a graph compiled into generated Python code
and caches one result per path. This module reads the same resolved
:class:`~e810pipe.package.Package` and interprets it directly, one field and one
case at a time, with no generated code, no lookup tables and no cache. It is
written from the documented semantics (README, "The DDP profile language" and
"The parser window"), so that the two implementations can be compared packet by
packet (``e810pipe fuzz``):

- the parser sees the first ``window`` bytes; bytes past the window, and past the
  end of the packet, read as zero;
- a header's fields are laid out in order, big-endian; an optional field is present
  when its condition is non-zero; the header length is the ``length`` expression
  or the sum of the present fields; a computed length below 1 stops the walk
  (``malformed_length``);
- the selects of a header run in order. Within one select a runtime UDP port
  table overrides literal values (if a port is in two tables, the later case wins);
  otherwise the first literal case that matches wins, then the first default. A
  case is skipped when its ``if`` options do not hold, when its ``if tunnel`` guard
  does not hold at the current tunnel level, or when it enters a tunnel and
  ``tunnel_depth`` levels are already open. ``pass`` (or no case) goes on to the
  next select; a header whose selects all fall through stops the walk
  (``unknown_next``); a header with no select is a terminal;
- the next header starts at the end of this one; the walk stops (``truncated``)
  when that is past the packet's real length (a header that starts exactly at the
  end is still walked, as Intel's parser does).

Besides the result, the walk records facts the fuzzer's invariants need: which
header wrote each protocol offset, and which bytes the select that typed each
header read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .ddp_model import Case, Field, evaluate
from .package import Package, ResolvedProtocol
from .parser import MAX_HEADERS

NO_PTYPE = 0xFFFF

# How a walk stops.
STOP_END = "end"  # a terminal: `end`, or a header with no select
STOP_ERROR = "error"  # a case with target `error`
STOP_UNKNOWN = "unknown"  # every select fell through
STOP_MALFORMED = "malformed"  # a computed length below 1
STOP_TRUNCATED = "truncated"  # the next header would start past the packet's end
STOP_LIMIT = "limit"  # MAX_HEADERS headers parsed


@dataclass(frozen=True)
class RefHeader:
    protocol: str  # the protocol's identifier in the profile
    display: str
    offset: int
    length: int
    level: int  # tunnel level
    case: Case | None  # the case taken out of this header (None: no case)
    # first and last byte read by the selects whose outcome depends on their key (a
    # select with no value case that can match, only a default, reads nothing); None
    # when no such select ran
    key_span: tuple[int, int] | None
    fixed_length: int  # bytes of the fields this header has (fixed + present optional)


@dataclass(frozen=True)
class RefResult:
    ptype: int
    ptype_name: str
    po: tuple[tuple[int, int], ...]
    headers: tuple[RefHeader, ...]
    flags: tuple[str, ...]
    status: str
    depth: int
    markers: tuple[str, ...]
    stop: str
    po_owner: Mapping[int, int]  # proto_id -> index of the header that wrote it last

    def decided_by(self, index: int) -> tuple[int, int] | None:
        """Bytes read by the selects that typed header `index` (None: the start header)."""
        if index == 0:
            return None
        return self.headers[index - 1].key_span

    def to_json(self) -> dict:
        return {
            "ptype": self.ptype,
            "ptype_name": self.ptype_name,
            "po": [list(p) for p in self.po],
            "headers": [
                {"name": h.display, "offset": h.offset, "length": h.length} for h in self.headers
            ],
            "flags": list(self.flags),
            "status": self.status,
            "depth": self.depth,
        }


class RefWalker:
    """Interpret `package` for one runtime configuration. Slow on purpose: no caching."""

    def __init__(
        self,
        package: Package,
        ports: Mapping[str, frozenset[int] | set[int]] | None = None,
        options: frozenset[str] | set[str] = frozenset(),
        window: int = 504,
    ) -> None:
        self.package = package
        self.ports = {k: frozenset(v) for k, v in (ports or {}).items()}
        self.options = frozenset(options)
        self.window = window

    # -------------------------------------------------------------- reading bytes

    def _bits(self, data: bytes, limit: int, bit_off: int, width: int) -> int:
        """`width` bits at absolute bit offset `bit_off`; bytes at or past `limit` are 0."""
        value = 0
        for i in range(width):
            pos = bit_off + i
            byte = pos // 8
            b = data[byte] if 0 <= byte < limit else 0
            value = (value << 1) | ((b >> (7 - pos % 8)) & 1)
        return value

    def _eval(self, expr: tuple, values: Mapping[str, int]) -> int:
        return evaluate(expr, dict(values))

    # ------------------------------------------------------------ choosing a case

    def _applies(self, case: Case, level: int) -> bool:
        for opt, want in case.guards:
            have = level > 0 if opt == "tunnel" else opt in self.options
            if have != want:
                return False
        if case.tunnel is not None and level >= self.package.tunnel_depth:
            return False
        return True

    def _value_matches(self, value: tuple, part: int) -> bool:
        if value[0] == "int":
            return part == value[1]
        if value[0] == "range":
            return value[1] <= part <= value[2]
        return part in self.ports.get(value[1], frozenset())

    def _depends(self, cases: tuple[Case, ...], level: int) -> bool:
        """Whether a select's outcome can depend on its key: it has a value case that
        applies at this level and can match (a port table that is empty cannot)."""
        for c in cases:
            if c.patterns is None or not self._applies(c, level):
                continue
            for pat in c.patterns:
                if all(v[0] != "port" or self.ports.get(v[1]) for v in pat):
                    return True
        return False

    def _choose(self, cases: tuple[Case, ...], parts: list[int], level: int) -> Case | None:
        live = [c for c in cases if self._applies(c, level)]

        def matches(c: Case) -> bool:
            return any(
                all(self._value_matches(v, p) for v, p in zip(pat, parts))
                for pat in c.patterns or ()
            )

        port_cases = [
            c
            for c in live
            if c.patterns is not None and any(v[0] == "port" for p in c.patterns for v in p)
        ]
        port_hits = [c for c in port_cases if matches(c)]
        if port_hits:
            return port_hits[-1]
        for c in live:
            if c.patterns is not None and c not in port_cases and matches(c):
                return c
        for c in live:
            if c.patterns is None:
                return c
        return None

    # ------------------------------------------------------------------ the walk

    def walk(self, data: bytes) -> RefResult:
        pkg = self.package
        n = len(data)
        limit = min(n, self.window)
        name = pkg.start
        offset = 0
        level = 0
        headers: list[RefHeader] = []
        stop = STOP_END
        while True:
            proto = pkg.protocols[name]
            values: dict[str, int] = {}
            bit = offset * 8
            for f in proto.fields:
                if f.cond is None:
                    values[f.name] = self._bits(data, limit, bit, f.bits)
                    bit += f.bits
            present: list[Field] = [
                f for f in proto.fields if f.cond is not None and self._eval(f.cond, values)
            ]
            for f in present:
                values[f.name] = self._bits(data, limit, bit, f.bits)
                bit += f.bits
            fields_len = bit // 8 - offset
            if proto.length is not None:
                length = self._eval(proto.length, values)
            else:
                length = fields_len
            if proto.length is not None and proto.length[0] != "num" and length < 1:
                headers.append(
                    RefHeader(name, proto.display, offset, length, level, None, None, fields_len)
                )
                stop = STOP_MALFORMED
                break
            chosen: Case | None = None
            lo: int | None = None
            hi: int | None = None
            for sel in proto.selects:
                parts: list[int] = []
                depends = self._depends(sel.cases, level)
                for item in sel.key:
                    if item.field is not None:
                        fb = self._field_bits(proto, item.field)
                        start, width = offset * 8 + fb[0], fb[1]
                        parts.append(values[item.field])
                    else:
                        start = (offset + length + item.peek_offset) * 8
                        width = item.peek_bits
                        nbytes = (width + 7) // 8
                        parts.append(
                            self._bits(data, limit, start, nbytes * 8) >> (nbytes * 8 - width)
                        )
                    if depends:
                        first, last = start // 8, (start + width - 1) // 8
                        lo = first if lo is None else min(lo, first)
                        hi = last if hi is None else max(hi, last)
                case = self._choose(sel.cases, parts, level)
                if case is not None and case.target != "pass":
                    chosen = case
                    break
            span = (lo, hi) if lo is not None and hi is not None else None
            headers.append(
                RefHeader(name, proto.display, offset, length, level, chosen, span, fields_len)
            )
            if chosen is None:
                stop = STOP_UNKNOWN if proto.selects else STOP_END
                break
            if chosen.target == "end":
                stop = STOP_END
                break
            if chosen.target == "error":
                stop = STOP_ERROR
                break
            offset += length
            if chosen.tunnel is not None:
                level += 1
            if offset > n or (offset == n and not proto.lookahead):
                stop = STOP_TRUNCATED
                break
            if len(headers) >= MAX_HEADERS:  # as the compiled walk: at most 256 headers
                stop = STOP_LIMIT
                break
            name = chosen.target
        return self._result(headers, stop, n)

    def _field_bits(self, proto: ResolvedProtocol, name: str) -> tuple[int, int]:
        bit = 0
        for f in proto.fields:
            if f.cond is None:
                if f.name == name:
                    return bit, f.bits
                bit += f.bits
        raise KeyError(name)

    # -------------------------------------------------------------- the result

    def _result(self, headers: list[RefHeader], stop: str, n: int) -> RefResult:
        pkg = self.package
        markers: list[str] = []
        flags: list[str] = []
        carriers: set[int] = set()
        for i, h in enumerate(headers):
            proto = pkg.protocols[h.protocol]
            markers.extend(proto.marks)
            flags.extend(proto.flags)
            c = h.case
            if c is None:
                continue
            markers.extend(c.marks)
            flags.extend(c.flags)
            if c.tunnel is not None:
                flags.append(f"tunnel_{c.tunnel}")
                # the tunnel's carrier: the nearest header of this level that has one
                j = i
                while j >= 0 and headers[j].level == h.level:
                    if pkg.protocols[headers[j].protocol].carriers:
                        carriers.add(j)
                        break
                    j -= 1
        slots: dict[int, int] = {}
        owner: dict[int, int] = {}
        for i, h in enumerate(headers):
            proto = pkg.protocols[h.protocol]
            for rep in proto.carriers if i in carriers else proto.reports:
                pid = pkg.proto_ids[rep.ids[min(h.level, len(rep.ids) - 1)]]
                slots[pid] = h.offset + rep.at
                owner[pid] = i
        ptype, pname = NO_PTYPE, "NO_PTYPE"
        for pt in pkg.ptypes.values():  # a later declaration of the same markers wins
            if pt.markers == tuple(markers):
                ptype, pname = pt.number, pt.name
        last = headers[-1]
        end = last.offset + last.length
        status = {
            STOP_END: "ok",
            STOP_ERROR: "no_match",
            STOP_UNKNOWN: "unknown_next",
            STOP_MALFORMED: "malformed_length",
            STOP_TRUNCATED: "truncated",
            STOP_LIMIT: "unknown_next",
        }[stop]
        if stop == STOP_LIMIT:
            flags.append("header_limit")
        if end > self.window or (stop == STOP_TRUNCATED and n > self.window):
            flags.append("window")
            if status in ("ok", "unknown_next", "truncated"):
                status = "window"
        if end > n or stop == STOP_TRUNCATED:
            flags.append("truncated")
        return RefResult(
            ptype=ptype,
            ptype_name=pname,
            po=tuple(sorted(slots.items())),
            headers=tuple(headers),
            flags=tuple(dict.fromkeys(flags)),
            status=status,
            depth=min(end, n),
            markers=tuple(markers),
            stop=stop,
            po_owner=owner,
        )

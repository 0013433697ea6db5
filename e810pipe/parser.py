"""The parser stage: walk a compiled parse graph over a packet's bytes.

The walk mirrors Intel's parser: it reads at most the first `window` bytes
(504 by default, ``ICE_PARSER_MAX_PKT_LEN``); bytes past the window, and past the
end of a short packet, read as zero; and it stops when the next header would
start at or past the real packet length, when a select has no entry for what it
read, or at a terminal. The path it took is turned into a :class:`ParseResult`
once per distinct path and cached, so repeated packet shapes cost one dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .graph import END, ERROR, MALFORMED, CompiledGraph, RuntimeConfig, compile_graph
from .package import Package, load_package

DEFAULT_WINDOW = 504
NO_PTYPE = 0xFFFF
# A walk parses at most this many headers (ice_parser_result holds 16 protocol
# offsets; no real packet comes near). Past it the walk stops, flag "header_limit",
# so a 64 KB packet of MPLS labels costs what 256 headers cost.
MAX_HEADERS = 256
# Result cache: bytes its entries may use in all, counted per entry (COST_BASE plus
# COST_HEADER per header, measured with tracemalloc). Two generations: when the
# young one holds half the budget it becomes the old one and the old one is dropped;
# a hit in the old generation moves the result to the young one. So memory stays
# under the budget whatever the traffic, and a working set that fits stays cached.
CACHE_BYTES = 16 << 20
COST_BASE = 1000
COST_HEADER = 110
_STOP_LIMIT = 2  # the walk reached MAX_HEADERS

# Why the walk stopped.
STATUS_OK = "ok"  # reached a terminal of the parse graph
STATUS_UNKNOWN = "unknown_next"  # a select had no entry: unknown next protocol, "PAY" ptype
STATUS_NO_MATCH = "no_match"  # the graph explicitly rejects this value (Intel status -1)
STATUS_TRUNCATED = "truncated"  # the packet ended where another header was expected
STATUS_MALFORMED = "malformed_length"  # a length field gave less than the fixed header size
STATUS_WINDOW = "window"  # the parse went past the parser window; later bytes read as zero
FLAG_HEADER_LIMIT = "header_limit"  # the walk stopped after MAX_HEADERS headers
STATUSES = (
    STATUS_OK,
    STATUS_UNKNOWN,
    STATUS_NO_MATCH,
    STATUS_TRUNCATED,
    STATUS_MALFORMED,
    STATUS_WINDOW,
)


class Header(NamedTuple):
    name: str
    offset: int
    length: int


class ParseResult(NamedTuple):
    """What the parser reports for one packet. Immutable; shared between packets."""

    ptype: int
    ptype_name: str
    po: tuple[tuple[int, int], ...]  # (proto_id, offset), ascending proto_id
    headers: tuple[Header, ...]
    flags: tuple[str, ...]
    status: str
    depth: int  # bytes parsed: the end of the last header, capped at the packet length
    markers: tuple[str, ...]
    levels: tuple[int, ...]  # tunnel level of each header
    nodes: tuple[int, ...]  # graph node index of each header
    edges: tuple[int, ...]  # edge id taken out of each header (-1: none)

    def offset_of(self, proto_id: int) -> int | None:
        for pid, off in self.po:
            if pid == proto_id:
                return off
        return None

    def to_json(self, index: int | None = None, length: int | None = None) -> dict:
        out: dict = {}
        if index is not None:
            out["index"] = index
        if length is not None:
            out["len"] = length
        out.update(
            ptype=self.ptype,
            ptype_name=self.ptype_name,
            po=[list(p) for p in self.po],
            headers=[
                {"name": h.name, "offset": h.offset, "length": h.length} for h in self.headers
            ],
            flags=list(self.flags),
            status=self.status,
            depth=self.depth,
        )
        return out


class Parser:
    """A compiled parse graph plus the walk. Build once, call :meth:`parse` per packet."""

    def __init__(self, graph: CompiledGraph, window: int = DEFAULT_WINDOW) -> None:
        if window < 14:
            raise ValueError("the parser window must be at least 14 bytes")
        self.graph = graph
        self.package = graph.package
        self.window = window
        self._steps = [n.step for n in graph.nodes]
        self._lookahead = frozenset(n.index for n in graph.nodes if n.proto.lookahead)
        self._start = graph.start
        self._pad = bytes(graph.max_read + 16)
        self._cache: dict[tuple, ParseResult] = {}  # the young generation
        self._old: dict[tuple, ParseResult] = {}
        self._cache_bytes = 0  # the young generation's cost
        self._trail_limit = 3 * MAX_HEADERS
        pt = self.package.ptypes
        self._ptypes = {p.markers: (p.number, p.name) for p in pt.values()}
        self._ids = self.package.proto_ids
        self._nodes = graph.nodes
        self._edges = graph.edges

    @classmethod
    def load(
        cls,
        profiles: Iterable[str] = ("os-default",),
        *,
        ports: Mapping[str, Iterable[int]] | None = None,
        vxlan_ports: Iterable[int] = (),
        geneve_ports: Iterable[int] = (),
        vxlan_gpe_ports: Iterable[int] = (),
        dvm: bool = False,
        options: Iterable[str] = (),
        window: int = DEFAULT_WINDOW,
        package: Package | None = None,
    ) -> Parser:
        """Load a profile stack and compile it for the given tunnel ports and mode."""
        pkg = package if package is not None else load_package(list(profiles))
        table: dict[str, set[int]] = {k: set(v) for k, v in (ports or {}).items()}
        table.setdefault("vxlan", set()).update(vxlan_ports)
        table.setdefault("geneve", set()).update(geneve_ports)
        table.setdefault("vxlan_gpe", set()).update(vxlan_gpe_ports)
        opts = set(options)
        if dvm:
            opts.add("dvm")
        cfg = RuntimeConfig(
            ports={k: frozenset(v) for k, v in table.items()}, options=frozenset(opts)
        )
        return cls(compile_graph(pkg, cfg), window)

    # ------------------------------------------------------------------ the walk

    def parse(self, data: bytes) -> ParseResult:
        n = len(data)
        w = self.window
        if n > w:
            d = data[:w] + bytes(n - w) + self._pad
        else:
            d = data + self._pad
        steps = self._steps
        lookahead = self._lookahead
        nid = self._start
        o = 0
        lvl = 0
        trail: list[int] = []
        push = trail.append
        hl = 0
        stop = 0
        while True:
            try:
                hl, e = steps[nid](d, o, lvl)
            except IndexError:  # a computed length pointed far past the buffer
                d = d + bytes(max(4096, len(d)))
                continue
            push(nid)
            push(o)
            if e is None:
                push(-1)
                stop = 0
                break
            t = e[0]
            push(e[2])
            if t < 0:
                stop = t
                break
            o += hl
            if e[1]:
                lvl += 1
            # The packet ended: the next header is not parsed, unless it starts right at
            # the end and this header's step looks ahead into it (`lookahead`).
            if o > n or (o == n and nid not in lookahead):
                stop = 1
                break
            if len(trail) >= self._trail_limit:
                stop = _STOP_LIMIT
                break
            nid = t
        # the result depends on the length through depth = min(end of last header, n)
        depth = min(o if stop > 0 else o + hl, n)
        key = (tuple(trail), hl, stop, n > w, o + hl > n, depth)
        res = self._cache.get(key)
        if res is None:
            res = self._old.get(key)
            if res is None:
                res = self._build(trail, hl, stop, n)
            self._remember(key, res)
        return res

    def _remember(self, key: tuple, res: ParseResult) -> None:
        self._cache[key] = res
        self._cache_bytes += COST_BASE + COST_HEADER * len(res.headers)
        if self._cache_bytes > CACHE_BYTES // 2:
            self._old = self._cache
            self._cache = {}
            self._cache_bytes = 0

    @property
    def cache_bytes(self) -> int:
        """Estimated bytes the result cache holds now (both generations)."""
        old = sum(COST_BASE + COST_HEADER * len(r.headers) for r in self._old.values())
        return self._cache_bytes + old

    # ------------------------------------------------------ result from the path

    def _build(self, trail: list[int], last_len: int, stop: int, n: int) -> ParseResult:
        nodes = self._nodes
        edges = self._edges
        count = len(trail) // 3
        headers: list[Header] = []
        levels: list[int] = []
        node_ids: list[int] = []
        edge_ids: list[int] = []
        markers: list[str] = []
        flags: list[str] = []
        carrier: set[int] = set()
        lvl = 0
        for i in range(count):
            nid, off, eid = trail[3 * i], trail[3 * i + 1], trail[3 * i + 2]
            node = nodes[nid]
            if i + 1 < count:
                length = trail[3 * i + 4] - off
            else:
                length = last_len
            headers.append(Header(node.display, off, length))
            levels.append(lvl)
            node_ids.append(nid)
            edge_ids.append(eid)
            markers.extend(node.proto.marks)
            flags.extend(node.proto.flags)
            if eid >= 0:
                einfo = edges[eid]
                markers.extend(einfo.marks)
                flags.extend(einfo.flags)
                if einfo.tunnel is not None:
                    flags.append(f"tunnel_{einfo.tunnel}")
                    for j in range(i, -1, -1):  # the header that carries the tunnel
                        if levels[j] != lvl:
                            break
                        if nodes[node_ids[j]].proto.carriers:
                            carrier.add(j)
                            break
                    lvl += 1
        # protocol offsets: one slot per protocol ID, the last write wins
        slots: dict[int, int] = {}
        ids = self._ids
        for i, h in enumerate(headers):
            proto = nodes[node_ids[i]].proto
            reps = proto.carriers if i in carrier else proto.reports
            for rep in reps:
                pid = rep.ids[min(levels[i], len(rep.ids) - 1)]
                slots[ids[pid]] = h.offset + rep.at
        po = tuple(sorted(slots.items()))
        # PTYPE from the marker sequence, as the marker TCAM does: no entry, no PTYPE
        mk = tuple(markers)
        ptype, pname = self._ptypes.get(mk, (NO_PTYPE, "NO_PTYPE"))
        # status
        last = headers[-1]
        end = last.offset + last.length
        if stop == ERROR:
            status = STATUS_NO_MATCH
        elif stop == MALFORMED:
            status = STATUS_MALFORMED
        elif stop == END:
            status = STATUS_OK
        elif stop == 1:
            status = STATUS_TRUNCATED
        else:
            status = STATUS_UNKNOWN
            if stop == _STOP_LIMIT:
                flags.append(FLAG_HEADER_LIMIT)
        beyond = end > self.window or (stop == 1 and n > self.window)
        if beyond:
            flags.append("window")
            if status in (STATUS_OK, STATUS_UNKNOWN, STATUS_TRUNCATED):
                status = STATUS_WINDOW
        if end > n or stop == 1:
            flags.append("truncated")
        return ParseResult(
            ptype=ptype,
            ptype_name=pname,
            po=po,
            headers=tuple(headers),
            flags=tuple(dict.fromkeys(flags)),
            status=status,
            depth=min(end, n),
            markers=mk,
            levels=tuple(levels),
            nodes=tuple(node_ids),
            edges=tuple(edge_ids),
        )

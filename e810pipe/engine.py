"""What every classification block shares: the packet view, compiled matches, verdicts.

A rule's pattern compiles to a :class:`Match`: the PTYPEs its profile covers (the
profile-ID TCAM keys on the PTYPE group and the tunnel-type flags), and the
field-vector words it compares, each with a value and a 16-bit mask. Engines
(switch, ACL, Flow Director) turn Matches into their own tables; the pipeline asks
each engine for a :class:`Verdict` per packet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from .errors import RuleError
from .fields import FieldCatalog, FieldDef, Word, read_word, word_layout, words_for
from .lint import GraphModel, filled_ports
from .package import TERMINALS, Package
from .parser import Parser, ParseResult
from .rules import FieldSpec, FlowRule, Item, rule_error

# Markers each rte_flow item contributes to the PTYPE marker sequence, and the
# tunnel flag (parser result flag) a tunnel item requires.
ITEM_MARKERS: dict[str, tuple[str, ...]] = {
    "eth": ("mac",),
    "vlan": (),
    "ipv4": ("ipv4",),
    "ipv6": ("ipv6",),
    "ipv6_frag_ext": ("frag",),
    "udp": ("udp",),
    "tcp": ("tcp",),
    "sctp": ("sctp",),
    "icmp": ("icmp",),
    "icmp6": ("icmpv6",),
    "gre": ("tun",),
    "gre_key": (),
    "nvgre": ("tun",),
    "vxlan": ("tun",),
    "vxlan-gpe": ("tun",),
    "geneve": ("tun",),
    "mpls": (),
    "gtpu": ("gtpu",),
    "gtp_psc": (),
    "pppoes": ("pppoe",),
    "pppoe_proto_id": (),
    "l2tpv3oip": ("l2tpv3",),
    "esp": ("esp",),
    "ah": ("ah",),
    "any": (),
}
ITEM_TUNNEL: dict[str, str] = {
    "gre": "tunnel_gre",
    "nvgre": "tunnel_gre",
    "vxlan": "tunnel_vxlan",
    "vxlan-gpe": "tunnel_vxlan_gpe",
    "geneve": "tunnel_geneve",
    # the PDU session container is the GTP-U extension header: the key-builder flag
    # ICE_GTP_PDU, which the profile lookup keys on
    "gtp_psc": "gtpu_ext_header",
}
# Items after which the next item starts the inner segment.
TUNNEL_ITEMS = frozenset(
    {"gre", "gre_key", "nvgre", "vxlan", "vxlan-gpe", "geneve", "gtpu", "gtp_psc"}
)


# rte_flow items whose header the profiles name otherwise (ice_flow.c's segment
# headers: ICE_FLOW_SEG_HDR_ICMP for icmp6, _PPPOE for pppoes, _GTPU_EH for gtp_psc).
ITEM_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "icmp6": ("icmpv6",),
    "vxlan-gpe": ("vxlan_gpe",),
    "nvgre": ("gre",),
    "gtp_psc": ("gtpu_ext",),
    "pppoes": ("pppoe",),
    "l2tpv3oip": ("l2tpv3",),
    # an esp item after udp is NAT-T ESP (ice_fdir_parse_pattern: NONF_IPV4_NAT_T_ESP)
    "esp": ("esp", "natt"),
    "ipv6_frag_ext": ("ipv6_frag",),
}
# Items that qualify the header before them and are no header of their own.
RAW_FV_MAX = 32  # field-vector words of a raw profile (ice_parser_profile_init)
# the PTYPEs ice_attr_gtpu_session / _down / _up in base/ice_flow.c give attributes:
# GTP-U over IPv4/IPv6 carrying IPv4/IPv6 (frag, pay, UDP, TCP, ICMP)
GTPU_ATTR_PTYPES = frozenset(range(331, 351))
ITEM_ANNOTATIONS = frozenset({"gre_key", "pppoe_proto_id", "any", "void", "end"})


def item_protocols(package: Package, item: str) -> tuple[str, ...]:
    """The parse-graph protocols an rte_flow item (or a profile's own item) names:
    a protocol of that name, or whose header name (display) is the item's."""
    alias = ITEM_PROTOCOLS.get(item)
    if alias is not None:
        return tuple(n for n in alias if n in package.protocols)
    return tuple(n for n, p in package.protocols.items() if item in (n, p.display))


class PatternPath(NamedTuple):
    """One way packets can take a pattern's header sequence through the parse graph."""

    markers: tuple[str, ...]  # the PTYPE marker sequence such a packet ends with
    prefix: tuple[str, ...]  # the markers once the pattern's last header is parsed
    heads: tuple[tuple[str, int, bool], ...]  # per header item: (protocol, level, carrier)
    complete: bool  # False: only a packet cut short after the last header ends so
    route: tuple[str, ...]  # protocols of the path, for messages
    flags: frozenset[str] = frozenset()  # parser flags such packets have (tunnel_gre...)


@dataclass
class PatternWalk:
    """What :func:`walk_pattern` found: the paths, or how far the pattern got."""

    paths: list[PatternPath]
    matched: int  # header items some path took (all of them when paths is not empty)
    offered: tuple[str, ...]  # protocols the graph offers where the walk got stuck


def walk_pattern(
    model: GraphModel,
    items: Sequence[str],
    exact: bool,
    max_markers: int = 16,
    into_tunnels: bool = True,
) -> PatternWalk:
    """Walk a pattern's headers over the parse graph under its runtime settings.

    The pattern's header items are matched, in order, to the protocols the graph
    reaches from its start (edges, their marks, tunnels, UDP port tables, options
    and the tunnel depth, as :class:`~e810pipe.lint.GraphModel` has them). Between
    two named headers the walk may pass headers the pattern does not name only if
    they set no PTYPE marker, neither themselves nor on the edge out of them, and
    carry no tunnel (VLAN tags, IPv6 extension headers, MPLS labels, the PPP header of
    PPPoE), as they do not change the PTYPE; a UDP header must be named. `exact`:
    the packet's headers end with the pattern's last
    one (Flow Director's flow types); otherwise anything may follow, within the last
    header's tunnel level unless `into_tunnels` (a pattern that ends at a tunnel
    header covers what the tunnel carries; one that does not, as ice's non-tunnel
    switch profiles, only packets without another tunnel).

    Each path gives the marker sequence such packets end with; the PTYPEs a rule
    covers are those of the sequences the package declares.
    """
    pkg = model.package
    heads = [i for i in items if i not in ITEM_ANNOTATIONS]
    want = [frozenset(item_protocols(pkg, i)) for i in heads]
    k_all = len(heads)
    paths: list[PatternPath] = []
    best = 0
    offered: dict[str, None] = {}
    State = tuple[
        str, int, int, tuple[str, ...], tuple[str, ...], tuple, tuple[str, ...], frozenset[str]
    ]
    start: State = (pkg.start, 0, 0, (), (), (), (), frozenset())
    seen: set[tuple] = set()
    todo = [start]
    while todo:
        name, level, k, markers, prefix, info, route, flags = todo.pop(0)
        key = (name, level, k, markers, info, flags)
        if key in seen:
            continue
        seen.add(key)
        proto = pkg.protocols[name]
        consumed = k < k_all and name in want[k]
        if consumed:
            k += 1
            info = (*info, (name, level, False))
        elif k == k_all and not exact:
            pass  # past the pattern: anything may follow
        elif k < k_all and not proto.marks and not proto.carriers and k > 0:
            pass  # a header the pattern does not name, that sets no marker nor carries one
        else:
            if k == best and k < k_all:
                offered[name] = None
            continue
        if k > best:
            best, offered = k, {}
        markers = (*markers, *proto.marks)
        if len(markers) > max_markers:
            continue
        if consumed and k == k_all:
            prefix = markers
        route = (*route, name)
        if proto.flags:
            flags = flags | frozenset(proto.flags)
        skipped = not consumed and k < k_all
        at_end = k == k_all and (consumed or not exact)
        out, falls = model.step(name, level)
        if falls and at_end:
            paths.append(PatternPath(markers, prefix, info, True, route, flags))
        for e in out:
            c = e.case
            if c.target == "pass" or (skipped and c.marks):
                continue
            m2 = (*markers, *c.marks)
            info2 = info
            f2 = flags | frozenset(c.flags) if c.flags else flags
            if c.tunnel is not None:
                f2 = f2 | {f"tunnel_{c.tunnel}"}
                # the header that carries the tunnel: the nearest one of this level that
                # can report a carrier ID (the UDP of VXLAN, GENEVE, GTP-U), as the parser
                for j in range(len(info) - 1, -1, -1):
                    pname, plevel, _ = info[j]
                    if plevel != level:
                        break
                    if pkg.protocols[pname].carriers:
                        info2 = (*info[:j], (pname, plevel, True), *info[j + 1 :])
                        break
            if c.target in TERMINALS:
                # exact: a fragment (a terminal edge with a flag) is another flow type
                if at_end and not (exact and c.flags):
                    paths.append(PatternPath(m2, prefix, info2, True, route, f2))
                continue
            if at_end:
                paths.append(PatternPath(m2, prefix, info2, False, route, f2))
                if exact:
                    continue
            if k == k_all and c.tunnel is not None and not into_tunnels:
                continue  # past the pattern, no tunnel it does not name
            nxt = (c.target, model.next_level(level, c), k, m2, prefix, info2, route, f2)
            todo.append(nxt)
    return PatternWalk(paths, best, tuple(offered))


def reachable_markers(model: GraphModel, max_markers: int = 16) -> dict[tuple[str, ...], tuple]:
    """Every marker sequence a complete parse can end with (not a packet cut short),
    with one protocol route that gives it: what the marker TCAM must cover."""
    walk = walk_pattern(model, (), exact=False, max_markers=max_markers)
    out: dict[tuple[str, ...], tuple] = {}
    for p in walk.paths:
        if p.complete:
            out.setdefault(p.markers, p.route)
    return out


class Frame:
    """One packet as the classification blocks see it."""

    __slots__ = ("data", "res", "po", "flags")

    def __init__(self, data: bytes, res: ParseResult, po: dict[int, int] | None = None) -> None:
        self.data = data
        self.res = res
        self.po = dict(res.po) if po is None else po  # `po`: dict(res.po), made already
        self.flags = res.flags

    def word(self, w: Word) -> int | None:
        return read_word(self.data, self.po, w)


@dataclass(frozen=True, slots=True)
class Match:
    """A compiled pattern: where it applies and which words it compares."""

    ptypes: frozenset[int]
    tunnel_flag: str | None
    words: tuple[tuple[Word, int, int], ...]  # (word, value, mask), masks never zero
    ranges: tuple[tuple[Word, int, int], ...] = ()  # (word, low, high) from `last`
    markers: tuple[str, ...] = ()
    raw: bool = False
    field_words: tuple[Word, ...] = ()  # every word of each matched field, masked or not
    # a raw profile's GTP-U attribute (ice_flow_set_hw_prof: down, up or session), None
    # for PTYPEs that have no ptype attributes
    attr: str | None = None

    @property
    def input_set(self) -> tuple[tuple[Word, int], ...]:
        """The words and masks, without values: what must be equal for one profile."""
        return tuple((w, m) for w, _, m in self.words)

    def applies(self, frame: Frame) -> bool:
        if frame.res.ptype not in self.ptypes:
            return False
        return self.tunnel_flag is None or self.tunnel_flag in frame.flags

    def matches(self, frame: Frame) -> bool:
        if not self.applies(frame):
            return False
        for w, v, m in self.words:
            got = frame.word(w)
            if got is None or got & m != v:
                return False
        for w, lo, hi in self.ranges:
            got = frame.word(w)
            if got is None or not lo <= got <= hi:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one block decided for one packet."""

    block: str  # switch, acl, fd, rss
    rule: int | None = None  # rule id that hit
    action: str = "none"  # to_vsi, to_vsi_list, to_queue, to_qgroup, drop, passthru, none
    vsi: int | None = None
    vsis: tuple[int, ...] = ()
    queue: int | None = None  # relative to the VSI
    qgroup: tuple[int, int] | None = None  # (first queue, size), relative to the VSI
    mark: int | None = None
    priority: int = 0  # queue priority: 3 for FD/ACL queue and drop, 0 for passthru
    profile: int | None = None
    words: tuple[tuple[str, int], ...] = ()  # field-vector words read, for traces
    note: str = ""


@dataclass
class Capacity:
    """Resource accounting for `flow list` and error messages."""

    used: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return ", ".join(f"{k} {self.used.get(k, 0)}/{v}" for k, v in self.total.items())


class Engine:
    """Interface of a classification block. Subclasses: switch, ACL, Flow Director."""

    name = "engine"

    def validate(self, rule: FlowRule, match: Match) -> None:
        """Raise RuleError if this engine cannot take the rule now."""
        raise NotImplementedError

    def add(self, rule_id: int, rule: FlowRule, match: Match) -> None:
        raise NotImplementedError

    def remove(self, rule_id: int) -> None:
        raise NotImplementedError

    def lookup(self, frame: Frame) -> Verdict | None:
        raise NotImplementedError

    def words_read(self, ptype: int) -> Iterable[tuple[int, int]] | None:
        """Every field-vector word, as (protocol ID, byte offset), that `lookup` may read
        for a packet of this PTYPE: with the parse result, these bytes decide the
        verdict (the pipeline's flow cache keys on them). None: not known, do not cache.
        """
        return None

    def capacity(self) -> Capacity:
        return Capacity()


_FULL_WORD = 0xFFFF


class MatchCompiler:
    """Compile rule patterns to Matches against a parser's package and field catalog."""

    def __init__(self, parser: Parser) -> None:
        self.parser = parser
        self.package = parser.package
        self.catalog = FieldCatalog(parser.package)
        self._ptype_memo: dict[tuple[tuple[str, ...], bool], frozenset[int]] = {}
        # pattern shape -> (markers, tunnel flag, PTYPEs, per spec: None or (field, id, range))
        self._shapes: dict[tuple, tuple] = {}
        self._by_markers: dict[tuple[str, ...], int] = {
            p.markers: n for n, p in self.package.ptypes.items()
        }
        self._graph: object = None
        self._models: dict[bool, GraphModel] = {}
        self._walks: dict[tuple, tuple] = {}
        self._normalized: FlowRule | None = None  # the last rule normalize() returned as is

    def ptypes_for(self, markers: tuple[str, ...], exact: bool) -> frozenset[int]:
        key = (markers, exact)
        hit = self._ptype_memo.get(key)
        if hit is None:
            hit = self._ptypes_for(markers, exact)
            self._ptype_memo[key] = hit
        return hit

    def _ptypes_for(self, markers: tuple[str, ...], exact: bool) -> frozenset[int]:
        if exact:
            n = self._by_markers.get(markers)
            return frozenset(() if n is None else (n,))
        k = len(markers)
        return frozenset(n for m, n in self._by_markers.items() if m[:k] == markers)

    def model(self, permissive: bool = False) -> GraphModel:
        """The parse graph under the parser's runtime settings (`permissive`: every UDP
        tunnel table holds a port)."""
        graph = self.parser.graph
        if graph is not self._graph:
            self._graph = graph
            self._models = {}
            self._walks = {}
            self._shapes = {}
        model = self._models.get(permissive)
        if model is None:
            cfg = graph.config
            ports = dict(cfg.ports)
            if permissive:
                for t, nums in filled_ports(self.package).items():
                    if not ports.get(t):
                        ports[t] = frozenset(nums)
            model = self._models[permissive] = GraphModel(self.package, ports, cfg.options)
        return model

    def pattern_ptypes(
        self, items: Sequence[Item], exact: bool, tunnel: str | None = None
    ) -> tuple[tuple[str, ...], frozenset[int], tuple[tuple[str, int, bool], ...]]:
        """The PTYPEs of a pattern's header sequence, from the parse graph: the markers
        its packets have once its last header is parsed, the PTYPEs, and per header
        item the protocol, tunnel level and whether it carries the tunnel (see
        :func:`walk_pattern`). A sequence no packet can take raises the reason.

        Packets must be able to take the sequence under the runtime settings; if they
        can only once a UDP tunnel port is registered, the rule is still taken (as
        testpmd takes it before ``udp_tunnel_port add``) and ``flow validate
        --analyze`` reports it as unproducible.
        """
        names = tuple(i.type for i in items)
        if names and all(n == "any" for n in names):
            # RTE_FLOW_ITEM_TYPE_ANY alone: every packet (ice_switch_filter's pattern_any)
            return (), frozenset(self.package.ptypes), ()
        key = (names, exact, tunnel)
        self.model()  # drops the memo when the runtime settings changed
        hit = self._walks.get(key)
        if hit is not None:
            return hit
        deep = bool(names) and names[-1] in TUNNEL_ITEMS
        walk = walk_pattern(self.model(), names, exact, into_tunnels=deep)
        own = tuple(n for n in names if n not in ITEM_ANNOTATIONS)
        found = self._choose(walk, tunnel, deep, own)
        if found is None:
            walk2 = walk_pattern(self.model(permissive=True), names, exact, into_tunnels=deep)
            found = self._choose(walk2, tunnel, deep, own)
            if found is None:
                self._reject(items, walk)
        assert found is not None
        self._walks[key] = found
        return found

    def _choose(
        self,
        walk: PatternWalk,
        tunnel: str | None,
        deep: bool = False,
        own: tuple[str, ...] = (),
    ) -> tuple[tuple[str, ...], frozenset[int], tuple[tuple[str, int, bool], ...]] | None:
        by = self._by_markers
        good = [
            p
            for p in walk.paths
            if p.complete and p.markers in by and (tunnel is None or tunnel in p.flags)
        ]
        if not good:
            return None
        # one field-vector layout per rule: the headers named as the items are, where
        # the runtime settings have them (a single VLAN mode `vlan` is the vlan header,
        # not the S-tag one an 0x88a8 frame gives), then the header levels most paths have
        counts = Counter(p.heads for p in good)

        def named(h: tuple[tuple[str, int, bool], ...]) -> int:
            return sum(1 for (name, _, _), item in zip(h, own) if name == item)

        heads = max(counts, key=lambda h: (named(h), counts[h]))
        same = [p for p in good if p.heads == heads]
        common = same[0].markers
        for p in same[1:]:
            n = 0
            while n < min(len(common), len(p.markers)) and common[n] == p.markers[n]:
                n += 1
            common = common[:n]
        # the markers the rule's own headers set (a tunnel's carried headers vary)
        shown = same[0].prefix if deep else common
        return shown, frozenset(by[p.markers] for p in same), heads

    def _reject(self, items: Sequence[Item], walk: PatternWalk) -> None:
        heads = [i for i in items if i.type not in ITEM_ANNOTATIONS]
        seq = _sequence(i.type for i in heads)
        if walk.matched < len(heads):
            bad = heads[walk.matched]
            got = _sequence(i.type for i in heads[: walk.matched])
            offer = ", ".join(walk.offered) or "nothing"
            raise rule_error(
                "ITEM",
                f"no PTYPE of the loaded package has the header sequence {seq}: no "
                f"packet has '{bad.type}' "
                + (f"after {got} (the parse graph leads to {offer})" if got else "first"),
                bad.index,
            )
        seen = sorted({" ".join(p.markers) for p in walk.paths if p.complete})
        cut = sorted(
            {
                " ".join(p.markers)
                for p in walk.paths
                if not p.complete and p.markers in self._by_markers
            }
        )
        if seen:
            why = (
                f"its packets end with the markers {'; '.join(seen[:4])}"
                + (f" (and {len(seen) - 4} more)" if len(seen) > 4 else "")
                + ", which no PTYPE declares (they get PTYPE 0xFFFF)"
            )
        else:
            why = "no complete parse ends with it"
        if cut:
            why += f"; only packets cut short get a PTYPE ({'; '.join(cut[:2])})"
        raise rule_error(
            "ITEM",
            f"no PTYPE of the loaded package has the header sequence {seq}: {why}",
            heads[-1].index if heads else 0,
        )

    def normalize(self, rule: FlowRule) -> FlowRule:
        """Give every field spec with mask -1 ("the whole field") its real mask, and name
        a profile field by its `match` name (``acme.tenant_id`` for ``match tenant_id =
        acme.tenant;``)."""
        if rule is self._normalized:  # create() normalizes, then choose_engine() again
            return rule
        fields = self.catalog.fields
        if not any(
            sp.mask == -1 or sp.field not in fields for it in rule.pattern for sp in it.specs
        ):
            self._normalized = rule
            return rule
        items = []
        for it in rule.pattern:
            specs = []
            for sp in it.specs:
                if sp.field not in fields and sp.field.startswith(f"{it.type}."):
                    m = self.package.match_fields.get(sp.field[len(it.type) + 1 :])
                    if m is not None and m.protocol == it.type:
                        sp = replace(sp, field=f"{m.protocol}.{m.field}")
                fd = self.catalog.get(sp.field)
                if sp.mask == -1:
                    if fd is None:
                        raise rule_error(
                            "ITEM", f"item '{it.type}' has no field '{sp.field}'", it.index
                        )
                    sp = replace(sp, mask=fd.mask)
                specs.append(sp)
            items.append(replace(it, specs=tuple(specs)))
        return replace(rule, pattern=tuple(items))

    def compile(self, rule: FlowRule, exact: bool = False, flow: bool = False) -> Match:
        """Pattern to Match. `exact`: the PTYPEs of exactly this header sequence (FD).
        `flow`: fields as the flow engines extract them (ice_flow_xtract_fld), where
        that differs from the switch (:meth:`FieldCatalog.flow_field`)."""
        items = [i for i in rule.pattern if i.type not in ("end", "void")]
        raws = [i for i in items if i.type == "raw"]
        if raws:
            if len(items) != len(raws) or len(raws) > 1:
                raise rule_error(
                    "ITEM", "a raw item must be the only item of the pattern", raws[0].index
                )
            # ice_fdir_parse_pattern: the spec and mask are ASCII-hex strings of one length
            item = ice_raw_bytes(
                raws[0],
                "raw spec and mask must be hexadecimal strings of one length "
                "(pattern spec HEX pattern mask HEX)",
            )
            return self.compile_raw(item)
        words: dict[Word, tuple[int, int]] = {}
        field_words: dict[Word, None] = {}
        ranges: list[tuple[Word, int, int]] = []
        tunnel: str | None = None
        # Everything but the values depends on the pattern's shape only: rules of one
        # shape (16K 5-tuples) reuse what the first of them worked out.
        shape = (
            exact,
            flow,
            tuple(
                [
                    (
                        i.type,
                        i.level,
                        tuple(
                            [
                                (s.field, s.mask == 0, s.last is not None and s.last != s.value)
                                for s in i.specs
                            ]
                        ),
                    )
                    for i in items
                ]
            ),
        )
        self.model()  # cached shapes hold for one set of runtime settings
        known = self._shapes.get(shape)
        if known is not None:
            markers_t, tunnel, ptypes, plans, layouts, fwords = known
            if layouts is not None:
                # no range and no word shared by two fields: each field's words, as
                # _add_spec gives them, in order (the field words are the shape's)
                wl: list[tuple[Word, int, int]] = []
                n = 0
                for item in items:
                    for spec in item.specs:
                        lay = layouts[n]
                        n += 1
                        if lay is None:
                            continue
                        fmask, shift, parts = lay
                        v = (spec.value & fmask) << shift
                        m = (spec.mask & fmask) << shift
                        for w, sh in parts:
                            m16 = (m >> sh) & 0xFFFF
                            if m16:
                                if m16 == 0xFFFF:
                                    m16 = _FULL_WORD  # one int object for 16K rules' masks
                                wl.append((w, (v >> sh) & m16, m16))
                return Match(ptypes, tunnel, tuple(wl), (), markers_t, False, fwords)
            n = 0
            for item in items:
                for spec in item.specs:
                    plan = plans[n]
                    n += 1
                    if plan is not None:
                        fdef, pid, is_range = plan
                        _add_spec(words, field_words, ranges, fdef, pid, is_range, spec, item)
            return Match(
                ptypes=ptypes,
                tunnel_flag=tunnel,
                words=tuple((w, v, m) for w, (v, m) in words.items()),
                ranges=tuple(ranges),
                markers=markers_t,
                field_words=tuple(field_words),
            )
        for item in items:
            if item.type not in ITEM_MARKERS and item.type not in self.package.protocols:
                raise rule_error(
                    "ITEM",
                    f"unsupported pattern item '{item.type}' (neither an rte_flow item nor a "
                    "protocol of the loaded profiles)",
                    item.index,
                )
            if item.type in ITEM_TUNNEL:
                tunnel = ITEM_TUNNEL[item.type]
        # A pattern that ends at a tunnel header covers whatever the tunnel carries.
        if items and items[-1].type in TUNNEL_ITEMS:
            exact = False
        markers_t, ptypes, heads = self.pattern_ptypes(items, exact, tunnel)
        spec_plans: list[tuple[FieldDef, int, bool] | None] = []
        hi = -1
        for item in items:
            if item.type not in ITEM_ANNOTATIONS:
                hi += 1
            # `any` (or a pattern of annotations only) walks no header
            proto_name, level, carrier = heads[max(hi, 0)] if heads else ("", 0, None)
            proto = self.package.protocols.get(proto_name)
            for spec in item.specs:
                fd = self.catalog.get(spec.field)
                if fd is None:
                    raise rule_error(
                        "ITEM", f"item '{item.type}' has no field '{spec.field}'", item.index
                    )
                if flow:
                    fd = self.catalog.flow_field(spec.field, level) or fd
                if carrier and proto is not None and proto.carriers:
                    # the header carries a tunnel: it reports its carrier ID (UDP_OF)
                    cids = proto.carriers[0].ids
                    found_id = self.catalog.ids.get(cids[min(level, len(cids) - 1)])
                else:
                    found_id = self.catalog.proto_id(fd, level)
                    found_id, shift = self._head_id(item.type, proto, found_id)
                    if shift:
                        fd = FieldDef(fd.name, fd.ids, fd.offset + 8 * shift, fd.width)
                if found_id is None or not (carrier or self.catalog.available(fd, level)):
                    raise rule_error(
                        "ITEM",
                        f"item '{item.type}': the loaded profiles report no "
                        f"{fd.proto_name(level)} protocol, so '{spec.field}' cannot be matched",
                        item.index,
                    )
                if spec.mask == 0:
                    spec_plans.append(None)
                    continue
                is_range = spec.last is not None and spec.last != spec.value
                _add_spec(words, field_words, ranges, fd, found_id, is_range, spec, item)
                spec_plans.append((fd, found_id, is_range))
        markers = list(markers_t)
        layouts = None
        fwords = ()
        if not ranges and all(p is None or not p[2] for p in spec_plans):
            lays = [None if p is None else word_layout(p[0], p[1]) for p in spec_plans]
            flat = [w for lay in lays if lay is not None for w, _ in lay[2]]
            if len(flat) == len(set(flat)):
                layouts, fwords = tuple(lays), tuple(flat)
        self._shapes[shape] = (tuple(markers), tunnel, ptypes, tuple(spec_plans), layouts, fwords)
        return Match(
            ptypes=ptypes,
            tunnel_flag=tunnel,
            words=tuple((w, v, m) for w, (v, m) in words.items()),
            ranges=tuple(ranges),
            markers=tuple(markers),
            field_words=tuple(field_words),
        )

    def _head_id(self, item_type: str, head: Any, pid: int | None) -> tuple[int | None, int]:
        """The protocol ID a field reads when the walk parsed the item as another
        protocol of the graph, and the bytes to add to the field's offset: the outer
        `vlan` of a QinQ pattern is the `stag` header (EVLAN_O in double VLAN mode), so
        its TCI is read where that header reports, not where a single VLAN tag does
        (VLAN_O); an `esp` item after UDP is the NAT-T header, whose fields are read at
        offsets from the protocol it reports (UDP_IL_OR_S + 8 for the SPI)."""
        own = self.package.protocols.get(item_type)
        if pid is None or head is None or own is None or head.name == item_type:
            return pid, 0
        ids = self.package.proto_ids
        for rep in own.reports:
            if any(ids.get(i) == pid for i in rep.ids):
                for hrep in head.reports:
                    if hrep.at == rep.at and hrep.ids:
                        return ids.get(hrep.ids[0], pid), 0
                if len(head.reports) == 1 and head.reports[0].ids:
                    hrep = head.reports[0]
                    hid = ids.get(hrep.ids[0])
                    if hid is not None:
                        return hid, rep.at - hrep.at
        return pid, 0

    def compile_raw(self, item: Item) -> Match:
        """A raw pattern, as ice has it: the sample (bytes) is parsed by the same parser
        (ice_parser_run) and each masked word becomes a field-vector word as
        ice_parser_profile_init() in base/ice_parser.c makes it: at every byte offset
        where the mask has a bit in that byte or the next, the nearest preceding
        protocol of the parse gives (protocol ID, distance), and an odd distance is
        skipped; more than 32 words is an error. The profile covers the sample's PTYPE
        and, for GTP-U PTYPEs, the PDU-session attribute its Flow Director flags give
        (ice_flow_set_hw_prof: downlink, uplink, else no extension header)."""
        raw = item.raw
        if raw is None or not raw.pattern:
            raise rule_error("ITEM_SPEC", "raw item needs a pattern", item.index)
        if raw.relative or raw.offset:
            raise rule_error(
                "ITEM", "raw patterns must start at offset 0 of the packet", item.index
            )
        sample = raw.pattern
        mask = raw.mask or b"\xff" * len(sample)
        if len(mask) != len(sample):
            raise rule_error("ITEM_MASK", "raw mask and pattern differ in length", item.index)
        res = self.parser.parse(sample)
        words: list[tuple[Word, int, int]] = []
        for off in range(len(sample) - 1):
            if not mask[off] and not mask[off + 1]:
                continue
            # _nearest_proto_id: the smallest distance back to a reported protocol
            # (the first in protocol-ID order on a tie); odd distances are skipped
            dist, pid = 0xFFFF, 0
            for p, o in res.po:
                if o <= off and off - o < dist:
                    pid, dist = p, off - o
            if dist % 2:
                continue
            if len(words) >= RAW_FV_MAX:
                raise rule_error(
                    "ITEM_SPEC",
                    f"raw pattern needs more than {RAW_FV_MAX} field-vector words "
                    "(ice_parser_profile_init)",
                    item.index,
                )
            m = int.from_bytes(mask[off : off + 2], "big")
            v = int.from_bytes(sample[off : off + 2], "big")
            words.append((Word(pid, dist), v & m, m))
        attr = None
        if res.ptype in GTPU_ATTR_PTYPES:
            from .hash import gtpu_attr

            attr = gtpu_attr(sample, res)
        return Match(
            ptypes=frozenset((res.ptype,)),
            tunnel_flag=None,
            words=tuple(words),
            markers=res.markers,
            raw=True,
            attr=attr,
        )


def ice_raw_bytes(item: Item, message: str) -> Item:
    """The raw item with its spec and mask as ice reads them: testpmd hands both over as
    the ASCII-hex strings typed (``pattern spec HEX pattern mask HEX``), and
    ice_fdir_parse_pattern() / ice_hash_parse_raw_pattern() convert them to bytes;
    the two strings must be of one length. `message`: the error otherwise."""
    raw = item.raw
    if raw is None:
        raise rule_error("ITEM", message, item.index)
    try:
        spec = bytes.fromhex(raw.pattern.decode("ascii"))
        mask = bytes.fromhex((raw.mask or b"").decode("ascii") or "ff" * len(spec))
    except (UnicodeDecodeError, ValueError):
        raise rule_error("ITEM", message, item.index) from None
    if len(spec) != len(mask):
        raise rule_error("ITEM", message, item.index)
    return replace(item, raw=replace(raw, pattern=spec, mask=mask))


def _add_spec(
    words: dict[Word, tuple[int, int]],
    field_words: dict[Word, None],
    ranges: list[tuple[Word, int, int]],
    fd: FieldDef,
    pid: int,
    is_range: bool,
    spec: FieldSpec,
    item: Item,
) -> None:
    """Add one field spec's words (value under mask) or range to a match being built."""
    if is_range:
        assert spec.last is not None
        parts = words_for(fd, pid, spec.value, spec.mask)
        hi = words_for(fd, pid, spec.last, spec.mask)
        if len(parts) != 1:
            raise rule_error(
                "ITEM_LAST",
                f"a range ('last') works on fields of at most 16 bits, not '{spec.field}'",
                item.index,
            )
        ranges.append((parts[0][0], parts[0][1], hi[0][1]))
        return
    for w, v, m in words_for(fd, pid, spec.value, spec.mask):
        field_words.setdefault(w)
        if m == 0:
            continue
        old = words.get(w)
        if old is not None:
            v, m = (old[0] & ~m) | v, old[1] | m
        words[w] = (v & m, m)


def describe_words(words: Iterable[tuple[Word, int, int]], names: dict[int, str]) -> str:
    return " ".join(
        f"{names.get(w.proto_id, w.proto_id)}+{w.offset}={v:#06x}/{m:#06x}" for w, v, m in words
    )


def _sequence(names: Iterable[str], keep: int = 12) -> str:
    """Item names joined as a pattern shows them; a long pattern (a hostile one of
    thousands of items) shows its first and last few, with the count left out."""
    seq = list(names)
    if len(seq) <= keep:
        return " / ".join(seq)
    head, tail = seq[: keep - 4], seq[-4:]
    return f"{' / '.join(head)} / ... ({len(seq) - keep} more) ... / {' / '.join(tail)}"


__all__ = [
    "Capacity",
    "Engine",
    "Frame",
    "Match",
    "MatchCompiler",
    "RuleError",
    "Verdict",
]

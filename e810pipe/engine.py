"""What every classification block shares: the packet view, compiled matches, verdicts.

A rule's pattern compiles to a :class:`Match`: the PTYPEs its profile covers (the
profile-ID TCAM keys on the PTYPE group and the tunnel-type flags), and the
field-vector words it compares, each with a value and a 16-bit mask. Engines
(switch, ACL, Flow Director) turn Matches into their own tables; the pipeline asks
each engine for a :class:`Verdict` per packet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .errors import RuleError
from .fields import FieldCatalog, FieldDef, Word, read_word, words_for
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


class Frame:
    """One packet as the classification blocks see it."""

    __slots__ = ("data", "res", "po", "flags")

    def __init__(self, data: bytes, res: ParseResult) -> None:
        self.data = data
        self.res = res
        self.po = dict(res.po)
        self.flags = res.flags

    def word(self, w: Word) -> int | None:
        return read_word(self.data, self.po, w)


@dataclass(frozen=True)
class Match:
    """A compiled pattern: where it applies and which words it compares."""

    ptypes: frozenset[int]
    tunnel_flag: str | None
    words: tuple[tuple[Word, int, int], ...]  # (word, value, mask), masks never zero
    ranges: tuple[tuple[Word, int, int], ...] = ()  # (word, low, high) from `last`
    markers: tuple[str, ...] = ()
    raw: bool = False
    field_words: tuple[Word, ...] = ()  # every word of each matched field, masked or not

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


@dataclass(frozen=True)
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

    def normalize(self, rule: FlowRule) -> FlowRule:
        """Give every field spec with mask -1 ("the whole field") its real mask."""
        if not any(sp.mask == -1 for it in rule.pattern for sp in it.specs):
            return rule
        items = []
        for it in rule.pattern:
            specs = []
            for sp in it.specs:
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

    def compile(self, rule: FlowRule, exact: bool = False) -> Match:
        """Pattern to Match. `exact`: the PTYPEs of exactly this header sequence (FD)."""
        items = [i for i in rule.pattern if i.type not in ("end", "void")]
        raws = [i for i in items if i.type == "raw"]
        if raws:
            if len(items) != len(raws) or len(raws) > 1:
                raise rule_error(
                    "ITEM", "a raw item must be the only item of the pattern", raws[0].index
                )
            return self.compile_raw(raws[0])
        words: dict[Word, tuple[int, int]] = {}
        field_words: dict[Word, None] = {}
        ranges: list[tuple[Word, int, int]] = []
        tunnel: str | None = None
        # Everything but the values depends on the pattern's shape only: rules of one
        # shape (16K 5-tuples) reuse what the first of them worked out.
        shape = (
            exact,
            tuple(
                (
                    i.type,
                    i.level,
                    tuple(
                        (s.field, s.mask == 0, s.last is not None and s.last != s.value)
                        for s in i.specs
                    ),
                )
                for i in items
            ),
        )
        known = self._shapes.get(shape)
        if known is not None:
            markers_t, tunnel, ptypes, plans = known
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
        markers: list[str] = []
        spec_plans: list[tuple[FieldDef, int, bool] | None] = []
        for pos, item in enumerate(items):
            own = self.package.protocols.get(item.type)
            if item.type not in ITEM_MARKERS and own is None:
                raise rule_error(
                    "ITEM",
                    f"unsupported pattern item '{item.type}' (neither an rte_flow item nor a "
                    "protocol of the loaded profiles)",
                    item.index,
                )
            nxt = items[pos + 1].type if pos + 1 < len(items) else None
            if item.type == "udp" and nxt in ("vxlan", "vxlan-gpe", "geneve", "gtpu"):
                pass  # the tunnel's UDP carries no PTYPE marker of its own
            elif item.type in ITEM_MARKERS:
                markers.extend(ITEM_MARKERS[item.type])
            elif own is not None:  # a protocol a DDP profile declares
                markers.extend(own.marks)
            if item.type in ITEM_TUNNEL:
                tunnel = ITEM_TUNNEL[item.type]
            carrier = item.type == "udp" and nxt in ("vxlan", "vxlan-gpe", "geneve", "gtpu")
            for spec in item.specs:
                fd = self.catalog.get(spec.field)
                if fd is None:
                    raise rule_error(
                        "ITEM", f"item '{item.type}' has no field '{spec.field}'", item.index
                    )
                level = item.level
                pid = (
                    self.catalog.ids.get("UDP_OF") if carrier else self.catalog.proto_id(fd, level)
                )
                if pid is None or not (carrier or self.catalog.available(fd, level)):
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
                _add_spec(words, field_words, ranges, fd, pid, is_range, spec, item)
                spec_plans.append((fd, pid, is_range))
        # A pattern that ends at a tunnel header covers whatever the tunnel carries.
        if items and items[-1].type in TUNNEL_ITEMS:
            exact = False
        ptypes = self.ptypes_for(tuple(markers), exact)
        if not ptypes:
            raise rule_error(
                "ITEM",
                "no PTYPE of the loaded package has the header sequence "
                + " / ".join(i.type for i in items),
                items[-1].index if items else 0,
            )
        self._shapes[shape] = (tuple(markers), tunnel, ptypes, tuple(spec_plans))
        return Match(
            ptypes=ptypes,
            tunnel_flag=tunnel,
            words=tuple((w, v, m) for w, (v, m) in words.items()),
            ranges=tuple(ranges),
            markers=tuple(markers),
            field_words=tuple(field_words),
        )

    def compile_raw(self, item: Item) -> Match:
        """A raw pattern, as ice has it: parse the sample with the same parser."""
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
        po = sorted(res.po, key=lambda p: p[1])
        words: list[tuple[Word, int, int]] = []
        for x in range(0, len(sample), 2):
            m = int.from_bytes(mask[x : x + 2].ljust(2, b"\0"), "big")
            if not m:
                continue
            v = int.from_bytes(sample[x : x + 2].ljust(2, b"\0"), "big")
            # the nearest preceding protocol offset at an even distance
            base = None
            for pid, off in po:
                if off <= x and (x - off) % 2 == 0:
                    base = (pid, off)
            if base is None:
                raise rule_error(
                    "ITEM_SPEC", f"raw byte {x} lies before any parsed header", item.index
                )
            words.append((Word(base[0], x - base[1]), v & m, m))
        if len(words) > 32:
            raise rule_error(
                "ITEM_SPEC",
                f"raw pattern needs {len(words)} field-vector words; at most 32",
                item.index,
            )
        return Match(
            ptypes=frozenset((res.ptype,)),
            tunnel_flag=None,
            words=tuple(words),
            markers=res.markers,
            raw=True,
        )


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


__all__ = [
    "Capacity",
    "Engine",
    "Frame",
    "Match",
    "MatchCompiler",
    "RuleError",
    "Verdict",
]

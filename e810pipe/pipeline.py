"""The receive pipeline: parser, then Switch, ACL, Flow Director and RSS, then a decision.

Each stage is its own module; this one composes them. It owns the rules (which
engine took each one, their ids and counters), applies testpmd-style commands,
and turns the blocks' verdicts into one :class:`Decision` per packet:

- The switch always picks the VSI (MAC rules, the default MAC rule to the PF VSI,
  advanced rules); it may also drop or pick a queue or queue group.
- Queue precedence: a switch queue beats a Flow Director queue, which beats RSS
  (kernel ``tc-queue-filters.rst``). Where an ACL queue ranks, and whether a drop
  from any block wins, are configurable (:class:`PipelineConfig`); the facts leave
  both UNCONFIRMED.
- Every packet ends in exactly one queue or is dropped with a reason; the counters
  always sum to the packets processed.

Decisions are cached per flow, as Open vSwitch's megaflow cache does: the key is the
parse result (PTYPE, flags and protocol offsets: one cached object per parse path)
plus the packet bytes that decide the rest, which are the field-vector words the
loaded rules read (:meth:`Engine.words_read`) and the RSS hash input
(:meth:`RssStage.input_ranges`). A packet whose key was seen gets the same
:class:`Decision` object without running the blocks; the counters are still counted
per packet. The cache is dropped whenever rules or configuration change through the
pipeline, the controller or the RSS stage; code that changes ``device`` or
``config`` directly must call :meth:`Pipeline.invalidate`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, NamedTuple

from .acl import Acl
from .device import Device, Vsi
from .engine import Engine, Frame, Match, MatchCompiler, Verdict
from .errors import E810PipeError, RuleError, UsageError
from .fdir import FlowDirector
from .package import Package
from .parser import DEFAULT_WINDOW, Parser, ParseResult
from .rss import DEFAULT_KEY, RssStage
from .rules import FlowRule, rule_error
from .switch import Switch

ENGINE_ORDER = ("fd", "switch", "acl")  # non-pipeline mode: the first that takes it
# Errors an engine gives after it has parsed the rule: it is the engine for this rule
# but has no room or a conflicting profile (RTE_FLOW_ERROR_TYPE_UNSPECIFIED, _HANDLE).
CREATE_ERRORS = (1, 2)
# Flow (decision) cache: cached decisions in all, and parse results keyed, before the
# cache starts again from empty. Each cached decision costs about 1 KiB.
FLOW_CACHE_SIZE = 1 << 16
FLOW_PLANS_SIZE = 1 << 14


@dataclass
class PipelineConfig:
    """Behaviour the facts leave open, with the defaults e810pipe uses.

    Attributes:
        pipeline_mode: ice's ``pipeline-mode-support=1``: priority 0 rules go to the
            switch (permission stage), others to Flow Director (distribution stage).
            Off: each rule goes to the first engine that takes it, FD first.
        drop_wins: a drop from any block beats every queue decision ("drop is
            sticky"). Off: a drop competes by queue priority like a queue action.
        acl_queue_rank: where an ACL queue ranks: "above_switch", "above_fd"
            (between the switch and FD; the default) or "below_fd".
    """

    pipeline_mode: bool = False
    drop_wins: bool = True
    acl_queue_rank: str = "above_fd"

    def __post_init__(self) -> None:
        if self.acl_queue_rank not in ("above_switch", "above_fd", "below_fd"):
            raise UsageError(
                "acl_queue_rank must be above_switch, above_fd or below_fd, "
                f"not {self.acl_queue_rank!r}"
            )


class Decision(NamedTuple):
    """Where one packet went, and why."""

    ptype: int
    vsi: int | None
    vsi_name: str | None
    queue: int | None  # absolute queue on the device
    vsi_queue: int | None  # queue within its VSI
    drop: bool
    drop_reason: str | None
    mark: int | None
    rss_hash: int
    hits: tuple[tuple[str, int], ...]  # (block, rule id)
    verdicts: tuple[Verdict, ...]
    parse: ParseResult
    reason: str  # which block chose the queue, or why the packet was dropped

    def to_json(self, index: int) -> dict:
        return {
            "index": index,
            "ptype": self.ptype,
            "vsi": self.vsi,
            "queue": self.queue,
            "drop": self.drop,
            "drop_reason": self.drop_reason,
            "mark": self.mark,
            "rss_hash": self.rss_hash,
            "hits": [{"block": b, "rule": r} for b, r in self.hits],
        }


@dataclass
class RuleEntry:
    rule_id: int
    engine: str
    rule: FlowRule
    match: Match
    hits: int = 0
    bytes: int = 0


@dataclass
class Counters:
    packets: int = 0
    per_queue: Counter = field(default_factory=Counter)
    per_vsi: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    per_rule: Counter = field(default_factory=Counter)
    per_ptype: Counter = field(default_factory=Counter)

    def merge(self, other: Counters) -> None:
        self.packets += other.packets
        for name in ("per_queue", "per_vsi", "drops", "per_rule", "per_ptype"):
            getattr(self, name).update(getattr(other, name))

    @property
    def accounted(self) -> int:
        return sum(self.per_queue.values()) + sum(self.drops.values())


class Pipeline:
    """A device, its loaded package and rules, and the per-packet decision."""

    def __init__(
        self,
        package: Package,
        device: Device | None = None,
        *,
        ports: dict[str, set[int]] | None = None,
        dvm: bool = False,
        window: int | None = None,
        config: PipelineConfig | None = None,
        rss: RssStage | None = None,
    ) -> None:
        self.package = package
        self.device = device or Device.build()
        self.config = config or PipelineConfig()
        self.ports: dict[str, set[int]] = {k: set(v) for k, v in (ports or {}).items()}
        self.dvm = dvm
        self.window = window
        self.parser = self._build_parser()
        self.compiler = MatchCompiler(self.parser)
        names = {v: k for k, v in package.proto_ids.items()}
        self.switch = Switch(self.device, proto_ids=package.proto_ids)
        self.acl = Acl(self.device, proto_names=names)
        self.fd = FlowDirector(self.device, catalog=self.compiler.catalog)
        self.engines: dict[str, Engine] = {"switch": self.switch, "acl": self.acl, "fd": self.fd}
        self.rss = rss or RssStage(DEFAULT_KEY)
        self.rules: dict[int, RuleEntry] = {}  # rule ids are unique across ports
        self._next_id = 0
        self._per_engine: Counter = Counter()
        self.counters = Counters()
        # flow cache: id(parse result) -> _FlowTable; see the module docstring
        self._flow_cache = True
        self._flows: dict[int, _FlowTable] = {}
        self._cached = 0
        self._rss_seen: tuple[RssStage, int] = (self.rss, self.rss.version)

    # ------------------------------------------------------------ configuration

    def _build_parser(self) -> Parser:
        return Parser.load(
            package=self.package,
            ports=self.ports,
            dvm=self.dvm,
            window=self.window if self.window is not None else DEFAULT_WINDOW,
        )

    def set_tunnel_port(self, kind: str, port: int, add: bool = True) -> None:
        """`port config N udp_tunnel_port add|rm KIND PORT`."""
        table = kind.replace("-", "_")
        if table not in self.package.udp_tunnels:
            raise UsageError(
                f"unknown UDP tunnel type '{kind}'; the package has "
                f"{', '.join(self.package.udp_tunnels)}"
            )
        if not 0 < port < 65536:
            raise UsageError(f"UDP port {port} is outside 1..65535")
        ports = self.ports.setdefault(table, set())
        if add:
            ports.add(port)
        else:
            ports.discard(port)
        self.parser = self._build_parser()
        self.compiler.parser = self.parser
        self.invalidate()

    def pf_vsi(self, port: int) -> Vsi:
        if not 0 <= port < len(self.device.pfs):
            raise rule_error(
                "UNSPECIFIED", f"no port {port}: the device has {len(self.device.pfs)} PF(s)"
            )
        return self.device.pfs[port].vsi

    # ------------------------------------------------------------------ rules

    def compile(self, rule: FlowRule, engine: str) -> Match:
        return self.compiler.compile(rule, exact=(engine == "fd"))

    def choose_engine(self, rule: FlowRule) -> tuple[str, Match]:
        """The engine that takes `rule`, as ice does, or the RuleError why none does."""
        self.pf_vsi(rule.port)
        rule = self.compiler.normalize(rule)
        if self.config.pipeline_mode:
            order: Iterable[str] = ("switch",) if rule.priority == 0 else ("fd",)
        else:
            order = ENGINE_ORDER
        errors: list[tuple[str, RuleError]] = []
        for name in order:
            try:
                match = self.compile(rule, name)
                self.engines[name].validate(rule, match)
            except RuleError as err:
                if err.type_code in CREATE_ERRORS:
                    # The engine understood the rule but cannot install it (no space,
                    # input-set conflict, duplicate): ice does not try another engine.
                    raise RuleError(
                        f"{name}: {err.message}", err.category, err.type_code, err.index
                    ) from None
                errors.append((name, err))
                continue
            return name, match
        first = errors[0][1]
        if len(errors) == 1:
            raise first
        detail = "; ".join(f"{n}: {e.message}" for n, e in errors)
        raise RuleError(
            f"no engine takes this rule ({detail})", first.category, first.type_code, first.index
        )

    def validate(self, rule: FlowRule) -> str:
        return self.choose_engine(rule)[0]

    def create(self, rule: FlowRule) -> int:
        rule = self.compiler.normalize(rule)
        name, match = self.choose_engine(rule)
        rid = self._next_id
        self.engines[name].add(rid, rule, match)
        self._next_id += 1
        self.rules[rid] = RuleEntry(rid, name, rule, match)
        self._per_engine[name] += 1
        self.invalidate()
        return rid

    def destroy(self, port: int, rid: int) -> bool:
        entry = self.rules.get(rid)
        if entry is None or entry.rule.port != port:
            return False
        del self.rules[rid]
        self.engines[entry.engine].remove(rid)
        self._per_engine[entry.engine] -= 1
        self.invalidate()
        return True

    def flush(self, port: int) -> int:
        ids = [rid for rid, e in self.rules.items() if e.rule.port == port]
        for rid in ids:
            self.destroy(port, rid)
        return len(ids)

    def rule(self, port: int, rid: int) -> RuleEntry | None:
        entry = self.rules.get(rid)
        return entry if entry is not None and entry.rule.port == port else None

    def port_rules(self, port: int) -> list[RuleEntry]:
        return [e for _, e in sorted(self.rules.items()) if e.rule.port == port]

    # ---------------------------------------------------------------- packets

    @property
    def flow_cache(self) -> bool:
        """Whether decisions are cached per flow (on by default; off: every packet runs
        every block, for comparisons)."""
        return self._flow_cache

    @flow_cache.setter
    def flow_cache(self, on: bool) -> None:
        self._flow_cache = on
        self.invalidate()

    def invalidate(self) -> None:
        """Forget every cached decision (call after changing `device` or `config`)."""
        self._flows = {}
        self._cached = 0
        self._rss_seen = (self.rss, self.rss.version)

    def process(self, data: bytes) -> Decision:
        res = self.parser.parse(data)
        rss, version = self._rss_seen
        if rss is not self.rss or version != rss.version:
            self.invalidate()
        table = self._flows.get(id(res))
        if table is None or table.res is not res:
            table = self._flow_table(res)
        get = table.key
        key = get(data) if get is not None else None
        flow = table.flows.get(key)
        if flow is None:
            flow = self._decide(data, res)
            if get is not None:
                table.flows[key] = flow
                self._cached += 1
                if self._cached >= FLOW_CACHE_SIZE:
                    self.invalidate()
        dec, rule_keys, entries, drop_reason, queue, vsi_name = flow
        c = self.counters
        c.packets += 1
        c.per_ptype[res.ptype] += 1
        if rule_keys:
            per_rule = c.per_rule
            n = len(data)
            for k in rule_keys:
                per_rule[k] += 1
            for e in entries:
                e.hits += 1
                e.bytes += n
        if drop_reason is not None:
            c.drops[drop_reason] += 1
        else:
            c.per_queue[queue] += 1
            c.per_vsi[vsi_name] += 1
        return dec

    def _flow_table(self, res: ParseResult) -> _FlowTable:
        """The flow table of one parse result: which bytes key its decisions."""
        if len(self._flows) >= FLOW_PLANS_SIZE:
            self.invalidate()
        spans = self._read_spans(res) if self._flow_cache else None
        get: Callable[[bytes], Any] | None = None
        if spans is not None:
            get = itemgetter(*(slice(a, b) for a, b in spans)) if spans else _no_key
        table = _FlowTable(res, get, {})
        self._flows[id(res)] = table
        return table

    def _read_spans(self, res: ParseResult) -> list[tuple[int, int]] | None:
        """Merged byte ranges a decision for packets parsed as `res` depends on, or
        None if an engine cannot say (then its packets are not cached)."""
        po = dict(res.po)
        spans: list[tuple[int, int]] = []
        active = (
            (self.switch, True),
            (self.acl, self.acl_has_rules),
            (self.fd, self.fd_has_rules),
        )
        for engine, on in active:
            if not on:
                continue
            words = engine.words_read(res.ptype)
            if words is None:
                return None
            for pid, off in words:
                base = po.get(pid)
                if base is not None:
                    spans.append((base + off, base + off + 2))
        spans.extend(self.rss.input_ranges(po, res.flags))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return merged

    def _decide(self, data: bytes, res: ParseResult) -> _Flow:
        frame = Frame(data, res)
        verdicts: list[Verdict] = []
        hits: list[tuple[str, int]] = []

        sw = self.switch.lookup(frame)
        verdicts.append(sw)
        if sw.rule is not None:
            hits.append(("switch", sw.rule))
        vsi_no = sw.vsi
        vsi = self.device.vsi(vsi_no) if vsi_no is not None else None

        acl = self.acl.lookup(frame) if self.acl_has_rules else None
        if acl is not None:
            verdicts.append(acl)
            hits.append(("acl", acl.rule))  # type: ignore[arg-type]
        # FD rules apply to their port's VSI only
        fd = self.fd.lookup(frame, vsi=vsi_no) if self.fd_has_rules else None
        if fd is not None:
            verdicts.append(fd)
            hits.append(("fd", fd.rule))  # type: ignore[arg-type]

        rss_hash = self.rss.hash(data, frame.po, res.flags)
        if vsi is not None:
            verdicts.append(Verdict("rss", note=f"hash {rss_hash:#010x}"))

        # drops
        drop_reason: str | None = None
        if sw.action == "drop":
            drop_reason = sw.note or "switch: drop"
        elif acl is not None and acl.action == "drop" and self.config.drop_wins:
            drop_reason = f"acl rule {acl.rule}: drop"
        elif fd is not None and fd.action == "drop" and self.config.drop_wins:
            drop_reason = f"fd rule {fd.rule}: drop"
        if vsi is None and drop_reason is None:
            drop_reason = "no VSI: no switch rule matched"

        queue: int | None = None
        reason = ""
        mark = fd.mark if fd is not None else None
        if drop_reason is None and vsi is not None:
            queue, reason, drop_reason = self._queue(sw, acl, fd, vsi, rss_hash)

        rule_keys = tuple(hits)
        entries = tuple(self._hit_entries(rule_keys))
        if drop_reason is not None:
            dec = Decision(
                res.ptype,
                vsi_no,
                vsi.name if vsi else None,
                None,
                None,
                True,
                drop_reason,
                mark,
                rss_hash,
                rule_keys,
                tuple(verdicts),
                res,
                drop_reason,
            )
            return (dec, rule_keys, entries, drop_reason, None, None)
        assert vsi is not None and queue is not None
        absolute = vsi.absolute(queue)
        dec = Decision(
            res.ptype,
            vsi.number,
            vsi.name,
            absolute,
            queue,
            False,
            None,
            mark,
            rss_hash,
            rule_keys,
            tuple(verdicts),
            res,
            reason,
        )
        return (dec, rule_keys, entries, None, absolute, vsi.name)

    @property
    def acl_has_rules(self) -> bool:
        return self._per_engine["acl"] > 0

    @property
    def fd_has_rules(self) -> bool:
        return self._per_engine["fd"] > 0

    def _queue(
        self, sw: Verdict, acl: Verdict | None, fd: Verdict | None, vsi: Vsi, rss_hash: int
    ) -> tuple[int | None, str, str | None]:
        """Pick the queue by precedence; returns (relative queue, reason, drop reason)."""
        ranked: list[tuple[str, Verdict]] = []
        if sw.action in ("to_queue", "to_qgroup"):
            ranked.append(("switch", sw))
        acl_q = acl is not None and acl.action == "to_queue"
        if acl_q and self.config.acl_queue_rank == "above_switch":
            ranked.insert(0, ("acl", acl))  # type: ignore[arg-type]
        elif acl_q and self.config.acl_queue_rank == "above_fd":
            ranked.append(("acl", acl))  # type: ignore[arg-type]
        if fd is not None and fd.action in ("to_queue", "to_qgroup", "drop"):
            ranked.append(("fd", fd))
        if acl_q and self.config.acl_queue_rank == "below_fd":
            ranked.append(("acl", acl))  # type: ignore[arg-type]
        if not self.config.drop_wins and acl is not None and acl.action == "drop":
            ranked.append(("acl", acl))
        for block, v in ranked:
            if v.action == "drop":
                return None, "", f"{block} rule {v.rule}: drop"
            if v.action == "to_queue" and v.queue is not None:
                return v.queue, f"{block} rule {v.rule}: queue {v.queue}", None
            if v.action == "to_qgroup" and v.qgroup is not None:
                first, size = v.qgroup
                q = first + (rss_hash & (size - 1))
                return q, f"{block} rule {v.rule}: queue group {first}..{first + size - 1}", None
        lut = self.rss.lut(vsi.number, vsi.kind, vsi.num_queues)
        q = lut.queue_for(rss_hash)
        return q, f"rss: hash {rss_hash:#010x} -> LUT[{rss_hash & (lut.size - 1)}] = {q}", None

    def _hit_entries(self, hits: tuple[tuple[str, int], ...]) -> Iterable[RuleEntry]:
        for block, rid in hits:
            entry = self.rules.get(rid)
            if entry is not None and entry.engine == block:
                yield entry

    def run(self, packets: Iterable[bytes]) -> Iterable[Decision]:
        for data in packets:
            yield self.process(data)


class _FlowTable(NamedTuple):
    """The cached decisions of one parse result, keyed by the bytes they depend on."""

    res: ParseResult
    key: Callable[[bytes], Any] | None  # None: not cacheable
    flows: dict[Any, _Flow]


# (decision, rule hits to count, their entries, drop reason, absolute queue, VSI name)
_Flow = tuple[
    Decision, tuple[tuple[str, int], ...], tuple[RuleEntry, ...], str | None, int | None, str | None
]


def _no_key(data: bytes) -> None:
    return None


__all__ = ["Decision", "E810PipeError", "Pipeline", "PipelineConfig"]

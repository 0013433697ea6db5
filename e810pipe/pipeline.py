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
per packet. The cache is bounded (FLOW_CACHE_SIZE decisions, about 1.3 KiB each, and
FLOW_PLANS_SIZE parse results) and evicts gradually, in two generations: when the
young generation is half full it becomes the old one and the old one is dropped; a
hit in the old generation moves the entry back to the young one. So memory stays
flat over any number of distinct flows, and flows still in use stay cached.
The cache is dropped whenever rules or configuration change through the
pipeline, the controller or the RSS stage; code that changes ``device`` or
``config`` directly must call :meth:`Pipeline.invalidate`.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from operator import itemgetter
from typing import Any, NamedTuple

from .acl import MAX_ACL_NORMAL_ENTRIES, Acl, ice_acl_parse
from .device import Device, Vsi
from .engine import Engine, Frame, Match, MatchCompiler, Verdict
from .errors import E810PipeError, RuleError, UsageError
from .fdir import FlowDirector
from .hash import EMPTY_MATCH, HashEngine
from .ice_fdir_frag import FRAG_PTYPES, fd_view, switch_view
from .ice_flow_ptypes import PTYPE_GROUPS
from .ice_patterns import FDIR_PATTERNS, SWITCH_PERM_PATTERNS, search_pattern
from .package import Package
from .parser import DEFAULT_WINDOW, Parser, ParseResult
from .rss import DEFAULT_KEY, RssStage
from .rules import FlowRule, rule_error
from .switch import Switch

# ice_flow_process_filter (ice_generic_flow.c): the hash engine first, then ACL, the
# switch and Flow Director; the first whose parser and create both succeed takes the
# rule, and a failure leaves the last engine's error (rte_flow_error is overwritten).
ENGINE_ORDER = ("acl", "switch", "fd")
FALLBACK_ORDER = ("fd", "switch", "acl")  # PipelineConfig(placement="fallback")
# Flow (decision) cache bounds: cached decisions in both generations (each costs about
# 1.3 KiB with its share of the tables, measured with tracemalloc), and parse results.
FLOW_CACHE_SIZE = 1 << 15
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
        placement: "ice" (the default): rules go to engines as
            ``ice_flow_process_filter`` sends them: the hash engine, then the ACL (only
            what ``ice_acl_parse`` takes: eth/ipv4 with udp, tcp or sctp, masked fields
            without an all-ones mask, priority 0, drop or queue), the switch, Flow
            Director. "fallback": e810pipe's extension for the ACL's own TCAM: Flow
            Director, then the switch, then the ACL for whatever they refuse (port
            ranges, priorities 2 and up, exact values on other headers).
    """

    pipeline_mode: bool = False
    drop_wins: bool = True
    acl_queue_rank: str = "above_fd"
    placement: str = "ice"

    def __post_init__(self) -> None:
        if self.placement not in ("ice", "fallback"):
            raise UsageError(f"placement must be ice or fallback, not {self.placement!r}")
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
    hashed: bool = True  # False: no RSS profile hashed the packet (rss_hash is 0)

    def to_json(self, index: int) -> dict:
        return {
            "index": index,
            "ptype": self.ptype,
            "vsi": self.vsi,
            "queue": self.queue,
            "drop": self.drop,
            "drop_reason": self.drop_reason,
            "mark": self.mark,
            "rss_hash": self.rss_hash if self.hashed else None,
            "hits": [{"block": b, "rule": r} for b, r in self.hits],
        }


@dataclass
class RuleEntry:
    """An installed rule. ``rule_id`` is testpmd's number for it on its port;
    ``handle`` (``port << 32 | rule_id``) names it to the engines, unique device-wide."""

    rule_id: int
    engine: str
    rule: FlowRule
    match: Match
    hits: int = 0
    bytes: int = 0
    port: int = 0

    @property
    def handle(self) -> int:
        return self.port << 32 | self.rule_id


@dataclass(frozen=True)
class PortBinding:
    """What an ethdev port is on the device: a PF's own VSI, a VF's, or a DCF's.

    ``kind`` is "pf", "vf" (iavf: rules act on the VF's VSI) or "dcf" (a trusted VF
    whose switch and ACL rules act for the whole PF; ice_dcf_ethdev.c).
    """

    number: int
    vsi: int
    pf: int
    kind: str = "pf"
    backer: int | None = None  # a representor's DCF port (rte_eth_dev_data backer_port_id)


RULE_ID_BITS = 32


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
        self.switch.drop_wins = self.config.drop_wins
        self.acl = Acl(self.device, proto_names=names)
        self.fd = FlowDirector(self.device, catalog=self.compiler.catalog)
        self.hash = HashEngine(
            self._own_rss,
            self._rule_vsi,
            lambda items: self.compiler.pattern_ptypes(items, exact=False),
            lambda item: self.compiler.compile_raw(item),
            lambda rule: self.port_binding(rule.extra.get("eth_port", rule.port)).kind,
        )
        self.engines: dict[str, Engine] = {
            "hash": self.hash,
            "switch": self.switch,
            "acl": self.acl,
            "fd": self.fd,
        }
        self.rules: dict[int, RuleEntry] = {}  # by handle (port << 32 | testpmd rule id)
        self._per_engine: Counter = Counter()
        self._order: dict[int, list[int]] = {}  # port -> rule ids in order of creation
        self._newest: dict[int, int] = {}  # port -> id of its newest rule
        self.counters = Counters()
        # flow cache: per ingress PF, id(parse result) -> _FlowTable; see the module docstring
        self._flow_cache = True
        self._port_flows: list[dict[int, _FlowTable]] = [{} for _ in self.device.pfs]
        self._port_old: list[dict[int, _FlowTable]] = [{} for _ in self.device.pfs]
        self._flows = self._port_flows[0]
        self._young: dict[tuple[int, Any], _Flow] = {}  # (table id, key) -> decision
        self._old: dict[tuple[int, Any], _Flow] = {}
        self._cached = 0  # decisions in the young generation
        self._plans = 0  # flow tables in the young generation (all ports)
        self._next_table = 0
        # RSS: one stage per PF VSI (each port has its own key, types and tables);
        # other VSIs use their PF's unless given their own (set_rss)
        self._rss_stages: dict[int, RssStage] = {}
        first = rss or RssStage(DEFAULT_KEY)
        for pf in self.device.pfs:
            self.set_rss(pf.vsi.number, first if pf.number == 0 else first.copy())
        # ethdev ports: one per PF unless set_ports says otherwise
        self.eth_ports: list[PortBinding] = []
        self.set_ports([PortBinding(pf.number, pf.vsi.number, pf.number) for pf in self.device.pfs])

    @classmethod
    def load(
        cls,
        profiles: Iterable[str] = ("os-default",),
        rules: Iterable[str] = (),
        cmds: Iterable[str] = (),
        *,
        device: Device | None = None,
        ports: dict[str, Iterable[int]] | None = None,
        dvm: bool = False,
        window: int | None = None,
    ) -> Pipeline:
        """A pipeline as the command line builds it: a profile stack (stock names and
        user profile paths, ``["comms", "my.ddp"]``), then rules files (testpmd text or
        YAML, as ``--rules``) and testpmd commands (as ``--cmd``), applied in order."""
        from .control import apply_tables, build_pipeline, read_setup
        from .package import load_package
        from .resources import stock_profile_names

        stock = stock_profile_names()
        refs = list(profiles)
        if not any(r in stock for r in refs):
            refs.insert(0, "os-default")
        package = load_package(refs)
        setup = read_setup(list(rules), (), package.protocols)
        if device is not None:
            setup.device = device
        for kind, nums in (ports or {}).items():
            setup.ports.setdefault(kind.replace("-", "_"), set()).update(nums)
        setup.dvm = setup.dvm or dvm
        pipe = build_pipeline(package, setup, window)
        pipe.apply_all(setup.commands)
        apply_tables(pipe, setup)
        for text in cmds:
            pipe.apply(text)
        return pipe

    def apply(self, text: str, where: str = "<apply>") -> list[str]:
        """Apply testpmd commands (one or more lines) as testpmd would, or kernel
        ``ethtool -N`` ntuple commands as the ice driver would; the answers ("Flow rule
        #0 created (fd)", "Added rule with ID 15359"). A rejected command raises a
        RuleError."""
        from .ethtool import parse_text

        cmds = parse_text(text, where, self.package.protocols)
        return self.apply_all([(c, {}) for c in cmds])

    def apply_all(self, commands: Iterable[tuple[Any, dict[str, Any]]]) -> list[str]:
        from .control import Controller

        return Controller(self).apply_all(commands)

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

    def set_ports(self, ports: list[PortBinding]) -> None:
        """Say what each ethdev port is (a PF, a VF or a DCF port); port N is ports[N]."""
        self.eth_ports = list(ports)
        self._ingress = [self.device.vsi(b.vsi).pf for b in self.eth_ports]
        self.invalidate()

    def port_binding(self, port: int) -> PortBinding:
        if not 0 <= port < len(self.eth_ports):
            raise rule_error(
                "UNSPECIFIED", f"no port {port}: the device has {len(self.eth_ports)} port(s)"
            )
        return self.eth_ports[port]

    def pf_vsi(self, port: int) -> Vsi:
        """The VSI of ethdev port `port` (a PF's own VSI, or a VF's)."""
        return self.device.vsi(self.port_binding(port).vsi)

    # ------------------------------------------------------------------ RSS

    @property
    def rss(self) -> RssStage:
        """Port 0's RSS stage (PF 0's VSI)."""
        return self.rss_for(self.device.pfs[0].vsi.number)

    @rss.setter
    def rss(self, stage: RssStage) -> None:
        self.set_rss(self.device.pfs[0].vsi.number, stage)

    def rss_for(self, vsi: int) -> RssStage:
        """The RSS stage hashing packets for VSI `vsi` (its own, else its PF's)."""
        stage = self._rss_stages.get(vsi)
        if stage is None:
            stage = self._rss_stages[self.device.pfs[self.device.vsi(vsi).pf].vsi.number]
        return stage

    def _own_rss(self, vsi: int) -> RssStage:
        """VSI `vsi`'s own RSS stage (a copy of its PF's the first time)."""
        if vsi not in self._rss_stages:
            self.set_rss(vsi, self.rss_for(vsi).copy())
        return self._rss_stages[vsi]

    def _rule_vsi(self, rule: FlowRule) -> int:
        """The VSI a bound rule acts on: its VF's or DCF's, else its PF's main VSI."""
        vsi = rule.extra.get("vsi")
        return int(vsi) if vsi is not None else self.device.pfs[rule.port].vsi.number

    def set_rss(self, vsi: int, stage: RssStage) -> None:
        old = self._rss_stages.get(vsi)
        if old is not None and self.invalidate in old.listeners:
            old.listeners.remove(self.invalidate)
        self._rss_stages[vsi] = stage
        if self.invalidate not in stage.listeners:
            stage.listeners.append(self.invalidate)
        self.invalidate()

    # ------------------------------------------------------------------ rules

    def compile(self, rule: FlowRule, engine: str) -> Match:
        if engine == "switch":
            return self.compiler.compile(switch_view(rule))  # no fragment bits
        if engine != "fd":
            return self.compiler.compile(rule)
        # Flow Director reads a fragment rule as ice_fdir_parse_pattern does: the
        # fragment flow type's PTYPEs and input set (ice_fdir_frag.fd_view)
        vsi = rule.extra.get("vsi")
        view = fd_view(rule, iavf=vsi is not None and self.device.vsi(vsi).kind == "vf")
        match = self.compiler.compile(view, exact=True, flow=True)
        frag = view.extra.get("ice_frag")
        return match if frag is None else replace(match, ptypes=FRAG_PTYPES[frag])

    def bind(self, rule: FlowRule) -> FlowRule:
        """The rule as the engines see it: ``port`` the PF it acts on, ``extra["vsi"]``
        the VSI of a VF or DCF port."""
        b = self.port_binding(rule.port)
        if b.kind == "pf" and b.pf == rule.port:
            return rule
        extra: dict[str, Any] = {**rule.extra, "vsi": b.vsi, "eth_port": rule.port}
        actions = rule.actions
        if b.kind == "dcf":
            # ice_switch_dcf_action_check: represented_port names a representor whose
            # backer is this DCF port (its representor_id is the VF, the vsi_handle);
            # port_representor names the DCF port itself (vsi_handle 0: the DCF's VF)
            kept = []
            for a in actions:
                if a.type in ("represented_port", "port_representor"):
                    n = a.queue if a.queue is not None else -1
                    target = self.eth_ports[n] if 0 <= n < len(self.eth_ports) else None
                    if target is None or (
                        n != rule.port
                        if a.type == "port_representor"
                        else target.kind != "repr" or target.backer != rule.port
                    ):
                        raise rule_error("ACTION", "Invalid port ID", a.index)
                    extra["to_vsi"] = target.vsi
                else:
                    kept.append(a)
            actions = tuple(kept)
        return replace(rule, port=b.pf, actions=actions, extra=extra)

    def choose_engine(self, rule: FlowRule) -> tuple[str, Match]:
        """The engine that takes `rule`, as ice does, or the RuleError why none does."""
        name, match, _ = self._choose(rule)
        return name, match

    def _choose(
        self, rule: FlowRule, engines: tuple[str, ...] | None = None
    ) -> tuple[str, Match, FlowRule]:
        """choose_engine, and the bound rule as that engine's parser reads it.

        `engines`: the engines a front end allows, in order (an ethtool ntuple rule is
        a Flow Director filter: ice_add_fdir_ethtool); None: ice's placement."""
        self.pf_vsi(rule.port)
        rule = self.bind(self.compiler.normalize(rule))
        kind = self.port_binding(rule.extra.get("eth_port", rule.port)).kind
        ice = self.config.placement == "ice" or self.config.pipeline_mode
        if self.config.pipeline_mode:
            # DPDK 23.07's ice_flow_process_filter with pipeline-mode-support=1: priority 0
            # goes to the permission stage (the switch's ice_switch_pattern_perm_list),
            # any other priority to the distributor stage (ACL, Flow Director)
            order: tuple[str, ...] = ("switch",) if rule.priority == 0 else ("acl", "fd")
        elif self.config.placement == "fallback":
            order = FALLBACK_ORDER
        else:
            order = ENGINE_ORDER
        if engines is not None:
            order = engines
        # Each engine's error, without its traceback: the traceback holds this frame,
        # which holds the list (a cycle that only the collector frees, and loading
        # pauses the collector)
        errors: list[tuple[str, RuleError | None]] = []
        # ice_flow_process_filter always tries the hash engine first (ice_hash_parser).
        # It takes RSS actions only (ice_hash_parse_action: "Invalid action."), so a
        # rule with none or another action is refused: what it says is worked out
        # only if no other engine takes the rule (16K FD rules need no hash error).
        acts = [a.type for a in rule.actions if a.type not in ("void", "end")]
        if engines is not None:
            errors.append(("hash", None))  # not an engine the front end allows
        elif acts and all(t == "rss" for t in acts):
            try:
                self.hash.validate(rule, EMPTY_MATCH)
            except RuleError as err:
                errors.append(("hash", err.with_traceback(None)))
            else:
                return "hash", EMPTY_MATCH, rule
        else:
            errors.append(("hash", None))
        for name in order:
            engine_rule = rule
            try:
                if ice:
                    if name in _NO_ENGINE.get(kind, ()):
                        continue
                    if name in _DISABLED_ENGINES.get(kind, ()):
                        # ice_parse_engine_create: disabled_engine_mask
                        raise rule_error("UNSPECIFIED", "engine is not enabled.")
                    self._ice_parser_check(name, rule, kind)
                if name == "switch":
                    engine_rule, only, minus = _switch_view(rule)
                    match = self.compile(engine_rule, name)
                    if minus and match.ptypes & minus:
                        match = replace(match, ptypes=match.ptypes - minus)
                    if only is not None:
                        match = replace(match, ptypes=match.ptypes & only)
                        if not match.ptypes:
                            # ice_pattern_is_supported: the package has no such PTYPE
                            raise rule_error("ITEM", "Unsupported pattern", 0)
                else:
                    match = self.compile(rule, name)
                if name == "acl":
                    self.acl.ice_slots = MAX_ACL_NORMAL_ENTRIES if ice else None
                if self.config.pipeline_mode:
                    _pipeline_pattern_check(name, rule, kind)
                self.engines[name].validate(engine_rule, match)
            except RuleError as err:
                errors.append((name, err.with_traceback(None)))
                continue
            return name, match, engine_rule
        if errors[0][1] is None and engines is None:
            try:
                self.hash.validate(rule, EMPTY_MATCH)
            except RuleError as err:
                errors[0] = ("hash", err.with_traceback(None))
            else:  # pragma: no cover - ice_hash_parse_action refuses such actions
                return "hash", EMPTY_MATCH, rule
        said = [(n, e) for n, e in errors if e is not None]
        if not said:
            raise rule_error("UNSPECIFIED", f"no engine of {', '.join(order)} on this port")
        last = said[-1][1]
        if len(said) > 1:
            # what each engine said, for traces and `flow validate`; testpmd shows the last
            last.notes = tuple(f"{n}: {e.message}" for n, e in said)
        raise last

    def _ice_parser_check(self, name: str, rule: FlowRule, kind: str) -> None:
        """What each ice parser checks before the engine's own model: the attributes
        (ci_flow_check_attr), ACL's pattern and masks (ice_acl_parse), and the actions a
        DCF port's switch rule may have (ice_switch_parse_pattern_action's dcf_param:
        represented_port, port_representor, drop; the first two are bound already)."""
        if name == "switch" and kind == "dcf":
            for a in rule.actions:
                if a.type not in ("drop", "void", "end"):
                    raise rule_error("ACTION", "Unsupported action", a.index)
        if name == "switch" and _switch_input_set_bytes(rule) > MAX_INPUT_SET_BYTE:
            # ice_switch_parse_pattern's "too much input set", which
            # ice_switch_parse_pattern_action reports as "Invalid input set"
            raise rule_error("ITEM_SPEC", "Invalid input set", 0)
        if self.config.pipeline_mode:
            # DPDK 23.07's ice_flow_valid_attr: no priority limit in pipeline mode
            if rule.group:
                raise rule_error("ATTR_GROUP", "Group not supported")
        else:
            _ice_attr_check(name, rule)
        if name == "acl":
            ice_acl_parse(rule)

    def validate(self, rule: FlowRule) -> str:
        return self.choose_engine(rule)[0]

    def next_rule_id(self, port: int) -> int:
        """testpmd's id for the next rule of `port`: one more than the newest rule's
        (port_flow_create in app/test-pmd/config.c), 0 on an empty list, so ids are
        reused after the newest rules are destroyed or the port is flushed."""
        newest = self._newest.get(port)
        return 0 if newest is None else newest + 1

    def create(
        self,
        rule: FlowRule,
        rule_id: int | None = None,
        engines: tuple[str, ...] | None = None,
    ) -> int:
        """Install `rule`; returns testpmd's rule id on its port.

        A front end with its own numbering gives `rule_id` (a free one: ethtool's
        location), and may limit the engines (see `_choose`)."""
        rule = self.compiler.normalize(rule)
        name, match, engine_rule = self._choose(rule, engines)
        port = rule.port
        rid = self.next_rule_id(port) if rule_id is None else rule_id
        if rule_id is not None and self.rule(port, rid) is not None:
            raise rule_error("HANDLE", f"rule ID {rid} is in use")
        if rid >> RULE_ID_BITS:
            raise rule_error("HANDLE", "Highest rule ID is already assigned, delete it first")
        entry = RuleEntry(rid, name, self.bind(rule), match, port=port)
        self.engines[name].add(entry.handle, engine_rule, match)
        self.rules[entry.handle] = entry
        order = self._order.setdefault(port, [])
        if rule_id is None or not order or rid > order[-1]:
            order.append(rid)
        else:
            bisect.insort(order, rid)  # kept in id order: the newest is the highest
        self._newest[port] = order[-1]
        self._per_engine[name] += 1
        self.invalidate()
        return rid

    def destroy(self, port: int, rid: int) -> bool:
        entry = self.rule(port, rid)
        if entry is None:
            return False
        del self.rules[entry.handle]
        self.engines[entry.engine].remove(entry.handle)
        self._per_engine[entry.engine] -= 1
        order = self._order[port]
        order.remove(rid)
        if order:
            self._newest[port] = order[-1]
        else:
            self._newest.pop(port, None)
        self.invalidate()
        return True

    def flush(self, port: int) -> int:
        ids = [e.rule_id for e in self.port_rules(port)]
        for rid in reversed(ids):
            self.destroy(port, rid)
        return len(ids)

    def rule(self, port: int, rid: int) -> RuleEntry | None:
        if not 0 <= rid < 1 << RULE_ID_BITS or port < 0:
            return None
        return self.rules.get(port << RULE_ID_BITS | rid)

    def entry(self, handle: int) -> RuleEntry | None:
        """The rule an engine's verdict names (verdicts carry handles)."""
        return self.rules.get(handle)

    def port_rules(self, port: int) -> list[RuleEntry]:
        """The rules of `port` in the order testpmd lists them (by id)."""
        return sorted((e for e in self.rules.values() if e.port == port), key=lambda e: e.rule_id)

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
        self._port_flows = [{} for _ in self.device.pfs]
        self._port_old = [{} for _ in self.device.pfs]
        self._flows = self._port_flows[0]
        self._young = {}
        self._old = {}
        self._cached = 0
        self._plans = 0

    def process(self, data: bytes | Any, port: int = 0, wire: int | None = None) -> Decision:
        """Decide one packet arriving on ethdev port `port` (on the wire of its PF): bytes,
        or anything `bytes()` turns into the packet's bytes (a Scapy packet, a bytearray).
        `wire` names the PF whose wire it arrives on instead (a port of the device that
        no ethdev port of the session is, e.g. a PF left to the kernel)."""
        if data.__class__ is not bytes:
            data = bytes(data)  # the API boundary: Scapy packets; bytes go straight on
        res = self.parser.parse(data)
        if wire is not None:
            if not 0 <= wire < len(self.device.pfs):
                raise UsageError(f"no PF {wire}: the device has {len(self.device.pfs)} PF(s)")
            pf = wire
        else:
            try:
                pf = self._ingress[port]
            except IndexError:
                raise UsageError(
                    f"no port {port}: the device has {len(self.eth_ports)} port(s)"
                ) from None
        flows = self._port_flows[pf]
        table = flows.get(id(res))
        if table is None or table.res is not res:
            table = self._flow_table(res, pf)
        get = table.key
        if get is None:
            flow = self._decide(data, res, pf, table.po)
        else:
            key = (table.number, get(data))
            flow = self._young.get(key)  # type: ignore[assignment]
            if flow is None:
                flow = self._old.get(key)
                if flow is None:
                    flow = self._decide(data, res, pf, table.po)
                self._young[key] = flow
                self._cached += 1
                if self._cached >= FLOW_CACHE_SIZE // 2:  # the young generation is full
                    self._old = self._young
                    self._young = {}
                    self._cached = 0
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

    def _flow_table(self, res: ParseResult, pf: int = 0) -> _FlowTable:
        """The flow table of one parse result: which bytes key its decisions."""
        table = self._port_old[pf].get(id(res))
        if table is None or table.res is not res:
            po = self.compiler.catalog.block_po(res)
            spans = self._read_spans(res, po) if self._flow_cache else None
            get: Callable[[bytes], Any] | None = None
            if spans is not None:
                get = itemgetter(*(slice(a, b) for a, b in spans)) if spans else _no_key
            self._next_table += 1  # never reused: decisions of a dropped table never match
            table = _FlowTable(res, get, self._next_table, po)
        self._port_flows[pf][id(res)] = table
        self._plans += 1
        if self._plans >= FLOW_PLANS_SIZE // 2:  # the young generation of tables is full
            self._port_old = self._port_flows
            self._port_flows = [{} for _ in self.device.pfs]
            self._flows = self._port_flows[0]
            self._plans = 0
        return table

    def _read_spans(self, res: ParseResult, po: dict[int, int]) -> list[tuple[int, int]] | None:
        """Merged byte ranges a decision for packets parsed as `res` (whose block
        protocol offsets are `po`) depends on, or None if an engine cannot say (then
        its packets are not cached)."""
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
        for stage in {id(s): s for s in self._rss_stages.values()}.values():
            spans.extend(stage.input_ranges(res))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for a, b in spans:
            if merged and a <= merged[-1][1]:
                if b > merged[-1][1]:
                    merged[-1] = (merged[-1][0], b)
            else:
                merged.append((a, b))
        return merged

    def _decide(
        self, data: bytes, res: ParseResult, pf: int = 0, po: dict[int, int] | None = None
    ) -> _Flow:
        frame = Frame(data, res, self.compiler.catalog.block_po(res) if po is None else po)
        verdicts: list[Verdict] = []
        hits: list[tuple[str, int]] = []
        mask = (1 << RULE_ID_BITS) - 1  # verdicts name handles; hits give testpmd ids

        sw = self.switch.lookup(frame, pf)
        verdicts.append(sw)
        if sw.rule is not None:
            hits.append(("switch", sw.rule & mask))
        vsi_no = sw.vsi
        vsi = self.device.vsi(vsi_no) if vsi_no is not None else None

        acl = self.acl.lookup(frame) if self.acl_has_rules else None
        if acl is not None:
            verdicts.append(acl)
            hits.append(("acl", acl.rule & mask))  # type: ignore[operator]
        # FD rules apply to their port's VSI only
        fd = self.fd.lookup(frame, vsi=vsi_no) if self.fd_has_rules else None
        if fd is not None:
            verdicts.append(fd)
            hits.append(("fd", fd.rule & mask))  # type: ignore[operator]

        stage = self.rss_for(vsi_no) if vsi_no is not None else self.rss
        got = stage.hash_of(data, res)
        hashed = got is not None
        rss_hash = got or 0
        if vsi is not None:
            if hashed:
                prof = stage.profile_for(data, res)
                what = prof.describe() if prof is not None else ""  # type: ignore[attr-defined]
                scheme = "simple XOR" if stage.xor else "Toeplitz"
                note = f"hash {rss_hash:#010x} ({scheme} of {what})"
            else:
                note = "no profile hashes this packet"
            verdicts.append(Verdict("rss", note=note))

        # drops
        drop_reason: str | None = None
        if sw.action == "drop":
            drop_reason = sw.note or "switch: drop"
        elif acl is not None and acl.action == "drop" and self.config.drop_wins:
            drop_reason = f"acl rule {(acl.rule or 0) & mask}: drop"
        elif fd is not None and fd.action == "drop" and self.config.drop_wins:
            drop_reason = f"fd rule {(fd.rule or 0) & mask}: drop"
        if vsi is None and drop_reason is None:
            drop_reason = "no VSI: no switch rule matched"

        queue: int | None = None
        reason = ""
        if drop_reason is None and vsi is not None:
            queue, reason, drop_reason = self._queue(sw, acl, fd, vsi, rss_hash, hashed)
        # A dropped packet never reaches a descriptor, so it carries no mark.
        mark = fd.mark if fd is not None and drop_reason is None else None

        rule_keys = tuple(hits)
        entries = tuple(self._hit_entries(sw, acl, fd))
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
                hashed,
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
            hashed,
        )
        return (dec, rule_keys, entries, None, absolute, vsi.name)

    @property
    def acl_has_rules(self) -> bool:
        return self._per_engine["acl"] > 0

    @property
    def fd_has_rules(self) -> bool:
        return self._per_engine["fd"] > 0

    def _queue(
        self,
        sw: Verdict,
        acl: Verdict | None,
        fd: Verdict | None,
        vsi: Vsi,
        rss_hash: int,
        hashed: bool = True,
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
        mask = (1 << RULE_ID_BITS) - 1
        for block, v in ranked:
            rid = (v.rule or 0) & mask
            if v.action == "drop":
                return None, "", f"{block} rule {rid}: drop"
            if v.action == "to_queue" and v.queue is not None:
                return v.queue, f"{block} rule {rid}: queue {v.queue}", None
            if v.action == "to_qgroup" and v.qgroup is not None:
                first, size = v.qgroup
                q = first + (rss_hash & (size - 1))
                return q, f"{block} rule {rid}: queue group {first}..{first + size - 1}", None
        if not hashed:
            return 0, "rss: no profile hashes this packet: queue 0", None
        lut = self.rss_for(vsi.number).lut(vsi.number, vsi.kind, vsi.num_queues)
        q = lut.queue_for(rss_hash)
        return q, f"rss: hash {rss_hash:#010x} -> LUT[{rss_hash & (lut.size - 1)}] = {q}", None

    def _hit_entries(self, *verdicts: Verdict | None) -> Iterable[RuleEntry]:
        for v in verdicts:
            if v is None or v.rule is None:
                continue
            entry = self.rules.get(v.rule)
            if entry is not None and entry.engine == v.block:
                yield entry

    def run(self, packets: Iterable[bytes], port: int = 0) -> Iterable[Decision]:
        for data in packets:
            yield self.process(data, port)


# Engines a port kind does not have. The ACL engine is "DCF mode only" (ice.rst, "Generic
# Flow Support"): on a PF, ice_acl_prof_init associates its profiles with no VSI.
# iavf registers the hash and Flow Director engines on a VF port (iavf_hash.c,
# iavf_fdir.c; flow subscription, iavf_fsub.c, needs VIRTCHNL_VF_OFFLOAD_FSUB_PF, which
# the kernel PF does not offer): a VF's rule goes to neither the switch nor the ACL.
_NO_ENGINE: dict[str, tuple[str, ...]] = {"pf": ("acl",), "vf": ("acl", "switch")}
# ice_dcf_init_parent_adapter: a DCF port's disabled_engine_mask has FDIR and hash (the
# hash engine says so itself); the parser of a disabled engine fails with "engine is not
# enabled." (ice_parse_engine_create), which then is the error testpmd shows.
_DISABLED_ENGINES: dict[str, tuple[str, ...]] = {"dcf": ("fd",)}


# ice_switch_parse_pattern counts the bytes of a rule's input set and refuses more than
# MAX_INPUT_SET_BYTE (a recipe chain holds 4 x 4 words, ice_switch_filter.c): each masked
# byte of a MAC or IPv6 address, and per masked field what the driver adds (an IPv4
# address counts 2, the IPv6 traffic class 4)
MAX_INPUT_SET_BYTE = 32
_BYTEWISE_FIELDS = frozenset({"eth.src", "eth.dst", "ipv6.src", "ipv6.dst"})
_INPUT_SET_BYTES: dict[str, int] = {
    "eth.type": 2,
    "ipv4.src": 2,
    "ipv4.dst": 2,
    "ipv4.ttl": 1,
    "ipv4.proto": 1,
    "ipv4.tos": 1,
    "ipv6.proto": 1,
    "ipv6.hop": 1,
    "ipv6.tc": 4,
    **{f"{p}.{d}": 2 for p in ("udp", "tcp", "sctp") for d in ("src", "dst")},
    "vxlan.vni": 2,
    "nvgre.tni": 2,
    "vlan.tci": 2,
    "pppoes.session_id": 2,
    "pppoes.proto_id": 2,
    "esp.spi": 4,
    "ah.spi": 4,
    "l2tpv3oip.session_id": 4,
    "gtpu.teid": 4,
    "gtp_psc.qfi": 1,
}


def _switch_input_set_bytes(rule: FlowRule) -> int:
    """input_set_byte as ice_switch_parse_pattern adds it up."""
    n = 0
    for item in rule.pattern:
        for sp in item.specs:
            if not sp.mask:
                continue
            if sp.field in _BYTEWISE_FIELDS:
                n += sum(1 for b in sp.mask.to_bytes(16, "big") if b)
            else:
                n += _INPUT_SET_BYTES.get(sp.field, 0)
    return n


def _switch_view(
    rule: FlowRule,
) -> tuple[FlowRule, frozenset[int] | None, frozenset[int]]:
    """The rule as ice_switch_parse_pattern reads it, the PTYPEs it is limited to (None:
    all its pattern gives) and the PTYPEs it leaves out:

    - a rule without a PPPoE item and without a full EtherType mask (tunnel type
      ICE_NON_TUN, not ICE_SW_TUN_AND_NON_TUN) uses only ICE_PROF_NON_TUN profiles
      (ice_get_compat_fv_bitmap), so it leaves out the PPPoE PTYPEs, whose profiles
      are ICE_PROF_TUN_PPPOE;

    - ``esp`` after ``udp`` is NAT-T ESP: the SPI is the ICE_NAT_T lookup (the UDP
      header's protocol ID, 8 bytes in), the tunnel type ICE_SW_TUN_IPV4/IPV6_NAT_T
      (the PTYPEs of ice_ptypes_nat_t_esp);
    - ``pfcp`` makes a profile rule: ``s_field`` 1 selects the PFCP session profile, 0
      the node profile (ICE_SW_TUN_PROFID_IPV4/IPV6_PFCP_SESSION/NODE), and no field is
      looked up; a mask on any other field is "Invalid pfcp mask".
    """
    items = list(rule.pattern)
    only: frozenset[int] | None = None
    profile = False
    for k, it in enumerate(items):
        prev = items[k - 1] if k else None
        if it.type == "esp" and prev is not None and prev.type == "udp":
            moved = tuple(
                replace(sp, field="nat_t.spi") for sp in it.specs if sp.field == "esp.spi"
            )
            items[k - 1] = replace(prev, specs=prev.specs + moved)
            items[k] = replace(it, type="void", specs=())
            only = frozenset(PTYPE_GROUPS["nat_t_esp"])
        elif it.type == "pfcp" and it.specs:
            if any(sp.field != "pfcp.s_field" and sp.mask for sp in it.specs):
                raise rule_error("ITEM", "Invalid pfcp mask", it.index)
            s_field = [sp for sp in it.specs if sp.mask & 1]
            if not s_field:
                raise rule_error("ITEM_SPEC", "Invalid input set", it.index)
            group = "pfcp_session" if s_field[0].value & 1 else "pfcp_node"
            only = frozenset(PTYPE_GROUPS[group])
            items[k] = replace(it, specs=())
            profile = True
    minus: frozenset[int] = frozenset()
    kinds = {i.type for i in rule.pattern}
    full_type = any(
        sp.field == "eth.type" and sp.mask & 0xFFFF == 0xFFFF
        for i in rule.pattern
        for sp in i.specs
    )
    if not kinds & {"pppoes", "pppoe_proto_id", "any"} and not full_type:
        minus = frozenset(PTYPE_GROUPS["pppoe"])
    if only is None:
        return rule, None, minus
    extra = {**rule.extra, "profile_rule": True} if profile else rule.extra
    return replace(rule, pattern=tuple(items), extra=extra), only, minus


def _pipeline_pattern_check(engine: str, rule: FlowRule, kind: str) -> None:
    """Pipeline mode (DPDK 23.07, legacy) holds rules to ice's pattern lists
    (ice_search_pattern_match_item): the switch's permission-stage list for priority 0,
    Flow Director's list on a PF or DCF port. Outside pipeline mode the engines' own
    models decide, so a DDP profile's protocols can be matched."""
    if engine == "switch":
        search_pattern(rule, SWITCH_PERM_PATTERNS)
    elif engine == "fd" and kind in ("pf", "dcf"):
        search_pattern(rule, FDIR_PATTERNS)


def _ice_attr_check(engine: str, rule: FlowRule) -> None:
    """``ci_flow_check_attr`` as each ice parser calls it: no group anywhere; the switch
    allows priorities 0 and 1 ("Invalid priority for switch filter" past that), the
    others priority 0 only."""
    if rule.group:
        raise rule_error("ATTR_GROUP", "Group not supported")
    if engine == "switch":
        if rule.priority > 1:
            raise rule_error("ATTR_PRIORITY", "Invalid priority for switch filter")
    elif rule.priority:
        raise rule_error("ATTR_PRIORITY", "Priority not supported")


class _FlowTable(NamedTuple):
    """How to key the decisions of one parse result: the bytes they depend on."""

    res: ParseResult
    key: Callable[[bytes], Any] | None  # None: not cacheable
    number: int  # unique per table: the first half of its decisions' keys
    po: dict[int, int]  # the blocks' protocol offsets (FieldCatalog.block_po), never modified


# (decision, rule hits to count, their entries, drop reason, absolute queue, VSI name)
_Flow = tuple[
    Decision, tuple[tuple[str, int], ...], tuple[RuleEntry, ...], str | None, int | None, str | None
]


def _no_key(data: bytes) -> None:
    return None


__all__ = ["Decision", "E810PipeError", "Pipeline", "PipelineConfig", "PortBinding", "RuleEntry"]

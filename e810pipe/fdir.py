"""Flow Director: exact-match filters on one masked input set per flow type.

The E810's Flow Director (FD) hashes the masked field vector of the packet's
profile and looks the result up among the programmed filters: an exact match, so at
most one filter hits and there are no priorities. What the model keeps:

- **Flow types and profiles.** A flow type is the exact PTYPE(s) of a pattern plus
  its tunnel flag. Each flow type of a port has one profile: its input set (the field-vector
  words and their 16-bit masks) and a table from masked word values to a rule. While
  a profile has rules, a rule with another input set is refused with the kernel's
  reason ("Flow director filters on each port must have the same input set"); an
  emptied profile is dropped and may be replaced. The FD field vector holds 24
  words, a profile at most 2 segments (outer and inner), and the block has 128
  profile IDs (``blk_sizes[]`` in ``ice_flex_pipe.c``).
- **Masks.** Only whole fields (DPDK ``ice_fdir_filter.c`` refuses partial masks,
  e.g. "Invalid IPv4 mask"); raw patterns may mask any bit. No ranges.
- **Capacity.** 16384 entries (``ICE_FDIR_MAX_FLTRS``): a guaranteed pool per PF
  (2048 split evenly between the PFs unless given) and a shared best-effort pool
  (14336). A PF's rule takes a guaranteed entry first, then a best-effort one; VF
  VSIs get no guaranteed entries. Removing a rule returns its entry to its pool.
- **Actions.** queue, rss (a queue region of 2..128 queues, a power of 2), drop,
  passthru (RSS decides, queue priority 0), mark, count; one destination, one mark
  and one count at most. Mark or count alone means passthru.

Profiles belong to the VSI a rule is programmed for (the PF VSI of ``rule.port``):
input sets and duplicates are per port, as the kernel says ("on each port"), while
the 128 profile IDs are shared by the device. The profile TCAM selects one profile
per VSI and packet from (PTYPE, flags); a profile keyed on a tunnel flag is more
specific than one without, so it is the one consulted when both apply. A lookup
costs one dict lookup per selected profile; ``lookup(frame, vsi=N)`` consults only
VSI N's profiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from errno import EEXIST, EPERM
from operator import itemgetter

from .device import Device, Vsi
from .engine import Capacity, Engine, Frame, Match, Verdict
from .errors import RuleError, UsageError
from .fields import _CATALOG, FV_WORDS, FieldCatalog, Word, word_at
from .hash import _attr_ok, gtpu_attr
from .iavf_fdir import iavf_check_actions, iavf_cross_conflicts, iavf_flow_type
from .ice_fdir_flow import (
    CROSS_CONFLICTS,
    GTPU_ATTR_PTYPES,
    KNOWN_PTYPES,
    IceFlowType,
    ice_flow_type,
)
from .ice_fdir_frag import FIELD_MASKS, fd_view
from .parser import ParseResult
from .rules import ERROR_TYPES, Action, FlowRule, rule_error

FD_MAX_FILTERS = 16384  # ICE_FDIR_MAX_FLTRS
FD_GUARANTEED = 2048  # split between the PFs
FD_BEST_EFFORT = FD_MAX_FILTERS - FD_GUARANTEED
FD_PROFILES = 128  # FD profile IDs (blk_sizes[ICE_BLK_FD])
FD_MAX_SEGMENTS = 2  # ICE_FD_HW_SEG_MAX: outer and inner
FD_MAX_QREGION = 128  # ICE_FDIR_MAX_QREGION_SIZE
FD_COUNTERS_PER_PF = 256  # ICE_FDIR_COUNTERS_PER_BLOCK: one block per PF (fd_ctr_base)
FD_FV_WORDS = FV_WORDS["fd"]

DESTINATIONS = ("queue", "rss", "drop", "passthru")
INPUT_SET_CONFLICT = (
    "Failed to add filter. Flow director filters on each port must have the same input set."
)

_MARKER_NAMES = {
    "mac": "MAC",
    "ipv4": "IPv4",
    "ipv6": "IPv6",
    "udp": "UDP",
    "tcp": "TCP",
    "sctp": "SCTP",
    "icmp": "ICMP",
    "icmpv6": "ICMPv6",
    "frag": "frag",
    "gtpu": "GTP-U",
    "pppoe": "PPPoE",
    "l2tpv3": "L2TPv3",
    "esp": "ESP",
    "ah": "AH",
}
_TUNNEL_NAMES = {
    "tunnel_vxlan": "VXLAN",
    "tunnel_vxlan_gpe": "VXLAN-GPE",
    "tunnel_geneve": "GENEVE",
    "tunnel_gre": "GRE",
}

# (owner VSI, PTYPEs, tunnel flag, ice flow type: enum ice_fltr_ptype name, "+tun" for a
# two-segment profile, or None for a pattern ice's list does not have)
FlowType = tuple[int, frozenset[int], str | None, str | None]
InputSet = tuple[tuple[Word, int], ...]
# (parse result, FD change count, bytes the words need, per VSI: (owner, profile,
# (byte offset, mask) per input-set word, or None when a protocol is absent, the GTP-U
# attribute the profile requires of this PTYPE or None))
_Step = tuple[int, "Profile", tuple[tuple[int, int], ...] | None, str | None]
_LookupPlan = tuple[ParseResult, int, int, tuple[_Step, ...]]


_LABELS: dict[tuple, str] = {}  # (markers, tunnel flag, PTYPEs, raw) -> label
_LABELS_MAX = 4096


def flow_type_label(match: Match) -> str:
    """A short name for a flow type, e.g. ``IPv4/UDP`` or ``IPv4/VXLAN/MAC/IPv4``.

    It depends on the match's markers, tunnel flag, PTYPEs and rawness only: worked
    out once per flow type (16K rules have a few)."""
    key = (match.markers, match.tunnel_flag, match.ptypes, match.raw)
    label = _LABELS.get(key)
    if label is None:
        label = _flow_type_label(match)
        if len(_LABELS) < _LABELS_MAX:
            _LABELS[key] = label
    return label


def _flow_type_label(match: Match) -> str:
    markers = list(match.markers)
    if markers and markers[0] == "mac" and len(markers) > 1:
        markers = markers[1:]
    tunnel = _TUNNEL_NAMES.get(match.tunnel_flag or "", "tunnel")
    parts = [tunnel if m == "tun" else _MARKER_NAMES.get(m, m) for m in markers]
    label = "/".join(parts) or "PTYPE " + ",".join(str(p) for p in sorted(match.ptypes))
    return "raw " + label if match.raw else label


@dataclass
class Profile:
    """One flow type's profile: its input set and its filters."""

    number: int
    flow_type: FlowType
    label: str
    input_set: InputSet  # canonical order: by protocol ID, then offset
    table: dict[tuple[int, ...], int] = field(default_factory=dict)  # key -> rule id
    word_names: tuple[str, ...] = ()  # str() of each input-set word, for verdicts
    # a raw profile's GTP-U attribute (Match.attr): the profile TCAM entry keys on the
    # PDU-session flags, so only packets with that attribute select the profile
    attr: str | None = None
    rules: int = 0  # rules using the profile (raw duplicates share one filter)
    gtpu_attr: str | None = None  # ice_attr_gtpu_session / _eh: session or eh
    covered: set[int] = field(default_factory=set)  # PTYPEs looked up (_by_ptype)

    def __post_init__(self) -> None:
        self.word_names = tuple(str(w) for w, _ in self.input_set)

    @property
    def vsi(self) -> int:
        return self.flow_type[0]

    @property
    def ptypes(self) -> frozenset[int]:
        return self.flow_type[1]

    @property
    def tunnel_flag(self) -> str | None:
        return self.flow_type[2]

    @property
    def ice_type(self) -> str | None:
        return self.flow_type[3]

    def rank(self) -> tuple[bool, bool, bool, int, int, int]:
        """The order the profile TCAM consults a PTYPE's profiles in: a tunnel flag or
        a two-segment (tunnel) profile first, then the smallest PTYPE group (a
        profile for a subset of PTYPEs splits their PTYPE group, as XLT1 does when
        the driver adds it)."""
        tun = self.tunnel_flag is not None or (self.ice_type or "").endswith("+tun")
        return (
            not tun,
            self.tunnel_flag is None,
            self.attr is None,
            len(self.ptypes),
            self.vsi,
            self.number,
        )

    def describe(self) -> str:
        return _describe(self.input_set)


@dataclass
class _Entry:
    """A programmed filter."""

    profile: Profile
    key: tuple[int, ...]
    pool: str
    verdict: Verdict
    counter: int | None = None


@dataclass
class _Plan:
    """What adding a rule would do; computed by validate, committed by add."""

    flow_type: FlowType
    label: str
    input_set: InputSet
    key: tuple[int, ...]
    pool: str
    vsi: Vsi
    action: str
    queue: int | None
    qgroup: tuple[int, int] | None
    mark: int | None
    priority: int
    programmed: bool = True  # False: accepted but not in the hardware (see _plan)
    counter: int | None = None  # the PF whose counter block the rule's count uses
    gtpu_attr: str | None = None


class FlowDirector(Engine):
    """The Flow Director block: exact match on a masked input set per flow type."""

    name = "fd"

    def __init__(
        self,
        device: Device,
        guaranteed_per_pf: int | None = None,
        best_effort: int = FD_BEST_EFFORT,
        catalog: FieldCatalog | None = None,
    ) -> None:
        npfs = len(device.pfs)
        if guaranteed_per_pf is None:
            guaranteed_per_pf = FD_GUARANTEED // npfs
        if guaranteed_per_pf < 0 or best_effort < 0:
            raise UsageError("FD pools: the guaranteed and best-effort sizes must be >= 0")
        if guaranteed_per_pf * npfs + best_effort > FD_MAX_FILTERS:
            raise UsageError(
                f"FD pools: {npfs} x {guaranteed_per_pf} guaranteed + {best_effort} best-effort "
                f"entries exceed the {FD_MAX_FILTERS} the device has (ICE_FDIR_MAX_FLTRS)"
            )
        self.device = device
        self.catalog = catalog
        # (field, mask) pairs _check_specs found whole or absent, for this catalog
        self._whole: tuple[FieldCatalog | None, set[tuple[str, int]]] = (catalog, set())
        self.guaranteed_per_pf = guaranteed_per_pf
        self.best_effort = best_effort
        # pool name -> [used, total]
        self._pools: dict[str, list[int]] = {
            self._guar_pool(pf.number): [0, guaranteed_per_pf] for pf in device.pfs
        }
        self._pools["best effort"] = [0, best_effort]
        self._counters: dict[int, int] = {}  # PF -> counters in use
        self._profiles: dict[FlowType, Profile] = {}
        self._numbers: set[int] = set()
        self._by_ptype: dict[int, list[Profile]] = {}
        self._entries: dict[int, _Entry] = {}
        self._unprogrammed: set[int] = set()  # rules accepted but not programmed
        # the plan validate() made, reused by add() for the same rule and state
        self._validated: tuple[FlowRule, Match, int, _Plan] | None = None
        self._changes = 0
        self._lookup_plans: dict[int, _LookupPlan] = {}  # id(parse result) -> plan

    # --- hooks -------------------------------------------------------------

    def target_vsi(self, rule: FlowRule) -> Vsi:
        """The VSI a rule is programmed for. For now rule.port is the PF number."""
        if not 0 <= rule.port < len(self.device.pfs):
            raise rule_error(
                "UNSPECIFIED",
                f"port {rule.port} does not exist; the device has {len(self.device.pfs)} PF(s)",
            )
        vsi = rule.extra.get("vsi")  # a VF port's rules are programmed for its VSI
        return self.device.vsi(vsi) if vsi is not None else self.device.pfs[rule.port].vsi

    def vsi_kind(self, rule: FlowRule) -> str:
        """pf, vf, vmdq or siov: only PF VSIs have guaranteed FD entries."""
        return self.target_vsi(rule).kind

    @staticmethod
    def _guar_pool(pf: int) -> str:
        return f"pf{pf} guaranteed"

    # --- Engine interface --------------------------------------------------

    def validate(self, rule: FlowRule, match: Match) -> None:
        try:
            plan = self._plan(rule, match)
        except _VirtchnlRefusal:
            # iavf_fdir_validation -> iavf_fdir_check: the PF's validate_only request is
            # answered after ice_vc_validate_fdir_fltr, before the profile, conflict and
            # duplicate checks, so such a rule validates (and fails when created)
            self._validated = None
            return
        self._validated = (rule, match, self._changes, plan)

    def add(self, rule_id: int, rule: FlowRule, match: Match) -> None:
        if rule_id in self._entries:
            raise rule_error("HANDLE", f"FD already holds a rule with id {rule_id}")
        last = self._validated
        if last is not None and last[0] is rule and last[1] is match and last[2] == self._changes:
            plan = last[3]
        else:
            plan = self._plan(rule, match)
        self._validated = None
        if not plan.programmed:
            self._unprogrammed.add(rule_id)
            return
        self._changes += 1
        prof = self._profiles.get(plan.flow_type)
        if prof is None:
            number = next(n for n in range(FD_PROFILES) if n not in self._numbers)
            prof = Profile(
                number,
                plan.flow_type,
                plan.label,
                plan.input_set,
                attr=match.attr,
                gtpu_attr=plan.gtpu_attr,
            )
            self._profiles[plan.flow_type] = prof
            self._numbers.add(number)
        # an ice flow type's profile also takes the PTYPEs of the rule's path that no
        # ice_ptypes_* bitmap lists (PTYPEs of the package newer than DPDK's tables)
        extra = match.ptypes - KNOWN_PTYPES if prof.ice_type is not None else frozenset()
        for ptype in (prof.ptypes | extra) - prof.covered:
            prof.covered.add(ptype)
            lst = self._by_ptype.setdefault(ptype, [])
            lst.append(prof)
            lst.sort(key=Profile.rank)
        prof.table[plan.key] = rule_id
        prof.rules += 1
        self._pools[plan.pool][0] += 1
        words = tuple(zip(prof.word_names, plan.key))
        verdict = Verdict(
            block=self.name,
            rule=rule_id,
            action=plan.action,
            vsi=plan.vsi.number,
            queue=plan.queue,
            qgroup=plan.qgroup,
            mark=plan.mark,
            priority=plan.priority,
            profile=prof.number,
            words=words,
            note=f"exact match in profile {prof.number} (flow type {prof.label})",
        )
        self._entries[rule_id] = _Entry(prof, plan.key, plan.pool, verdict, plan.counter)
        if plan.counter is not None:
            self._counters[plan.counter] = self._counters.get(plan.counter, 0) + 1

    def remove(self, rule_id: int) -> None:
        if rule_id in self._unprogrammed:
            self._unprogrammed.discard(rule_id)
            return
        entry = self._entries.pop(rule_id, None)
        if entry is None:
            raise rule_error("HANDLE", f"Can't find entry: FD has no rule {rule_id}")
        self._changes += 1
        if entry.counter is not None:
            self._counters[entry.counter] -= 1  # ice_fdir_counter_free
        prof = entry.profile
        # a raw duplicate's filter is the same hardware entry: removing either rule
        # removes it (ice_fdir_destroy_filter -> ice_fdir_add_del_raw)
        prof.table.pop(entry.key, None)
        prof.rules -= 1
        self._pools[entry.pool][0] -= 1
        if not prof.rules:
            del self._profiles[prof.flow_type]
            self._numbers.discard(prof.number)
            for ptype in prof.covered:
                lst = self._by_ptype[ptype]
                lst.remove(prof)
                if not lst:
                    del self._by_ptype[ptype]

    def lookup(self, frame: Frame, vsi: int | None = None) -> Verdict | None:
        """The filter the packet hits, if any; `vsi`: only that VSI's filters."""
        res = frame.res
        plan = self._lookup_plans.get(id(res))
        if plan is None or plan[0] is not res or plan[1] != self._changes:
            plan = self._lookup_plan(frame)
        data = frame.data
        short = len(data) < plan[2]
        attr: str | None = None
        taken: set[int] | None = None  # VSIs whose attribute profile the packet selected
        for owner, prof, offsets, want in plan[3]:
            if vsi is not None and owner != vsi:
                continue
            if prof.attr is not None:
                # the profile TCAM compares the packet's GTP-U flags with the attribute
                if attr is None:
                    attr = gtpu_attr(data, res)
                if not _attr_ok(prof.attr, attr):
                    continue
                taken = taken or set()
                taken.add(owner)
            elif taken is not None and owner in taken:
                continue
            if offsets is None:  # a word's protocol is not in the packet
                continue
            if want is not None:
                if attr is None:
                    attr = gtpu_attr(data, res)
                if not _attr_ok(want, attr):
                    continue
            if short:
                key = tuple([word_at(data, a) & m for a, m in offsets])
            else:
                key = tuple([((data[a] << 8) | data[a + 1]) & m for a, m in offsets])
            rid = prof.table.get(key)
            if rid is not None:
                return self._entries[rid].verdict
        return None

    def _lookup_plan(self, frame: Frame) -> _LookupPlan:
        """What `lookup` does for packets parsed as `frame.res`, worked out once: per VSI,
        the first profile the profile TCAM selects (PTYPE and tunnel flag), and where
        its input-set words sit in the packet (None: a protocol is absent)."""
        res = frame.res
        steps: list[_Step] = []
        selected: set[int] = set()  # VSIs whose profile has been selected
        end = 0
        for prof in self._by_ptype.get(res.ptype, ()):
            owner = prof.vsi
            flag = prof.tunnel_flag
            if owner in selected or (flag is not None and flag not in frame.flags):
                continue
            offsets: list[tuple[int, int]] | None = []
            for w, m in prof.input_set:
                base = frame.po.get(w.proto_id)
                if base is None:
                    offsets = None
                    break
                assert offsets is not None
                offsets.append((base + w.offset, m))
                end = max(end, base + w.offset + 2)
            want = prof.gtpu_attr if res.ptype in GTPU_ATTR_PTYPES else None
            if prof.ice_type is not None and (offsets is None or want is not None):
                # an ice profile covers the PTYPEs of its headers; a packet without the
                # protocols its words read, or another GTP-U attribute, is another
                # profile's (the PMD keeps overlapping profiles apart:
                # ice_fdir_cross_prof_conflict)
                if offsets is not None:
                    steps.append((owner, prof, tuple(offsets), want))
                continue
            if prof.attr is None:  # an attribute profile is selected by the packet's flags
                selected.add(owner)
            steps.append((owner, prof, None if offsets is None else tuple(offsets), None))
        plan = (res, self._changes, end, tuple(steps))
        if len(self._lookup_plans) >= 1 << 14:
            self._lookup_plans.clear()
        self._lookup_plans[id(res)] = plan
        return plan

    def words_read(self, ptype: int) -> list[tuple[int, int]]:
        return [
            (w.proto_id, w.offset)
            for prof in self._by_ptype.get(ptype, ())
            for w, _ in prof.input_set
        ]

    def capacity(self) -> Capacity:
        cap = Capacity()
        for name, (used, total) in self._pools.items():
            cap.used[name] = used
            cap.total[name] = total
        cap.used["entries"] = sum(u for u, _ in self._pools.values())
        cap.total["entries"] = sum(t for _, t in self._pools.values())
        cap.used["profiles"] = len(self._profiles)
        cap.total["profiles"] = FD_PROFILES
        return cap

    # --- introspection -----------------------------------------------------

    def profiles(self) -> list[Profile]:
        """Live profiles, by profile number."""
        return sorted(self._profiles.values(), key=lambda p: p.number)

    def __len__(self) -> int:
        return len(self._entries) + len(self._unprogrammed)

    # --- checks --------------------------------------------------------------

    def _plan(self, rule: FlowRule, match: Match) -> _Plan:
        try:
            return self._plan_rule(rule, match)
        except RuleError as err:
            if err.type_code != _HANDLE or self.target_vsi(rule).kind != "vf":
                raise
            raise _virtchnl_refusal(err) from None

    def _plan_rule(self, rule: FlowRule, match: Match) -> _Plan:
        vsi = self.target_vsi(rule)
        if vsi.kind == "vf":
            iavf_check_actions(rule, vsi.num_queues)  # iavf_fdir_parse: actions first
        # a fragment rule's fields as ice_fdir_parse_pattern (iavf_fdir.c) reads them
        rule = fd_view(rule, iavf=vsi.kind == "vf")
        if not match.raw:
            self._check_specs(rule)
        if match.ranges:
            raise rule_error("ITEM_LAST", "Not support range: FD matches exact values only")
        if not match.words:
            raise rule_error(
                "ITEM_SPEC",
                "Invalid input set: FD needs at least one field to match "
                "(e.g. 'ipv4 src is 10.0.0.1'); it does not support broad patterns",
                _last_item(rule),
            )
        segments = max(
            max((i.level for i in rule.pattern), default=0) + 1, match.markers.count("tun") + 1
        )
        if segments > FD_MAX_SEGMENTS:
            raise rule_error(
                "ITEM",
                f"the pattern has {segments} segments; an FD profile holds at most "
                f"{FD_MAX_SEGMENTS} (outer and inner)",
                _last_item(rule),
            )
        # canonical input set: the hardware compares the field set, not the item order
        ordered = sorted(match.words, key=itemgetter(0))  # words are unique: by (id, offset)
        input_set: InputSet = tuple((w, m) for w, _, m in ordered)
        key = tuple([v if v & m == v else v & m for _, v, m in ordered])  # v's own int objects
        if len(input_set) > FD_FV_WORDS:
            raise rule_error(
                "ITEM_SPEC",
                f"the input set needs {len(input_set)} field-vector words; the FD field "
                f"vector holds {FD_FV_WORDS} (ICE_ERR_MAX_LIMIT)",
                _last_item(rule),
            )
        action, queue, qgroup, mark, priority = self._check_actions(rule, vsi)
        ice: IceFlowType | None = None
        if not match.raw:
            # a VF's rule as iavf_fdir_parse_pattern sends it to the PF
            ice = iavf_flow_type(rule) if vsi.kind == "vf" else ice_flow_type(rule.pattern)
        flow_type: FlowType
        if ice is not None:
            ice_key = ice.name + ("+tun" if ice.tunnel else "")
            flow_type = (vsi.number, ice.ptypes, None, ice_key)
        else:
            flow_type = (vsi.number, match.ptypes, match.tunnel_flag, None)
        label = flow_type_label(match)
        prof = self._profiles.get(flow_type)
        programmed = True
        if prof is not None and match.raw:
            # ice_fdir_create_filter (parser_ena): a raw rule whose field vector equals
            # the PTYPE group's raw profile shares it; another one makes
            # ice_flow_set_hw_prof add a second profile with the same cookie to the VSI,
            # which ice_add_prof_id_flow refuses (ICE_ERR_ALREADY_EXISTS). There is no
            # duplicate check: the same key reprograms the one filter (an add/update).
            if prof.input_set != input_set:
                if vsi.kind == "pf":
                    raise rule_error(
                        "HANDLE",
                        f"Failed to create raw FDIR profile: PTYPE "
                        f"{','.join(str(p) for p in sorted(match.ptypes))} of {vsi.name} "
                        f"has raw profile {prof.number} on [{prof.describe()}]; this rule "
                        f"needs [{_describe(input_set)}] (ice_add_prof_id_flow: "
                        "ICE_ERR_ALREADY_EXISTS)",
                    )
                # A VF's raw rule goes to the PF as virtchnl: ice_vc_add_fdir_raw fails
                # the same way but answers VIRTCHNL_STATUS_SUCCESS with the status word
                # still zero (VIRTCHNL_FDIR_SUCCESS), so iavf reports the rule created
                # while nothing is programmed.
                programmed = False
        elif prof is not None:
            # a VF's GTP-U profile of one flow type has one PDU-type segment
            # (ice_vc_fdir_write_flow_prof: another segment while rules use it fails)
            if prof.input_set != input_set or (
                vsi.kind == "vf" and prof.gtpu_attr != _gtpu_attr(ice, vsi)
            ):
                n = len(prof.table)
                why = "Profile configure failed.\n" if ice is not None else ""
                raise rule_error(
                    "HANDLE",
                    f"{why}{INPUT_SET_CONFLICT} Flow type {label} of {vsi.name} has profile "
                    f"{prof.number} with {n} rule{'s' if n != 1 else ''} on "
                    f"[{prof.describe()}]; this rule needs [{_describe(input_set)}]. "
                    "Destroy those rules to change it.",
                )
            if key in prof.table:
                # ice_fdir_create_filter: ice_fdir_entry_lookup finds the same key (the
                # pattern's values; the actions are not part of it)
                err = rule_error(
                    "HANDLE",
                    f"Rule already exists!\nFD rule {prof.table[key]} has the same key in "
                    f"profile {prof.number} (flow type {label} of {vsi.name})",
                )
                err.errno = EEXIST
                raise err
        elif ice is not None and (busy := self._cross_conflict(vsi, ice)) is not None:
            n = len(busy.table)
            raise rule_error(
                "HANDLE",
                f"Profile configure failed.\nFlow type {label} of {vsi.name} overlaps "
                f"flow type {busy.label} (profile {busy.number}, {n} "
                f"rule{'s' if n != 1 else ''}); ice_fdir_cross_prof_conflict keeps such "
                "profiles apart. Destroy those rules first.",
            )
        elif len(self._profiles) >= FD_PROFILES:
            raise rule_error(
                "HANDLE",
                f"Profile configure failed: no space: all {FD_PROFILES} FD profile IDs are "
                f"in use (one per flow type); destroy every rule of a flow type to free one",
            )
        pool = self._pick_pool(vsi) if programmed else ""
        counter = self._pick_counter(rule, vsi) if programmed else None
        return _Plan(
            flow_type,
            label,
            input_set,
            key,
            pool,
            vsi,
            action,
            queue,
            qgroup,
            mark,
            priority,
            programmed,
            counter,
            _gtpu_attr(ice, vsi),
        )

    def _cross_conflict(self, vsi: Vsi, ice: IceFlowType) -> Profile | None:
        """A profile of a flow type `ice`'s conflicts with that still holds rules
        (ice_fdir_cross_prof_conflict; an empty one is removed, as here already)."""
        tun = "+tun" if ice.tunnel else ""
        names = CROSS_CONFLICTS.get(ice.name) or iavf_cross_conflicts(ice.name)
        others = {c + tun for c in names}
        for prof in self._profiles.values():
            if prof.vsi == vsi.number and prof.ice_type in others and prof.table:
                return prof
        return None

    def _pick_counter(self, rule: FlowRule, vsi: Vsi) -> int | None:
        """The PF whose counter block a `count` action takes a counter from, as
        ice_fdir_create_filter -> ice_fdir_counter_alloc does (a PF has one block of
        ICE_FDIR_COUNTERS_PER_BLOCK; every count takes its own counter, whatever its
        identifier: the PMD allocates them unshared). VF rules count through iavf."""
        if rule.action("count") is None or vsi.kind != "pf":
            return None
        if self._counters.get(vsi.pf, 0) >= FD_COUNTERS_PER_PF:
            err = rule_error("ACTION", "Failed to alloc FDIR counter.")
            err.log = ("ice_fdir_counter_alloc(): No free counter found",)
            raise err
        return vsi.pf

    def _check_specs(self, rule: FlowRule) -> None:
        if self._whole[0] is not self.catalog:
            self._whole = (self.catalog, set())
        whole = self._whole[1]
        for item in rule.pattern:
            for spec in item.specs:
                if spec.last is None and (spec.field, spec.mask) in whole:
                    continue  # checked before: a field and mask the check allows
                if spec.last is not None:
                    raise rule_error(
                        "ITEM_LAST",
                        f"Not support range: FD matches exact values only ('{spec.field}' "
                        f"has a 'last')",
                        item.index,
                    )
                width = self._field_width(spec.field)
                if width is not None:
                    full = (1 << width) - 1
                    mask = spec.mask & full
                    if mask not in (0, full) and (spec.field, mask) not in FIELD_MASKS:
                        raise rule_error(
                            "ITEM",
                            f"Invalid {item.type.upper()} mask: FD matches whole fields "
                            f"only; '{spec.field}' mask {spec.mask:#x} covers part of its "
                            f"{width} bits (use mask 0 or {full:#x})",
                            item.index,
                        )
                if len(whole) < 4096:
                    whole.add((spec.field, spec.mask))

    def _field_width(self, name: str) -> int | None:
        if self.catalog is not None:
            fd = self.catalog.get(name)
            return None if fd is None else fd.width
        entry = _CATALOG.get(name)
        return None if entry is None else entry[2]

    def _check_actions(
        self, rule: FlowRule, vsi: Vsi
    ) -> tuple[str, int | None, tuple[int, int] | None, int | None, int]:
        dest: Action | None = None
        mark: Action | None = None
        count: Action | None = None
        nq = vsi.num_queues
        for a in rule.actions:
            if a.type in ("end", "void"):
                continue
            if a.type in DESTINATIONS:
                if dest is not None:
                    raise rule_error(
                        "ACTION",
                        f"Unsupported action combination: '{dest.type}' and '{a.type}'; "
                        "an FD rule has one destination",
                        a.index,
                    )
                dest = a
                if a.type == "queue":
                    if a.queue is None or not 0 <= a.queue < nq:
                        raise rule_error(
                            "ACTION",
                            f"Invalid queue for FDIR.: queue {a.queue} is not one of "
                            f"{vsi.name}'s {nq} queues (0..{nq - 1})",
                            a.index,
                        )
                elif a.type == "rss":
                    _check_region(a, vsi)
            elif a.type == "mark":
                if mark is not None:
                    raise rule_error("ACTION", "Too many mark actions", a.index)
                if a.mark is not None and not 0 <= a.mark <= 0xFFFFFFFF:
                    raise rule_error(
                        "ACTION_CONF", f"mark id {a.mark} does not fit in 32 bits", a.index
                    )
                mark = a
            elif a.type == "count":
                if count is not None:
                    raise rule_error("ACTION", "Too many count actions", a.index)
                count = a
            else:
                raise rule_error(
                    "ACTION",
                    f"Invalid action. FD takes queue, rss, drop, passthru, mark and count, "
                    f"not '{a.type}'",
                    a.index,
                )
        if dest is None and mark is None and count is None:
            raise rule_error("ACTION", "Empty action: an FD rule needs at least one action")
        mark_id = None if mark is None else (mark.mark or 0)
        if dest is None or dest.type == "passthru":
            return "passthru", None, None, mark_id, 0
        if dest.type == "queue":
            return "to_queue", dest.queue, None, mark_id, 3
        if dest.type == "rss":
            return "to_qgroup", None, (dest.queues[0], len(dest.queues)), mark_id, 3
        return "drop", None, None, mark_id, 3

    def _pick_pool(self, vsi: Vsi) -> str:
        be = self._pools["best effort"]
        if vsi.kind == "pf":
            name = self._guar_pool(vsi.pf)
            guar = self._pools[name]
            if guar[0] < guar[1]:
                return name
            if be[0] < be[1]:
                return "best effort"
            raise rule_error(
                "HANDLE",
                f"no space: PF {vsi.pf}'s guaranteed pool ({guar[1]}) and the shared "
                f"best-effort pool ({be[1]}) are full (the maximum number of flow director "
                f"filters has been reached)",
            )
        if be[0] < be[1]:
            return "best effort"
        raise rule_error(
            "HANDLE",
            f"no space: the shared best-effort pool ({be[1]}) is full, and {vsi.name} "
            f"({vsi.kind.upper()} VSI) has no guaranteed FD entries",
        )


_HANDLE = ERROR_TYPES["HANDLE"][0]


class _VirtchnlRefusal(RuleError):
    """A VF's rule that the PF refused when asked to add it (see _virtchnl_refusal)."""


def _virtchnl_refusal(err: RuleError) -> RuleError:
    """A VF's rule the PF refuses, as iavf reports it: the kernel's
    ice_vc_add_fdir_fltr answers with a status word (VIRTCHNL_FDIR_FAILURE_RULE_EXIST for
    a duplicate, _CONFLICT when ice_vc_fdir_config_input_set fails, _NORESOURCE when the
    table has no room), iavf_fdir_add logs it and returns -1, and iavf_fdir_create sets
    "Failed to add filter rule." with errno 1 (EPERM)."""
    first = err.message.split("\n", 1)[0]
    if first.startswith("Rule already exists"):
        why = "the rule is already existed"
    elif first.startswith("no space"):
        why = "no hw resource"
    else:
        why = "the rule is conflict with existing rule"
    base = rule_error("HANDLE", f"Failed to add filter rule.\n{err.message}")
    out = _VirtchnlRefusal(base.message, base.category, base.type_code, None, EPERM)
    out.log = (*err.log, f"iavf_fdir_add(): Failed to add rule request due to {why}")
    return out


def _gtpu_attr(ice: IceFlowType | None, vsi: Vsi) -> str | None:
    """The GTP-U attribute the profile requires. A VF's rules are programmed by the
    PF's virtchnl handler (the kernel's ice_virtchnl_fdir.c), whose flow code has no
    session attribute (only ice_attr_gtpu_eh/_up/_down): a VF's GTP-U profile without
    gtp_psc also takes G-PDUs with the PDU session container, as DTS's iavf cases
    see."""
    if ice is None or (vsi.kind != "pf" and ice.gtpu_attr == "session"):
        return None
    return ice.gtpu_attr


def _check_region(a: Action, vsi: Vsi) -> None:
    qs = a.queues
    if len(qs) <= 1:
        raise rule_error("ACTION", "Queue region size can't be 0 or 1.", a.index)
    for x, y in zip(qs, qs[1:]):
        if y != x + 1:
            raise rule_error(
                "ACTION",
                f"Discontinuous queue region: {x} is followed by {y}; list consecutive queues",
                a.index,
            )
    if qs[0] < 0 or qs[-1] >= vsi.num_queues:
        raise rule_error(
            "ACTION",
            f"Invalid queue region indexes.: queues {qs[0]}..{qs[-1]} are not all among "
            f"{vsi.name}'s {vsi.num_queues} queues",
            a.index,
        )
    n = len(qs)
    if n & (n - 1) or n > FD_MAX_QREGION:
        raise rule_error(
            "ACTION",
            f"The region size should be any of the following values:1, 2, 4, 8, 16, 32, 64, "
            f"128 as long as the total number of queues do not exceed the VSI allocation "
            f"(got {n})",
            a.index,
        )


def _describe(input_set: InputSet) -> str:
    return " ".join(f"{w}/{m:#06x}" for w, m in input_set) or "(nothing)"


def _last_item(rule: FlowRule) -> int | None:
    items = rule.items
    return items[-1].index if items else None


__all__ = ["FD_MAX_FILTERS", "FlowDirector", "Profile", "flow_type_label"]

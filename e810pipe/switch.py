"""The switch block: MAC forwarding to VSIs, and advanced (recipe) rules from rte_flow.

The E810 switch decides which VSI a received packet goes to. This model has two
tables, looked up in this order:

1. **Advanced rules** (``ice_add_adv_rule``): exact matches on field-vector words
   under per-word 16-bit masks, built from rte_flow rules. A rule's words are
   packed into *recipes* of at most 4 lookup words (a recipe matches 5 words, one
   being the switch ID), and up to 5 recipes are chained, so a rule compares at
   most 20 words (``ICE_MAX_CHAIN_WORDS``). Rules with the same input set (the
   words and their masks), the same recipe priority and the same tunnel type
   share their recipes, as ``ice_find_recp`` does; the device has 64 recipes.
2. **MAC rules** (the legacy MAC lookup): each VSI with a ``mac`` in the
   :class:`~e810pipe.device.Device` receives packets whose outer destination MAC
   is that address. Two VSIs with one MAC share a VSI list (replication). Every
   other packet takes the **default MAC rule** to the PF VSI of the ingress port.

Modelling choices (the switch always decides, so :meth:`Switch.lookup` always
returns a Verdict):

- **Priority.** DPDK maps rte_flow priority ``p`` (0 or 1; anything else is
  rejected) to recipe priority ``6 - p``. A higher recipe priority is looked up
  first; among rules of one recipe priority that all match, the rule added first
  wins (the hardware's tie-break is not documented). Advanced rules come before
  MAC rules.
- **Same lookups twice.** As in ``ice_adv_add_update_vsi_list``: two rules with
  identical lookups that both forward to VSIs are merged into a VSI list (the hit
  reports ``to_vsi_list``); if either one forwards to a queue, a queue group or
  drops, the second rule is rejected.
- **Broadcast** (ff:ff:ff:ff:ff:ff) goes to the PF VSI: DPDK installs a broadcast
  MAC filter on the PF VSI, even with ``default-mac-disable``. (The kernel adds
  one to every VF VSI too, which would make it a VSI list; not modelled.)
  **Multicast** takes the default MAC rule.
- **default-mac-disable** (``device.default_mac_disable``): the PF's own MAC
  filter and the default rule are both gone, so a packet that no rule matches is
  dropped ("drop all packets by default, only packets hit on filter rules will
  pass", DPDK ``ice.rst``). VF/VMDq MAC rules and broadcast still forward.
- **Queues** in verdicts are relative to the VSI. ``queue``/``rss`` actions refer
  to the queues of the PF VSI of the rule's port (DPDK adds ``pf->base_queue +
  vsi->base_queue``). A switch queue decision has queue priority
  :data:`QUEUE_PRIORITY` (7): a switch queue beats an FD queue (priority 3),
  which beats RSS (tc-queue-filters.rst). Forwarding to a VSI leaves the queue to
  FD/RSS (priority 0).
- **Not modelled:** the extra metadata lookup words ``ice_add_special_words``
  adds (direction, tunnel flag, VLAN flags), the root recipe a chained rule also
  allocates, result-index exhaustion, the firmware's legacy recipes (not charged
  against the 64), DPDK's pattern allow-list and its 32-byte input-set limit.
- **Ports.** One switch (and one recipe budget) serves the device. Rules may be
  for any port; an Rx rule matches only packets from its own port (the rule's
  source is the port's lport), and :meth:`Switch.lookup` models packets that
  arrive on ``port`` (PF 0 unless given).
- **VSI lists.** A ``to_vsi_list`` verdict names every VSI in ``vsis`` and the
  first of them in ``vsi``; a replicating consumer should deliver to all.

Actions: ``queue`` (FWD_TO_Q), ``rss`` with 2..128 contiguous queues, a power of
two (FWD_TO_QGRP), ``drop``, ``vf`` with ``queue`` = VF index (the DCF form,
FWD_TO_VSI), and two forms the YAML rules pass in ``rule.extra``:
``{"to_vsi": N}`` and ``{"to_vsi_list": [N, ...]}``. Exactly one fate per rule.
``mark``, ``count``, ``passthru`` and the rest are rejected ("Unsupported
action"), as ``ice_switch_filter.c`` allows only RSS, QUEUE and DROP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .device import Device, Vsi
from .engine import Capacity, Engine, Frame, Match, Verdict
from .errors import RuleError, UsageError
from .fields import Word, word_at
from .rules import Action, FlowRule, rule_error

MAX_RECIPES = 64  # ICE_MAX_NUM_RECIPES
WORDS_PER_RECIPE = 4  # ICE_NUM_WORDS_RECIPE: 5 match words, one is the switch ID
MAX_CHAIN = 5  # ICE_MAX_CHAIN_RECIPE
MAX_CHAIN_WORDS = WORDS_PER_RECIPE * MAX_CHAIN  # ICE_MAX_CHAIN_WORDS
SW_PRI_BASE = 6  # ICE_SW_PRI_BASE: recipe priority = 6 - rte_flow priority
MAX_RTE_PRIORITY = 1  # "Allow only two priority values - 0 or 1"
QUEUE_PRIORITY = 7  # queue priority of a switch to_queue / to_qgroup / drop decision
QGROUP_SIZES = frozenset(1 << k for k in range(1, 8))  # 2..128 (ICE_SW_MAX_QUEUES)
BROADCAST = b"\xff" * 6

_VSI_FATES = ("to_vsi", "to_vsi_list")
_IGNORED_ACTIONS = ("void", "end")


def _mac_bytes(text: str, where: str) -> bytes:
    raw = text.replace(":", "").replace("-", "").replace(".", "")
    try:
        mac = bytes.fromhex(raw)
    except ValueError:
        mac = b""
    if len(mac) != 6:
        raise UsageError(f"{where}: '{text}' is not a MAC address (expected 00:11:22:33:44:55)")
    return mac


def _mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


@dataclass(frozen=True)
class Fate:
    """What a switch rule does with a packet it matches."""

    action: str  # to_vsi, to_vsi_list, to_queue, to_qgroup, drop
    vsi: int | None = None
    vsis: tuple[int, ...] = ()
    queue: int | None = None
    qgroup: tuple[int, int] | None = None  # (first queue, size), relative to `vsi`


@dataclass
class _Recipe:
    """One input set at one priority: a chain of 1..5 hardware recipes."""

    ids: tuple[int, ...]
    priority: int  # recipe priority, 5 or 6
    tunnel: str | None
    input_set: tuple[tuple[Word, int], ...]  # (word, mask), canonical order
    table: dict[tuple[int, ...], list[_Entry]] = field(default_factory=dict)
    rules: set[int] = field(default_factory=set)

    @property
    def label(self) -> str:
        ids = "+".join(str(i) for i in self.ids)
        return f"recipe{'s' if len(self.ids) > 1 else ''} {ids} (priority {self.priority})"


# (parse result, switch change count, bytes the words need, per priority level: per
# recipe, the (byte offset, mask) of its words, or None when a protocol is absent;
# the destination MAC's word offsets)
_LookupPlan = tuple[
    Any,
    int,
    int,
    tuple[tuple[tuple[_Recipe, tuple[tuple[int, int], ...] | None], ...], ...],
    tuple[int, ...] | None,  # byte offsets of the destination MAC words (None: no MAC)
]


@dataclass
class _Entry:
    rule_id: int
    seq: int  # order of addition: the tie-break among equal priorities
    rule: FlowRule
    match: Match
    fate: Fate
    recipe: _Recipe
    values: tuple[int, ...]

    @property
    def lookups(self) -> tuple[int, frozenset[int], str | None]:
        """What makes two rules' lookups identical besides recipe and values."""
        return (self.rule.port, self.match.ptypes, self.match.tunnel_flag)


def _recipe_key(
    priority: int, match: Match
) -> tuple[int, str | None, tuple[tuple[Word, int], ...]]:
    words = sorted(match.input_set, key=lambda wm: (wm[0].proto_id, wm[0].offset, wm[1]))
    return (priority, match.tunnel_flag, tuple(words))


class Switch(Engine):
    """The device's switch, seen by packets arriving on one port.

    Args:
        device: the VSIs, their queues and MACs, and ``default_mac_disable``.
        port: the PF the packets arrive on: only its rules apply, its VSIs' MACs
            are the MAC rules, and its PF VSI takes the default MAC rule.
        proto_ids: protocol ID names (``Package.proto_ids``), for word names in
            verdicts; without it words print as ``id@offset``.

    MAC rules are built from the device when the switch is created; call
    :meth:`refresh_macs` after changing VSI MACs.
    """

    name = "switch"

    def __init__(
        self,
        device: Device,
        port: int = 0,
        proto_ids: Mapping[str, int] | None = None,
    ) -> None:
        if not 0 <= port < len(device.pfs):
            raise UsageError(f"switch port {port}: the device has {len(device.pfs)} PF(s)")
        self.device = device
        self.port = port
        self.drop_wins = True  # a drop rule hit at any recipe priority drops the packet
        ids = dict(proto_ids or {})
        self._names = {v: k for k, v in ids.items()}
        mac_id = ids.get("MAC_OF_OR_S", 1)
        self._names.setdefault(mac_id, "MAC_OF_OR_S")
        self._dmac_words = (Word(mac_id, 0), Word(mac_id, 2), Word(mac_id, 4))
        self._recipes: dict[tuple[int, str | None, tuple[tuple[Word, int], ...]], _Recipe] = {}
        self._levels: list[list[_Recipe]] = []  # recipes by priority, highest first
        self._entries: dict[int, _Entry] = {}
        self._seq = 0
        self._macs: dict[bytes, tuple[Vsi, ...]] = {}
        self._mac_memo: dict[tuple, Verdict] = {}
        self._verdict_memo: dict[tuple, Verdict] = {}  # see lookup; emptied by add/remove
        self._changes = 0  # counts adds and removes: lookup plans of older tables are stale
        self._lookup_plans: dict[int, _LookupPlan] = {}  # id(parse result) -> plan
        self.refresh_macs()

    # -- MAC rules ---------------------------------------------------------------

    @property
    def pf_vsi(self) -> Vsi:
        return self.device.pfs[self.port].vsi

    def refresh_macs(self) -> None:
        """Rebuild the MAC rules of every PF from its VSIs' MACs."""
        self._port_macs: list[dict[bytes, tuple[Vsi, ...]]] = []
        for pf in self.device.pfs:
            macs: dict[bytes, list[Vsi]] = {}
            for v in pf.vsis:
                if v.mac is None:
                    continue
                if v.kind == "pf" and self.device.default_mac_disable:
                    continue  # default-mac-disable skips the PF's own MAC filter
                mac = _mac_bytes(v.mac, f"VSI {v.number} ({v.name}) mac")
                macs.setdefault(mac, []).append(v)
            for v in pf.vsis:
                for m in v.mcast:
                    entry = macs.setdefault(_mac_bytes(m, f"VSI {v.number} multicast"), [])
                    if v not in entry:
                        entry.append(v)
            # the kernel PF gives each VF VSI a broadcast MAC filter as well as its own
            # (ice_vf_rebuild_host_mac_cfg); with the PF's (ice_init_mac_fltr) they share
            # one lookup, a VSI list: a broadcast frame reaches the PF and every VF
            vfs = [v for v in pf.vsis if v.kind == "vf"]
            if vfs:
                macs.setdefault(BROADCAST, [pf.vsi]).extend(vfs)
            self._port_macs.append({m: tuple(vs) for m, vs in macs.items()})
        self._macs = self._port_macs[self.port]
        self._mac_memo = {}
        self._verdict_memo = {}

    # -- validation --------------------------------------------------------------

    def _fate(self, rule: FlowRule) -> Fate:
        """The rule's single fate, or a RuleError as ice_switch_filter.c gives it."""
        # the VSI of the port the rule was created on: its PF VSI, or the VF VSI
        # of a VF port (``rule.extra["vsi"]``, set by the pipeline)
        vsi_no = rule.extra.get("vsi")
        pf_vsi = self.device.vsi(vsi_no) if vsi_no is not None else self.device.pfs[rule.port].vsi
        fates: list[tuple[Fate, int | None]] = []
        for a in rule.actions:
            if a.type in _IGNORED_ACTIONS:
                continue
            fate = self._action_fate(a, pf_vsi)
            if fates:
                raise rule_error(
                    "ACTION",
                    f"too many actions: a switch rule takes one fate ({a.type} follows "
                    f"{fates[0][0].action})",
                    a.index,
                )
            fates.append((fate, a.index))
        for key in ("to_vsi", "to_vsi_list"):
            if key not in rule.extra:
                continue
            fate = self._extra_fate(key, rule.extra[key])
            if fates:
                raise rule_error(
                    "ACTION",
                    f"too many actions: '{key}' and {fates[0][0].action} both given; "
                    "a switch rule takes one fate",
                    fates[0][1],
                )
            fates.append((fate, None))
        if not fates:
            raise rule_error(
                "ACTION", "no valid actions specified: give queue, rss, drop or a VSI", None
            )
        return fates[0][0]

    def _action_fate(self, a: Action, pf_vsi: Vsi) -> Fate:
        nq = pf_vsi.num_queues
        if a.type == "queue":
            if a.queue is None or not 0 <= a.queue < nq:
                raise rule_error(
                    "ACTION",
                    f"invalid queue {a.queue}: the PF VSI ({pf_vsi.name}) has queues 0..{nq - 1}",
                    a.index,
                )
            return Fate("to_queue", vsi=pf_vsi.number, queue=a.queue)
        if a.type == "rss":
            qs = a.queues
            if len(qs) not in QGROUP_SIZES:
                raise rule_error(
                    "ACTION",
                    f"invalid queue region: {len(qs)} queue(s); a switch queue group has "
                    "2, 4, 8, 16, 32, 64 or 128 queues",
                    a.index,
                )
            if any(q != qs[0] + i for i, q in enumerate(qs)):
                raise rule_error(
                    "ACTION_CONF",
                    "RSS queues must be contiguous and ascending for a switch queue group, got "
                    + " ".join(str(q) for q in qs),
                    a.index,
                )
            if qs[0] < 0 or qs[0] + len(qs) > nq:
                raise rule_error(
                    "ACTION",
                    f"invalid queue region {qs[0]}..{qs[-1]}: the PF VSI ({pf_vsi.name}) "
                    f"has queues 0..{nq - 1}",
                    a.index,
                )
            return Fate("to_qgroup", vsi=pf_vsi.number, qgroup=(qs[0], len(qs)))
        if a.type == "drop":
            return Fate("drop")
        if a.type == "vf":
            pf = self.device.pfs[pf_vsi.pf]
            vfs = [v for v in pf.vsis if v.kind == "vf"]
            if a.queue is None or not 0 <= a.queue < len(vfs):
                raise rule_error(
                    "ACTION",
                    f"invalid VF id {a.queue}: PF {pf.number} has {len(vfs)} VF(s)",
                    a.index,
                )
            return Fate("to_vsi", vsi=vfs[a.queue].number)
        raise rule_error(
            "ACTION",
            f"unsupported action '{a.type}': the switch takes queue, rss (queue group), "
            "drop or a VSI (ice_switch_filter has no mark, count or passthru)",
            a.index,
        )

    def _extra_fate(self, key: str, value: object) -> Fate:
        def vsi_number(v: object) -> int:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < len(self.device.vsis):
                raise rule_error(
                    "ACTION_CONF",
                    f"{key}: VSI {v!r} does not exist (the device has VSIs "
                    f"0..{len(self.device.vsis) - 1})",
                    None,
                )
            return v

        if key == "to_vsi":
            return Fate("to_vsi", vsi=vsi_number(value))
        if not isinstance(value, (list, tuple)) or not value:
            raise rule_error("ACTION_CONF", "to_vsi_list: give a non-empty list of VSIs", None)
        vsis = tuple(vsi_number(v) for v in value)
        if len(set(vsis)) != len(vsis):
            raise rule_error("ACTION_CONF", "to_vsi_list: a VSI is listed twice", None)
        return Fate("to_vsi_list", vsis=vsis)

    def _check_pattern(self, rule: FlowRule, match: Match) -> None:
        items = [i for i in rule.pattern if i.type not in ("end", "void")]
        last_index = items[-1].index if items else 0
        if match.raw or any(i.type == "raw" for i in items):
            raise rule_error(
                "ITEM",
                "the switch takes no raw patterns; Flow Director does",
                items[0].index if items else 0,
            )
        for item in items:
            if item.type == "ipv6_frag_ext":
                # ice_switch_parse_pattern has no case for it
                raise rule_error("ITEM", "Invalid pattern item.", item.index)
            for spec in item.specs:
                if spec.last is not None:
                    raise rule_error(
                        "ITEM_LAST",
                        f"the switch does not support ranges ('last' on '{spec.field}')",
                        item.index,
                    )
                if spec.field == "ipv4.packet_id" and spec.mask:
                    # ice_switch_parse_pattern: no IPv4 identification in an input set
                    raise rule_error("ITEM", "Invalid IPv4 mask.", item.index)
        if match.ranges:
            raise rule_error("ITEM_LAST", "the switch does not support ranges", last_index)
        n = len(match.words)
        any_only = bool(items) and all(i.type == "any" for i in items)
        # `any` alone matches every packet (pattern_any); a profile rule (PFCP's s_field,
        # ICE_SW_TUN_PROFID_*) matches its PTYPEs with no lookup word
        if n == 0 and not any_only and not rule.extra.get("profile_rule"):
            raise rule_error(
                "ITEM_SPEC",
                "invalid input set: the switch needs at least one matched field",
                items[0].index if items else 0,
            )
        if n > MAX_CHAIN_WORDS:
            raise rule_error(
                "ITEM",
                f"pattern needs {n} words; a switch rule chains at most {MAX_CHAIN} recipes "
                f"of {WORDS_PER_RECIPE} words",
                last_index,
            )

    def validate(self, rule: FlowRule, match: Match) -> None:
        self._plan(rule, match)

    def _plan(
        self, rule: FlowRule, match: Match
    ) -> tuple[Fate, tuple[int, str | None, tuple[tuple[Word, int], ...]], tuple[int, ...]]:
        if not rule.ingress:
            raise rule_error("ATTR_INGRESS", "the switch model takes ingress rules only")
        if not 0 <= rule.priority <= MAX_RTE_PRIORITY:
            raise rule_error(
                "ATTR_PRIORITY",
                f"invalid priority {rule.priority} for a switch rule: 0 or 1 "
                f"(recipe priority {SW_PRI_BASE} or {SW_PRI_BASE - 1})",
            )
        if not 0 <= rule.port < len(self.device.pfs):
            raise rule_error(
                "ATTR", f"no port {rule.port}: the device has {len(self.device.pfs)} PF(s)"
            )
        fate = self._fate(rule)
        self._check_pattern(rule, match)
        key = _recipe_key(SW_PRI_BASE - rule.priority, match)
        by_word = {w: v for w, v, _ in match.words}
        values = tuple(by_word[w] for w, _ in key[2])
        recipe = self._recipes.get(key)
        if recipe is None:
            need = -(-len(key[2]) // WORDS_PER_RECIPE)
            used = self.recipes_used
            if used + need > MAX_RECIPES:
                raise rule_error(
                    "HANDLE",
                    f"no free switch recipe: this input set ({len(key[2])} words, "
                    f"priority {key[0]}) needs {need} recipe(s) and {used} of {MAX_RECIPES} "
                    "are in use; rules with the same fields, masks and priority share recipes",
                )
        else:
            self._check_duplicate(recipe, values, rule, match, fate)
        return fate, key, values

    def _check_duplicate(
        self, recipe: _Recipe, values: tuple[int, ...], rule: FlowRule, match: Match, fate: Fate
    ) -> None:
        for e in recipe.table.get(values, ()):
            if e.lookups != (rule.port, match.ptypes, match.tunnel_flag):
                continue
            if e.fate.action not in _VSI_FATES or fate.action not in _VSI_FATES:
                raise rule_error(
                    "HANDLE",
                    f"rule {e.rule_id} already has these exact lookups ({e.fate.action}); "
                    "the switch merges only VSI forwards into a VSI list",
                )
            have = set(e.fate.vsis) | ({e.fate.vsi} if e.fate.vsi is not None else set())
            new = set(fate.vsis) | ({fate.vsi} if fate.vsi is not None else set())
            if new <= have:
                raise rule_error(
                    "HANDLE",
                    f"rule {e.rule_id} already forwards these lookups to VSI "
                    + ", ".join(str(v) for v in sorted(new)),
                )

    # -- rule table --------------------------------------------------------------

    def add(self, rule_id: int, rule: FlowRule, match: Match) -> None:
        if rule_id in self._entries:
            raise rule_error("HANDLE", f"switch rule {rule_id} exists already")
        fate, key, values = self._plan(rule, match)
        recipe = self._recipes.get(key)
        if recipe is None:
            need = -(-len(key[2]) // WORDS_PER_RECIPE)
            taken = {i for r in self._recipes.values() for i in r.ids}
            ids = tuple(i for i in range(MAX_RECIPES) if i not in taken)[:need]
            recipe = _Recipe(ids, key[0], key[1], key[2])
            self._recipes[key] = recipe
            self._relevel()
        entry = _Entry(rule_id, self._seq, rule, match, fate, recipe, values)
        self._verdict_memo = {}
        self._changes += 1
        self._seq += 1
        recipe.table.setdefault(values, []).append(entry)
        recipe.rules.add(rule_id)
        self._entries[rule_id] = entry

    def remove(self, rule_id: int) -> None:
        entry = self._entries.pop(rule_id, None)
        if entry is None:
            raise rule_error("HANDLE", f"no switch rule {rule_id}")
        recipe = entry.recipe
        self._verdict_memo = {}
        self._changes += 1
        bucket = recipe.table[entry.values]
        bucket.remove(entry)
        if not bucket:
            del recipe.table[entry.values]
        recipe.rules.discard(rule_id)
        if not recipe.rules:
            key = (recipe.priority, recipe.tunnel, recipe.input_set)
            del self._recipes[key]
            self._relevel()

    def _relevel(self) -> None:
        by_prio: dict[int, list[_Recipe]] = {}
        for r in self._recipes.values():
            by_prio.setdefault(r.priority, []).append(r)
        self._levels = [by_prio[p] for p in sorted(by_prio, reverse=True)]

    @property
    def recipes_used(self) -> int:
        return sum(len(r.ids) for r in self._recipes.values())

    def capacity(self) -> Capacity:
        return Capacity(
            used={"recipes": self.recipes_used, "rules": len(self._entries)},
            total={"recipes": MAX_RECIPES},
        )

    def recipe_table(self) -> list[tuple[tuple[int, ...], int, str, int]]:
        """(recipe ids, recipe priority, input set, rule count) for listings."""
        return [
            (
                r.ids,
                r.priority,
                " ".join(f"{self._wname(w)}/{m:#06x}" for w, m in r.input_set),
                len(r.rules),
            )
            for r in self._recipes.values()
        ]

    def _wname(self, w: Word) -> str:
        name = self._names.get(w.proto_id)
        return f"{name}+{w.offset}" if name else str(w)

    # -- lookup ------------------------------------------------------------------

    def lookup(self, frame: Frame, port: int | None = None) -> Verdict:
        """The verdict for a packet arriving on PF `port` (default: the switch's port)."""
        if port is None:
            port = self.port
        res = frame.res
        plan = self._lookup_plans.get(id(res))
        if plan is None or plan[0] is not res or plan[1] != self._changes:
            plan = self._lookup_plan(frame)
        data = frame.data
        short = len(data) < plan[2]
        found: _Entry | None = None
        found_bucket: list[_Entry] = []
        found_level: tuple = ()
        for level in plan[3]:
            best: _Entry | None = None
            best_bucket: list[_Entry] = []
            for recipe, offsets in level:
                if offsets is None:  # a word's protocol is not in the packet
                    continue
                if short:
                    values = tuple([word_at(data, a) & m for a, m in offsets])
                else:
                    values = tuple([((data[a] << 8) | data[a + 1]) & m for a, m in offsets])
                bucket = recipe.table.get(values)
                if not bucket:
                    continue
                for e in bucket:  # in order of addition
                    if best is not None and e.seq > best.seq:
                        break
                    if e.rule.port == port and e.match.applies(frame):
                        best, best_bucket = e, bucket
                        break
            if best is None:
                continue
            if found is None:
                found, found_bucket, found_level = best, best_bucket, level
            elif best.fate.action == "drop":
                # a drop at a lower recipe priority still drops (drop_wins): what DTS's
                # ice_switch_filter priority cases see on the NIC
                found, found_bucket = best, best_bucket
            if found.fate.action == "drop" or not self.drop_wins:
                break
        if found is not None:
            others: tuple[_Entry, ...] = ()
            if found.fate.action in _VSI_FATES:
                others = self._other_vsi_hits(found, found_level, frame, port, data, short)
            # The verdict depends on the hit, its bucket (VSI lists) and the words it
            # read: built once per distinct combination until the rules change.
            read = {w: frame.word(w) for w, _ in found.recipe.input_set}
            memo_key = (id(found), tuple(read.values()), tuple(id(e) for e in others))
            hit = self._verdict_memo.get(memo_key)
            if hit is None:
                if len(self._verdict_memo) >= 1 << 16:
                    self._verdict_memo.clear()
                hit = self._advanced_verdict(found, found_bucket, frame, read, others)
                self._verdict_memo[memo_key] = hit
            return hit
        dmac = plan[4]
        if dmac is not None and not short:
            parts: tuple[int | None, ...] = tuple([(data[a] << 8) | data[a + 1] for a in dmac])
        else:
            parts = tuple([frame.word(w) for w in self._dmac_words])
        return self._mac_verdict(parts, port)

    def _other_vsi_hits(
        self, found: _Entry, level: tuple, frame: Frame, port: int, data: bytes, short: bool
    ) -> tuple[_Entry, ...]:
        """Rules of other recipes at `found`'s priority that also match and forward to
        VSIs: the packet goes to each of their VSIs too, as DTS's DCF cases see on the
        NIC (two rules, one's input set inside the other's, to two VFs: both receive)."""
        out: list[_Entry] = []
        for recipe, offsets in level:
            if offsets is None or recipe is found.recipe:
                continue
            if short:
                values = tuple([word_at(data, a) & m for a, m in offsets])
            else:
                values = tuple([((data[a] << 8) | data[a + 1]) & m for a, m in offsets])
            for e in recipe.table.get(values, ()):
                if e.rule.port == port and e.match.applies(frame):
                    if e.fate.action in _VSI_FATES:
                        out.append(e)
                    break
        return tuple(out)

    def _lookup_plan(self, frame: Frame) -> _LookupPlan:
        """Where each recipe's words sit in packets parsed as `frame.res` (None: one of
        its protocols is absent, so the recipe cannot match), by priority level."""
        po = frame.po
        end = 0
        levels = []
        for level in self._levels:
            steps: list[tuple[_Recipe, tuple[tuple[int, int], ...] | None]] = []
            for recipe in level:
                offsets: list[tuple[int, int]] = []
                for w, m in recipe.input_set:
                    base = po.get(w.proto_id)
                    if base is None:
                        break
                    offsets.append((base + w.offset, m))
                    end = max(end, base + w.offset + 2)
                else:
                    steps.append((recipe, tuple(offsets)))
                    continue
                steps.append((recipe, None))
            levels.append(tuple(steps))
        base = po.get(self._dmac_words[0].proto_id)
        dmac = None if base is None else tuple(base + w.offset for w in self._dmac_words)
        if dmac is not None:
            end = max(end, dmac[-1] + 2)
        plan = (frame.res, self._changes, end, tuple(levels), dmac)
        if len(self._lookup_plans) >= 1 << 14:
            self._lookup_plans.clear()
        self._lookup_plans[id(frame.res)] = plan
        return plan

    def words_read(self, ptype: int) -> list[tuple[int, int]]:
        """The destination MAC words and every recipe's words (recipes are not per PTYPE)."""
        out = [(w.proto_id, w.offset) for w in self._dmac_words]
        for level in self._levels:
            for recipe in level:
                out.extend((w.proto_id, w.offset) for w, _ in recipe.input_set)
        return out

    def _advanced_verdict(
        self,
        hit: _Entry,
        bucket: list[_Entry],
        frame: Frame,
        read: Mapping[Word, int | None],
        others: tuple[_Entry, ...] = (),
    ) -> Verdict:
        fate = hit.fate
        words = tuple((self._wname(w), read.get(w) or 0) for w, _ in hit.recipe.input_set)
        where = hit.rule.where
        note = f"switch rule {hit.rule_id}{' (' + where + ')' if where else ''}: {hit.recipe.label}"
        if fate.action in _VSI_FATES:
            vsis: list[int] = []
            for e in bucket:  # identical lookups forwarding to VSIs form one VSI list
                if e.fate.action in _VSI_FATES and e.lookups == hit.lookups:
                    for v in (e.fate.vsi,) if e.fate.vsi is not None else e.fate.vsis:
                        if v not in vsis:
                            vsis.append(v)
            for e in others:  # VSI forwards of other recipes at this priority
                for v in (e.fate.vsi,) if e.fate.vsi is not None else e.fate.vsis:
                    if v not in vsis:
                        vsis.append(v)
            if others:
                note += " and rule" + "s" * (len(others) > 1) + " "
                note += ", ".join(str(e.rule_id) for e in others)
            if len(vsis) > 1 or fate.action == "to_vsi_list":
                return Verdict(
                    block=self.name,
                    rule=hit.rule_id,
                    action="to_vsi_list",
                    vsi=vsis[0],
                    vsis=tuple(vsis),
                    words=words,
                    note=note + " -> VSI list " + ",".join(str(v) for v in vsis),
                )
            return Verdict(
                block=self.name,
                rule=hit.rule_id,
                action="to_vsi",
                vsi=vsis[0],
                words=words,
                note=f"{note} -> {self.device.vsi(vsis[0]).name}",
            )
        if fate.action == "to_queue":
            note += f" -> {self.device.vsi(fate.vsi or 0).name} queue {fate.queue}"
        elif fate.action == "to_qgroup" and fate.qgroup is not None:
            first, size = fate.qgroup
            note += f" -> {self.device.vsi(fate.vsi or 0).name} queues {first}..{first + size - 1}"
        else:
            note += ": drop"
        return Verdict(
            block=self.name,
            rule=hit.rule_id,
            action=fate.action,
            vsi=fate.vsi,
            queue=fate.queue,
            qgroup=fate.qgroup,
            priority=QUEUE_PRIORITY,
            words=words,
            note=note,
        )

    def _mac_verdict(self, parts: tuple[int | None, ...], port: int) -> Verdict:
        """The MAC lookup's verdict for the destination MAC words `parts` (None: no
        Ethernet header); the same destination MAC gives the same verdict."""
        key = (parts, self.device.default_mac_disable, port)
        hit = self._mac_memo.get(key)
        if hit is None:
            if len(self._mac_memo) >= 1 << 16:
                self._mac_memo.clear()
            hit = self._mac_memo[key] = self._mac_lookup(parts, port)
        return hit

    def _mac_lookup(self, parts: tuple[int | None, ...], port: int) -> Verdict:
        words = tuple((self._wname(w), v or 0) for w, v in zip(self._dmac_words, parts))
        mac: bytes | None = None
        if all(p is not None for p in parts):
            mac = b"".join((p or 0).to_bytes(2, "big") for p in parts)
        pf = self.device.pfs[port].vsi
        if mac is not None:
            vsis = self._port_macs[port].get(mac)
            if vsis is not None:
                if len(vsis) > 1:
                    return Verdict(
                        block=self.name,
                        action="to_vsi_list",
                        vsi=vsis[0].number,
                        vsis=tuple(v.number for v in vsis),
                        words=words,
                        note=f"MAC {_mac_text(mac)} -> VSI list " + ",".join(v.name for v in vsis),
                    )
                v = vsis[0]
                return Verdict(
                    block=self.name,
                    action="to_vsi",
                    vsi=v.number,
                    words=words,
                    note=f"MAC {_mac_text(mac)} -> {v.name} (VSI {v.number})",
                )
            if mac == BROADCAST:
                return Verdict(
                    block=self.name,
                    action="to_vsi",
                    vsi=pf.number,
                    words=words,
                    note=f"broadcast MAC rule -> PF {port} VSI {pf.number}",
                )
        if self.device.default_mac_disable:
            return Verdict(
                block=self.name,
                action="drop",
                words=words,
                note="no switch rule matched (default MAC rule disabled)",
            )
        return Verdict(
            block=self.name,
            action="to_vsi",
            vsi=pf.number,
            words=words,
            note=f"default MAC rule -> PF {port} VSI {pf.number}",
        )

    def rules(self) -> Iterable[tuple[int, FlowRule, Fate]]:
        """The advanced rules in order of addition: (rule id, rule, fate)."""
        for e in sorted(self._entries.values(), key=lambda e: e.seq):
            yield e.rule_id, e.rule, e.fate


__all__ = ["Fate", "RuleError", "Switch"]

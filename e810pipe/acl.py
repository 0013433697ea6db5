"""The ACL block: a ternary TCAM of 16 slices, carved into one table per profile.

Hardware facts this model rests on (see /work/shared/e810-facts.md §6 and DPDK
``drivers/net/intel/ice/base/ice_acl*.c``, ``ice_flow.c``):

* 16 TCAM slices of 512 entries, each entry a 40-bit (5-byte) key with a per-bit
  mask, 8192 entries in all. A key wider than 5 bytes *cascades* slices side by
  side (``num_cscd = ceil(width / 5)``); more entries *stack* rows of slices.
  Entries are handed out in units of 64.
* The key comes from the ACL field vector (32 words). The last cascaded slice keeps
  3 bytes for the packet direction, the profile ID and the range-checker result, so
  a scenario is at least 3 bytes wide.
* Each profile has 8 range checkers ({low, high, mask} on a 16-bit word); an entry
  matches on the checker's result bit, not on the word itself.
* Entries have one of 3 priorities, LOW, NORMAL, HIGH. The driver places HIGH
  entries from the lowest index up (first 25% of the scenario) and NORMAL / LOW
  from the top down (middle 50%, last 25%).
* Actions are metadata writes with action priority 3: DPDK uses drop
  (``ICE_MDID_RX_PKT_DROP``) and forward-to-queue (``ICE_MDID_RX_DST_Q``).
* At most 15 concurrent tables.

Modelling choices (simplifications, or UNCONFIRMED where hardware behaviour is not
documented):

* One table (ACL scenario) per *profile*, a profile being the input set
  (PTYPEs, tunnel flag, words compared under a mask, words fed to range checkers).
  DPDK instead allocates one fixed 15/30-byte table and carves scenarios from it;
  a table per profile keeps the slice accounting visible. The profile number is
  also the table number.
* Key width = 2 bytes per compared word + 3 reserved bytes; range words do not
  widen the key (only their checker results are keyed). Words compared plus
  range words must fit the 32-word ACL field vector. The compared words are those
  of ``Match.words``, which leaves out a field's words whose mask is zero, so an
  IPv4 /8 prefix (one word) and a /24 prefix (two words) land in two profiles;
  see ``_input_words``.
* Slices: a table of ``n`` entries holds ``ceil(n / 64) * 64`` entries, i.e.
  ``ceil(n / 512)`` rows of ``cascade`` slices. Growing past the last row takes
  ``cascade`` more slices; removing entries gives a row back as soon as the rest
  fits in fewer rows, and the last entry frees the table.
* Each distinct (word, low, high) range of a profile takes one of its 8 checkers;
  a range used again by another rule of the profile shares the checker. A word is
  in range when ``low <= word <= high`` (as ``Match.matches``; the checker's own
  mask is taken as all ones). The driver itself ties one checker to each range
  field of a profile and writes each entry's bounds into it, so distinct bounds
  on one field would overwrite each other; counting distinct ranges is this
  model's reading of "8 range checkers per profile".
* rte_flow ``priority`` 0 -> HIGH, 1 -> NORMAL, 2 and above -> LOW (UNCONFIRMED;
  rte_flow's "lower number, higher priority" applied to the three TCAM levels).
* Lookup (UNCONFIRMED tie rules): every table whose profile applies to the packet
  is searched (the tables run concurrently); among all hits the highest entry
  priority wins, then the rule added first. With the driver's index placement
  and a lowest-index-wins TCAM, NORMAL and LOW ties would instead go to the most
  recent entry; that detail is not modelled.
* Actions: ``drop`` or ``queue`` (relative to the PF VSI of the rule's port), one
  per rule, both with queue priority 3. Everything else is rejected with an
  ``ACTION`` error naming the action's index. Egress rules are rejected; the
  ``group`` attribute is left to whoever dispatches rules to engines.
* Errors: running out of tables or TCAM slices is a ``HANDLE`` error (nothing in
  the rule is wrong, the device is full); running out of range checkers is an
  ``ITEM_LAST`` error pointing at the first item with a range.

Lookup speed: each table keeps its entries in tuple-space form, one hash map per
distinct mask (keyed by the masked key) as in Open vSwitch's classifier. Per PTYPE
a plan lists the words to read once and the subtables of every applicable table
in one list, best rank first (rank = entry priority, then age); the search stops
as soon as no remaining subtable can beat the hit found, so 1K rules cost a few
hash probes per packet, not 1K comparisons. Range conditions are checked after the
hash hit. Verdicts are cached per (rule, key) until the next rule change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .device import Device
from .engine import Capacity, Engine, Frame, Match, Verdict
from .fields import FV_WORDS, Word
from .rules import FlowRule, rule_error

SLICES = 16
SLICE_DEPTH = 512
KEY_BYTES = 5  # 40-bit key per slice
ALLOC_UNIT = 64
RESERVED_BYTES = 3  # direction, profile ID, range-checker result
MAX_TABLES = 15
RANGE_CHECKERS = 8
VERDICT_CACHE = 65536  # verdicts kept per (rule, key); dropped on any rule change
MAX_WORDS = FV_WORDS["acl"]  # 32

LOW, NORMAL, HIGH = 0, 1, 2
PRIORITY_NAMES = ("LOW", "NORMAL", "HIGH")
_SEQ_BITS = 40  # rank = (priority + 1) << _SEQ_BITS - sequence: higher rank wins


def entry_priority(attr_priority: int) -> int:
    """rte_flow ``priority`` attribute -> ACL entry priority (UNCONFIRMED mapping)."""
    if attr_priority <= 0:
        return HIGH
    if attr_priority == 1:
        return NORMAL
    return LOW


def cascade_for(num_words: int) -> int:
    """Slices side by side for a key comparing `num_words` field-vector words."""
    width = 2 * num_words + RESERVED_BYTES
    return -(-width // KEY_BYTES)


def _rows(entries: int) -> int:
    """Rows of stacked slices for `entries` entries (allocated in 64-entry units)."""
    allocated = -(-entries // ALLOC_UNIT) * ALLOC_UNIT
    return -(-allocated // SLICE_DEPTH)


def _read(data: bytes, po: Mapping[int, int], pid: int, off: int) -> int | None:
    base = po.get(pid)
    if base is None:
        return None
    at = base + off
    chunk = data[at : at + 2]
    if len(chunk) == 2:
        return (chunk[0] << 8) | chunk[1]
    return (chunk[0] << 8) if chunk else 0


def _input_words(match: Match) -> frozenset[Word]:
    """The words a rule's profile keys on.

    A field matched under a partial mask (an IPv4 /8 prefix) keeps only its words
    with a nonzero mask in ``Match.words``, so by default /8 and /24 prefixes of
    the same field make two profiles. If the compiler reports every word of the
    fields a rule names (``field_words``), the profile keys on all of them and the
    unmasked parts become don't-care bits of the entry, as in the driver, where
    the input set is the field and the mask lives in the TCAM entry.
    """
    words = {w for w, _, _ in match.words}
    words.update(getattr(match, "field_words", ()))
    return frozenset(words)


MAX_ACL_NORMAL_ENTRIES = 256  # ice_ethdev.h: ACL entry slots per PF


def _ice_slot_need(rule: FlowRule) -> tuple[int, int]:
    """(PF, slots) a rule takes as ice_acl_create_filter programs it: an eth / ipv4
    rule (IPv4 "other") is added to the other, UDP, TCP and SCTP profiles, 4 entries;
    an L4 rule to its own profile, 1."""
    items = [i.type for i in rule.pattern if i.type not in ("void", "end")]
    return rule.port, 4 if items and items[-1] == "ipv4" else 1


def _in_ranges(
    ranges: tuple[tuple[int, int, int, int], ...], data: bytes, po: Mapping[int, int]
) -> bool:
    for pid, off, lo, hi in ranges:
        got = _read(data, po, pid, off)
        if got is None or not lo <= got <= hi:
            return False
    return True


class _Entry:
    __slots__ = (
        "rule_id",
        "table",
        "prio",
        "rank",
        "mask",
        "value",
        "ranges",
        "range_keys",
        "action",
        "queue",
        "vsi",
    )

    def __init__(
        self,
        rule_id: int,
        table: _Table,
        prio: int,
        rank: int,
        mask: int,
        value: int,
        ranges: tuple[tuple[int, int, int, int], ...],
        range_keys: tuple[tuple[Word, int, int], ...],
        action: str,
        queue: int | None,
        vsi: int | None,
    ) -> None:
        self.rule_id = rule_id
        self.table = table
        self.prio = prio
        self.rank = rank
        self.mask = mask
        self.value = value
        self.ranges = ranges  # (proto_id, offset, low, high)
        self.range_keys = range_keys
        self.action = action
        self.queue = queue
        self.vsi = vsi


class _Subtable:
    """Entries of one table sharing one mask: masked key -> entries, best rank first."""

    __slots__ = ("mask", "buckets", "max_rank", "count")

    def __init__(self, mask: int) -> None:
        self.mask = mask
        self.buckets: dict[int, list[_Entry]] = {}
        self.max_rank = -1
        self.count = 0

    def insert(self, e: _Entry) -> None:
        bucket = self.buckets.setdefault(e.value, [])
        bucket.append(e)
        bucket.sort(key=lambda x: -x.rank)
        self.count += 1
        if e.rank > self.max_rank:
            self.max_rank = e.rank

    def delete(self, e: _Entry) -> None:
        bucket = self.buckets[e.value]
        bucket.remove(e)
        if not bucket:
            del self.buckets[e.value]
        self.count -= 1
        if e.rank == self.max_rank:
            self.max_rank = max((b[0].rank for b in self.buckets.values()), default=-1)


ProfileKey = tuple[frozenset[int], str | None, frozenset[Word], frozenset[Word]]


class _Table:
    """One ACL scenario: a profile's input set and the TCAM entries keyed on it."""

    def __init__(self, number: int, key: ProfileKey) -> None:
        ptypes, tunnel, words, range_words = key
        self.number = number
        self.key = key
        self.ptypes = ptypes
        self.tunnel_flag = tunnel
        self.words: tuple[Word, ...] = tuple(sorted(words, key=lambda w: (w.proto_id, w.offset)))
        self.range_words = range_words
        self.fetch = tuple((w.proto_id, w.offset) for w in self.words)
        self.names: tuple[str, ...] = tuple(str(w) for w in self.words)
        self.cascade = cascade_for(len(self.words))
        self.width = 2 * len(self.words) + RESERVED_BYTES
        self.entries: dict[int, _Entry] = {}
        self.subtables: dict[int, _Subtable] = {}
        self.order: list[_Subtable] = []
        self.max_rank = -1
        # (word, low, high) -> [checker index, rules using it]
        self.checkers: dict[tuple[Word, int, int], list[int]] = {}

    @property
    def rows(self) -> int:
        return _rows(len(self.entries))

    @property
    def slices(self) -> int:
        return self.cascade * self.rows

    def pack(self, words: tuple[tuple[Word, int, int], ...]) -> tuple[int, int]:
        """A Match's (word, value, mask) list as one packed (mask, value) pair."""
        by_word = {w: (v, m) for w, v, m in words}
        mask = value = 0
        for w in self.words:
            v, m = by_word.get(w, (0, 0))  # a field's unmasked word: don't care
            mask = (mask << 16) | m
            value = (value << 16) | (v & m)
        return mask, value

    def insert(self, e: _Entry) -> None:
        self.entries[e.rule_id] = e
        st = self.subtables.get(e.mask)
        if st is None:
            st = self.subtables[e.mask] = _Subtable(e.mask)
        st.insert(e)
        for rk in e.range_keys:
            slot = self.checkers.get(rk)
            if slot is None:
                used = {s[0] for s in self.checkers.values()}
                free = next(i for i in range(RANGE_CHECKERS) if i not in used)
                self.checkers[rk] = [free, 1]
            else:
                slot[1] += 1
        self._reorder()

    def delete(self, e: _Entry) -> None:
        del self.entries[e.rule_id]
        st = self.subtables[e.mask]
        st.delete(e)
        if not st.count:
            del self.subtables[e.mask]
        for rk in e.range_keys:
            slot = self.checkers[rk]
            slot[1] -= 1
            if not slot[1]:
                del self.checkers[rk]
        self._reorder()

    def _reorder(self) -> None:
        self.order = sorted(self.subtables.values(), key=lambda s: -s.max_rank)
        self.max_rank = self.order[0].max_rank if self.order else -1


class _PtypePlan:
    """Per PTYPE: the words to read once, the tables (with the indices of their words)
    and every table's subtables in one list, best rank first, for early exit."""

    __slots__ = ("fetch", "tables", "subs")

    def __init__(
        self,
        fetch: tuple[tuple[int, int], ...],
        tables: tuple[tuple[_Table, tuple[int, ...]], ...],
    ) -> None:
        self.fetch = fetch
        self.tables = tables
        subs = [(st, n) for n, (t, _) in enumerate(tables) for st in t.order]
        subs.sort(key=lambda x: -x[0].max_rank)
        self.subs = tuple(subs)


@dataclass(frozen=True)
class _Plan:
    key: ProfileKey
    table: _Table | None  # None: a new table is needed
    prio: int
    action: str
    queue: int | None
    vsi: int | None


class Acl(Engine):
    """The E810 ACL block: ternary TCAM tables, range checkers, drop/queue actions."""

    name = "acl"

    def __init__(self, device: Device, proto_names: Mapping[int, str] | None = None) -> None:
        self.device = device
        self.proto_names = dict(proto_names or {})
        self.tables: dict[ProfileKey, _Table] = {}
        self.entries: dict[int, _Entry] = {}
        self._seq = 0
        self._plans: dict[int, _PtypePlan] = {}
        self._verdicts: dict[tuple[int, int], Verdict] = {}
        # ice's layout (set by the pipeline for ice's placement): ice_acl_setup makes
        # one table for every profile at start-up, so only entry slots run out
        # (MAX_ACL_NORMAL_ENTRIES per PF); None: this model's table per profile
        self.ice_slots: int | None = None
        self._slots: dict[int, tuple[int, int]] = {}  # rule id -> (PF, slots taken)

    # ------------------------------------------------------------------ validation

    def _actions(self, rule: FlowRule) -> tuple[str, int | None, int | None]:
        fate: tuple[str, int | None, int | None] | None = None
        for a in rule.actions:
            if a.type in ("end", "void"):
                continue
            if a.type not in ("drop", "queue"):
                raise rule_error(
                    "ACTION",
                    f"ACL supports only drop and queue, not '{a.type}'",
                    a.index,
                )
            if fate is not None:
                raise rule_error(
                    "ACTION",
                    "an ACL rule takes one action: drop or queue",
                    a.index,
                )
            if a.type == "drop":
                fate = ("drop", None, None)
                continue
            if rule.port >= len(self.device.pfs):
                raise rule_error("ACTION", f"port {rule.port} has no PF VSI", a.index)
            vsi = (
                self.device.vsi(rule.extra["vsi"])
                if "vsi" in rule.extra
                else self.device.pfs[rule.port].vsi
            )
            if a.queue is None or not 0 <= a.queue < vsi.num_queues:
                raise rule_error(
                    "ACTION",
                    f"queue index {a.queue} out of range: {vsi.name} has "
                    f"{vsi.num_queues} queue(s), 0..{vsi.num_queues - 1}",
                    a.index,
                )
            fate = ("to_queue", a.queue, vsi.number)
        if fate is None:
            raise rule_error("ACTION_NUM", "an ACL rule needs a drop or queue action")
        return fate

    def _plan(self, rule: FlowRule, match: Match) -> _Plan:
        if not rule.ingress:
            raise rule_error("ATTR_EGRESS", "the ACL block classifies received packets only")
        if rule.priority < 0:
            raise rule_error("ATTR_PRIORITY", f"priority {rule.priority} is negative")
        action, queue, vsi = self._actions(rule)
        items = rule.items
        last_item = items[-1].index if items else None
        words = _input_words(match)
        range_words = frozenset(w for w, _, _ in match.ranges)
        fv = len(words | range_words)
        if fv > MAX_WORDS:
            raise rule_error(
                "ITEM",
                f"the pattern needs {fv} field-vector words; the ACL field vector has {MAX_WORDS}",
                last_item,
            )
        key: ProfileKey = (match.ptypes, match.tunnel_flag, words, range_words)
        table = self.tables.get(key)
        # range checkers of the profile
        have = set(table.checkers) if table is not None else set()
        new = {r for r in match.ranges if r not in have}
        if len(have) + len(new) > RANGE_CHECKERS:
            where = next(
                (i.index for i in items for s in i.specs if s.last is not None),
                last_item,
            )
            num = table.number if table is not None else self._free_number()
            raise rule_error(
                "ITEM_LAST",
                f"ACL range checkers ran out: profile {num} has {len(have)} of "
                f"{RANGE_CHECKERS} in use and this rule needs {len(new)} more",
                where,
            )
        if self.ice_slots is not None:
            pf, need = _ice_slot_need(rule)
            used = sum(n for p, n in self._slots.values() if p == pf)
            if used + need > self.ice_slots:
                # ice_acl_hw_set_conf: "Exceed the maximum entry number(256) HW supported!"
                raise rule_error("HANDLE", "failed to set hw configure.")
            return _Plan(key, table, entry_priority(rule.priority), action, queue, vsi)
        # tables and slices
        free = SLICES - self.slices_used()
        if table is None:
            if len(self.tables) >= MAX_TABLES:
                raise rule_error(
                    "HANDLE",
                    f"ACL tables exhausted: {len(self.tables)} of {MAX_TABLES} in use and "
                    f"this rule's input set ({len(words)} word(s), "
                    f"{len(range_words)} range word(s)) needs a table of its own",
                )
            need = cascade_for(len(words))
            if need > free:
                raise rule_error(
                    "HANDLE",
                    f"ACL TCAM full: table for profile {self._free_number()} needs "
                    f"{need} more slices ({self._shape(need, 1)}), {free} of {SLICES} free",
                )
        else:
            n = len(table.entries)
            need = (_rows(n + 1) - _rows(n)) * table.cascade
            if need > free:
                raise rule_error(
                    "HANDLE",
                    f"ACL TCAM full: table for profile {table.number} needs {need} more "
                    f"slices to grow past {n} entries ({self._shape(table.cascade, _rows(n + 1))}"
                    f"), {free} of {SLICES} free",
                )
        return _Plan(key, table, entry_priority(rule.priority), action, queue, vsi)

    @staticmethod
    def _shape(cascade: int, rows: int) -> str:
        return f"cascade {cascade} x {rows} row{'s' if rows != 1 else ''}"

    def _free_number(self) -> int:
        used = {t.number for t in self.tables.values()}
        # ice's layout keeps one table per profile internally, beyond MAX_TABLES
        return next(i for i in range(len(used) + 1) if i not in used)

    # ------------------------------------------------------------------ Engine

    def validate(self, rule: FlowRule, match: Match) -> None:
        self._plan(rule, match)

    def add(self, rule_id: int, rule: FlowRule, match: Match) -> None:
        if rule_id in self.entries:
            raise rule_error("HANDLE", f"ACL rule {rule_id} exists already")
        plan = self._plan(rule, match)
        table = plan.table
        if table is None:
            table = _Table(self._free_number(), plan.key)
            table.names = tuple(self._word_name(w) for w in table.words)
            self.tables[plan.key] = table
        mask, value = table.pack(match.words)
        self._seq += 1
        rank = ((plan.prio + 1) << _SEQ_BITS) - self._seq  # always > 0
        e = _Entry(
            rule_id,
            table,
            plan.prio,
            rank,
            mask,
            value,
            tuple((w.proto_id, w.offset, lo, hi) for w, lo, hi in match.ranges),
            tuple(dict.fromkeys(match.ranges)),
            plan.action,
            plan.queue,
            plan.vsi,
        )
        table.insert(e)
        self.entries[rule_id] = e
        if self.ice_slots is not None:
            self._slots[rule_id] = _ice_slot_need(rule)
        self._invalidate()

    def remove(self, rule_id: int) -> None:
        e = self.entries.pop(rule_id, None)
        if e is None:
            raise rule_error("HANDLE", f"no ACL rule {rule_id}")
        self._slots.pop(rule_id, None)
        t = e.table
        t.delete(e)
        if not t.entries:
            del self.tables[t.key]
        self._invalidate()

    def _plan_for(self, ptype: int) -> _PtypePlan:
        """Tables applying to `ptype` and the distinct words they read, in one list."""
        tables = sorted(
            (t for t in self.tables.values() if ptype in t.ptypes), key=lambda t: t.number
        )
        fetch: dict[Word, int] = {}
        for t in tables:
            for w in (*t.words, *sorted(t.range_words, key=lambda w: (w.proto_id, w.offset))):
                fetch.setdefault(w, len(fetch))
        plan = _PtypePlan(
            tuple((w.proto_id, w.offset) for w in fetch),
            tuple((t, tuple(fetch[w] for w in t.words)) for t in tables),
        )
        self._plans[ptype] = plan
        return plan

    def _invalidate(self) -> None:
        """Forget per-PTYPE plans (subtable order) and cached verdicts (table shapes)."""
        self._plans.clear()
        self._verdicts.clear()

    def lookup(self, frame: Frame) -> Verdict | None:
        ptype = frame.res.ptype
        plan = self._plans.get(ptype)
        if plan is None:
            plan = self._plan_for(ptype)
        if not plan.tables:
            return None
        data = frame.data
        po = frame.po
        vals: list[int | None] = []
        for pid, off in plan.fetch:
            base = po.get(pid)
            if base is None:
                vals.append(None)
                continue
            at = base + off
            chunk = data[at : at + 2]
            if len(chunk) == 2:
                vals.append((chunk[0] << 8) | chunk[1])
            else:
                vals.append((chunk[0] << 8) if chunk else 0)
        flags = frame.flags
        keys: list[int | None] = []
        for t, idx in plan.tables:
            if t.tunnel_flag is not None and t.tunnel_flag not in flags:
                keys.append(None)
                continue
            k = 0
            for i in idx:
                v = vals[i]
                if v is None:
                    keys.append(None)
                    break
                k = (k << 16) | v
            else:
                keys.append(k)
        # tuple-space search over all subtables of all tables, best rank first
        best: _Entry | None = None
        best_rank = 0
        best_key = 0
        for st, n in plan.subs:
            if st.max_rank <= best_rank:
                break
            key = keys[n]
            if key is None:
                continue
            bucket = st.buckets.get(key & st.mask)
            if bucket is None:
                continue
            for e in bucket:
                if e.rank <= best_rank:
                    break
                if e.ranges and not _in_ranges(e.ranges, data, po):
                    continue
                best = e
                best_rank = e.rank
                best_key = key
                break
        if best is None:
            return None
        if best.ranges:
            return self._verdict(best, best_key, frame)
        vk = (best.rule_id, best_key)
        verdict = self._verdicts.get(vk)
        if verdict is None:
            if len(self._verdicts) >= VERDICT_CACHE:
                self._verdicts.clear()
            verdict = self._verdicts[vk] = self._verdict(best, best_key, frame)
        return verdict

    def words_read(self, ptype: int) -> tuple[tuple[int, int], ...]:
        plan = self._plans.get(ptype)
        if plan is None:
            plan = self._plan_for(ptype)
        return plan.fetch  # table words and range words

    def _verdict(self, e: _Entry, key: int, frame: Frame) -> Verdict:
        t = e.table
        n = len(t.words)
        read = [(t.names[i], (key >> (16 * (n - 1 - i))) & 0xFFFF) for i in range(n)]
        used: list[str] = []
        for w, lo, hi in e.range_keys:
            v = frame.word(w)
            read.append((self._word_name(w), 0 if v is None else v))
            used.append(f"checker {t.checkers[(w, lo, hi)][0]} {lo}..{hi}")
        note = (
            f"TCAM hit, entry priority {PRIORITY_NAMES[e.prio]}, table {t.number} "
            f"({self._shape(t.cascade, t.rows)})"
        )
        if used:
            note += ", range " + ", ".join(used)
        return Verdict(
            block="acl",
            rule=e.rule_id,
            action=e.action,
            vsi=e.vsi,
            queue=e.queue,
            priority=3,
            profile=t.number,
            words=tuple(read),
            note=note,
        )

    def _word_name(self, w: Word) -> str:
        name = self.proto_names.get(w.proto_id)
        return f"{name}+{w.offset}" if name else str(w)

    # ------------------------------------------------------------------ accounting

    def slices_used(self) -> int:
        return sum(t.slices for t in self.tables.values())

    def capacity(self) -> Capacity:
        return Capacity(
            used={
                "slices": self.slices_used(),
                "entries": len(self.entries),
                "tables": len(self.tables),
                "range checkers": sum(len(t.checkers) for t in self.tables.values()),
            },
            total={
                "slices": SLICES,
                "entries": SLICES * SLICE_DEPTH,
                "tables": MAX_TABLES,
                "range checkers": RANGE_CHECKERS * MAX_TABLES,
            },
        )

    def describe(self) -> list[dict]:
        """One summary per table, in table order, for listings and traces."""
        out = []
        for t in sorted(self.tables.values(), key=lambda t: t.number):
            out.append(
                {
                    "table": t.number,
                    "words": [self._word_name(w) for w in t.words],
                    "range_words": sorted(self._word_name(w) for w in t.range_words),
                    "width": t.width,
                    "cascade": t.cascade,
                    "rows": t.rows,
                    "slices": t.slices,
                    "entries": len(t.entries),
                    "allocated": -(-len(t.entries) // ALLOC_UNIT) * ALLOC_UNIT,
                    "masks": len(t.subtables),
                    "range_checkers": len(t.checkers),
                    "ptypes": sorted(t.ptypes),
                    "tunnel_flag": t.tunnel_flag,
                }
            )
        return out


__all__ = ["Acl", "cascade_for", "entry_priority", "HIGH", "NORMAL", "LOW"]


# ice_acl_filter.c (DPDK main): the patterns and input sets the ACL parser takes
_ICE_ACL_PATTERNS = {
    ("eth", "ipv4"): (),
    ("eth", "ipv4", "udp"): ("udp",),
    ("eth", "ipv4", "tcp"): ("tcp",),
    ("eth", "ipv4", "sctp"): ("sctp",),
}
_ICE_ACL_FIELDS = {
    "eth.src": 48,
    "eth.dst": 48,
    "ipv4.src": 32,
    "ipv4.dst": 32,
    "ipv4.fragment_offset": 16,
    "udp.src": 16,
    "udp.dst": 16,
    "tcp.src": 16,
    "tcp.dst": 16,
    "sctp.src": 16,
    "sctp.dst": 16,
}


def ice_acl_parse(rule: FlowRule) -> None:
    """What ``ice_acl_parse()`` accepts before the ACL engine programs anything: one
    action, drop or queue; the patterns eth/ipv4 with udp, tcp or sctp; fields among MACs,
    IPv4 addresses and fragment offset and L4 ports, none with an all-ones mask (exact
    matches are the switch's and Flow Director's), and at least one field."""
    # ci_flow_check_attr(attr, NULL, ...): no group, no priority
    if rule.group:
        raise rule_error("ATTR_GROUP", "Group not supported")
    if rule.priority:
        raise rule_error("ATTR_PRIORITY", "Priority not supported")
    acts = [a for a in rule.actions if a.type != "void"]
    if len(acts) != 1 or acts[0].type not in ("drop", "queue"):
        idx = acts[1].index if len(acts) > 1 else (acts[0].index if acts else None)
        raise rule_error("ACTION", "Invalid action.", idx)
    items = tuple(i.type for i in rule.pattern if i.type not in ("end", "void"))
    if items not in _ICE_ACL_PATTERNS:
        raise rule_error("ITEM", "Unsupported pattern", 0)
    fields = 0
    for item in rule.pattern:
        for spec in item.specs:
            width = _ICE_ACL_FIELDS.get(spec.field)
            if width is None or spec.last is not None:
                raise rule_error("ITEM_SPEC", "Invalid input set", item.index)
            full = (1 << width) - 1
            if spec.mask & full == full:
                what = {48: "Invalid mac addr mask", 32: "Invalid IPv4 mask."}.get(
                    width, f"Invalid {item.type.upper()} mask"
                )
                raise rule_error("ITEM", what, item.index)
            if spec.mask & full:
                fields += 1
    if not fields:
        raise rule_error("ITEM_SPEC", "Invalid input set", 0)

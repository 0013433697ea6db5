"""Rule analysis: rules that never match, overlaps with different actions, and
patterns the loaded profiles cannot produce.

:func:`analyze` looks at the rules a :class:`~e810pipe.pipeline.Pipeline` holds,
with the precedence the pipeline and its engines apply, and returns
:class:`Finding` values (``kind``, ``rule_ids``, ``message``):

- **shadowed**: the rule can never take effect. A rule of higher precedence in
  the same block matches every packet it matches (switch: higher recipe priority,
  then the rule added first; ACL: higher entry priority, then the rule added
  first), or an earlier block decides first for all of them (a switch drop; an ACL
  or FD drop when drops win; a switch queue, which beats ACL and FD queues; a
  switch forward to another VSI, after which FD looks up only that VSI's
  profiles), or the Flow Director profile it sits in is never selected because
  another profile of the same VSI covers its PTYPEs.
- **overlap**: two rules match some packets in common and do different things,
  and which one wins is a tie-break (same priority, the rule added first), or an
  earlier block overrides part of a rule.
- **unproducible**: no packet can match the rule under the loaded profiles and
  the current runtime settings: e.g. a VXLAN rule while no VXLAN port is
  registered, or fields whose protocol ID no header on such a path reports.
- **ignored-item**: a pattern item that adds no condition (``vlan`` or ``mpls``
  without fields set no PTYPE marker), so the rule also matches packets without
  that header.

Coverage and overlap work on compiled :class:`~e810pipe.engine.Match` values:
PTYPE sets, the tunnel flag, and ternary words. Two ternary matches overlap iff
for every word both compare ``(v1 ^ v2) & m1 & m2 == 0`` (and their ranges
intersect); ``a`` covers ``b`` iff ``b``'s PTYPEs are a subset of ``a``'s, ``a``
needs no tunnel flag or the same one, and every word ``a`` compares ``b`` compares
too, under a mask that includes ``a``'s and with the same value under it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Match, MatchCompiler
from .errors import ProfileError, RuleError
from .fields import Word
from .lint import GraphModel, filled_ports, option_combos
from .package import load_package
from .parser import Parser
from .pipeline import Pipeline, RuleEntry
from .resources import profiles_dir, stock_profile_names
from .rules import FlowRule

KINDS = ("shadowed", "overlap", "unproducible", "ignored-item")


@dataclass(frozen=True)
class Finding:
    """One analysis result: what is wrong, with which rules (ids as in `flow list`)."""

    kind: str  # shadowed, overlap, unproducible, ignored-item
    rule_ids: tuple[int, ...]
    message: str
    where: str = ""  # file:line of a rule that has no id (it was rejected)

    def __str__(self) -> str:
        if not self.rule_ids:
            return f"warning: {self.where or 'rule'}: {self.message} [{self.kind}]"
        ids = ", ".join(str(r) for r in self.rule_ids)
        rules = "rules" if len(self.rule_ids) > 1 else "rule"
        return f"warning: {rules} {ids}: {self.message} [{self.kind}]"

    def to_json(self) -> dict[str, Any]:
        out = {"kind": self.kind, "rule_ids": list(self.rule_ids), "message": self.message}
        return {**out, "where": self.where} if self.where else out


# ------------------------------------------------------------- coverage, overlap


def _span(v: int, m: int) -> tuple[int, int]:
    """The smallest and largest 16-bit values x with x & m == v."""
    return v, v | (~m & 0xFFFF)


def _min_at_least(lo: int, v: int, m: int) -> int | None:
    """The smallest 16-bit x >= lo with x & m == v, or None."""
    free = [b for b in range(16) if not (m >> b) & 1]

    def spread(t: int) -> int:
        x = v
        for i, b in enumerate(free):
            if (t >> i) & 1:
                x |= 1 << b
        return x

    a, b = 0, (1 << len(free)) - 1
    if spread(b) < lo:
        return None
    while a < b:  # spread() is increasing in t
        mid = (a + b) // 2
        if spread(mid) >= lo:
            b = mid
        else:
            a = mid + 1
    return spread(a)


def _word_sets(match: Match) -> tuple[dict[Word, tuple[int, int]], dict[Word, tuple[int, int]]]:
    words = {w: (v, m) for w, v, m in match.words}
    ranges: dict[Word, tuple[int, int]] = {}
    for w, lo, hi in match.ranges:
        old = ranges.get(w)
        ranges[w] = (lo, hi) if old is None else (max(lo, old[0]), min(hi, old[1]))
    return words, ranges


def _flags_meet(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


def overlaps(a: Match, b: Match) -> bool:
    """Whether some packet can match both `a` and `b`."""
    if a.ptypes.isdisjoint(b.ptypes) or not _flags_meet(a.tunnel_flag, b.tunnel_flag):
        return False
    wa, ra = _word_sets(a)
    wb, rb = _word_sets(b)
    for w in set(wa) | set(wb) | set(ra) | set(rb):
        v = m = 0
        ok = True
        for vm in (wa.get(w), wb.get(w)):
            if vm is None:
                continue
            if (v ^ vm[0]) & m & vm[1]:
                ok = False
                break
            v, m = v | vm[0], m | vm[1]
        if not ok:
            return False
        lo, hi = 0, 0xFFFF
        for r in (ra.get(w), rb.get(w)):
            if r is not None:
                lo, hi = max(lo, r[0]), min(hi, r[1])
        if lo > hi:
            return False
        if (lo, hi) != (0, 0xFFFF):
            x = _min_at_least(lo, v & m, m)
            if x is None or x > hi:
                return False
    return True


def covers(a: Match, b: Match) -> bool:
    """Whether every packet that matches `b` also matches `a`."""
    if not b.ptypes <= a.ptypes:
        return False
    if a.tunnel_flag is not None and a.tunnel_flag != b.tunnel_flag:
        return False
    wa, ra = _word_sets(a)
    wb, rb = _word_sets(b)
    for w, (va, ma) in wa.items():
        got = wb.get(w)
        if got is not None:
            vb, mb = got
            if ma & ~mb or (vb & ma) != va:
                return False
            continue
        r = rb.get(w)  # b only bounds the word by a range: every value in it must fit
        if r is None or r[1] - r[0] > 4096:
            return False
        if any((x & ma) != va for x in range(r[0], r[1] + 1)):
            return False
    for w, (lo, hi) in ra.items():
        spans = []
        if w in rb:
            spans.append(rb[w])
        if w in wb:
            spans.append(_span(*wb[w]))
        if not any(lo <= s_lo and s_hi <= hi for s_lo, s_hi in spans):
            return False
    return True


# ------------------------------------------------------------------ rule views


@dataclass
class _View:
    """One installed rule, as precedence sees it."""

    entry: RuleEntry
    seq: int  # order of addition
    rank: tuple[int, ...]  # within its block: lower wins
    level: int  # within its block: rules of one level tie-break by order of addition
    fate: str  # drop, queue, qgroup, vsi, passthru
    vsi: int | None  # the VSI the packet goes to (switch), or the FD rule's VSI
    action: str  # for messages
    mark: int | None = None
    count: bool = False
    merge_key: tuple | None = None  # switch: identical lookups (they form a VSI list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rid(self) -> int:
        return self.entry.rule_id

    @property
    def engine(self) -> str:
        return self.entry.engine

    @property
    def match(self) -> Match:
        return self.entry.match

    @property
    def rule(self) -> FlowRule:
        return self.entry.rule

    @property
    def port(self) -> int:
        return self.entry.rule.port

    @property
    def label(self) -> str:
        name = {"switch": "switch", "acl": "ACL", "fd": "FD"}.get(self.engine, self.engine)
        return f"{name} rule {self.rid} ({self.action})"


def _views(pipe: Pipeline) -> list[_View]:
    dev = pipe.device
    out: list[_View] = []
    order = {rid: i for i, rid in enumerate(sorted(pipe.rules))}
    sw_seq = {rid: i for i, (rid, _, _) in enumerate(pipe.switch.rules())}
    fates = {rid: fate for rid, _, fate in pipe.switch.rules()}
    for rid, entry in sorted(pipe.rules.items()):
        rule = entry.rule
        if entry.engine == "switch" and rid in fates:
            f = fates[rid]
            seq = sw_seq[rid]
            if f.action == "drop":
                fate, vsi, action = "drop", None, "drop"
            elif f.action == "to_queue":
                fate, vsi, action = "queue", f.vsi, f"queue {f.queue}"
            elif f.action == "to_qgroup" and f.qgroup is not None:
                first, size = f.qgroup
                fate, vsi, action = "qgroup", f.vsi, f"queues {first}..{first + size - 1}"
            else:
                vsis = (f.vsi,) if f.vsi is not None else f.vsis
                fate, vsi = "vsi", vsis[0]
                action = "to " + ", ".join(dev.vsi(v).name for v in vsis)
            m = entry.match
            out.append(
                _View(
                    entry,
                    seq,
                    (rule.priority, seq),
                    rule.priority,
                    fate,
                    vsi,
                    action,
                    merge_key=(rule.port, m.ptypes, m.tunnel_flag, frozenset(m.words))
                    if fate == "vsi"
                    else None,
                )
            )
        elif entry.engine == "acl" and rid in pipe.acl.entries:
            e = pipe.acl.entries[rid]
            if e.action == "drop":
                fate, action = "drop", "drop"
            else:
                fate, action = "queue", f"queue {e.queue}"
            out.append(_View(entry, order[rid], (-e.rank,), -e.prio, fate, e.vsi, action))
        elif entry.engine == "fd":
            fate, action, mark, count = _fd_actions(rule)
            vsi = pipe.fd.target_vsi(rule).number
            out.append(_View(entry, order[rid], (0,), 0, fate, vsi, action, mark=mark, count=count))
    return out


def _fd_actions(rule: FlowRule) -> tuple[str, str, int | None, bool]:
    fate, parts = "passthru", []
    mark: int | None = None
    count = False
    for a in rule.actions:
        if a.type == "queue":
            fate = "queue"
            parts.append(f"queue {a.queue}")
        elif a.type == "rss" and a.queues:
            fate = "qgroup"
            parts.append(f"queues {a.queues[0]}..{a.queues[-1]}")
        elif a.type == "drop":
            fate = "drop"
            parts.append("drop")
        elif a.type == "passthru":
            parts.append("passthru")
        elif a.type == "mark":
            mark = a.mark or 0
            parts.append(f"mark {mark}")
        elif a.type == "count":
            count = True
            parts.append("count")
    return fate, ", ".join(parts) or "passthru", mark, count


# ----------------------------------------------------------------- the analysis


class _Analysis:
    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.cfg = pipe.config
        self.views = _views(pipe)
        self.findings: list[Finding] = []
        self.shadowed: set[int] = set()

    def add(self, kind: str, ids: Iterable[int], message: str) -> None:
        self.findings.append(Finding(kind, tuple(ids), message))

    def run(self) -> list[Finding]:
        self.unproducible()
        self.fd_profiles()
        pairs = self.candidate_pairs()
        # shadowing first, so that overlaps of a rule that never matches are left out
        later: list[tuple[_View, _View]] = []
        for a, b in pairs:
            if not self.shadowing(a, b) and self.ties(a, b):
                later.append((a, b))
        overlapping: dict[int, list[_View]] = {}
        for a, b in later:
            if a.rid in self.shadowed or b.rid in self.shadowed or a.action == b.action:
                continue
            first, second = (a, b) if a.rank < b.rank else (b, a)
            overlapping.setdefault(second.rid, [second]).append(first)
        for views in overlapping.values():
            self.overlap(views[0], views[1:])
        self.ignored_items()
        order = {k: i for i, k in enumerate(KINDS)}
        self.findings.sort(key=lambda f: (f.rule_ids[0] if f.rule_ids else -1, order[f.kind]))
        return self.findings

    @staticmethod
    def ties(a: _View, b: _View) -> bool:
        """Rules of one block whose order decides between them: same priority level."""
        if a.engine != b.engine or a.engine == "fd" or a.level != b.level:
            return False
        if a.engine == "switch" and a.port != b.port:
            return False
        if a.engine == "switch" and a.fate == b.fate == "vsi":
            return False  # VSI forwards at one priority all deliver (Switch.lookup)
        return a.merge_key is None or a.merge_key != b.merge_key

    # -- candidate pairs: rules whose common words agree ------------------------

    def candidate_pairs(self) -> list[tuple[_View, _View]]:
        """Pairs of rules that overlap and may shadow or tie with each other.

        Rules are grouped by block, priority level, PTYPEs, tunnel flag and input set
        (words and masks). Only pairs of groups that can matter are joined: one block
        at one level (ties), or a group whose words and masks lie within the other's
        (coverage). The join is a hash on the words both compare, under both masks.
        """
        groups: dict[tuple, list[_View]] = {}
        for v in self.views:
            m = v.match
            key = (v.engine, v.level, m.ptypes, m.tunnel_flag, frozenset(m.input_set))
            groups.setdefault(key, []).append(v)
        keys = list(groups)
        out: list[tuple[_View, _View]] = []
        for i, k1 in enumerate(keys):
            for k2 in keys[i:]:
                if k1[0] == "fd" and k2[0] == "fd":
                    continue  # exact match per profile; profiles: fd_profiles()
                if k1[2].isdisjoint(k2[2]) or not _flags_meet(k1[3], k2[3]):
                    continue
                m1 = dict(k1[4])
                m2 = dict(k2[4])
                tie = k1[0] == k2[0] and k1[1] == k2[1]
                if not (tie or _may_cover(k1, m1, k2, m2) or _may_cover(k2, m2, k1, m1)):
                    continue
                common = sorted((w for w in m1 if w in m2), key=lambda w: (w.proto_id, w.offset))
                masks = [m1[w] & m2[w] for w in common]
                index: dict[tuple[int, ...], list[_View]] = {}
                for b in groups[k2]:
                    index.setdefault(_project(b, common, masks), []).append(b)
                for a in groups[k1]:
                    for b in index.get(_project(a, common, masks), ()):
                        if a.rid == b.rid or (k1 == k2 and a.rid > b.rid):
                            continue
                        if not (a.match.ranges or b.match.ranges) or overlaps(a.match, b.match):
                            out.append((a, b) if a.rid < b.rid else (b, a))
        out.sort(key=lambda p: (p[0].rid, p[1].rid))
        return out

    # -- shadowing ---------------------------------------------------------------

    def shadowing(self, a: _View, b: _View) -> bool:
        """Report if one of `a`, `b` hides the other completely; True if reported."""
        if a.engine == b.engine:
            if a.engine == "fd":
                return False  # disjoint within a profile; profiles: fd_profiles()
            if a.engine == "switch" and a.port != b.port:
                return False
            win, lose = (a, b) if a.rank < b.rank else (b, a)
            if (
                a.engine == "switch"
                and self.cfg.drop_wins
                and lose.fate == "drop"
                and win.fate != "drop"
                and win.level != lose.level
            ):
                return self.lower_drop(win, lose)
            if lose.rid in self.shadowed:
                return True
            if not covers(win.match, lose.match):
                return False
            if win.merge_key is not None and win.merge_key == lose.merge_key:
                return False  # identical lookups that forward to VSIs: one VSI list
            if win.fate == lose.fate == "vsi" and win.level == lose.level:
                return False  # VSI forwards of other recipes at one priority: both deliver
            reason = "higher priority" if win.level < lose.level else "same priority, added first"
            same = " (same action: the rule is redundant)" if win.action == lose.action else ""
            self.shadow(
                lose,
                win,
                f"{lose.label} can never match: {win.label} ({reason}) matches every packet "
                f"it matches{same}",
            )
            return True
        for win, lose in ((a, b), (b, a)):
            if lose.rid in self.shadowed:
                continue
            why = self.overrides(win, lose)
            if why is None or not covers(win.match, lose.match):
                continue
            if self.keeps_effect(win, lose):
                self.add(
                    "overlap",
                    (lose.rid, win.rid),
                    f"{lose.label}: its {lose.fate} never applies: "
                    + why.replace("{them}", "every packet it matches")
                    + f" (its {self.remaining(lose)} still applies)",
                )
                return True
            self.shadow(
                lose,
                win,
                f"{lose.label} never takes effect: "
                + why.replace("{them}", "every packet it matches"),
            )
            return True
        return False

    def lower_drop(self, high: _View, drop: _View) -> bool:
        """A switch drop at a lower recipe priority than `high` still drops the packets
        both match (Switch.lookup with drop_wins, as DTS's priority cases see it): the
        drop is not hidden; `high` loses those packets. True if reported."""
        why = f"{drop.label} drops them: a switch drop at a lower priority still drops (drop_wins)"
        if high.rid in self.shadowed or drop.rid in self.shadowed:
            return True
        if covers(drop.match, high.match):
            self.shadow(high, drop, f"{high.label} never takes effect: {why}")
            return True
        if overlaps(drop.match, high.match):
            self.add(
                "overlap",
                sorted((high.rid, drop.rid)),
                f"{high.label} and {drop.label} overlap at different priorities: where both "
                f"match, {why}",
            )
            return True
        return False

    def shadow(self, lose: _View, win: _View, message: str) -> None:
        self.shadowed.add(lose.rid)
        self.add("shadowed", (lose.rid, win.rid), message)

    def keeps_effect(self, win: _View, lose: _View) -> bool:
        """After `win` overrides `lose`'s fate, does `lose` still do something?"""
        if win.fate == "drop" or win.fate == "vsi":
            return False
        return lose.mark is not None or lose.count

    @staticmethod
    def remaining(v: _View) -> str:
        parts = ([f"mark {v.mark}"] if v.mark is not None else []) + (["count"] if v.count else [])
        return " and ".join(parts)

    def overrides(self, a: _View, b: _View) -> str | None:
        """Why `a` (another block) decides instead of `b` where both match, or None."""
        if a.port != b.port:
            return None
        drop_wins = self.cfg.drop_wins
        if a.engine == "switch" and a.fate == "drop":
            return f"{a.label} drops {{them}} before any other block decides"
        if a.engine == "acl" and a.fate == "drop" and drop_wins:
            if b.engine == "switch" and b.fate == "drop":
                return None
            return f"{a.label} drops {{them}} (a drop wins: drop_wins)"
        if a.engine == "fd" and a.fate == "drop" and drop_wins and b.engine == "switch":
            if b.fate in ("queue", "qgroup", "vsi") and b.vsi == a.vsi:
                return f"{a.label} drops {{them}} (a drop wins: drop_wins)"
            return None
        if a.engine == "switch" and a.fate == "vsi" and b.engine == "fd" and a.vsi != b.vsi:
            name = self.pipe.device.vsi(a.vsi).name if a.vsi is not None else "?"
            return f"{a.label} sends {{them}} to {name}, and FD looks up only that VSI's profiles"
        qa, qb = self.queue_rank(a), self.queue_rank(b)
        if qa is not None and qb is not None and qa < qb:
            return (
                f"{a.label} picks the queue of {{them}}: its block ranks above {b.engine.upper()}"
            )
        return None

    def queue_rank(self, v: _View) -> int | None:
        """Position in the pipeline's queue precedence (lower wins), for queue fates."""
        if v.fate == "drop" and v.engine != "switch" and not self.cfg.drop_wins:
            return 4 if v.engine == "fd" else 6  # drops rank as queue decisions
        if v.fate not in ("queue", "qgroup"):
            return None
        if v.engine == "switch":
            return 2
        if v.engine == "fd":
            return 4
        return {"above_switch": 1, "above_fd": 3, "below_fd": 5}[self.cfg.acl_queue_rank]

    # -- overlaps ----------------------------------------------------------------

    def overlap(self, later: _View, earlier: list[_View]) -> None:
        """`later` ties with `earlier` rules of its block: same priority, other action."""
        tie = (
            "the hardware's tie-break is not documented"
            if later.engine == "switch"
            else "the tie-break is UNCONFIRMED"
        )
        earlier.sort(key=lambda v: v.rid)
        if len(earlier) == 1:
            first = earlier[0]
            self.add(
                "overlap",
                sorted((first.rid, later.rid)),
                f"{first.label} and {later.label} overlap at the same priority with "
                f"different actions; where both match, rule {first.rid} wins (added "
                f"first; {tie})",
            )
            return
        shown = ", ".join(f"{v.rid} ({v.action})" for v in earlier[:8])
        more = f" and {len(earlier) - 8} more" if len(earlier) > 8 else ""
        self.add(
            "overlap",
            sorted([later.rid, *(v.rid for v in earlier)]),
            f"{later.label} overlaps rules {shown}{more} at the same priority with "
            f"different actions; where they match together, the rule added first wins "
            f"({tie})",
        )

    # -- Flow Director profile selection ----------------------------------------

    def fd_profiles(self) -> None:
        """FD looks up one profile per VSI and packet: the first of the engine's
        per-PTYPE list that applies. A profile behind another one that applies
        whenever it does is never looked up for that PTYPE."""
        fd = self.pipe.fd
        order: dict[int, list[Any]] | None = getattr(fd, "_by_ptype", None)
        if order is None:  # pragma: no cover - the engine's own order, if it hides it
            order = {}
            for prof in fd.profiles():
                for pt in prof.ptypes:
                    order.setdefault(pt, []).append(prof)
            for lst in order.values():
                lst.sort(key=lambda p: p.rank())
        for prof in fd.profiles():
            hidden: dict[int, Any] = {}  # PTYPE -> the profile looked up instead
            for pt in prof.ptypes:
                for other in order.get(pt, ()):
                    if other is prof:
                        break
                    if getattr(other, "ice_type", None) is not None:
                        # a profile of an ice flow type: a packet without the protocols
                        # its words read goes on to the next profile (FlowDirector)
                        continue
                    flag = other.tunnel_flag
                    if other.vsi == prof.vsi and (flag is None or flag == prof.tunnel_flag):
                        hidden[pt] = other
                        break
            if not hidden:
                continue
            ids = sorted(prof.table.values())
            others = sorted({id(o): o for o in hidden.values()}.values(), key=lambda o: o.number)
            their = sorted(r for o in others for r in o.table.values())
            instead = "; ".join(
                f"profile {o.number} (flow type {o.label}; rule"
                f"{'s' if len(o.table) > 1 else ''} {_ids(sorted(o.table.values()))})"
                for o in others
            )
            plural = "s" if len(ids) > 1 else ""
            if len(hidden) == len(prof.ptypes):
                self.shadowed.update(ids)
                self.add(
                    "shadowed",
                    (*ids, *their),
                    f"FD rule{plural} {_ids(ids)} (flow type {prof.label}) can never match: "
                    f"for every PTYPE of {'their' if plural else 'its'} profile {prof.number} "
                    f"the profile TCAM selects {instead} of the same VSI, and FD looks up "
                    "only that profile",
                )
            else:
                shared = sorted(hidden)
                self.add(
                    "overlap",
                    (*ids, *their),
                    f"FD rule{plural} {_ids(ids)} (flow type {prof.label}) never "
                    f"match{'' if plural else 'es'} "
                    f"PTYPE{'s' if len(shared) > 1 else ''} {_ids(shared)}: for "
                    f"{'those' if len(shared) > 1 else 'it'} the profile TCAM selects "
                    f"{instead} of the same VSI",
                )

    # -- patterns the profiles cannot produce -------------------------------------

    def unproducible(self) -> None:
        pipe = self.pipe
        pkg = pipe.package
        cfg = pipe.parser.graph.config
        model = GraphModel(pkg, cfg.ports, cfg.options)
        cache: dict[tuple, str | None] = {}
        names = {v: k for k, v in pkg.proto_ids.items()}
        for v in self.views:
            m = v.match
            ids = frozenset(w.proto_id for w, _, _ in m.words) | frozenset(
                w.proto_id for w, _, _ in m.ranges
            )
            key = (m.ptypes, m.tunnel_flag, ids)
            if key not in cache:
                cache[key] = self._why_unproducible(model, m, ids, names)
            why = cache[key]
            if why is not None:
                self.shadowed.add(v.rid)
                self.add("unproducible", (v.rid,), f"{v.label} can never match: {why}")

    def _why_unproducible(
        self, model: GraphModel, m: Match, ids: frozenset[int], names: dict[int, str]
    ) -> str | None:
        pkg = model.package
        seqs = [pkg.ptypes[p].markers for p in m.ptypes if p in pkg.ptypes]
        flag = m.tunnel_flag
        if model.produces(seqs, flag, ids):
            return None
        what = _ptype_text(pkg, m)
        full = {**model.ports, **filled_ports(pkg)}
        tried = [model.options, *(o for o in option_combos(pkg) if o != model.options)]
        for opts in tried:
            if not GraphModel(pkg, full, opts).produces(seqs, flag, ids):
                continue
            if opts != model.options:
                return (
                    f"its packets ({what}) are parsed only with option(s) "
                    f"{', '.join(sorted(opts ^ model.options))} changed"
                )
            for t in pkg.udp_tunnels:
                one = {**model.ports, t: full[t]}
                if GraphModel(pkg, one, opts).produces(seqs, flag, ids):
                    kind = t.replace("_", "-")
                    return (
                        f"its packets ({what}) need a UDP port in the {kind} table, and no "
                        f"{kind.upper()} port is registered (e.g. 'port config 0 "
                        f"udp_tunnel_port add {kind} PORT')"
                    )
            return f"its packets ({what}) need UDP ports in several tunnel tables"
        if model.produces(seqs, flag):
            missing = ", ".join(names.get(i, str(i)) for i in sorted(ids))
            return (
                f"no packet with {what} has all of the protocol IDs its fields are read "
                f"from ({missing})"
            )
        if flag is not None and model.produces(seqs):
            return f"no packet with {what} has the parser flag {flag}"
        return f"no parse path of the loaded profiles gives {what}"

    # -- items that add nothing ----------------------------------------------------

    def ignored_items(self) -> None:
        for v in self.views:
            if v.match.raw:
                continue
            for item in v.rule.items:
                if item.type not in ("vlan", "mpls"):
                    continue
                if any(s.mask for s in item.specs):
                    continue
                self.add(
                    "ignored-item",
                    (v.rid,),
                    f"{v.label}: item '{item.type}' (#{item.index}) adds no condition "
                    f"(no field is matched and {item.type.upper()} sets no PTYPE marker), "
                    f"so the rule also matches packets without {item.type.upper()}",
                )


def _may_cover(k1: tuple, m1: dict[Word, int], k2: tuple, m2: dict[Word, int]) -> bool:
    """Whether rules of group `k1` may cover rules of group `k2` (group shapes only)."""
    if not k2[2] <= k1[2] or (k1[3] is not None and k1[3] != k2[3]):
        return False
    return all(w in m2 and not mask & ~m2[w] for w, mask in m1.items())


def _project(v: _View, words: list[Word], masks: list[int]) -> tuple[int, ...]:
    vals = {w: val for w, val, _ in v.match.words}
    return tuple(vals[w] & mk for w, mk in zip(words, masks))


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in ids)


def _ptype_text(pkg: Any, m: Match) -> str:
    nums = sorted(m.ptypes)
    shown = ", ".join(f"{n} {pkg.ptypes[n].name}" if n in pkg.ptypes else str(n) for n in nums[:3])
    more = f" and {len(nums) - 3} more" if len(nums) > 3 else ""
    flag = f", flag {m.tunnel_flag}" if m.tunnel_flag else ""
    return f"PTYPE {shown}{more}{flag}"


def explain_rejected(pipe: Pipeline, rule: FlowRule) -> Finding | None:
    """Why the loaded profiles cannot produce a rejected rule's pattern, with a way
    out, or None if the pattern is not the problem (or there is no hint to give).

    A pattern is rejected when no PTYPE of the package has its header sequence (a
    GTP-U rule on OS-default) or no loaded protocol reports the ID of a field it
    matches (an MPLS label): the hint names a stock package that parses it, or the
    protocol a user profile could make report the ID.
    """
    try:
        pipe.compiler.compile(rule)
        return None
    except RuleError as err:
        reason, index = err.message, err.index
    items = " / ".join(i.type for i in rule.items)
    loaded = {Path(p).resolve() for p in pipe.package.profiles}
    stock = profiles_dir().resolve()
    users = [p for p in pipe.package.profiles if Path(p).resolve().parent != stock]
    for name in stock_profile_names():
        if (profiles_dir() / f"{name}.ddp").resolve() in loaded:
            continue
        try:
            pkg = load_package([name, *users])
            parser = Parser.load(package=pkg, ports=pipe.ports, dvm=pipe.dvm)
            MatchCompiler(parser).compile(rule)
        except (RuleError, ProfileError):
            continue
        return Finding(
            "unproducible",
            (),
            f"the loaded profiles ({pipe.package.title}) cannot produce '{items}' "
            f"({reason}); {pkg.title} parses it: load it with --profile {name} "
            f"(profiles: [{name}] in a scenario)",
            rule.where,
        )
    missing = re.search(r"report no (\w+) protocol", reason)
    if missing is not None:
        pid = missing.group(1)
        item = next((i.type for i in rule.items if i.index == index), None)
        if item is not None and item in pipe.package.protocols:
            return Finding(
                "unproducible",
                (),
                f"no loaded protocol reports {pid}, so the fields of '{item}' cannot be "
                f"matched: a user profile can make '{item}' report it, e.g. 'extend "
                f"protocol {item} {{ report {pid}; }}'",
                rule.where,
            )
    return None


def analyze(pipe: Pipeline) -> list[Finding]:
    """Findings about the rules `pipe` holds: shadowed, overlapping, unproducible."""
    return _Analysis(pipe).run()


__all__ = ["Finding", "analyze", "covers", "explain_rejected", "overlaps"]

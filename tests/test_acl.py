"""The ACL block: ternary matches, priorities, range checkers, TCAM slices, tables."""

from __future__ import annotations

import ipaddress
import random
import time
from dataclasses import replace

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from e810pipe.acl import HIGH, LOW, NORMAL, Acl, cascade_for, entry_priority
from e810pipe.device import Device
from e810pipe.engine import Frame, MatchCompiler
from e810pipe.errors import RuleError
from e810pipe.fields import Word
from e810pipe.parser import Parser
from e810pipe.rules import Action, FieldSpec, FlowRule, Item


@pytest.fixture(scope="module")
def parser() -> Parser:
    return Parser.load(["os-default"])


@pytest.fixture(scope="module")
def compiler(parser: Parser) -> MatchCompiler:
    return MatchCompiler(parser)


@pytest.fixture()
def acl(parser: Parser) -> Acl:
    names = {v: k for k, v in reversed(parser.package.proto_ids.items())}
    return Acl(Device.build(rxq=8), names)


def ip4(addr: str) -> int:
    return int(ipaddress.IPv4Address(addr))


def prefix(bits: int, width: int = 32) -> int:
    return ((1 << bits) - 1) << (width - bits)


def rule(
    *layers: tuple[str, tuple[FieldSpec, ...]],
    action: str = "drop",
    queue: int | None = None,
    priority: int = 0,
    extra: tuple[Action, ...] = (),
) -> FlowRule:
    items = [Item("eth", 0)]
    for n, (kind, specs) in enumerate(layers, start=1):
        items.append(Item(kind, n, specs))
    items.append(Item("end", len(items)))
    acts = (Action(action, 0, queue=queue), *extra, Action("end", 1 + len(extra)))
    return FlowRule(0, tuple(items), acts, priority=priority)


def v4(src: str | None = None, bits: int = 32, dst: str | None = None) -> tuple:
    specs = []
    if src is not None:
        specs.append(FieldSpec("ipv4.src", ip4(src), prefix(bits)))
    if dst is not None:
        specs.append(FieldSpec("ipv4.dst", ip4(dst), 0xFFFFFFFF))
    return ("ipv4", tuple(specs))


def frame(parser: Parser, pkt) -> Frame:
    data = bytes(pkt)
    return Frame(data, parser.parse(data))


def tcp4(src: str = "192.0.2.1", dst: str = "198.51.100.1", dport: int = 1234) -> object:
    return Ether() / IP(src=src, dst=dst) / TCP(sport=4321, dport=dport)


def add(acl: Acl, compiler: MatchCompiler, rid: int, r: FlowRule) -> None:
    acl.add(rid, r, compiler.compile(r))


# ---------------------------------------------------------------------------- helpers


def test_priority_mapping_and_cascade() -> None:
    assert entry_priority(0) == HIGH
    assert entry_priority(1) == NORMAL
    assert entry_priority(2) == entry_priority(7) == LOW
    assert cascade_for(0) == 1  # 3 reserved bytes only
    assert cascade_for(1) == 1  # 2 + 3 = 5 bytes
    assert cascade_for(2) == 2  # IPv4 address: 7 bytes
    assert cascade_for(16) == 7  # IPv6 src + dst: 35 bytes
    assert cascade_for(32) == 14  # the whole ACL field vector: 67 bytes


# ---------------------------------------------------------------------------- matching


def test_prefix_drop_hits_and_misses(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    add(acl, compiler, 1, rule(v4("10.0.0.0", 8)))
    hit = acl.lookup(frame(parser, tcp4(src="10.200.3.4")))
    assert hit is not None
    assert (hit.block, hit.rule, hit.action, hit.priority) == ("acl", 1, "drop", 3)
    assert hit.queue is None
    assert "TCAM hit, entry priority HIGH" in hit.note
    assert f"table {hit.profile} (cascade " in hit.note
    assert ("IPV4_OF_OR_S+12", 0x0AC8) in hit.words
    # any IPv4 packet, UDP too: the pattern eth / ipv4 covers every IPv4 PTYPE
    assert acl.lookup(frame(parser, Ether() / IP(src="10.1.1.1") / UDP())) is not None
    assert acl.lookup(frame(parser, tcp4(src="11.0.0.1"))) is None
    assert acl.lookup(frame(parser, tcp4(src="9.255.255.255"))) is None
    assert acl.lookup(frame(parser, Ether() / IPv6() / TCP())) is None


def test_partial_mask_that_is_no_prefix(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    # even destination ports in 0x1200..0x12ff: mask 0xff01
    r = rule(
        ("ipv4", ()), ("tcp", (FieldSpec("tcp.dst", 0x1200, 0xFF01),)), action="queue", queue=5
    )
    add(acl, compiler, 7, r)
    hit = acl.lookup(frame(parser, tcp4(dport=0x1234)))
    assert hit is not None and hit.action == "to_queue" and hit.queue == 5
    assert hit.vsi == 0
    assert acl.lookup(frame(parser, tcp4(dport=0x1235))) is None
    assert acl.lookup(frame(parser, tcp4(dport=0x1334))) is None


def test_priority_between_overlapping_entries(
    acl: Acl, compiler: MatchCompiler, parser: Parser
) -> None:
    add(acl, compiler, 1, rule(v4("10.0.0.0", 8), priority=1))  # NORMAL drop
    add(acl, compiler, 2, rule(v4("10.1.0.0", 16), action="queue", queue=3, priority=0))
    add(acl, compiler, 3, rule(v4("10.1.2.0", 24), action="queue", queue=4, priority=2))
    hit = acl.lookup(frame(parser, tcp4(src="10.1.2.3")))
    assert hit is not None and (hit.rule, hit.queue) == (2, 3)
    assert "entry priority HIGH" in hit.note
    hit = acl.lookup(frame(parser, tcp4(src="10.2.0.1")))
    assert hit is not None and (hit.rule, hit.action) == (1, "drop")
    assert "entry priority NORMAL" in hit.note
    # same priority: the rule added first wins (UNCONFIRMED tie rule)
    add(acl, compiler, 4, rule(v4("10.1.2.3", 32), action="queue", queue=6, priority=0))
    hit = acl.lookup(frame(parser, tcp4(src="10.1.2.3")))
    assert hit is not None and hit.rule == 2
    acl.remove(2)
    hit = acl.lookup(frame(parser, tcp4(src="10.1.2.3")))
    assert hit is not None and hit.rule == 4


def test_priority_across_tables(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    # two profiles (different input sets) both apply to an IPv4/TCP packet
    add(acl, compiler, 1, rule(v4("10.0.0.0", 8), priority=2))  # LOW
    add(
        acl,
        compiler,
        2,
        rule(("ipv4", ()), ("tcp", (FieldSpec("tcp.dst", 80, 0xFFFF),)), action="queue", queue=1),
    )
    assert len(acl.tables) == 2
    hit = acl.lookup(frame(parser, tcp4(src="10.0.0.1", dport=80)))
    assert hit is not None and hit.rule == 2
    hit = acl.lookup(frame(parser, tcp4(src="10.0.0.1", dport=81)))
    assert hit is not None and hit.rule == 1
    hit = acl.lookup(frame(parser, tcp4(src="12.0.0.1", dport=80)))
    assert hit is not None and hit.rule == 2


def test_tunnel_rule_needs_the_tunnel_flag(acl: Acl) -> None:
    parser = Parser.load(["os-default"], vxlan_ports=[4789])
    vni = FieldSpec("vxlan.vni", 42, 0xFFFFFF)
    inner = FieldSpec("ipv4.src", ip4("10.0.0.0"), prefix(8))
    items = (
        Item("eth", 0),
        Item("ipv4", 1),
        Item("udp", 2),
        Item("vxlan", 3, (vni,)),
        Item("eth", 4, level=1),
        Item("ipv4", 5, (inner,), level=1),
        Item("end", 6),
    )
    r = FlowRule(0, items, (Action("queue", 0, queue=2),))
    acl.add(1, r, MatchCompiler(parser).compile(r))
    outer = Ether() / IP() / UDP(sport=1, dport=4789)
    hit = acl.lookup(frame(parser, outer / VXLAN(vni=42) / Ether() / IP(src="10.1.1.1") / TCP()))
    assert hit is not None and hit.queue == 2
    assert acl.lookup(frame(parser, outer / VXLAN(vni=43) / Ether() / IP(src="10.1.1.1"))) is None
    assert acl.lookup(frame(parser, outer / VXLAN(vni=42) / Ether() / IP(src="11.1.1.1"))) is None
    assert acl.describe()[0]["tunnel_flag"] == "tunnel_vxlan"


# ---------------------------------------------------------------------------- ranges


def port_range(lo: int, hi: int, rid: int = 0) -> FlowRule:
    return rule(
        ("ipv4", ()),
        ("tcp", (FieldSpec("tcp.dst", lo, 0xFFFF, hi),)),
        action="queue",
        queue=rid % 8,
    )


def test_port_range_uses_a_checker(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    r = port_range(80, 90, 2)
    m = compiler.compile(r)
    assert m.ranges and not m.words
    acl.add(1, r, m)
    assert acl.capacity().used["range checkers"] == 1
    for port, want in ((79, None), (80, 1), (85, 1), (90, 1), (91, None)):
        hit = acl.lookup(frame(parser, tcp4(dport=port)))
        assert (hit.rule if hit else None) == want, port
    hit = acl.lookup(frame(parser, tcp4(dport=85)))
    assert hit is not None and "range checker 0 80..90" in hit.note
    assert ("TCP_IL+2", 85) in hit.words
    # the same range again shares the checker
    add(acl, compiler, 2, port_range(80, 90, 3))
    assert acl.capacity().used["range checkers"] == 1


def test_range_combined_with_ternary_words(
    acl: Acl, compiler: MatchCompiler, parser: Parser
) -> None:
    r = rule(v4("10.0.0.0", 8), ("tcp", (FieldSpec("tcp.dst", 1000, 0xFFFF, 2000),)))
    add(acl, compiler, 1, r)
    assert acl.lookup(frame(parser, tcp4(src="10.9.9.9", dport=1500))) is not None
    assert acl.lookup(frame(parser, tcp4(src="10.9.9.9", dport=2001))) is None
    assert acl.lookup(frame(parser, tcp4(src="11.9.9.9", dport=1500))) is None


def test_ninth_distinct_range_rejected(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    for i in range(8):
        add(acl, compiler, i, port_range(100 * i, 100 * i + 10, i))
    assert acl.capacity().used["range checkers"] == 8
    with pytest.raises(RuleError) as ei:
        add(acl, compiler, 8, port_range(5000, 5010))
    err = ei.value
    assert "range checkers ran out" in err.message
    assert "8 of 8" in err.message
    assert err.category == "item specification range" and err.index == 2
    # a range already configured still fits
    add(acl, compiler, 9, port_range(300, 310, 1))
    # a different profile has checkers of its own
    r = rule(("ipv4", ()), ("udp", (FieldSpec("udp.dst", 5000, 0xFFFF, 5010),)))
    add(acl, compiler, 10, r)
    assert acl.capacity().used["range checkers"] == 9
    hit = acl.lookup(frame(parser, tcp4(dport=705)))
    assert hit is not None and hit.rule == 7
    # destroying the last user frees the checker
    acl.remove(7)
    add(acl, compiler, 8, port_range(5000, 5010))


# ---------------------------------------------------------------------------- capacity


def wide(i: int) -> FlowRule:
    """An IPv6 src + dst rule: 16 words, 35-byte key, cascade of 7 slices."""
    src = FieldSpec("ipv6.src", (0x20010DB8 << 96) | i, (1 << 128) - 1)
    dst = FieldSpec("ipv6.dst", (0x20010DB8 << 96) | 0xFFFF_0000 | i, (1 << 128) - 1)
    return rule(("ipv6", (src, dst)))


def test_tcam_fills_with_wide_keys(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    m0 = compiler.compile(wide(0))
    assert len(m0.words) == 16
    for i in range(1024):
        r = wide(i)
        acl.add(i, r, compiler.compile(r))
        if i == 0:
            assert acl.capacity().used["slices"] == 7
        if i == 512:
            assert acl.capacity().used["slices"] == 14
    cap = acl.capacity()
    assert cap.used == {"slices": 14, "entries": 1024, "tables": 1, "range checkers": 0}
    assert "slices 14/16" in str(cap)
    table = acl.describe()[0]
    assert (table["cascade"], table["rows"], table["width"]) == (7, 2, 35)
    with pytest.raises(RuleError) as ei:
        acl.validate(wide(5000), compiler.compile(wide(5000)))
    err = ei.value
    assert err.message.startswith("ACL TCAM full: table for profile 0 needs 7 more slices")
    assert "2 of 16 free" in err.message
    assert err.category == "flow rule (handle)"
    with pytest.raises(RuleError, match="ACL TCAM full"):
        add(acl, compiler, 5000, wide(5000))
    # a new narrow profile still fits the 2 free slices
    add(acl, compiler, 6000, rule(("ipv4", ()), ("tcp", (FieldSpec("tcp.dst", 22, 0xFFFF),))))
    assert acl.capacity().used["slices"] == 15
    # a second wide profile (IPv6/UDP PTYPEs) cannot get its 7 slices
    r = rule(("ipv6", wide(1).pattern[1].specs), ("udp", ()))
    with pytest.raises(RuleError, match=r"needs 7 more slices .*, 1 of 16 free"):
        add(acl, compiler, 6001, r)
    # lookups on the full table still work
    pkt = Ether() / IPv6(src="2001:db8::2a", dst="2001:db8::ffff:2a") / TCP()
    hit = acl.lookup(frame(parser, pkt))
    assert hit is not None and hit.rule == 42 and "(cascade 7 x 2 rows)" in hit.note
    # destroying rules gives the second row back once 512 entries remain
    for i in range(512, 1024):
        acl.remove(i)
    assert acl.capacity().used["slices"] == 7 + 1
    add(acl, compiler, 6001, r)
    assert acl.capacity().used["slices"] == 15


def test_fifteen_tables(acl: Acl, compiler: MatchCompiler) -> None:
    def one(l3: str, l4: str | None, field: str | None) -> FlowRule:
        layers: list[tuple[str, tuple[FieldSpec, ...]]] = [(l3, ())]
        if l4:
            layers.append((l4, ()))
        if field:
            kind = field.split(".")[0]
            spec = FieldSpec(field, 1, 0xFF)
            layers = [(k, (spec,) if k == kind else s) for k, s in layers]
        return rule(*layers)

    profiles = [
        ("ipv4", None, None),
        ("ipv4", None, "ipv4.ttl"),
        ("ipv4", None, "ipv4.tos"),
        ("ipv4", "tcp", None),
        ("ipv4", "tcp", "tcp.src"),
        ("ipv4", "tcp", "tcp.dst"),
        ("ipv4", "tcp", "ipv4.ttl"),
        ("ipv4", "udp", None),
        ("ipv4", "udp", "udp.src"),
        ("ipv4", "udp", "udp.dst"),
        ("ipv6", None, None),
        ("ipv6", "tcp", None),
        ("ipv6", "tcp", "tcp.src"),
        ("ipv6", "tcp", "tcp.dst"),
        ("ipv6", "udp", None),
        ("ipv6", "udp", "udp.dst"),
    ]
    for n, p in enumerate(profiles[:15]):
        add(acl, compiler, n, one(*p))
    cap = acl.capacity()
    assert cap.used["tables"] == 15 and cap.used["slices"] == 15
    # another rule of an existing profile is fine
    add(acl, compiler, 100, one(*profiles[4]))
    with pytest.raises(RuleError) as ei:
        add(acl, compiler, 15, one(*profiles[15]))
    assert "ACL tables exhausted: 15 of 15 in use" in ei.value.message
    acl.remove(3)  # the only rule of profile ("ipv4", "tcp", None)
    assert acl.capacity().used["tables"] == 14
    add(acl, compiler, 15, one(*profiles[15]))
    assert acl.describe()[3]["table"] == 3  # the freed profile number is reused


def test_destroy_frees(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    for i in range(600):
        add(acl, compiler, i, rule(v4(f"10.0.{i // 256}.{i % 256}")))
    cap = acl.capacity()
    assert cap.used == {"slices": 4, "entries": 600, "tables": 1, "range checkers": 0}
    assert acl.describe()[0]["allocated"] == 640
    for i in range(100):
        acl.remove(i)
    assert acl.capacity().used["slices"] == 2  # 500 entries fit one row
    assert acl.lookup(frame(parser, tcp4(src="10.0.0.5"))) is None
    assert acl.lookup(frame(parser, tcp4(src="10.0.1.5"))) is not None
    for i in range(100, 600):
        acl.remove(i)
    cap = acl.capacity()
    assert cap.used == {"slices": 0, "entries": 0, "tables": 0, "range checkers": 0}
    assert acl.lookup(frame(parser, tcp4(src="10.0.1.5"))) is None
    with pytest.raises(RuleError, match="no ACL rule 5"):
        acl.remove(5)


# ---------------------------------------------------------------------------- actions


def test_unsupported_action_rejected(acl: Acl, compiler: MatchCompiler) -> None:
    r = rule(v4("10.0.0.0", 8), extra=(Action("mark", 1, mark=3),))
    with pytest.raises(RuleError) as ei:
        acl.validate(r, compiler.compile(r))
    err = ei.value
    assert err.category == "specific action" and err.type_code == 16
    assert err.index == 1
    assert "ACL supports only drop and queue" in err.message
    assert str(err).startswith("Caught error type 16 (specific action)")
    r = rule(v4("10.0.0.0", 8), action="rss")
    with pytest.raises(RuleError, match="only drop and queue") as ei:
        acl.validate(r, compiler.compile(r))
    assert ei.value.index == 0
    # queue out of the PF VSI's 8 queues
    r = rule(v4("10.0.0.0", 8), action="queue", queue=8)
    with pytest.raises(RuleError, match="queue index 8 out of range") as ei:
        acl.validate(r, compiler.compile(r))
    assert ei.value.category == "specific action" and ei.value.index == 0
    # drop and queue together
    r = rule(v4("10.0.0.0", 8), extra=(Action("queue", 1, queue=1),))
    with pytest.raises(RuleError, match="one action") as ei:
        acl.validate(r, compiler.compile(r))
    assert ei.value.index == 1
    assert acl.capacity().used["entries"] == 0


def test_too_many_words_rejected(acl: Acl, compiler: MatchCompiler) -> None:
    full = (1 << 128) - 1
    r = rule(
        ("ipv6", (FieldSpec("ipv6.src", 1, full), FieldSpec("ipv6.dst", 1, full))),
        ("tcp", (FieldSpec("tcp.src", 1, 0xFFFF), FieldSpec("tcp.dst", 1, 0xFFFF))),
    )
    add(acl, compiler, 1, r)  # 18 words: fine
    m = compiler.compile(r)
    assert len(m.words) == 18
    # 33 words cannot come from rte_flow items here: widen the compiled Match
    big = replace(m, words=tuple((Word(40, 2 * i), 0, 0xFFFF) for i in range(33)))
    with pytest.raises(RuleError, match=r"3[3-5] field-vector words; the ACL field vector has 32"):
        acl.validate(r, big)


# ---------------------------------------------------------------------------- scale


def test_thousand_rules(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    rng = random.Random(810)
    rules: list[tuple[int, FlowRule]] = []
    addrs: list[str] = []
    for i in range(1000):
        bits = 16 if i % 97 == 0 else rng.choice((24, 32, 32, 32))
        addr = f"{rng.randrange(10, 14)}.{rng.randrange(8)}.{rng.randrange(8)}.{rng.randrange(256)}"
        addrs.append(addr)
        q = rng.randrange(8)
        prio = rng.randrange(3)
        if i % 10 == 0:
            r = rule(
                v4(addr, bits),
                ("tcp", (FieldSpec("tcp.dst", 80, 0xFFF0),)),  # ports 80..95
                action="queue",
                queue=q,
                priority=prio,
            )
        else:
            r = rule(v4(addr, bits), action="queue", queue=q, priority=prio)
        add(acl, compiler, i, r)
        rules.append((i, r))
    matches = {i: compiler.compile(r) for i, r in rules}
    cap = acl.capacity()
    assert cap.used["entries"] == 1000
    tables = acl.describe()
    assert cap.used["slices"] == sum(t["slices"] for t in tables) <= 16
    assert sum(t["entries"] for t in tables) == 1000
    assert sum(t["masks"] for t in tables) <= 8  # tuple space: one hash map per mask

    def reference(f: Frame) -> int | None:
        best = None
        for i, r in rules:  # in the order added: the first of the best priority wins
            if matches[i].matches(f):
                p = entry_priority(r.priority)
                if best is None or p > best[0]:
                    best = (p, i)
        return None if best is None else best[1]

    frames = []
    for k in range(600):
        if k % 3:
            a, b, c, d = addrs[rng.randrange(len(addrs))].split(".")
            src = f"{a}.{b}.{c if k % 2 else rng.randrange(8)}.{d if k % 5 else rng.randrange(256)}"
        else:
            src = (
                f"{rng.randrange(9, 15)}.{rng.randrange(9)}.{rng.randrange(9)}.{rng.randrange(256)}"
            )
        frames.append(frame(parser, tcp4(src=src, dport=rng.choice((80, 85, 96, 443)))))
    won: dict[int | None, int] = {}
    for f in frames:
        got = acl.lookup(f)
        want = reference(f)
        assert (got.rule if got else None) == want
        if got is not None:
            assert got.rule is not None
            r = rules[got.rule][1]
            assert got.queue == r.actions[0].queue
            won[entry_priority(r.priority)] = won.get(entry_priority(r.priority), 0) + 1
        else:
            won[None] = won.get(None, 0) + 1
    assert set(won) == {HIGH, NORMAL, LOW, None}, won
    # per-packet cost: a few hash probes per table, not 1000 comparisons
    n = 20000
    t0 = time.perf_counter()
    for k in range(n):
        acl.lookup(frames[k % len(frames)])
    rate = n / (time.perf_counter() - t0)
    assert rate > 20000, f"{rate:.0f} lookups/s"


def test_ice_layout_counts_entry_slots(acl: Acl, compiler: MatchCompiler, parser: Parser) -> None:
    """ice's DCF ACL (ice_acl_setup: one table for all profiles at start-up) runs out of
    entry slots, MAX_ACL_NORMAL_ENTRIES (256) per PF, not of TCAM slices: an eth / ipv4
    rule takes 4 (ice_acl_create_filter adds it to the other, UDP, TCP and SCTP
    profiles), an L4 rule 1. Masks of any shape share the table."""
    acl.ice_slots = 256
    for i in range(32):  # as DTS test_max_entry_num_combined_pattern: 32 x 4 + 128 x 1
        add(acl, compiler, i, rule(v4(f"192.168.{i}.0", 24)))
    for i in range(128):
        src = ("ipv4", (FieldSpec("ipv4.src", ip4(f"10.0.{i}.0"), 0xFFFF00FF),))
        add(acl, compiler, 100 + i, rule(src, ("tcp", ())))
    assert len(acl.tables) > 1  # several profiles, one ice table
    extra = rule(v4("172.16.0.0", 16), ("tcp", ()))
    with pytest.raises(RuleError) as info:
        acl.validate(extra, compiler.compile(extra))
    assert info.value.message.startswith("failed to set hw configure.")
    acl.remove(227)  # one TCP rule gives its slot back
    add(acl, compiler, 300, extra)
    assert acl.lookup(frame(parser, tcp4(src="172.16.9.9"))).rule == 300
    for rid in (226, 225, 224):
        acl.remove(rid)
    wide = rule(v4("172.17.0.0", 16))
    with pytest.raises(RuleError):  # an IPv4 rule needs 4 slots: 3 are not enough
        acl.validate(wide, compiler.compile(wide))
    acl.remove(223)
    add(acl, compiler, 301, wide)

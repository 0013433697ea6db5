"""Tests for e810pipe.fdir: exact match, input sets, masks, capacity, actions, raw rules."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import GRE, Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from e810pipe.device import Device, Vsi
from e810pipe.engine import Frame, Match, MatchCompiler
from e810pipe.errors import RuleError
from e810pipe.fdir import FlowDirector
from e810pipe.fields import _CATALOG, Word
from e810pipe.parser import Parser
from e810pipe.rules import Action, FieldSpec, FlowRule, Item, RawSpec


@pytest.fixture(scope="module")
def parser() -> Parser:
    return Parser.load(["os-default"], vxlan_ports=[4789])


@pytest.fixture(scope="module")
def mc(parser: Parser) -> MatchCompiler:
    return MatchCompiler(parser)


@pytest.fixture()
def fd() -> FlowDirector:
    return FlowDirector(Device.build(rxq=16))


# --- helpers ------------------------------------------------------------------


def _value(name: str, v: int | str) -> int:
    if isinstance(v, int):
        return v
    if name.startswith("eth."):
        return int(v.replace(":", ""), 16)
    return int(ipaddress.ip_address(v))


def item(kind: str, level: int = 0, **fields: Any) -> tuple[str, int, dict[str, Any]]:
    """A pattern item; `fields` are matched with full masks (`is` in testpmd)."""
    return (kind, level, fields)


def rule(
    *items: tuple[str, int, dict[str, Any]] | Item, actions: tuple[Action, ...] = (), port: int = 0
) -> FlowRule:
    pattern: list[Item] = []
    for i, it in enumerate(items):
        if isinstance(it, Item):
            pattern.append(it)
            continue
        kind, level, fields = it
        specs = []
        for k, v in fields.items():
            if isinstance(v, FieldSpec):
                specs.append(v)
                continue
            name = f"{kind}.{k}"
            full = (1 << _CATALOG[name][2]) - 1
            specs.append(FieldSpec(name, _value(name, v), full))
        pattern.append(Item(kind, i, tuple(specs), level))
    pattern.append(Item("end", len(pattern)))
    return FlowRule(port, tuple(pattern), actions or (Action("queue", 0, queue=1),))


def queue(q: int, index: int = 0) -> Action:
    return Action("queue", index, queue=q)


def frame(parser: Parser, pkt: Packet | bytes) -> Frame:
    data = bytes(pkt)
    return Frame(data, parser.parse(data))


def add(fd: FlowDirector, mc: MatchCompiler, rid: int, r: FlowRule) -> None:
    m = mc.compile(r, exact=True)
    fd.validate(r, m)
    fd.add(rid, r, m)


def rejected(fd: FlowDirector, mc: MatchCompiler, r: FlowRule) -> RuleError:
    m = mc.compile(r, exact=True)
    with pytest.raises(RuleError) as exc:
        fd.validate(r, m)
    # add() re-checks and refuses the same way, leaving nothing behind
    before = len(fd)
    with pytest.raises(RuleError):
        fd.add(999_999, r, m)
    assert len(fd) == before
    return exc.value


def eth() -> Ether:
    """Ethernet with fixed addresses, so Scapy resolves nothing on the network."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def udp4(src: str = "10.0.0.1", dst: str = "10.0.0.2", sport: int = 1000, dport: int = 53) -> Any:
    return eth() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(b"x" * 8)


def v4_udp_rule(
    src: str, dport: int = 53, actions: tuple[Action, ...] = (), port: int = 0
) -> FlowRule:
    return rule(
        item("eth"), item("ipv4", src=src), item("udp", dst=dport), actions=actions, port=port
    )


# --- matching -----------------------------------------------------------------


def test_exact_match_hit_and_miss(fd: FlowDirector, mc: MatchCompiler, parser: Parser) -> None:
    r = rule(
        item("eth"),
        item("ipv4", src="10.0.0.1", dst="10.0.0.2"),
        item("udp", dst=53),
        actions=(queue(5),),
    )
    add(fd, mc, 1, r)
    v = fd.lookup(frame(parser, udp4()))
    assert v is not None
    assert (v.block, v.rule, v.action, v.queue, v.priority) == ("fd", 1, "to_queue", 5, 3)
    assert v.vsi == 0 and v.mark is None and v.profile == 0
    assert v.note == "exact match in profile 0 (flow type IPv4/UDP)"
    # IPv4 source and destination words, then the UDP destination port
    assert dict(v.words) == {
        "32@12": 0x0A00,
        "32@14": 0x0001,
        "32@16": 0x0A00,
        "32@18": 2,
        "53@2": 53,
    }
    # fields outside the input set do not matter
    assert fd.lookup(frame(parser, udp4(sport=4242))) == v
    # a different value of a matched field misses
    assert fd.lookup(frame(parser, udp4(dport=54))) is None
    assert fd.lookup(frame(parser, udp4(dst="10.0.0.3"))) is None
    # another PTYPE is another flow type: TCP with the same addresses and port misses
    tcp = eth() / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1000, dport=53)
    assert fd.lookup(frame(parser, tcp)) is None
    # and so does an IPv4 packet without L4 (the IPv4 "other" flow type)
    assert fd.lookup(frame(parser, eth() / IP(src="10.0.0.1", dst="10.0.0.2", proto=99))) is None


def test_field_order_does_not_make_another_input_set(fd: FlowDirector, mc: MatchCompiler) -> None:
    a = rule(item("eth"), item("ipv4", src="1.1.1.1", dst="2.2.2.2"), item("udp", dst=1))
    b = rule(item("eth"), item("ipv4", dst="2.2.2.2", src="1.1.1.1"), item("udp", dst=1))
    add(fd, mc, 1, a)
    err = rejected(fd, mc, b)
    assert "Rule already exists!" in err.message and "FD rule 1" in err.message


def test_duplicates_are_rejected(fd: FlowDirector, mc: MatchCompiler) -> None:
    add(fd, mc, 1, v4_udp_rule("10.0.0.1", actions=(queue(1),)))
    # the same key with another action is still the same filter
    err = rejected(fd, mc, v4_udp_rule("10.0.0.1", actions=(Action("drop", 0),)))
    assert err.type_code == 2 and err.category == "flow rule (handle)"
    assert err.message.startswith("Rule already exists!")
    add(fd, mc, 2, v4_udp_rule("10.0.0.9"))
    fd.remove(1)
    add(fd, mc, 3, v4_udp_rule("10.0.0.1"))


def test_tunnel_flow_type(fd: FlowDirector, mc: MatchCompiler, parser: Parser) -> None:
    r = rule(
        item("eth"),
        item("ipv4"),
        item("udp"),
        item("vxlan", vni=42),
        item("eth", 1),
        item("ipv4", 1, dst="192.168.0.1"),
        item("udp", 1),
        actions=(queue(7),),
    )
    add(fd, mc, 1, r)
    inner = eth() / IP(src="1.2.3.4", dst="192.168.0.1") / UDP(sport=1, dport=2)
    pkt = eth() / IP() / UDP(sport=9, dport=4789) / VXLAN(vni=42) / inner
    v = fd.lookup(frame(parser, pkt))
    assert v is not None and v.queue == 7
    assert "flow type IPv4/VXLAN/MAC/IPv4/UDP" in v.note
    pkt = eth() / IP() / UDP(sport=9, dport=4789) / VXLAN(vni=43) / inner
    assert fd.lookup(frame(parser, pkt)) is None
    # the same inner headers behind GRE (transparent Ethernet) are another flow type
    gre = eth() / IP() / GRE(proto=0x6558) / inner
    assert fd.lookup(frame(parser, gre)) is None


# --- input sets ---------------------------------------------------------------


def test_input_set_conflict_until_the_last_rule_goes(
    fd: FlowDirector, mc: MatchCompiler, parser: Parser
) -> None:
    add(fd, mc, 1, v4_udp_rule("10.0.0.1"))
    add(fd, mc, 2, v4_udp_rule("10.0.0.7"))
    other = rule(item("eth"), item("ipv4", dst="10.0.0.2"), item("udp"), actions=(queue(3),))
    err = rejected(fd, mc, other)
    # ice_fdir_create_filter: ice_fdir_cur_prof_conflict -> "Profile configure failed."
    assert err.message.startswith("Profile configure failed.\nFailed to add filter. Flow")
    assert "Flow type IPv4/UDP of pf0 has profile 0 with 2 rules" in err.message
    assert "32@12/0xffff 32@14/0xffff 53@2/0xffff" in err.message
    assert err.type_code == 2
    # another flow type has its own profile and input set
    add(
        fd, mc, 3, rule(item("eth"), item("ipv4", dst="10.0.0.2"), item("tcp"), actions=(queue(4),))
    )
    fd.remove(1)
    assert "with 1 rule on" in rejected(fd, mc, other).message
    fd.remove(2)
    # the IPv4/UDP profile is gone: a new input set may take its place
    assert [p.label for p in fd.profiles()] == ["IPv4/TCP"]
    add(fd, mc, 4, other)
    v = fd.lookup(frame(parser, udp4(src="9.9.9.9", dport=7)))
    assert v is not None and v.rule == 4 and v.queue == 3
    assert fd.lookup(frame(parser, udp4(dst="10.0.0.5"))) is None


def test_input_sets_and_keys_are_per_port(mc: MatchCompiler, parser: Parser) -> None:
    dev = Device.build(pfs=2, rxq=16)
    fd = FlowDirector(dev)
    add(fd, mc, 1, v4_udp_rule("10.0.0.1", actions=(queue(1),)))
    # each port has its own input set per flow type
    dst = rule(item("eth"), item("ipv4", dst="10.0.0.2"), item("udp"), actions=(queue(3),))
    assert "of pf0 has profile 0" in rejected(fd, mc, dst).message
    add(fd, mc, 2, FlowRule(1, dst.pattern, dst.actions))
    # the same key on two ports is two filters, not a duplicate
    tcp = rule(item("eth"), item("ipv4"), item("tcp", dst=80), actions=(queue(4),))
    add(fd, mc, 3, tcp)
    add(fd, mc, 4, FlowRule(1, tcp.pattern, tcp.actions))
    assert "Rule already exists!" in rejected(fd, mc, tcp).message
    assert [(p.number, p.vsi) for p in fd.profiles()] == [(0, 0), (1, 1), (2, 0), (3, 1)]
    f = frame(parser, udp4())
    pf0, pf1 = dev.pfs[0].vsi.number, dev.pfs[1].vsi.number
    v0, v1 = fd.lookup(f, vsi=pf0), fd.lookup(f, vsi=pf1)
    assert v0 is not None and (v0.rule, v0.vsi, v0.queue) == (1, pf0, 1)
    # on port 1 the packet selects port 1's profile, whose input set is the destination
    assert v1 is not None and (v1.rule, v1.vsi, v1.queue) == (2, pf1, 3)
    assert fd.lookup(frame(parser, udp4(dst="10.0.0.9")), vsi=pf1) is None
    # without a VSI: the first VSI's hit
    assert fd.lookup(f) == v0
    v = fd.lookup(frame(parser, eth() / IP() / TCP(dport=80)), vsi=pf1)
    assert v is not None and v.rule == 4


def test_a_different_mask_is_a_different_input_set(fd: FlowDirector, mc: MatchCompiler) -> None:
    add(fd, mc, 1, rule(item("eth"), item("ipv4", ttl=64), item("udp")))
    # TTL and protocol share one word: the same word under another mask
    err = rejected(fd, mc, rule(item("eth"), item("ipv4", ttl=64, proto=17), item("udp")))
    assert "[32@8/0xff00]; this rule needs [32@8/0xffff]" in err.message
    # TOS lies in another word: another set of words
    err = rejected(fd, mc, rule(item("eth"), item("ipv4", tos=4), item("udp")))
    assert "this rule needs [32@0/0x00ff]" in err.message


def test_masks_must_cover_whole_fields(fd: FlowDirector, mc: MatchCompiler) -> None:
    partial = FieldSpec("ipv4.src", 0x0A000000, 0xFFFFFF00)
    err = rejected(fd, mc, rule(item("eth"), item("ipv4", src=partial), item("udp")))
    assert (err.type_code, err.index) == (13, 1)
    assert err.message.startswith("Invalid IPV4 mask")
    assert "'ipv4.src' mask 0xffffff00" in err.message
    # a field narrower than its words is whole with its own full mask (VNI: 24 bits)
    r = rule(item("eth"), item("ipv4"), item("udp"), item("vxlan", vni=5), item("eth", 1))
    add(fd, mc, 1, r)
    assert ("52@14", 0x0500) in fd._entries[1].verdict.words
    # and a zero mask leaves the field out
    zero = FieldSpec("udp.src", 1234, 0)
    add(fd, mc, 2, rule(item("eth"), item("ipv4", dst="1.1.1.1"), item("udp", src=zero)))


def test_ranges_are_not_supported(fd: FlowDirector, mc: MatchCompiler) -> None:
    spec = FieldSpec("udp.dst", 1000, 0xFFFF, last=2000)
    err = rejected(fd, mc, rule(item("eth"), item("ipv4"), item("udp", dst=spec)))
    assert (err.type_code, err.index) == (11, 2)
    assert "Not support range" in err.message


def test_a_pattern_without_fields_is_rejected(fd: FlowDirector, mc: MatchCompiler) -> None:
    err = rejected(fd, mc, rule(item("eth"), item("ipv4")))
    assert err.type_code == 10 and err.index == 1
    assert "at least one field" in err.message


def test_field_vector_holds_24_words(fd: FlowDirector, mc: MatchCompiler, parser: Parser) -> None:
    v6: dict[str, Any] = {"src": "2001:db8::1", "dst": "2001:db8::2"}
    fine = rule(item("eth"), item("ipv6", **v6), item("udp", src=1, dst=2))
    add(fd, mc, 1, fine)
    assert len(fd._entries[1].profile.input_set) == 18
    pkt = eth() / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=1, dport=2)
    assert fd.lookup(frame(parser, pkt)) is not None
    wide = rule(
        item("eth", dst="02:00:00:00:00:01", src="02:00:00:00:00:02"),
        item("ipv6", flow=0x12345, **v6),
        item("tcp", src=1, dst=2),
    )
    err = rejected(fd, mc, wide)
    assert "needs 26 field-vector words" in err.message and "holds 24" in err.message


def test_segments_and_profile_ids(fd: FlowDirector) -> None:
    # a pattern ice's list does not have (eth / vlan / ipv4): the walked PTYPEs decide
    r = rule(item("eth"), item("vlan"), item("ipv4"))
    word = ((Word(32, 12), 1, 0xFFFF),)
    three = Match(frozenset({24}), None, word, markers=("mac", "ipv4", "tun", "tun", "ipv4"))
    with pytest.raises(RuleError, match="3 segments"):
        fd.validate(r, three)
    # one profile ID per flow type, 128 in the FD block
    for n in range(128):
        fd.add(n, r, Match(frozenset({1000 + n}), None, word))
    last = Match(frozenset({2000}), None, word)
    with pytest.raises(RuleError, match="all 128 FD profile IDs are in use"):
        fd.validate(r, last)
    assert fd.capacity().used["profiles"] == 128
    fd.remove(5)
    fd.add(200, r, last)
    assert fd._entries[200].profile.number == 5


# --- capacity -----------------------------------------------------------------


def _fill(fd: FlowDirector, mc: MatchCompiler, port: int, first: int, n: int) -> list[int]:
    """Add n rules on `port` with distinct keys; return their ids."""
    r = v4_udp_rule("10.0.0.1", port=port)
    base = mc.compile(r, exact=True)
    ids = []
    for i in range(first, first + n):
        words = ((base.words[0][0], i >> 16, 0xFFFF), (base.words[1][0], i & 0xFFFF, 0xFFFF))
        m = Match(base.ptypes, None, words + base.words[2:], markers=base.markers)
        fd.add(i, r, m)
        ids.append(i)
    return ids


def test_pools_split_between_pfs() -> None:
    for pfs, guar in ((1, 2048), (2, 1024), (4, 512)):
        cap = FlowDirector(Device.build(pfs=pfs)).capacity()
        assert cap.total["pf0 guaranteed"] == guar
        assert cap.total["best effort"] == 14336
        assert cap.total["entries"] == 14336 + pfs * guar
    with pytest.raises(ValueError, match="exceed the 16384"):
        FlowDirector(Device.build(pfs=2), guaranteed_per_pf=2048, best_effort=14336)


def test_capacity_guaranteed_then_best_effort(mc: MatchCompiler) -> None:
    fd = FlowDirector(Device.build(pfs=2, rxq=16))
    pf0 = _fill(fd, mc, 0, 0, 1024)
    cap = fd.capacity()
    assert (cap.used["pf0 guaranteed"], cap.used["best effort"]) == (1024, 0)
    # past its guaranteed pool a PF takes best-effort entries
    pf0 += _fill(fd, mc, 0, 1024, 14336)
    cap = fd.capacity()
    assert (cap.used["pf0 guaranteed"], cap.used["best effort"]) == (1024, 14336)
    # one PF tops out at 15360 rules (2 x 100G: 1024 + 14336)
    err = rejected(fd, mc, v4_udp_rule("10.9.9.9"))
    assert err.message.startswith(
        "no space: PF 0's guaranteed pool (1024) and the shared best-effort pool (14336) are full"
    )
    # PF 1 still has its guaranteed entries
    _fill(fd, mc, 1, 20000, 1024)
    with pytest.raises(RuleError, match="PF 1's guaranteed pool"):
        _fill(fd, mc, 1, 30000, 1)
    assert str(fd.capacity()).startswith("pf0 guaranteed 1024/1024, pf1 guaranteed 1024/1024")
    # destroying frees the entry back to the pool it came from
    fd.remove(pf0[0])  # guaranteed
    assert fd.capacity().used["pf0 guaranteed"] == 1023
    with pytest.raises(RuleError, match="PF 1's guaranteed pool"):
        _fill(fd, mc, 1, 30000, 1)
    fd.remove(pf0[-1])  # best effort
    _fill(fd, mc, 1, 30000, 1)
    assert fd.capacity().used["best effort"] == 14336


def test_vf_rules_use_best_effort_only(mc: MatchCompiler) -> None:
    dev = Device.build(rxq=16, vfs=1)

    class VfFd(FlowDirector):
        def target_vsi(self, rule: FlowRule) -> Vsi:
            return dev.pfs[0].vsis[1]

    fd = VfFd(dev, guaranteed_per_pf=4, best_effort=2)
    assert fd.vsi_kind(v4_udp_rule("1.1.1.1")) == "vf"
    _fill(fd, mc, 0, 0, 2)
    assert fd.capacity().used == {
        "pf0 guaranteed": 0,
        "best effort": 2,
        "entries": 2,
        "profiles": 1,
    }
    with pytest.raises(RuleError, match=r"best-effort pool \(2\) is full.*no guaranteed"):
        _fill(fd, mc, 0, 2, 1)
    # a VF has 4 queues here: iavf_fdir_parse_action_check refuses queue 4
    err = rejected(fd, mc, v4_udp_rule("1.1.1.1", actions=(queue(4),)))
    assert err.message == "Invalid queue index."


def test_sixteen_thousand_rules_load_fast(mc: MatchCompiler, parser: Parser) -> None:
    fd = FlowDirector(Device.build(rxq=16))
    rules = []
    for i in range(16384):
        src = f"10.{i >> 8 & 0xFF}.{i & 0xFF}.1"
        r = v4_udp_rule(src, dport=1000 + i % 7, actions=(queue(i % 16),))
        rules.append((r, mc.compile(r, exact=True)))
    t = time.perf_counter()
    for i, (r, m) in enumerate(rules):
        fd.validate(r, m)
        fd.add(i, r, m)
    assert time.perf_counter() - t < 2.0
    assert len(fd) == 16384
    err = rejected(fd, mc, v4_udp_rule("10.255.255.255"))
    assert "PF 0's guaranteed pool (2048) and the shared best-effort pool (14336)" in err.message
    t = time.perf_counter()
    for i in range(0, 16384, 97):
        src = f"10.{i >> 8 & 0xFF}.{i & 0xFF}.1"
        v = fd.lookup(frame(parser, udp4(src=src, dport=1000 + i % 7)))
        assert v is not None and (v.rule, v.queue) == (i, i % 16)
        assert fd.lookup(frame(parser, udp4(src=src, dport=1000 + (i + 1) % 7))) is None
    assert time.perf_counter() - t < 2.0


# --- actions ------------------------------------------------------------------


def test_queue_range(fd: FlowDirector, mc: MatchCompiler) -> None:
    add(fd, mc, 1, v4_udp_rule("1.1.1.1", actions=(queue(15),)))
    err = rejected(fd, mc, v4_udp_rule("1.1.1.2", actions=(queue(16, 0),)))
    assert (err.type_code, err.index) == (16, 0)
    assert err.message.startswith("Invalid queue for FDIR.")
    assert "pf0's 16 queues (0..15)" in err.message


def test_queue_regions(fd: FlowDirector, mc: MatchCompiler, parser: Parser) -> None:
    add(fd, mc, 1, v4_udp_rule("10.0.0.1", actions=(Action("rss", 0, queues=(4, 5, 6, 7)),)))
    v = fd.lookup(frame(parser, udp4()))
    assert v is not None
    assert (v.action, v.qgroup, v.queue, v.priority) == ("to_qgroup", (4, 4), None, 3)
    bad = {
        (3,): "Queue region size can't be 0 or 1.",
        (): "Queue region size can't be 0 or 1.",
        (1, 2, 4, 5): "Discontinuous queue region",
        (0, 1, 2): "The region size should be any of the following values",
        (14, 15, 16, 17): "Invalid queue region indexes.",
    }
    for qs, msg in bad.items():
        err = rejected(fd, mc, v4_udp_rule("10.0.0.2", actions=(Action("rss", 0, queues=qs),)))
        assert err.type_code == 16 and err.message.startswith(msg), qs
    big = FlowDirector(Device.build(rxq=512))
    add(big, mc, 1, v4_udp_rule("1.1.1.1", actions=(Action("rss", 0, queues=tuple(range(128))),)))
    err = rejected(
        big, mc, v4_udp_rule("1.1.1.2", actions=(Action("rss", 0, queues=tuple(range(256))),))
    )
    assert "(got 256)" in err.message


def test_passthru_mark_drop_count(fd: FlowDirector, mc: MatchCompiler, parser: Parser) -> None:
    cases = {
        "10.0.0.1": ((Action("passthru", 0),), ("passthru", None, 0)),
        "10.0.0.2": ((Action("mark", 0, mark=7),), ("passthru", 7, 0)),
        "10.0.0.3": ((Action("drop", 0), Action("mark", 1, mark=9)), ("drop", 9, 3)),
        "10.0.0.4": ((Action("count", 0),), ("passthru", None, 0)),
        "10.0.0.5": ((queue(2), Action("mark", 1, mark=0), Action("count", 2)), ("to_queue", 0, 3)),
    }
    for n, (src, (actions, _)) in enumerate(cases.items()):
        add(fd, mc, n, v4_udp_rule(src, actions=actions))
    for src, (_, want) in cases.items():
        v = fd.lookup(frame(parser, udp4(src=src)))
        assert v is not None and (v.action, v.mark, v.priority) == want, src


def test_action_combinations(fd: FlowDirector, mc: MatchCompiler) -> None:
    bad = {
        (queue(1), Action("drop", 1)): (1, "Unsupported action combination"),
        (Action("mark", 0, mark=1), Action("mark", 1, mark=2)): (1, "Too many mark actions"),
        (Action("count", 0), Action("count", 1)): (1, "Too many count actions"),
        (Action("jump", 0),): (0, "Invalid action."),
        (Action("end", 0),): (None, "Empty action"),
    }
    for actions, (index, msg) in bad.items():
        err = rejected(fd, mc, v4_udp_rule("1.1.1.1", actions=actions))
        assert err.type_code == 16 and err.index == index, msg
        assert err.message.startswith(msg)


def test_unknown_port(fd: FlowDirector, mc: MatchCompiler) -> None:
    err = rejected(fd, mc, v4_udp_rule("1.1.1.1", port=3))
    assert "port 3 does not exist" in err.message


# --- raw patterns -------------------------------------------------------------


def _vendor(flow: int, tenant: int, inner: Packet) -> Any:
    header = bytes([1, 4]) + flow.to_bytes(2, "big") + tenant.to_bytes(4, "big")
    return eth() / IP(src="1.1.1.1", dst="2.2.2.2") / GRE(proto=0x88B5) / Raw(header) / inner


def test_raw_pattern_on_a_custom_protocol() -> None:
    parser = Parser.load(["os-default", "examples/custom-gre.ddp"])
    mc = MatchCompiler(parser)
    fd = FlowDirector(Device.build(rxq=16))
    udp = IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2)
    sample = bytes(_vendor(0x0007, 42, udp))
    mask = bytearray(len(sample))
    mask[40:46] = b"\xff" * 6  # vendor flow id and tenant: 14 + 20 + 4 + 2
    raw = Item("raw", 0, raw=RawSpec(sample, bytes(mask)))
    r = FlowRule(0, (raw, Item("end", 1)), (queue(2), Action("mark", 1, mark=0x55)))
    m = mc.compile_raw(raw)
    assert m.raw and m.ptypes == {602}
    fd.validate(r, m)
    fd.add(1, r, m)
    other_inner = IP(src="172.16.0.1", dst="172.16.0.2") / UDP(sport=7, dport=8)
    v = fd.lookup(frame(parser, _vendor(0x0007, 42, other_inner)))
    assert v is not None and (v.queue, v.mark) == (2, 0x55)
    assert v.note == "exact match in profile 0 (flow type raw IPv4/tunnel/vendor/IPv4/UDP)"
    assert dict(v.words) == {"130@2": 7, "130@4": 0, "130@6": 42}
    assert fd.lookup(frame(parser, _vendor(0x0008, 42, udp))) is None
    assert fd.lookup(frame(parser, _vendor(0x0007, 43, udp))) is None
    # TCP inside is another PTYPE (603), so another flow type
    tcp = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1, dport=2)
    assert fd.lookup(frame(parser, _vendor(0x0007, 42, tcp))) is None
    # raw masks may cover part of a field
    mask2 = bytearray(len(sample))
    mask2[40] = 0xF0
    raw2 = Item("raw", 0, raw=RawSpec(sample, bytes(mask2)))
    r2 = FlowRule(0, (raw2, Item("end", 1)), (queue(3),))
    err = pytest.raises(RuleError, fd.validate, r2, mc.compile_raw(raw2)).value
    assert "ICE_ERR_ALREADY_EXISTS" in err.message and "130@2/0xf000" in err.message
    fd.remove(1)
    fd.add(2, r2, mc.compile_raw(raw2))
    v = fd.lookup(frame(parser, _vendor(0x0099, 1, udp)))
    assert v is not None and v.rule == 2


# --- through the console: testpmd's defaults and ice's answers ------------------


def _console(rxq: int = 16) -> Any:
    from e810pipe.console import Testpmd

    tp = Testpmd(["-a", "0000:18:00.0", "--", "-i", f"--rxq={rxq}", "--log-level=ice,7"])
    for line in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(line)
    return tp


def _rx(tp: Any, pkt: Packet) -> str:
    return str(tp.inject(0, [bytes(pkt)]))


def test_mark_rss_without_queues_is_a_region_of_every_queue() -> None:
    # testpmd's parse_vc_action_rss fills the queues of the port; the hash engine then
    # refuses it (ice_hash_parse_action_check: "a non-NULL RSS queue"), Flow Director
    # takes it as a queue region (ice_fdir_parse_action: q_region = fls(16) - 1)
    tp = _console(16)
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 src is 192.168.0.20 dst is 192.168.0.21 "
        "/ end actions mark id 3 / rss / end"
    )
    assert "Succeeded to create (1) flow" in out and "Flow rule #0 created" in out
    pkt = (
        Ether(dst="00:11:22:33:44:55") / IP(src="192.168.0.20", dst="192.168.0.21") / Raw(b"x" * 40)
    )
    assert "FDIR matched ID=0x3" in _rx(tp, pkt)
    # `queues end` is an empty list: ice_fdir_check_action_qregion refuses it
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 src is 192.168.0.30 / end "
        "actions rss queues end / end"
    )
    assert "Queue region size can't be 0 or 1.: Invalid argument" in out


def test_duplicate_rule_is_refused_with_eexist() -> None:
    # ice_fdir_create_filter: ice_fdir_entry_lookup finds the key, whatever the actions
    tp = _console()
    r = "flow create 0 ingress pattern eth / ipv4 src is 192.168.0.20 ttl is 2 / end actions "
    assert "Flow rule #0 created" in tp.execute(r + "queue index 1 / mark / end")
    out = tp.execute(r + "queue index 2 / mark id 3 / end")
    assert "ice_flow_create(): Failed to create flow" in out
    assert "Caught PMD error type 2 (flow rule (handle)): Rule already exists!: File exists" in out


def test_256_counters_per_pf() -> None:
    # ice_fdir_counter_alloc: one block of ICE_FDIR_COUNTERS_PER_BLOCK counters per PF,
    # every count action its own counter; ice_fdir_counter_free gives it back
    tp = _console()
    for i in range(256):
        out = tp.execute(
            f"flow create 0 ingress pattern eth / ipv4 src is 10.0.{i >> 8}.{i & 255} / end "
            "actions drop / mark / count / end"
        )
        assert f"Flow rule #{i} created" in out
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 src is 10.1.0.0 / end actions drop / count / end"
    )
    assert out.startswith("ice_fdir_counter_alloc(): No free counter found\n")
    assert "Failed to alloc FDIR counter.: Invalid argument" in out
    # a rule without count still fits
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 src is 10.1.0.0 / end actions drop / mark / end"
    )
    assert "Flow rule #256 created" in out
    tp.execute("flow destroy 0 rule 5")
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 src is 10.1.0.1 / end actions drop / count / end"
    )
    assert "Flow rule #257 created" in out


def test_ipv4_other_covers_l4_packets_and_conflicts_with_udp() -> None:
    # ice_fdir_input_set_hdrs: NONF_IPV4_OTHER is IPV4 | IPV_OTHER, which
    # ice_flow_proc_seg_hdrs turns into ice_ptypes_ipv4_ofos_all: UDP, TCP, SCTP too
    tp = _console()
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 dst is 192.168.0.21 / end "
        "actions queue index 1 / mark id 1 / end"
    )
    assert "Succeeded to create (1) flow" in out
    base = Ether(dst="00:11:22:33:44:55") / IP(src="192.168.0.20", dst="192.168.0.21")
    for l4 in (Raw(b"x" * 20), UDP(sport=22, dport=23), TCP(sport=22, dport=23)):
        got = _rx(tp, base / l4)
        assert "port 0/queue 1:" in got and "FDIR matched ID=0x1" in got
    # ice_fdir_cross_prof_conflict: IPV4_UDP overlaps IPV4_OTHER, which holds a rule
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 dst is 192.168.0.21 / udp dst is 23 / end "
        "actions queue index 2 / mark id 2 / end"
    )
    assert "Profile configure failed.: Invalid argument" in out
    tp.execute("flow flush 0")
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 dst is 192.168.0.21 / udp dst is 23 / end "
        "actions queue index 2 / mark id 2 / end"
    )
    assert "Succeeded to create (1) flow" in out


def test_vxlan_rule_covers_inner_ipv4_with_and_without_inner_ethernet() -> None:
    # a VXLAN profile's segments carry only IPV_OTHER (ice_fdir_input_set_hdrs), so its
    # PTYPEs are every packet with the inner IPv4 its input set reads: VXLAN with an
    # inner Ethernet header and VXLAN-GPE carrying IPv4 directly, fragments included
    tp = _console()
    tp.execute("port config 0 udp_tunnel_port add vxlan 4789")
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 / udp / vxlan / ipv4 src is 192.168.0.20 "
        "dst is 192.168.0.21 / end actions queue index 3 / mark id 9 / end"
    )
    assert "Succeeded to create (1) flow" in out
    inner = IP(src="192.168.0.20", dst="192.168.0.21")
    outer = Ether(dst="00:11:22:33:44:55") / IP()
    vxlan = outer / UDP(sport=4789, dport=4789) / VXLAN(vni=2) / Ether() / inner / Raw(b"x" * 20)
    gpe = bytes(outer / UDP(sport=200, dport=4790)) + bytes.fromhex("0c00000100000000")
    for pkt in (bytes(vxlan), gpe + bytes(inner), gpe + bytes(IP(bytes(inner), frag=1))):
        got = str(tp.inject(0, [pkt]))
        assert "port 0/queue 3:" in got and "FDIR matched ID=0x9" in got
    # a plain IPv4 packet with those addresses has no inner IPv4: not this profile's
    got = _rx(tp, Ether(dst="00:11:22:33:44:55") / inner / Raw(b"x" * 20))
    assert "FDIR matched" not in got


def test_gtpu_session_and_eh_profiles_split_on_the_extension_header() -> None:
    # ice_attr_gtpu_session / ice_attr_gtpu_eh: a GTP-U profile without gtp_psc takes
    # G-PDUs without the PDU session container, the gtp_psc one those with it
    from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer

    from e810pipe.console import Testpmd

    tp = Testpmd(["-a", "0000:18:00.0", "--profile", "comms", "--", "-i", "--rxq=16"])
    for line in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(line)
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 / udp / gtpu teid is 0x12345678 / end "
        "actions queue index 4 / mark id 1 / end"
    )
    assert "Flow rule #0 created" in out
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 / udp / gtpu teid is 0x12345678 / gtp_psc "
        "qfi is 0x34 / end actions queue index 5 / mark id 2 / end"
    )
    assert "Flow rule #1 created" in out
    base = Ether(dst="00:11:22:33:44:55") / IP() / UDP(dport=2152)
    plain = base / GTP_U_Header(teid=0x12345678) / IP() / Raw(b"x" * 20)
    eh = (
        base
        / GTP_U_Header(teid=0x12345678, next_ex=0x85)
        / GTPPDUSessionContainer(type=1, QFI=0x34)
        / IP()
        / Raw(b"x" * 20)
    )
    assert "FDIR matched ID=0x1" in _rx(tp, plain)
    assert "FDIR matched ID=0x2" in _rx(tp, eh)


def test_ipv6_next_protocol_past_extension_headers_with_comms() -> None:
    # ice_flow_xtract_fld: ICE_FLOW_FIELD_IDX_IPV6_PROT reads ICE_PROT_IPV6_NEXT_PROTO
    # at offset 0 (mask 0xff00) when the package has the ID
    # (ice_check_ddp_support_proto_id): COMMS does, so the rule sees the protocol after
    # the extension headers; a fragment is another PTYPE (IPV6FRAG), not this profile's
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrRouting

    from e810pipe.console import Testpmd

    tp = Testpmd(["-a", "0000:18:00.0", "--profile", "comms", "--", "-i", "--rxq=16"])
    for line in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(line)
    out = tp.execute(
        "flow create 0 ingress pattern eth dst is 00:11:22:33:44:55 / ipv6 proto is 123 / "
        "end actions queue index 1 / mark id 3 / end"
    )
    assert "Flow rule #0 created" in out
    base = Ether(dst="00:11:22:33:44:55") / IPv6()
    pay = Raw(b"x" * 40)
    for pkt in (
        Ether(dst="00:11:22:33:44:55") / IPv6(nh=123) / pay,
        base / IPv6ExtHdrDestOpt(nh=123) / pay,
        base / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt(nh=123) / pay,
    ):
        got = _rx(tp, pkt)
        assert "port 0/queue 1:" in got and "FDIR matched ID=0x3" in got
    for pkt in (
        base / IPv6ExtHdrRouting(nh=111) / pay,
        base / IPv6ExtHdrFragment(nh=123) / pay,
    ):
        assert "FDIR matched" not in _rx(tp, pkt)


def test_ipv6_next_protocol_is_the_fixed_header_with_os_default() -> None:
    # OS-default has no ICE_PROT_IPV6_NEXT_PROTO: ice_flow_xtract_fld falls back to
    # ICE_PROT_IPV6_OF_OR_S, the next-header byte of the fixed header
    from scapy.layers.inet6 import IPv6ExtHdrHopByHop

    tp = _console()
    out = tp.execute(
        "flow create 0 ingress pattern eth dst is 00:11:22:33:44:55 / ipv6 proto is 0 / "
        "end actions queue index 2 / mark id 4 / end"
    )
    assert "Flow rule #0 created" in out
    got = _rx(tp, Ether(dst="00:11:22:33:44:55") / IPv6() / IPv6ExtHdrHopByHop() / Raw(b"x" * 40))
    assert "port 0/queue 2:" in got and "FDIR matched ID=0x4" in got


def test_nat_t_esp_spi_is_read_from_the_udp_header() -> None:
    # ice_fdir_parse_pattern: eth / ipv4 / udp / esp is NONF_IPV4_NAT_T_ESP, and
    # ice_flow_xtract_fld reads ICE_FLOW_FIELD_IDX_NAT_T_ESP_SPI at UDP_IL_OR_S + 8
    from scapy.layers.ipsec import ESP

    from e810pipe.console import Testpmd

    tp = Testpmd(["-a", "0000:18:00.0", "--profile", "comms", "--", "-i", "--rxq=16"])
    for line in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(line)
    out = tp.execute(
        "flow create 0 ingress pattern eth / ipv4 src is 192.168.0.20 dst is 192.168.0.21 / "
        "udp / esp spi is 7 / end actions queue index 13 / mark id 7 / end"
    )
    assert "Flow rule #0 created" in out
    base = Ether(dst="00:11:22:33:44:55") / IP(src="192.168.0.20", dst="192.168.0.21")
    got = _rx(tp, base / UDP(dport=4500) / ESP(spi=7) / Raw(b"x" * 20))
    assert "port 0/queue 13:" in got and "FDIR matched ID=0x7" in got
    assert "FDIR matched" not in _rx(tp, base / UDP(dport=4500) / ESP(spi=8) / Raw(b"x" * 20))


def test_gtpu_rules_take_g_pdus_without_an_ip_payload() -> None:
    # ice_ptypes_gtpu_no_ip (base/ice_flow.c): a G-PDU whose payload is not IP is
    # MAC_IPV4_GTPU (329); both the session and the EH profile cover it, their TEID
    # (and QFI) read at UDP_OF as for any G-PDU
    from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer

    from e810pipe.console import Testpmd
    from e810pipe.parser import Parser

    base = Ether(dst="00:11:22:33:44:55") / IP() / UDP(dport=2152)
    plain = base / GTP_U_Header(gtp_type=255, teid=0x12345678) / Raw(b"x" * 20)
    eh = (
        base
        / GTP_U_Header(gtp_type=255, teid=0x12345678)
        / GTPPDUSessionContainer(type=0, P=1, QFI=0x34)
        / Raw(b"x" * 20)
    )
    res = Parser.load(profiles=["comms"]).parse(bytes(plain))
    assert (res.ptype, res.ptype_name) == (329, "MAC_IPV4_GTPU")
    assert (52, 34) in res.po  # UDP_OF: the UDP header carries the G-PDU
    for pattern, pkt in (("", plain), (" / gtp_psc qfi is 0x34", eh)):
        tp = Testpmd(["-a", "0000:18:00.0", "--profile", "comms", "--", "-i", "--rxq=16"])
        for line in ("set fwd rxonly", "set verbose 1", "start"):
            tp.execute(line)
        out = tp.execute(
            f"flow create 0 ingress pattern eth / ipv4 / udp / gtpu teid is 0x12345678{pattern}"
            " / end actions queue index 4 / mark id 1 / end"
        )
        assert "Flow rule #0 created" in out
        got = _rx(tp, pkt)
        assert "port 0/queue 4:" in got and "FDIR matched ID=0x1" in got


def test_gtpu_echo_with_an_extension_header_is_no_tunnel() -> None:
    # an echo request (message type 1) with the E flag: its extension header is
    # followed, but no payload is a tunnel; the UDP header stays UDP_IL_OR_S
    from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer

    from e810pipe.parser import Parser

    pkt = (
        Ether()
        / IP()
        / UDP(dport=2152)
        / GTP_U_Header(gtp_type=1, teid=0x12345678)
        / GTPPDUSessionContainer(type=0, QFI=0x34)
        / IP()
    )
    res = Parser.load(profiles=["comms"]).parse(bytes(pkt))
    assert res.ptype == 329 and (53, 34) in res.po and "tunnel_gtpu" not in res.flags

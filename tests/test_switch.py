"""Switch block: MAC rules, the default MAC rule, advanced recipe rules and their limits."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet

from e810pipe.device import Device
from e810pipe.engine import Frame, MatchCompiler
from e810pipe.errors import RuleError
from e810pipe.fields import Word
from e810pipe.parser import Parser
from e810pipe.rules import Action, FieldSpec, FlowRule, Item
from e810pipe.switch import MAX_RECIPES, QUEUE_PRIORITY, Switch

PF_MAC = "00:aa:bb:cc:dd:00"
VF0_MAC = "02:00:00:00:00:01"
VF1_MAC = "02:00:00:00:00:02"
OTHER_MAC = "00:11:22:33:44:55"
ONES32 = 0xFFFFFFFF
ONES48 = (1 << 48) - 1
ONES128 = (1 << 128) - 1


@pytest.fixture(scope="module")
def parser() -> Parser:
    return Parser.load(["os-default"], vxlan_ports=[4789])


@pytest.fixture(scope="module")
def compiler(parser: Parser) -> MatchCompiler:
    return MatchCompiler(parser)


def make_device(default_mac_disable: bool = False) -> Device:
    return Device.from_dict(
        {
            "pfs": [{"rxq": 16, "mac": PF_MAC, "vfs": [{"mac": VF0_MAC}, {"mac": VF1_MAC}]}],
            "default_mac_disable": default_mac_disable,
        }
    )


def make_switch(parser: Parser, default_mac_disable: bool = False) -> Switch:
    return Switch(make_device(default_mac_disable), proto_ids=parser.package.proto_ids)


def frame(parser: Parser, pkt: Packet) -> Frame:
    data = bytes(pkt)
    return Frame(data, parser.parse(data))


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ip6(text: str) -> int:
    return int(ipaddress.IPv6Address(text))


def rule(*items: Item, actions: tuple[Action, ...], priority: int = 0, **extra: object) -> FlowRule:
    pattern = (*items, Item("end", len(items)))
    return FlowRule(0, pattern, actions, priority=priority, extra=extra)


def queue(n: int, index: int = 0) -> Action:
    return Action("queue", index, queue=n)


def ipv4_dst_rule(dst: str, action: Action, priority: int = 0) -> FlowRule:
    return rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", ip4(dst), ONES32),)),
        actions=(action,),
        priority=priority,
    )


def udp_dst_rule(port: int, action: Action, priority: int = 0) -> FlowRule:
    return rule(
        Item("eth", 0),
        Item("ipv4", 1),
        Item("udp", 2, (FieldSpec("udp.dst", port, 0xFFFF),)),
        actions=(action,),
        priority=priority,
    )


def vxlan_rule(vni: int | None, inner_dst: str | None, action: Action) -> FlowRule:
    vx = (FieldSpec("vxlan.vni", vni, 0xFFFFFF),) if vni is not None else ()
    inner = (FieldSpec("ipv4.dst", ip4(inner_dst), ONES32),) if inner_dst else ()
    return rule(
        Item("eth", 0),
        Item("ipv4", 1),
        Item("udp", 2),
        Item("vxlan", 3, vx),
        Item("eth", 4, level=1),
        Item("ipv4", 5, inner, level=1),
        actions=(action,),
    )


def add(sw: Switch, compiler: MatchCompiler, rid: int, r: FlowRule) -> None:
    sw.add(rid, r, compiler.compile(r))


def rejected(sw: Switch, compiler: MatchCompiler, r: FlowRule) -> RuleError:
    with pytest.raises(RuleError) as info:
        sw.validate(r, compiler.compile(r))
    return info.value


def plain(dst_mac: str = OTHER_MAC, dst: str = "192.0.2.1", dport: int = 1000) -> Packet:
    return Ether(dst=dst_mac) / IP(dst=dst) / UDP(sport=1234, dport=dport)


def vxlan(vni: int, inner_dst: str = "10.0.0.1") -> Packet:
    return (
        Ether(dst=OTHER_MAC)
        / IP(dst="198.51.100.1")
        / UDP(sport=5555, dport=4789)
        / VXLAN(vni=vni)
        / Ether()
        / IP(dst=inner_dst)
        / TCP()
    )


# ------------------------------------------------------------------ MAC rules


def test_default_mac_rule_goes_to_pf_vsi(parser: Parser) -> None:
    sw = make_switch(parser)
    v = sw.lookup(frame(parser, plain()))
    assert (v.block, v.rule, v.action, v.vsi) == ("switch", None, "to_vsi", 0)
    assert v.note == "default MAC rule -> PF 0 VSI 0"
    assert [name for name, _ in v.words] == ["MAC_OF_OR_S+0", "MAC_OF_OR_S+2", "MAC_OF_OR_S+4"]


def test_vf_mac_goes_to_vf_vsi(parser: Parser) -> None:
    sw = make_switch(parser)
    v = sw.lookup(frame(parser, plain(VF1_MAC)))
    assert (v.action, v.vsi, v.rule) == ("to_vsi", 2, None)
    assert v.note == f"MAC {VF1_MAC} -> pf0.vf1 (VSI 2)"
    assert sw.lookup(frame(parser, plain(VF0_MAC))).vsi == 1
    assert sw.lookup(frame(parser, plain(PF_MAC))).vsi == 0


def test_broadcast_and_multicast_go_to_pf_vsi(parser: Parser) -> None:
    sw = make_switch(parser)
    assert sw.lookup(frame(parser, plain("ff:ff:ff:ff:ff:ff"))).vsi == 0
    assert sw.lookup(frame(parser, plain("01:00:5e:00:00:01"))).vsi == 0


def test_default_mac_disable_drops_unmatched(parser: Parser) -> None:
    sw = make_switch(parser, default_mac_disable=True)
    v = sw.lookup(frame(parser, plain()))
    assert (v.action, v.vsi, v.rule) == ("drop", None, None)
    assert v.note == "no switch rule matched (default MAC rule disabled)"
    # the PF's own MAC filter is the "default MAC" the devarg disables
    assert sw.lookup(frame(parser, plain(PF_MAC))).action == "drop"
    # multicast rides the default rule; broadcast has its own filter
    assert sw.lookup(frame(parser, plain("01:00:5e:00:00:01"))).action == "drop"
    assert sw.lookup(frame(parser, plain("ff:ff:ff:ff:ff:ff"))).vsi == 0
    # VF MACs and advanced rules still forward
    assert sw.lookup(frame(parser, plain(VF0_MAC))).vsi == 1


def test_default_mac_disable_advanced_rule_still_hits(
    parser: Parser, compiler: MatchCompiler
) -> None:
    sw = make_switch(parser, default_mac_disable=True)
    add(sw, compiler, 1, ipv4_dst_rule("192.0.2.1", queue(2)))
    v = sw.lookup(frame(parser, plain()))
    assert (v.action, v.vsi, v.queue, v.rule) == ("to_queue", 0, 2, 1)


def test_shared_mac_makes_a_vsi_list(parser: Parser) -> None:
    dev = Device.from_dict({"pfs": [{"rxq": 4, "vfs": [{"mac": VF0_MAC}, {"mac": VF0_MAC}]}]})
    v = Switch(dev).lookup(frame(parser, plain(VF0_MAC)))
    assert (v.action, v.vsis, v.vsi) == ("to_vsi_list", (1, 2), 1)


# ------------------------------------------------------------- advanced rules


def test_vni_rule_to_queue(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    add(sw, compiler, 7, vxlan_rule(42, None, queue(5)))
    v = sw.lookup(frame(parser, vxlan(42)))
    assert (v.action, v.rule, v.vsi, v.queue) == ("to_queue", 7, 0, 5)
    assert v.priority == QUEUE_PRIORITY
    assert v.note.startswith("switch rule 7: recipe 0 (priority 6)")
    assert dict(v.words) == {"UDP_OF+12": 0x0000, "UDP_OF+14": 0x2A00}
    # another VNI misses and takes the default MAC rule
    assert sw.lookup(frame(parser, vxlan(43))).rule is None


def test_inner_ip_rule(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    add(sw, compiler, 1, vxlan_rule(None, "10.0.0.1", queue(6)))
    v = sw.lookup(frame(parser, vxlan(42, "10.0.0.1")))
    assert (v.action, v.queue, v.rule) == ("to_queue", 6, 1)
    assert {name for name, _ in v.words} == {"IPV4_IL+16", "IPV4_IL+18"}
    assert sw.lookup(frame(parser, vxlan(42, "10.0.0.2"))).rule is None
    # the same address as an outer destination is not a tunnel packet
    assert sw.lookup(frame(parser, plain(dst="10.0.0.1"))).rule is None


def test_ptypes_limit_a_rule(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    add(sw, compiler, 1, udp_dst_rule(53, queue(1)))
    assert sw.lookup(frame(parser, plain(dport=53))).rule == 1
    tcp = Ether(dst=OTHER_MAC) / IP(dst="192.0.2.1") / TCP(sport=1234, dport=53)
    assert sw.lookup(frame(parser, tcp)).rule is None


def test_priority_order(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    # rte_flow priority 1 -> recipe priority 5, added first
    add(sw, compiler, 1, ipv4_dst_rule("192.0.2.1", queue(7), priority=1))
    # rte_flow priority 0 -> recipe priority 6 is looked up first
    add(sw, compiler, 2, udp_dst_rule(53, queue(3), priority=0))
    v = sw.lookup(frame(parser, plain(dport=53)))
    assert (v.rule, v.action, v.queue) == (2, "to_queue", 3)
    assert "(priority 6)" in v.note
    # the priority-1 rule still hits what the priority-0 one does not match
    v = sw.lookup(frame(parser, plain(dport=54)))
    assert (v.rule, v.action, v.queue) == (1, "to_queue", 7)
    assert "(priority 5)" in v.note


def test_a_lower_priority_drop_still_drops(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    add(sw, compiler, 1, ipv4_dst_rule("192.0.2.1", Action("drop", 0), priority=1))
    add(sw, compiler, 2, udp_dst_rule(53, queue(3), priority=0))
    assert sw.lookup(frame(parser, plain(dport=53))).action == "drop"
    sw.drop_wins = False
    assert sw.lookup(frame(parser, plain(dport=53))).rule == 2


def test_same_priority_first_added_wins(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    add(sw, compiler, 10, udp_dst_rule(53, queue(3)))
    add(sw, compiler, 11, ipv4_dst_rule("192.0.2.1", queue(4)))
    assert sw.lookup(frame(parser, plain(dport=53))).rule == 10
    sw.remove(10)
    assert sw.lookup(frame(parser, plain(dport=53))).rule == 11


def test_advanced_rules_before_mac_rules(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    add(sw, compiler, 1, ipv4_dst_rule("192.0.2.1", queue(9)))
    v = sw.lookup(frame(parser, plain(VF0_MAC)))
    assert (v.rule, v.vsi, v.queue) == (1, 0, 9)


def test_priority_above_one_rejected(parser: Parser, compiler: MatchCompiler) -> None:
    err = rejected(make_switch(parser), compiler, ipv4_dst_rule("192.0.2.1", queue(1), 2))
    assert err.category == "priority field"


def test_drop_verdict(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    add(sw, compiler, 3, ipv4_dst_rule("192.0.2.9", Action("drop", 0)))
    v = sw.lookup(frame(parser, plain(VF1_MAC, dst="192.0.2.9")))
    assert (v.action, v.rule, v.vsi, v.priority) == ("drop", 3, None, QUEUE_PRIORITY)
    assert v.note.endswith(": drop")


def test_masked_words(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    r = rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", ip4("192.0.2.0"), 0xFFFFFF00),)),
        actions=(queue(2),),
    )
    add(sw, compiler, 1, r)
    assert sw.lookup(frame(parser, plain(dst="192.0.2.77"))).rule == 1
    assert sw.lookup(frame(parser, plain(dst="192.0.3.77"))).rule is None


# ---------------------------------------------------------------- actions


def test_queue_group_rule(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    add(sw, compiler, 1, ipv4_dst_rule("192.0.2.1", Action("rss", 0, queues=(4, 5, 6, 7))))
    v = sw.lookup(frame(parser, plain()))
    assert (v.action, v.vsi, v.qgroup, v.priority) == ("to_qgroup", 0, (4, 4), QUEUE_PRIORITY)


@pytest.mark.parametrize(
    ("queues", "category"),
    [
        ((4, 5, 6), "specific action"),  # not a power of two
        ((4,), "specific action"),  # a group has at least 2 queues
        ((4, 6), "action configuration"),  # not contiguous
        ((14, 15, 16, 17), "specific action"),  # past the PF VSI's 16 queues
    ],
)
def test_bad_queue_groups(
    parser: Parser, compiler: MatchCompiler, queues: tuple[int, ...], category: str
) -> None:
    r = ipv4_dst_rule("192.0.2.1", Action("rss", 0, queues=queues))
    err = rejected(make_switch(parser), compiler, r)
    assert (err.category, err.index) == (category, 0)


def test_queue_out_of_range(parser: Parser, compiler: MatchCompiler) -> None:
    err = rejected(make_switch(parser), compiler, ipv4_dst_rule("192.0.2.1", queue(16)))
    assert err.category == "specific action"
    assert "0..15" in err.message


@pytest.mark.parametrize("kind", ["mark", "count", "passthru"])
def test_unsupported_action_rejected(parser: Parser, compiler: MatchCompiler, kind: str) -> None:
    r = rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", 1, ONES32),)),
        actions=(queue(1, 0), Action(kind, 1, mark=5)),
    )
    err = rejected(make_switch(parser), compiler, r)
    assert (err.category, err.type_code, err.index) == ("specific action", 16, 1)
    assert kind in err.message


def test_one_fate_only(parser: Parser, compiler: MatchCompiler) -> None:
    r = rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", 1, ONES32),)),
        actions=(queue(1, 0), Action("drop", 1)),
    )
    err = rejected(make_switch(parser), compiler, r)
    assert (err.category, err.index) == ("specific action", 1)
    none = rule(Item("eth", 0), Item("ipv4", 1, (FieldSpec("ipv4.dst", 1, ONES32),)), actions=())
    assert rejected(make_switch(parser), compiler, none).category == "specific action"


def test_to_vsi_forms(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    to_vf = rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", ip4("192.0.2.1"), ONES32),)),
        actions=(),
        to_vsi=2,
    )
    add(sw, compiler, 1, to_vf)
    v = sw.lookup(frame(parser, plain()))
    assert (v.action, v.vsi, v.queue, v.priority) == ("to_vsi", 2, None, 0)

    listed = rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", ip4("192.0.2.2"), ONES32),)),
        actions=(),
        to_vsi_list=[0, 1],
    )
    add(sw, compiler, 2, listed)
    v = sw.lookup(frame(parser, plain(dst="192.0.2.2")))
    assert (v.action, v.vsis) == ("to_vsi_list", (0, 1))

    vf = rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", ip4("192.0.2.3"), ONES32),)),
        actions=(Action("vf", 0, queue=0),),
    )
    add(sw, compiler, 3, vf)
    assert sw.lookup(frame(parser, plain(dst="192.0.2.3"))).vsi == 1

    bad = rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", 9, ONES32),)),
        actions=(),
        to_vsi=99,
    )
    assert rejected(sw, compiler, bad).category == "action configuration"


def test_identical_lookups(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)

    def fwd(vsi: int) -> FlowRule:
        return rule(
            Item("eth", 0),
            Item("ipv4", 1, (FieldSpec("ipv4.dst", ip4("192.0.2.1"), ONES32),)),
            actions=(),
            to_vsi=vsi,
        )

    add(sw, compiler, 1, fwd(1))
    add(sw, compiler, 2, fwd(2))  # merged into a VSI list, as ice does
    v = sw.lookup(frame(parser, plain()))
    assert (v.action, v.vsis, v.rule) == ("to_vsi_list", (1, 2), 1)
    assert rejected(sw, compiler, fwd(2)).category == "flow rule (handle)"
    assert rejected(sw, compiler, ipv4_dst_rule("192.0.2.1", queue(1))).category == (
        "flow rule (handle)"
    )
    sw.remove(1)
    v = sw.lookup(frame(parser, plain()))
    assert (v.action, v.vsi, v.rule) == ("to_vsi", 2, 2)


# ---------------------------------------------------------------- recipes


def ipv6_rule(dst_mac: bool, src_mac: bool, udp_ports: int) -> FlowRule:
    eth = []
    if dst_mac:
        eth.append(FieldSpec("eth.dst", 0x001122334455, ONES48))
    if src_mac:
        eth.append(FieldSpec("eth.src", 0x00AABBCCDDEE, ONES48))
    udp = [FieldSpec("udp.dst", 4791, 0xFFFF), FieldSpec("udp.src", 1, 0xFFFF)][:udp_ports]
    return rule(
        Item("eth", 0, tuple(eth)),
        Item(
            "ipv6",
            1,
            (FieldSpec("ipv6.src", ip6("2001:db8::1"), ONES128),)
            + (FieldSpec("ipv6.dst", ip6("2001:db8::2"), ONES128),),
        ),
        Item("udp", 2, tuple(udp)),
        actions=(queue(1),),
    )


def test_recipe_chain_limit(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    # IPv6 src+dst (16 words) + outer dst MAC (3) + UDP src and dst (2) = 21 words
    r21 = ipv6_rule(dst_mac=True, src_mac=False, udp_ports=2)
    assert len(compiler.compile(r21).words) == 21
    err = rejected(sw, compiler, r21)
    assert (
        err.message == "pattern needs 21 words; a switch rule chains at most 5 recipes of 4 words"
    )
    assert (err.category, err.index) == ("specific pattern item", 2)
    # 20 words fit in a chain of 5 recipes
    r20 = ipv6_rule(dst_mac=True, src_mac=False, udp_ports=1)
    add(sw, compiler, 1, r20)
    assert sw.capacity().used["recipes"] == 5
    pkt = (
        Ether(dst="00:11:22:33:44:55")
        / IPv6(src="2001:db8::1", dst="2001:db8::2")
        / UDP(sport=9, dport=4791)
    )
    v = sw.lookup(frame(parser, pkt))
    assert v.rule == 1
    assert "recipes 0+1+2+3+4 (priority 6)" in v.note and v.note.startswith("switch rule ")
    assert len(v.words) == 20


def test_recipe_budget(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)

    def masked(mask: int, value: int = 0, priority: int = 0) -> FlowRule:
        # one word (the low half of ipv4.dst) under a different mask: a new input set
        return rule(
            Item("eth", 0),
            Item("ipv4", 1, (FieldSpec("ipv4.dst", value, mask),)),
            actions=(queue(1),),
            priority=priority,
        )

    for n in range(MAX_RECIPES):
        add(sw, compiler, n, masked(n + 1))
    assert sw.capacity().used["recipes"] == MAX_RECIPES
    assert str(sw.capacity()) == "recipes 64/64"
    err = rejected(sw, compiler, masked(MAX_RECIPES + 1))
    assert err.category == "flow rule (handle)"
    assert "no free switch recipe" in err.message and "64 of 64" in err.message
    # the same input set and priority share a recipe: still accepted
    add(sw, compiler, 100, masked(1, value=1))
    assert sw.capacity().used["recipes"] == MAX_RECIPES
    # ... but another priority is another recipe
    assert rejected(sw, compiler, masked(1, value=1, priority=1)).category == "flow rule (handle)"
    # freeing the last rule of an input set frees its recipe
    sw.remove(5)
    assert sw.capacity().used["recipes"] == MAX_RECIPES - 1
    add(sw, compiler, 101, masked(MAX_RECIPES + 1))


def test_pattern_limits(parser: Parser, compiler: MatchCompiler) -> None:
    sw = make_switch(parser)
    ranged = rule(
        Item("eth", 0),
        Item("ipv4", 1, (FieldSpec("ipv4.dst", 1, ONES32),)),
        Item("udp", 2, (FieldSpec("udp.dst", 100, 0xFFFF, last=200),)),
        actions=(queue(1),),
    )
    err = rejected(sw, compiler, ranged)
    assert (err.category, err.index) == ("item specification range", 2)
    empty = rule(Item("eth", 0), Item("ipv4", 1), actions=(queue(1),))
    assert rejected(sw, compiler, empty).category == "item specification"


def test_cost_does_not_grow_with_rules_of_one_shape(
    parser: Parser, compiler: MatchCompiler
) -> None:
    class CountingFrame(Frame):
        reads = 0

        def word(self, w: Word) -> int | None:
            CountingFrame.reads += 1
            return super().word(w)

    def reads_with(n_rules: int) -> int:
        sw = make_switch(parser)
        for i in range(n_rules):
            add(sw, compiler, i, udp_dst_rule(1000 + i, queue(i % 16)))
        data = bytes(plain(dport=1000 + n_rules - 1))
        CountingFrame.reads = 0
        v = sw.lookup(CountingFrame(data, parser.parse(data)))
        assert v.rule == n_rules - 1
        assert sw.capacity().used["recipes"] == 1
        return CountingFrame.reads

    assert reads_with(2) == reads_with(2000)


def test_vsi_forwards_of_two_recipes_both_deliver(parser: Parser, compiler: MatchCompiler) -> None:
    """Two rules of different recipes (one input set inside the other's) at one
    priority, forwarding to two VSIs: a packet both match reaches both VSIs, as DTS's
    ice_dcf_switch_filter sees on the NIC; a packet only the wider rule matches reaches
    its VSI alone. A queue rule of another recipe still takes the first hit only."""
    sw = make_switch(parser)
    src = FieldSpec("ipv4.src", ip4("192.0.2.9"), ONES32)
    dst = FieldSpec("ipv4.dst", ip4("192.0.2.1"), ONES32)
    add(sw, compiler, 1, rule(Item("eth", 0), Item("ipv4", 1, (src,)), actions=(), to_vsi=1))
    add(sw, compiler, 2, rule(Item("eth", 0), Item("ipv4", 1, (src, dst)), actions=(), to_vsi=2))
    both = Ether(dst=OTHER_MAC) / IP(src="192.0.2.9", dst="192.0.2.1") / UDP()
    v = sw.lookup(frame(parser, both))
    assert (v.action, v.rule, v.vsis) == ("to_vsi_list", 1, (1, 2))
    one = Ether(dst=OTHER_MAC) / IP(src="192.0.2.9", dst="192.0.2.7") / UDP()
    v = sw.lookup(frame(parser, one))
    assert (v.action, v.vsi) == ("to_vsi", 1)
    add(sw, compiler, 3, udp_dst_rule(1000, queue(3)))
    assert sw.lookup(frame(parser, Ether(dst=OTHER_MAC) / IP() / UDP(dport=1000))).queue == 3

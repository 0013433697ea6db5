"""Tests for e810pipe.testpmd: testpmd command text to command values, and back."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e810pipe.errors import RuleError
from e810pipe.fields import _CATALOG
from e810pipe.rules import Action, FieldSpec, FlowRule, Item, RawSpec
from e810pipe.testpmd import (
    FlowCommand,
    NoopCommand,
    RetaCommand,
    RssKeyCommand,
    RssTypesCommand,
    RxqCommand,
    SessionCommand,
    TestpmdError,
    TunnelPortCommand,
    format_rule,
    parse_command,
    parse_commands,
    parse_file,
    rss_default_queues,
)
from e810pipe.yamlfile import ConfigError

VXLAN_RULE = (
    "flow create 0 ingress pattern eth / ipv4 / udp / vxlan vni is 42 / eth / "
    "ipv4 dst is 10.0.0.1 / end actions queue index 5 / mark id 7 / end"
)
FULL32 = 0xFFFFFFFF


def rule_of(text: str) -> FlowRule:
    cmd = parse_command(text)
    assert isinstance(cmd, FlowCommand) and cmd.rule is not None
    return cmd.rule


def specs(rule: FlowRule, index: int) -> dict[str, FieldSpec]:
    return {s.field: s for s in rule.pattern[index].specs}


def error_of(text: str, where: str = "<cmd>") -> TestpmdError:
    with pytest.raises(TestpmdError) as info:
        parse_commands(text, where)
    return info.value


def ip4(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


# ---------------------------------------------------------------------------
# flow create: patterns


def test_vxlan_rule_from_peers_a2() -> None:
    cmd = parse_command(VXLAN_RULE, "rules.txt:4")
    assert isinstance(cmd, FlowCommand)
    assert (cmd.verb, cmd.port, cmd.where) == ("create", 0, "rules.txt:4")
    rule = cmd.rule
    assert rule is not None
    assert [i.type for i in rule.pattern] == ["eth", "ipv4", "udp", "vxlan", "eth", "ipv4", "end"]
    assert [i.index for i in rule.pattern] == list(range(7))
    assert [i.level for i in rule.pattern] == [0, 0, 0, 0, 1, 1, 1]
    assert rule.is_tunnel
    assert specs(rule, 3) == {"vxlan.vni": FieldSpec("vxlan.vni", 42, 0xFFFFFF)}
    assert specs(rule, 5) == {"ipv4.dst": FieldSpec("ipv4.dst", ip4("10.0.0.1"), FULL32)}
    assert rule.actions == (Action("queue", 0, queue=5), Action("mark", 1, mark=7))
    assert rule.ingress and rule.group == 0 and rule.priority == 0 and rule.port == 0
    assert rule.where == "rules.txt:4"
    assert rule.text == VXLAN_RULE
    assert rule.action("mark") == Action("mark", 1, mark=7)


def test_spec_and_mask() -> None:
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.255.255.0 / end "
        "actions drop / end"
    )
    assert specs(rule, 1)["ipv4.src"] == FieldSpec("ipv4.src", ip4("10.0.0.0"), 0xFFFFFF00)
    assert rule.actions == (Action("drop", 0),)
    assert [i.level for i in rule.pattern] == [0, 0, 0]
    assert not rule.is_tunnel


def test_spec_alone_has_no_mask() -> None:
    """testpmd's parse_vc_spec sets only the item's spec for `spec`: without `is`,
    `mask` or `prefix` the field's mask is 0 and ice's parsers match nothing of it."""
    rule = rule_of("flow create 0 pattern eth / udp dst spec 4789 / end actions drop / end")
    assert specs(rule, 1)["udp.dst"] == FieldSpec("udp.dst", 4789, 0)
    rule = rule_of(
        "flow create 0 pattern eth / tcp dst spec 10 dst last 20 / end actions drop / end"
    )
    assert specs(rule, 1)["tcp.dst"] == FieldSpec("tcp.dst", 10, 0xFFFF, 20)
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 src mask 255.255.255.0 / end actions drop / end"
    )
    assert specs(rule, 1)["ipv4.src"].mask == 0  # a mask without a spec: no spec


def test_prefix() -> None:
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 src is 10.0.0.0 src prefix 24 / end actions drop / end"
    )
    assert specs(rule, 1)["ipv4.src"] == FieldSpec("ipv4.src", ip4("10.0.0.0"), 0xFFFFFF00)
    rule = rule_of(
        "flow create 0 pattern eth / ipv6 dst is 2001:db8:: dst prefix 32 / end actions drop / end"
    )
    assert specs(rule, 1)["ipv6.dst"] == FieldSpec(
        "ipv6.dst", int(ipaddress.IPv6Address("2001:db8::")), ((1 << 32) - 1) << 96
    )
    rule = rule_of("flow create 0 pattern eth / ipv4 src prefix 0 / end actions drop / end")
    assert specs(rule, 1)["ipv4.src"] == FieldSpec("ipv4.src", 0, 0)


def test_last_makes_a_range() -> None:
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 / tcp dst is 80 dst last 90 / end actions drop / end"
    )
    assert specs(rule, 2)["tcp.dst"] == FieldSpec("tcp.dst", 80, 0xFFFF, 90)


def test_last_equal_to_spec_or_zero_is_no_range() -> None:
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 src is 10.1.1.1 src last 10.1.1.1 / "
        "udp src is 5 src last 0 / end actions drop / end"
    )
    assert specs(rule, 1)["ipv4.src"].last is None
    assert specs(rule, 2)["udp.src"].last is None


def test_repeats_override() -> None:
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 src is 1.1.1.1 src is 2.2.2.2 "
        "dst mask 255.0.0.0 dst is 3.3.3.3 ttl spec 7 ttl mask 0xf0 ttl spec 9 / end "
        "actions drop / end"
    )
    got = specs(rule, 1)
    assert got["ipv4.src"] == FieldSpec("ipv4.src", ip4("2.2.2.2"), FULL32)
    assert got["ipv4.dst"] == FieldSpec("ipv4.dst", ip4("3.3.3.3"), FULL32)  # `is`: full mask
    assert got["ipv4.ttl"] == FieldSpec("ipv4.ttl", 9, 0xF0)  # a later spec keeps the mask
    assert list(got) == ["ipv4.src", "ipv4.dst", "ipv4.ttl"]  # order of first mention


def test_mask_alone_matches_nothing() -> None:
    """An item with a mask and no spec (parse_vc_spec sets only item->mask): ice's
    parsers read its fields only `if (spec && mask)`, so it matches no field (DTS
    ice_dcf_acl_filter test_negative: such rules fail to be created)."""
    rule = rule_of("flow create 0 pattern eth / tcp flags mask 0x02 / end actions drop / end")
    assert specs(rule, 1)["tcp.flags"] == FieldSpec("tcp.flags", 0, 0)
    rule = rule_of(
        "flow create 0 pattern eth / tcp src is 5 flags mask 0x02 / end actions drop / end"
    )
    assert specs(rule, 1)["tcp.flags"] == FieldSpec("tcp.flags", 0, 0x02)  # the item has a spec


def test_gre_key_and_levels() -> None:
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 / gre protocol is 0x6558 / gre_key value is 0x1234 / "
        "eth / ipv4 / end actions queue index 3 / end"
    )
    assert [i.level for i in rule.pattern] == [0, 0, 0, 0, 1, 1, 1]
    assert specs(rule, 2)["gre.protocol"] == FieldSpec("gre.protocol", 0x6558, 0xFFFF)
    assert specs(rule, 3)["gre_key.value"] == FieldSpec("gre_key.value", 0x1234, FULL32)


def test_mpls_label() -> None:
    rule = rule_of("flow create 0 pattern eth / mpls label is 100 / ipv4 / end actions drop / end")
    assert specs(rule, 1)["mpls.label"] == FieldSpec("mpls.label", 100, 0xFFFFF)
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 / gre / mpls label is 100 tc is 5 / ipv4 / end "
        "actions drop / end"
    )
    assert rule.pattern[3].level == 1  # MPLS over GRE is the inner segment
    assert specs(rule, 3)["mpls.tc"] == FieldSpec("mpls.tc", 5, 7)


def test_gtpu_and_psc() -> None:
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 / udp / gtpu teid is 0x12345678 msg_type is 255 / "
        "gtp_psc qfi is 0x9 / ipv4 src is 1.1.1.1 / udp / end actions queue index 2 / end"
    )
    assert [i.level for i in rule.pattern] == [0, 0, 0, 0, 0, 1, 1, 1]
    assert specs(rule, 3) == {
        "gtpu.teid": FieldSpec("gtpu.teid", 0x12345678, FULL32),
        "gtpu.msg_type": FieldSpec("gtpu.msg_type", 255, 0xFF),
    }
    assert specs(rule, 4)["gtp_psc.qfi"] == FieldSpec("gtp_psc.qfi", 9, 0x3F)


def test_pppoe_as_dts_writes_it() -> None:
    rule = rule_of(
        "flow create 0 ingress pattern eth dst is 00:11:22:33:44:55 / vlan tci is 1 / "
        "pppoes seid is 3 / pppoe_proto_id is 0x0021 / end actions queue index 1 / end"
    )
    assert specs(rule, 0)["eth.dst"] == FieldSpec("eth.dst", 0x001122334455, (1 << 48) - 1)
    assert specs(rule, 1)["vlan.tci"] == FieldSpec("vlan.tci", 1, 0xFFFF)
    assert specs(rule, 2)["pppoes.session_id"] == FieldSpec("pppoes.session_id", 3, 0xFFFF)
    assert specs(rule, 3)["pppoes.proto_id"] == FieldSpec("pppoes.proto_id", 0x21, 0xFFFF)
    # the guide's spellings
    rule2 = rule_of(
        "flow create 0 ingress pattern eth dst is 00-11-22-33-44-55 / vlan tci is 1 / "
        "pppoes session_id is 3 / pppoe_proto_id proto_id is 0x0021 / end "
        "actions queue index 1 / end"
    )
    assert rule2.pattern == rule.pattern


@pytest.mark.parametrize(
    "item, field, value, catalog, expected",
    [
        ("eth", "type", "0x0800", "eth.type", 0x800),
        ("eth", "src", "0011.2233.4455", "eth.src", 0x001122334455),
        ("vlan", "vid", "100", "vlan.vid", 100),
        ("vlan", "pcp", "7", "vlan.pcp", 7),
        ("vlan", "inner_type", "0x86dd", "vlan.inner_type", 0x86DD),
        ("ipv4", "proto", "17", "ipv4.proto", 17),
        ("ipv4", "tos", "0x10", "ipv4.tos", 0x10),
        ("ipv4", "ttl", "64", "ipv4.ttl", 64),
        ("ipv4", "packet_id", "7", "ipv4.packet_id", 7),
        ("ipv4", "fragment_offset", "0x2000", "ipv4.fragment_offset", 0x2000),
        ("ipv6", "src", "::1", "ipv6.src", 1),
        ("ipv6", "proto", "6", "ipv6.proto", 6),
        ("ipv6", "tc", "3", "ipv6.tc", 3),
        ("ipv6", "hop", "255", "ipv6.hop", 255),
        ("ipv6", "flow", "0xfffff", "ipv6.flow", 0xFFFFF),
        ("tcp", "src", "1024", "tcp.src", 1024),
        ("tcp", "flags", "0x12", "tcp.flags", 0x12),
        ("udp", "src", "010", "udp.src", 8),  # strtoumax: a leading 0 is octal
        ("sctp", "tag", "0xdeadbeef", "sctp.tag", 0xDEADBEEF),
        ("icmp", "type", "8", "icmp.type", 8),
        ("icmp", "code", "0", "icmp.code", 0),
        ("icmp6", "type", "135", "icmp6.type", 135),
        ("gre", "c_rsvd0_ver", "0x2000", "gre.c_rsvd0_ver", 0x2000),
        ("nvgre", "tni", "0x123456", "nvgre.tni", 0x123456),
        ("vxlan-gpe", "vni", "9", "vxlan-gpe.vni", 9),
        ("vxlan-gpe", "protocol", "3", "vxlan-gpe.protocol", 3),
        ("geneve", "vni", "77", "geneve.vni", 77),
        ("geneve", "protocol", "0x6558", "geneve.protocol", 0x6558),
        ("l2tpv3oip", "session_id", "1234", "l2tpv3oip.session_id", 1234),
        ("esp", "spi", "0x1001", "esp.spi", 0x1001),
        ("ah", "spi", "4294967295", "ah.spi", FULL32),
    ],
)
def test_field_names_map_to_the_catalog(
    item: str, field: str, value: str, catalog: str, expected: int
) -> None:
    rule = rule_of(
        f"flow create 0 pattern eth / {item} {field} is {value} / end actions drop / end"
    )
    full = (1 << _CATALOG[catalog][2]) - 1
    assert rule.pattern[1].specs == (FieldSpec(catalog, expected, full),)


def test_raw_pattern_hex() -> None:
    rule = rule_of(
        "flow create 0 pattern raw relative is 0 offset is 0 pattern_hex spec 0x0800 "
        "pattern_hex mask ff00 / end actions queue index 1 / end"
    )
    item = rule.pattern[0]
    assert item.type == "raw" and item.specs == ()
    assert item.raw == RawSpec(b"\x08\x00", b"\xff\x00", 0, False)


def test_raw_pattern_string() -> None:
    rule = rule_of(
        "flow create 0 pattern raw relative is 1 offset is -2 pattern is ABCD / end "
        "actions drop / end"
    )
    assert rule.pattern[0].raw == RawSpec(b"ABCD", b"\xff" * 4, -2, True)


def test_void_item_keeps_its_index() -> None:
    rule = rule_of("flow create 0 pattern void / eth / end actions drop / end")
    assert [(i.type, i.index) for i in rule.pattern] == [("void", 0), ("eth", 1), ("end", 2)]


def test_empty_pattern_and_actions() -> None:
    rule = rule_of("flow validate 1 pattern end actions end")
    assert [i.type for i in rule.pattern] == ["end"]
    assert rule.actions == ()
    assert rule.port == 1


# ---------------------------------------------------------------------------
# flow create: attributes and actions


def test_attributes() -> None:
    rule = rule_of("flow create 3 group 1 priority 5 ingress pattern eth / end actions drop / end")
    assert (rule.port, rule.group, rule.priority, rule.ingress) == (3, 1, 5, True)
    rule = rule_of("flow create 0 egress pattern eth / end actions drop / end")
    assert not rule.ingress and rule.extra["egress"] is True
    rule = rule_of("flow create 0 transfer pattern eth / end actions drop / end")
    assert rule.extra["transfer"] is True
    rule = rule_of("flow create 0 pattern eth / end actions drop / end")
    assert rule.ingress  # no direction given: ingress, the only one the model has


def test_rss_action() -> None:
    rule = rule_of(
        "flow create 0 priority 5 ingress pattern eth / ipv4 / udp / end "
        "actions rss queues 6 7 8 end / end"
    )
    assert rule.actions == (Action("rss", 0, queues=(6, 7, 8)),)
    rule = rule_of(
        "flow create 0 ingress pattern eth / ipv4 / end actions rss types ipv4 l3-src-only end "
        "key_len 0 queues end func toeplitz / count identifier 3 / passthru / end"
    )
    assert rule.actions == (
        Action("rss", 0, queues=()),
        Action("count", 1, counter=3),
        Action("passthru", 2),
    )
    assert rule.extra["rss"][0] == {
        "types": ("ipv4", "l3-src-only"),
        "key_len": 0,
        "func": "toeplitz",
    }


def test_count_without_identifier() -> None:
    rule = rule_of("flow create 0 pattern eth / end actions count / drop / end")
    assert rule.actions == (Action("count", 0), Action("drop", 1))


# ---------------------------------------------------------------------------
# other flow commands


@pytest.mark.parametrize(
    "text, expected",
    [
        ("flow destroy 0 rule 0", FlowCommand("destroy", 0, rule_ids=(0,))),
        ("flow destroy 0 rule 42 rule 10 rule 2", FlowCommand("destroy", 0, rule_ids=(42, 10, 2))),
        ("flow destroy 1 rule 4 5 6", FlowCommand("destroy", 1, rule_ids=(4, 5, 6))),
        ("flow flush 0", FlowCommand("flush", 0)),
        ("flow list 0", FlowCommand("list", 0)),
        ("flow list 1 group 0 group 63", FlowCommand("list", 1, groups=(0, 63))),
        ("flow query 0 4 count", FlowCommand("query", 0, rule_ids=(4,), action="count")),
    ],
)
def test_flow_management(text: str, expected: FlowCommand) -> None:
    assert parse_command(text) == dataclasses.replace(expected, where="<cmd>:1")


# ---------------------------------------------------------------------------
# port config and no-op commands

E810_KEY = bytes(range(52))
KEY40 = bytes(range(100, 140))


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "port config 0 udp_tunnel_port add vxlan 4789",
            TunnelPortCommand(0, "add", "vxlan", 4789),
        ),
        (
            "port config 1 udp_tunnel_port rm vxlan-gpe 4790",
            TunnelPortCommand(1, "rm", "vxlan-gpe", 4790),
        ),
        (
            "port config 0 udp_tunnel_port add geneve 6081",
            TunnelPortCommand(0, "add", "geneve", 6081),
        ),
        (
            "port config 0 udp_tunnel_port add ecpri 0xaefe",
            TunnelPortCommand(0, "add", "ecpri", 0xAEFE),
        ),
        ("port config all rxq 16", RxqCommand(None, 16)),
        ("port config 2 rxq 4", RxqCommand(2, 4)),
        (
            f"port config 0 rss-hash-key ipv4-tcp {E810_KEY.hex()}",
            RssKeyCommand(0, "ipv4-tcp", E810_KEY),
        ),
        (
            f"port config 0 rss-hash-key ipv6 {KEY40.hex().upper()}",
            RssKeyCommand(0, "ipv6", KEY40),
        ),
        ("port config 0 rss reta (0,1),(1,2),(511,3)", RetaCommand(0, ((0, 1), (1, 2), (511, 3)))),
        ("port config 0 rss reta (0, 1), (1, 2)", RetaCommand(0, ((0, 1), (1, 2)))),
        ("port config all rss reta (7,0)", RetaCommand(None, ((7, 0),))),
        ("port config all rss all", RssTypesCommand(None, ("all",))),
        ("port config all rss none", RssTypesCommand(None, ("none",))),
        ("port config all rss default", RssTypesCommand(None, ("default",))),
        (
            "port config all rss ip tcp udp sctp",
            RssTypesCommand(None, ("ip", "tcp", "udp", "sctp")),
        ),
        ("port config all rss ipv4-udp", RssTypesCommand(None, ("ipv4-udp",))),
    ],
)
def test_port_config(text: str, expected: Any) -> None:
    assert parse_command(text) == dataclasses.replace(expected, where="<cmd>:1")


@pytest.mark.parametrize(
    "text",
    [
        "set verbose 1",
        "set fwd rxonly",
        "set fwd mac retry",
        "set promisc all on",
        "set promisc 0 off",
        "start",
        "start tx_first",
        "start tx_first 4",
        "stop",
        "quit",
        "port start all",
        "port stop 0",
        "port reset all",
        "port config all txq 4",
        "port config all rxd 1024",
        "show port info 0",
        "show port 0 rss-hash key",
        "clear port stats all",
        "testpmd> start",
    ],
)
def test_session_and_noop_commands(text: str) -> None:
    """Commands that change no rule: the session's own (start, set, show...) or
    settings the model has no use for (txq, rxd)."""
    cmd = parse_command(text, "run.txt:9")
    assert isinstance(cmd, (NoopCommand, SessionCommand))
    assert cmd.where == "run.txt:9"
    if isinstance(cmd, NoopCommand):
        assert cmd.text == text.removeprefix("testpmd> ")
    else:
        words = text.removeprefix("testpmd> ").split()
        assert cmd.verb.split("-")[0] == words[0]


def test_session_commands_carry_their_values() -> None:
    def cmd(text: str) -> object:
        return dataclasses.replace(parse_command(text), where="")  # type: ignore[type-var]

    assert cmd("set verbose 1") == SessionCommand("set-verbose", None, 1)
    assert cmd("set fwd rxonly") == SessionCommand("set-fwd", None, "rxonly")
    assert cmd("show port 1 rss-hash key") == SessionCommand("show-rss-key", 1)
    assert cmd("show port stats all") == SessionCommand("show-port-stats")
    assert cmd("clear port stats 1") == SessionCommand("clear-port-stats", 1)
    assert cmd("port stop all") == SessionCommand("port-stop")
    assert cmd("rx_vxlan_port add 4789 0") == TunnelPortCommand(0, "add", "vxlan", 4789)


def test_prompt_is_skipped() -> None:
    cmd = parse_command("testpmd> " + VXLAN_RULE)
    assert isinstance(cmd, FlowCommand) and cmd.rule is not None
    assert cmd.rule.text == VXLAN_RULE
    assert cmd.rule == rule_of(VXLAN_RULE)


# ---------------------------------------------------------------------------
# files

SCRIPT = """\
# steer VXLAN VNI 42 to queue 5
port config 0 udp_tunnel_port add vxlan 4789

port config all rxq 8   # eight queues
set fwd rxonly
flow create 0 ingress pattern eth / ipv4 / udp / \\
    vxlan vni is 42 / eth / ipv4 dst is 10.0.0.1 / end \\
    actions queue index 5 / mark id 7 / end
start
"""


def test_script(tmp_path) -> None:
    path = tmp_path / "rules.txt"
    path.write_text(SCRIPT)
    cmds = parse_file(path)
    assert [type(c).__name__ for c in cmds] == [
        "TunnelPortCommand",
        "RxqCommand",
        "SessionCommand",
        "FlowCommand",
        "SessionCommand",
    ]
    assert [c.where for c in cmds] == [f"{path}:{n}" for n in (2, 4, 5, 6, 9)]
    flow = cmds[3]
    assert isinstance(flow, FlowCommand) and flow.rule is not None
    assert dataclasses.replace(flow.rule, where="", text="") == dataclasses.replace(
        rule_of(VXLAN_RULE), where="", text=""
    )
    again = parse_commands(SCRIPT, "rules.txt")
    assert [c.where for c in again] == [f"rules.txt:{n}" for n in (2, 4, 5, 6, 9)]
    assert again[0] == TunnelPortCommand(0, "add", "vxlan", 4789, "rules.txt:2")
    assert again[1] == RxqCommand(None, 8, "rules.txt:4")


def test_error_on_a_continuation_line_points_there() -> None:
    text = (
        "flow create 0 pattern eth / \\\n  ipv4 src is 10.0.0.256 / end \\\n actions drop / end\n"
    )
    err = error_of(text, "r.txt")
    assert (err.line, err.column) == (2, 15)
    assert err.message.startswith("r.txt:2:15: expected an IPv4 address")
    assert err.message.endswith("\n      ipv4 src is 10.0.0.256 / end \\\n" + " " * 18 + "^")


def test_unreadable_file(tmp_path) -> None:
    # an invalid rules file, not a rejected rule: exit 2 as the README says, located
    missing = tmp_path / "nope.txt"
    with pytest.raises(ConfigError) as info:
        parse_file(missing)
    err = info.value
    assert err.exit_code == 2
    assert str(err) == f"{missing}: cannot read rules file: No such file or directory"
    with pytest.raises(ConfigError, match="it is a directory"):
        parse_file(tmp_path)
    binary = tmp_path / "rules.txt"
    binary.write_bytes(b"flow list 0\nflow \xff\n")
    with pytest.raises(ConfigError) as info:
        parse_file(binary)
    assert (info.value.line, info.value.column) == (2, 6)


def test_blank_and_comment_only_text() -> None:
    assert parse_commands("\n# nothing\n   \n") == []
    with pytest.raises(TestpmdError, match="expected one command, got no command"):
        parse_command("# nothing")


# ---------------------------------------------------------------------------
# errors: category, index, exact place


def test_error_message_shape() -> None:
    text = "set fwd rxonly\n\nflow create 0 pattern eth / ipv4 / udp / ipv4 src 10.0.0.1 / end"
    err = error_of(text, "rules.txt")
    assert str(err) == (
        "Caught error type 13 (specific pattern item): rules.txt:3:51: expected 'is', "
        "'spec', 'mask', 'last' or 'prefix' after 'ipv4 src', not '10.0.0.1'\n"
        "    flow create 0 pattern eth / ipv4 / udp / ipv4 src 10.0.0.1 / end\n"
        "    " + " " * 50 + "^"
    )
    assert err.index == 3 and err.kind == "ITEM" and err.type_code == 13
    assert (err.path, err.line, err.column) == ("rules.txt", 3, 51)
    assert err.expected == ("is", "spec", "mask", "last", "prefix")
    assert isinstance(err, ValueError)


def test_brief_example_column_45() -> None:
    line = "flow create 0 pattern eth / ipv4 / ipv4 src x / end actions drop / end"
    assert line.index("x") + 1 == 45
    err = error_of(f"# a\n# b\n{line}\n", "rules.txt")
    assert err.message.startswith(
        "rules.txt:3:45: expected 'is', 'spec', 'mask', 'last' or 'prefix' after 'ipv4 src'"
    )


PRE = "flow create 0 pattern eth / "


@pytest.mark.parametrize(
    "text, kind, index, bad, words",
    [
        # unknown item
        (PRE + "ipv9 / end actions drop / end", "ITEM", 1, "ipv9", "unknown pattern item 'ipv9'"),
        # unknown field, and a field testpmd knows but the catalog lacks
        (PRE + "ipv4 srcc is 1 / end actions drop / end", "ITEM", 1, "srcc", "no field 'srcc'"),
        (PRE + "vlan dei is 1 / end actions drop / end", "ITEM", 1, "dei", "'vlan' field 'dei'"),
        (
            PRE + "ipv4 version_ihl is 0x45 / end actions drop / end",
            "ITEM",
            1,
            "version_ihl",
            "catalog has no 'ipv4.version_ihl'",
        ),
        (
            PRE + "ipv4 / vxlan flag_i is 1 / end actions drop / end",
            "ITEM",
            2,
            "flag_i",
            "'vxlan' field 'flag_i'",
        ),
        # item written without '/' before the next one
        (PRE + "ipv4 udp / end actions drop / end", "ITEM", 1, "udp", "separated by '/'"),
        # missing `end` of the pattern
        (
            PRE + "ipv4 / actions drop / end",
            "ITEM_NUM",
            2,
            "actions",
            "must end with 'end' before 'actions'",
        ),
        (PRE + "ipv4 actions drop / end", "ITEM_NUM", 1, "actions", "must end with '/ end'"),
        (
            PRE + "ipv4 end actions drop / end",
            "ITEM_NUM",
            1,
            "end",
            "the pattern ends with '/ end'",
        ),
        # missing operator / value
        (PRE + "ipv4 src / end actions drop / end", "ITEM", 1, "/ end actions", "after 'ipv4 src'"),
        (
            PRE + "tcp dst is / end actions drop / end",
            "ITEM_SPEC",
            1,
            "/ end actions",
            "expected a number after 'tcp dst is', not '/'",
        ),
        # bad values
        (
            PRE + "ipv4 src is 10.0.0.300 / end actions drop / end",
            "ITEM_SPEC",
            1,
            "10.0.0.300",
            "expected an IPv4 address",
        ),
        (
            PRE + "ipv4 src is 10 / end actions drop / end",
            "ITEM_SPEC",
            1,
            "10",
            "expected an IPv4 address",
        ),
        (
            PRE + "ipv6 dst is 2001:db8:::1 / end actions drop / end",
            "ITEM_SPEC",
            1,
            "2001:db8:::1",
            "expected an IPv6 address",
        ),
        (
            "flow create 0 pattern eth dst is 00:11:22:33:44 / end actions drop / end",
            "ITEM_SPEC",
            0,
            "00:11:22:33:44",
            "expected a MAC address",
        ),
        (
            PRE + "udp dst is 1.2.3.4 / end actions drop / end",
            "ITEM_SPEC",
            1,
            "1.2.3.4",
            "expected a number",
        ),
        (PRE + "udp dst is 08 / end actions drop / end", "ITEM_SPEC", 1, "08", "not '08'"),
        # values too wide for the field
        (
            PRE + "ipv4 / udp / vxlan vni is 0x1000000 / end actions drop / end",
            "ITEM_SPEC",
            3,
            "0x1000000",
            "does not fit 'vxlan vni' (24 bits, at most 0xffffff)",
        ),
        (PRE + "vlan pcp is 8 / end actions drop / end", "ITEM_SPEC", 1, "8", "(3 bits"),
        (
            PRE + "mpls label is 1048576 / end actions drop / end",
            "ITEM_SPEC",
            1,
            "1048576",
            "'mpls label' (20 bits",
        ),
        (
            PRE + "udp dst mask 0x10000 / end actions drop / end",
            "ITEM_MASK",
            1,
            "0x10000",
            "does not fit",
        ),
        (
            PRE + "udp dst is 1 dst last 65536 / end actions drop / end",
            "ITEM_LAST",
            1,
            "65536",
            "does not fit",
        ),
        (
            PRE + "ipv4 src prefix 33 / end actions drop / end",
            "ITEM_MASK",
            1,
            "33",
            "prefix 33 is longer than 'ipv4 src' (32 bits)",
        ),
        (
            PRE + "tcp dst is 90 dst last 80 / end actions drop / end",
            "ITEM_LAST",
            1,
            "80",
            "below its spec 90",
        ),
        # raw
        (
            "flow create 0 pattern raw pattern_hex spec 0800 pattern_hex mask ff / end actions "
            "drop / end",
            "ITEM_MASK",
            0,
            "ff",
            "raw mask has 1 bytes but the pattern has 2",
        ),
        (
            "flow create 0 pattern raw pattern_hex is 080 / end actions drop / end",
            "ITEM_SPEC",
            0,
            "080",
            "even number of hex digits",
        ),
        (
            "flow create 0 pattern raw search is 1 / end actions drop / end",
            "ITEM",
            0,
            "search",
            "not supported",
        ),
        (
            "flow create 0 pattern raw pattern last AB / end actions drop / end",
            "ITEM",
            0,
            "last",
            "expected 'is', 'spec' or 'mask' after 'raw pattern'",
        ),
        # attributes
        (
            "flow create 0 group x pattern eth / end actions drop / end",
            "ATTR_GROUP",
            None,
            "x",
            "expected a group number after 'group'",
        ),
        (
            "flow create 0 priority 4294967296 pattern eth / end actions drop / end",
            "ATTR_PRIORITY",
            None,
            "4294967296",
            "out of range",
        ),
        (
            "flow create 0 ingres pattern eth / end actions drop / end",
            "ATTR",
            None,
            "ingres",
            "expected 'group', 'priority', 'ingress', 'egress', 'transfer' or 'pattern'",
        ),
        # actions
        (PRE + "end actions jump group 1 / end", "ACTION", 0, "jump", "unknown action 'jump'"),
        (
            PRE + "end actions count / meter mtr_id 1 / end",
            "ACTION",
            1,
            "meter",
            "unknown action 'meter'",
        ),
        (
            PRE + "end actions queue 3 / end",
            "ACTION",
            0,
            "3",
            "action 'queue' has no parameter '3'; expected 'index' or '/'",
        ),
        (PRE + "end actions queue index 65536 / end", "ACTION_CONF", 0, "65536", "out of range"),
        (PRE + "end actions rss queues 1 x end / end", "ACTION_CONF", 0, "x", "queue number"),
        (PRE + "end actions rss types ipv5 end / end", "ACTION_CONF", 0, "ipv5", "RSS type"),
        (PRE + "end drop / end", "ACTION_NUM", 0, "drop", "expected 'actions'"),
        # other commands
        ("flow frob 0", "UNSPECIFIED", None, "frob", "expected 'validate', 'create'"),
        ("flow create x pattern", "UNSPECIFIED", None, "x", "expected a port number"),
        ("flow destroy 0 7", "HANDLE", None, "7", "expected 'rule'"),
        ("launch", "UNSPECIFIED", None, "launch", "unknown command 'launch'"),
        (
            "port config 0 udp_tunnel_port add nvgre 4789",
            "UNSPECIFIED",
            None,
            "nvgre",
            "expected 'vxlan', 'geneve', 'vxlan-gpe' or 'ecpri'",
        ),
        (
            "port config 0 udp_tunnel_port add vxlan 65536",
            "UNSPECIFIED",
            None,
            "65536",
            "out of range",
        ),
        (
            "port config 0 rss-hash-key ipv4 abcd",
            "UNSPECIFIED",
            None,
            "abcd",
            "the key has 2 bytes",
        ),
        ("port config 0 rss-hash-key ipv4 xyz", "UNSPECIFIED", None, "xyz", "not a key"),
        ("port config 0 rss-hash-key ipv7 abcd", "UNSPECIFIED", None, "ipv7", "'ipv4'"),
        (
            "port config 0 rss reta (0,1),(1;2)",
            "UNSPECIFIED",
            None,
            "1;2)",
            "expected a RETA index",
        ),
        ("port config all rss bogus", "UNSPECIFIED", None, "bogus", "unknown RSS type 'bogus'"),
        ("set fwd fast", "UNSPECIFIED", None, "fast", "after 'set fwd'"),
        ("stop now", "UNSPECIFIED", None, "now", "unexpected 'now'"),
    ],
)
def test_errors(text: str, kind: str, index: int | None, bad: str, words: str) -> None:
    err = error_of(text, "e.txt")
    assert err.kind == kind, str(err)
    assert err.index == index, str(err)
    assert words in err.message, str(err)
    column = text.index(f" {bad}") + 2 if f" {bad}" in text else text.index(bad) + 1
    assert err.message.startswith(f"e.txt:1:{column}: "), str(err)
    assert (err.line, err.column) == (1, column)
    assert err.message.endswith("\n    " + text + "\n    " + " " * (column - 1) + "^")
    assert str(err).startswith(f"Caught error type {err.type_code} (")


def test_error_at_the_end_of_the_command() -> None:
    text = "flow create 0 pattern eth / end actions drop"
    err = error_of(text, "e.txt")
    assert err.kind == "ACTION_NUM" and err.index == 0
    assert err.column == len(text) + 1  # just after the last token
    text = "flow create 0 pattern eth / ipv4"
    err = error_of(text, "e.txt")
    assert err.kind == "ITEM_NUM" and err.index == 1 and err.column == len(text) + 1
    err = error_of("flow create 0 pattern eth / ipv4 src is", "e.txt")
    assert err.kind == "ITEM_SPEC" and "expected an IPv4 address" in err.message


def test_rule_error_is_reused() -> None:
    err = error_of("flow create 0 pattern eth / foo / end actions drop / end")
    assert isinstance(err, RuleError)
    assert err.category == "specific pattern item"


# ---------------------------------------------------------------------------
# printing rules back

ROUND_TRIP = [
    VXLAN_RULE,
    "flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.255.255.0 / end "
    "actions drop / end",
    "flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.0.255.0 / end "
    "actions drop / end",
    "flow create 0 pattern eth / ipv4 src is 10.0.0.0 src prefix 24 / end actions drop / end",
    "flow create 0 pattern eth / ipv4 / tcp dst is 80 dst last 90 src spec 3 src mask 0x3 / end "
    "actions rss types ipv4-tcp end queues 0 1 2 end / end",
    "flow create 0 pattern eth / ipv4 / gre / gre_key value is 0x1234 / eth / end "
    "actions count identifier 9 / end",
    "flow create 0 pattern eth / mpls label is 100 / ipv4 / end actions queue index 1 / end",
    "flow create 2 group 3 priority 1 egress pattern eth dst spec 00:11:22:33:44:55 "
    "dst mask ff:ff:ff:00:00:00 type is 0x8100 / vlan vid is 5 / ipv6 src is 2001:db8::1 "
    "dst spec fe80:: dst prefix 10 / udp / end actions passthru / end",
    "flow create 0 pattern raw relative is 1 offset is -4 pattern is ABCD / end "
    "actions mark id 3 / end",
    "flow create 0 pattern raw pattern_hex spec 0800 pattern_hex mask ff00 / end "
    "actions drop / end",
    "flow create 0 ingress pattern eth dst is 00:11:22:33:44:55 / vlan tci is 1 / "
    "pppoes seid is 3 / pppoe_proto_id is 0x0021 / end actions queue index 1 / end",
    "flow create 0 pattern eth / ipv4 / udp / gtpu teid is 0x12345678 / gtp_psc qfi is 9 / "
    "ipv6 / end actions rss func symmetric_toeplitz level 2 key 00112233 queues end / end",
    "flow validate 0 pattern end actions end",
]


def normal(rule: FlowRule) -> tuple:
    return (dataclasses.replace(rule, text="", where=""), rule.extra)


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_format_round_trip(text: str) -> None:
    rule = rule_of(text)
    printed = format_rule(rule)
    assert printed.startswith(f"flow create {rule.port} ")
    again = rule_of(printed)
    assert normal(again) == normal(rule)
    assert format_rule(again) == printed


def test_format_is_readable() -> None:
    assert format_rule(rule_of(VXLAN_RULE)) == VXLAN_RULE
    assert format_rule(
        rule_of(
            "flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.255.255.0 "
            "/ end actions drop / end"
        ),
        verb="validate",
    ) == (
        "flow validate 0 ingress pattern eth / ipv4 src spec 10.0.0.0 src prefix 24 / end "
        "actions drop / end"
    )


# Catalog fields reachable from testpmd, with the item that carries them.
_REACHABLE = sorted(
    {
        (item, field)
        for item, field in [
            ("eth", "eth.dst"),
            ("eth", "eth.type"),
            ("vlan", "vlan.vid"),
            ("vlan", "vlan.tci"),
            ("ipv4", "ipv4.src"),
            ("ipv4", "ipv4.ttl"),
            ("ipv6", "ipv6.dst"),
            ("ipv6", "ipv6.flow"),
            ("tcp", "tcp.flags"),
            ("udp", "udp.dst"),
            ("sctp", "sctp.tag"),
            ("vxlan", "vxlan.vni"),
            ("mpls", "mpls.label"),
            ("mpls", "mpls.tc"),
            ("gtp_psc", "gtp_psc.qfi"),
            ("pppoes", "pppoes.session_id"),
            ("pppoe_proto_id", "pppoes.proto_id"),
            ("gre_key", "gre_key.value"),
        ]
    }
)


@st.composite
def field_specs(draw: st.DrawFn) -> tuple[str, FieldSpec]:
    item, name = draw(st.sampled_from(_REACHABLE))
    width = _CATALOG[name][2]
    value = draw(st.integers(0, (1 << width) - 1))
    mask = draw(st.integers(0, (1 << width) - 1) | st.just((1 << width) - 1))
    last = draw(st.none() | st.integers(value + 1, (1 << width) - 1 + 1))
    if last is not None and last >= 1 << width:
        last = None
    return item, FieldSpec(name, value, mask, last)


@settings(max_examples=200, deadline=None)
@given(st.lists(field_specs(), min_size=1, max_size=4), st.integers(0, 65535))
def test_format_round_trip_property(parts: list[tuple[str, FieldSpec]], queue: int) -> None:
    pattern = tuple(Item(item, i, (spec,)) for i, (item, spec) in enumerate(parts))
    pattern += (Item("end", len(parts)),)
    rule = FlowRule(0, pattern, (Action("queue", 0, queue=queue),))
    again = rule_of(format_rule(rule))
    assert [i.specs for i in again.pattern] == [i.specs for i in rule.pattern]
    assert again.actions == rule.actions


# ---------------------------------------------------------------------------
# the parsed rules are what the pattern compiler takes


def test_parsed_rules_compile() -> None:
    from e810pipe.engine import MatchCompiler
    from e810pipe.graph import compile_graph
    from e810pipe.package import load_package
    from e810pipe.parser import Parser

    compiler = MatchCompiler(Parser(compile_graph(load_package(["comms"]))))
    for text in (
        VXLAN_RULE,
        "flow create 0 pattern eth / ipv4 / gre / gre_key value is 0x1234 / eth / ipv4 / end "
        "actions drop / end",
        "flow create 0 pattern eth / ipv4 src is 10.0.0.0 src prefix 24 / tcp dst is 80 "
        "dst last 90 / end actions drop / end",
    ):
        match = compiler.compile(rule_of(text))
        assert match.words or match.ranges


def test_queue_and_mark_without_parameters_are_zero() -> None:
    """testpmd zeroes an action's conf (parse_vc): `mark` is mark 0, `queue` queue 0."""
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 src is 1.2.3.4 / end actions queue / mark / end"
    )
    assert [(a.type, a.queue, a.mark) for a in rule.actions] == [
        ("queue", 0, None),
        ("mark", None, 0),
    ]
    assert rule_of("flow create 0 pattern any / end actions drop / end").pattern[0].type == "any"


def test_port_actions_dts_uses() -> None:
    """DCF rules forward to ports (cmdline_flow.c: represented_port, port_representor, vf)."""
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 / end actions represented_port ethdev_port_id 3 / end"
    )
    assert [(a.type, a.queue) for a in rule.actions] == [("represented_port", 3)]
    rule = rule_of("flow create 0 pattern eth / end actions port_representor port_id 0 / end")
    assert rule.actions[0].type == "port_representor"
    assert rule_of("flow create 0 pattern eth / end actions vf id 2 / end").actions[0].queue == 2


# ---------------------------------------------------------------------------
# testpmd's action defaults (parse_vc_action_rss in app/test-pmd/cmdline_flow.c)


def test_rss_without_queues_takes_every_rx_queue() -> None:
    rule = rule_of(
        "flow create 0 pattern eth / ipv4 src is 1.1.1.1 / end actions mark id 3 / rss / end"
    )
    filled = rss_default_queues(rule, 16, 0x3)
    rss = filled.action("rss")
    assert rss is not None and rss.queues == tuple(range(16))
    # types absent: testpmd's global rss_hf goes with the action
    assert filled.extra["rss"][rss.index] == {"hf": 0x3}
    # ACTION_RSS_QUEUE_NUM caps the default list
    rss = rss_default_queues(rule, 256).action("rss")
    assert rss is not None and rss.queues == tuple(range(128))


def test_rss_queues_end_stays_empty() -> None:
    rule = rule_of("flow create 0 pattern eth / ipv4 / end actions rss queues end / end")
    rss = rss_default_queues(rule, 16).action("rss")
    assert rss is not None and rss.queues == ()
    rule = rule_of("flow create 0 pattern eth / end actions rss queues 2 3 end / end")
    rss = rss_default_queues(rule, 16).action("rss")
    assert rss is not None and rss.queues == (2, 3)


def test_rss_default_queues_round_trip_without_a_queue_list() -> None:
    text = "flow create 0 pattern eth / ipv4 / end actions rss / mark id 1 / end"
    assert "queues" not in format_rule(rule_of(text))


def test_mark_id_is_32_bits() -> None:
    ok = rule_of("flow create 0 pattern eth / ipv4 / end actions mark id 4294967295 / end")
    mark = ok.action("mark")
    assert mark is not None and mark.mark == FULL32
    assert rule_of("flow create 0 pattern eth / end actions mark / end").action("mark") == Action(
        "mark", 0, mark=0
    )
    with pytest.raises(TestpmdError):
        parse_command("flow create 0 pattern eth / end actions mark id 4294967296 / end")

"""The fast paths of rule loading read exactly what the slow ones read."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from e810pipe.errors import RuleError
from e810pipe.testpmd import _ipv4, _ipv6

ODD = [
    "01.2.3.4", "1.2.3", "256.1.1.1", "1.2.3.4.5", " 1.2.3.4", "1.2.3.04", "0.0.0.0",
    "1..2.3", "1.2.3.4\n", "\uff11.2.3.4", "::", "::1", "fe80::1%eth0", "::ffff:1.2.3.4",
    "::ffff:01.2.3.4", "1:2:3:4:5:6:7:8:9", "12345::", ":::", "1:2::3::4", "", "g::",
    "1:2:3:4:5:6:1.2.3.4", "0001:2:3:4:5:6:7:8", "00001::", "::\uff11",
]  # fmt: skip


def reference(cls: type, text: str) -> int | None:
    if "%" in text:  # a scoped IPv6 address: testpmd's inet_pton rejects it
        return None
    try:
        return int(cls(text))
    except ValueError:
        return None


def test_odd_addresses_read_as_ipaddress_reads_them() -> None:
    for text in ODD:
        assert _ipv4(text) == reference(ipaddress.IPv4Address, text), text
        assert _ipv6(text) == reference(ipaddress.IPv6Address, text), text


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**128 - 1), st.booleans())
def test_addresses_read_as_ipaddress_reads_them(v4: int, v6: int, exploded: bool) -> None:
    assert _ipv4(str(ipaddress.IPv4Address(v4))) == v4
    a6 = ipaddress.IPv6Address(v6)
    assert _ipv6(a6.exploded if exploded else str(a6)) == v6


@given(st.text(alphabet="0123456789abcdef.:%", max_size=45))
def test_any_text_reads_as_ipaddress_reads_it(text: str) -> None:
    assert _ipv4(text) == reference(ipaddress.IPv4Address, text)
    assert _ipv6(text) == reference(ipaddress.IPv6Address, text)


RULES = [
    "eth / ipv4 src is {a} dst is 10.0.{b}.1 / udp src is {b} dst is 53 / end",
    "eth / ipv6 src is 2001:db8::{b} / tcp dst is {b} / end",
    "eth / ipv4 src spec 10.{b}.0.0 src mask 255.255.0.0 / tcp / end",
    "eth / ipv4 / tcp dst spec {b} dst last 2000 / end",
    "eth / ipv4 / udp / vxlan vni is {b} / eth / ipv4 dst is {a} / udp dst is {b} / end",
    "eth / ipv4 / gre / nvgre tni is {b} / eth dst is 00:11:22:33:44:{c:02x} / end",
    "eth / vlan vid is {b} / ipv4 proto is 17 / end",
    "eth / ipv4 src is {a} src mask 0.0.0.0 / udp / end",
]


def test_rules_of_one_shape_compile_as_from_scratch() -> None:
    from e810pipe.engine import MatchCompiler
    from e810pipe.parser import Parser
    from e810pipe.testpmd import parse_command

    parser = Parser.load(["os-default"], vxlan_ports=[4789])
    shared = MatchCompiler(parser)
    compiled = 0
    for n in range(1, 40):
        for text in RULES:
            pattern = text.format(a=f"192.0.2.{n}", b=n * 5, c=n)
            cmd = f"flow create 0 pattern {pattern} actions drop / end"
            rule = parse_command(cmd).rule  # type: ignore[attr-defined]
            for exact in (False, True):
                fresh = outcome(MatchCompiler(parser), rule, exact)
                assert outcome(shared, rule, exact) == fresh, cmd
                compiled += fresh[0] == "ok"
    assert compiled > 400 and len(shared._shapes) <= 2 * len(RULES)


def outcome(compiler: object, rule: object, exact: bool) -> tuple[str, object]:
    try:
        return "ok", compiler.compile(rule, exact)  # type: ignore[attr-defined]
    except RuleError as err:
        return "error", str(err)


# --------------------------------------------------------------------------------------
# parse_commands builds a `flow create` of a shape it has read from its values alone
# (testpmd._Shape); every command and every error must be what _Parser gives.

VALUES = [
    "0", "1", "7", "255", "65535", "65536", "4294967295", "4294967296", "0x10", "0X1f",
    "010", "08", "0x", "-1", "1.2.3.4", "256.1.1.1", "01.2.3.4", "::1", "2001:db8::1",
    "fe80::1%eth0", "00:11:22:33:44:55", "0011.2233.4455", "abc", "is", "/", "end",
]  # fmt: skip


def _dts_commands() -> list[str]:
    import gzip
    import json
    from pathlib import Path

    out: list[str] = []
    for path in sorted((Path(__file__).parent / "data" / "dts").glob("*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            for line in f:
                case = json.loads(line)
                out += [c for c in case.get("setup", []) if isinstance(c, str)]
                out += [s["cmd"] for s in case.get("steps", []) if isinstance(s.get("cmd"), str)]
    return list(dict.fromkeys(c for c in out if c.startswith("flow ")))


def _reference(text: str, where: str) -> list:
    from e810pipe.testpmd import _logical_lines, _Parser

    return [_Parser(toks, where).command() for toks in _logical_lines(text)]


def _outcome(fn: object, text: str) -> object:
    try:
        cmds = fn(text, "rules.txt")  # type: ignore[operator]
    except RuleError as err:
        return ("error", str(err), type(err).__name__)
    return [(c, getattr(getattr(c, "rule", None), "extra", None)) for c in cmds]


def test_rules_of_one_shape_read_as_the_parser_reads_them() -> None:
    import random

    from e810pipe.testpmd import _VALUE_AFTER, parse_commands

    rng = random.Random(7)
    cmds = _dts_commands()
    assert len(cmds) > 1000
    checked = 0
    for cmd in cmds:
        words = cmd.split()
        slots = [i for i in range(1, len(words)) if words[i - 1] in _VALUE_AFTER or i == 2]
        variants = [cmd]
        for _ in range(2):
            w = list(words)
            for i in slots:
                if rng.random() < 0.5:
                    w[i] = rng.choice(VALUES)
            variants.append(" ".join(w))
        for v in variants:
            # the first line gives the shape, the second is built from it
            text = f"{cmd}\n{v}\n"
            assert _outcome(parse_commands, text) == _outcome(_reference, text), v
            checked += 1
    assert checked > 3000


def test_comments_continuations_and_tabs_keep_their_locations() -> None:
    from e810pipe.testpmd import parse_commands

    rule = "flow create 0 ingress pattern eth / ipv4 src is 1.2.3.4 / end actions drop / end"
    texts = [
        f"{rule}\n# a comment\n{rule} # trailing\n\t{rule}\n",
        f"{rule}\nflow create 0 ingress pattern eth / \\\n ipv4 src is 1.2.3.{{}} / end \\\n"
        " actions drop / end\n",
        f"{rule}\n{rule.replace('1.2.3.4', '1.2.3.400')}\n",
        f"{rule}\n\n{rule.replace('drop', 'dorp')}\n",
        f"{rule}\nflow create 0 ingress pattern eth / \\\n",
        f"{rule} \\\n# only a comment\n",
        f"\u00e9{rule}\n",
        f"{rule}\n\t{rule.replace('1.2.3.4', '1.2.3')}\n",
    ]
    for text in texts:
        assert _outcome(parse_commands, text) == _outcome(_reference, text), text


@given(st.text(alphabet="0123456789xXabcdefABCDEF+-_ \u0660\u00b2", max_size=12))
def test_numbers_read_as_strtoumax_reads_them(text: str) -> None:
    from e810pipe.testpmd import _uint

    t = text.lower()
    if t.startswith("0x"):
        want = int(t[2:], 16) if t[2:] and all(c in "0123456789abcdef" for c in t[2:]) else None
    elif not t or not all(c in "0123456789" for c in t):
        want = None
    elif len(t) > 1 and t[0] == "0":
        want = int(t, 8) if all(c in "01234567" for c in t) else None
    else:
        want = int(t)
    assert _uint(text) == want


def _yaml_rules(n: int, bad: int | None = None, bad_rule: str = "") -> str:
    out = ["rules:\n"]
    for i in range(n):
        if i == bad:
            out.append(bad_rule)
            continue
        out.append(
            f"  - pattern: [eth, {{ipv4: {{src: '10.0.{i >> 8 & 255}.{i & 255}', "
            f"dst: 192.168.0.1}}}}, {{udp: {{dst: {i % 65536}}}}}]\n"
            f"    actions: [{{queue: {i % 16}}}, {{mark: {i}}}]\n"
            "    priority: 1\n"
        )
    return "device:\n  pfs:\n    - rxq: 16\n" + "".join(out)


def _read_outcome(path: str) -> object:
    from e810pipe.control import read_setup
    from e810pipe.errors import E810PipeError

    try:
        setup = read_setup([path])
    except E810PipeError as err:
        return type(err).__name__, str(err)
    return [(repr(c), e) for c, e in setup.commands], setup.device, setup.rss.keys()


def _located_outcome(path: str) -> object:
    """What the reader with a position for every value reads from `path`."""
    from e810pipe.control import Setup, _read_yaml_located
    from e810pipe.errors import E810PipeError
    from e810pipe.yamlfile import load

    setup = Setup()
    try:
        _read_yaml_located(setup, load(path), path)
    except E810PipeError as err:
        return type(err).__name__, str(err)
    return [(repr(c), e) for c, e in setup.commands], setup.device, setup.rss.keys()


def test_an_error_deep_in_a_16k_rule_file_names_its_line_and_column(tmp_path) -> None:
    # rule 12,345 starts at line 5 + 3 * 12,345; its queue value at column 23 below
    path = tmp_path / "rules.yaml"
    line = 5 + 3 * 12_345
    bad = "  - pattern: [eth, ipv4]\n    actions: [{queue: abc}]\n    priority: 1\n"
    path.write_text(_yaml_rules(16_384, 12_345, bad))
    outcome = _read_outcome(str(path))
    assert outcome == (
        "ConfigError",
        f"{path}:{line + 1}:23: expected a queue index, got 'abc'",
    )
    # an error of the rule text itself: located at the rule's line, as before
    bad = "  - pattern: [eth, {ipv4: {src: 1.2.3.400}}]\n    actions: [drop]\n    priority: 1\n"
    path.write_text(_yaml_rules(16_384, 12_345, bad))
    kind, message = _read_outcome(str(path))  # type: ignore[misc]
    assert kind == "TestpmdError"
    assert f"{path}:{line}:52: expected an IPv4 address such as 10.0.0.1 after" in message
    # a YAML syntax error
    path.write_text(_yaml_rules(16_384, 12_345, "  - pattern: [eth\n    actions: [drop]\n    x\n"))
    assert _read_outcome(str(path)) == (
        "ConfigError",
        f"{path}:{line + 1}:12: YAML syntax error: did not find expected ',' or ']'",
    )


SHAPES = [
    "  - 'flow create 0 ingress pattern eth / ipv4 / end actions drop / end'\n",
    "  - testpmd: flow create 0 ingress pattern eth / ipv4 / end actions drop / end\n",
    "  - {pattern: [eth, ipv4, udp], actions: [drop], validate: false}\n",
    "  - {pattern: [eth, {ipv4: {dst: {spec: 1.2.3.4, mask: 255.255.0.0}}}], actions: [count]}\n",
    "  - {pattern: [eth, {ipv4: null}, {udp: {}}], actions: [{rss: [1, 2]}], group: 0}\n",
    "  - {pattern: [eth, {ipv4: {dst: [1, 2]}}], actions: [drop]}\n",
    "  - {pattern: [eth, {vlan: {tci: {value: 5, last: 9}}}], actions: [passthru], port: 0}\n",
    "  - {pattern: [eth, ipv4], actions: [drop], port: true}\n",
    "  - {pattern: [eth, ipv4], actions: [{rss: 3}]}\n",
    "  - {pattern: [eth, ipv4], actions: [drop], bogus: 1}\n",
    "  - {pattern: [eth, ipv4], actions: [drop], priority: 0x10}\n",
    "  - {pattern: eth, actions: [drop]}\n",
    "  - {pattern: [eth, {ipv4: 5}], actions: [drop]}\n",
    "  - {pattern: [eth, ipv4], actions: [{drop: 1}]}\n",
    "  - {pattern: [eth, ipv4], to_vsi: 1}\n",
    "  - {pattern: [eth, ipv4], actions: [drop], priority: &p 1}\n",
    "  - {pattern: [eth, ipv4], actions: [drop], priority: !!int 1}\n",
    "  - {pattern: [eth, ipv4], actions: [drop], priority: 1, priority: 2}\n",
    "  - {pattern: [eth, ipv4], actions: [{queue: 99999999999999999999999999999999999999999}]}\n",
    "  - {pattern: [eth, ipv4], actions: [{mark: 2001-01-01}]}\n",
    "  - 12\n",
    "  - [a]\n",
    "  - {pattern: [eth, {ipv4: {src: 2001-01-01}}], actions: [drop]}\n",
]


def test_rules_read_without_positions_read_as_with_them(tmp_path) -> None:
    # every rule shape, alone and after well-formed rules: the same commands or the
    # same located error as the reader that keeps a position for every value
    path = tmp_path / "rules.yaml"
    for shape in SHAPES:
        for text in (f"rules:\n{shape}", _yaml_rules(5, 3, shape), _yaml_rules(5, 3, shape)[7:]):
            path.write_text(text)
            assert _read_outcome(str(path)) == _located_outcome(str(path)), text

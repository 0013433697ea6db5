"""A DDP engineer's own protocol end to end: parsed, named in rules (testpmd and YAML),
its PTYPEs derived from the parse graph, its holes reported.

The protocol, "orbit" (tests/data/vendor/orbit.ddp), sits behind GRE protocol type
0x88c1 and behind UDP port 6565 (a fixed binding that enters a tunnel), has an
optional sequence word by flag bit, and carries IPv4 or IPv6 by a `next` field.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import GRE, IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from e810pipe import Pipeline
from e810pipe.cli import main
from e810pipe.errors import RuleError

ORBIT = str(Path(__file__).parent / "data" / "vendor" / "orbit.ddp")

pytest_plugins = ["pytester"]


def orbit(ring: int, nxt: int = 4, seq: int | None = None) -> bytes:
    first = 0x10 | (0x08 if seq is not None else 0)  # version 1, S flag
    out = struct.pack("!BBH", first, nxt, ring)
    return out + (struct.pack("!I", seq) if seq is not None else b"")


def via_gre(ring: int, dport: int = 53, seq: int | None = None) -> bytes:
    inner = bytes(IP(dst="10.9.0.1") / UDP(dport=dport))
    return (
        bytes(
            Ether() / IP(dst="192.0.2.1", proto=47) / GRE(proto=0x88C1) / Raw(orbit(ring, seq=seq))
        )
        + inner
    )


def via_udp(ring: int, dport: int = 53) -> bytes:
    inner = bytes(IP(dst="10.9.0.2") / UDP(dport=dport))
    return bytes(Ether() / IP(dst="192.0.2.2") / UDP(sport=999, dport=6565)) + orbit(ring) + inner


RULES = [
    "port config all rxq 16",
    # through GRE, by a field of the profile's protocol
    "flow create 0 pattern eth / ipv4 / gre / orbit ring is 5 / ipv4 / udp / end "
    "actions queue index 5 / mark id 9 / end",
    # through UDP 6565, by the profile's match name, and the inner UDP port
    "flow create 0 pattern eth / ipv4 / udp / orbit orbit_ring is 7 / ipv4 / udp dst is 53 / "
    "end actions queue index 6 / end",
    "flow create 0 pattern eth / ipv4 / udp / orbit ring is 8 / ipv4 / udp dst is 53 / end "
    "actions drop / mark id 4 / end",
]


@pytest.fixture()
def pipe() -> Pipeline:
    return Pipeline.load(["os-default", ORBIT], cmds=RULES)


def test_packets_parse_through_both_bindings(pipe: Pipeline) -> None:
    res = pipe.parser.parse(via_gre(5))
    assert res.ptype_name == "MAC_IPV4_TUN_ORBIT_IPV4_UDP_PAY"
    res = pipe.parser.parse(via_gre(5, seq=77))  # the optional sequence word
    assert res.ptype == 612 and [h.name for h in res.headers][3:5] == ["orbit", "ipv4"]
    assert res.headers[4].offset == 14 + 20 + 4 + 8
    res = pipe.parser.parse(via_udp(7))
    assert res.ptype_name == "MAC_IPV4_ORBIT_IPV4_UDP_PAY" and "tunnel_orbit" in res.flags


def test_rules_named_in_testpmd_syntax_steer(pipe: Pipeline) -> None:
    ptypes = {
        e.rule.text.split(" pattern ")[1][:40]: sorted(e.match.ptypes) for e in pipe.rules.values()
    }
    assert sorted(ptypes.values()) == [[612], [613], [613]]
    a = pipe.process(via_gre(5))
    assert (a.queue, a.mark) == (5, 9)
    assert pipe.process(via_gre(5, seq=1)).queue == 5  # the ring sits before the sequence word
    assert pipe.process(via_gre(6)).reason.startswith("rss")
    b = pipe.process(via_udp(7))
    assert (b.queue, b.mark) == (6, None)
    # the inner UDP port is read from the inner header: the walk put it in the tunnel
    assert pipe.process(via_udp(7, dport=54)).reason.startswith("rss")
    c = pipe.process(via_udp(8))
    assert c.drop and c.mark is None  # a dropped packet carries no mark


def test_yaml_rules_are_the_same_rules(tmp_path: Path, pipe: Pipeline) -> None:
    yml = tmp_path / "orbit.yaml"
    yml.write_text(
        "device: {pfs: [{rxq: 16}]}\n"
        "rules:\n"
        "  - pattern: [eth, ipv4, gre, {orbit: {ring: 5}}, ipv4, udp]\n"
        "    actions: [{queue: 5}, {mark: 9}]\n"
        "  - pattern: [eth, ipv4, udp, {orbit: {orbit_ring: 7}}, ipv4, {udp: {dst: 53}}]\n"
        "    actions: [{queue: 6}]\n"
        "  - 'flow create 0 pattern eth / ipv4 / udp / orbit ring is 8 / ipv4 / "
        "udp dst is 53 / end actions drop / mark id 4 / end'\n"
    )
    other = Pipeline.load(["os-default", ORBIT], [str(yml)])
    for pkt in (via_gre(5), via_gre(6), via_udp(7), via_udp(7, 54), via_udp(8)):
        a, b = pipe.process(pkt), other.process(pkt)
        assert (a.queue, a.drop, a.mark, a.ptype) == (b.queue, b.drop, b.mark, b.ptype)
    assert [sorted(e.match.ptypes) for e in other.rules.values()] == [[612], [613], [613]]
    # a YAML rule reads back as it is written (file:line, flow style), not as a dict
    first = next(iter(other.rules.values())).rule
    assert first.text == (
        f"{yml}:3: {{pattern: [eth, ipv4, gre, {{orbit: {{ring: 5}}}}, ipv4, udp], "
        "actions: [{queue: 5}, {mark: 9}]}"
    )


def test_sequences_no_packet_takes_are_rejected_with_the_reason(pipe: Pipeline) -> None:
    with pytest.raises(RuleError, match=r"no packet has 'orbit' after eth / ipv4 \(the parse"):
        pipe.apply("flow create 0 pattern eth / ipv4 / orbit ring is 1 / end actions drop / end")
    # packets take it, but the profile declares no PTYPE for where they end
    with pytest.raises(RuleError, match=r"mac ipv6 orbit ipv6 udp.*no PTYPE declares"):
        pipe.apply(
            "flow create 0 pattern eth / ipv6 / udp / orbit ring is 1 / ipv6 / udp / end "
            "actions drop / end"
        )
    # a typo is still an error where it is written
    with pytest.raises(RuleError, match="unknown pattern item 'orbt'"):
        pipe.apply("flow create 0 pattern eth / ipv4 / gre / orbt / end actions drop / end")


def test_profile_check_lists_the_holes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["profile", "check", "--strict", ORBIT])
    out = capsys.readouterr().out
    assert code == 1
    assert "[ptype-hole]" in out and "packets through orbit can end with" in out
    assert "mac ipv6 orbit;" in out  # IPv6 carrying orbit on UDP 6565: no PTYPE
    code = main(["profile", "check", "--json", ORBIT])
    rep = json.loads(capsys.readouterr().out)
    assert [w["kind"] for w in rep["warnings"]] == ["ptype-hole"]


def test_the_fuzzer_lists_the_paths_that_gave_no_ptype(pipe: Pipeline) -> None:
    from e810pipe.fuzz import Fuzzer

    report = Fuzzer(pipe.parser, seed=1).run(count=600)
    holes = report.summary()["no_ptype_paths"]
    assert holes, "the orbit profile leaves IPv6 carriers without a PTYPE"
    # every listed path really parses to 0xFFFF, and no PTYPE declares its markers
    declared = {" ".join(p.markers) for p in pipe.parser.package.ptypes.values()}
    for h in holes:
        assert h["markers"] not in declared and "orbit" in h["path"]
    assert sum(h["packets"] for h in holes) == report.coverage.ptypes[0xFFFF]
    text = report.text("orbit")
    assert "paths that gave no PTYPE" in text and holes[0]["path"] in text


PACKETS = [
    via_gre(5),
    via_gre(5, seq=77),
    via_gre(6),
    via_gre(5, dport=99),
    via_udp(7),
    via_udp(7, dport=54),
    via_udp(8),
    via_udp(9),
    bytes(Ether() / IP() / UDP(dport=6566)),
]


@pytest.mark.parametrize("rule", RULES[1:], ids=["gre-ring", "udp-match-name", "udp-drop"])
def test_the_raw_form_steers_as_the_named_rule(rule: str) -> None:
    from e810pipe.rawform import profile_items, raw_forms, rule_text

    named = Pipeline.load(["os-default", ORBIT], cmds=[RULES[0], rule])
    [entry] = named.rules.values()
    assert profile_items(named, entry.rule) == ["orbit"]
    forms, note = raw_forms(named, entry.rule, entry.match)
    assert note == "" and [f.ptype for f in forms] == sorted(entry.match.ptypes)
    texts = [rule_text(entry.rule, f) for f in forms]
    for t in texts:  # ice's form: ASCII hex of one length, the sample from offset 0
        spec, mask = t.split(" pattern spec ")[1].split(" / end")[0].split(" pattern mask ")
        assert len(spec) == len(mask) and bytes.fromhex(spec) and bytes.fromhex(mask)
    raw = Pipeline.load(["os-default", ORBIT], cmds=[RULES[0], *texts])
    assert all(e.match.raw for e in raw.rules.values())
    for pkt in PACKETS:
        a, b = named.process(pkt), raw.process(pkt)
        assert (a.queue, a.drop, a.mark) == (b.queue, b.drop, b.mark), pkt.hex()


def test_flow_validate_and_trace_print_the_raw_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from e810pipe.pcapio import write_pcap

    rules = tmp_path / "orbit.txt"
    rules.write_text("\n".join(RULES) + "\n")
    assert main(["flow", "validate", "--profile", ORBIT, "--rules", str(rules)]) == 0
    out = capsys.readouterr().out
    raw_lines = [ln for ln in out.splitlines() if " pattern raw pattern spec " in ln]
    assert [ln.split(":")[1] for ln in raw_lines] == ["2", "3", "4"]
    assert raw_lines[0].startswith(f"{rules}:2: PTYPE 612: flow create 0 ingress pattern raw")
    assert raw_lines[0].endswith("/ end actions queue index 5 / mark id 9 / end")
    cap = tmp_path / "orbit.pcap"
    write_pcap(cap, [via_gre(5)])
    code = main(["trace", str(cap), "--profile", ORBIT, "--rules", str(rules)])
    out = capsys.readouterr().out
    assert code == 0
    assert f"rule 0 hit: {RULES[1]}  ({rules}:2)" in out
    assert raw_lines[0].split(": PTYPE 612: ")[1] in out


def test_the_graph_focuses_on_the_profile_and_labels_values_in_their_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "focus.dot"
    assert main(["graph", "--profile", ORBIT, "--focus", "-o", str(out)]) == 0
    assert "focus on orbit: 6 protocols drawn" in capsys.readouterr().out
    dot = out.read_text()
    drawn = set(re.findall(r'id="proto_(\w+)"', dot))
    # orbit, what binds it (gre, udp), what it carries (ipv4, ipv6), the path from eth
    assert drawn == {"eth", "ipv4", "ipv6", "gre", "udp", "orbit"}
    assert '"6565\\ntunnel orbit"' in dot  # a UDP port in decimal
    assert 'label="0x88c1"' in dot  # an EtherType (GRE protocol type) in hex
    assert 'label="17"' in dot and 'label="0x0800"' in dot  # IP protocol 17; IPv4's EtherType
    ptypes = re.findall(r">(\d+)</TD><TD[^>]*>MAC_", dot)
    assert ptypes == ["610", "611", "612", "613", "614", "615"]
    assert main(["graph", "--focus", "nope", "-o", str(out)]) == 2
    assert "no protocol 'nope'" in capsys.readouterr().err


def test_a_scenario_names_the_protocol_as_rules_do(tmp_path: Path) -> None:
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6

    from e810pipe.scenario import load_scenario

    icmp6 = bytes(Ether() / IPv6() / ICMPv6EchoRequest())
    sc = tmp_path / "orbit.scenario.yaml"
    sc.write_text(
        f"profiles: [os-default, {ORBIT}]\n"
        "rules:\n"
        + "".join(f"  - '{r}'\n" for r in RULES)
        + "packets:\n"
        + f"  - hex: {via_gre(5).hex()}\n"
        + f"  - hex: {via_udp(8).hex()}\n"
        + f"  - hex: {icmp6.hex()}\n"
        + "expect:\n"
        "  - {packets: 0, match: {has: orbit}, ptype: 612}\n"
        "  - {match: {has: [gre, orbit]}, queue: 5, mark: 9}\n"
        "  - {packets: 1, match: {has: orbit}, drop: true, mark: null}\n"
        # icmp6: the rte_flow item for the profiles' icmpv6 header
        f"  - {{match: {{has: icmp6}}, ptype: {Pipeline.load().parser.parse(icmp6).ptype}}}\n"
    )
    outcomes = load_scenario(sc).run()
    assert [o.passed for o in outcomes] == [True] * 4, [o.actual for o in outcomes]


def test_the_readme_conftest_override_of_e810_pipeline(pytester: pytest.Pytester) -> None:
    # the README's example, with this profile and rules
    (pytester.path / "orbit-rules.txt").write_text("\n".join(RULES[:3]) + "\n")
    pytester.makeconftest(
        f"""
        import pytest
        from e810pipe import Pipeline

        @pytest.fixture()
        def e810_pipeline():
            return Pipeline.load(
                ["os-default", {ORBIT!r}],
                rules=["orbit-rules.txt"],
                cmds=[{RULES[3]!r}],
                ports={{"vxlan": [4789]}},
            )
        """
    )
    pytester.makepyfile(
        f"""
        def test_orbit(send, verify_packet, verify_no_other_packets):
            pkt = bytes.fromhex({via_gre(5).hex()!r})
            send(pkt)
            verify_packet(pkt, queue=5, mark=9, ptype=612)
            drop = bytes.fromhex({via_udp(8).hex()!r})
            send(drop)
            verify_packet(drop, drop=True, mark=None)
            verify_no_other_packets()
        """
    )
    pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_summary_names_each_rule_with_its_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from e810pipe.pcapio import write_pcap

    rules = tmp_path / "orbit.txt"
    rules.write_text("\n".join(RULES) + "\n")
    cap = tmp_path / "o.pcap"
    write_pcap(cap, [via_gre(5), via_udp(7), via_udp(8)])
    assert main(["run", str(cap), "--profile", ORBIT, "--rules", str(rules)]) == 0
    out = capsys.readouterr().out
    for n, rule in enumerate(RULES[1:], 2):
        assert f"  {rule}  ({rules}:{n})\n" in out

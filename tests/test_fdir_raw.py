"""Raw (protocol-agnostic) Flow Director rules as the ice PMD reads them.

`pattern raw pattern spec HEX pattern mask HEX`: testpmd hands both strings over as
ASCII, ice_fdir_parse_pattern() (drivers/net/intel/ice/ice_fdir_filter.c) converts them
to bytes, runs its parser on the spec and makes the profile with
ice_parser_profile_init() (base/ice_parser.c); ice_fdir_create_filter() shares or
refuses the PTYPE's raw profile.
"""

from __future__ import annotations

import pytest
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, Raw

from e810pipe.console import Testpmd
from e810pipe.engine import MatchCompiler
from e810pipe.errors import RuleError
from e810pipe.fields import Word
from e810pipe.parser import Parser
from e810pipe.rules import Item, RawSpec

# ice.rst "Protocol Agnostic Filtering": Ethernet + IPv4 (1.1.1.1 -> 2.2.2.2) + UDP,
# the addresses masked
DOC_SPEC = "00000000000100000000000208004500001c000000000011000001010101020202020000000000080000"
DOC_MASK = "0000000000000000000000000000000000000000000000000000ffffffffffffffff0000000000000000"


def console(*extra: str) -> Testpmd:
    tp = Testpmd(["-a", "0000:18:00.0", "--", "-i", "--rxq=16", "--txq=16", *extra])
    for cmd in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(cmd)
    return tp


def raw_rule(spec: bytes | str, mask: bytes | str, actions: str, port: int = 0) -> str:
    s = spec if isinstance(spec, str) else spec.hex()
    m = mask if isinstance(mask, str) else mask.hex()
    return (
        f"flow create {port} ingress pattern raw pattern spec {s} pattern mask {m} / end "
        f"actions {actions} / end"
    )


def seen(tp: Testpmd, pkt: Packet, port: int = 0) -> tuple[int | None, str | None]:
    """(queue, FDIR mark) of one injected packet; (None, None) when dropped."""
    out = tp.inject(port, [bytes(pkt)])
    if "received" not in out:
        return None, None
    queue = int(out.split("/queue ")[1].split(":")[0])
    mark = out.split("FDIR matched ID=")[1].split(" ")[0] if "FDIR matched" in out else None
    return queue, mark


def test_the_ice_documentation_example_steers_as_documented() -> None:
    tp = console()
    # the example's actions without the '/' between them are not testpmd syntax
    # (action_queue in cmdline_flow.c takes only 'index' or '/' after the value)
    doc = raw_rule(DOC_SPEC, DOC_MASK, "queue index 3 mark id 3")
    assert tp.execute(doc) == "Bad arguments\n"
    out = tp.execute(raw_rule(DOC_SPEC, DOC_MASK, "queue index 3 / mark id 3"))
    assert out == "Flow rule #0 created\n", out
    pkt = Ether(dst="00:00:00:00:00:01") / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=5)
    assert seen(tp, pkt / Raw(b"x" * 20)) == (3, "0x3")
    # "any non-fragmented IPv4/UDP packet whose source IP is 1.1.1.1 and destination
    # IP is 2.2.2.2": not another address, a fragment or TCP (other PTYPEs)
    assert seen(tp, Ether() / IP(src="1.1.1.2", dst="2.2.2.2") / UDP())[1] is None
    assert seen(tp, Ether() / IP(src="1.1.1.1", dst="2.2.2.2", flags=1) / UDP())[1] is None
    assert seen(tp, Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP())[1] is None
    # the hash engine's form of the example (actions rss) is taken by the hash engine
    out = tp.execute(raw_rule(DOC_SPEC, DOC_MASK, "rss"))
    assert out == "Flow rule #1 created\n", out


def test_the_hex_strings_are_read_as_ice_reads_them() -> None:
    tp = console()
    # ice_fdir_parse_pattern reads two hex digits per byte; a character that is no hex
    # digit is refused here (ice would read an undefined byte)
    out = tp.execute(raw_rule(DOC_SPEC[:-2] + "zz", DOC_MASK, "queue index 1"))
    assert "Failed to create flow" in out and "hexadecimal strings of one length" in out
    # raw must be the only item (pattern_raw is the raw item alone)
    out = tp.execute(
        f"flow create 0 ingress pattern eth / raw pattern spec {DOC_SPEC} pattern mask "
        f"{DOC_MASK} / end actions queue index 1 / end"
    )
    assert "Failed to create flow" in out and "only item" in out


@pytest.fixture(scope="module")
def mc() -> MatchCompiler:
    return MatchCompiler(Parser.load(["os-default"], vxlan_ports=[4789]))


def test_profile_words_follow_ice_parser_profile_init(mc: MatchCompiler) -> None:
    sample = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=7, dport=8))
    mask = bytearray(len(sample))
    mask[27] = 0x0F  # one nibble of an odd byte: the word at the even distance before
    mask[34:36] = b"\xff\xff"  # the UDP source port: UDP_IL_OR_S (53) at 0
    m = mc.compile_raw(Item("raw", 0, raw=RawSpec(sample, bytes(mask))))
    # byte 26 is 12 bytes into IPv4 (32) and takes bytes 26-27 under mask 0x000f;
    # byte 27 is at an odd distance and is skipped
    assert m.words == ((Word(32, 12), 0x0000, 0x000F), (Word(53, 0), 7, 0xFFFF))
    assert m.ptypes == {24} and m.attr is None  # MAC_IPV4_UDP, no GTP-U attribute
    # more than 32 words is ICE_ERR_PARAM
    full = Item("raw", 0, raw=RawSpec(sample + bytes(40), b"\xff" * (len(sample) + 40)))
    with pytest.raises(RuleError, match="more than 32 field-vector words"):
        mc.compile_raw(full)


def gtpu(pdu: int, src: str = "192.168.1.20", dst: str = "192.168.1.21") -> Packet:
    return (
        Ether(dst="00:11:22:33:44:55")
        / IP(src="192.168.0.20", dst="192.168.0.21")
        / UDP(dport=2152)
        / GTP_U_Header(gtp_type=255, teid=0x12345678)
        / GTPPDUSessionContainer(type=pdu, P=1, QFI=0x34)
        / IP(src=src, dst=dst)
        / TCP()
    )


def test_gtpu_uplink_and_downlink_rules_differ() -> None:
    # ice_flow_set_hw_prof: the raw profile's FD flags give the ptype attribute, so an
    # uplink rule is not looked up for downlink packets although its mask leaves the
    # PDU type out
    tp = console("--profile", "comms")
    sample = bytes(gtpu(1))
    mask = bytearray(len(sample))
    mask[-20 - 8 : -20] = b"\xff" * 8  # the inner IPv4 addresses
    assert tp.execute(raw_rule(sample, bytes(mask), "queue index 1 / mark id 10")).endswith(
        "created\n"
    )
    assert seen(tp, gtpu(1)) == (1, "0xa")
    assert seen(tp, gtpu(0))[1] is None
    assert seen(tp, gtpu(1, dst="192.168.1.22"))[1] is None


def test_another_mask_for_the_ptype_is_refused_and_a_duplicate_reprograms() -> None:
    tp = console()
    assert tp.execute(raw_rule(DOC_SPEC, DOC_MASK, "queue index 3")).endswith("created\n")
    # the PTYPE's raw profile has another field vector: ice_add_prof_id_flow refuses
    # the second profile (ICE_ERR_ALREADY_EXISTS)
    other = DOC_MASK[:-16] + "ffff" + DOC_MASK[-12:]  # the UDP source port (0) too
    out = tp.execute(raw_rule(DOC_SPEC, other, "queue index 4"))
    assert "Failed to create flow" in out and "ICE_ERR_ALREADY_EXISTS" in out
    # the same spec and mask: no duplicate check on the raw path, the filter is
    # programmed again and takes the newer action
    assert tp.execute(raw_rule(DOC_SPEC, DOC_MASK, "queue index 5")) == ("Flow rule #1 created\n")
    pkt = Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / UDP(sport=0)
    assert seen(tp, pkt)[0] == 5
    # destroying either removes the one filter (ice_fdir_add_del_raw)
    tp.execute("flow destroy 0 rule 0")
    assert seen(tp, pkt)[0] != 5
    assert tp.execute("flow destroy 0 rule 1") == "Flow rule #1 destroyed\n"
    # the profile went with the last rule: another mask is taken now
    assert tp.execute(raw_rule(DOC_SPEC, other, "queue index 4")).endswith("created\n")
    assert seen(tp, pkt)[0] == 4


def test_a_vf_is_told_a_refused_raw_rule_was_created() -> None:
    # ice_vc_add_fdir_raw (kernel PF): when ice_flow_set_hw_prof fails it answers
    # VIRTCHNL_STATUS_SUCCESS with a zeroed status (VIRTCHNL_FDIR_SUCCESS), so iavf
    # reports the rule created; it is not programmed
    tp = Testpmd(
        ["-a", "0000:18:01.0", "--", "-i", "--rxq=16", "--txq=16"]
        + ["--vf", "mac=00:11:22:33:44:55,queues=16"]
    )
    for cmd in ("set fwd rxonly", "set verbose 1", "start"):
        tp.execute(cmd)
    spec = DOC_SPEC.replace("000000000001", "001122334455", 1)
    assert tp.execute(raw_rule(spec, DOC_MASK, "queue index 3 / mark id 1")).endswith("created\n")
    other = DOC_MASK[:-16] + "ffff" + DOC_MASK[-12:]
    assert tp.execute(raw_rule(spec, other, "queue index 4 / mark id 2")) == (
        "Flow rule #1 created\n"
    )
    pkt = Ether(dst="00:11:22:33:44:55") / IP(src="1.1.1.1", dst="2.2.2.2") / UDP()
    assert seen(tp, pkt) == (3, "0x1")
    assert tp.execute("flow destroy 0 rule 1") == "Flow rule #1 destroyed\n"
    assert seen(tp, pkt) == (3, "0x1")

"""The pipeline's flow (decision) cache: the same decisions and counters as without it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from e810pipe.control import Controller
from e810pipe.device import Device
from e810pipe.package import load_package
from e810pipe.pcapio import LINKTYPE_ETHERNET, iter_packets
from e810pipe.pipeline import Pipeline, PipelineConfig
from e810pipe.testpmd import parse_commands

ROOT = Path(__file__).resolve().parents[1]
OS = load_package(["os-default"])

RULES = """
port config all rxq 16
port config 0 udp_tunnel_port add vxlan 4789
port config 0 udp_tunnel_port add geneve 6081
flow create 0 pattern eth / ipv4 / udp dst is 53 / end actions rss queues 8 9 10 11 end / end
flow create 0 pattern eth / ipv6 / tcp dst is 80 / end actions drop / end
flow create 0 pattern eth / ipv4 / tcp dst is 443 / end actions queue index 5 / mark id 7 / end
flow create 0 pattern eth / ipv4 / tcp src spec 0 src mask 0xfc00 / end actions drop / end
flow create 0 pattern eth / ipv4 / udp dst spec 1024 dst mask 0xfc00 / end \
  actions queue index 2 / end
flow create 0 pattern eth / ipv4 src spec 10.0.0.0 src mask 255.0.0.0 / udp / end \
  actions queue index 3 / end
flow create 0 pattern eth / ipv4 / udp / vxlan vni is 5 / end actions queue index 6 / end
flow create 0 pattern eth / ipv4 / tcp dst spec 2000 dst last 3000 / end actions drop / end
"""


def pipeline(cache: bool, rules: str = RULES) -> Pipeline:
    # the fallback placement gives one port all three engines (ice's ACL is DCF-only)
    pipe = Pipeline(OS, Device.build(rxq=8), config=PipelineConfig(placement="fallback"))
    pipe.flow_cache = cache
    ctl = Controller(pipe)
    for cmd in parse_commands(rules, "test"):
        ctl.apply(cmd)
    return pipe


def captures() -> list[bytes]:
    out = []
    paths = sorted((ROOT / "pcaps").glob("*.pcap"))
    paths += sorted(p for p in (ROOT / "tests/data/real").rglob("*") if p.suffix == ".pcap")
    for path in paths:
        out += [p.data for p in iter_packets(path) if p.linktype == LINKTYPE_ETHERNET]
    return out


def test_engines_agree_on_the_loaded_rules() -> None:
    pipe = pipeline(True)
    assert {e.engine for e in pipe.rules.values()} == {"fd", "switch", "acl"}


def test_same_decisions_and_counters_as_without_cache() -> None:
    packets = captures()
    rng = random.Random(7)
    # cut some packets inside their headers: keys then hold short slices
    packets += [p[: rng.randrange(14, len(p) + 1)] for p in rng.sample(packets, 400)]
    packets += packets[:500]  # repeated flows hit the cache
    cached, plain = pipeline(True), pipeline(False)
    for data in packets:
        assert cached.process(data) == plain.process(data)
    assert cached._cached > 0
    assert cached.counters == plain.counters
    assert [(e.hits, e.bytes) for e in cached.rules.values()] == [
        (e.hits, e.bytes) for e in plain.rules.values()
    ]


def tcp(dport: int = 443, sport: int = 1234) -> bytes:
    return bytes(Ether() / IP(src="1.1.1.1", dst="2.2.2.2") / TCP(sport=sport, dport=dport))


def test_rule_changes_drop_cached_decisions() -> None:
    pipe = pipeline(True, "port config all rxq 16")
    first = pipe.process(tcp())
    assert first.hits == () and pipe.process(tcp()) is first  # the second one is cached
    ctl = Controller(pipe)
    ctl.apply(
        parse_commands(
            "flow create 0 pattern eth / ipv4 / tcp dst is 443 / end actions queue index 9 / end"
        )[0]
    )
    assert pipe.process(tcp()).queue == 9
    ctl.apply(parse_commands("flow destroy 0 rule 0")[0])
    assert pipe.process(tcp()) == first


@pytest.mark.parametrize(
    "command",
    [
        "port config all rxq 4",
        "port config 0 rss-hash-key ipv4-tcp " + "ab" * 52,
        "port config all rss udp",
        "port config 0 rss reta (0,1),(1,1),(2,1),(3,1),(4,1),(5,1),(6,1),(7,1)",
    ],
)
def test_configuration_changes_drop_cached_decisions(command: str) -> None:
    pipe = pipeline(True, "port config all rxq 16")
    packets = [tcp(sport=p) for p in range(64)]
    for data in packets:
        pipe.process(data)
    Controller(pipe).apply(parse_commands(command)[0])
    fresh = pipeline(False, "port config all rxq 16\n" + command)
    assert [pipe.process(d) for d in packets] == [fresh.process(d) for d in packets]


def test_direct_rss_changes_are_seen() -> None:
    pipe = pipeline(True)
    before = pipe.process(tcp(dport=8080))
    pipe.rss.set_key(bytes(range(52)))
    after = pipe.process(tcp(dport=8080))
    assert after.rss_hash != before.rss_hash
    pipe.rss.types = frozenset()
    assert pipe.process(tcp(dport=8080)).rss_hash == 0


def test_turning_the_cache_on_again_caches() -> None:
    pipe = pipeline(False)
    pipe.process(tcp())
    pipe.flow_cache = True
    first = pipe.process(tcp())
    assert pipe.process(tcp()) is first


def test_a_full_cache_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import e810pipe.pipeline as mod

    monkeypatch.setattr(mod, "FLOW_CACHE_SIZE", 8)
    pipe, plain = pipeline(True), pipeline(False)
    for sport in range(40):
        data = bytes(Ether() / IP() / UDP(sport=sport, dport=53))
        assert pipe.process(data) == plain.process(data)
    assert pipe._cached < 8 and pipe.counters == plain.counters

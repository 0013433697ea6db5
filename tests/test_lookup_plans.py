"""The compiled lookups of Flow Director and the switch (per parse path: where each
input-set word sits in the packet) find what a word-by-word read finds, on every
bundled capture, truncated copies of its packets and packets from real captures."""

from __future__ import annotations

import random
from pathlib import Path

from e810pipe.control import configure, read_setup
from e810pipe.engine import Frame
from e810pipe.fdir import FlowDirector
from e810pipe.package import load_package
from e810pipe.pcapio import LINKTYPE_ETHERNET, iter_packets
from e810pipe.pipeline import Pipeline
from e810pipe.switch import Switch

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "tests" / "data" / "real"


def packets() -> list[bytes]:
    out = []
    for pcap in sorted((ROOT / "pcaps").glob("*.pcap")) + sorted(REAL.rglob("*.pcap"))[:6]:
        for pkt in iter_packets(pcap):
            if pkt.linktype == LINKTYPE_ETHERNET:
                out.append(pkt.data)
    rng = random.Random(5)
    # cut copies: words past the end read as zero
    out += [d[: rng.randrange(14, max(15, len(d)))] for d in rng.sample(out, 600)]
    return out


def reference_fd(fd: FlowDirector, frame: Frame, vsi: int | None) -> int | None:
    selected: set[int] = set()
    for prof in fd._by_ptype.get(frame.res.ptype, ()):
        if vsi is not None and prof.vsi != vsi:
            continue
        flag = prof.tunnel_flag
        if prof.vsi in selected or (flag is not None and flag not in frame.flags):
            continue
        selected.add(prof.vsi)
        key = []
        for w, m in prof.input_set:
            got = frame.word(w)
            if got is None:
                break
            key.append(got & m)
        else:
            rid = prof.table.get(tuple(key))
            if rid is not None:
                return rid
    return None


def reference_switch(sw: Switch, frame: Frame, port: int) -> tuple[int | None, tuple]:
    for level in sw._levels:
        best = None
        for recipe in level:
            values = []
            for w, m in recipe.input_set:
                got = frame.word(w)
                if got is None:
                    break
                values.append(got & m)
            else:
                for e in recipe.table.get(tuple(values), ()):
                    if best is not None and e.seq > best.seq:
                        break
                    if e.rule.port == port and e.match.applies(frame):
                        best = e
                        break
        if best is not None:
            words = tuple((sw._wname(w), frame.word(w) or 0) for w, _ in best.recipe.input_set)
            return best.rule_id, words
    parts = tuple(frame.word(w) for w in sw._dmac_words)
    return None, tuple((sw._wname(w), v or 0) for w, v in zip(sw._dmac_words, parts))


def rules_for(data: list[bytes], tmp: Path) -> Pipeline:
    """Rules built from the packets themselves, so that many lookups hit."""
    probe = Pipeline(load_package(["os-default"]))
    lines = [
        "port config all rxq 8",
        "port config 0 udp_tunnel_port add vxlan 4789",
        "port config 0 udp_tunnel_port add geneve 6081",
        "port config all rss all",
    ]
    seen = set()
    for d in data[::7]:
        res = probe.parser.parse(d)
        po = dict(res.po)
        if res.flags or 32 not in po or (49 not in po and 53 not in po):
            continue
        b, lb = po[32], po.get(49, po.get(53))
        assert lb is not None
        l4 = "tcp" if 49 in po else "udp"
        src, dst = ".".join(map(str, d[b + 12 : b + 16])), ".".join(map(str, d[b + 16 : b + 20]))
        sp, dp = int.from_bytes(d[lb : lb + 2], "big"), int.from_bytes(d[lb + 2 : lb + 4], "big")
        mac = ":".join(f"{x:02x}" for x in d[0:6])
        if (src, dst, l4, sp, dp) not in seen:
            seen.add((src, dst, l4, sp, dp))
            lines.append(
                f"flow create 0 priority 1 ingress pattern eth / ipv4 src is {src} dst is {dst} "
                f"/ {l4} src is {sp} dst is {dp} / end actions queue index {len(seen) % 8} / "
                f"mark id {len(seen)} / end"
            )
        if mac not in seen and len(seen) % 3 == 0:
            seen.add(mac)
            lines.append(
                f"flow create 0 priority 0 ingress pattern eth dst is {mac} / end "
                f"actions queue index 1 / end"
            )
    lines.append(
        "flow create 0 priority 0 ingress pattern eth / ipv4 / udp dst is 53 / end "
        "actions queue index 2 / end"
    )
    text = tmp / "r.txt"
    text.write_text("\n".join(lines) + "\n")
    dev = tmp / "d.yaml"
    dev.write_text("device:\n  pfs:\n    - rxq: 8\npipeline: {mode: pipeline}\n")
    pipe, _ = configure(load_package(["os-default"]), read_setup([str(dev), str(text)]))
    return pipe


def test_compiled_lookups_find_what_word_reads_find(tmp_path: Path) -> None:
    data = packets()
    pipe = rules_for(data, tmp_path)
    assert len(pipe.fd) > 50 and pipe.switch._entries
    fd_hits = sw_hits = 0
    for d in data:
        res = pipe.parser.parse(d)
        frame = Frame(d, res)
        for vsi in (None, 0, 1):
            want = reference_fd(pipe.fd, frame, vsi)
            got = pipe.fd.lookup(frame, vsi=vsi)
            assert (got.rule if got is not None else None) == want, d.hex()
            fd_hits += want is not None
        v = pipe.switch.lookup(frame, 0)
        rid, words = reference_switch(pipe.switch, frame, 0)
        assert (v.rule, v.words) == (rid, words), d.hex()
        sw_hits += rid is not None
    assert fd_hits > 50 and sw_hits > 50

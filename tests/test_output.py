"""Run outputs: the --json lines are json.dumps of each decision, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from e810pipe.control import configure, read_setup
from e810pipe.output import JsonLines
from e810pipe.package import load_package
from e810pipe.pcapio import iter_packets

ROOT = Path(__file__).parents[1]


def test_json_lines_are_json_dumps_of_each_decision(tmp_path: Path) -> None:
    rules = tmp_path / "r.txt"
    rules.write_text(
        "port config all rxq 8\nport config 0 udp_tunnel_port add vxlan 4789\n"
        "port config all rss all\n"
        "flow create 0 pattern eth / ipv4 / udp / vxlan vni is 0 / end actions queue index 3 / "
        "mark id 7 / end\n"
        "flow create 0 pattern eth / ipv6 / tcp dst is 80 / end actions drop / end\n"
    )
    pipe, _ = configure(load_package(["os-default"]), read_setup([str(rules)]))
    enc = JsonLines()
    enc.MEMO_SIZE = 64  # the memo is also emptied along the way
    seen = 0
    for pcap in sorted((ROOT / "pcaps").glob("*.pcap")):
        for pkt in iter_packets(pcap):
            dec = pipe.process(pkt.data)
            want = dec.to_json(pkt.index)
            assert enc.line(dec, pkt.index) == json.dumps(want, separators=(",", ":")) + "\n"
            name = f'{pcap.name} "quoted" \u00e9'
            with_file = json.dumps({"file": name, **want}, separators=(",", ":")) + "\n"
            assert enc.line(dec, pkt.index, name) == with_file
            seen += 1
    assert seen > 2000

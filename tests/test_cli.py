"""The command line: output formats and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from e810pipe.cli import main
from e810pipe.pcapio import write_pcap

KEYS = ["index", "len", "ptype", "ptype_name", "po", "headers", "flags", "status", "depth"]


@pytest.fixture()
def capture(tmp_path: Path) -> Path:
    inner = Ether() / IP() / UDP()
    pkts = [
        bytes(Ether() / IP() / UDP(dport=4789) / VXLAN(vni=5) / inner),
        bytes(Ether() / IP() / UDP(dport=53)),
        bytes(Ether(type=0x1234) / b"xx"),
    ]
    path = tmp_path / "in.pcap"
    write_pcap(path, pkts)
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_parse_json_one_object_per_packet(
    capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "parse", str(capture), "--json", "--vxlan-port", "4789")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3
    assert all(list(r) == KEYS for r in rows)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert rows[0]["ptype"] == 61 and rows[0]["flags"] == ["tunnel_vxlan"]
    assert rows[0]["headers"][3] == {"name": "vxlan", "offset": 42, "length": 8}
    assert rows[1]["po"] == [[1, 0], [9, 12], [32, 14], [53, 34]]
    assert rows[2]["ptype_name"] == "MAC_PAY"


def test_parse_table(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "parse", str(capture), "-v")
    assert code == 0
    assert "ICE OS Default Package 1.3.30.0" in out
    assert "24 MAC_IPV4_UDP_PAY" in out and "UDP_IL_OR_S@34" in out
    assert "# 3 packet(s) parsed, 0 skipped" in out


def test_comms_and_user_profile(capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "parse",
        str(capture),
        "--json",
        "--profile",
        "comms",
        "--profile",
        "examples/custom-gre.ddp",
    )
    assert code == 0 and len(out.splitlines()) == 3


def test_exit_codes(tmp_path: Path, capture: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ddp"
    bad.write_text("protocol x {\n  fields { a: 8 }\n}\n")
    code, _, err = run(capsys, "parse", str(capture), "--profile", str(bad))
    assert code == 3 and f"{bad}:2:17: syntax error" in err and "Traceback" not in err
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"not a capture at all")
    code, _, err = run(capsys, "parse", str(junk))
    assert code == 4 and "file header, byte offset 0" in err
    code, _, err = run(capsys, "parse", str(capture), "--window", "3")
    assert code == 2 and "--window" in err
    code, _, err = run(capsys, "parse", str(capture), "--vxlan-port", "70000")
    assert code == 2
    code, _, err = run(capsys, "nosuchcommand")
    assert code == 2


def test_truncated_capture_names_packet_and_offset(
    tmp_path: Path, capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(capture.read_bytes()[:-3])
    code, out, err = run(capsys, "parse", str(cut), "--json")
    assert code == 4 and "packet 2, byte offset" in err
    assert len(out.splitlines()) == 2  # the packets before the damage were reported


def test_module_entry_point(capture: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "e810pipe", "parse", str(capture), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 3


RUN_KEYS = ["index", "ptype", "vsi", "queue", "drop", "drop_reason", "mark", "rss_hash", "hits"]


@pytest.fixture()
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.txt"
    path.write_text(
        "# steer VXLAN VNI 5 to queue 3, drop DNS\n"
        "port config all rxq 8\n"
        "port config 0 udp_tunnel_port add vxlan 4789\n"
        "flow create 0 pattern eth / ipv4 / udp / vxlan vni is 5 / end "
        "actions queue index 3 / mark id 11 / end\n"
        "flow create 0 pattern eth / ipv4 / udp dst is 53 / end actions drop / end\n"
    )
    return path


def test_run_json_and_split(
    tmp_path: Path, capture: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split = tmp_path / "split"
    code, out, _ = run(
        capsys, "run", str(capture), "--rules", str(rules), "--json", "--split", str(split)
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [list(r) for r in rows] == [RUN_KEYS] * 3
    assert rows[0]["queue"] == 3 and rows[0]["mark"] == 11
    assert rows[0]["hits"] == [{"block": "fd", "rule": 0}]
    # a drop on exact fields is the switch's: ice tries it before Flow Director
    assert rows[1]["drop"] is True and rows[1]["drop_reason"].startswith("switch rule 1 ")
    assert rows[2]["drop"] is False and 0 <= rows[2]["queue"] < 8
    from e810pipe.pcapio import iter_packets

    counts = {p.stem: sum(1 for _ in iter_packets(p)) for p in split.glob("*.pcap")}
    assert counts["queue-3"] >= 1 and counts["drop"] == 1
    assert sum(counts.values()) == 3


def test_run_summary(capture: Path, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "run", str(capture), "--rules", str(rules))
    assert code == 0
    assert "packets: 3 read, 2 to queues, 1 dropped, 0 skipped" in out
    assert "switch rule 1 " in out and "per PTYPE:" in out and "per VSI:" in out


def test_trace_reads_like_ofproto_trace(
    capture: Path, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "trace", str(capture), "--index", "0", "--rules", str(rules))
    assert code == 0
    for part in (
        "Parser (",
        "path: eth@0+14 -> ipv4@14+20 -> udp@34+8 -> vxlan@42+8",
        "PTYPE 61",
        "Switch",
        "Flow Director",
        "field vector: UDP_OF+12=0x0000",
        "rule 0 hit",
        "RSS",
        "Final: VSI pf0 (number 0), queue 3",
    ):
        assert part in out, part


def test_flow_validate_reports_each_rule(rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "flow", "validate", "--rules", str(rules))
    assert code == 0 and "Flow rule #1 created (switch)" in out
    code, out, _ = run(
        capsys,
        "flow",
        "validate",
        "--rules",
        str(rules),
        "--cmd",
        "flow create 0 pattern eth / ipv4 / udp dst is 53 / end actions queue index 99 / end",
    )
    assert code == 5
    assert "--cmd[0]:1: Caught error type" in out and "# 5 command(s), 1 rejected" in out


def test_bad_rule_file_is_located(
    tmp_path: Path, capture: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(
        "port config all rxq 4\n"
        "flow create 0 pattern eth / ipv4 sorc is 1.2.3.4 / end actions drop / end\n"
    )
    code, _, err = run(capsys, "run", str(capture), "--rules", str(bad))
    assert code == 5
    assert f"{bad}:2:" in err and "Caught error type 13 (specific pattern item)" in err

"""The Python entry points the README uses: Pipeline, Scapy packets, one-call commands."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

import e810pipe
from e810pipe import E810PipeError, Pipeline
from e810pipe.cli import main
from e810pipe.errors import RuleError
from e810pipe.pcapio import iter_packets, write_pcap


def test_top_level_entry_points() -> None:
    for name in e810pipe.__all__:
        assert getattr(e810pipe, name) is not None
    assert e810pipe.Pipeline is importlib.import_module("e810pipe.pipeline").Pipeline


def test_process_takes_scapy_packets_and_bytes_alike() -> None:
    pipe = Pipeline.load(
        cmds=[
            "port config all rxq 8",
            "flow create 0 pattern eth / ipv4 / udp dst is 53 / end "
            "actions queue index 5 / mark id 9 / end",
        ]
    )
    pkt = Ether() / IP(dst="10.0.0.1") / UDP(dport=53)
    a = pipe.process(pkt)
    b = pipe.process(bytes(pkt))
    c = pipe.process(bytearray(bytes(pkt)))
    assert (a.queue, a.mark) == (b.queue, b.mark) == (c.queue, c.mark) == (5, 9)
    assert pipe.counters.packets == 3


def test_apply_one_command_and_its_answer() -> None:
    pipe = Pipeline.load()
    out = pipe.apply(
        "flow create 0 pattern eth / ipv4 / udp dst is 7 / end actions drop / mark id 3 / end"
    )
    assert out == ["Flow rule #0 created (fd)"]
    dec = pipe.process(Ether() / IP() / UDP(dport=7))
    assert dec.drop and dec.drop_reason == "fd rule 0: drop"
    with pytest.raises(RuleError, match="unknown pattern item"):
        pipe.apply("flow create 0 pattern eth / bogus / end actions drop / end")


def test_a_dropped_packet_carries_no_mark() -> None:
    pipe = Pipeline.load(
        cmds=[
            "flow create 0 pattern eth / ipv4 / udp dst is 1 / end actions drop / mark id 9 / end"
        ]
    )
    dec = pipe.process(Ether() / IP() / UDP(dport=1))
    assert dec.drop and dec.mark is None
    assert dec.to_json(0)["mark"] is None


def test_load_reads_profiles_rules_files_and_ports(tmp_path: Path) -> None:
    rules = tmp_path / "r.txt"
    rules.write_text(
        "port config all rxq 4\n"
        "flow create 0 pattern eth / ipv4 / udp / vxlan vni is 42 / end "
        "actions queue index 2 / end\n"
    )
    pipe = Pipeline.load(["os-default"], [str(rules)], ports={"vxlan": [4789]})
    from scapy.layers.vxlan import VXLAN

    dec = pipe.process(Ether() / IP() / UDP(dport=4789) / VXLAN(vni=42) / Ether() / IP())
    assert dec.queue == 2
    with pytest.raises(E810PipeError):
        Pipeline.load(["no-such-profile.ddp"])


def test_split_keeps_timestamps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pkts = [(bytes(Ether() / IP() / UDP(dport=53 + i)), 1700000000.25 + i) for i in range(6)]
    src = tmp_path / "in.pcap"
    write_pcap(src, pkts)
    for extra in ([], ["--workers", "2"]):
        out = tmp_path / f"split{len(extra)}"
        code = main(
            ["run", str(src), "--cmd", "port config all rxq 4", "--split", str(out), *extra]
        )
        capsys.readouterr()
        assert code == 0
        got = sorted(p.ts for f in out.glob("*.pcap") for p in iter_packets(f))
        assert got == pytest.approx([ts for _, ts in pkts])


def test_missing_extras_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from e810pipe import schema
    from e810pipe.parallel import DaskBackend

    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(E810PipeError, match=r"e810pipe\[schema\]"):
        schema.validator("run")
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    monkeypatch.setitem(sys.modules, "dask", None)
    with pytest.raises(E810PipeError, match=r"e810pipe\[dask\]"):
        DaskBackend("local", 1)
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    monkeypatch.delitem(sys.modules, "e810pipe.strategies", raising=False)
    with pytest.raises(ImportError, match=r"e810pipe\[fuzz\]"):
        importlib.import_module("e810pipe.strategies")
    monkeypatch.delitem(sys.modules, "e810pipe.strategies", raising=False)

"""The DTS conformance data is well formed (structure only; the runner checks behaviour).

Every file in tests/data/dts is JSON lines of cases as tests/data/dts/README.md describes:
known step kinds, known check kinds with the parameters they need, frames that decode.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

DTS = Path(__file__).parent / "data" / "dts"
FILES = sorted(DTS.glob("*.jsonl.gz"))

PCI = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
ENGINES = {"fd", "switch", "hash", "acl"}
RSS_CHECKS = {
    "save_hash",
    "check_hash_same",
    "check_hash_different",
    "check_no_hash",
    "check_no_hash_or_different",
    "save_or_no_hash",
    "check_hash_same_or_no_hash",
}
# check kind -> parameters it cannot do without
CHECKS: dict[str, set[str]] = {
    "mark": set(),
    "mark_same_rss": set(),
    "iavf_mark": set(),
    "queue": {"queue"},
    "drop": set(),
    "rss": {"rxq"},
    "in_queue": {"expect_port", "expect_queues", "expect_pkts"},
    "in_queue_mismatched": {"expect_port", "expect_queues", "expect_pkts"},
    "port_drop": {"expect_port"},
    "port_rx": {"expect_port", "expect_pkts"},
    "port_rx_tx": {"expect_port", "expect_pkts", "tx_port", "tx_pkts"},
    "rx_no_mark": {"expect_port", "expect_pkts"},
    "hashes": {"send_port", "port_id", "record", "same", "differ"},
    "sent": set(),
    "handle_actions": set(),
    "rss_multi": {"checks"},
    **{k: {"port_id"} for k in RSS_CHECKS},
}


def load(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def test_the_data_is_there() -> None:
    names = {p.name.removesuffix(".jsonl.gz") for p in FILES}
    assert {"ice_fdir", "ice_switch_filter", "ice_advanced_rss"} <= names
    assert len(names) > 3
    readme = (DTS / "README.md").read_text(encoding="utf-8")
    assert "converted from DPDK DTS, BSD-3-Clause, Intel" in readme
    for name in names:
        assert f"`{name}.jsonl.gz`" in readme, f"{name} is not described in the README"


def check_frames(frames: Any, where: str) -> None:
    assert isinstance(frames, list), where
    for f in frames:
        assert isinstance(f, str) and re.fullmatch("(?:[0-9a-f]{2})+", f), where
        assert len(bytes.fromhex(f)) >= 14, f"{where}: a frame shorter than Ethernet"


def check_check(check: str, param: Any, where: str) -> None:
    assert check in CHECKS, f"{where}: unknown check {check!r}"
    assert isinstance(param, dict), where
    missing = CHECKS[check] - set(param)
    assert not missing, f"{where}: {check} without {sorted(missing)}"
    if check == "rss_multi":
        assert isinstance(param["checks"], list) and param["checks"], where
        for sub in param["checks"]:
            check_check(sub["check"], sub.get("param", {}), where)
    if check == "handle_actions":
        for sub in param.get("actions", []):
            check_check(sub["check"], sub.get("param", {}), where)
    if check in ("mark", "mark_same_rss", "iavf_mark", "queue"):
        q = param.get("queue")
        assert (
            q is None
            or isinstance(q, int)
            or (isinstance(q, list) and all(isinstance(x, int) for x in q))
        ), where
    if check == "hashes":
        for pair in param["same"] + param["differ"]:
            assert len(pair) == 2 and all(isinstance(i, int) for i in pair), where
    if check == "mark_same_rss":
        assert ("save" in param) != ("same_as" in param), where


def check_step(step: dict[str, Any], rec: dict[str, Any], where: str) -> None:
    ports = rec["ports"]
    if "cmd" in step:
        assert set(step) <= {
            "cmd",
            "expect",
            "msg",
            "engine",
            "engine_not",
            "listed_if",
            "if_listed",
        }, where
        assert step.get("listed_if") in (None, *ENGINES), where
        assert step.get("if_listed") in (None, True), where
        assert isinstance(step["cmd"], str) and step["cmd"].strip(), where
        assert step["expect"] in ("ok", "error", "any"), where
        assert step.get("engine") in (None, *ENGINES), where
        assert step.get("engine_not") in (None, *ENGINES), where
        assert (step["expect"] == "any") <= ("engine_not" in step), where
    elif "send" in step:
        assert set(step) <= {"send", "port", "check", "param", "stats", "dts"}, where
        check_frames(step["send"], where)
        assert step["send"], f"{where}: a send without frames"
        assert isinstance(step["port"], int) and 0 <= step["port"] <= 1, where
        check_check(step["check"], step.get("param", {}), where)
        assert step.get("stats") in (None, True, False), where
        if step["check"] == "hashes":
            n = len(step["send"])
            p = step["param"]
            assert all(i < n for pair in p["same"] + p["differ"] for i in pair), where
    elif "rules" in step:
        assert set(step) == {"rules", "port"}, where
        assert isinstance(step["rules"], int) and step["rules"] >= 0, where
        assert isinstance(step["port"], int) and step["port"] < ports, where
    elif "query" in step:
        assert set(step) <= {"query", "port", "hits", "msg"}, where
        assert step["hits"] is None or isinstance(step["hits"], int), where
    else:
        raise AssertionError(f"{where}: unknown step {sorted(step)}")


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_records_are_well_formed(path: Path) -> None:
    suite = path.name.removesuffix(".jsonl.gz")
    records = load(path)
    assert records, path
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "case ids repeat"
    for rec in records:
        where = f"{suite}:{rec['id']}"
        assert rec["suite"] == suite, where
        assert re.fullmatch(r"test_\w+(/[\w.\-#]+)?|launch_testpmd/\w+", rec["id"]), where
        assert rec["profile"] in ("os-default", "comms"), where
        assert isinstance(rec["ports"], int) and 1 <= rec["ports"] <= 64, where
        assert isinstance(rec["rxq"], int) and 1 <= rec["rxq"] <= 256, where
        assert all(isinstance(c, str) for c in rec["setup"]), where
        assert isinstance(rec.get("note", ""), str), where
        if "launch" in rec:
            eal, sep, app = rec["launch"].partition(" -- ")
            assert sep and "-i" in app.split(), where
            devs = re.findall(r"-a (\S+)", eal)
            assert devs, where
            for d in devs:
                assert PCI.fullmatch(d.split(",")[0]), f"{where}: {d}"
            m = re.search(r"--rxq=(\d+)", app)
            assert (int(m.group(1)) if m else 1) == rec["rxq"], where
            vfs = [d for d in devs if not d.split(",")[0].split(":")[2].startswith("00.")]
            assert bool(rec.get("kernel_pf")) == (len(vfs) == len(devs)), where
        for vf in rec.get("vfs", []):
            assert re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", vf["mac"]), where
            assert isinstance(vf["trust"], bool) and isinstance(vf["queues"], int), where
        assert isinstance(rec.get("devargs", {}), dict), where
        assert rec["steps"], f"{where}: no steps"
        for i, step in enumerate(rec["steps"]):
            check_step(step, rec, f"{where} step {i}")

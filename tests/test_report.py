"""`e810pipe run --html`: the report's numbers, and the page as headless Chromium renders it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from e810pipe import drawing
from e810pipe.cli import main
from e810pipe.pcapio import write_pcap
from e810pipe.report import ReportCollector, run_extras

RULES = (
    "port config all rxq 8\n"
    "port config 0 udp_tunnel_port add vxlan 4789\n"
    "flow create 0 pattern eth / ipv4 / udp / vxlan vni is 5 / end "
    "actions queue index 3 / mark id 11 / end\n"
    "flow create 0 pattern eth / ipv4 / udp dst is 53 / end actions drop / end\n"
    "flow create 0 pattern eth / ipv6 src spec 2001:db8:: src mask ffff:ffff:: / tcp / end "
    "actions queue index 7 / end\n"
)


def _packets() -> list[bytes]:
    pkts = []
    for i in range(60):  # RSS over 8 queues
        pkts.append(bytes(Ether() / IP(src=f"10.0.{i}.1") / TCP(sport=1000 + i, dport=80)))
    for i in range(7):  # fd rule 0: queue 3
        inner = Ether() / IP(src=f"10.1.{i}.1") / UDP(sport=2000 + i)
        pkts.append(bytes(Ether() / IP() / UDP(sport=3000 + i, dport=4789) / VXLAN(vni=5) / inner))
    for i in range(5):  # switch rule 1: drop (ice tries the switch before Flow Director)
        pkts.append(bytes(Ether() / IP(src=f"10.2.{i}.1") / UDP(sport=4000 + i, dport=53)))
    for i in range(9):  # switch rule 2: queue 7 (a masked IPv6 address)
        pkts.append(bytes(Ether() / IPv6(src=f"2001:db8::{i + 1}") / TCP(sport=5000 + i)))
    pkts.append(bytes(Ether(type=0x1234) / b"payload!"))  # PTYPE 1 MAC_PAY
    return pkts


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("report")
    pcap = d / "mix.pcap"
    write_pcap(pcap, _packets())
    rules = d / "rules.txt"
    rules.write_text(RULES)
    return pcap, rules


@pytest.fixture(scope="module")
def run_outputs(setup: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run with --json and one with --html (and the text summary) of the same input."""
    pcap, rules = setup
    d = tmp_path_factory.mktemp("report-run")
    html_path = d / "report.html"
    base = ["run", str(pcap), "--rules", str(rules)]
    decisions = _capture(lambda: main([*base, "--json"]))
    summary = _capture(lambda: main([*base, "--html", str(html_path), "--html-packets", "50"]))
    rows = [json.loads(x) for x in decisions.splitlines() if x.startswith("{")]
    return {"rows": rows, "summary": summary, "html": html_path}


def _capture(fn) -> str:  # type: ignore[no-untyped-def]
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert fn() == 0
    return buf.getvalue()


def _report_data(text: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert m is not None
    return json.loads(m.group(1))


def _expected(rows: list[dict]) -> dict:
    """What the charts must show, from the per-packet JSON decisions."""
    return {
        "queues": Counter(r["queue"] for r in rows if not r["drop"]),
        "drops": Counter(r["drop_reason"] for r in rows if r["drop"]),
        "ptypes": Counter(r["ptype"] for r in rows),
        "rules": Counter(h["rule"] for r in rows for h in r["hits"]),
    }


def test_report_numbers_match_json_and_summary(run_outputs: dict) -> None:
    rows, summary = run_outputs["rows"], run_outputs["summary"]
    text = run_outputs["html"].read_text()
    data = _report_data(text)
    exp = _expected(rows)
    assert len(rows) == 82
    assert data["totals"] == {
        "read": 82,
        "processed": 82,
        "queued": 77,
        "dropped": 5,
        "skipped": 0,
        "listed": 50,
    }
    assert "packets: 82 read, 77 to queues, 5 dropped, 0 skipped" in summary
    assert {q["queue"]: q["packets"] for q in data["queues"]} == exp["queues"]
    for q in data["queues"]:  # the text summary's per-queue lines
        assert re.search(
            rf"^\s+{q['queue']}\s+pf0\s+{q['vsi_queue']}\s+{q['packets']}$", summary, re.M
        )
    assert data["vsis"] == [{"vsi": "pf0", "packets": 77}]
    assert {d["reason"]: d["packets"] for d in data["drops"]} == exp["drops"]
    assert list(exp["drops"].values()) == [5]
    assert next(iter(exp["drops"])).startswith("switch rule 1 ")
    assert {p["ptype"]: p["packets"] for p in data["ptypes"]} == exp["ptypes"]
    assert {r["id"]: r["hits"] for r in data["rules"]} == {0: 7, 1: 5, 2: 9} == exp["rules"]
    # RSS: the packets no rule steered, spread over pf0's 8 queues
    rss_rows = [r for r in rows if not r["drop"] and not r["hits"]]
    (rss,) = data["rss"]
    assert rss["vsi"] == "pf0" and rss["packets"] == len(rss_rows) == 61
    assert rss["queues"] == [sum(1 for r in rss_rows if r["queue"] == q) for q in range(8)]
    mean = 61 / 8
    std = (sum((x - mean) ** 2 for x in rss["queues"]) / 8) ** 0.5
    assert rss["mean"] == pytest.approx(mean, abs=1e-3)
    assert rss["stddev"] == pytest.approx(std, abs=1e-3)
    assert rss["max_over_mean"] == pytest.approx(max(rss["queues"]) / mean, abs=1e-4)
    # the packet table: first 50 packets, a note says so, each with its trace
    assert 'id="truncated"' in text and "first 50 of 82 packets" in text
    assert len(re.findall(r'<tr class="pkt', text)) == 50
    assert len(re.findall(r'<tr class="trace" id="trace-\d+" hidden>', text)) == 50
    assert "Final: VSI pf0 (number 0), queue" in text
    # a mark column; the 50 packets listed went by RSS, so none has a mark
    assert "<th class=num>mark</th>" in text
    marks = re.findall(r'<td class="num mark">(\d*)</td>', text)
    assert len(marks) == 50 and set(marks) == {""}
    # self-contained: nothing is fetched
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<svg" in text or 'id="graph-missing"' in text


def test_report_graph_note_without_graphviz(
    setup: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drawing.shutil, "which", lambda name: None)
    pcap, rules = setup
    out = tmp_path / "r.html"
    _capture(lambda: main(["run", str(pcap), "--rules", str(rules), "--html", str(out)]))
    text = out.read_text()
    assert 'id="graph-missing"' in text and "apt-get install graphviz" in text
    assert 'id="truncated"' not in text  # 82 packets: all listed


def test_no_collection_without_html(setup: tuple[Path, Path]) -> None:
    import argparse
    import io

    ns = argparse.Namespace(pcap=[str(setup[0])], html=None, quiet=False, trace=None)
    assert run_extras(ns, None, io.StringIO()) is None  # type: ignore[arg-type]


def test_html_refuses_workers(setup: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    pcap, _ = setup
    code = main(["run", str(pcap), "--html", "x.html", "--workers", "2"])
    assert code == 2 and "--html runs in one process" in capsys.readouterr().err


def test_html_into_a_missing_directory_fails_before_the_run(
    setup: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(setup[0]), "--html", str(tmp_path / "nope" / "r.html")])
    captured = capsys.readouterr()
    # an output error (exit 6), found before the run
    assert code == 6 and "no directory" in captured.err and captured.out == ""


def test_collector_keeps_first_packets_only(setup: tuple[Path, Path]) -> None:
    from e810pipe.build import ethernet_packets, setup_pipeline
    from e810pipe.cli import make_argparser

    pcap, rules = setup
    args = make_argparser().parse_args(["run", str(pcap), "--rules", str(rules)])
    pipe = setup_pipeline(args)
    col = ReportCollector(pipe, max_packets=3)
    for path, index, data in ethernet_packets([str(pcap)], []):
        col.add(path, index, data, pipe.process(data))
    assert col.packets == 82 and len(col.rows) == 3
    assert [r["index"] for r in col.rows] == [0, 1, 2]
    assert col.rows[0]["trace"].startswith("Packet 0:")


# ------------------------------------------------------------------ headless Chromium


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _browser(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = _chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (make system-deps installs it)")
        pytest.skip("chromium is not installed")
    profile = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


class _Dom(HTMLParser):
    """Bars of each chart, cells of each table, and the state of the packet rows."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: dict[str, list[tuple[str, int]]] = {}
        self.tables: dict[str, list[list[str]]] = {}
        self.hidden: dict[str, bool] = {}
        self.ids: dict[str, dict[str, str | None]] = {}
        self._chart: str | None = None
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        ident = a.get("id")
        if ident:
            self.ids[ident] = a
        if tag == "div" and ident and ident.startswith("chart-"):
            self._chart = ident
            self.bars[ident] = []
        if tag == "rect" and self._chart and "bar" in (a.get("class") or ""):
            self.bars[self._chart].append((a["data-label"] or "", int(a["data-value"] or 0)))
        if tag == "table" and ident:
            self._table = ident
            self.tables[ident] = []
        if tag == "tr" and self._table:
            self.tables[self._table].append([])
            if ident:
                self.hidden[ident] = "hidden" in a
        if tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._chart = None
        if tag == "table":
            self._table = None
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_report_renders_in_headless_chromium(run_outputs: dict, tmp_path: Path) -> None:
    html_path: Path = run_outputs["html"]
    rows = run_outputs["rows"]
    exp = _expected(rows)
    data = _report_data(html_path.read_text())
    url = html_path.resolve().as_uri()
    proc = _browser(tmp_path, "--dump-dom", url + "#packet-3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    assert dom.ids["report-data"] is not None
    body = re.search(r"<body[^>]*>", proc.stdout)
    assert body is not None and 'data-rendered="yes"' in body.group(0), "the script did not run"
    # charts: one bar per item, with the run's numbers
    queues = {int(lab.split()[1]): v for lab, v in dom.bars["chart-queues"]}
    assert queues == exp["queues"]
    assert dom.bars["chart-vsis"] == [("pf0", 77)]
    assert dict(dom.bars["chart-drops"]) == exp["drops"]
    rules = {int(lab.split()[1]): v for lab, v in dom.bars["chart-rules"]}
    assert rules == exp["rules"]
    ptypes = {int(lab.split()[0]): v for lab, v in dom.bars["chart-ptypes"]}
    assert ptypes == exp["ptypes"]
    assert [v for _lab, v in dom.bars["chart-rss-0"]] == data["rss"][0]["queues"]
    assert sum(v for _lab, v in dom.bars["chart-rss-0"]) == 61
    # tables
    table_q = {int(r[0]): int(r[3]) for r in dom.tables["table-queues"][1:]}
    assert table_q == exp["queues"]
    assert [r[2] for r in dom.tables["table-rss"][1:]] == ["61"]
    packets = dom.tables["packets"]
    pkt_rows = [r for r in packets[1:] if len(r) > 1]
    assert len(pkt_rows) == 50
    for k, r in enumerate(pkt_rows):
        assert r[0] == str(k) and r[1] == str(rows[k]["index"])
        assert r[3].split()[0] == str(rows[k]["ptype"])
    for key, value in (("read", 82), ("queued", 77), ("dropped", 5), ("skipped", 0)):
        assert f'id="total-{key}">{value}<' in proc.stdout
    # #packet-3 opened packet 3's trace, and only that one
    assert dom.hidden["trace-3"] is False
    assert all(dom.hidden[f"trace-{k}"] for k in range(50) if k != 3)
    # the parse graph is inline SVG when Graphviz is there
    if drawing.dot_available():
        assert "proto_eth" in dom.ids and "proto_vxlan" in dom.ids
    # a screenshot, to look at
    shot = tmp_path / "report.png"
    proc = _browser(tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 30_000  # a blank page compresses to a few kB


def test_the_packet_table_shows_marks(setup: tuple[Path, Path], tmp_path: Path) -> None:
    pcap, rules = setup
    html = tmp_path / "r.html"
    assert main(["run", str(pcap), "--rules", str(rules), "--html", str(html), "-q"]) == 0
    marks = re.findall(r'<td class="num mark">(\d*)</td>', html.read_text())
    assert len(marks) == 82  # fd rule 0 marks its 7 VXLAN packets 11; dropped ones: none
    assert marks[60:67] == ["11"] * 7 and set(marks[:60] + marks[67:]) == {""}

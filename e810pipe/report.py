"""The HTML run report (``e810pipe run ... --html report.html``) and the progress bar hook.

The report is one self-contained file: inline CSS, inline JavaScript and inline SVG,
nothing fetched from the network. The counters (packets per queue and per VSI,
drops by reason, hits per rule, PTYPEs, RSS balance) are embedded as JSON and drawn
as bar charts by the inline script; the parse graph is the SVG of ``e810pipe graph``
(when Graphviz is installed); the packet table is plain HTML, and clicking a row
opens the packet's trace (``report.html#packet-N`` opens packet N's on load).

Per-packet data is collected only when ``--html`` is given, and traces only for the
first ``max_packets`` packets, so ordinary runs stay as fast as before.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from . import __version__
from .errors import E810PipeError, OutputError, UsageError
from .pipeline import Decision, Pipeline
from .progress import PCAP_RECORD, Progress, progress_for
from .trace import format_trace

MAX_PACKETS = 2000  # packets whose row and trace the report keeps


def add_run_options(p: argparse.ArgumentParser) -> None:
    """--html, --html-packets and --quiet for `run`."""
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML run report")
    p.add_argument(
        "--html-packets",
        type=int,
        default=MAX_PACKETS,
        metavar="N",
        help=f"packets listed with their traces in the report (default {MAX_PACKETS})",
    )
    p.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar on stderr (drawn on a tty)"
    )


# ------------------------------------------------------------------------ collecting


class ReportCollector:
    """Per-packet data for the report: rows and traces of the first packets, RSS picks."""

    def __init__(self, pipe: Pipeline, max_packets: int = MAX_PACKETS) -> None:
        self.pipe = pipe
        self.max_packets = max_packets
        self.rows: list[dict[str, Any]] = []
        self.packets = 0
        self.files: list[str] = []
        self.rss_queues: Counter[int] = Counter()  # device queue -> packets RSS put there
        self.edge_use: Counter[int] = Counter()  # parse-graph edge id -> packets that took it

    def add(self, path: str, index: int, data: bytes, dec: Decision) -> None:
        self.packets += 1
        for eid in dec.parse.edges:
            if eid >= 0:
                self.edge_use[eid] += 1
        if dec.queue is not None and dec.reason.startswith("rss:"):
            self.rss_queues[dec.queue] += 1
        if not self.files or self.files[-1] != path:
            self.files.append(path)
        if len(self.rows) >= self.max_packets:
            return
        res = dec.parse
        self.rows.append(
            {
                "file": path,
                "index": index,
                "len": len(data),
                "ptype": dec.ptype,
                "ptype_name": res.ptype_name,
                "status": res.status,
                "path": " / ".join(h.name for h in res.headers),
                "vsi": dec.vsi_name,
                "queue": dec.queue,
                "vsi_queue": dec.vsi_queue,
                "drop": dec.drop,
                "verdict": dec.drop_reason if dec.drop else dec.reason,
                "hits": " ".join(f"{b}:{r}" for b, r in dec.hits),
                "mark": dec.mark,
                "rss_hash": dec.rss_hash if dec.hashed else None,
                "trace": format_trace(self.pipe, dec, data, index),
            }
        )

    # -------------------------------------------------------------------- numbers

    def data(self, skipped: int = 0) -> dict[str, Any]:
        """The report's numbers (the same as the text summary's), as JSON-ready values."""
        pipe = self.pipe
        c = pipe.counters
        dev = pipe.device

        def vsi_of(q: int) -> Any:
            return next((v for v in dev.vsis if v.owns(q)), None)

        queues = []
        for q, n in sorted(c.per_queue.items()):
            v = vsi_of(q)
            queues.append(
                {
                    "queue": q,
                    "vsi": v.name if v else "?",
                    "vsi_queue": q - v.base_queue if v else q,
                    "packets": n,
                }
            )
        ptypes = []
        for pt, n in sorted(c.per_ptype.items()):
            name = pipe.package.ptypes[pt].name if pt in pipe.package.ptypes else "NO_PTYPE"
            ptypes.append({"ptype": pt, "name": name, "packets": n})
        rss = []
        for v in dev.vsis:
            counts = [self.rss_queues.get(v.absolute(q), 0) for q in range(v.num_queues)]
            total = sum(counts)
            if not total:
                continue
            mean = total / len(counts)
            std = math.sqrt(sum((x - mean) ** 2 for x in counts) / len(counts))
            rss.append(
                {
                    "vsi": v.name,
                    "queues": counts,
                    "packets": total,
                    "mean": round(mean, 3),
                    "stddev": round(std, 3),
                    "cv": round(std / mean, 4),
                    "min": min(counts),
                    "max": max(counts),
                    "max_over_mean": round(max(counts) / mean, 4),
                }
            )
        engines = Counter(e.engine for e in pipe.rules.values())
        return {
            "title": pipe.package.title,
            "version": __version__,
            "files": self.files,
            "device": {
                "pfs": len(dev.pfs),
                "vsis": len(dev.vsis),
                "queues": dev.total_queues,
                "rules": dict(sorted(engines.items())),
            },
            "totals": {
                "read": c.packets + skipped,
                "processed": c.packets,
                "queued": sum(c.per_queue.values()),
                "dropped": sum(c.drops.values()),
                "skipped": skipped,
                "listed": len(self.rows),
            },
            "queues": queues,
            "vsis": [{"vsi": k, "packets": n} for k, n in sorted(c.per_vsi.items())],
            "drops": [
                {"reason": r, "packets": n}
                for r, n in sorted(c.drops.items(), key=lambda kv: (-kv[1], kv[0]))
            ],
            "rules": [
                {
                    "id": rid,
                    "engine": e.engine,
                    "hits": e.hits,
                    "bytes": e.bytes,
                    "text": e.rule.source,
                }
                for rid, e in sorted(pipe.rules.items())
            ],
            "ptypes": ptypes,
            "rss": rss,
        }

    # -------------------------------------------------------------------- writing

    def graph_svg(self) -> tuple[str | None, str]:
        """The parse graph as inline SVG, or None and why not."""
        from .drawing import dot_available, draw_parser, inline_svg

        if not dot_available():
            return None, (
                "The parse-graph drawing needs Graphviz's dot, which is not installed "
                "(Debian: apt-get install graphviz); e810pipe graph -o FILE.dot writes the "
                "DOT text without it."
            )
        try:
            dot = draw_parser(self.pipe.parser, ptypes=False, edge_use=self.edge_use)
            return inline_svg(dot), ""
        except E810PipeError as err:  # pragma: no cover - dot failed
            return None, f"The parse graph could not be drawn: {err}"

    def html(self, skipped: int = 0) -> str:
        return render_html(self.data(skipped), self.rows, self.packets, self.graph_svg())

    def write(self, target: str, skipped: int = 0) -> None:
        text = self.html(skipped)
        try:
            Path(target).write_text(text, encoding="utf-8")
        except OSError as err:
            raise OutputError(f"--html {target}", err) from None


# ------------------------------------------------------------------------ the page

_CSS = """
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --bg:#f6f8fa; --bar:#1f6feb;
        --drop:#cf222e; --rss:#8250df; --user:#e65100; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       color: var(--fg); margin: 0; background: #fff; }
header { background: #24292f; color: #fff; padding: 14px 24px; }
header h1 { margin: 0; font-size: 20px; }
header p { margin: 2px 0 0; color: #c9d1d9; }
nav { padding: 6px 24px; background: var(--bg); border-bottom: 1px solid var(--line); }
nav a { margin-right: 14px; color: #0969da; text-decoration: none; }
main { padding: 8px 24px 40px; }
section { margin: 18px 0 26px; }
h2 { font-size: 17px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 12px 0 4px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 120px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap: 20px; }
.chart svg { display: block; max-width: 100%; }
.chart text { font-size: 12px; fill: var(--fg); }
.chart .bar { fill: var(--bar); }
.chart.drops .bar { fill: var(--drop); }
.chart.rss .bar { fill: var(--rss); }
.chart .mean { stroke: #000; stroke-dasharray: 3 3; }
.none { color: var(--muted); font-style: italic; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid var(--line); padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: var(--bg); position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
#packets tbody tr.pkt { cursor: pointer; }
#packets tbody tr.pkt:hover { background: #eef6ff; }
#packets tbody tr.pkt.drop td.verdict { color: var(--drop); }
#packets tbody tr.pkt.open { background: #ddf4ff; }
tr.trace pre { margin: 0; padding: 8px; background: var(--bg); font-size: 12px;
               white-space: pre-wrap; }
.note { background: #fff8c5; border: 1px solid #d4a72c; padding: 6px 10px; border-radius: 6px; }
#graph { overflow: auto; max-height: 85vh; border: 1px solid var(--line); }
#graph svg { width: 100%; height: auto; }
#graph.natural svg { width: auto; }
input[type=search] { padding: 4px 8px; width: 320px; margin-bottom: 8px; }
footer { color: var(--muted); padding: 10px 24px; border-top: 1px solid var(--line); }
"""

_JS = r"""
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function short(s, n) { return s.length > n ? s.slice(0, n - 1) + "\u2026" : s; }
  // a horizontal bar chart: items are [label, value, tooltip]
  function barChart(id, items, mean) {
    var host = document.getElementById(id);
    if (!host) return;
    if (!items.length) {
      var p = document.createElement("p");
      p.className = "none"; p.textContent = "none";
      host.appendChild(p); return;
    }
    var rowH = 20, W = 640, longest = 0;
    items.forEach(function (it) { longest = Math.max(longest, short(it[0], 46).length); });
    var labelW = Math.min(330, 16 + 7 * longest), barW = W - labelW - 70;
    var max = Math.max.apply(null, items.map(function (it) { return it[1]; })) || 1;
    var svg = el("svg", {width: W, height: items.length * rowH + 6, role: "img",
                         viewBox: "0 0 " + W + " " + (items.length * rowH + 6)});
    items.forEach(function (it, k) {
      var y = 3 + k * rowH, w = Math.max(it[1] > 0 ? 1 : 0, barW * it[1] / max);
      var g = el("g", {"class": "row"});
      g.appendChild(el("title", {}, it[2] || (it[0] + ": " + it[1])));
      g.appendChild(el("text", {x: labelW - 6, y: y + 13, "text-anchor": "end"},
                       short(it[0], 46)));
      g.appendChild(el("rect", {"class": "bar", x: labelW, y: y + 2, width: w.toFixed(1),
                                height: rowH - 6, "data-label": it[0], "data-value": it[1]}));
      g.appendChild(el("text", {"class": "value", x: labelW + w + 4, y: y + 13}, String(it[1])));
      svg.appendChild(g);
    });
    if (mean !== undefined) {
      var x = labelW + barW * mean / max;
      svg.appendChild(el("line", {"class": "mean", x1: x, x2: x, y1: 0,
                                  y2: items.length * rowH + 6}));
    }
    host.appendChild(svg);
    host.setAttribute("data-bars", String(items.length));
  }
  barChart("chart-queues", data.queues.map(function (q) {
    return ["queue " + q.queue + " (" + q.vsi + " q" + q.vsi_queue + ")", q.packets];
  }));
  barChart("chart-vsis", data.vsis.map(function (v) { return [v.vsi, v.packets]; }));
  barChart("chart-drops", data.drops.map(function (d) { return [d.reason, d.packets]; }));
  barChart("chart-rules", data.rules.map(function (r) {
    return ["rule " + r.id + " (" + r.engine + ")", r.hits, r.text];
  }));
  barChart("chart-ptypes", data.ptypes.map(function (p) {
    return [p.ptype + " " + p.name, p.packets];
  }));
  data.rss.forEach(function (r, i) {
    barChart("chart-rss-" + i, r.queues.map(function (n, q) { return ["q" + q, n]; }), r.mean);
  });
  // the packet table: a click opens the packet's trace
  function toggle(row, open) {
    var tr = document.getElementById("trace-" + row.getAttribute("data-row"));
    if (!tr) return;
    if (open === undefined) open = tr.hidden;
    tr.hidden = !open;
    row.classList.toggle("open", open);
  }
  var body = document.querySelector("#packets tbody");
  if (body) body.addEventListener("click", function (ev) {
    var row = ev.target.closest("tr.pkt");
    if (row) toggle(row);
  });
  var search = document.getElementById("filter");
  if (search) search.addEventListener("input", function () {
    var q = search.value.toLowerCase();
    document.querySelectorAll("#packets tr.pkt").forEach(function (row) {
      var show = !q || row.textContent.toLowerCase().indexOf(q) >= 0;
      row.hidden = !show;
      if (!show) toggle(row, false);
    });
  });
  function fromHash() {
    var m = /^#packet-(\d+)$/.exec(location.hash);
    if (!m) return;
    var row = document.getElementById("packet-" + m[1]);
    if (row) { toggle(row, true); row.scrollIntoView(); }
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
  var graph = document.getElementById("graph");
  if (graph) graph.addEventListener("dblclick", function () {
    graph.classList.toggle("natural");
  });
  document.body.setAttribute("data-rendered", "yes");
})();
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _json_script(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), sort_keys=False)
    # nothing inside may close the <script> element
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _table(head: Sequence[tuple[str, bool]], rows: Sequence[Sequence[Any]], tid: str) -> str:
    th = "".join(f"<th{' class=num' if num else ''}>{_e(h)}</th>" for h, num in head)
    body = []
    for row in rows:
        cells = "".join(
            f"<td{' class=num' if num else ''}>{_e(v)}</td>" for (_h, num), v in zip(head, row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<table id="{tid}"><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def render_html(
    data: dict[str, Any],
    rows: list[dict[str, Any]],
    packets: int,
    graph: tuple[str | None, str],
) -> str:
    t = data["totals"]
    dev = data["device"]
    files = ", ".join(Path(f).name for f in data["files"]) or "no packets"
    rules = ", ".join(f"{k} {v}" for k, v in dev["rules"].items()) or "none"
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n")
    w('<meta name="viewport" content="width=device-width, initial-scale=1">\n')
    w(f"<title>e810pipe run: {_e(files)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n")
    w(f"<header><h1>e810pipe run report</h1><p>{_e(files)} &middot; {_e(data['title'])} ")
    w(
        f"&middot; {dev['pfs']} PF(s), {dev['vsis']} VSI(s), {dev['queues']} queue(s) "
        f"&middot; rules: {_e(rules)}</p></header>\n"
    )
    w(
        '<nav><a href="#summary">summary</a><a href="#queues">queues and VSIs</a>'
        '<a href="#drops">drops</a><a href="#rules">rules</a><a href="#ptypes">PTYPEs</a>'
        '<a href="#rss">RSS balance</a><a href="#parse-graph">parse graph</a>'
        '<a href="#packet-list">packets</a></nav>\n<main>\n'
    )
    # summary
    w('<section id="summary"><h2>Summary</h2><div class="cards">')
    for key, label in (
        ("read", "packets read"),
        ("queued", "to queues"),
        ("dropped", "dropped"),
        ("skipped", "skipped (not Ethernet)"),
    ):
        w(f'<div class="card"><b id="total-{key}">{t[key]}</b><span>{label}</span></div>')
    w("</div></section>\n")
    # queues and VSIs
    w('<section id="queues"><h2>Packets per queue and per VSI</h2><div class="grid">')
    w('<div><h3>per device queue</h3><div class="chart" id="chart-queues"></div>')
    w(
        _table(
            [("queue", True), ("VSI", False), ("VSI queue", True), ("packets", True)],
            [(q["queue"], q["vsi"], q["vsi_queue"], q["packets"]) for q in data["queues"]],
            "table-queues",
        )
    )
    w('</div><div><h3>per VSI</h3><div class="chart" id="chart-vsis"></div>')
    w(
        _table(
            [("VSI", False), ("packets", True)],
            [(v["vsi"], v["packets"]) for v in data["vsis"]],
            "table-vsis",
        )
    )
    w("</div></div></section>\n")
    # drops
    w('<section id="drops"><h2>Drops by reason</h2><div class="chart drops" id="chart-drops">')
    w("</div></section>\n")
    # rules
    w('<section id="rules"><h2>Hits per rule</h2><div class="chart" id="chart-rules"></div>')
    if data["rules"]:
        w(
            _table(
                [("rule", True), ("engine", False), ("hits", True), ("bytes", True)]
                + [("rule text", False)],
                [(r["id"], r["engine"], r["hits"], r["bytes"], r["text"]) for r in data["rules"]],
                "table-rules",
            )
        )
    w("</section>\n")
    # PTYPEs
    w('<section id="ptypes"><h2>PTYPE breakdown</h2><div class="chart" id="chart-ptypes">')
    w("</div></section>\n")
    # RSS balance
    w('<section id="rss"><h2>RSS balance across queues</h2>')
    w(
        "<p>Packets whose queue the RSS lookup table chose (not a rule), per queue of "
        "their VSI. An even spread has a coefficient of variation (stddev / mean) near 0 "
        "and max / mean near 1; the dashed line is the mean.</p>"
    )
    if data["rss"]:
        w(
            _table(
                [("VSI", False), ("queues", True), ("RSS packets", True), ("mean", True)]
                + [("stddev", True), ("CV", True), ("min", True), ("max", True)]
                + [("max / mean", True)],
                [
                    (
                        r["vsi"],
                        len(r["queues"]),
                        r["packets"],
                        f"{r['mean']:.2f}",
                        f"{r['stddev']:.2f}",
                        f"{r['cv']:.3f}",
                        r["min"],
                        r["max"],
                        f"{r['max_over_mean']:.3f}",
                    )
                    for r in data["rss"]
                ],
                "table-rss",
            )
        )
        w('<div class="grid">')
        for i, r in enumerate(data["rss"]):
            w(f'<div><h3>{_e(r["vsi"])}</h3><div class="chart rss" id="chart-rss-{i}"></div></div>')
        w("</div>")
    else:
        w('<p class="none">No packet was steered by RSS.</p>')
    w("</section>\n")
    # parse graph
    svg, why = graph
    w('<section id="parse-graph"><h2>Parse graph</h2>')
    if svg is not None:
        w("<p>Orange: added by user profiles. Hover a protocol for its fields; ")
        w("double-click to toggle between fitting the page and natural size.</p>")
        w(f'<div id="graph">{svg}</div>')
    else:
        w(f'<p class="note" id="graph-missing">{_e(why)}</p>')
    w("</section>\n")
    # packets
    several = len(data["files"]) > 1
    w('<section id="packet-list"><h2>Packets</h2>')
    if len(rows) < packets:
        w(
            f'<p class="note" id="truncated">The table lists the first {len(rows)} of '
            f"{packets} packets (--html-packets N changes how many).</p>"
        )
    w(
        '<input type="search" id="filter" placeholder="filter: queue, PTYPE, drop, rule...">'
        "<p>Click a packet to open its trace.</p>"
    )
    head = ["#", "file"] if several else ["#"]
    head += ["index", "len", "PTYPE", "status", "headers", "VSI", "queue", "mark", "verdict"]
    head.append("hits")
    nums = {"#", "index", "len", "queue", "mark"}
    w('<table id="packets"><thead><tr>')
    w("".join(f"<th{' class=num' if h in nums else ''}>{_e(h)}</th>" for h in head))
    w("</tr></thead><tbody>\n")
    for k, r in enumerate(rows):
        queue = "" if r["queue"] is None else f"{r['queue']} ({r['vsi_queue']})"
        cells = [str(k)]
        if several:
            cells.append(_e(Path(r["file"]).name))
        cells += [
            str(r["index"]),
            str(r["len"]),
            f"{r['ptype']} {_e(r['ptype_name'])}",
            _e(r["status"]),
            _e(r["path"]),
            _e(r["vsi"] or ""),
            queue,
            "" if r["mark"] is None else str(r["mark"]),
            _e(r["verdict"]),
            _e(r["hits"]),
        ]
        tds = "".join(
            f'<td class="{"num " if h in nums else ""}{h.lower()}">{c}</td>'
            for h, c in zip(head, cells)
        )
        cls = "pkt drop" if r["drop"] else "pkt"
        qattr = "" if r["queue"] is None else f' data-queue="{r["queue"]}"'
        w(
            f'<tr class="{cls}" id="packet-{k}" data-row="{k}" data-ptype="{r["ptype"]}"'
            f"{qattr}>{tds}</tr>\n"
        )
        w(
            f'<tr class="trace" id="trace-{k}" hidden><td colspan="{len(head)}">'
            f"<pre>{_e(r['trace'])}</pre></td></tr>\n"
        )
    w("</tbody></table></section>\n</main>\n")
    w(f"<footer>e810pipe {_e(data['version'])}</footer>\n")
    w(f'<script type="application/json" id="report-data">{_json_script(data)}</script>\n')
    w(f"<script>{_JS}</script>\n</body>\n</html>\n")
    return "".join(out)


# ------------------------------------------------------------------------ the run hook


class RunExtras:
    """What `run` does per packet for --html and the progress bar."""

    def __init__(
        self,
        report: ReportCollector | None,
        progress: Progress | None,
        html_path: str | None,
        trace: int | None = None,
    ) -> None:
        self.report = report
        self.progress = progress
        self.html_path = html_path
        self.trace = trace

    def packet(self, path: str, index: int, data: bytes, dec: Decision) -> None:
        if self.report is not None:
            self.report.add(path, index, data, dec)
        if self.progress is not None:
            self.progress.advance(1, len(data) + PCAP_RECORD)
            if index == self.trace:
                self.progress.clear()  # --trace writes to stderr next

    def close(self) -> None:
        """Erase the progress bar (also when the run fails)."""
        if self.progress is not None:
            self.progress.close()

    def finish(self, skipped: int) -> None:
        """Write the report after a complete run."""
        self.close()
        if self.report is not None and self.html_path is not None:
            self.report.write(self.html_path, skipped)


def run_extras(
    args: argparse.Namespace, pipe: Pipeline, stream: TextIO | None = None
) -> RunExtras | None:
    """The per-packet hook of `run` for --html and the progress bar, or None if neither."""
    html_path = getattr(args, "html", None)
    report = None
    if html_path:
        limit = getattr(args, "html_packets", MAX_PACKETS)
        if limit < 0:
            raise UsageError(f"--html-packets {limit}: give 0 or more")
        folder = Path(html_path).parent
        if not folder.is_dir():  # say so before the run, not after it
            raise OutputError(f"--html {html_path}", f"no directory {folder}")
        report = ReportCollector(pipe, limit)
    progress = progress_for(
        args.pcap, stream if stream is not None else sys.stderr, getattr(args, "quiet", False)
    )
    if report is None and progress is None:
        return None
    return RunExtras(report, progress, html_path, getattr(args, "trace", None))


def check_parallel(args: argparse.Namespace) -> None:
    """--html collects per-packet data in one process: refuse --workers/--dask with it."""
    if getattr(args, "html", None):
        raise UsageError("--html runs in one process: leave out --workers and --dask")


__all__ = [
    "MAX_PACKETS",
    "ReportCollector",
    "RunExtras",
    "add_run_options",
    "check_parallel",
    "render_html",
    "run_extras",
]

"""Scenario files: profiles, device and rules, packets, and where each packet must land.

A scenario is a YAML file (schema in the README, "Scenarios"). Running it builds a
pipeline, sends the packets (captures first, then inline packets, numbered from 0)
and checks each expectation. Results are values the command line, the pytest
plugin and the JSON output all share.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .control import Setup, _read_yaml_doc, configure, read_rules_text
from .errors import E810PipeError
from .fields import FieldCatalog, read_field
from .inputs import clip
from .layerspec import LayerSpecError, build
from .package import load_package
from .pcapio import LINKTYPE_ETHERNET, iter_packets
from .pipeline import Decision, Pipeline
from .trace import format_trace
from .yamlfile import ConfigError, Located, load

SCENARIO_KEYS = (
    "name", "profiles", "device", "tunnel_ports", "dvm", "rss", "pipeline", "rules",
    "rules_files", "pcaps", "packets", "expect", "queues", "drops", "window",
)  # fmt: skip
CHECK_KEYS = ("queue", "vsi_queue", "vsi", "drop", "drop_reason", "mark", "ptype", "hits")
SELECT_KEYS = ("packet", "packets", "name", "match")
MAX_PACKETS = 1_000_000  # packets one scenario sends (captures and inline packets)
RULES_SUFFIXES = (".txt", ".rules", ".testpmd", ".cmd")  # testpmd text in rules_files


@dataclass
class Sent:
    index: int
    name: str | None
    data: bytes
    origin: str  # "file.pcap#3" or "scenario.yaml:12"
    decision: Decision | None = None


@dataclass
class Expectation:
    label: str
    where: str
    select: dict[str, Any]
    checks: dict[str, Any]
    node: Located


@dataclass
class Outcome:
    expectation: str
    where: str
    passed: bool
    expected: Any
    actual: Any
    packets: list[int] = field(default_factory=list)
    failing: int | None = None  # first failing packet index

    def to_json(self, scenario: str) -> dict:
        return {
            "scenario": scenario,
            "expectation": self.expectation,
            "passed": self.passed,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass
class Scenario:
    path: str
    name: str
    pipe: Pipeline
    sent: list[Sent]
    expectations: list[Expectation]
    queue_counts: dict[Any, int] | None
    drops: int | None
    doc: Located

    # ------------------------------------------------------------------ running

    def run(self) -> list[Outcome]:
        for s in self.sent:
            if s.decision is None:
                s.decision = self.pipe.process(s.data)
        outcomes = [self.check(e) for e in self.expectations]
        if self.queue_counts is not None:
            actual = dict(sorted(self.pipe.counters.per_queue.items()))
            want: dict[Any, int] = dict(self.queue_counts)
            rest = want.pop("*", None)
            got: dict[Any, int] = {q: actual.get(q, 0) for q in want}
            others = {q: n for q, n in actual.items() if q not in want and n}
            if rest is None:
                ok = got == want and not others
                shown = {**got, **others}
            else:  # "*": all the other queues together
                ok = got == want and sum(others.values()) == rest
                shown = {**got, "*": sum(others.values())}
                want = {**want, "*": rest}
            outcomes.append(Outcome("per-queue counts", self.doc_where("queues"), ok, want, shown))
        if self.drops is not None:
            n = sum(self.pipe.counters.drops.values())
            outcomes.append(
                Outcome("drops", self.doc_where("drops"), n == self.drops, self.drops, n)
            )
        return outcomes

    def doc_where(self, key: str) -> str:
        node = self.doc.get(key)
        return node.where if node is not None else self.path

    def selected(self, exp: Expectation) -> list[Sent]:
        sel = exp.select
        out = list(self.sent)
        if "packet" in sel:
            out = [s for s in out if s.index == sel["packet"]]
        if "packets" in sel:
            wanted = _indexes(sel["packets"], exp.node)
            out = [s for s in out if s.index in wanted]
        if "name" in sel:
            out = [s for s in out if s.name == sel["name"]]
        if "match" in sel:
            out = [s for s in out if self._matches(s, sel["match"], exp.node)]
        return out

    def _matches(self, s: Sent, crit: dict[str, Any], node: Located) -> bool:
        assert s.decision is not None
        res = s.decision.parse
        names = [h.name for h in res.headers]
        for key, want in crit.items():
            if key == "headers":
                if names != list(want):
                    return False
            elif key == "has":
                # a protocol as rules name it: its name, its header name or the rte_flow
                # item (icmp6, vxlan-gpe, nvgre) that stands for it
                from .engine import item_protocols

                wanted = [want] if isinstance(want, str) else list(want)
                pkg = self.pipe.package
                if not all(
                    w in names or any(p in names for p in item_protocols(pkg, str(w)))
                    for w in wanted
                ):
                    return False
            elif key == "ptype":
                if res.ptype != want:
                    return False
            else:  # a field, e.g. gre.protocol or inner.ipv4.dst
                level = 1 if key.startswith("inner.") else 0
                fd = self.catalog.get(key.removeprefix("inner."))
                if fd is None:
                    raise node.error(f"match: unknown field '{key}'")
                pid = self.catalog.proto_id(fd, level)
                po = dict(res.po)
                got = read_field(s.data, po, pid, fd) if pid is not None else None
                if got is None or got != _value(want):
                    return False
        return True

    @property
    def catalog(self) -> FieldCatalog:
        return self.pipe.compiler.catalog

    def check(self, exp: Expectation) -> Outcome:
        packets = self.selected(exp)
        if not packets:
            return Outcome(exp.label, exp.where, False, exp.checks, "no packet selected")
        for s in packets:
            assert s.decision is not None
            actual = self.actual(s.decision, exp.checks)
            for key, want in exp.checks.items():
                if not _same(key, want, actual[key], self.pipe):
                    return Outcome(
                        exp.label,
                        exp.where,
                        False,
                        exp.checks,
                        actual,
                        [p.index for p in packets],
                        s.index,
                    )
        return Outcome(
            exp.label,
            exp.where,
            True,
            exp.checks,
            self.actual(packets[0].decision, exp.checks),  # type: ignore[arg-type]
            [p.index for p in packets],
        )

    def actual(self, d: Decision, keys: Iterable[str]) -> dict[str, Any]:
        values = {
            "queue": d.queue,
            "vsi_queue": d.vsi_queue,
            "vsi": d.vsi_name,
            "drop": d.drop,
            "drop_reason": d.drop_reason,
            "mark": d.mark,
            "ptype": d.ptype,
            "hits": [r for _, r in d.hits],
        }
        return {k: values[k] for k in keys}

    def trace(self, index: int) -> str:
        s = self.sent[index]
        assert s.decision is not None
        return format_trace(self.pipe, s.decision, s.data, index)


def _value(v: Any) -> Any:
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            import ipaddress

            try:
                return int(ipaddress.ip_address(v))
            except ValueError:
                return v
    return v


def _same(key: str, want: Any, got: Any, pipe: Pipeline) -> bool:
    if key == "ptype" and isinstance(want, str):
        return pipe.package.ptypes.get(got) is not None and pipe.package.ptypes[got].name == want
    if key == "drop_reason" and isinstance(want, str):
        return got is not None and want in got
    if key == "vsi" and isinstance(want, int):
        return (
            got is not None
            and pipe.device.find_vsi(str(want)) is not None
            and (pipe.device.vsi(want).name == got)
        )
    if key == "hits":
        return sorted(got) == sorted(want if isinstance(want, list) else [want])
    return bool(want == got)


def _indexes(spec: Any, node: Located) -> set[int] | range:
    """The packet indexes `spec` selects: an index, a list of them, or 'A..B' (a
    range object: 0..999999999999 costs nothing)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        return {spec}
    if isinstance(spec, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in spec):
        return set(spec)
    m = re.fullmatch(r"\s*(\d{1,20})\s*\.\.\s*(\d{1,20})\s*", str(spec))
    if m is None:
        raise node.error(
            f"packets: give an index, a list of indexes or a range 'A..B', not {clip(repr(spec))}"
        )
    return range(int(m.group(1)), int(m.group(2)) + 1)


# --------------------------------------------------------------------- loading


def load_scenario(path: str | Path) -> Scenario:
    """Read and set up a scenario; raises located errors for bad input."""
    path = str(path)
    doc = load(path)
    base = Path(path).parent
    if not isinstance(doc.value, dict):
        raise doc.error("a scenario is a mapping; see the README, 'Scenarios'")
    for key, _ in doc.items():
        if key not in SCENARIO_KEYS:
            raise doc.key_error(key, f"unknown key '{key}'; expected {', '.join(SCENARIO_KEYS)}")
    name_node = doc.get("name")
    name = str(name_node.value) if name_node is not None else Path(path).stem
    # profiles: names of stock packages, or paths relative to the scenario
    refs: list[str] = ["os-default"]
    prof = doc.get("profiles")
    if prof is not None:
        refs = []
        for p in prof.list() if isinstance(prof.value, list) else [prof]:
            ref = str(p.value)
            local = base / ref
            refs.append(str(local) if local.is_file() else ref)
    try:
        package = load_package(refs)
    except E810PipeError as err:
        raise (prof or doc).error(f"cannot load profiles: {err}") from None
    setup = Setup(protocols=frozenset(package.protocols))
    # rules files first, then the scenario's own rules, in order
    for rf in doc.list_of("rules_files"):
        rpath = base / str(rf.value)
        if not rpath.is_file():
            raise rf.error(f"no rules file {rpath}")
        if rpath.suffix in (".yaml", ".yml"):
            _read_yaml_doc(setup, load(rpath), str(rpath))
        elif rpath.suffix in RULES_SUFFIXES:
            setup.commands.extend((c, {}) for c in read_rules_text(rpath, setup.protocols))
        else:  # errors would quote lines of a file that is not a rules file
            raise rf.error(
                f"rules_files: {clip(str(rf.value))} is not a rules file; name testpmd "
                f"text {', '.join(RULES_SUFFIXES)} and YAML .yaml"
            )
    _read_yaml_doc(setup, doc, path)
    win = doc.get("window")
    window: int | None = win.require(int, "bytes") if win else None
    if win is not None and window is not None and not 14 <= window <= 65535:
        raise win.error(f"window {window}: use 14..65535 bytes")
    pipe, _ = configure(package, setup, window=window)
    sent = _packets(doc, base)
    exps = _expectations(doc)
    queues = doc.get("queues")
    counts: dict[Any, int] | None = None
    if queues is not None:
        counts = {}
        for k, v in queues.items():
            if k == "*":
                counts["*"] = v.require(int, "a packet count")
                continue
            if not str(k).isdigit():
                raise queues.key_error(k, "queues: keys are device queue numbers, or '*'")
            counts[int(k)] = v.require(int, "a packet count")
    drops = doc.get("drops")
    return Scenario(
        path,
        name,
        pipe,
        sent,
        exps,
        counts,
        drops.require(int, "a packet count") if drops else None,
        doc,
    )


def _packets(doc: Located, base: Path) -> list[Sent]:
    sent: list[Sent] = []
    for p in doc.list_of("pcaps"):
        ppath = base / str(p.value)
        if not ppath.is_file():
            raise p.error(f"no capture {ppath}")
        for pkt in iter_packets(ppath):
            if pkt.linktype != LINKTYPE_ETHERNET:
                raise p.error(
                    f"{ppath} packet {pkt.index}: link type {pkt.linktype} is not Ethernet"
                )
            if len(sent) >= MAX_PACKETS:
                raise p.error(f"a scenario sends at most {MAX_PACKETS} packets in all")
            sent.append(Sent(len(sent), None, pkt.data, f"{p.value}#{pkt.index}"))
    for item in doc.list_of("packets"):
        if isinstance(item.value, str):
            item = Located({"scapy": item}, item.path, item.line, item.column)
        if not isinstance(item.value, dict):
            raise item.error("a packet is {hex: ...} or {scapy: ...} (with an optional name)")
        for key, _ in item.items():
            if key not in ("hex", "scapy", "name", "count"):
                raise item.key_error(key, f"unknown packet key '{key}'; use hex, scapy, name")
        nm = item.get("name")
        hx, sc = item.get("hex"), item.get("scapy")
        if (hx is None) == (sc is None):
            raise item.error("give exactly one of 'hex' or 'scapy'")
        if hx is not None:
            text = re.sub(r"[\s:]", "", str(hx.value))
            try:
                data = bytes.fromhex(text)
            except ValueError:
                raise hx.error("not hex bytes") from None
        else:
            assert sc is not None
            try:
                data = build(str(sc.value))
            except LayerSpecError as err:
                col = sc.column + (err.column - 1 if err.column else 0)
                raise ConfigError(err.message, sc.path, sc.line, col) from None
        cnt = item.get("count")
        count = cnt.require(int, "a count") if cnt else 1
        if cnt is not None and not 1 <= count <= MAX_PACKETS - len(sent):
            raise cnt.error(
                f"count {count}: a scenario sends 1..{MAX_PACKETS} packets in all "
                f"({len(sent)} before this one)"
            )
        for _ in range(count):
            sent.append(Sent(len(sent), str(nm.value) if nm else None, data, item.where))
    if not sent:
        raise doc.error("a scenario needs packets: 'pcaps' or 'packets'")
    return sent


def _expectations(doc: Located) -> list[Expectation]:
    out: list[Expectation] = []
    exp = doc.get("expect")
    for i, e in enumerate(exp.list() if exp is not None else []):
        if not isinstance(e.value, dict):
            raise e.error("an expectation is a mapping, e.g. {packet: 0, queue: 3}")
        select: dict[str, Any] = {}
        checks: dict[str, Any] = {}
        for key, v in e.items():
            if key in SELECT_KEYS:
                select[key] = v.plain()
            elif key in CHECK_KEYS:
                checks[key] = v.plain()
            else:
                raise e.key_error(
                    key,
                    f"unknown expectation key '{key}'; select with {', '.join(SELECT_KEYS)} "
                    f"and check {', '.join(CHECK_KEYS)}",
                )
        if not checks:
            raise e.error(f"expectation {i} checks nothing; give one of {', '.join(CHECK_KEYS)}")
        sel_txt = ", ".join(f"{k} {v}" for k, v in select.items()) or "all packets"
        chk_txt = ", ".join(f"{k} {v}" for k, v in checks.items())
        out.append(Expectation(f"{sel_txt}: {chk_txt}", e.where, select, checks, e))
    return out


def summarize(outcomes: list[Outcome]) -> Counter:
    return Counter("pass" if o.passed else "fail" for o in outcomes)


# ------------------------------------------------------------------ reporting


def format_outcomes(sc: Scenario, outcomes: list[Outcome], verbose: bool = False) -> str:
    """A pass/fail table; for each failure expected against actual, then one trace."""
    lines = [f"{sc.path}: {sc.name} ({len(sc.sent)} packets)"]
    first_fail: Outcome | None = None
    for o in outcomes:
        mark = "PASS" if o.passed else "FAIL"
        count = f"  ({len(o.packets)} packets)" if o.packets else ""
        lines.append(f"  {mark}  {o.expectation}{count}")
        if not o.passed:
            lines.append(f"        at {o.where}")
            lines.append(f"        expected: {o.expected}")
            lines.append(f"        actual:   {o.actual}")
            if o.failing is not None:
                s = sc.sent[o.failing]
                lines.append(f"        first failing packet: {o.failing} ({s.origin})")
            if first_fail is None:
                first_fail = o
    c = summarize(outcomes)
    lines.append(f"  {c['pass']} passed, {c['fail']} failed")
    from .analysis import analyze  # rule warnings: shadowed, overlapping, unproducible

    for finding in analyze(sc.pipe):
        lines.append(f"  {finding}")
    if first_fail is not None and first_fail.failing is not None:
        lines.append("")
        lines.append(f"trace of packet {first_fail.failing}:")
        lines.extend("  " + ln for ln in sc.trace(first_fail.failing).splitlines())
    return "\n".join(lines)

"""DPDK DTS cases, run through the testpmd console and judged as DTS judges them.

A case (one JSON object per line, format in ``tests/data/dts/README.md``) is a DTS
test method as data: testpmd's launch, setup commands, then steps (commands with the
answer DTS expects, packets sent by the tester with a check). Each case starts from
a fresh :class:`~e810pipe.console.Testpmd`; every command and packet goes through it
as text, and the checks read its output with regular expressions of the shape
DTS's ``tests/rte_flow_common.py`` uses, so the console's output format is checked
with the model's behaviour.
"""

from __future__ import annotations

import gzip
import json
import re
import shlex
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .console import Testpmd
from .errors import E810PipeError

# what testpmd prints when a command fails
_ERROR = re.compile(
    r"Bad arguments|port_flow_complain\(\)|Invalid port|Failed to create flow|"
    r"not found|No free counter|Please stop|Invalid argument"
)
_RX = re.compile(r"port (\d+)/queue (\d+): received (\d+) packets\n")
_PKT = re.compile(r"  src=.*?\n  ol_flags:.*?\n")
_HASH = re.compile(r"RSS hash=(0x[0-9a-f]+) - RSS queue=(0x[0-9a-f]+)")
_MARK = re.compile(r"FDIR matched ID=(0x[0-9a-f]+)")


@dataclass
class Rx:
    """One received packet as the verbose output shows it."""

    port: int
    queue: int
    hash: int | None
    mark: int | None


@dataclass
class CaseResult:
    id: str
    suite: str
    passed: bool
    step: int | None = None  # the failing step (0-based), None for setup
    reason: str = ""


@dataclass
class _State:
    saved: dict[str, list[int]] = field(default_factory=dict)
    records: dict[int, list[int]] = field(default_factory=dict)
    packets: dict[int, list[int | None]] = field(default_factory=dict)  # `hashes` records
    queues: dict[str, set[int]] = field(default_factory=dict)
    unlisted: set[tuple[int, int]] = field(default_factory=set)  # (port, rule) not listed


class CheckFailed(Exception):
    pass


def load_cases(path: str | Path) -> list[dict[str, Any]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def launch_args(case: dict[str, Any]) -> list[str]:
    """testpmd's launch line for a case (``launch``, else from ports, rxq, devargs)."""
    if case.get("launch"):
        args = shlex.split(case["launch"])
    else:
        devargs = "".join(f",{k}={v}" for k, v in (case.get("devargs") or {}).items())
        args = []
        for p in range(int(case.get("ports", 1))):
            args += ["-a", f"0000:18:00.{p}{devargs}"]
        rxq = int(case.get("rxq", 1))
        args += ["--", "-i", f"--rxq={rxq}", f"--txq={rxq}"]
    if case.get("profile") and case["profile"] != "os-default":
        args += ["--profile", case["profile"]]
    for vf in case.get("vfs") or ():
        spec = ",".join(
            f"{k}={'on' if v is True else 'off' if v is False else v}" for k, v in vf.items()
        )
        args += ["--vf", spec]
    # DTS's suites were written against testpmd before DPDK 25.07, whose rss-hash-key
    # command changed only the key (key_update in hash.py)
    if "--rss-key-keeps-types" not in args:
        args.append("--rss-key-keeps-types")
    if not any(a.startswith("--log-level") for a in args):
        args.append("--log-level=ice,7")  # DTS reads the engine from the PMD's log
    return args


def run_case(case: dict[str, Any]) -> CaseResult:
    cid, suite = case["id"], case.get("suite", "")
    try:
        tp = Testpmd(launch_args(case))
    except E810PipeError as err:
        return CaseResult(cid, suite, False, None, f"launch: {err}")
    for cmd in case.get("setup", ()):
        if (argv := _relaunch(cmd)) is not None:
            tp = Testpmd(argv)
            continue
        out = tp.execute(cmd)
        if "Bad arguments" in out:
            return CaseResult(cid, suite, False, None, f"setup {cmd!r}: {out.strip()}")
    state = _State()
    rxq = int(case.get("rxq", 1))
    for i, step in enumerate(case["steps"]):
        try:
            tp = _step(tp, step, state, rxq)
        except CheckFailed as err:
            return CaseResult(cid, suite, False, i, str(err))
        except E810PipeError as err:
            return CaseResult(cid, suite, False, i, f"{type(err).__name__}: {err}")
    return CaseResult(cid, suite, True)


def run_cases(cases: Iterable[dict[str, Any]]) -> Iterator[CaseResult]:
    for case in cases:
        yield run_case(case)


def _relaunch(cmd: str) -> list[str] | None:
    """The launch options of a step that starts testpmd again (DTS relaunches it)."""
    words = shlex.split(cmd)
    if words and words[0].endswith("testpmd"):
        return words[1:] + ["--log-level=ice,7"]
    return None


def _step(tp: Testpmd, step: dict[str, Any], st: _State, rxq: int) -> Testpmd:
    if "cmd" in step and (argv := _relaunch(step["cmd"])) is not None:
        return Testpmd(argv)
    _do_step(tp, step, st, rxq)
    return tp


def _do_step(tp: Testpmd, step: dict[str, Any], st: _State, rxq: int) -> None:
    if "cmd" in step:
        if step.get("if_listed") and _rule_of(step["cmd"]) in st.unlisted:
            return  # DTS destroys only the rules its helper listed
        out = tp.execute(step["cmd"])
        failed = bool(_ERROR.search(out))
        listed_if = step.get("listed_if")
        if listed_if and not failed:
            want = {"fd": 1, "switch": 2, "hash": 3, "acl": 4}[listed_if]
            m = re.search(r"Flow rule #(\d+) created", out)
            if m and f"Succeeded to create ({want}) flow" not in out:
                on = re.match(r"flow create (\d+)", step["cmd"])
                st.unlisted.add((int(on.group(1)) if on else 0, int(m.group(1))))
        msg = step.get("msg")
        if step.get("expect", "ok") == "ok":
            if failed:
                raise CheckFailed(f"{step['cmd']!r} was refused: {out.strip()[:300]}")
            if msg and not _msg_in(msg, out):
                raise CheckFailed(f"{step['cmd']!r}: expected {msg!r}, got {out.strip()[:300]}")
            engine = step.get("engine")
            if engine:
                want = {"fd": 1, "switch": 2, "hash": 3, "acl": 4}[engine]
                if f"Succeeded to create ({want}) flow" not in out:
                    raise CheckFailed(f"{step['cmd']!r}: not in engine {engine}: {out.strip()}")
        elif step.get("expect") == "any":
            # DTS only requires that this engine does not take the rule
            banned = step.get("engine_not")
            if banned and not failed:
                want = {"fd": 1, "switch": 2, "hash": 3, "acl": 4}[banned]
                if f"Succeeded to create ({want}) flow" in out:
                    raise CheckFailed(f"{step['cmd']!r}: taken by {banned}, which DTS refuses")
        else:
            if not failed:
                raise CheckFailed(f"{step['cmd']!r} was accepted; DTS expects {msg or 'an error'}")
            if msg and msg != "error" and not _msg_in(msg, out):
                raise CheckFailed(f"{step['cmd']!r}: expected {msg!r}, got {out.strip()[:300]}")
        return
    if "rules" in step:
        out = tp.execute(f"flow list {step.get('port', 0)}")
        n = len(re.findall(r"^\d+\t", out, re.M))
        if n != step["rules"]:
            raise CheckFailed(
                f"flow list {step.get('port', 0)}: {n} rule(s), expected {step['rules']}"
            )
        return
    if "query" in step:
        out = tp.execute(f"flow query {step.get('port', 0)} {step['query']} count")
        if step["hits"] is None:
            if "not found" not in out and "port_flow_complain" not in out:
                raise CheckFailed(f"rule {step['query']} still exists: {out.strip()}")
            return
        m = re.search(r"hits: (\d+)", out)
        if m is None or int(m.group(1)) != step["hits"]:
            raise CheckFailed(
                f"query {step['query']}: expected {step['hits']} hits, got {out.strip()}"
            )
        return
    if "send" in step:
        frames = [bytes.fromhex(h) for h in step["send"]]
        port = int(step.get("port", 0))
        if not tp.forwarding:
            tp.execute("start")  # DTS starts forwarding before it sends (send_and_check_packets)
        before = {n: (p.rx_packets, p.rx_dropped) for n, p in enumerate(tp.ports)}
        out = tp.inject(port, frames, wire=True)  # `port` is the PF whose wire they reach
        rx = parse_rx(out)
        drops = {n: p.rx_dropped - before[n][1] for n, p in enumerate(tp.ports)}
        _check(
            step["check"],
            step.get("param") or {},
            step.get("stats", True),
            frames,
            rx,
            drops,
            st,
            rxq,
            port,
        )
        return
    raise CheckFailed(f"unknown step {step}")


def _rule_of(cmd: str) -> tuple[int, int] | None:
    """(port, rule id) of a `flow destroy PORT rule ID` command."""
    m = re.match(r"flow destroy (\d+) rule (\d+)", cmd)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _msg_in(msg: str, out: str) -> bool:
    """Whether testpmd's output shows `msg`. ``#N`` stands for any rule number; a
    message that describes the answer rather than quoting it ("testpmd accepts it
    (function)") asks only that the command be accepted."""
    if msg.startswith("testpmd accepts"):
        return True
    if "#N" in msg:
        return re.search(re.escape(msg).replace("\\#N", r"#\d+"), out) is not None
    return msg in out


def parse_rx(out: str) -> list[Rx]:
    """The received packets of verbose output, in order."""
    pkts: list[Rx] = []
    pos = 0
    while (m := _RX.search(out, pos)) is not None:
        port, queue, n = int(m.group(1)), int(m.group(2)), int(m.group(3))
        pos = m.end()
        for _ in range(n):
            pm = _PKT.match(out, pos)
            if pm is None:
                break
            text = pm.group(0)
            h, mk = _HASH.search(text), _MARK.search(text)
            pkts.append(
                Rx(
                    port,
                    queue,
                    int(h.group(1), 16) if h else None,
                    int(mk.group(1), 16) if mk else None,
                )
            )
            pos = pm.end()
    return pkts


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def _by_rss(p: Rx, rxq: int) -> bool:
    return p.hash is not None and p.hash % rxq == p.queue


def _check(
    kind: str,
    param: dict[str, Any],
    stats: bool,
    frames: list[bytes],
    allrx: list[Rx],
    drops: dict[int, int],
    st: _State,
    rxq: int,
    send_port: int,
) -> None:
    sent = len(frames)
    raw_port = param.get("port_id", param.get("expect_port", param.get("send_port", send_port)))
    if isinstance(raw_port, list):
        raw_port = raw_port[0]  # port_rx with a list checks each port itself
    if not str(raw_port).isdigit() and kind == "check_no_hash":
        # a suite that passes a hash key where the port goes: DTS's pattern for "port
        # <key>/queue" finds no hash, so only "every Receive queue is 0" is checked
        _need(all(p.queue == 0 for p in allrx), f"expected queue 0 only: {allrx}")
        return
    port = int(raw_port)
    rx = [p for p in allrx if p.port == port]
    rxq = int(param.get("rxq", rxq))
    marks = [p.mark for p in rx if p.mark is not None]
    shown = (
        f"received {[(p.queue, hex(p.hash or 0), p.mark) for p in rx]}, dropped {drops.get(port)}"
    )
    if kind in ("mark", "mark_same_rss"):
        queues = param.get("queue")
        qset = set(queues if isinstance(queues, list) else [queues]) if queues is not None else None
        if stats:
            if param.get("drop"):
                _need(len(rx) == 0 and not marks, f"expected all dropped: {shown}")
            else:
                _need(len(rx) == sent, f"expected {sent} received: {shown}")
                if "mark_id" in param:
                    _need(
                        bool(marks)
                        and all(m == param["mark_id"] for m in marks)
                        and len(marks) == len(rx),
                        f"expected mark {param['mark_id']}: {shown}",
                    )
                else:
                    _need(not marks, f"expected no mark: {shown}")
                if qset is not None:
                    _need(
                        all(p.queue in qset for p in rx), f"expected queues {sorted(qset)}: {shown}"
                    )
                if param.get("rss"):
                    _need(
                        all(_by_rss(p, rxq) for p in rx if p.hash is not None),
                        f"expected directed by RSS: {shown}",
                    )
        else:
            _need(not marks, f"expected no mark: {shown}")
            if param.get("drop"):
                _need(drops.get(port, 0) == 0, f"expected none dropped: {shown}")
            else:
                _need(
                    all(_by_rss(p, rxq) for p in rx if p.hash is not None),
                    f"expected directed by RSS: {shown}",
                )
        if kind == "mark_same_rss":
            qs = {p.queue for p in rx}
            if "save" in param:
                st.queues[param["save"]] = qs
            if "same_as" in param:
                _need(qs == st.queues.get(param["same_as"]), f"RSS queues {qs} differ from saved")
        return
    if kind in ("queue", "in_queue_mismatched"):
        queues = param.get("queue", param.get("expect_queues"))
        qset = set(queues if isinstance(queues, list) else [queues])
        if kind == "queue" and stats:
            _need(
                len(rx) == sent and all(p.queue in qset for p in rx),
                f"expected on {sorted(qset)}: {shown}",
            )
        else:
            _need(
                all(p.queue not in qset or _by_rss(p, rxq) for p in rx),
                f"expected not on {sorted(qset)} (or by RSS): {shown}",
            )
            if kind == "in_queue_mismatched" and "expect_pkts" in param:
                _need(
                    len(rx) == param["expect_pkts"],
                    f"expected {param['expect_pkts']} received: {shown}",
                )
        return
    if kind == "drop":
        if stats:
            _need(len(rx) == 0 and drops.get(port, 0) == sent, f"expected all dropped: {shown}")
        else:
            _need(drops.get(port, 0) == 0, f"expected none dropped: {shown}")
        return
    if kind == "in_queue":
        queues = param["expect_queues"]
        qset = set(queues if isinstance(queues, list) else [queues])
        _need(
            len(rx) == param["expect_pkts"] and all(p.queue in qset for p in rx),
            f"expected {param['expect_pkts']} on {sorted(qset)}: {shown}",
        )
        return
    if kind == "port_drop":
        _need(len(rx) == 0, f"expected none received: {shown}")
        return
    if kind in ("port_rx", "port_rx_tx"):
        ports = param["expect_port"]
        want = param["expect_pkts"]
        pairs = zip(ports, want) if isinstance(ports, list) else [(ports, want)]
        for p, n in pairs:
            got = sum(1 for x in allrx if x.port == int(p))
            _need(got == n, f"expected {n} received on port {p}, got {got}: {shown}")
        return  # port_rx_tx: nothing is transmitted in rxonly, as DTS's cases expect
    if kind == "rss":
        if stats:
            _need(
                all(_by_rss(p, rxq) for p in rx if p.hash is not None),
                f"expected directed by RSS: {shown}",
            )
        else:
            _need(
                not any(_by_rss(p, rxq) for p in rx if p.hash is not None),
                f"expected not directed by RSS: {shown}",
            )
        return
    if kind == "iavf_mark":
        _iavf_mark(param, stats, sent, rx, drops.get(port, 0), rxq, shown, port)
        return
    if kind == "rx_no_mark":
        _need(
            len(rx) == param["expect_pkts"] and not marks,
            f"expected {param['expect_pkts']} unmarked: {shown}",
        )
        return
    if kind == "sent":
        return
    if kind == "hashes":
        _hashes(param, rx, sent, st, rxq, shown)
        return
    # RssProcessing checks: everything is received on the send port first
    hashes = [p.hash for p in rx if p.hash is not None]
    if kind == "rss_multi":
        for sub in param.get("checks", ()):
            _check(
                sub["check"],
                sub.get("param") or {},
                sub.get("stats", True),
                frames,
                allrx,
                drops,
                st,
                rxq,
                send_port,
            )
        rec = param.get("record")
        if rec is not None:
            st.records[int(rec)] = hashes
        for k in param.get("differ", ()):
            _need(
                not set(hashes) & set(st.records.get(int(k), [])),
                f"hashes equal record {k}: {shown}",
            )
        for k in param.get("same", ()):
            _need(hashes == st.records.get(int(k)), f"hashes differ from record {k}: {shown}")
        return
    _need(len(rx) == sent, f"expected {sent} received on port {port}: {shown}")
    key = param.get("key", "")
    no_hash = not hashes and all(p.queue == 0 for p in rx)
    if kind == "save_hash":
        _need(bool(hashes) and len(hashes) == len(rx), f"expected hashes: {shown}")
        _need(all(_by_rss(p, rxq) for p in rx), f"expected directed by RSS: {shown}")
        st.saved[key] = st.saved[""] = hashes  # DTS keeps it as the current hash too
        return
    if kind == "save_or_no_hash":
        if hashes:
            st.saved[key] = st.saved[""] = hashes
        return
    saved = st.saved.get(key, [])
    if kind == "check_hash_same":
        _need(
            bool(hashes) and all(h in saved for h in hashes) if key else hashes == saved,
            f"expected the saved hashes {[hex(h) for h in saved]}: {shown}",
        )
        return
    if kind == "check_hash_different":
        _need(
            bool(hashes) and not set(hashes) & set(saved),
            f"expected hashes other than {[hex(h) for h in saved]}: {shown}",
        )
        return
    if kind == "check_no_hash":
        _need(no_hash, f"expected no hash, queue 0: {shown}")
        return
    if kind == "check_no_hash_or_different":
        _need(
            no_hash or (bool(hashes) and not set(hashes) & set(saved)),
            f"expected no hash or other hashes: {shown}",
        )
        return
    raise CheckFailed(f"unknown check kind {kind!r}")


def _iavf_mark(
    param: dict[str, Any],
    stats: bool,
    sent: int,
    rx: list[Rx],
    dropped: int,
    rxq: int,
    shown: str,
    port: int,
) -> None:
    """``check_iavf_fdir_mark`` (see tests/data/dts/README.md)."""
    sent = int(param.get("pkt_num", sent))
    marks = [p.mark for p in rx if p.mark is not None]
    queue = param.get("queue")
    qset = set(queue if isinstance(queue, list) else [queue]) if queue is not None else None

    def queue_rule() -> None:
        _need(
            len(rx) == sent and all(p.queue in (qset or set()) for p in rx),
            f"expected {sent} on port {port} queues {sorted(qset or ())}: {shown}",
        )

    def passthru_rule() -> None:
        _need(
            len(rx) == sent and all(p.hash is not None and _by_rss(p, rxq) for p in rx),
            f"expected {sent} hashed and directed by RSS: {shown}",
        )

    if stats:
        if param.get("drop"):
            _need(len(rx) == 0 and not marks, f"expected all dropped: {shown}")
            return
        if "mark_id" in param:
            ids = param["mark_id"]
            ok = set(ids if isinstance(ids, list) else [ids])
            _need(
                len(marks) == len(rx) == sent and all(m in ok for m in marks),
                f"expected mark {param['mark_id']} on each of {sent}: {shown}",
            )
        else:
            _need(not marks, f"expected no mark: {shown}")
        if qset is not None:
            queue_rule()
        elif param.get("passthru"):
            passthru_rule()
        return
    _need(not marks, f"expected no mark: {shown}")
    if qset is not None:
        _need(
            len(rx) == sent and all(_by_rss(p, rxq) for p in rx if p.hash is not None),
            f"expected {sent} received, directed by RSS: {shown}",
        )
    elif param.get("drop"):
        _need(dropped == 0, f"expected none dropped: {shown}")
    elif param.get("passthru"):
        passthru_rule()


def _hashes(
    param: dict[str, Any], rx: list[Rx], sent: int, st: _State, rxq: int, shown: str
) -> None:
    """The hashes DTS reads inline (get_hash_and_queues): pairs of this send's packets,
    or of this send's and an earlier one's (by record number), equal or not."""
    _need(len(rx) == sent, f"expected {sent} received: {shown}")
    hs = [p.hash for p in rx]

    def pair(a: int | None, b: int | None, same: bool, what: str) -> None:
        _need(a is not None and b is not None, f"{what}: a packet shows no hash: {shown}")
        _need((a == b) == same, f"{what}: hashes {'differ' if same else 'equal'}: {shown}")

    for i, j in param.get("same", ()):
        pair(hs[i], hs[j], True, f"packets {i} and {j}")
    for i, j in param.get("differ", ()):
        pair(hs[i], hs[j], False, f"packets {i} and {j}")
    for i in param.get("hashed", ()):
        _need(hs[i] is not None, f"packet {i} shows no hash: {shown}")
    if param.get("rss"):
        _need(
            all(_by_rss(p, rxq) for p in rx if p.hash is not None),
            f"expected directed by RSS: {shown}",
        )
    for key, same in (("same_cross", True), ("differ_cross", False)):
        for i, n, j in param.get(key, ()):
            other = st.packets.get(int(n), [])
            pair(hs[i], other[j] if j < len(other) else None, same, f"packet {i} vs {n}:{j}")
    for n in param.get("same_as", ()):
        _need(hs == st.packets.get(int(n)), f"hashes differ from record {n}: {shown}")
    for n in param.get("differ_from", ()):
        _need(hs != st.packets.get(int(n)), f"hashes equal record {n}: {shown}")
    if param.get("record") is not None:
        st.packets[int(param["record"])] = hs


def summary(results: list[CaseResult]) -> str:
    by: dict[str, list[CaseResult]] = {}
    for r in results:
        by.setdefault(r.suite, []).append(r)
    lines = []
    for suite, rs in by.items():
        ok = sum(r.passed for r in rs)
        lines.append(f"{suite}: {ok}/{len(rs)} passed ({100 * ok / len(rs):.1f}%)")
        for r in rs:
            if not r.passed:
                where = "setup" if r.step is None else f"step {r.step}"
                reason = " ".join(r.reason.split())
                lines.append(f"  FAIL {r.id} ({where}): {reason[:200]}")
    return "\n".join(lines)


__all__ = [
    "CaseResult",
    "Rx",
    "launch_args",
    "load_cases",
    "parse_rx",
    "run_case",
    "run_cases",
    "summary",
]

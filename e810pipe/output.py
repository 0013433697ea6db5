"""Outputs of a run that several front ends share: the summary table and split pcaps."""

from __future__ import annotations

import json
from typing import TextIO

from .errors import OutputError
from .pcapio import PcapngWriter, PcapWriter
from .pipeline import Decision, Pipeline


class JsonLines:
    """`run --json` lines, byte for byte ``json.dumps(dec.to_json(index))`` (with "file"
    first when given), but each distinct decision is encoded once: the flow cache hands
    out the same Decision object for every packet of a flow, so only the index changes.
    """

    # Two generations of at most MEMO_SIZE entries each: when the young one is full it
    # becomes the old one; a hit in the old one moves back. Each entry keeps its Decision
    # alive, so the memo stays well below the flow cache's size.
    MEMO_SIZE = 1 << 13

    def __init__(self) -> None:
        self._young: dict[int, tuple[Decision, str]] = {}
        self._old: dict[int, tuple[Decision, str]] = {}

    def line(self, dec: Decision, index: int, file: str | None = None) -> str:
        key = id(dec)
        hit = self._young.get(key)
        if hit is None or hit[0] is not dec:
            hit = self._old.get(key)
            if hit is None or hit[0] is not dec:
                obj = dec.to_json(0)
                del obj["index"]
                hit = (dec, json.dumps(obj, separators=(",", ":"))[1:])
            if len(self._young) >= self.MEMO_SIZE:
                self._old, self._young = self._young, {}
            self._young[key] = hit
        if file is None:
            return f'{{"index":{index},{hit[1]}\n'
        return f'{{"file":{json.dumps(file)},"index":{index},{hit[1]}\n'


class Split:
    """One pcap per queue (queue-N.pcap, N the device queue) plus drop.pcap."""

    def __init__(self, directory: str) -> None:
        import os

        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as err:  # a file there, no permission, a read-only filesystem
            raise OutputError(f"--split {directory}", err) from None
        self.dir = directory
        self.writers: dict[str, PcapWriter] = {}

    def write(self, name: str, data: bytes, ts: float = 0.0) -> None:
        w = self.writers.get(name)
        if w is None:
            w = PcapWriter(f"{self.dir}/{name}.pcap")
            self.writers[name] = w
        w.write(data, ts)

    def close(self) -> None:
        """Close every file (each ends on a whole record); the first problem is raised."""
        problem: BaseException | None = None
        for w in self.writers.values():
            try:
                w.close()
            except BaseException as err:
                problem = problem or err
        if problem is not None:
            raise problem


def annotation(dec: Decision) -> str:
    """A packet's decision as ``key=value`` words, the comment ``run --annotate`` gives
    each packet: ``queue=5 vsi=pf0 mark=9 ptype=612 ptype_name=... rss_hash=0x...
    reason=...`` (queue: the device queue, as --split names it), or ``drop ...``."""
    words = ["drop"] if dec.drop else [f"queue={dec.queue}", f"vsi={dec.vsi_name}"]
    if dec.mark is not None:
        words.append(f"mark={dec.mark}")
    words.append(f"ptype={dec.ptype}")
    words.append(f"ptype_name={dec.parse.ptype_name}")
    if dec.hashed:
        words.append(f"rss_hash={dec.rss_hash:#010x}")
    reason = dec.drop_reason if dec.drop else dec.reason
    if reason:
        words.append(f"reason={reason}")
    return " ".join(words)


class Annotate:
    """`run --annotate OUT.pcapng`: every packet with its decision as its comment. A
    write error names the file (exit 6); the file ends on a whole block."""

    def __init__(self, path: str) -> None:
        self.writer = PcapngWriter(path)

    def write(self, data: bytes, ts: float, comment: str) -> None:
        self.writer.write(data, ts, comment=comment)

    def close(self) -> None:
        self.writer.close()


def write_summary(pipe: Pipeline, out: TextIO, skipped: int) -> None:
    c = pipe.counters
    dev = pipe.device
    engines: dict[str, int] = {}
    for e in pipe.rules.values():
        engines[e.engine] = engines.get(e.engine, 0) + 1
    out.write(
        f"# {pipe.package.title}; {len(dev.pfs)} PF(s), {len(dev.vsis)} VSI(s), "
        f"{dev.total_queues} queue(s); rules: "
        + (", ".join(f"{k} {v}" for k, v in sorted(engines.items())) or "none")
        + "\n"
    )
    dropped = sum(c.drops.values())
    queued = sum(c.per_queue.values())
    out.write(
        f"packets: {c.packets + skipped} read, {queued} to queues, {dropped} dropped, "
        f"{skipped} skipped (not Ethernet)\n"
    )
    out.write("\nper queue:\n  queue  vsi            vsi-queue  packets\n")
    for q, n in sorted(c.per_queue.items()):
        v = next((x for x in dev.vsis if x.owns(q)), None)
        name = v.name if v else "?"
        rel = q - v.base_queue if v else q
        out.write(f"  {q:>5}  {name:<14} {rel:>9}  {n:>7}\n")
    out.write("\nper VSI:\n")
    for name, n in sorted(c.per_vsi.items()):
        out.write(f"  {name:<14} {n:>7}\n")
    out.write("\ndrops by reason:\n")
    for reason, n in sorted(c.drops.items(), key=lambda kv: -kv[1]):
        out.write(f"  {n:>7}  {reason}\n")
    if not c.drops:
        out.write("  none\n")
    out.write("\nhits per rule:\n  rule  engine  hits     bytes     rule\n")
    for _, e in sorted(pipe.rules.items()):
        rid = e.rule_id if e.port == 0 else f"{e.port}/{e.rule_id}"
        out.write(f"  {rid:>4}  {e.engine:<6}  {e.hits:>7}  {e.bytes:>9}  {e.rule.source}\n")
    if not pipe.rules:
        out.write("  no rules\n")
    out.write("\nper PTYPE:\n")
    for pt, n in sorted(c.per_ptype.items()):
        name = pipe.package.ptypes[pt].name if pt in pipe.package.ptypes else "NO_PTYPE"
        out.write(f"  {pt:>5}  {name:<40} {n:>7}\n")


__all__ = ["Split", "write_summary"]

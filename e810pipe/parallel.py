"""`run` and `parse` over several processes (``--workers N``) or a Dask cluster (``--dask``).

The captures are cut into tasks of contiguous packet indexes. Each worker rebuilds
the pipeline (or the parser) from the same command-line options, once per process,
and processes its tasks; the parent writes the results in packet order, so the
output is the single-process output byte for byte:

- per-packet lines (``--json`` or the table) in file and index order;
- ``--split`` pcaps, each packet appended in order;
- counters, rule hits and bytes merged (:meth:`Counters.merge`) in task order, so
  even the counters' key order is that of a single process;
- a capture error stops the run after the packets before it, as a single process
  does, with the same message and exit code.

Streaming: the parent never holds a capture. For a classic pcap it reads only the
16-byte record headers, noting the byte offset of every ``GRAIN``-th packet; each
task then names (file, first index, byte offset, count) and the worker reads its
packets itself (:func:`iter_pcap_from`). Other files (pcapng) are read by the
parent and sent in tasks of ``SHIP`` packets. At most ``2 x workers`` tasks are in
flight, and results are written as soon as the tasks before them are done.

Dask: the tasks go to a ``dask.distributed`` scheduler instead (``--dask ADDRESS``,
or ``--dask local`` for a ``LocalCluster`` on this machine). Workers must have
e810pipe installed and see the captures, rules and profiles at the same paths.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import struct
import sys
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TextIO

from .errors import E810PipeError, PcapError, ServiceError, UsageError
from .pcapio import LINKTYPE_ETHERNET, MAX_CAPLEN, iter_packets, iter_pcap_from
from .pipeline import Counters
from .progress import progress_for

GRAIN = 1024  # packets between two noted byte offsets of a classic pcap
MAX_TASK = 50_000  # packets per task at most (bounds a result's size)
SHIP = 8192  # packets per task for captures the parent reads itself (pcapng)

# the options a worker needs to rebuild the pipeline or parser, per command
_PARSER_OPTS = ("profile", "vxlan_port", "geneve_port", "vxlan_gpe_port", "dvm", "window")
_OPTS = {
    "parse": (*_PARSER_OPTS, "json", "verbose"),
    "run": (*_PARSER_OPTS, "rules", "cmd", "json", "split", "trace"),
}


class RemoteError(E810PipeError):
    """An error a worker met, carried back with its message and exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Task:
    """A contiguous run of packets of one capture, and how to process them."""

    command: str  # "run" or "parse"
    options: dict[str, Any]
    path: str  # the capture as the user named it (the "file" key of JSON lines)
    source: str  # the path workers open (absolute)
    start: int  # index of the first packet
    count: int | None = None  # packets to take; None: to the end of the file
    offset: int | None = None  # byte offset of packet `start` (classic pcap)
    packets: list[tuple[int, int, bytes, float]] | None = None  # (index, linktype, data, ts)
    several: bool = False  # several captures: JSON lines start with "file"


@dataclass
class TaskResult:
    text: str = ""  # output lines, in order
    packets: int = 0  # Ethernet packets processed
    skipped: int = 0  # packets that are not Ethernet
    first_skipped: str | None = None
    split: dict[str, list[tuple[bytes, float]]] = field(default_factory=dict)  # name -> packets
    annotated: list[tuple[bytes, float, str]] = field(default_factory=list)  # --annotate
    counters: Counters | None = None
    rule_hits: dict[int, tuple[int, int]] = field(default_factory=dict)  # id -> hits, bytes
    fingerprint: str = ""  # the rules the worker loaded
    trace: str | None = None
    error: tuple[int, str] | None = None  # (exit code, message)


# ----------------------------------------------------------------------- the worker side

_local = threading.local()  # one pipeline per worker thread (Dask may run threads)


def _namespace(options: dict[str, Any]) -> argparse.Namespace:
    return argparse.Namespace(**options)


def _engine(command: str, options: dict[str, Any]) -> tuple[Any, str]:
    """The worker's pipeline (run) or parser (parse) for these options, built once."""
    key = (command, json.dumps(options, sort_keys=True))
    cached = getattr(_local, "engine", None)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    from .build import build_parser, setup_pipeline

    ns = _namespace(options)
    obj: Any = setup_pipeline(ns) if command == "run" else build_parser(ns)
    import gc

    gc.freeze()  # the rules and tables live as long as the worker: keep the collector off them
    fingerprint = rules_fingerprint(obj) if command == "run" else ""
    _local.engine = (key, obj, fingerprint)
    return obj, fingerprint


def rules_fingerprint(pipe: Any) -> str:
    """A digest of the loaded rules (id, engine, pattern, actions): workers must agree."""
    h = hashlib.sha256()
    for rid, e in sorted(pipe.rules.items()):
        r = e.rule
        h.update(f"{rid} {e.engine} {r.port} {r.priority} {r.pattern!r} {r.actions!r}\n".encode())
    return h.hexdigest()


def _packets(task: Task) -> Iterator[tuple[int, int, bytes, float]]:
    if task.packets is not None:
        yield from task.packets
        return
    if task.offset is not None:
        it = iter_pcap_from(task.source, task.start, task.offset)
    else:
        it = (p for p in iter_packets(task.source) if p.index >= task.start)
    if task.count is not None:
        it = islice(it, task.count)
    for p in it:
        yield p.index, p.linktype, p.data, p.ts


def run_task(task: Task) -> TaskResult:
    """Process one task (in a worker process, or on a Dask worker)."""
    res = TaskResult()
    try:
        engine, res.fingerprint = _engine(task.command, task.options)
        if task.command == "run":
            _run(task, engine, res)
        else:
            _parse(task, engine, res)
    except E810PipeError as err:
        res.error = (err.exit_code, str(err))
    return res


def _skip(task: Task, res: TaskResult, index: int, linktype: int) -> None:
    res.skipped += 1
    if res.first_skipped is None:
        res.first_skipped = f"{task.path}: packet {index}: link type {linktype}"


def _run(task: Task, pipe: Any, res: TaskResult) -> None:
    from .output import JsonLines, annotation
    from .trace import format_trace

    opts = task.options
    want_json, split, trace = opts["json"], opts["split"], opts["trace"]
    annotate = opts.get("annotate", False)
    pipe.counters = Counters()
    for entry in pipe.rules.values():
        entry.hits = entry.bytes = 0
    lines: list[str] = []
    line = JsonLines().line
    path, several = task.path, task.several
    groups = res.split
    process = pipe.process
    for index, linktype, data, ts in _packets(task):
        if linktype != LINKTYPE_ETHERNET:
            _skip(task, res, index, linktype)
            continue
        dec = process(data)
        res.packets += 1
        if split:
            name = "drop" if dec.drop else f"queue-{dec.queue}"
            group = groups.get(name)
            if group is None:
                group = groups[name] = []
            group.append((data, ts))
        if want_json:
            lines.append(line(dec, index, path if several else None))
        if annotate:
            res.annotated.append((data, ts, annotation(dec)))
        if trace is not None and index == trace and res.trace is None:
            res.trace = format_trace(pipe, dec, data, index)
    res.text = "".join(lines)
    res.counters = pipe.counters
    res.rule_hits = {rid: (e.hits, e.bytes) for rid, e in pipe.rules.items() if e.hits}


def _parse(task: Task, parser: Any, res: TaskResult) -> None:
    from .build import po_text

    opts = task.options
    want_json, verbose = opts["json"], opts["verbose"]
    lines: list[str] = []
    dumps = json.dumps
    path, several = task.path, task.several
    parse = parser.parse
    for index, linktype, data, _ts in _packets(task):
        if linktype != LINKTYPE_ETHERNET:
            _skip(task, res, index, linktype)
            continue
        r = parse(data)
        res.packets += 1
        if want_json:
            obj = r.to_json(index, len(data))
            if several:
                obj = {"file": path, **obj}
            lines.append(dumps(obj, separators=(",", ":")))
        else:
            hdrs = " / ".join(f"{h.name}@{h.offset}" for h in r.headers)
            pt = f"{r.ptype} {r.ptype_name}"
            lines.append(f"{index:>6} {len(data):>5}  {pt:<40} {r.status:<16} {hdrs}")
            if verbose:
                lines.append(f"{'':14}po: {po_text(r, parser)}")
                if r.flags:
                    lines.append(f"{'':14}flags: {' '.join(r.flags)}")
    res.text = "".join(line + "\n" for line in lines)


# ----------------------------------------------------------------------- planning tasks

_REC_CAPLEN = {"<": struct.Struct("<8xI4x"), ">": struct.Struct(">8xI4x")}
_MAGICS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\x4d\x3c\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\xa1\xb2\x3c\x4d": ">",
}


def scan_pcap(path: str, grain: int = GRAIN) -> tuple[list[tuple[int, int]], int, bool] | None:
    """Read a classic pcap's record headers only.

    Returns (marks, packets, clean): the (index, byte offset) of every `grain`-th
    packet, the number of packets, and whether the file ended cleanly (False: the
    record after the last counted one is damaged; :func:`iter_pcap_from` from the
    last mark tells how). None if the file is not a classic pcap.
    """
    try:
        f = open(path, "rb", buffering=1 << 17)
    except OSError:
        return None
    with f:
        header = f.read(24)
        order = _MAGICS.get(header[:4])
        if order is None or len(header) < 24:
            return None
        size = os.fstat(f.fileno()).st_size
        caplen_of = _REC_CAPLEN[order].unpack
        read, seek = f.read, f.seek
        marks: list[tuple[int, int]] = []
        index, pos = 0, 24
        while True:
            if index % grain == 0:
                marks.append((index, pos))
            head = read(16)
            if len(head) != 16:
                clean = not head
                break
            (caplen,) = caplen_of(head)
            end = pos + 16 + caplen
            if caplen > MAX_CAPLEN or end > size:
                clean = False
                break
            pos = end
            seek(pos)
            index += 1
    if marks and marks[-1][0] == index and clean:
        marks.pop()  # a mark at the very end starts no packet
    return marks, index, clean


def _classic_tasks(
    base: Task, marks: list[tuple[int, int]], total: int, workers: int
) -> Iterator[Task]:
    if total == 0:
        return
    tasks = max(1, min(len(marks), max(4 * workers, -(-total // MAX_TASK))))
    step = -(-len(marks) // tasks)  # marks per task
    for i in range(0, len(marks), step):
        start, offset = marks[i]
        stop = marks[i + step][0] if i + step < len(marks) else total
        if stop > start:
            yield _with(base, start=start, count=stop - start, offset=offset)


def _with(base: Task, **kw: Any) -> Task:
    return Task(**{**base.__dict__, **kw})


Plan = Iterator[tuple[str, Any]]  # ("task", Task) or ("error", PcapError)


def plan_tasks(
    command: str,
    options: dict[str, Any],
    paths: Sequence[str],
    workers: int,
) -> Plan:
    """The tasks for `paths`, in packet order; a capture error ends the plan."""
    several = len(paths) > 1
    for path in paths:
        source = os.path.abspath(path)
        base = Task(command, options, path, source, 0, several=several)
        # standard input is a stream: the parent reads it and ships the packets
        scan = None if path == "-" else scan_pcap(path)
        if scan is not None:
            marks, total, clean = scan
            if not clean:  # find the damage exactly as a single process would
                start, offset = marks[-1] if marks else (0, 24)
                try:
                    for p in iter_pcap_from(path, start, offset):
                        total = p.index + 1
                except PcapError as err:
                    yield from (("task", t) for t in _classic_tasks(base, marks, total, workers))
                    yield ("error", err)
                    return
            for t in _classic_tasks(base, marks, total, workers):
                yield ("task", t)
            continue
        # not a classic pcap: the parent reads it and sends the packets along
        batch: list[tuple[int, int, bytes, float]] = []
        first = 0
        try:
            for p in iter_packets(path):
                if not batch:
                    first = p.index
                batch.append((p.index, p.linktype, p.data, p.ts))
                if len(batch) >= SHIP:
                    yield ("task", _with(base, start=first, count=len(batch), packets=batch))
                    batch = []
        except PcapError as err:
            if batch:
                yield ("task", _with(base, start=first, count=len(batch), packets=batch))
            yield ("error", err)
            return
        if batch:
            yield ("task", _with(base, start=first, count=len(batch), packets=batch))


# ----------------------------------------------------------------------- executing


DASK_TIMEOUT = 30.0  # default seconds to connect to a scheduler and hear from it


class _Backend:
    """Submits tasks; `submit` returns something with `.result()`."""

    workers = 1

    def submit(self, task: Task) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        """Stop without waiting for the tasks in flight (Ctrl-C, an error)."""
        self.close()


class ProcessBackend(_Backend):
    def __init__(self, workers: int) -> None:
        from concurrent.futures import ProcessPoolExecutor

        methods = multiprocessing.get_all_start_methods()
        # forkserver: children fork from a clean server process (no threads inherited),
        # cheaply; spawn where there is no forkserver
        method = "forkserver" if "forkserver" in methods else "spawn"
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["e810pipe.parallel", "e810pipe.build"])
        self.workers = workers
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)

    def submit(self, task: Task) -> Any:
        return self.pool.submit(run_task, task)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def abort(self) -> None:
        procs = list(getattr(self.pool, "_processes", {}).values())
        self.pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:  # a task of MAX_TASK packets would run on: end it
            try:
                proc.terminate()
            except (OSError, AttributeError):
                pass


class DaskBackend(_Backend):
    def __init__(self, address: str, workers: int, timeout: float = DASK_TIMEOUT) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise UsageError(
                "--dask needs dask.distributed: pip install 'e810pipe[dask]'"
            ) from None
        import logging

        self.cluster = None
        if address == "local":
            self.cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
            info: Any = self.client.scheduler_info()
        else:
            self.client, info = _connect(address, timeout)
        self.workers = max(1, len(info.get("workers", {})) or workers)

    def submit(self, task: Task) -> Any:
        return self.client.submit(run_task, task, pure=False)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _connect(address: str, timeout: float = DASK_TIMEOUT) -> tuple[Any, dict]:
    """A Client of the scheduler at `address` and its scheduler_info, within about
    `timeout` seconds; a ServiceError says what did not answer."""
    import threading

    from dask.distributed import Client

    box: dict[str, Any] = {}

    def attempt() -> None:
        try:
            client = Client(address, timeout=timeout)
            box["client"] = client
            box["info"] = client.scheduler_info()
        except BaseException as err:  # whatever a non-Dask peer makes the client raise
            box["error"] = err

    t = threading.Thread(target=attempt, name="e810pipe-dask-connect", daemon=True)
    t.start()
    t.join(timeout + 5)
    if t.is_alive():
        raise ServiceError(
            f"--dask {address}: no answer from a Dask scheduler within "
            f"{timeout + 5:g} s (waited to connect and for its scheduler info)"
        )
    if "error" in box:
        err = box["error"]
        # A peer that speaks another protocol sends bytes the client reads as an
        # absurd frame length: MemoryError (or OverflowError) from that allocation.
        why = (
            "its answer is not Dask's protocol"
            if isinstance(err, (MemoryError, OverflowError))
            else f"{type(err).__name__}: {str(err)[:200]}"
        )
        raise ServiceError(
            f"--dask {address}: not a Dask scheduler, or it cannot be reached: {why}"
        ) from None
    return box["client"], box["info"]


def ordered_results(backend: _Backend, plan: Plan, window: int) -> Iterator[TaskResult]:
    """Run the planned tasks, at most `window` at a time; yield results in plan order.

    A capture error in the plan is raised after the results of the tasks before it;
    an error a worker met is raised as a :class:`RemoteError`.
    """
    pending: deque[Any] = deque()
    error: PcapError | None = None
    try:
        for kind, item in plan:
            if kind == "error":
                error = item
                break
            pending.append(backend.submit(item))
            while len(pending) >= window:
                yield _checked(pending.popleft().result())
        while pending:
            yield _checked(pending.popleft().result())
    finally:
        for fut in pending:
            fut.cancel()
    if error is not None:
        raise error


def _checked(res: TaskResult) -> TaskResult:
    if res.error is not None:
        code, message = res.error
        raise RemoteError(message, code)
    return res


# ----------------------------------------------------------------------- commands


def add_cli_options(p: argparse.ArgumentParser) -> None:
    """--workers and --dask, for `run` and `parse`."""
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="split the captures across N processes (or N local Dask workers); "
        "the output is the same as with one",
    )
    p.add_argument(
        "--dask",
        metavar="SCHEDULER",
        help="process on a Dask cluster: a scheduler address (tcp://host:8786) or 'local'",
    )
    p.add_argument(
        "--dask-timeout",
        type=float,
        default=DASK_TIMEOUT,
        metavar="SECONDS",
        help=f"give up on a scheduler that does not answer (default {DASK_TIMEOUT:g} s)",
    )


def wanted(args: argparse.Namespace) -> bool:
    """Whether the command line asks for more than one process."""
    return bool(getattr(args, "dask", None)) or getattr(args, "workers", 1) != 1


def _options(command: str, args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {k: getattr(args, k, None) for k in _OPTS[command]}
    # workers may start elsewhere: name the files by absolute paths
    opts["profile"] = [
        os.path.abspath(p) if os.path.isfile(p) else p for p in (args.profile or [])
    ] or None
    if command == "run":
        opts["rules"] = [os.path.abspath(p) for p in args.rules]
        opts["split"] = bool(args.split)
        opts["annotate"] = bool(getattr(args, "annotate", None))
    return opts


def max_workers() -> int:
    """The most worker processes `--workers` starts here: four per CPU (the model
    is CPU-bound; more only costs memory and start-up)."""
    return 4 * (os.cpu_count() or 1)


def _backend(args: argparse.Namespace) -> _Backend:
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers}: give 1 or more")
    if args.workers > max_workers() and (not args.dask or args.dask == "local"):
        sys.stderr.write(
            f"e810pipe: warning: --workers {args.workers} is more than this machine's "
            f"{os.cpu_count() or 1} CPU(s) can use; using {max_workers()}\n"
        )
        args.workers = max_workers()
    if args.dask:
        timeout = getattr(args, "dask_timeout", DASK_TIMEOUT)
        if not 0 < timeout <= 86400:
            raise UsageError(f"--dask-timeout {timeout}: give 0 < SECONDS <= 86400")
        workers = args.workers if args.workers > 1 else os.cpu_count() or 1
        return DaskBackend(args.dask, workers, timeout)
    return ProcessBackend(args.workers)


def _skipped_note(skipped: int, first: str | None) -> None:
    if skipped:
        sys.stderr.write(
            f"e810pipe: skipped {skipped} packet(s) that are not Ethernet; first: {first}\n"
        )


def cmd_run_parallel(args: argparse.Namespace, out: TextIO) -> int:
    """`e810pipe run ... --workers N | --dask S`: the single-process output, in parallel."""
    from .build import setup_pipeline
    from .output import Annotate, Split, write_summary

    pipe = setup_pipeline(args, out)  # validates everything before any worker starts
    fingerprint = rules_fingerprint(pipe)
    options = _options("run", args)
    backend = _backend(args)
    split = Split(args.split) if args.split else None
    notes = Annotate(args.annotate) if getattr(args, "annotate", None) else None
    skipped, first_skipped = 0, None
    traced = False
    bar = progress_for(args.pcap, sys.stderr, getattr(args, "quiet", False), sized=False)
    try:
        plan = plan_tasks("run", options, args.pcap, backend.workers)
        for res in ordered_results(backend, plan, 2 * backend.workers):
            if res.fingerprint != fingerprint:
                raise RemoteError("a worker loaded different rules than this process", 70)
            out.write(res.text)
            if split is not None:
                for name, packets in res.split.items():
                    for data, ts in packets:
                        split.write(name, data, ts)
            if notes is not None:
                for data, ts, comment in res.annotated:
                    notes.write(data, ts, comment)
            assert res.counters is not None
            pipe.counters.merge(res.counters)
            for rid, (hits, nbytes) in res.rule_hits.items():
                pipe.rules[rid].hits += hits
                pipe.rules[rid].bytes += nbytes
            skipped += res.skipped
            first_skipped = first_skipped or res.first_skipped
            if bar is not None:
                bar.advance(res.packets + res.skipped)
            if res.trace is not None and not traced:
                traced = True
                if bar is not None:
                    bar.clear()
                sys.stderr.write(res.trace + "\n")
    except BaseException:
        backend.abort()  # Ctrl-C or an error: the tasks in flight are not waited for
        raise
    finally:
        if split is not None:  # first: whatever happens next, the files end on a record
            split.close()
        if notes is not None:
            notes.close()
        if bar is not None:
            bar.close()
        backend.close()
    _skipped_note(skipped, first_skipped)
    if not args.json:
        write_summary(pipe, out, skipped)
    if args.trace is not None and not traced:
        raise UsageError(
            f"--trace {args.trace}: the captures have no Ethernet packet with that index "
            "(the run itself completed)"
        )
    return 0


def cmd_parse_parallel(args: argparse.Namespace, out: TextIO) -> int:
    """`e810pipe parse ... --workers N | --dask S`."""
    from .build import build_parser

    parser = build_parser(args)
    options = _options("parse", args)
    backend = _backend(args)
    count = skipped = 0
    first_skipped = None
    if not args.json:
        out.write(f"# {parser.package.title}; window {parser.window} bytes\n")
        out.write(f"{'index':>6} {'len':>5}  {'ptype':<40} {'status':<16} path\n")
    try:
        plan = plan_tasks("parse", options, args.pcap, backend.workers)
        for res in ordered_results(backend, plan, 2 * backend.workers):
            out.write(res.text)
            count += res.packets
            skipped += res.skipped
            first_skipped = first_skipped or res.first_skipped
    except BaseException:
        backend.abort()
        raise
    finally:
        backend.close()
    _skipped_note(skipped, first_skipped)
    if not args.json:
        out.write(f"# {count} packet(s) parsed, {skipped} skipped (not Ethernet)\n")
    return 0


__all__ = [
    "DaskBackend",
    "ProcessBackend",
    "RemoteError",
    "Task",
    "TaskResult",
    "add_cli_options",
    "cmd_parse_parallel",
    "cmd_run_parallel",
    "plan_tasks",
    "run_task",
    "scan_pcap",
    "wanted",
]

"""A progress bar on stderr for long runs: only on a terminal, never with ``--quiet``.

The bar shows the share of the captures read (by bytes: a classic pcap record is its
16-byte header plus the packet), the packets so far and the packets per second. It
waits ``delay`` seconds before it first draws, so short runs print nothing, redraws
at most every ``interval`` seconds and erases itself when the run ends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TextIO

PCAP_RECORD = 16  # bytes of a classic pcap record header
PCAP_HEADER = 24
CHECK_EVERY = 256  # packets between two looks at the clock
DELAY = 0.5  # seconds before the bar first shows: short runs print nothing
INTERVAL = 0.2  # seconds between two redraws


def _size(paths: Sequence[str]) -> int | None:
    if "-" in paths:  # standard input: a stream of unknown length
        return None
    try:
        return sum(os.path.getsize(p) for p in paths) or None
    except OSError:
        return None


def _count(n: float) -> str:
    return f"{n:,.0f}"


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class Progress:
    """Counts packets and bytes; draws ``[####....]  42%  1,234 pkts  56,789 pkt/s  ETA``."""

    def __init__(
        self,
        stream: TextIO,
        total_bytes: int | None,
        *,
        width: int = 30,
        delay: float | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.total = total_bytes
        self.width = width
        self.delay = DELAY if delay is None else delay
        self.interval = INTERVAL if interval is None else interval
        self.clock = clock
        self.start = clock()
        self.packets = 0
        self.done = PCAP_HEADER
        self._next = self.start + self.delay
        self._shown = False

    def advance(self, packets: int = 1, nbytes: int = 0) -> None:
        """Count `packets` more packets that took `nbytes` bytes of the files."""
        before = self.packets
        self.packets += packets
        self.done += nbytes
        if self.packets // CHECK_EVERY != before // CHECK_EVERY or packets > 1:
            now = self.clock()
            if now >= self._next:
                self._next = now + self.interval
                self.draw(now)

    def line(self, now: float | None = None) -> str:
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        rate = self.packets / elapsed
        parts = []
        eta = ""
        if self.total:
            frac = min(self.done / self.total, 1.0)
            fill = int(frac * self.width)
            parts.append(f"[{'#' * fill}{'.' * (self.width - fill)}] {frac * 100:3.0f}%")
            if 0 < frac < 1:
                eta = f"ETA {_duration(elapsed * (1 - frac) / frac)}"
        parts.append(f"{_count(self.packets)} packets")
        parts.append(f"{_count(rate)} packets/s")
        if eta:
            parts.append(eta)
        return "  ".join(parts)

    def draw(self, now: float | None = None) -> None:
        self.stream.write("\r" + self.line(now) + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the bar (before other text goes to stderr); it comes back on the next draw."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def close(self) -> None:
        self.clear()


def progress_for(
    paths: Sequence[str], stream: TextIO, quiet: bool = False, sized: bool = True
) -> Progress | None:
    """A bar for reading `paths`, or None with --quiet or when `stream` is not a terminal.

    `sized`: the caller counts bytes read (``advance(n, nbytes)``), so the bar shows the
    share done; otherwise it shows packets and packets/s only.
    """
    if quiet:
        return None
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return None
    if not tty or os.environ.get("TERM") == "dumb":
        return None
    return Progress(stream, _size(paths) if sized else None)


__all__ = ["PCAP_RECORD", "Progress", "progress_for"]

"""Bounded, located reading of the files a user names: profiles, YAML, rules, JSON.

Every input file goes through :func:`read_text`. It refuses what is not a regular
file (a directory, ``/dev/zero``, a FIFO) and files larger than the limit for their
kind (the README lists the limits, "Input limits"), reads at most that many bytes,
and reports text that is not UTF-8 (or that holds NUL bytes, which no text input
format allows) at the line and column of the first bad byte. The caller turns the
problem into its own error class, so each kind of file keeps its exit code.

:func:`clip` shortens input echoed in an error message.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from .errors import E810PipeError

MiB = 1 << 20
# Largest accepted input of each kind, in bytes (documented in the README).
LIMITS = {
    "profile": 16 * MiB,  # a DDP profile (.ddp); the stock packages are ~30 KiB
    "yaml": 64 * MiB,  # device, rules or scenario YAML
    "rules": 256 * MiB,  # testpmd command files (about 1.5M rules)
    "json": 16 * MiB,  # a fuzz finding (.json)
}
ECHO_LIMIT = 80  # characters of input an error message quotes


class InputProblem(E810PipeError, ValueError):
    """Why a file could not be read as text (the caller re-raises it in its own class)."""

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        self.message = message
        self.line = line
        self.column = column
        super().__init__(message)


def clip(text: str, limit: int = ECHO_LIMIT) -> str:
    """`text` cut to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


_QUOTED = re.compile(r"'([^'\n]{" + str(ECHO_LIMIT + 1) + r",})'")


def clip_quoted(message: str) -> str:
    """`message` with every long 'quoted' piece of input clipped."""
    return _QUOTED.sub(lambda m: f"'{clip(m.group(1))}'", message)


def clip_context(context: str, width: int = 160) -> str:
    """A source line plus a caret line, cut to `width` characters around the caret."""
    lines = context.split("\n")
    if len(lines) != 2 or len(lines[0]) <= width + 4:
        return context
    src, caret = lines
    at = len(caret) - 1  # the caret's index in the line (both lines share the indent)
    start = max(4, min(at - width // 2, len(src) - width))
    return f"    {src[start : start + width]}\n    {' ' * max(at - start, 0)}^"


def _position(data: bytes, at: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte offset `at`."""
    line_start = data.rfind(b"\n", 0, at) + 1
    line = data.count(b"\n", 0, at) + 1
    column = len(data[line_start:at].decode("utf-8", errors="replace")) + 1
    return line, column


def decode(data: bytes) -> str:
    """`data` as UTF-8 text, or InputProblem at the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line, col = _position(data, err.start)
        raise InputProblem(
            f"not UTF-8 text: byte {data[err.start]:#04x} at byte offset {err.start}", line, col
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        at = len(text[:nul].encode())
        line, col = _position(data, at)
        raise InputProblem(f"not a text file: a NUL byte at byte offset {at}", line, col)
    return text


def read_bytes(path: str | Path, kind: str) -> bytes:
    """The bytes of regular file `path`, refusing files over the limit for `kind`."""
    limit = LIMITS[kind]
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise InputProblem(f"{err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputProblem("it is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise InputProblem("not a regular file (a device, FIFO or socket)")
        if st.st_size > limit:
            raise InputProblem(
                f"file is {st.st_size} bytes; the limit for a {kind} file is {limit} bytes"
            )
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # grew while we read it
                raise InputProblem(f"file is over the limit for a {kind} file ({limit} bytes)")
        return b"".join(chunks)
    except OSError as err:
        raise InputProblem(f"{err.strerror or err}") from None
    finally:
        os.close(fd)


def read_text(
    path: str | Path,
    kind: str,
    error: Callable[[str, int, int], E810PipeError],
) -> str:
    """The UTF-8 text of file `path`; problems raised as ``error(message, line, column)``."""
    try:
        return decode(read_bytes(path, kind))
    except InputProblem as p:
        raise error(p.message, p.line, p.column) from None


__all__ = [
    "ECHO_LIMIT",
    "LIMITS",
    "InputProblem",
    "clip",
    "clip_context",
    "clip_quoted",
    "decode",
    "read_bytes",
    "read_text",
]

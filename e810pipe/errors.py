"""The error hierarchy of e810pipe.

Every error the tool raises on bad input derives from :class:`E810PipeError`, and
also from the builtin exception a Python caller would expect (``SyntaxError`` for
profile text, ``ValueError`` for bad values), so ``except ValueError`` keeps
working. The command line prints ``str(error)`` and exits with ``error.exit_code``;
it never shows a traceback for these.
"""

from __future__ import annotations

import functools


class E810PipeError(Exception):
    """Root of every error e810pipe raises on bad input.

    ``exit_code`` is the process exit status the command line uses for it; the
    codes are listed in the README ("Exit codes").
    """

    exit_code = 2


class UsageError(E810PipeError, ValueError):
    """A command-line argument or API argument is out of range or inconsistent.

    The message names the argument. Fix the invocation; ``e810pipe COMMAND --help``
    lists what each command accepts.
    """

    exit_code = 2


class ProfileError(E810PipeError, SyntaxError):
    """A DDP profile is malformed: a syntax error or a semantic error.

    Attributes:
        path: the profile file (or ``<string>``).
        line, column: 1-based position of the offending token.
        context: the offending line with a caret under the column.
        expected: for syntax errors, the tokens the grammar would have accepted.

    The message reads ``path:line:column: what is wrong``. Fix the profile at that
    position; ``e810pipe profile check FILE`` re-checks it without any packets.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        path: str = "<string>",
        line: int = 0,
        column: int = 0,
        context: str = "",
        expected: tuple[str, ...] = (),
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.context = context
        self.expected = expected
        text = f"{path}:{line}:{column}: {message}" if line else f"{path}: {message}"
        if context:
            text += "\n" + context.rstrip("\n")
        super().__init__(text)
        # SyntaxError keeps its own fields; fill them so tools that know them work.
        self.filename = path
        self.lineno = line
        self.offset = column
        self.msg = text

    def __str__(self) -> str:  # SyntaxError.__str__ would add "(path, line N)"
        return self.msg


class PcapError(E810PipeError, ValueError):
    """A capture file cannot be read.

    Attributes:
        path: the capture file.
        index: 0-based index of the packet being read, or ``None`` for the file header.
        offset: byte offset in the file where the problem was found.

    The message names the packet index and byte offset. The file is probably
    truncated or not a pcap/pcapng file; ``tshark -r FILE`` or ``capinfos FILE``
    show how far it is readable.
    """

    exit_code = 4

    def __init__(self, message: str, path: str, index: int | None, offset: int) -> None:
        self.path = path
        self.index = index
        self.offset = offset
        where = "file header" if index is None else f"packet {index}"
        super().__init__(f"{path}: {where}, byte offset {offset}: {message}")


class OutputError(E810PipeError, OSError):
    """An output cannot be written: standard output, ``--split`` files, reports.

    The message names the output and the system's reason (no space left on the
    device, permission denied, a file where a directory should be...). Free space,
    fix the permissions, or pick another path. What was written before the error
    ends on a whole record (pcap) or a whole line (JSON).
    """

    exit_code = 6

    def __init__(self, what: str, err: OSError | str) -> None:
        reason = err if isinstance(err, str) else (err.strerror or str(err))
        self.what = what
        self.errno_ = None if isinstance(err, str) else err.errno
        super().__init__(f"{what}: cannot write: {reason}")

    def __str__(self) -> str:  # OSError.__str__ would show "[Errno ...]" and the args
        return str(self.args[0])


class ServiceError(E810PipeError, ConnectionError):
    """A service the command relies on (a Dask scheduler) did not answer as expected.

    The message names the address, what was expected and how long the tool waited.
    """

    exit_code = 7

    def __str__(self) -> str:
        return str(self.args[0])


class RuleError(E810PipeError, ValueError):
    """A flow rule or device command was rejected.

    Attributes:
        category: the rte_flow error category, e.g. ``"specific pattern item"``.
        type_code: the matching ``RTE_FLOW_ERROR_TYPE_*`` number.
        index: index of the offending pattern item or action, or ``None``.
        errno: the errno the PMD sets with the error (``rte_flow_error_set``), which
            testpmd prints last: EINVAL "Invalid argument", EEXIST "File exists"...

    ``str()`` reads as testpmd prints it: ``Caught error type N (category): message``.
    """

    exit_code = 5

    def __init__(
        self,
        message: str,
        category: str,
        type_code: int,
        index: int | None = None,
        errno: int = 22,  # EINVAL
    ) -> None:
        self.message = message
        self.category = category
        self.type_code = type_code
        self.index = index
        self.errno = errno
        self.notes: tuple[str, ...] = ()  # what each engine said, when several were tried
        # lines the PMD logged on the way (PMD_DRV_LOG(ERR, ...): "func(): text")
        self.log: tuple[str, ...] = ()
        super().__init__(f"Caught error type {type_code} ({category}): {message}")


@functools.lru_cache(maxsize=8)
def _lines(text: str) -> list[str]:
    # cached per text (a str caches its hash), so many errors in one file cost one split
    return text.splitlines()


def quotable(path: str) -> bool:
    """Whether error messages may quote the text of `path`: only profiles (``.ddp``
    files, or text given as a string), never a file of another kind that a profile's
    ``extends`` or a ``--profile`` option happens to name."""
    return path.startswith("<") or path.endswith(".ddp")


def context_line(text: str, line: int, column: int) -> str:
    """The source line `line` with a caret under `column` (both 1-based); a long
    line is cut to the 160 characters around the column."""
    lines = _lines(text)
    if not 1 <= line <= len(lines):
        return ""
    src = lines[line - 1].expandtabs(1)
    if len(src) > 160:
        start = max(0, min(column - 80, len(src) - 160))
        src = src[start : start + 160]
        column -= start
    return f"    {src}\n    {' ' * max(column - 1, 0)}^"

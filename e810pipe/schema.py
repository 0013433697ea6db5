"""JSON Schemas (draft 2020-12) of the ``--json`` outputs: parse, run, check and fuzz.

The schemas ship inside the package (``e810pipe/schemas/NAME.json``). Each describes
one JSON object: ``parse`` and ``run`` print one per packet, ``check`` one per
expectation, all one per line; ``fuzz`` prints one summary object.

``e810pipe schema NAME`` prints a schema; ``e810pipe schema NAME --check FILE``
validates every line of FILE (``-``: stdin) against it, which needs the
``jsonschema`` package, and exits 1 naming each line that does not validate.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .errors import UsageError
from .inputs import InputProblem, clip, decode
from .yamlfile import ConfigError

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
NAMES = ("parse", "run", "check", "fuzz", "flow-validate", "profile-check")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema of `name`'s --json output, as a dict."""
    if name not in NAMES:
        raise UsageError(f"no schema '{name}'; there are {', '.join(NAMES)}")
    with open(SCHEMA_DIR / f"{name}.json", encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


def validator(name: str) -> Any:
    """A ``jsonschema`` draft 2020-12 validator for `name` (needs ``jsonschema``)."""
    try:
        import jsonschema
    except ImportError:
        raise UsageError(
            "validating needs the jsonschema package: pip install 'e810pipe[schema]'"
        ) from None
    return jsonschema.Draft202012Validator(load_schema(name))


MAX_LINE = 16 << 20  # bytes in one JSON line (a packet's object is far smaller)


def _text_lines(path: str, f: BinaryIO) -> Iterator[str]:
    """The lines of `f` as text, each at most MAX_LINE bytes; located errors else."""
    n = 0
    while True:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        n += 1
        if len(raw) > MAX_LINE:
            raise ConfigError(f"line is longer than {MAX_LINE} bytes; not JSON lines", path, n, 1)
        try:
            yield decode(raw)
        except InputProblem as p:
            raise ConfigError(p.message.split(": byte offset")[0], path, n, p.column) from None


def check_lines(name: str, lines: Iterable[str]) -> list[str]:
    """Validate JSON lines against `name`; the problems, as 'line N: ...' texts."""
    v = validator(name)
    problems: list[str] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            problems.append(f"line {n}: not JSON: {err}")
            continue
        except RecursionError:
            problems.append(f"line {n}: not JSON lines: nested too deeply")
            continue
        for bad in sorted(v.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in bad.absolute_path) or "(object)"
            problems.append(f"line {n}: {clip(where)}: {clip(bad.message, 200)}")
    return problems


def cmd_schema(args: argparse.Namespace, out: TextIO) -> int:
    if args.check is None:
        out.write(json.dumps(load_schema(args.name), indent=2) + "\n")
        return 0
    if args.check == "-":
        problems = check_lines(args.name, _text_lines("<stdin>", sys.stdin.buffer))
    else:
        try:
            fd = os.open(args.check, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as err:
            raise ConfigError(f"cannot read: {err.strerror or err}", args.check) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ConfigError("cannot read: not a regular file", args.check)
        with os.fdopen(fd, "rb") as f:
            problems = check_lines(args.name, _text_lines(args.check, f))
    for p in problems:
        out.write(f"{args.check}: {p}\n")
    if not problems:
        out.write(f"{args.check}: valid {args.name} output\n")
    return 1 if problems else 0


def register_cli(sub: Any) -> None:
    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of a command's --json output, or check output against it",
    )
    p.add_argument("name", choices=NAMES, help="the command whose --json output it describes")
    p.add_argument(
        "--check",
        metavar="FILE",
        help="validate each line of FILE ('-': stdin); exit 1 if any fails",
    )
    p.set_defaults(func=cmd_schema)


__all__ = ["NAMES", "SCHEMA_DIR", "check_lines", "load_schema", "register_cli", "validator"]

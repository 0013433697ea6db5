"""Fuzz the profile-language front end with mutations of the stock profiles.

Every mutant must either load, compile and parse packets, or fail with a
ProfileError that names the file, line and column (``path:line:column: ...``);
any other exception is a bug. ``E810PIPE_FUZZ_SCALE=20`` runs twenty times as
many mutants (README, "Fuzzing").
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

from e810pipe.errors import ProfileError
from e810pipe.package import load_package
from e810pipe.parser import Parser
from e810pipe.resources import profiles_dir

SCALE = int(os.environ.get("E810PIPE_FUZZ_SCALE", "1"))

TOKEN = re.compile(r'0x[0-9a-fA-F]+|\d+|[A-Za-z_]\w*|"[^"\n]*"|=>|\.\.|<<|>>|==|!=|\S')
POOL = [
    *"{};():,|!@#-*\"",
    "=>", "..", "<<", "==", "!=", "0x", "peek(0, 4)", "peek(-1, 8)", "if dvm", "if !tunnel",
    "protocol", "select", "fields", "length", "report", "extend", "use", "if", "tunnel",
    "mark", "ptype", "default", "pass", "end", "error", "from", "peek", "edges", "option",
    "start", "tunnel_depth", "udp_tunnel", "proto_ids", "match", "package", "version",
    "carrier", "flag", "at", "extends", "@vxlan", "@nosuch",
    "0", "1", "-1", "255", "256", "65536", "0xffffffff", "0x100000000", "1024", "0b101",
    "99999999999999999999999", "1.2.3.4", "\t", "\n", "\x00", "\u00e9", "\ufeff", "x" * 300,
]  # fmt: skip
NUMBERS = [
    "0", "1", "2", "3", "4", "7", "8", "9", "-1", "128", "255", "256", "1023", "1024",
    "4096", "65535", "65536", "0xff", "0xffff", "0xffffffff", "0x100000000",
    "0x7fffffffffffffff", "99999999999999999999", "0b0", "0x",
]  # fmt: skip


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits: cut, insert, renumber, rename, move lines, swap."""
    for _ in range(rng.randint(1, 3)):
        toks = [(m.start(), m.end()) for m in TOKEN.finditer(text)]
        op = rng.randrange(9)
        if op == 0 and text:
            a = rng.randrange(len(text))
            text = text[:a] + text[a + rng.randint(1, 20) :]
        elif op == 1:
            a = rng.randrange(len(text) + 1)
            text = text[:a] + " " + rng.choice(POOL) + " " + text[a:]
        elif op == 2 and toks:
            nums = [t for t in toks if text[t[0]].isdigit()]
            if nums:
                a, b = rng.choice(nums)
                text = text[:a] + rng.choice(NUMBERS) + text[b:]
        elif op == 3 and toks:
            names = [t for t in toks if text[t[0]].isalpha() or text[t[0]] == "_"]
            if names:
                (a, b), (c, d) = rng.choice(names), rng.choice(names)
                new = text[c:d] if rng.random() < 0.7 else f"zz{rng.randrange(9)}"
                text = text[:a] + new + text[b:]
        elif op in (4, 5):
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            if op == 4:
                lines.insert(i, lines[rng.randrange(len(lines))])
            else:
                del lines[i]
            text = "\n".join(lines)
        elif op == 6:
            text = text[: rng.randrange(len(text) + 1)]
        elif op == 7 and len(toks) > 1:
            i = rng.randrange(len(toks) - 1)
            (a, b), (c, d) = toks[i], toks[i + 1]
            text = text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
        elif op == 8 and toks:
            a, b = rng.choice(toks)
            text = text[:a] + text[b:]
    return text


PROBES = [
    bytes(60),
    bytes.fromhex("ffffffffffff00000000000108004500002e0000400040110000c0a80001c0a80002")
    + bytes.fromhex("12b512b5001a00000800000000002a00")
    + bytes(40),
    bytes(range(256)) * 3,
]


def load_mutant(stack: list[str], dvm: bool) -> None:
    package = load_package(stack)
    parser = Parser.load(package=package, vxlan_ports=[4789], geneve_ports=[6081], dvm=dvm)
    for data in PROBES:
        parser.parse(data)


def assert_located(err: ProfileError, files: dict[str, str]) -> None:
    head = f"{err.path}:{err.line}:{err.column}: "
    assert err.line >= 1 and err.column >= 1, f"unlocated: {err}"
    assert str(err).startswith(head), str(err)
    text = files.get(err.path)
    if text is None:  # an error in a stock profile the mutant builds on
        text = Path(err.path).read_text()
    lines = text.splitlines()
    assert err.line <= max(len(lines), 1), f"line {err.line} past the end: {err}"
    if err.line <= len(lines) and lines[err.line - 1].strip():
        assert "^" in err.context, f"no caret: {err}"


STOCK = {
    "os-default": (lambda p: [p], 60),
    "comms": (lambda p: [p], 60),
    "examples/custom-gre.ddp": (lambda p: ["comms", p], 40),
}


@pytest.mark.parametrize("name", sorted(STOCK))
def test_mutated_stock_profiles_fail_with_a_located_error(name: str, tmp_path: Path) -> None:
    source = (profiles_dir() / (name if name.endswith(".ddp") else f"{name}.ddp")).read_text()
    stack_of, count = STOCK[name]
    rng = random.Random(f"profile-fuzz:{name}")
    path = tmp_path / Path(name).name
    if not path.suffix:
        path = path.with_suffix(".ddp")
    loaded = rejected = 0
    for i in range(count * SCALE):
        text = mutate(source, rng)
        path.write_text(text)
        try:
            load_mutant(stack_of(str(path)), dvm=bool(i % 2))
            loaded += 1
        except ProfileError as err:
            assert_located(err, {str(path): text})
            rejected += 1
        except Exception as err:  # noqa: BLE001 - the finding
            keep = tmp_path.parent / f"crash-{Path(name).stem}-{i}.ddp"
            keep.write_text(text)
            pytest.fail(f"mutant {i} of {name} raised {type(err).__name__}: {err} (saved {keep})")
    assert loaded and rejected > loaded / 2  # most mutants are wrong, some still load


# Edits that reach the semantic checks and the graph compiler, where a random edit
# rarely goes. Each must be rejected with a located error, not crash the compiler.
SEMANTIC = {
    "length of an optional field": (
        "protocol q { fields { a: 8; k: 8; key: 32 if k; } length key * 4; }",
        "length refers to optional field 'key'",
    ),
    "a range the tables cannot hold": (
        "protocol q { fields { a: 32; } select a { 0..0xffffffff => end; } }",
        "matches 4294967296 values",
    ),
    "a tuple of ranges": (
        "protocol q { fields { a: 16; b: 16; } select (a, b) { (0..4095, 0..4095) => end; } }",
        "matches 16777216 values",
    ),
    "a missing package": ('package "X" version 1.0 extends "no-such-package";', "extends"),
    "a zero-byte loop": ("protocol q { length 0; select peek(0, 8) { 1 => q; } }", "loop"),
    "an unknown table": ("protocol q { fields { a: 16; } select a { @nope => end; } }", "@nope"),
}


@pytest.mark.parametrize("case", sorted(SEMANTIC))
def test_semantic_edge_cases_are_located(case: str, tmp_path: Path) -> None:
    body, expect = SEMANTIC[case]
    path = tmp_path / "user.ddp"
    path.write_text(body + "\nextend select ipv4.protocol { 200 => q; }\n")
    with pytest.raises(ProfileError) as info:
        load_mutant(["os-default", str(path)], dvm=False)
    assert_located(info.value, {str(path): path.read_text()})
    assert expect in str(info.value) and info.value.path == str(path)


def test_extends_loop_is_located(tmp_path: Path) -> None:
    path = tmp_path / "me.ddp"
    path.write_text('# a loop\npackage "Me" version 1.0 extends "me.ddp";\nstart eth;\n')
    with pytest.raises(ProfileError) as info:
        load_package([str(path)])
    assert str(info.value).startswith(f'{path}:2:1: extends "me.ddp"')
    assert "loop" in str(info.value)

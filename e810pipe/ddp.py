"""The DDP profile language front end: text to frozen :mod:`ddp_model` values.

``parse_profile`` runs the Lark LALR parser (strict mode) and a Transformer that
builds frozen dataclasses. Cross-file resolution and the semantic checks live in
:mod:`e810pipe.package`, a separate pass.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, VisitError

from .ddp_model import (
    Case,
    EdgeSet,
    ExtendSelect,
    Field,
    KeyItem,
    MatchField,
    PackageHeader,
    Pos,
    Profile,
    Protocol,
    PType,
    Report,
    Select,
    Use,
)
from .errors import ProfileError, context_line, quotable
from .inputs import clip, read_text
from .resources import grammar_path

# Bounds on what a profile may say (README, "Input limits"): deeper expressions or
# longer numbers are errors at their position, before anything recurses or allocates.
MAX_EXPR_DEPTH = 64  # operators nested in one expression
MAX_DIGITS = 20  # digits of one number (a 64-bit value has at most 20)

# Friendly names for the grammar's terminals in "expected ..." messages.
_TERMINAL_NAMES = {
    "SEMICOLON": "';'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COLON": "':'",
    "COMMA": "','",
    "EQUAL": "'='",
    "NAME": "a name",
    "INT": "a number",
    "STRING": 'a "string"',
    "VERSION": "a version such as 1.3.30.0",
    "__ANON_0": "'=>'",
}


@functools.lru_cache(maxsize=1)
def _parser() -> Lark:
    """The profile grammar's LALR parser. Lark keeps its tables in the user cache
    (:mod:`e810pipe.cache`) and rebuilds them when the grammar or Lark changes."""
    from .cache import cache_dir

    text = grammar_path().read_text()
    where = cache_dir()
    cache: str | bool = False
    if where is not None:
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        cache = str(where / f"ddp-{digest}.lark.cache")
    return Lark(
        text,
        parser="lalr",
        strict=True,
        propagate_positions=True,
        maybe_placeholders=True,
        cache=cache,
    )


def _describe_expected(names: set[str] | frozenset[str]) -> str:
    shown = []
    for n in sorted(names):
        if n in _TERMINAL_NAMES:
            shown.append(_TERMINAL_NAMES[n])
        elif n.isupper() and n.isalpha():
            shown.append(f"'{n.lower()}'")
        elif n.startswith("__ANON"):
            continue
        else:
            shown.append(n.lower())
    return ", ".join(dict.fromkeys(shown)) or "something else"


def _syntax_error(err: UnexpectedInput, text: str, path: str) -> ProfileError:
    if not quotable(path):  # say where, never what the file holds
        line, column = getattr(err, "line", 0) or 0, getattr(err, "column", 0) or 0
        return ProfileError(
            "not a DDP profile (a syntax error here); profiles are .ddp files",
            path,
            max(line, 0),
            max(column, 0),
        )
    if isinstance(err, UnexpectedEOF):
        lines = text.splitlines() or [""]
        line, column = len(lines), len(lines[-1]) + 1
        expected: set[str] = {str(x) for x in err.expected}
        what = "unexpected end of file"
    else:
        line, column = err.line, err.column
        if isinstance(err, UnexpectedCharacters):
            expected = {str(x) for x in err.allowed or ()}
            what = f"unexpected character {text[err.pos_in_stream or 0]!r}"
        else:
            tok = getattr(err, "token", None)
            expected = {str(x) for x in getattr(err, "expected", ()) or ()}
            what = f"unexpected '{clip(str(tok.value))}'" if tok is not None else "unexpected input"
            if tok is not None and tok.type == "$END":
                what = "unexpected end of file"
    exp = _describe_expected(expected)
    return ProfileError(
        f"syntax error: {what}; expected {exp}",
        path,
        line,
        column,
        context_line(text, line, column),
        tuple(sorted(expected)),
    )


class _Build(Transformer_NonRecursive):
    """Tree to frozen dataclasses. One method per grammar rule.

    Non-recursive (an expression of 100,000 terms is a tree that deep), and it
    rejects expressions nested deeper than MAX_EXPR_DEPTH, so nothing later
    (checks, code generation) recurses deeply.
    """

    def __init__(self, path: str, text: str) -> None:
        super().__init__()
        self.path = path
        self.text = text
        self._depth: dict[int, int] = {}  # id(expression tuple) -> operator depth

    def _error(self, message: str, line: int, column: int) -> ProfileError:
        return ProfileError(message, self.path, line, column, context_line(self.text, line, column))

    def _pos(self, meta: Any) -> Pos:
        return Pos(self.path, getattr(meta, "line", 0), getattr(meta, "column", 0))

    def _tpos(self, tok: Token) -> Pos:
        return Pos(self.path, tok.line or 0, tok.column or 0)

    # terminals
    def INT(self, tok: Token) -> Token:
        digits = tok.value[2:] if tok.value[:2].lower() in ("0x", "0b", "0o") else tok.value
        if len(digits.lstrip("0")) > MAX_DIGITS:
            raise self._error(
                f"number of {len(digits)} digits is too large (at most {MAX_DIGITS} digits)",
                tok.line or 0,
                tok.column or 0,
            )
        return tok.update(value=int(tok.value, 0))

    def STRING(self, tok: Token) -> str:
        return str(tok.value[1:-1])

    # expressions
    def number(self, items: list) -> tuple:
        return ("num", int(items[0]))

    def ref(self, items: list) -> tuple:
        tok = items[0]
        return ("ref", str(tok), self._tpos(tok))

    def _bin(op: str):  # type: ignore[misc]
        @v_args(meta=True)
        def f(self: _Build, meta: Any, items: list) -> tuple:
            depth = 1 + max(self._depth.get(id(items[0]), 0), self._depth.get(id(items[1]), 0))
            if depth > MAX_EXPR_DEPTH:
                line, column = getattr(meta, "line", 0), getattr(meta, "column", 0)
                raise self._error(
                    f"expression nested too deeply (more than {MAX_EXPR_DEPTH} operators)",
                    line,
                    column,
                )
            out = (op, items[0], items[1])
            self._depth[id(out)] = depth
            return out

        return f

    add = _bin("+")
    sub = _bin("-")
    bor = _bin("|")
    mul = _bin("*")
    band = _bin("&")
    shl = _bin("<<")
    shr = _bin(">>")
    eq = _bin("==")
    ne = _bin("!=")

    def signed(self, items: list) -> int:
        return int(items[0])

    def negative(self, items: list) -> int:
        return -int(items[0])

    # top level
    @v_args(meta=True)
    def package(self, meta: Any, items: list) -> tuple:
        name, version, ext = items
        return ("package", PackageHeader(name, str(version), ext, self._pos(meta)))

    def extends_clause(self, items: list) -> str:
        return str(items[0])

    @v_args(meta=True)
    def proto_ids(self, meta: Any, items: list) -> tuple:
        return ("proto_ids", tuple(items))

    def id_def(self, items: list) -> tuple:
        return (str(items[0]), int(items[1]), self._tpos(items[0]))

    def option(self, items: list) -> tuple:
        return ("option", (str(items[0]), self._tpos(items[0])))

    def udp_tunnel(self, items: list) -> tuple:
        return ("udp_tunnel", tuple((str(t), self._tpos(t)) for t in items))

    def start_node(self, items: list) -> tuple:
        return ("start", (str(items[0]), self._tpos(items[0])))

    def tunnel_depth(self, items: list) -> tuple:
        return ("tunnel_depth", (int(items[0]), self._tpos(items[0])))

    # protocols
    def fields(self, items: list) -> tuple:
        return ("fields", tuple(items))

    def field(self, items: list) -> Field:
        name, bits, cond = items
        return Field(str(name), int(bits), cond, self._tpos(name))

    def field_cond(self, items: list) -> Any:
        return items[0]

    def length(self, items: list) -> tuple:
        return ("length", items[0])

    def at_clause(self, items: list) -> int:
        return int(items[0])

    @v_args(meta=True)
    def report(self, meta: Any, items: list) -> tuple:
        at = items[-1] if items[-1] is not None else 0
        ids = tuple(str(t) for t in items[:-1])
        return ("report", Report(ids, at, self._pos(meta)))

    @v_args(meta=True)
    def carrier(self, meta: Any, items: list) -> tuple:
        at = items[1] if items[1] is not None else 0
        return ("carrier", Report((str(items[0]),), at, self._pos(meta)))

    def mark(self, items: list) -> tuple:
        return ("mark", str(items[0]))

    def flag(self, items: list) -> tuple:
        return ("flag", str(items[0]))

    def lookahead(self, items: list) -> tuple:
        return ("lookahead", True)

    def key_field(self, items: list) -> KeyItem:
        return KeyItem(str(items[0]), 0, 0, self._tpos(items[0]))

    @v_args(meta=True)
    def key_peek(self, meta: Any, items: list) -> KeyItem:
        return KeyItem(None, int(items[0]), int(items[1]), self._pos(meta))

    def key(self, items: list) -> tuple:
        return tuple(items)

    @v_args(meta=True)
    def select(self, meta: Any, items: list) -> tuple:
        return ("select", Select(items[0], tuple(items[1:]), self._pos(meta)))

    def int_value(self, items: list) -> tuple:
        return ("int", int(items[0]))

    def range_value(self, items: list) -> tuple:
        return ("range", int(items[0]), int(items[1]))

    def port_value(self, items: list) -> tuple:
        return ("port", str(items[0]))

    def tuple_pattern(self, items: list) -> tuple:
        return ("tuple", tuple(items))

    def target(self, items: list) -> Token:
        return items[0]

    def attr_mark(self, items: list) -> tuple:
        return ("mark", str(items[0]))

    def attr_tunnel(self, items: list) -> tuple:
        return ("tunnel", str(items[0]))

    def attr_flag(self, items: list) -> tuple:
        return ("flag", str(items[0]))

    def attr_if(self, items: list) -> tuple:
        return ("if", (str(items[0]), True))

    def attr_if_not(self, items: list) -> tuple:
        return ("if", (str(items[0]), False))

    def _case(self, patterns: tuple | None, target: Token, attrs: list, pos: Pos) -> Case:
        marks = tuple(v for k, v in attrs if k == "mark")
        tunnels = [v for k, v in attrs if k == "tunnel"]
        flags = tuple(v for k, v in attrs if k == "flag")
        guards = tuple(v for k, v in attrs if k == "if")
        return Case(
            patterns,
            str(target),
            marks,
            tunnels[-1] if tunnels else None,
            flags,
            guards,
            pos,
        )

    @v_args(meta=True)
    def rule_case(self, meta: Any, items: list) -> Case:
        pats = []
        i = 0
        while (
            i < len(items)
            and isinstance(items[i], tuple)
            and items[i][0]
            in (
                "int",
                "range",
                "port",
                "tuple",
            )
        ):
            p = items[i]
            pats.append(p[1] if p[0] == "tuple" else (p,))
            i += 1
        target = items[i]
        return self._case(tuple(pats), target, items[i + 1 :], self._pos(meta))

    @v_args(meta=True)
    def default_case(self, meta: Any, items: list) -> Case:
        return self._case(None, items[0], items[1:], self._pos(meta))

    def use_case(self, items: list) -> Use:
        return Use(str(items[0]), self._tpos(items[0]))

    def from_clause(self, items: list) -> Token:
        return items[0]

    def _protocol(self, name: Token, display: str | None, base: Any, body: list) -> Protocol:
        groups: dict[str, list] = {}
        for kind, value in body:
            groups.setdefault(kind, []).append(value)
        fields = None
        if "fields" in groups:
            fields = tuple(f for fs in groups["fields"] for f in fs)
        length = groups["length"][-1] if "length" in groups else None
        return Protocol(
            name=str(name),
            display=display,
            base=str(base) if base is not None else None,
            fields=fields,
            length=length,
            reports=tuple(groups["report"]) if "report" in groups else None,
            carriers=tuple(groups["carrier"]) if "carrier" in groups else None,
            marks=tuple(groups["mark"]) if "mark" in groups else None,
            flags=tuple(groups["flag"]) if "flag" in groups else None,
            selects=tuple(groups["select"]) if "select" in groups else None,
            pos=self._tpos(name),
            lookahead=True if "lookahead" in groups else None,
        )

    def protocol(self, items: list) -> tuple:
        name, display, base, *body = items
        return ("protocol", self._protocol(name, display, base, body))

    def extend_protocol(self, items: list) -> tuple:
        name, *body = items
        return ("extend_protocol", self._protocol(name, None, None, body))

    def edges(self, items: list) -> tuple:
        name, *cases = items
        return ("edges", EdgeSet(str(name), tuple(cases), self._tpos(name)))

    def extend_edges(self, items: list) -> tuple:
        name, *cases = items
        return ("extend_edges", EdgeSet(str(name), tuple(cases), self._tpos(name)))

    def extend_select(self, items: list) -> tuple:
        proto, fld, *cases = items
        return (
            "extend_select",
            ExtendSelect(str(proto), str(fld), tuple(cases), self._tpos(proto)),
        )

    def ptype(self, items: list) -> tuple:
        num, name, *markers = items
        return (
            "ptype",
            PType(int(num), str(name), tuple(str(m) for m in markers), self._tpos(num)),
        )

    def match_field(self, items: list) -> tuple:
        name, proto, fld = items
        return ("match", MatchField(str(name), str(proto), str(fld), self._tpos(name)))

    def start(self, items: list) -> list:
        return items


_LIST_KINDS = {
    "protocol": "protocols",
    "edges": "edge_sets",
    "extend_protocol": "extend_protocols",
    "extend_select": "extend_selects",
    "extend_edges": "extend_edges",
    "ptype": "ptypes",
    "match": "match_fields",
    "option": "options",
}


def parse_profile(text: str, path: str = "<string>") -> Profile:
    """Parse one profile's text. Raises :class:`ProfileError` with a location."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as err:
        raise _syntax_error(err, text, path) from None
    try:
        statements = _Build(path, text).transform(tree)
    except VisitError as err:  # a transformer callback failed: report where
        if isinstance(err.orig_exc, ProfileError):
            raise err.orig_exc from None
        meta = getattr(err.obj, "meta", None)
        line = getattr(meta, "line", 0)
        column = getattr(meta, "column", 0)
        raise ProfileError(
            str(err.orig_exc), path, line, column, context_line(text, line, column)
        ) from None
    lists: dict[str, list] = {v: [] for v in _LIST_KINDS.values()}
    single: dict[str, Any] = {}
    ids: list = []
    tunnels: list = []
    for kind, value in statements:
        if kind in _LIST_KINDS:
            lists[_LIST_KINDS[kind]].append(value)
        elif kind == "proto_ids":
            ids.extend(value)
        elif kind == "udp_tunnel":
            tunnels.extend(value)
        else:
            if kind in single:
                pos = value.pos if hasattr(value, "pos") else value[1]
                raise ProfileError(
                    f"'{kind}' is declared twice in one profile",
                    path,
                    pos.line,
                    pos.column,
                    context_line(text, pos.line, pos.column),
                )
            single[kind] = value
    return Profile(
        path=path,
        text=text,
        package=single.get("package"),
        proto_ids=tuple(ids),
        udp_tunnels=tuple(tunnels),
        start=single.get("start"),
        tunnel_depth=single.get("tunnel_depth"),
        **{k: tuple(v) for k, v in lists.items()},  # type: ignore[arg-type]
    )


def load_profile_file(path: Path) -> Profile:
    """Read and parse one profile file (a regular file of at most LIMITS["profile"])."""
    name = str(path)

    def error(message: str, line: int, column: int) -> ProfileError:
        return ProfileError(f"cannot read profile: {message}", name, line, column)

    return parse_profile(read_text(path, "profile", error), name)

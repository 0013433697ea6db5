"""testpmd command text to command values: ``flow create``, ``port config`` and friends.

Users describe rules and device settings the way they would type them at the
``testpmd>`` prompt, or in a file given to ``--cmdline-file`` / ``load``: one
command per line, ``#`` starts a comment, blank lines are skipped, and (unlike
testpmd) a line ending in ``\\`` continues on the next one. Each command becomes a
frozen value (:class:`FlowCommand`, :class:`TunnelPortCommand`, ...) that remembers
where it was written (``where`` = ``"file:line"``).

testpmd's own parser (``app/test-pmd/cmdline_flow.c``) decides what may follow each
token from the token before it, so this is a hand-written recursive-descent parser
over whitespace-separated tokens rather than a Lark grammar: every error can name
exactly what was expected in that place (``expected 'is', 'spec', 'mask', 'last'
or 'prefix' after 'ipv4 src'``). Errors are :class:`TestpmdError` (a
:class:`~e810pipe.errors.RuleError`) with an rte_flow category and the index of the
offending item or action; the message carries ``file:line:column``, the line and a
caret under the column.

Pattern item fields are named as in the field catalog (:mod:`e810pipe.fields`):
``ipv4 src`` is ``ipv4.src``, ``pppoes seid`` is ``pppoes.session_id``. A field
testpmd knows but the catalog lacks (``vlan dei``, ``ipv4 version_ihl``) is refused
with a located error rather than silently dropped.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from .engine import TUNNEL_ITEMS
from .errors import RuleError, context_line
from .fields import _CATALOG
from .inputs import clip_context, clip_quoted, read_text
from .rules import ERROR_TYPES, Action, FieldSpec, FlowRule, Item, RawSpec

__all__ = [
    "Command",
    "FlowCommand",
    "NoopCommand",
    "RetaCommand",
    "RssKeyCommand",
    "RssTypesCommand",
    "RxqCommand",
    "SessionCommand",
    "TestpmdError",
    "TunnelPortCommand",
    "format_rule",
    "parse_command",
    "parse_commands",
    "parse_file",
]


# ---------------------------------------------------------------------------
# Command values


@dataclass(frozen=True)
class FlowCommand:
    """``flow validate|create|destroy|flush|list|query PORT ...``.

    ``rule`` is set for validate/create; ``rule_ids`` for destroy (one or more)
    and query (one); ``groups`` for ``flow list PORT group G [group G ...]``;
    ``action`` is the queried action (``count``).
    """

    verb: str
    port: int
    rule: FlowRule | None = None
    rule_ids: tuple[int, ...] = ()
    groups: tuple[int, ...] = ()
    action: str | None = None
    where: str = ""


@dataclass(frozen=True)
class TunnelPortCommand:
    """``port config PORT udp_tunnel_port add|rm TUNNEL UDP_PORT``."""

    port: int
    op: str  # add, rm
    tunnel: str  # vxlan, geneve, vxlan-gpe, ecpri
    udp_port: int
    where: str = ""


@dataclass(frozen=True)
class RxqCommand:
    """``port config all rxq N`` (``port`` None) or ``port config PORT rxq N``."""

    port: int | None
    queues: int
    where: str = ""


@dataclass(frozen=True)
class RssKeyCommand:
    """``port config PORT rss-hash-key TYPE HEX``: a 40- or 52-byte Toeplitz key."""

    port: int
    rss_type: str
    key: bytes
    where: str = ""


@dataclass(frozen=True)
class RetaCommand:
    """``port config PORT rss reta (index,queue)[,(index,queue)...]``.

    ``port`` is None for ``port config all rss reta ...`` (the form testpmd's guide
    shows; testpmd itself wants a port number there).
    """

    port: int | None
    entries: tuple[tuple[int, int], ...]
    where: str = ""


@dataclass(frozen=True)
class RssTypesCommand:
    """``port config all rss TYPE [TYPE...]``: the hash types (or all/none/default)."""

    port: int | None
    types: tuple[str, ...]
    where: str = ""


@dataclass(frozen=True)
class NoopCommand:
    """A testpmd command that changes nothing in the model (``start``, ``set fwd``...)."""

    text: str
    where: str = ""


@dataclass(frozen=True)
class SessionCommand:
    """A command about the testpmd session rather than the device's rules.

    ``verb`` is one of: start, stop, quit, help, set-verbose, set-fwd, set-promisc,
    set-allmulti, show-port-stats, clear-port-stats, show-port-info, show-rss-hash,
    show-rss-key, show-config, port-start, port-stop, port-reset, port-close, csum.
    ``port`` is None for ``all``; ``value`` the command's argument (a verbosity, a
    forwarding mode). The batch front ends (``run --cmd``, scenarios) ignore these; the
    console (:mod:`e810pipe.console`) carries them out.
    """

    verb: str
    port: int | None = None
    value: int | str | None = None
    where: str = ""


Command = (
    SessionCommand
    | FlowCommand
    | TunnelPortCommand
    | RxqCommand
    | RssKeyCommand
    | RetaCommand
    | RssTypesCommand
    | NoopCommand
)


class TestpmdError(RuleError):
    """A testpmd command was rejected, with where: path, line, column, context.

    ``str()`` reads ``Caught error type N (category): path:line:column: what is
    wrong``, then the line and a caret under the column. ``expected`` lists the
    tokens that would have been accepted there, when there is such a list.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(
        self,
        kind: str,
        message: str,
        index: int | None = None,
        path: str = "<cmd>",
        line: int = 0,
        column: int = 0,
        context: str = "",
        expected: tuple[str, ...] = (),
    ) -> None:
        code, category = ERROR_TYPES[kind]
        message = clip_quoted(message)  # a 1 MB token is not echoed whole
        context = clip_context(context)
        text = f"{path}:{line}:{column}: {message}" if line else f"{path}: {message}"
        if context:
            text += "\n" + context.rstrip("\n")
        super().__init__(text, category, code, index)
        self.kind = kind
        self.reason = message
        self.path = path
        self.line = line
        self.column = column
        self.context = context
        self.expected = expected


# ---------------------------------------------------------------------------
# What testpmd accepts


# Pattern items: testpmd field name -> catalog field name. Every field testpmd's
# cmdline_flow.c knows for the item is listed, so that a field the catalog lacks is
# told apart from a misspelt one.
_ITEMS: dict[str, dict[str, str]] = {
    "void": {},
    "any": {},  # matches any packet (RTE_FLOW_ITEM_TYPE_ANY); `num` is not modelled
    "eth": {"dst": "eth.dst", "src": "eth.src", "type": "eth.type", "has_vlan": "eth.has_vlan"},
    "vlan": {
        "tci": "vlan.tci",
        "pcp": "vlan.pcp",
        "dei": "vlan.dei",
        "vid": "vlan.vid",
        "inner_type": "vlan.inner_type",
        "has_more_vlan": "vlan.has_more_vlan",
    },
    "ipv4": {
        "version_ihl": "ipv4.version_ihl",
        "tos": "ipv4.tos",
        "length": "ipv4.length",
        "packet_id": "ipv4.packet_id",
        "fragment_offset": "ipv4.fragment_offset",
        "ttl": "ipv4.ttl",
        "proto": "ipv4.proto",
        "src": "ipv4.src",
        "dst": "ipv4.dst",
    },
    "ipv6": {
        "tc": "ipv6.tc",
        "flow": "ipv6.flow",
        "length": "ipv6.length",
        "proto": "ipv6.proto",
        "hop": "ipv6.hop",
        "src": "ipv6.src",
        "dst": "ipv6.dst",
        "has_frag_ext": "ipv6.has_frag_ext",
    },
    "ipv6_frag_ext": {
        "next_hdr": "ipv6_frag_ext.next_hdr",
        "frag_data": "ipv6_frag_ext.frag_data",
        "packet_id": "ipv6_frag_ext.packet_id",
    },
    "tcp": {"src": "tcp.src", "dst": "tcp.dst", "flags": "tcp.flags"},
    "udp": {"src": "udp.src", "dst": "udp.dst"},
    "sctp": {"src": "sctp.src", "dst": "sctp.dst", "tag": "sctp.tag", "cksum": "sctp.cksum"},
    "icmp": {"type": "icmp.type", "code": "icmp.code", "ident": "icmp.ident", "seq": "icmp.seq"},
    "icmp6": {"type": "icmp6.type", "code": "icmp6.code"},
    "gre": {
        "protocol": "gre.protocol",
        "c_rsvd0_ver": "gre.c_rsvd0_ver",
        "c_bit": "gre.c_bit",
        "k_bit": "gre.k_bit",
        "s_bit": "gre.s_bit",
    },
    "gre_key": {"value": "gre_key.value"},
    "nvgre": {"tni": "nvgre.tni"},
    "vxlan": {
        "vni": "vxlan.vni",
        "flag_g": "vxlan.flag_g",
        "flag_ver": "vxlan.flag_ver",
        "flag_i": "vxlan.flag_i",
        "flag_p": "vxlan.flag_p",
        "flag_b": "vxlan.flag_b",
        "flag_o": "vxlan.flag_o",
        "flag_d": "vxlan.flag_d",
        "flag_a": "vxlan.flag_a",
        "group_policy_id": "vxlan.group_policy_id",
        "protocol": "vxlan.protocol",
    },
    "vxlan-gpe": {
        "vni": "vxlan-gpe.vni",
        "protocol": "vxlan-gpe.protocol",
        "flags": "vxlan-gpe.flags",
        "rsvd0": "vxlan-gpe.rsvd0",
        "rsvd1": "vxlan-gpe.rsvd1",
    },
    "geneve": {"vni": "geneve.vni", "protocol": "geneve.protocol", "optlen": "geneve.optlen"},
    "mpls": {"label": "mpls.label", "tc": "mpls.tc", "s": "mpls.s", "ttl": "mpls.ttl"},
    "gtpu": {
        "v_pt_rsv_flags": "gtpu.v_pt_rsv_flags",
        "msg_type": "gtpu.msg_type",
        "teid": "gtpu.teid",
    },
    "gtp_psc": {"qfi": "gtp_psc.qfi", "pdu_t": "gtp_psc.pdu_t", "pdu_type": "gtp_psc.pdu_t"},
    "pfcp": {"s_field": "pfcp.s_field", "seid": "pfcp.seid"},
    "gtpc": {
        "v_pt_rsv_flags": "gtpc.v_pt_rsv_flags",
        "msg_type": "gtpc.msg_type",
        "teid": "gtpc.teid",
    },
    # testpmd's token is `seid`; its guide says `session_id`. Both are accepted.
    "pppoes": {"seid": "pppoes.session_id", "session_id": "pppoes.session_id"},
    # testpmd writes `pppoe_proto_id is 0x0021` (the item is its own field); the
    # guide writes `proto_id`. Both are accepted.
    "pppoe_proto_id": {"proto_id": "pppoes.proto_id"},
    "l2tpv3oip": {"session_id": "l2tpv3oip.session_id"},
    "esp": {"spi": "esp.spi"},
    "ah": {"spi": "ah.spi"},
    "raw": {},  # relative, search, offset, limit, pattern, pattern_hex: see _raw_item
}
# Fields testpmd reads that the field catalog cannot match (yet): read with their
# widths, so the PMD side (the engines) rejects them, not the command reader.
_READ_ONLY_WIDTHS = {
    "gtp_psc.pdu_t": 4,
    "pfcp.s_field": 8,
    "pfcp.seid": 64,
    "ipv6_frag_ext.next_hdr": 8,
    "ipv6_frag_ext.frag_data": 16,
    "ipv6_frag_ext.packet_id": 32,
    "gtpc.v_pt_rsv_flags": 8,
    "gtpc.msg_type": 8,
    "gtpc.teid": 32,
}


def _width(catalog: str) -> int:
    if catalog in _CATALOG:
        return int(_CATALOG[catalog][2])
    return _READ_ONLY_WIDTHS[catalog]


_BARE_FIELD = {"pppoe_proto_id": "proto_id"}  # items followed directly by an operator
_RAW_FIELDS = ("relative", "search", "offset", "limit", "pattern", "pattern_hex")
_RAW_MAX = {"pattern": 512, "pattern_hex": 128}  # bytes, as testpmd's buffers
_OPS = ("is", "spec", "mask", "last", "prefix")
_OP_KIND = {
    "is": "ITEM_SPEC",
    "spec": "ITEM_SPEC",
    "mask": "ITEM_MASK",
    "prefix": "ITEM_MASK",
    "last": "ITEM_LAST",
}
_MAC_FIELDS = frozenset({"eth.dst", "eth.src"})
_V4_FIELDS = frozenset({"ipv4.src", "ipv4.dst"})
_V6_FIELDS = frozenset({"ipv6.src", "ipv6.dst"})
_HEX_FIELDS = frozenset(
    {
        "eth.type",
        "vlan.tci",
        "vlan.inner_type",
        "tcp.flags",
        "gre.protocol",
        "gre.c_rsvd0_ver",
        "gre_key.value",
        "geneve.protocol",
        "vxlan-gpe.protocol",
        "pppoes.proto_id",
        "esp.spi",
        "ah.spi",
    }
)

# Actions and the parameters each takes.
_ACTIONS: dict[str, tuple[str, ...]] = {
    "queue": ("index",),
    "rss": ("func", "level", "types", "key", "key_len", "queues"),
    "drop": (),
    "passthru": (),
    "mark": ("id",),
    "count": ("identifier",),
    # to a port (DCF: switch rules that forward to VFs); the id rides in Action.queue
    "represented_port": ("ethdev_port_id",),
    "port_representor": ("port_id",),
    "vf": ("id", "original"),
}
_RSS_FUNCS = ("default", "toeplitz", "simple_xor", "symmetric_toeplitz", "symmetric_toeplitz_sort")

# RSS type names (testpmd's rss_type_table).
RSS_TYPES = frozenset(
    "all none ip udp tcp sctp tunnel vlan ipv4 ipv4-frag ipv4-tcp ipv4-udp ipv4-sctp "
    "ipv4-other ipv6 ipv6-frag ipv6-tcp ipv6-udp ipv6-sctp ipv6-other l2-payload ipv6-ex "
    "ipv6-tcp-ex ipv6-udp-ex port vxlan geneve nvgre gtpu eth s-vlan c-vlan esp ah l2tpv3 "
    "pfcp pppoe ecpri mpls ipv4-chksum l4-chksum l2tpv2 l3-pre96 l3-pre64 l3-pre56 "
    "l3-pre48 l3-pre40 l3-pre32 l2-dst-only l2-src-only l4-dst-only l4-src-only "
    "l3-dst-only l3-src-only ipv6-flow-label".split()
)
# `port config all rss VALUE` also takes these (and a numeric type ID).
_PORT_RSS_EXTRA = ("default", "level-default", "level-outer", "level-inner")
# `port config PORT rss-hash-key TYPE HEX`
_KEY_TYPES = (
    "ipv4 ipv4-frag ipv4-tcp ipv4-udp ipv4-sctp ipv4-other ipv6 ipv6-frag ipv6-tcp "
    "ipv6-udp ipv6-sctp ipv6-other l2-payload ipv6-ex ipv6-tcp-ex ipv6-udp-ex".split()
)
_KEY_SIZES = (40, 52)  # bytes: the common Toeplitz key and the E810's
_TUNNELS = ("vxlan", "geneve", "vxlan-gpe", "ecpri")
_FWD_MODES = (
    "io mac macswap flowgen rxonly txonly csum icmpecho ieee1588 noisy 5tswap "
    "shared-rxq recycle_mbufs".split()
)
_PORT_CONFIG_ALL_NUMBERS = ("txq", "rxd", "txd", "burst", "max-pkt-len", "max-lro-pkt-size")


# ---------------------------------------------------------------------------
# Tokens


class _Tok(NamedTuple):  # a NamedTuple: 16K-rule files make half a million of them
    text: str
    line: int  # 1-based physical line
    col: int  # 1-based column in that line
    src: str  # the physical line, for the caret

    @property
    def end(self) -> int:
        return self.col + len(self.text)


_COMMENT = re.compile(r"#.*")
_WORD = re.compile(r"\S+")


_new_tok = tuple.__new__  # skips the NamedTuple's Python-level __new__


def _logical_lines(text: str) -> Iterator[list[_Tok]]:
    """Commands as token lists: comments dropped, ``\\`` continuations joined."""
    toks: list[_Tok] = []
    for n, raw in enumerate(text.splitlines(), 1):
        src = raw.expandtabs(1)  # one column per character, as the caret line shows it
        body = _COMMENT.sub("", src).rstrip()
        more = body.endswith("\\")
        if more:
            body = body[:-1]
        toks.extend([_new_tok(_Tok, (m[0], n, m.start() + 1, src)) for m in _WORD.finditer(body)])
        if not more and toks:
            yield toks
            toks = []
    if toks:
        yield toks


def _one_of(names: tuple[str, ...] | list[str], quote: bool = True) -> str:
    shown = [f"'{n}'" if quote else n for n in names]
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + " or " + shown[-1]


# ---------------------------------------------------------------------------
# Values


_MAC6 = re.compile(r"^[0-9A-Fa-f]{1,2}([:-])(?:[0-9A-Fa-f]{1,2}\1){4}[0-9A-Fa-f]{1,2}$")
_MAC3 = re.compile(r"^[0-9A-Fa-f]{4}([:.])[0-9A-Fa-f]{4}\1[0-9A-Fa-f]{4}$")


def _uint(text: str) -> int | None:
    """An unsigned number as testpmd's strtoumax(base 0) reads it, or None.

    ``0x`` starts hexadecimal, a leading ``0`` octal, anything else decimal.
    """
    if text.isdigit() and text.isascii() and (text[0] != "0" or len(text) == 1):
        return int(text)  # plain decimal, as below
    t = text.lower()
    try:
        if t.startswith("0x"):
            return int(t[2:], 16) if re.fullmatch(r"[0-9a-f]+", t[2:]) else None
        if not t.isdigit() or not t.isascii():
            return None
        if len(t) > 1 and t[0] == "0":
            return int(t, 8) if re.fullmatch(r"[0-7]+", t) else None
        return int(t, 10)
    except ValueError:
        return None


_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED = re.compile(r"\.".join([_OCTET] * 4))


def _ipv4(text: str) -> int | None:
    """An IPv4 address as ipaddress reads it (no leading zeros), or None.

    Plain dotted quads take a regex: 16K-rule files hold thousands of addresses."""
    m = _DOTTED.fullmatch(text)
    if m is not None:
        a, b, c, d = m.groups()
        return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def _ipv6(text: str) -> int | None:
    """An IPv6 address as ipaddress reads it, or None (inet_pton first: it is C).

    A scoped address (``fe80::1%eth0``) is None: testpmd reads addresses with
    inet_pton (cmdline_parse_ipaddr.c), which has no scope IDs, and a rule has no
    interface to scope to. (ipaddress would accept it and drop the scope.)"""
    if "%" in text:
        return None
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except (OSError, ValueError):
        pass
    try:
        return int(ipaddress.IPv6Address(text))
    except ValueError:
        return None


def _sint(text: str) -> int | None:
    if text.startswith("-"):
        v = _uint(text[1:])
        return None if v is None else -v
    return _uint(text[1:] if text.startswith("+") else text)


def _mac(text: str) -> int | None:
    if _MAC6.match(text):
        parts = re.split(r"[:-]", text)
        return int.from_bytes(bytes(int(p, 16) for p in parts), "big")
    if _MAC3.match(text):
        return int(re.sub(r"[:.]", "", text), 16)
    return None


def _fmt_mac(v: int) -> str:
    return ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))


_NAMES: dict[str, tuple[list[str], list[str]]] = {}


def _item_names(item: str) -> tuple[list[str], list[str]]:
    """An item's field names, and those the field catalog supports (made once)."""
    names = _NAMES.get(item)
    if names is None:
        table = _ITEMS[item]
        names = _NAMES[item] = (list(table), [f for f, c in table.items() if c in _CATALOG])
    return names


def _hex_bytes(text: str) -> bytes | None:
    t = text[2:] if text[:2] in ("0x", "0X") else text
    if not t or len(t) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", t):
        return None
    return bytes.fromhex(t)


def _bool(text: str) -> bool | None:
    t = text.lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off"):
        return False
    return None


def _prefix_len(mask: int, width: int) -> int | None:
    """N if `mask` is N leading one bits of a `width`-bit field, else None."""
    for n in range(width + 1):
        if mask == ((1 << n) - 1) << (width - n):
            return n
    return None


# ---------------------------------------------------------------------------
# The parser


@dataclass
class _FieldState:
    name: str  # catalog name
    label: str  # "ipv4 src", for messages
    value: int | None = None
    mask: int | None = None
    last: int | None = None
    last_tok: _Tok | None = None


class _Parser:
    """One command's tokens to a command value."""

    # When a list: the value tokens read, as (token index, target, check), for
    # _ShapeMemo (a rule of the same shape is then built from its values alone).
    rec: list[tuple[int, Any, Any]] | None = None

    def __init__(self, toks: list[_Tok], path: str, protocols: Collection[str] = ()) -> None:
        self.protocols = protocols  # a loaded DDP package's protocols: pattern items too
        self.toks = toks
        self.pos = 0
        self.path = path
        self.line = toks[0].line
        self.where = f"{path}:{self.line}"

    # -- helpers -----------------------------------------------------------

    def fail(
        self,
        kind: str,
        message: str,
        tok: _Tok | None = None,
        index: int | None = None,
        expected: tuple[str, ...] = (),
    ) -> NoReturn:
        if tok is None:  # at the end of the command: just after its last token
            last = self.toks[-1]
            line, col, src = last.line, last.end, last.src
        else:
            line, col, src = tok.line, tok.col, tok.src
        raise TestpmdError(
            kind,
            message,
            index,
            self.path,
            line,
            col,
            context_line(src, 1, col),
            expected,
        )

    def peek(self, ahead: int = 0) -> _Tok | None:
        i = self.pos + ahead
        return self.toks[i] if i < len(self.toks) else None

    def at(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.text in words

    def take(self) -> _Tok | None:
        tok = self.peek()
        if tok is not None:
            self.pos += 1
        return tok

    def word(
        self,
        choices: tuple[str, ...] | list[str],
        after: str,
        kind: str = "UNSPECIFIED",
        index: int | None = None,
    ) -> _Tok:
        """The next token, which must be one of `choices`."""
        tok = self.take()
        if tok is None or tok.text not in choices:
            what = "end of command" if tok is None else f"'{tok.text}'"
            self.fail(
                kind,
                f"expected {_one_of(list(choices))} after '{after}', not {what}",
                tok,
                index,
                tuple(choices),
            )
        return tok

    def number(
        self,
        what: str,
        after: str,
        bits: int,
        kind: str = "UNSPECIFIED",
        index: int | None = None,
    ) -> int:
        """The next token as an unsigned number of at most `bits` bits."""
        tok = self.take()
        if tok is None:
            self.fail(kind, f"expected {what} after '{after}'", None, index, (what,))
        value = _uint(tok.text)
        if value is None:
            self.fail(kind, f"expected {what} after '{after}', not '{tok.text}'", tok, index)
        if value >> bits:
            self.fail(
                kind,
                f"{what} {tok.text} is out of range (at most {(1 << bits) - 1})",
                tok,
                index,
            )
        return value

    def slot(self, target: Any, check: Any) -> None:
        """Note that the token just read was a value going to `target` (when recording)."""
        if self.rec is not None:
            self.rec.append((self.pos - 1, target, check))

    def done(self, kind: str = "UNSPECIFIED", index: int | None = None) -> None:
        tok = self.peek()
        if tok is not None:
            self.fail(kind, f"unexpected '{tok.text}' after the end of the command", tok, index)

    def text(self) -> str:
        return " ".join([t[0] for t in self.toks])  # t[0] is t.text

    # -- commands ----------------------------------------------------------

    def command(self) -> Command:
        if self.at("testpmd>"):  # pasted with its prompt
            if len(self.toks) == 1:
                self.fail("UNSPECIFIED", "expected a command after 'testpmd>'")
            self.toks = self.toks[1:]
        first = self.peek()
        assert first is not None
        head = first.text
        if head == "flow":
            return self.flow()
        if head == "port":
            return self.port()
        if head == "set":
            return self.set_command()
        if head in ("start", "stop", "quit"):
            self.pos += 1
            if head == "start" and self.at("tx_first"):
                self.pos += 1
                if self.peek() is not None:
                    self.number("a burst count", "start tx_first", 32)
            self.done()
            return SessionCommand(head, where=self.where)
        if head == "help":
            self.pos = len(self.toks)
            return SessionCommand("help", where=self.where)
        if head in ("show", "clear"):
            return self.show_clear(head)
        if head == "rx_vxlan_port":
            # rx_vxlan_port add|rm UDP_PORT PORT_ID (cmd_tunnel_udp_config)
            self.pos += 1
            op = self.word(("add", "rm"), "rx_vxlan_port").text
            udp = self.number("a UDP port", f"rx_vxlan_port {op}", 16)
            port = self.number("a port number", f"rx_vxlan_port {op} {udp}", 16)
            self.done()
            return TunnelPortCommand(port, op, "vxlan", udp, self.where)
        if head == "csum":
            self.pos = len(self.toks)
            return SessionCommand("csum", where=self.where)
        if head == "vlan":
            # vlan set filter|strip|extend|qinq_strip on|off PORT (cmd_vlan_offload)
            self.pos += 1
            self.word(("set",), "vlan")
            what = self.word(("filter", "strip", "extend", "qinq_strip", "stripq"), "vlan set")
            onoff = self.word(("on", "off"), f"vlan set {what.text}").text
            port = self.number("a port number", f"vlan set {what.text} {onoff}", 16)
            self.done()
            return SessionCommand(f"vlan-{what.text}", port, onoff, self.where)
        if head == "rx_vlan":
            # rx_vlan add|rm VLAN_ID|all PORT (cmd_rx_vlan_filter): the VLAN filter table
            self.pos += 1
            op = self.word(("add", "rm"), "rx_vlan").text
            if self.at("all"):
                self.pos += 1
                vid: int | str = "all"
            else:
                vid = self.number("a VLAN id", f"rx_vlan {op}", 12)
            port = self.number("a port number", f"rx_vlan {op} {vid}", 16)
            self.done()
            return SessionCommand(f"rx_vlan-{op}", port, vid, self.where)
        if head == "mcast_addr":
            self.pos += 1
            op = self.word(("add", "remove"), "mcast_addr").text
            port = self.number("a port number", f"mcast_addr {op}", 16)
            mtok = self.take()
            if mtok is None or _mac(mtok.text) is None:
                self.fail("UNSPECIFIED", "expected a multicast MAC address", mtok)
            self.done()
            return SessionCommand(f"mcast_addr-{op}", port, mtok.text, self.where)
        self.fail(
            "UNSPECIFIED",
            f"unknown command '{head}'; expected 'flow', 'port', 'set', 'start', 'stop', "
            "'show', 'clear', 'help' or 'quit'",
            first,
            expected=(
                "flow",
                "port",
                "set",
                "start",
                "stop",
                "show",
                "clear",
                "help",
                "quit",
                "rx_vxlan_port",
                "vlan",
                "rx_vlan",
                "mcast_addr",
                "csum",
            ),  # fmt: skip
        )

    def noop(self) -> NoopCommand:
        return NoopCommand(self.text(), self.where)

    def port_or_all(self, after: str) -> int | None:
        if self.at("all"):
            self.pos += 1
            return None
        return self.number("a port number or 'all'", after, 16)

    def show_clear(self, head: str) -> Command:
        """``show port stats|info all|N``, ``show port N rss-hash [key]``,
        ``show config fwd``, ``clear port stats all|N``."""
        self.pos += 1
        if head == "show" and self.at("config"):
            self.pos = len(self.toks)
            return SessionCommand("show-config", where=self.where)
        self.word(("port",), head)
        if self.at("stats", "info", "xstats"):
            what = self.take()
            assert what is not None
            if head == "clear" and what.text != "stats":
                self.fail("UNSPECIFIED", "expected 'clear port stats all|N'", what)
            port = self.port_or_all(f"{head} port {what.text}")
            self.done()
            verb = f"{head}-port-{'stats' if what.text == 'xstats' else what.text}"
            return SessionCommand(verb, port, where=self.where)
        if head == "clear":
            self.word(("stats",), "clear port")
        port = self.number("a port number", "show port", 16)
        self.word(("rss-hash",), f"show port {port}")
        key = False
        if self.at("key"):
            self.pos += 1
            key = True
        self.done()
        return SessionCommand("show-rss-key" if key else "show-rss-hash", port, where=self.where)

    def set_command(self) -> Command:
        self.pos += 1
        what = self.word(("verbose", "fwd", "promisc", "allmulti", "portlist"), "set")
        value: int | str | None = None
        port: int | None = None
        if what.text == "portlist":
            # set portlist 0,3 (cmd_set_list): the forwarding ports
            tok = self.take()
            if tok is None or not re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", tok.text):
                self.fail("UNSPECIFIED", "expected a port list such as 0,3", tok)
            self.done()
            return SessionCommand("set-portlist", None, tok.text, self.where)
        if what.text == "verbose":
            value = self.number("a verbosity level", "set verbose", 32)
        elif what.text == "fwd":
            value = self.word(_FWD_MODES, "set fwd").text
            if self.at("retry"):
                self.pos += 1
        else:
            port = self.port_or_all(f"set {what.text}")
            value = self.word(("on", "off"), f"set {what.text}").text
        self.done()
        return SessionCommand(f"set-{what.text}", port, value, self.where)

    def port(self) -> Command:
        self.pos += 1
        what = self.word(("config", "start", "stop", "close", "reset"), "port")
        if what.text != "config":
            port = self.port_or_all(f"port {what.text}")
            self.done()
            return SessionCommand(f"port-{what.text}", port, where=self.where)
        if self.at("all"):
            self.pos += 1
            return self.port_config(None)
        port = self.number("a port number or 'all'", "port config", 16)
        return self.port_config(port)

    def port_config(self, port: int | None) -> Command:
        after = f"port config {'all' if port is None else port}"
        if port is None:
            choices: tuple[str, ...] = ("rxq", "rss", *_PORT_CONFIG_ALL_NUMBERS)
        else:
            choices = ("udp_tunnel_port", "rxq", "rss-hash-key", "rss")
        what = self.word(choices, after)
        after += f" {what.text}"
        if what.text == "rxq":
            n = self.number("a queue count", after, 16)
            self.done()
            return RxqCommand(port, n, self.where)
        if what.text in _PORT_CONFIG_ALL_NUMBERS:
            self.number("a number", after, 32)
            self.done()
            return self.noop()
        if what.text == "udp_tunnel_port":
            assert port is not None
            op = self.word(("add", "rm"), after).text
            tunnel = self.word(_TUNNELS, f"{after} {op}").text
            udp = self.number("a UDP port", f"{after} {op} {tunnel}", 16)
            self.done()
            return TunnelPortCommand(port, op, tunnel, udp, self.where)
        if what.text == "rss-hash-key":
            assert port is not None
            rss_type = self.word(_KEY_TYPES, after).text
            tok = self.take()
            if tok is None:
                self.fail(
                    "UNSPECIFIED",
                    f"expected the key as hex digits after '{after} {rss_type}'",
                )
            key = _hex_bytes(tok.text) if not tok.text.lower().startswith("0x") else None
            if key is None:
                self.fail(
                    "UNSPECIFIED",
                    f"'{tok.text}' is not a key: expected an even number of hex digits",
                    tok,
                )
            if len(key) not in _KEY_SIZES:
                self.fail(
                    "UNSPECIFIED",
                    f"the key has {len(key)} bytes ({len(tok.text)} hex digits); expected "
                    "52 bytes (104 hex digits, the E810 key) or 40 bytes (80 hex digits)",
                    tok,
                )
            self.done()
            return RssKeyCommand(port, rss_type, key, self.where)
        # rss
        if self.at("reta"):
            self.pos += 1
            return RetaCommand(port, self.reta(f"{after} reta"), self.where)
        if port is not None:
            self.word(("reta",), after)
        types: list[str] = []
        while (tok := self.take()) is not None:
            if tok.text in RSS_TYPES or tok.text in _PORT_RSS_EXTRA or _uint(tok.text) is not None:
                types.append(tok.text)
            else:
                self.fail(
                    "UNSPECIFIED",
                    f"unknown RSS type '{tok.text}'; expected all, ip, tcp, udp, sctp, none, "
                    "default, a type such as ipv4-tcp, or a type number",
                    tok,
                )
        if not types:
            self.fail(
                "UNSPECIFIED",
                f"expected RSS types (all, ip, tcp, udp, sctp, none, default...) after '{after}'",
            )
        return RssTypesCommand(port, tuple(types), self.where)

    def reta(self, after: str) -> tuple[tuple[int, int], ...]:
        """``(index,queue)[,(index,queue)...]``, spaces allowed between the parts."""
        rest = self.toks[self.pos :]
        self.pos = len(self.toks)
        if not rest:
            self.fail("UNSPECIFIED", f"expected (index,queue) pairs after '{after}'")
        # the characters of the remaining tokens, one space between tokens, each with
        # its place in the source
        chars: list[tuple[str, _Tok]] = []
        for tok in rest:
            if chars:
                chars.append((" ", _Tok(" ", tok.line, tok.col - 1, tok.src)))
            chars.extend(
                (c, _Tok(c, tok.line, tok.col + k, tok.src)) for k, c in enumerate(tok.text)
            )
        end = _Tok("", rest[-1].line, rest[-1].end, rest[-1].src)
        entries: list[tuple[int, int]] = []
        i = 0

        def skip() -> None:
            nonlocal i
            while i < len(chars) and chars[i][0] == " ":
                i += 1

        def expect(ch: str) -> None:
            nonlocal i
            skip()
            if i >= len(chars) or chars[i][0] != ch:
                got = "end of command" if i >= len(chars) else f"'{chars[i][0]}'"
                self.fail(
                    "UNSPECIFIED",
                    f"expected '{ch}' in the RETA list, not {got}; write (index,queue),...",
                    chars[i][1] if i < len(chars) else end,
                )
            i += 1

        def num(what: str) -> int:
            nonlocal i
            skip()
            start = i
            while i < len(chars) and chars[i][0] not in "(), ":
                i += 1
            word = "".join(c for c, _ in chars[start:i])
            value = _uint(word)
            if value is None or value > 0xFFFF:
                got = f"'{word}'" if word else "nothing"
                self.fail(
                    "UNSPECIFIED",
                    f"expected a RETA {what} (0..65535), not {got}",
                    chars[start][1] if start < len(chars) else end,
                )
            return value

        while True:
            expect("(")
            index = num("index")
            expect(",")
            queue = num("queue")
            expect(")")
            entries.append((index, queue))
            skip()
            if i >= len(chars):
                break
            expect(",")
        return tuple(entries)

    # -- flow ----------------------------------------------------------------

    def flow(self) -> FlowCommand:
        self.pos += 1
        verbs = ("validate", "create", "destroy", "flush", "list", "query")
        verb = self.word(verbs, "flow").text
        port = self.number("a port number", f"flow {verb}", 16)
        self.slot("port", 16)
        after = f"flow {verb} {port}"
        if verb in ("validate", "create"):
            rule = self.rule(port)
            return FlowCommand(verb, port, rule=rule, where=self.where)
        if verb == "flush":
            self.done()
            return FlowCommand(verb, port, where=self.where)
        if verb == "list":
            groups: list[int] = []
            while self.peek() is not None:
                self.word(("group",), after)
                groups.append(self.number("a group number", "group", 32, "ATTR_GROUP"))
            return FlowCommand(verb, port, groups=tuple(groups), where=self.where)
        if verb == "query":
            rid = self.number("a rule ID", after, 32, "HANDLE")
            action = self.word(("count",), f"{after} {rid}").text
            self.done()
            return FlowCommand(verb, port, rule_ids=(rid,), action=action, where=self.where)
        # destroy: testpmd wants `rule ID` for each ID; bare IDs after the first are taken.
        self.word(("rule",), after, "HANDLE")
        ids = [self.number("a rule ID", "rule", 32, "HANDLE")]
        while self.peek() is not None:
            if self.at("rule"):
                self.pos += 1
            ids.append(self.number("a rule ID", "rule", 32, "HANDLE"))
        return FlowCommand(verb, port, rule_ids=tuple(ids), where=self.where)

    def rule(self, port: int) -> FlowRule:
        group = priority = 0
        attrs: set[str] = set()
        while True:
            tok = self.take()
            if tok is not None and tok.text == "pattern":
                break
            if tok is not None and tok.text == "group":
                group = self.number("a group number", "group", 32, "ATTR_GROUP")
                self.slot("group", 32)
            elif tok is not None and tok.text == "priority":
                priority = self.number("a priority level", "priority", 32, "ATTR_PRIORITY")
                self.slot("priority", 32)
            elif tok is not None and tok.text in ("ingress", "egress", "transfer"):
                attrs.add(tok.text)
            else:
                what = "end of command" if tok is None else f"'{tok.text}'"
                choices = ("group", "priority", "ingress", "egress", "transfer", "pattern")
                self.fail("ATTR", f"expected {_one_of(choices)}, not {what}", tok, None, choices)
        pattern = self.pattern()
        after_end = self.take()
        if after_end is None or after_end.text != "actions":
            what = "end of command" if after_end is None else f"'{after_end.text}'"
            self.fail(
                "ACTION_NUM",
                f"expected 'actions' after the pattern's 'end', not {what}",
                after_end,
                0,
                ("actions",),
            )
        actions, extra = self.actions()
        self.done()
        if "egress" in attrs:
            extra["egress"] = True
        if "transfer" in attrs:
            extra["transfer"] = True
        ingress = "ingress" in attrs or not ({"egress", "transfer"} & attrs)
        return FlowRule(
            port=port,
            pattern=pattern,
            actions=actions,
            group=group,
            priority=priority,
            ingress=ingress,
            text=self.text(),
            where=self.where,
            extra=extra,
        )

    def pattern(self) -> tuple[Item, ...]:
        items: list[Item] = []
        seen_tunnel = False
        prev: str | None = None
        while True:
            index = len(items)
            tok = self.take()
            if tok is None or tok.text == "actions":
                what = "the end of the command" if tok is None else "'actions'"
                self.fail(
                    "ITEM_NUM",
                    f"the pattern must end with 'end' before {what}",
                    tok,
                    index,
                    ("end",),
                )
            name = tok.text
            if name != "end" and name not in _ITEMS and name in self.protocols:
                # e810pipe extension: a DDP profile's own protocol, fields as it names them
                items.append(Item(name, index, self.profile_item_fields(name, index)))
                seen_tunnel = seen_tunnel or prev in TUNNEL_ITEMS
                prev = name
                continue
            if name != "end" and name not in _ITEMS:
                self.fail(
                    "ITEM",
                    f"unknown pattern item '{name}'; expected one of {', '.join(_ITEMS)}, "
                    "a protocol of the loaded profiles or 'end'",
                    tok,
                    index,
                    (*_ITEMS, "end"),
                )
            # The tunnel header (and its extensions: gre_key, gtp_psc) stays in the
            # outer segment; whatever follows it is the inner one.
            inner = seen_tunnel and not (name in TUNNEL_ITEMS and prev in TUNNEL_ITEMS)
            level = 1 if inner else 0
            if name == "end":
                items.append(Item("end", index, level=level))
                return tuple(items)
            if name == "raw":
                items.append(Item("raw", index, level=level, raw=self.raw_item(index)))
            else:
                specs = self.item_fields(name, index)
                items.append(Item(name, index, specs, level))
            if name in TUNNEL_ITEMS:
                seen_tunnel = True
            prev = name

    def end_of_item(
        self, item: str, index: int, fields: list[str], supported: list[str] | None = None
    ) -> bool:
        """True at the '/' closing the item (consumed); fails on anything but a field.

        `fields` are the names accepted here; `supported`, those worth suggesting.
        """
        tok = self.peek()
        if tok is not None and tok.text == "/":
            self.pos += 1
            return True
        if tok is not None and tok.text in fields:
            return False
        hint = fields if supported is None else supported
        shown = f"a field of '{item}' ({', '.join(hint)}) or '/'" if hint else "'/'"
        if tok is not None and tok.text == "actions":
            self.fail(
                "ITEM_NUM",
                "the pattern must end with '/ end' before 'actions'",
                tok,
                index,
                (*hint, "/"),
            )
        if tok is None or tok.text == "end":
            what = "end of command" if tok is None else "'end'"
            self.fail(
                "ITEM_NUM",
                f"expected {shown} after item '{item}', not {what}; the pattern ends with '/ end'",
                tok,
                index,
                (*hint, "/"),
            )
        if tok.text in _ITEMS:
            self.fail(
                "ITEM",
                f"expected {shown} after item '{item}', not '{tok.text}'; "
                "items are separated by '/'",
                tok,
                index,
                (*hint, "/"),
            )
        self.fail(
            "ITEM",
            f"item '{item}' has no field '{tok.text}'; expected {shown}",
            tok,
            index,
            (*hint, "/"),
        )

    def profile_item_fields(self, item: str, index: int) -> tuple[FieldSpec, ...]:
        """``FIELD OP VALUE...`` of a profile protocol's item (an e810pipe extension).

        The field widths come from the loaded profiles, which the reader does not see:
        `is` matches the whole field (mask -1, resolved when the rule is compiled) and
        values are numbers (or IPv4/IPv6/MAC addresses); `prefix` is not available.
        """
        states: dict[str, tuple[int | None, int | None, int | None]] = {}
        while True:
            tok = self.peek()
            if tok is not None and tok.text == "/":
                self.pos += 1
                break
            if tok is None or tok.text in ("end", "actions") or tok.text in _OPS:
                what = "end of command" if tok is None else f"'{tok.text}'"
                self.fail(
                    "ITEM_NUM" if tok is None or tok.text != "is" else "ITEM",
                    f"expected a field of '{item}' or '/' after item '{item}', not {what}",
                    tok,
                    index,
                    ("/",),
                )
            assert tok is not None
            self.pos += 1
            fname = tok.text
            label = f"{item} {fname}"
            op = self.take()
            ops = ("is", "spec", "mask", "last")
            if op is None or op.text not in ops:
                what = "end of command" if op is None else f"'{op.text}'"
                self.fail("ITEM", f"expected {_one_of(ops)} after '{label}', not {what}", op, index)
            vtok = self.take()
            got = None
            if vtok is not None:
                got = _uint(vtok.text)
                for conv in (_ipv4, _ipv6, _mac):
                    if got is None:
                        got = conv(vtok.text)
            if vtok is None or got is None:
                what = "end of command" if vtok is None else f"'{vtok.text}'"
                self.fail(
                    _OP_KIND[op.text],
                    f"expected a number or an address after '{label} {op.text}', not {what}",
                    vtok,
                    index,
                )
            value, mask, last = states.get(fname, (None, None, None))
            if op.text == "is":
                value, mask = got, -1
            elif op.text == "spec":
                value = got
            elif op.text == "mask":
                mask = got
            else:
                last = got
            states[fname] = (value, mask, last)
        return tuple(
            FieldSpec(
                f"{item}.{f}",
                v or 0,
                # as parse_vc_spec: `spec` alone leaves the mask unset (0)
                (-1 if last not in (None, 0, v) else 0) if m is None else m,
                None if last in (None, 0, v) else last,
            )
            for f, (v, m, last) in states.items()
        )

    def item_fields(self, item: str, index: int) -> tuple[FieldSpec, ...]:
        table = _ITEMS[item]
        states: dict[str, _FieldState] = {}
        bare = _BARE_FIELD.get(item)
        if bare is not None and self.at(*_OPS):
            # the item token names the field too: `pppoe_proto_id is 0x0021`
            self.field(item, bare, table[bare], f"{item}", index, states)
        names, supported = _item_names(item)
        while not self.end_of_item(item, index, names, supported):
            ftok = self.take()
            assert ftok is not None
            catalog = table[ftok.text]
            if catalog not in _CATALOG and catalog not in _READ_ONLY_WIDTHS:
                self.fail(
                    "ITEM",
                    f"item '{item}' field '{ftok.text}' cannot be matched: the field "
                    f"catalog has no '{catalog}'",
                    ftok,
                    index,
                )
            self.field(item, ftok.text, catalog, f"{item} {ftok.text}", index, states)
        specs = []
        # testpmd's parse_vc_spec: `spec` sets only the item's spec and `mask`/`prefix`
        # only its mask, so a field given without `is`, `mask` or `prefix` has mask 0,
        # and an item with no `is` or `spec` at all has no spec: ice matches nothing of
        # it (its parsers read an item's fields only `if (spec && mask)`). A range
        # (`last`) keeps the whole field (e810pipe's fallback ACL ranges).
        has_spec = any(st.value is not None for st in states.values())
        for st in states.values():
            full = (1 << _width(st.name)) - 1
            value = st.value if st.value is not None else 0
            mask = st.mask if st.mask is not None else (full if st.last is not None else 0)
            if not has_spec and st.last is None:
                mask = 0
            last = st.last
            if last is not None and (last == 0 or last == value):
                last = None  # rte_flow: a last of 0 or equal to spec is no range
            if last is not None and last < value:
                self.fail(
                    "ITEM_LAST",
                    f"'{st.label} last' {self.show(st.name, last)} is below its spec "
                    f"{self.show(st.name, value)}",
                    st.last_tok,
                    index,
                )
            specs.append(FieldSpec(st.name, value, mask, last))
        return tuple(specs)

    def field(
        self,
        item: str,
        fname: str,
        catalog: str,
        label: str,
        index: int,
        states: dict[str, _FieldState],
    ) -> None:
        """``OP VALUE`` after a field name; updates that field's state."""
        st = states.setdefault(catalog, _FieldState(catalog, f"{item} {fname}"))
        op = self.take()
        if op is None or op.text not in _OPS:
            what = "end of command" if op is None else f"'{op.text}'"
            self.fail(
                "ITEM",
                f"expected {_one_of(_OPS)} after '{label}', not {what}",
                op,
                index,
                _OPS,
            )
        kind = _OP_KIND[op.text]
        width = _width(catalog)
        full = (1 << width) - 1
        if op.text != "is" and self.rec is not None:
            # a spec/mask/last/prefix is read with the field's other values (a range
            # compares them): a shape with one is not rebuilt from its values
            self.rec.append((-1, "whole", None))
        vtok = self.take()
        if op.text == "prefix":
            if vtok is None or _uint(vtok.text) is None:
                what = "end of command" if vtok is None else f"'{vtok.text}'"
                self.fail(
                    kind,
                    f"expected a prefix length after '{label} prefix', not {what}",
                    vtok,
                    index,
                )
            n = _uint(vtok.text)
            assert n is not None
            if n > width:
                self.fail(
                    kind,
                    f"prefix {n} is longer than '{label}' ({width} bits)",
                    vtok,
                    index,
                )
            st.mask = ((1 << n) - 1) << (width - n)
            return
        value = self.value(catalog, vtok, f"{label} {op.text}", kind, index)
        assert vtok is not None
        if value > full:
            self.fail(
                kind,
                f"{vtok.text} does not fit '{label}' ({width} bits, at most {full:#x})",
                vtok,
                index,
            )
        if op.text == "is":
            st.value, st.mask = value, full
            self.slot(("spec", index, catalog), catalog)
        elif op.text == "spec":
            st.value = value
        elif op.text == "mask":
            st.mask = value
        else:
            st.last, st.last_tok = value, vtok

    def value(self, catalog: str, tok: _Tok | None, after: str, kind: str, index: int) -> int:
        if catalog in _MAC_FIELDS:
            what = "a MAC address such as 00:11:22:33:44:55"
        elif catalog in _V4_FIELDS:
            what = "an IPv4 address such as 10.0.0.1"
        elif catalog in _V6_FIELDS:
            what = "an IPv6 address such as 2001:db8::1"
        else:
            what = "a number"
        if tok is None:
            self.fail(kind, f"expected {what} after '{after}'", None, index, (what,))
        got: int | None
        if catalog in _MAC_FIELDS:
            got = _mac(tok.text)
        elif catalog in _V4_FIELDS:
            got = _ipv4(tok.text)
        elif catalog in _V6_FIELDS:
            got = _ipv6(tok.text)
        else:
            got = _uint(tok.text)
        if got is None:
            self.fail(kind, f"expected {what} after '{after}', not '{tok.text}'", tok, index)
        return got

    @staticmethod
    def show(catalog: str, value: int) -> str:
        return _fmt_value(catalog, value)

    def raw_item(self, index: int) -> RawSpec:
        relative = False
        offset = 0
        pattern: bytes | None = None
        mask: bytes | None = None
        mask_tok: _Tok | None = None
        while not self.end_of_item("raw", index, list(_RAW_FIELDS)):
            ftok = self.take()
            assert ftok is not None
            fname = ftok.text
            label = f"raw {fname}"
            if fname in ("search", "limit"):
                self.fail(
                    "ITEM",
                    f"item 'raw' field '{fname}' is not supported: a raw pattern is "
                    "matched at a fixed offset",
                    ftok,
                    index,
                )
            ops = ("is", "spec", "mask") if fname.startswith("pattern") else ("is", "spec")
            op = self.take()
            if op is None or op.text not in ops:
                what = "end of command" if op is None else f"'{op.text}'"
                self.fail(
                    "ITEM", f"expected {_one_of(ops)} after '{label}', not {what}", op, index, ops
                )
            kind = _OP_KIND[op.text]
            vtok = self.take()
            if vtok is None:
                self.fail(kind, f"expected a value after '{label} {op.text}'", None, index)
            if fname == "relative":
                b = _bool(vtok.text)
                if b is None:
                    self.fail(
                        kind,
                        f"expected a boolean (0/1, true/false, yes/no, on/off) "
                        f"after '{label} {op.text}', not '{vtok.text}'",
                        vtok,
                        index,
                    )
                relative = b
            elif fname == "offset":
                v = _sint(vtok.text)
                if v is None or not -(1 << 31) <= v < (1 << 31):
                    self.fail(
                        kind,
                        f"expected a signed 32-bit offset after "
                        f"'{label} {op.text}', not '{vtok.text}'",
                        vtok,
                        index,
                    )
                offset = v
            else:
                data = vtok.text.encode() if fname == "pattern" else _hex_bytes(vtok.text)
                if data is None:
                    self.fail(
                        kind,
                        f"expected an even number of hex digits after "
                        f"'{label} {op.text}', not '{vtok.text}'",
                        vtok,
                        index,
                    )
                if len(data) > _RAW_MAX[fname]:
                    self.fail(
                        kind,
                        f"'{label}' is {len(data)} bytes long; at most {_RAW_MAX[fname]}",
                        vtok,
                        index,
                    )
                if op.text == "mask":
                    mask, mask_tok = data, vtok
                else:
                    pattern = data
                    if op.text == "is":
                        mask, mask_tok = b"\xff" * len(data), vtok
        pattern = pattern or b""
        if mask is None:
            mask = b"\xff" * len(pattern)
        elif len(mask) != len(pattern):
            self.fail(
                "ITEM_MASK",
                f"the raw mask has {len(mask)} bytes but the pattern has {len(pattern)}",
                mask_tok,
                index,
            )
        return RawSpec(pattern, mask, offset, relative)

    def actions(self) -> tuple[tuple[Action, ...], dict]:
        acts: list[Action] = []
        extra: dict = {}
        while True:
            index = len(acts)
            tok = self.take()
            if tok is None:
                self.fail(
                    "ACTION_NUM",
                    "the actions must end with 'end'",
                    None,
                    index,
                    ("end",),
                )
            name = tok.text
            if name == "end":
                return tuple(acts), extra
            if name not in _ACTIONS:
                self.fail(
                    "ACTION",
                    f"unknown action '{name}'; expected one of {', '.join(_ACTIONS)} or 'end'",
                    tok,
                    index,
                    (*_ACTIONS, "end"),
                )
            acts.append(self.action(name, tok, index, extra))

    def action(self, name: str, tok: _Tok, index: int, extra: dict) -> Action:
        params = _ACTIONS[name]
        nums: dict[str, int] = {}
        conf: dict[str, object] = {}  # rss parameters the Action value has no room for
        queues: tuple[int, ...] = ()
        queues_given = False
        while True:
            p = self.take()
            if p is not None and p.text == "/":
                break
            if p is None or p.text not in params:
                shown = _one_of([*params, "/"])
                if p is None:
                    self.fail(
                        "ACTION_NUM",
                        f"expected {shown} after action '{name}', not end of command; "
                        "the actions end with '/ end'",
                        None,
                        index,
                        (*params, "/"),
                    )
                self.fail(
                    "ACTION",
                    f"action '{name}' has no parameter '{p.text}'; expected {shown}",
                    p,
                    index,
                    (*params, "/"),
                )
            label = f"{name} {p.text}"
            if p.text in (
                "index", "id", "identifier", "level", "key_len", "ethdev_port_id", "port_id",
                "original",
            ):  # fmt: skip
                bits = 16 if p.text in ("index", "ethdev_port_id", "port_id") else 32
                nums[p.text] = self.number("a number", label, bits, "ACTION_CONF", index)
                self.slot(("act", index, name, p.text), bits)
                if p.text in ("level", "key_len"):
                    conf[p.text] = nums[p.text]
            elif p.text == "func":
                conf["func"] = self.word(_RSS_FUNCS, label, "ACTION_CONF", index).text
            elif p.text == "key":
                ktok = self.take()
                key = None if ktok is None else _hex_bytes(ktok.text)
                if key is None:
                    what = "end of command" if ktok is None else f"'{ktok.text}'"
                    self.fail(
                        "ACTION_CONF",
                        f"expected the key as hex digits after '{label}', not {what}",
                        ktok,
                        index,
                    )
                conf["key"] = key
            elif p.text == "types":
                conf["types"] = self.rss_types(label, index)
            else:  # queues
                queues = self.rss_queues(label, index)
                queues_given = True
        # testpmd zeroes an action's configuration before reading its parameters
        # (cmdline_flow.c, parse_vc): `queue` alone is queue 0, `mark` alone mark 0
        if name == "queue":
            return Action("queue", index, queue=nums.get("index", 0))
        if name == "mark":
            return Action("mark", index, mark=nums.get("id", 0))
        if name == "count":
            return Action("count", index, counter=nums.get("identifier"))
        if name in ("represented_port", "port_representor"):
            pkey = "ethdev_port_id" if name == "represented_port" else "port_id"
            if pkey not in nums:
                self.fail("ACTION_CONF", f"action '{name}' needs '{pkey} N'", tok, index)
            return Action(name, index, queue=nums[pkey])
        if name == "vf":
            return Action("vf", index, queue=nums.get("id", 0))
        if name == "rss":
            if not queues_given:
                # parse_vc_action_rss: without `queues`, every Rx queue of the port
                # (min(nb_rxq, ACTION_RSS_QUEUE_NUM)); the front end fills them in
                # (rss_default_queues), as it knows the port's queues
                conf["default_queues"] = True
            if conf:
                extra.setdefault("rss", {})[index] = conf
            return Action("rss", index, queues=queues)
        return Action(name, index)

    def rss_types(self, label: str, index: int) -> tuple[str, ...]:
        types: list[str] = []
        while True:
            t = self.take()
            if t is not None and t.text == "end":
                return tuple(types)
            if t is None or t.text not in RSS_TYPES:
                what = "end of command" if t is None else f"'{t.text}'"
                self.fail(
                    "ACTION_CONF",
                    f"expected an RSS type (ipv4, ipv4-tcp, l3-src-only...) or 'end' "
                    f"after '{label}', not {what}",
                    t,
                    index,
                )
            types.append(t.text)

    def rss_queues(self, label: str, index: int) -> tuple[int, ...]:
        queues: list[int] = []
        while True:
            t = self.peek()
            if t is not None and t.text == "end":
                self.pos += 1
                return tuple(queues)
            if t is None or _uint(t.text) is None:
                what = "end of command" if t is None else f"'{t.text}'"
                self.fail(
                    "ACTION_CONF",
                    f"expected a queue number or 'end' after '{label}', not {what}",
                    t,
                    index,
                )
            queues.append(self.number("a queue number", label, 16, "ACTION_CONF", index))


# ---------------------------------------------------------------------------
# Public functions

ACTION_RSS_QUEUE_NUM = 128  # app/test-pmd/cmdline_flow.c


def rss_default_queues(rule: FlowRule, nb_rxq: int, rss_hf: int | None = None) -> FlowRule:
    """`rule` with testpmd's defaults filled in for each `rss` action: without
    `queues`, the queues 0 .. min(nb_rxq, ACTION_RSS_QUEUE_NUM) - 1; without `types`,
    testpmd's global rss_hf (as the bits "hf"), as parse_vc_action_rss()
    (app/test-pmd/cmdline_flow.c) sets them up. `queues end` stays an empty list
    (parse_vc_action_rss_queue: queue_num 0, queue NULL)."""
    confs = rule.extra.get("rss", {})
    if not any(a.type == "rss" for a in rule.actions):
        return rule
    queues = tuple(range(min(nb_rxq, ACTION_RSS_QUEUE_NUM)))
    actions = tuple(
        replace(a, queues=queues)
        if a.type == "rss" and confs.get(a.index, {}).get("default_queues")
        else a
        for a in rule.actions
    )
    rss = {}
    for a in rule.actions:
        if a.type != "rss":
            continue
        conf = {k: v for k, v in confs.get(a.index, {}).items() if k != "default_queues"}
        if "types" not in conf and rss_hf is not None:
            conf["hf"] = rss_hf
        rss[a.index] = conf
    return replace(rule, actions=actions, extra={**rule.extra, "rss": rss})


def _split_where(where: str) -> tuple[str, int]:
    m = re.fullmatch(r"(.*):(\d+)", where)
    if m and m.group(1):
        return m.group(1), int(m.group(2))
    return where, 1


# ---------------------------------------------------------------------------
# Rules of one shape

# The words after which a `flow create|validate` token is a value the memo rebuilds
_VALUE_AFTER = frozenset(
    ("is", "index", "id", "identifier", "ethdev_port_id", "port_id", "priority", "group")
)
# Action parameter -> the Action attribute it sets (as _Parser.action builds them)
_ACTION_ATTR = {
    ("queue", "index"): "queue",
    ("mark", "id"): "mark",
    ("count", "identifier"): "counter",
    ("represented_port", "ethdev_port_id"): "queue",
    ("port_representor", "port_id"): "queue",
    ("vf", "id"): "queue",
}
_SHAPES_MAX = 512  # shapes remembered per file (each holds one command and its plan)


def _converter(catalog: str) -> Any:
    if catalog in _MAC_FIELDS:
        return _mac
    if catalog in _V4_FIELDS:
        return _ipv4
    if catalog in _V6_FIELDS:
        return _ipv6
    return _uint


class _Shape:
    """How to build a `flow create|validate` command of one shape from its values.

    A shape is the command's words with its values blanked (the words after ``is``,
    ``index``, ``id``, ``priority``...). The first command of a shape is read by
    _Parser, which notes every value token it read and where the value went; when
    those are exactly the blanked words, and each went to one place, any command of
    the same shape is the same command with its values in those places: _Parser's
    control flow depends only on the other words. A value that does not convert or
    does not fit returns None, and _Parser then reads the command (for its error)."""

    __slots__ = ("cmd", "convs", "port", "group", "priority", "items", "acts")

    def __init__(self, cmd: FlowCommand, rec: list[tuple[int, Any, Any]]) -> None:
        rule = cmd.rule
        assert rule is not None
        self.cmd = cmd
        self.convs: list[tuple[int, Any, int]] = []  # (token index, converter, max value)
        self.port = self.group = self.priority = -1  # slot numbers, -1: none
        items: dict[int, list[tuple[int, int]]] = {}  # item -> [(spec, slot)]
        acts: dict[int, list[tuple[str, int]]] = {}  # action -> [(attribute, slot)]
        seen: set[Any] = set()
        for k, (pos, target, check) in enumerate(rec):
            if target in seen:
                raise ValueError(target)  # set twice: the last one wins; not a plan
            seen.add(target)
            if isinstance(check, int):
                self.convs.append((pos, _uint, (1 << check) - 1))
            else:
                self.convs.append((pos, _converter(check), (1 << _width(check)) - 1))
            if target == "port":
                self.port = k
            elif target == "group":
                self.group = k
            elif target == "priority":
                self.priority = k
            elif target[0] == "spec":
                specs = rule.pattern[target[1]].specs
                j = [sp.field for sp in specs].index(target[2])
                items.setdefault(target[1], []).append((j, k))
            else:
                _, i, name, param = target
                attr = _ACTION_ATTR.get((name, param))
                if attr is None or rule.actions[i].type != name:
                    raise ValueError(target)
                acts.setdefault(i, []).append((attr, k))
        if self.port < 0 or any(not isinstance(v, bool) for v in rule.extra.values()):
            raise ValueError("extra")
        self.items = sorted(items.items())
        self.acts = sorted(acts.items())

    def build(self, words: list[str], where: str) -> FlowCommand | None:
        vals = []
        for pos, conv, top in self.convs:
            v = conv(words[pos])
            if v is None or v > top:
                return None
            vals.append(v)
        cmd = self.cmd
        rule = cmd.rule
        assert rule is not None
        pattern = list(rule.pattern)
        for i, repl in self.items:
            it = pattern[i]
            specs = list(it.specs)
            for j, k in repl:
                sp = specs[j]
                specs[j] = FieldSpec(sp.field, vals[k], sp.mask, sp.last)
            pattern[i] = Item(it.type, it.index, tuple(specs), it.level, it.raw)
        actions = list(rule.actions)
        for i, arepl in self.acts:
            a = actions[i]
            attrs = {"queue": a.queue, "mark": a.mark, "counter": a.counter}
            for attr, k in arepl:
                attrs[attr] = vals[k]
            actions[i] = Action(a.type, a.index, attrs["queue"], a.queues, attrs["mark"],
                                attrs["counter"])  # fmt: skip
        port = vals[self.port]
        new = FlowRule(
            port,
            tuple(pattern),
            tuple(actions),
            rule.group if self.group < 0 else vals[self.group],
            rule.priority if self.priority < 0 else vals[self.priority],
            rule.ingress,
            " ".join(words),
            where,
            dict(rule.extra),
        )
        return FlowCommand(cmd.verb, port, rule=new, where=where)


def _shape_key(words: list[str]) -> tuple[str, ...] | None:
    """The words of a `flow create|validate` command with its values blanked."""
    if len(words) < 4 or words[0] != "flow" or words[1] not in ("create", "validate"):
        return None
    key = words.copy()
    key[2] = ""
    prev = ""
    for i, w in enumerate(words):
        if prev in _VALUE_AFTER:
            key[i] = ""
        prev = w
    return tuple(key)


class CommandReader:
    """Reads one-line commands, remembering the shapes of `flow create` rules.

    A line that is a whole command by itself (printable ASCII, no comment or
    continuation) is split on spaces; a `flow create` of a shape already read is
    built from its values (_Shape); anything else is read by _Parser, which gives
    the same commands and every error's location."""

    def __init__(self, protocols: Collection[str] = ()) -> None:
        self.protocols = protocols
        self.shapes: dict[tuple[str, ...], _Shape | None] = {}

    @staticmethod
    def plain(raw: str) -> bool:
        """Whether `raw` is a line that read() takes."""
        return raw.isascii() and raw.isprintable() and "#" not in raw and "\\" not in raw

    def read(self, raw: str, n: int, path: str) -> Command | None:
        """The command of plain line `raw` (line `n` of `path`), None for a blank line."""
        words = raw.split()
        if not words:
            return None
        key = _shape_key(words)
        shape = None if key is None else self.shapes.get(key)
        if shape is not None:
            cmd = shape.build(words, f"{path}:{n}")
            if cmd is not None:
                return cmd
        toks = [_new_tok(_Tok, (m[0], n, m.start() + 1, raw)) for m in _WORD.finditer(raw)]
        parser = _Parser(toks, path, self.protocols)
        if key is not None and key not in self.shapes and len(self.shapes) < _SHAPES_MAX:
            parser.rec = []
        got = parser.command()
        if parser.rec is not None and key is not None:
            self.shapes[key] = _plan(got, parser.rec, key)
        return got


def parse_commands(
    text: str, where: str = "<cmd>", protocols: Collection[str] = ()
) -> list[Command]:
    """Every command of `text` (a file's content or a ``--cmd`` string).

    `where` names the source in messages and in each command's ``where``
    (``"where:line"``). Raises :class:`TestpmdError` at the first bad command.
    Plain lines go through CommandReader; comments, continuations and anything
    else through _logical_lines and _Parser."""
    out: list[Command] = []
    reader = CommandReader(protocols)
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        raw = lines[n]
        n += 1
        if reader.plain(raw):
            cmd = reader.read(raw, n, where)
            if cmd is not None:
                out.append(cmd)
            continue
        # the general reader, from this line to the end of its command
        end = n
        while lines[end - 1].expandtabs(1).split("#", 1)[0].rstrip().endswith("\\"):
            if end >= len(lines):
                break
            end += 1
        for toks in _logical_lines("\n".join(lines[n - 1 : end])):
            toks = [_new_tok(_Tok, (t.text, t.line + n - 1, t.col, t.src)) for t in toks]
            out.append(_Parser(toks, where, protocols).command())
        n = end
    return out


def _plan(cmd: Command, rec: list[tuple[int, Any, Any]], key: tuple[str, ...]) -> _Shape | None:
    """The shape's plan, or None when the command's values are not exactly its blanks."""
    blanks = {i for i, w in enumerate(key) if w == ""}
    if not isinstance(cmd, FlowCommand) or cmd.rule is None:
        return None
    if {pos for pos, _, _ in rec} != blanks or len(rec) != len(blanks):
        return None
    try:
        return _Shape(cmd, rec)
    except (ValueError, IndexError):
        return None


def parse_command(line: str, where: str = "<cmd>", protocols: Collection[str] = ()) -> Command:
    """One command. `where` is a source name, or ``"name:LINE"`` to set the line number.

    A trailing ``\\`` continuation inside `line` (with newlines) is allowed; more than
    one command, or none, is an error.
    """
    path, first = _split_where(where)
    cmds = list(_logical_lines(line))
    if len(cmds) != 1:
        what = "no command" if not cmds else f"{len(cmds)} commands"
        raise TestpmdError("UNSPECIFIED", f"expected one command, got {what}", None, path)
    toks = [_Tok(t.text, t.line + first - 1, t.col, t.src) for t in cmds[0]]
    return _Parser(toks, path, protocols).command()


def parse_file(path: str | Path, protocols: Collection[str] = ()) -> list[Command]:
    """Every command of a testpmd command file (as ``--cmdline-file`` takes).

    A file that cannot be read (missing, a directory, not a regular file, over the
    size limit, not UTF-8 text) is a ConfigError (exit 2) naming the file, and the
    line and column of the first bad byte."""
    from .yamlfile import ConfigError

    name = str(path)

    def error(message: str, line: int, column: int) -> ConfigError:
        return ConfigError(f"cannot read rules file: {message}", name, line, column)

    return parse_commands(read_text(path, "rules", error), name, protocols)


# ---------------------------------------------------------------------------
# Printing rules back


def _fmt_value(catalog: str, value: int) -> str:
    if catalog in _MAC_FIELDS:
        return _fmt_mac(value)
    if catalog in _V4_FIELDS:
        return str(ipaddress.IPv4Address(value))
    if catalog in _V6_FIELDS:
        return str(ipaddress.IPv6Address(value))
    return f"{value:#x}" if catalog in _HEX_FIELDS else str(value)


def _testpmd_field(item: str, catalog: str) -> str:
    for name, cat in _ITEMS.get(item, {}).items():
        if cat == catalog:
            return name
    return catalog.split(".", 1)[-1]


def _fmt_spec(item: str, spec: FieldSpec) -> str:
    name = _testpmd_field(item, spec.field)
    width = (
        _CATALOG[spec.field][2]
        if spec.field in _CATALOG
        else max(spec.mask.bit_length(), spec.value.bit_length(), 1)
    )
    full = (1 << width) - 1
    value = _fmt_value(spec.field, spec.value)
    if spec.mask == full:
        out = [f"{name} is {value}"]
    else:
        out = [f"{name} spec {value}"]
        n = _prefix_len(spec.mask, width)
        if n is not None and n and spec.field in (_V4_FIELDS | _V6_FIELDS):
            out.append(f"{name} prefix {n}")
        elif spec.field in (_MAC_FIELDS | _V4_FIELDS | _V6_FIELDS):
            out.append(f"{name} mask {_fmt_value(spec.field, spec.mask)}")
        else:
            out.append(f"{name} mask {spec.mask:#x}")
    if spec.last is not None:
        out.append(f"{name} last {_fmt_value(spec.field, spec.last)}")
    return " ".join(out)


def _fmt_item(item: Item) -> str:
    if item.type == "raw":
        raw = item.raw or RawSpec(b"", b"")
        parts = ["raw"]
        if raw.relative:
            parts.append("relative is 1")
        if raw.offset:
            parts.append(f"offset is {raw.offset}")
        if raw.pattern:
            if raw.mask == b"\xff" * len(raw.pattern):
                parts.append(f"pattern_hex is {raw.pattern.hex()}")
            else:
                parts.append(f"pattern_hex spec {raw.pattern.hex()}")
                parts.append(f"pattern_hex mask {raw.mask.hex()}")
        return " ".join(parts)
    return " ".join([item.type, *(_fmt_spec(item.type, s) for s in item.specs)])


def _fmt_action(action: Action, rss: dict) -> str:
    if action.type == "queue":
        return f"queue index {action.queue}"
    if action.type == "mark":
        return f"mark id {action.mark}"
    if action.type == "count":
        return "count" if action.counter is None else f"count identifier {action.counter}"
    if action.type == "rss":
        parts = ["rss"]
        conf = rss.get(action.index, {})
        if "func" in conf:
            parts.append(f"func {conf['func']}")
        if "level" in conf:
            parts.append(f"level {conf['level']}")
        if "types" in conf:
            parts.append(" ".join(["types", *conf["types"], "end"]))
        if "key" in conf:
            parts.append(f"key {conf['key'].hex()}")
        if "key_len" in conf:
            parts.append(f"key_len {conf['key_len']}")
        if not conf.get("default_queues"):
            parts.append(" ".join(["queues", *(str(q) for q in action.queues), "end"]))
        return " ".join(parts)
    return action.type


def format_rule(rule: FlowRule, verb: str = "create") -> str:
    """`rule` as a testpmd ``flow create`` command that parses back to an equal rule."""
    out = [f"flow {verb} {rule.port}"]
    if rule.group:
        out.append(f"group {rule.group}")
    if rule.priority:
        out.append(f"priority {rule.priority}")
    if rule.ingress:
        out.append("ingress")
    if rule.extra.get("egress"):
        out.append("egress")
    if rule.extra.get("transfer"):
        out.append("transfer")
    items = [_fmt_item(i) for i in rule.pattern if i.type != "end"]
    out.append("pattern " + " / ".join([*items, "end"]))
    rss = rule.extra.get("rss", {})
    acts = [_fmt_action(a, rss) for a in rule.actions if a.type != "end"]
    out.append("actions " + " / ".join([*acts, "end"]))
    return " ".join(out)

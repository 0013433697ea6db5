"""Build packets from Scapy-style layer specs without running any code.

A spec such as ``Ether()/IP(dst="1.2.3.4")/UDP(dport=4789)/VXLAN(vni=42)`` is read
with :func:`ast.parse` (which only parses) and walked: the only things allowed are
layer names from a fixed list, ``/`` between them, and keyword arguments whose
values are literals (numbers, strings, bytes, lists of those, negative numbers).
Anything else (attribute access, calls of other names, comprehensions...) is an
error, so a scenario file can never execute code.
"""

from __future__ import annotations

import ast
import ipaddress
import re
from typing import Any

from .errors import E810PipeError
from .inputs import clip

_MAC = re.compile(r"[0-9a-fA-F]{2}([:-][0-9a-fA-F]{2}){5}")


class LayerSpecError(E810PipeError, ValueError):
    """A layer spec is not of the accepted form; `column` is 1-based in the spec."""

    exit_code = 2

    def __init__(self, message: str, column: int = 0) -> None:
        self.message = message
        self.column = column
        super().__init__(f"column {column}: {message}" if column else message)


def _layers() -> dict[str, Any]:
    from scapy.contrib.geneve import GENEVE
    from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
    from scapy.contrib.gtp import GTPPDUSessionContainer as GTP_PDUSession_ExtensionHeader
    from scapy.contrib.mpls import MPLS
    from scapy.contrib.pfcp import PFCP
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import (
        ICMPv6EchoReply,
        ICMPv6EchoRequest,
        IPv6,
        IPv6ExtHdrDestOpt,
        IPv6ExtHdrFragment,
        IPv6ExtHdrHopByHop,
        IPv6ExtHdrRouting,
        IPv6ExtHdrSegmentRouting,
    )
    from scapy.layers.ipsec import AH, ESP
    from scapy.layers.l2 import ARP, GRE, Dot1AD, Dot1Q, Ether
    from scapy.layers.l2tp import L2TP
    from scapy.layers.ppp import PPP, PPPoE, PPPoED
    from scapy.layers.sctp import SCTP
    from scapy.layers.vxlan import VXLAN
    from scapy.packet import Padding, Raw

    names = [
        Ether, Dot1Q, Dot1AD, ARP, IP, IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
        IPv6ExtHdrSegmentRouting, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, TCP, UDP, SCTP,
        ICMP, ICMPv6EchoRequest, ICMPv6EchoReply, GRE, VXLAN, GENEVE, MPLS, GTP_U_Header,
        GTPPDUSessionContainer, PPPoE, PPPoED, PPP, ESP, AH, Raw, Padding, PFCP, L2TP,
    ]  # fmt: skip
    out = {cls.__name__: cls for cls in names}
    out["GTP_PDUSession_ExtensionHeader"] = GTP_PDUSession_ExtensionHeader  # DTS's name
    return out


_LAYERS: dict[str, Any] | None = None
_DEFAULTS = {
    "Ether": {"dst": "00:00:00:00:00:02", "src": "00:00:00:00:00:01"},
    "IP": {"src": "192.0.2.1", "dst": "192.0.2.2"},
    "IPv6": {"src": "2001:db8::1", "dst": "2001:db8::2"},
}


def layer_names() -> list[str]:
    global _LAYERS
    if _LAYERS is None:
        _LAYERS = _layers()
    return sorted(_LAYERS)


MAX_REPEAT = 65535  # bytes: a `"x" * N` payload longer than a jumbo frame is refused
MAX_LAYERS = 256  # layers in one packet spec (Scapy itself recurses per layer)
MAX_SPEC = 1 << 16  # characters in one spec


def _check_address(cls: Any, layer: str, key: str, value: Any, column: int) -> None:
    """Address fields take literal addresses only: Scapy would look a name up in
    the DNS (``IP(dst="www.example.com")``), and a scenario never causes I/O."""
    from scapy.fields import IP6Field, IPField, MACField

    fld = next((f for f in cls.fields_desc if f.name == key), None)
    fld = getattr(fld, "fld", fld)  # conditional and emphasized fields wrap another
    if fld is None or not isinstance(value, str):
        return
    try:
        if isinstance(fld, IPField):
            ipaddress.IPv4Address(value)
        elif isinstance(fld, IP6Field):
            if "%" in value:
                raise ValueError(value)
            ipaddress.IPv6Address(value)
        elif isinstance(fld, MACField) and not _MAC.fullmatch(value):
            raise ValueError(value)
    except ValueError:
        kind = "a literal"
        if isinstance(fld, IPField):
            kind = "an IPv4"
        elif isinstance(fld, IP6Field):
            kind = "an IPv6"
        elif isinstance(fld, MACField):
            kind = "a MAC"
        raise LayerSpecError(
            f"{layer}({key}=...): {clip(repr(value))} is not {kind} address "
            "(names are not looked up)",
            column,
        ) from None


def _literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bytes)):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        # "x" * 80, as DTS writes payloads; both sides literals, bounded in size
        left, right = _literal(node.left), _literal(node.right)
        if isinstance(left, int) and isinstance(right, (str, bytes)):
            left, right = right, left
        if (
            isinstance(left, (str, bytes))
            and isinstance(right, int)
            and not isinstance(right, bool)
        ):
            if not 0 <= len(left) * right <= MAX_REPEAT:
                raise LayerSpecError(
                    f"a repeated payload is at most {MAX_REPEAT} bytes", node.col_offset + 1
                )
            return left * right
        raise LayerSpecError(
            "'*' repeats a string or bytes literal by a number", node.col_offset + 1
        )
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
    ):
        return -node.operand.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    raise LayerSpecError(
        "argument values must be literals: numbers, strings, bytes or lists of them",
        node.col_offset + 1,
    )


def build(spec: str) -> bytes:
    """The bytes of the packet that `spec` describes."""
    global _LAYERS
    if _LAYERS is None:
        _LAYERS = _layers()
    if len(spec) > MAX_SPEC:
        raise LayerSpecError(f"a layer spec is at most {MAX_SPEC} characters, not {len(spec)}")
    try:
        tree = ast.parse(spec.strip(), mode="eval")
    except SyntaxError as err:
        raise LayerSpecError(f"not a layer spec: {err.msg}", err.offset or 0) from None
    except (RecursionError, MemoryError):  # Python's parser has its own depth limit
        raise LayerSpecError(f"too many layers or nested values (at most {MAX_LAYERS})") from None
    layers: list[ast.expr] = []
    todo: list[ast.expr] = [tree.body]
    while todo:  # a / b / c is a left-deep tree: flatten it without recursion
        node = todo.pop()
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            todo.append(node.right)
            todo.append(node.left)
        else:
            layers.append(node)
            if len(layers) > MAX_LAYERS:
                raise LayerSpecError(
                    f"a packet has at most {MAX_LAYERS} layers", getattr(node, "col_offset", 0) + 1
                )
    pkt: Any = None
    for node in layers:
        if (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))) or (
            isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult)
        ):
            value = _literal(node)
            raw = value.encode("latin-1") if isinstance(value, str) else value
            layer = _LAYERS["Raw"](load=raw)
        else:
            kwargs: dict[str, Any] = {}
            if isinstance(node, ast.Name):
                name = node.id
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                name = node.func.id
                if len(node.args) > 1 or (
                    node.args and not isinstance(_literal(node.args[0]), (str, bytes))
                ):
                    raise LayerSpecError(
                        'use keyword arguments, e.g. IP(dst="1.2.3.4"); one positional '
                        'argument is allowed: the bytes of the layer, e.g. Raw("x"*80)',
                        node.args[0].col_offset + 1,
                    )
                if node.args:  # Raw("..") is its load; Layer(b"..") dissects those bytes
                    value = _literal(node.args[0])
                    data = value.encode("latin-1") if isinstance(value, str) else value
                    kwargs["load" if name == "Raw" else "_pkt"] = data
                for kw in node.keywords:
                    if kw.arg is None:
                        raise LayerSpecError("'**' is not allowed", kw.value.col_offset + 1)
                    kwargs[kw.arg] = _literal(kw.value)
            else:
                raise LayerSpecError(
                    'expected a layer such as Ether() or IP(dst="1.2.3.4")',
                    getattr(node, "col_offset", 0) + 1,
                )
            cls = _LAYERS.get(name)
            if cls is None:
                raise LayerSpecError(
                    f"unknown layer '{name}'; known: {', '.join(sorted(_LAYERS))}",
                    node.col_offset + 1,
                )
            # Fixed defaults for what Scapy would otherwise take from this machine's
            # interfaces and routes, so a spec gives the same bytes everywhere.
            if "_pkt" not in kwargs:
                for key, value in _DEFAULTS.get(name, {}).items():
                    kwargs.setdefault(key, value)
            fields = {f.name for f in cls.fields_desc} | {"_pkt"}
            for key in kwargs:
                if key not in fields:
                    raise LayerSpecError(
                        f"{name} has no field '{key}'; its fields: {', '.join(sorted(fields))}",
                        node.col_offset + 1,
                    )
            for key, value in kwargs.items():
                _check_address(cls, name, key, value, node.col_offset + 1)
            try:
                layer = cls(**kwargs)
            except Exception as err:  # scapy rejects a value
                raise LayerSpecError(f"{name}: {err}", node.col_offset + 1) from None
        pkt = layer if pkt is None else pkt / layer
    try:
        return bytes(pkt)
    except Exception as err:  # a value scapy cannot encode
        raise LayerSpecError(f"cannot build the packet: {err}") from None

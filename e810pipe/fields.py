"""Field vectors: named fields, the 16-bit words that hold them, and their extraction.

On the E810 every classification block reads a *field vector*: a list of 16-bit
words, each taken at an even byte offset from a protocol the parser reported
(``{prot_id, offset}`` in ``ice_fv_word``). A rule field such as "outer IPv4
source" is therefore a (protocol ID per segment level, bit offset, width) triple,
and an engine's key is the tuple of the words its profile extracts.

The field catalog here is data: the rte_flow item fields, plus every ``match``
statement of the loaded DDP package, so a field a user profile declares can be
matched like a stock one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from .package import Package
from .parser import ParseResult

# Field vector widths per block (blk_sizes[] in ice_flex_pipe.c).
FV_WORDS = {"switch": 48, "acl": 32, "fd": 24, "rss": 24}


@dataclass(frozen=True)
class FieldDef:
    """A matchable field: bits [offset, offset+width) of the header that `ids` names.

    `ids` holds the protocol ID name per segment level: ids[0] for the outer (or
    only) header, ids[1] for the inner header of a tunnel.
    """

    name: str
    ids: tuple[str, ...]
    offset: int  # bits from the start of the header the protocol ID points at
    width: int  # bits

    def proto_name(self, level: int) -> str:
        return self.ids[min(level, len(self.ids) - 1)]

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1


class Word(NamedTuple):  # a NamedTuple: hashed and compared in C (16K rules hash 600K)
    """One field-vector word: 2 bytes at an even offset from a reported protocol."""

    proto_id: int
    offset: int  # bytes, even

    def __str__(self) -> str:
        text = _WORD_TEXT.get(self)
        if text is None:
            text = _WORD_TEXT[self] = f"{self.proto_id}@{self.offset}"
        return text


_WORD_TEXT: dict[Word, str] = {}  # str() of each word seen; a rule set has few distinct words


def word_layout(field: FieldDef, proto_id: int) -> tuple[int, int, tuple[tuple[Word, int], ...]]:
    """Where `field` of protocol `proto_id` sits: (field mask, shift, (word, shift)...)."""
    key = (field.offset, field.width, proto_id)  # all the layout depends on
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = _LAYOUTS[key] = _layout(field, proto_id)
    return layout


def words_for(field: FieldDef, proto_id: int, value: int, mask: int) -> list[tuple[Word, int, int]]:
    """Split a (value, mask) on `field` into per-word (word, value16, mask16) parts."""
    fmask, shift, parts = word_layout(field, proto_id)
    v = (value & fmask) << shift
    m = (mask & fmask) << shift
    return [(w, (v >> sh) & 0xFFFF, (m >> sh) & 0xFFFF) for w, sh in parts]


def _layout(field: FieldDef, proto_id: int) -> tuple[int, int, tuple[tuple[Word, int], ...]]:
    """Where `field` sits in field-vector words: (field mask, shift, (word, shift)...)."""
    first = field.offset // 16
    last = (field.offset + field.width - 1) // 16
    span = (last - first + 1) * 16
    shift = span - (field.offset - first * 16) - field.width
    parts = tuple(
        (Word(proto_id, (first + i) * 2), (last - first - i) * 16) for i in range(last - first + 1)
    )
    return field.mask, shift, parts


_LAYOUTS: dict[tuple[int, int, int], tuple[int, int, tuple[tuple[Word, int], ...]]] = {}


# item field name -> (protocol ID per level, byte offset, bit offset in the byte, bits)
_ETH = ("MAC_OF_OR_S", "MAC_IL")
_ETYPE = ("ETYPE_OL", "ETYPE_IL")
_V4 = ("IPV4_OF_OR_S", "IPV4_IL")
_V6 = ("IPV6_OF_OR_S", "IPV6_IL")
_UDP = ("UDP_IL_OR_S",)
_TUN = ("UDP_OF",)

_CATALOG: dict[str, tuple[tuple[str, ...], int, int]] = {
    # name: (ids, bit offset, width)
    "eth.dst": (_ETH, 0, 48),
    "eth.src": (_ETH, 48, 48),
    "eth.type": (_ETYPE, 0, 16),
    "vlan.tci": (("VLAN_O", "VLAN_IF"), 0, 16),
    "vlan.vid": (("VLAN_O", "VLAN_IF"), 4, 12),
    "vlan.pcp": (("VLAN_O", "VLAN_IF"), 0, 3),
    "vlan.inner_type": (("VLAN_O", "VLAN_IF"), 16, 16),
    "svlan.tci": (("EVLAN_O",), 0, 16),
    "svlan.vid": (("EVLAN_O",), 4, 12),
    "ipv4.tos": (_V4, 8, 8),
    "ipv4.packet_id": (_V4, 32, 16),
    "ipv4.fragment_offset": (_V4, 48, 16),
    "ipv4.ttl": (_V4, 64, 8),
    "ipv4.proto": (_V4, 72, 8),
    "ipv4.src": (_V4, 96, 32),
    "ipv4.dst": (_V4, 128, 32),
    "ipv6.tc": (_V6, 4, 8),
    "ipv6.flow": (_V6, 12, 20),
    "ipv6.proto": (_V6, 48, 8),
    "ipv6.hop": (_V6, 56, 8),
    "ipv6.src": (_V6, 64, 128),
    "ipv6.dst": (_V6, 192, 128),
    # the IPv6 fragment header (rte_flow_item_ipv6_frag_ext): next header, reserved,
    # fragment data (offset, M bit), identification
    "ipv6_frag_ext.next_hdr": (("IPV6_FRAG",), 0, 8),
    "ipv6_frag_ext.frag_data": (("IPV6_FRAG",), 16, 16),
    "ipv6_frag_ext.packet_id": (("IPV6_FRAG",), 32, 32),
    "tcp.src": (("TCP_IL",), 0, 16),
    "tcp.dst": (("TCP_IL",), 16, 16),
    "tcp.flags": (("TCP_IL",), 104, 8),
    "udp.src": (_UDP, 0, 16),
    "udp.dst": (_UDP, 16, 16),
    "sctp.src": (("SCTP_IL",), 0, 16),
    "sctp.dst": (("SCTP_IL",), 16, 16),
    "sctp.tag": (("SCTP_IL",), 32, 32),
    "icmp.type": (("ICMP_IL",), 0, 8),
    "icmp.code": (("ICMP_IL",), 8, 8),
    "icmp6.type": (("ICMPV6_IL",), 0, 8),
    "icmp6.code": (("ICMPV6_IL",), 8, 8),
    "gre.c_rsvd0_ver": (("GRE_OF",), 0, 16),
    "gre.protocol": (("GRE_OF",), 16, 16),
    # GRE key and NVGRE TNI: taken as in the NVGRE layout (K bit only), 4 bytes in.
    "gre_key.value": (("GRE_OF",), 32, 32),
    "nvgre.tni": (("GRE_OF",), 32, 24),
    "nvgre.flow_id": (("GRE_OF",), 56, 8),
    # UDP tunnels have no protocol ID of their own: fields sit at offsets from UDP_OF.
    "vxlan.flags": (_TUN, 64, 8),
    "vxlan.vni": (_TUN, 96, 24),
    "vxlan-gpe.protocol": (_TUN, 88, 8),
    "vxlan-gpe.vni": (_TUN, 96, 24),
    "geneve.protocol": (_TUN, 80, 16),
    "geneve.vni": (_TUN, 96, 24),
    "gtpu.msg_type": (_TUN, 72, 8),
    "gtpu.teid": (_TUN, 96, 32),
    "gtp_psc.qfi": (_TUN, 178, 6),
    "mpls.label": (("MPLS_OL_OR_OS", "MPLS_IL"), 0, 20),
    "mpls.tc": (("MPLS_OL_OR_OS", "MPLS_IL"), 20, 3),
    "pppoes.session_id": (("PPPOE",), 16, 16),
    "pppoes.proto_id": (("PPPOE",), 48, 16),
    "l2tpv3oip.session_id": (("L2TPV3",), 0, 32),
    "esp.spi": (("ESP_F",), 0, 32),
    "ah.spi": (("ESP_2",), 32, 32),
    # ESP over UDP (NAT-T): ice's ICE_NAT_T lookup reads the SPI 8 bytes into the UDP
    # header's protocol ID (ICE_UDP_ILOS_HW); the switch puts an `esp spi` after `udp` here
    "nat_t.spi": (_UDP, 64, 32),
}

# Fields the flow engines (Flow Director: ice_flow_xtract_fld in base/ice_flow.c)
# take from another protocol than the switch's recipes do. The IPv6 next header and
# hop limit (ICE_FLOW_FIELD_IDX_IPV6_PROT / _TTL) come from ICE_PROT_IPV6_NEXT_PROTO at
# offset 0 (xtrct.off = 0, mask 0xff00 / 0x00ff) in the outer segment when the package
# has that protocol ID (ice_check_ddp_support_proto_id), from IPV6_IL in the inner one.
_FLOW_CATALOG: dict[str, tuple[tuple[str, ...], int, int]] = {
    "ipv6.proto": (("IPV6_NEXT_PROTO", "IPV6_IL"), 0, 8),
    "ipv6.hop": (("IPV6_NEXT_PROTO", "IPV6_IL"), 8, 8),
}
# where the inner segment's IPV6_IL keeps the fields (the fixed header)
_FLOW_INNER_OFFSET = {"ipv6.proto": 48, "ipv6.hop": 56}

# Fields taken from the outer UDP of a UDP tunnel use UDP_OF when the rule's UDP
# item is followed by a tunnel item.
UDP_TUNNEL_ITEMS = frozenset({"vxlan", "vxlan-gpe", "geneve", "gtpu", "gtp_psc"})


class FieldCatalog:
    """Every field rules may match, for one loaded package."""

    def __init__(self, package: Package) -> None:
        self.package = package
        self.ids = package.proto_ids
        self._reported: set[int | None] | None = None  # see available()
        self.fields: dict[str, FieldDef] = {}
        for name, (ids, off, width) in _CATALOG.items():
            self.fields[name] = FieldDef(name, ids, off, width)
        # every fixed field of the package's protocols, as PROTOCOL.FIELD
        for pname, proto in package.protocols.items():
            ids = tuple(proto.reports[0].ids) if proto.reports else ()
            if not ids:
                continue
            bit = 0
            for f in proto.fields:
                if f.cond is not None:
                    break
                self.fields.setdefault(
                    f"{pname}.{f.name}", FieldDef(f"{pname}.{f.name}", ids, bit, f.bits)
                )
                bit += f.bits
        # `match NAME = protocol.field;` statements of the loaded profiles
        for m in package.match_fields.values():
            proto = package.protocols[m.protocol]
            bit = 0
            width = 0
            for f in proto.fields:
                if f.name == m.field:
                    width = f.bits
                    break
                if f.cond is None:
                    bit += f.bits
            ids = tuple(proto.reports[0].ids) if proto.reports else ()
            if not ids and proto.carriers:
                ids = proto.carriers[0].ids
            if not ids:
                continue  # the protocol reports no ID: nothing to extract from
            fd = FieldDef(m.name, ids, bit, width)
            self.fields[m.name] = fd
            self.fields.setdefault(f"{m.protocol}.{m.field}", fd)

        # the flow engines' variants, where the package names the protocol they read
        self.flow_fields: dict[str, tuple[FieldDef, FieldDef]] = {}
        self.next_proto_id = self.ids.get("IPV6_NEXT_PROTO")
        self._outer_v6 = self.ids.get("IPV6_OF_OR_S")
        if self.next_proto_id is not None and self._outer_v6 is not None:
            for name, (ids, off, width) in _FLOW_CATALOG.items():
                self.flow_fields[name] = (
                    FieldDef(name, ids[:1], off, width),
                    FieldDef(name, ids[1:], _FLOW_INNER_OFFSET[name], width),
                )
        # byte of the next-header field of each protocol that has one (IPv6 and its
        # extension headers, as the profiles declare them)
        self._next_header_byte: dict[str, int] = {}
        for pname, proto in package.protocols.items():
            bit = 0
            for f in proto.fields:
                if f.cond is not None:
                    break
                if f.name == "next_header":
                    if bit % 8 == 0:
                        self._next_header_byte[pname] = bit // 8
                    break
                bit += f.bits

    def get(self, name: str) -> FieldDef | None:
        return self.fields.get(name)

    def flow_field(self, name: str, level: int) -> FieldDef | None:
        """The field as the flow engines extract it at `level` (ice_flow_xtract_fld),
        where that differs from the switch's (None: it does not)."""
        pair = self.flow_fields.get(name)
        if pair is None:
            return None
        return pair[min(level, 1)]

    def next_proto_offset(self, res: ParseResult) -> int | None:
        """Where ICE_PROT_IPV6_NEXT_PROTO points in a packet: the byte that holds the
        protocol after the outer IPv6 header and its extension headers (byte 6 of a
        header without extensions, the first byte of the last extension header), as
        the ice PMD's ICE_FLOW_FIELD_IDX_IPV6_PROT extraction (offset 0, mask 0xff00)
        reads it on the DTS cases past extension headers. Intel's parser model for
        COMMS 1.3.37 does not list the ID (the golden records), so the parse result
        leaves it out and the classification blocks locate it from the headers."""
        outer = self._outer_v6
        if self.next_proto_id is None or outer is None:
            return None
        for pid, off in res.po:
            if pid == self.next_proto_id:
                return off
        base = None
        for pid, off in res.po:
            if pid == outer:
                base = off
        if base is None:
            return None
        nh = self._next_header_byte
        at: int | None = None
        levels = res.levels
        for j, h in enumerate(res.headers):
            if at is None:
                if h.offset == base and h.name in nh:
                    at = base + nh[h.name]
                continue
            if (levels[j] if j < len(levels) else 0) != 0 or h.name not in nh:
                break
            at = h.offset + nh[h.name]
        return at

    def block_po(self, res: ParseResult) -> dict[int, int]:
        """The protocol offsets the classification blocks read: the parser's, and
        IPV6_NEXT_PROTO (:meth:`next_proto_offset`)."""
        po = dict(res.po)
        if self.next_proto_id is not None and self.next_proto_id not in po:
            at = self.next_proto_offset(res)
            if at is not None:
                po[self.next_proto_id] = at
        return po

    def proto_id(self, field: FieldDef, level: int) -> int | None:
        return self.ids.get(field.proto_name(level))

    def available(self, field: FieldDef, level: int) -> bool:
        """Whether the loaded package reports the protocol ID this field needs."""
        pid = self.proto_id(field, level)
        if pid is None:
            return False
        reported = self._reported
        if reported is None:  # every protocol ID some protocol reports, computed once
            reported = {
                self.ids.get(i)
                for proto in self.package.protocols.values()
                for rep in (*proto.reports, *proto.carriers)
                for i in rep.ids
            }
            if self._outer_v6 in reported:  # located by block_po
                reported.add(self.next_proto_id)
            self._reported = reported
        return pid in reported


def word_at(data: bytes, at: int) -> int:
    """The 16-bit word at byte `at`, bytes past the packet end reading as zero."""
    chunk = data[at : at + 2]
    if len(chunk) == 2:
        return (chunk[0] << 8) | chunk[1]
    return (chunk[0] << 8) if chunk else 0


def read_word(data: bytes, po: Mapping[int, int], word: Word) -> int | None:
    """The 16-bit value of `word` in a packet, or None if its protocol is absent."""
    base = po.get(word.proto_id)
    if base is None:
        return None
    at = base + word.offset
    chunk = data[at : at + 2]
    if len(chunk) == 2:
        return (chunk[0] << 8) | chunk[1]
    return (chunk[0] << 8) if chunk else 0


def read_field(data: bytes, po: Mapping[int, int], proto_id: int, field: FieldDef) -> int | None:
    """The value of `field` in a packet (bytes past its end read as zero)."""
    base = po.get(proto_id)
    if base is None:
        return None
    start = base + field.offset // 8
    end = base + (field.offset + field.width + 7) // 8
    chunk = data[start:end]
    n = end - start
    v = int.from_bytes(chunk, "big") << (8 * (n - len(chunk)))
    shift = n * 8 - (field.offset % 8) - field.width
    return (v >> shift) & field.mask

"""What a received mbuf says about a packet, as testpmd prints it.

- **hw ptype**: the PMD's ``mbuf->packet_type``, the E810 PTYPE through the ice
  PMD's table (:mod:`e810pipe.ice_ptypes`, from ``ice_get_default_pkt_type``).
- **sw ptype** and the header lengths: testpmd's own software parse,
  ``rte_net_get_ptype()`` (DPDK ``lib/net/rte_net.c``), written here from its rules:
  VLAN/QinQ tags (up to 8), MPLS (classified only), IPv4 by IHL, IPv6 with up to 5
  extension headers, TCP/UDP/SCTP, UDP tunnels on their IANA ports (VXLAN 4789,
  VXLAN-GPE 4790, GTP-C 2123, GTP-U 2152, GENEVE 6081), GRE/NVGRE and IP-in-IP, then
  the inner headers.
- **ol_flags**: ``rte_get_rx_ol_flag_list()``'s names and order, with the checksum
  flags ``ice_rxd_error_to_pkt_flags()`` gives.
- Names as ``rte_get_ptype_name()`` writes them: one name per layer present, each
  followed by a space ("UNKNOWN" for 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from .ice_ptypes import ICE_PTYPE_TABLE

# RTE_PTYPE_* values (lib/mbuf/rte_mbuf_ptype.h)
PTYPE: dict[str, int] = {
    "L2_ETHER": 0x1,
    "L2_ETHER_TIMESYNC": 0x2,
    "L2_ETHER_ARP": 0x3,
    "L2_ETHER_LLDP": 0x4,
    "L2_ETHER_NSH": 0x5,
    "L2_ETHER_VLAN": 0x6,
    "L2_ETHER_QINQ": 0x7,
    "L2_ETHER_PPPOE": 0x8,
    "L2_ETHER_FCOE": 0x9,
    "L2_ETHER_MPLS": 0xA,
    "L3_IPV4": 0x10,
    "L3_IPV4_EXT": 0x30,
    "L3_IPV6": 0x40,
    "L3_IPV4_EXT_UNKNOWN": 0x90,
    "L3_IPV6_EXT": 0xC0,
    "L3_IPV6_EXT_UNKNOWN": 0xE0,
    "L4_TCP": 0x100,
    "L4_UDP": 0x200,
    "L4_FRAG": 0x300,
    "L4_SCTP": 0x400,
    "L4_ICMP": 0x500,
    "L4_NONFRAG": 0x600,
    "L4_IGMP": 0x700,
    "L4_ESP": 0x800,
    "TUNNEL_IP": 0x1000,
    "TUNNEL_GRE": 0x2000,
    "TUNNEL_VXLAN": 0x3000,
    "TUNNEL_NVGRE": 0x4000,
    "TUNNEL_GENEVE": 0x5000,
    "TUNNEL_GRENAT": 0x6000,
    "TUNNEL_GTPC": 0x7000,
    "TUNNEL_GTPU": 0x8000,
    "TUNNEL_ESP": 0x9000,
    "TUNNEL_L2TP": 0xA000,
    "TUNNEL_VXLAN_GPE": 0xB000,
    "TUNNEL_MPLS_IN_GRE": 0xC000,
    "TUNNEL_MPLS_IN_UDP": 0xD000,
    "INNER_L2_ETHER": 0x10000,
    "INNER_L2_ETHER_VLAN": 0x20000,
    "INNER_L2_ETHER_QINQ": 0x30000,
    "INNER_L3_IPV4": 0x100000,
    "INNER_L3_IPV4_EXT": 0x200000,
    "INNER_L3_IPV6": 0x300000,
    "INNER_L3_IPV4_EXT_UNKNOWN": 0x400000,
    "INNER_L3_IPV6_EXT": 0x500000,
    "INNER_L3_IPV6_EXT_UNKNOWN": 0x600000,
    "INNER_L4_TCP": 0x1000000,
    "INNER_L4_UDP": 0x2000000,
    "INNER_L4_FRAG": 0x3000000,
    "INNER_L4_SCTP": 0x4000000,
    "INNER_L4_ICMP": 0x5000000,
    "INNER_L4_NONFRAG": 0x6000000,
    "INNER_L4_ESP": 0x8000000,
}
L2_MASK, L3_MASK, L4_MASK, TUNNEL_MASK = 0xF, 0xF0, 0xF00, 0xF000
INNER_L2_MASK, INNER_L3_MASK, INNER_L4_MASK = 0xF0000, 0xF00000, 0xF000000
_LAYERS = (
    (L2_MASK, "L2_UNKNOWN"),
    (L3_MASK, "L3_UNKNOWN"),
    (L4_MASK, "L4_UNKNOWN"),
    (TUNNEL_MASK, "TUNNEL_UNKNOWN"),
    (INNER_L2_MASK, "INNER_L2_UNKNOWN"),
    (INNER_L3_MASK, "INNER_L3_UNKNOWN"),
    (INNER_L4_MASK, "INNER_L4_UNKNOWN"),
)
_NAME = {v: k for k, v in PTYPE.items()}


def ptype_value(names: str) -> int:
    """The packet_type value of space-separated RTE_PTYPE names."""
    v = 0
    for n in names.split():
        v |= PTYPE[n]
    return v


_HW = {pt: ptype_value(names) for pt, names in ICE_PTYPE_TABLE.items()}


def hw_ptype(ptype: int) -> int:
    """``mbuf->packet_type`` for an E810 PTYPE, as the ice PMD sets it (0: unknown)."""
    return _HW.get(ptype, 0)


def ptype_name(value: int) -> str:
    """``rte_get_ptype_name()``: each present layer's name followed by a space."""
    if value == 0:
        return "UNKNOWN"
    out = ""
    for mask, unknown in _LAYERS:
        part = value & mask
        if part:
            out += _NAME.get(part, unknown) + " "
    return out


@dataclass
class HdrLens:
    """``struct rte_net_hdr_lens``."""

    l2_len: int = 0
    l3_len: int = 0
    l4_len: int = 0
    tunnel_len: int = 0
    inner_l2_len: int = 0
    inner_l3_len: int = 0
    inner_l4_len: int = 0


_ETH_IPV4, _ETH_IPV6, _ETH_VLAN, _ETH_QINQ = 0x0800, 0x86DD, 0x8100, 0x88A8
_ETH_MPLS, _ETH_MPLSM, _ETH_TEB = 0x8847, 0x8848, 0x6558
_GPE_IPV4, _GPE_IPV6, _GPE_ETH = 1, 2, 3  # RTE_VXLAN_GPE_TYPE_*
_IP6_EXT = frozenset({0, 43, 44, 50, 51, 60})  # HOPOPTS ROUTING FRAGMENT ESP AH DSTOPTS
_L4 = {17: "UDP", 6: "TCP", 132: "SCTP"}


def _u16(d: bytes, off: int) -> int | None:
    return int.from_bytes(d[off : off + 2], "big") if off + 2 <= len(d) else None


def _skip_ip6_ext(proto: int, d: bytes, off: int) -> tuple[int, int, bool]:
    """``rte_net_skip_ip6_ext``: (next proto or -1, offset, fragment)."""
    for _ in range(5):
        if proto in (0, 43, 60):
            if off + 2 > len(d):
                return -1, off, False
            nxt, ln = d[off], d[off + 1]
            off += (ln + 1) * 8
            proto = nxt
        elif proto == 44:
            if off + 2 > len(d):
                return -1, off, False
            return d[off], off + 8, True
        elif proto == 59:
            return 0, off, False
        else:
            return proto, off, False
    return -1, off, False


def sw_ptype(d: bytes) -> tuple[int, HdrLens]:
    """``rte_net_get_ptype(m, &hdr_lens, RTE_PTYPE_ALL_MASK)``."""
    lens = HdrLens()
    if len(d) < 14:
        return 0, lens
    pt = PTYPE["L2_ETHER"]
    proto = _u16(d, 12) or 0
    off = 14
    lens.l2_len = 14
    if proto != _ETH_IPV4:
        depth = 0
        while proto in (_ETH_VLAN, _ETH_QINQ):
            depth += 1
            if depth > 8:
                return 0, lens
            pt |= PTYPE["L2_ETHER_VLAN"] if proto == _ETH_VLAN else PTYPE["L2_ETHER_QINQ"]
            nxt = _u16(d, off + 2)
            if nxt is None:
                return pt, lens
            off += 4
            lens.l2_len += 4
            proto = nxt
        if proto in (_ETH_MPLS, _ETH_MPLSM):
            # the loop reads five labels and always ends with i == 5: classified only
            return pt, lens
    # L3
    if proto == _ETH_IPV4:
        if off + 20 > len(d):
            return pt, lens
        vihl = d[off]
        pt |= PTYPE["L3_IPV4"] if vihl == 0x45 else (PTYPE["L3_IPV4_EXT"] if vihl >> 4 == 4 else 0)
        lens.l3_len = (vihl & 0xF) * 4
        frag = (_u16(d, off + 6) or 0) & 0x3FFF
        ip_proto = d[off + 9]
        off += lens.l3_len
        if frag:
            return pt | PTYPE["L4_FRAG"], lens
        l4 = _L4.get(ip_proto)
        if l4:
            pt |= PTYPE["L4_" + l4]
    elif proto == _ETH_IPV6:
        if off + 40 > len(d):
            return pt, lens
        ip_proto = d[off + 6]
        lens.l3_len = 40
        off += 40
        pt |= PTYPE["L3_IPV6_EXT"] if ip_proto in _IP6_EXT and ip_proto != 59 else PTYPE["L3_IPV6"]
        is_frag = False
        if pt & L3_MASK == PTYPE["L3_IPV6_EXT"]:
            ip_proto, off, is_frag = _skip_ip6_ext(ip_proto, d, off)
            if ip_proto < 0:
                return pt, lens
            lens.l3_len = off - lens.l2_len
        if ip_proto == 0:
            return pt, lens
        if is_frag:
            return pt | PTYPE["L4_FRAG"], lens
        l4 = _L4.get(ip_proto)
        if l4:
            pt |= PTYPE["L4_" + l4]
    else:
        return pt, lens
    # L4 and tunnels
    l4_bits = pt & L4_MASK
    inner = -1  # the inner protocol (an EtherType, or a VXLAN-GPE next protocol)
    if l4_bits == PTYPE["L4_UDP"]:
        lens.l4_len = 8
        tun, inner, off = _udp_tunnel(d, off, lens)
        pt |= tun
        if not tun:
            return pt, lens
    elif l4_bits == PTYPE["L4_TCP"]:
        if off + 13 > len(d):
            return pt & (L2_MASK | L3_MASK), lens
        lens.l4_len = (d[off + 12] & 0xF0) >> 2
        return pt, lens
    elif l4_bits == PTYPE["L4_SCTP"]:
        lens.l4_len = 12
        return pt, lens
    else:
        lens.l4_len = 0
        prev = off
        tun, inner, off = _ip_tunnel(ip_proto, d, off)
        pt |= tun
        lens.tunnel_len = off - prev
        lens.inner_l2_len = off - prev
        if not tun:
            return pt, lens
    return _inner(d, off, inner, pt, lens)


def _udp_tunnel(d: bytes, off: int, lens: HdrLens) -> tuple[int, int, int]:
    if off + 8 > len(d):
        return 0, -1, off
    sport, dport = _u16(d, off) or 0, _u16(d, off + 2) or 0
    off += 8
    port = sport if sport == 2123 else dport
    if port == 4789:
        lens.tunnel_len = 8
        lens.inner_l2_len = 8 + 8 + 14  # RTE_ETHER_VXLAN_HLEN
        return PTYPE["TUNNEL_VXLAN"], _GPE_ETH, off + 8
    if port == 4790:
        if off + 8 > len(d):
            return 0, -1, off
        lens.tunnel_len = 8
        lens.inner_l2_len = 8 + 8  # RTE_ETHER_VXLAN_GPE_HLEN
        return PTYPE["TUNNEL_VXLAN_GPE"], d[off + 3], off + 8
    if port in (2123, 2152):
        if off + 8 > len(d):
            return 0, -1, off
        flags = d[off]
        gtp_len = 8 + (4 if flags & 0x07 else 0)
        inner = 0
        if d[off + 1] == 0xFF:
            if off + gtp_len < len(d):
                ver = d[off + gtp_len] & 0xF0
                inner = _ETH_IPV4 if ver == 0x40 else _ETH_IPV6 if ver == 0x60 else 0
        lens.inner_l2_len = gtp_len + 8
        lens.tunnel_len = gtp_len
        kind = "TUNNEL_GTPC" if port == 2123 else "TUNNEL_GTPU"
        return PTYPE[kind], inner, off + gtp_len
    if port == 6081:
        if off + 8 > len(d):
            return 0, -1, off
        glen = 8 + (d[off] & 0x3F) * 4
        lens.tunnel_len = glen
        lens.inner_l2_len = 8 + glen
        inner = _u16(d, off + 2) or 0
        return PTYPE["TUNNEL_GENEVE"], inner or _ETH_IPV4, off + glen
    return 0, -1, off


_GRE_OPT_LEN = {0x0: 4, 0x1: 8, 0x2: 8, 0x8: 8, 0x3: 12, 0x9: 12, 0xA: 12, 0xB: 16}


def _ip_tunnel(ip_proto: int, d: bytes, off: int) -> tuple[int, int, int]:
    if ip_proto == 47:
        if off + 4 > len(d):
            return 0, -1, off
        n = _GRE_OPT_LEN.get((_u16(d, off) or 0) >> 12, 0)
        if n == 0:
            return 0, -1, off
        inner = _u16(d, off + 2) or 0
        kind = "TUNNEL_NVGRE" if inner == _ETH_TEB else "TUNNEL_GRE"
        return PTYPE[kind], inner, off + n
    if ip_proto == 4:
        return PTYPE["TUNNEL_IP"], _ETH_IPV4, off
    if ip_proto == 41:
        return PTYPE["TUNNEL_IP"], _ETH_IPV6, off
    return 0, -1, off


def _inner(d: bytes, off: int, proto: int, pt: int, lens: HdrLens) -> tuple[int, HdrLens]:
    if proto in (_ETH_TEB, _GPE_ETH):
        if off + 14 > len(d):
            return pt, lens
        pt |= PTYPE["INNER_L2_ETHER"]
        proto = _u16(d, off + 12) or 0
        off += 14
        lens.inner_l2_len += 14
    if proto == _ETH_VLAN:
        pt = (pt & ~INNER_L2_MASK) | PTYPE["INNER_L2_ETHER_VLAN"]
        nxt = _u16(d, off + 2)
        if nxt is None:
            return pt, lens
        off += 4
        lens.inner_l2_len += 4
        proto = nxt
    elif proto == _ETH_QINQ:
        pt = (pt & ~INNER_L2_MASK) | PTYPE["INNER_L2_ETHER_QINQ"]
        nxt = _u16(d, off + 6)
        if nxt is None:
            return pt, lens
        off += 8
        lens.inner_l2_len += 8
        proto = nxt
    if proto in (_ETH_IPV4, _GPE_IPV4):
        if off + 20 > len(d):
            return pt, lens
        vihl = d[off]
        if vihl == 0x45:
            pt |= PTYPE["INNER_L3_IPV4"]
        elif vihl >> 4 == 4:
            pt |= PTYPE["INNER_L3_IPV4_EXT"]
        lens.inner_l3_len = (vihl & 0xF) * 4
        frag = (_u16(d, off + 6) or 0) & 0x3FFF
        ip_proto = d[off + 9]
        off += lens.inner_l3_len
        if frag:
            lens.inner_l4_len = 0
            return pt | PTYPE["INNER_L4_FRAG"], lens
    elif proto in (_ETH_IPV6, _GPE_IPV6):
        if off + 40 > len(d):
            return pt, lens
        ip_proto = d[off + 6]
        lens.inner_l3_len = 40
        off += 40
        if ip_proto in _IP6_EXT:
            pt |= PTYPE["INNER_L3_IPV6_EXT"]
            prev = off
            ip_proto, off, is_frag = _skip_ip6_ext(ip_proto, d, off)
            if ip_proto < 0:
                return pt, lens
            lens.inner_l3_len += off - prev
            if ip_proto == 0:
                return pt, lens
            if is_frag:
                lens.inner_l4_len = 0
                return pt | PTYPE["INNER_L4_FRAG"], lens
        else:
            pt |= PTYPE["INNER_L3_IPV6"]
    else:
        return pt, lens
    l4 = _L4.get(ip_proto)
    if l4 == "UDP":
        pt |= PTYPE["INNER_L4_UDP"]
        lens.inner_l4_len = 8
    elif l4 == "TCP":
        if off + 13 > len(d):
            return pt & (INNER_L2_MASK | INNER_L3_MASK | 0xFFFF), lens
        pt |= PTYPE["INNER_L4_TCP"]
        lens.inner_l4_len = (d[off + 12] & 0xF0) >> 2
    elif l4 == "SCTP":
        pt |= PTYPE["INNER_L4_SCTP"]
        lens.inner_l4_len = 12
    else:
        lens.inner_l4_len = 0
    return pt, lens


# Rx offload flags (lib/mbuf/rte_mbuf_core.h) in rte_get_rx_ol_flag_list's order.
RX_RSS_HASH = 1 << 1
RX_FDIR = 1 << 2
RX_FDIR_ID = 1 << 13
_CKSUM = {  # field: (shift mask, {value: name})
    "L4": (
        (1 << 3) | (1 << 8),
        {1 << 3: "BAD", 1 << 8: "GOOD", (1 << 3) | (1 << 8): "NONE", 0: "UNKNOWN"},
    ),
    "IP": (
        (1 << 4) | (1 << 7),
        {1 << 4: "BAD", 1 << 7: "GOOD", (1 << 4) | (1 << 7): "NONE", 0: "UNKNOWN"},
    ),
    "OUTER_L4": (
        (1 << 21) | (1 << 22),
        {1 << 21: "BAD", 1 << 22: "GOOD", (1 << 21) | (1 << 22): "INVALID", 0: "UNKNOWN"},
    ),
}
RX_IP_CKSUM_GOOD, RX_L4_CKSUM_GOOD, RX_OUTER_L4_CKSUM_GOOD = 1 << 7, 1 << 8, 1 << 22
RX_IP_CKSUM_BAD, RX_L4_CKSUM_BAD = 1 << 4, 1 << 3


def rx_ol_flag_list(flags: int) -> str:
    """``rte_get_rx_ol_flag_list()``: the set flags' names, each followed by a space."""
    out = []
    if flags & RX_RSS_HASH:
        out.append("RTE_MBUF_F_RX_RSS_HASH")
    if flags & RX_FDIR:
        out.append("RTE_MBUF_F_RX_FDIR")
    for field in ("L4", "IP"):
        mask, names = _CKSUM[field]
        out.append(f"RTE_MBUF_F_RX_{field}_CKSUM_{names[flags & mask]}")
    if flags & RX_FDIR_ID:
        out.append("RTE_MBUF_F_RX_FDIR_ID")
    mask, names = _CKSUM["OUTER_L4"]
    out.append(f"RTE_MBUF_F_RX_OUTER_L4_CKSUM_{names[flags & mask]}")
    return "".join(n + " " for n in out)


def _csum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def checksum_flags(d: bytes, hw: int) -> int:
    """The checksum flags ``ice_rxd_error_to_pkt_flags()`` gives: none unless the
    hardware decoded L3/L4 (an IP PTYPE); IPv4 header errors make IP_CKSUM_BAD,
    TCP/UDP checksum errors of the outer L4 header L4_CKSUM_BAD (a UDP checksum of 0
    is not checked); otherwise GOOD for IP, L4 and outer L4."""
    if not hw & L3_MASK:
        return 0
    flags = RX_IP_CKSUM_GOOD | RX_L4_CKSUM_GOOD | RX_OUTER_L4_CKSUM_GOOD
    pt, lens = sw_ptype(d)
    off = lens.l2_len
    if pt & L3_MASK in (PTYPE["L3_IPV4"], PTYPE["L3_IPV4_EXT"]) and len(d) >= off + lens.l3_len:
        if _csum16(d[off : off + lens.l3_len]) != 0xFFFF:
            flags = (flags & ~RX_IP_CKSUM_GOOD) | RX_IP_CKSUM_BAD
        total = _u16(d, off + 2) or 0
        l4 = pt & L4_MASK
        if l4 in (PTYPE["L4_TCP"], PTYPE["L4_UDP"]) and total <= len(d) - off:
            seg = d[off + lens.l3_len : off + total]
            if l4 == PTYPE["L4_UDP"] and seg[6:8] == b"\0\0":
                return flags
            pseudo = d[off + 12 : off + 20] + bytes([0, d[off + 9]]) + len(seg).to_bytes(2, "big")
            if _csum16(pseudo + seg) != 0xFFFF:
                flags = (flags & ~RX_L4_CKSUM_GOOD) | RX_L4_CKSUM_BAD
    return flags


__all__ = [
    "PTYPE",
    "HdrLens",
    "checksum_flags",
    "hw_ptype",
    "ptype_name",
    "ptype_value",
    "rx_ol_flag_list",
    "sw_ptype",
]

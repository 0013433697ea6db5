"""The hash engine: RSS configured per flow type, as the ice PMD does it.

The E810 hashes a packet with the RSS profile its PTYPE selects on its VSI. A profile
is a list of packet segments (outer, inner) with the headers each must have
(``ICE_FLOW_SEG_HDR_*``) and the fields hashed (``ICE_FLOW_FIELD_IDX_*``); the
headers give the PTYPEs it applies to, from the ``ice_ptypes_*`` groups
(:mod:`e810pipe.ice_flow_ptypes`) as ``ice_flow_proc_seg_hdrs()`` intersects them.
Facts from DPDK main (26.11-rc0): ``drivers/net/intel/ice/ice_hash.c``,
``ice_ethdev.c`` and ``base/ice_flow.c``.

- **Rules** (``ice_hash_parse_pattern_action``): one ``rss`` action with ``types``
  and no queue list, ``level`` 0, ``key_len`` 0; ``func`` default, toeplitz,
  symmetric_toeplitz or simple_xor (the last only with the empty pattern, where it
  switches the VSI's hash scheme to simple XOR until the rule goes). The pattern must
  be one of ``ice_hash_pattern_list``; its template (``ipv4_udp_tmplt``...) gives
  the headers and the full field set, which the rule's types refine
  (``ice_refine_hash_cfg``): ``l3-src-only`` drops the destination address, ``eth``
  adds the MAC addresses, ``l4-chksum`` the L4 checksum, ``l3-pre64`` the prefix...
  Types the pattern does not allow, and the combinations ``ice_any_invalid_rss_type``
  refuses, fail with "RSS type not supported".
- **Profiles on a VSI** (``ice_add_rss_cfg_sync``): a profile with the same
  segments and fields as one present only updates its symmetric flag; one with the
  same segments replaces it; otherwise it is added. Where several profiles cover a
  PTYPE, the newest is used (a VSI group's newest profile has the highest
  priority). Destroying a rule removes the profile with its segments and fields, if
  still there (``ice_rem_rss_cfg``); what it had replaced does not come back.
- **Port RSS** (``ice_rss_hash_set``): ``rss_hf`` installs the outer IPv4, IPv6, TCP,
  UDP and SCTP profiles (and their PPPoE forms) after removing every profile of the
  VSI (``ice_rem_vsi_rss_cfg``), rule profiles included.

The hash input is the profile's fields in segment order, then field index order
(``ice_flow_create_xtrct_seq``), each field's bytes as in the packet, masked where
ice masks the field word (the IP protocol fields). This order gives Microsoft's
source address, destination address, source port, destination port.
UNCONFIRMED: the order in which the hardware feeds field-vector words to the hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .engine import Engine, Frame, Match, Verdict, ice_raw_bytes
from .errors import RuleError, UsageError
from .ice_flow_ptypes import ALL_PTYPES, PTYPE_GROUPS
from .rules import FlowRule, Item, rule_error

if TYPE_CHECKING:
    from .parser import ParseResult
    from .rss import RssStage

# ---------------------------------------------------------------------------
# rss_hf bits (RTE_ETH_RSS_*, lib/ethdev/rte_ethdev.h) and testpmd's type names


def _b(n: int) -> int:
    return 1 << n


IPV4, FRAG_IPV4, IPV4_TCP, IPV4_UDP, IPV4_SCTP, IPV4_OTHER = (_b(i) for i in range(2, 8))
IPV6, FRAG_IPV6, IPV6_TCP, IPV6_UDP, IPV6_SCTP, IPV6_OTHER = (_b(i) for i in range(8, 14))
L2_PAYLOAD, IPV6_EX, IPV6_TCP_EX, IPV6_UDP_EX, PORT = (_b(i) for i in range(14, 19))
VXLAN, GENEVE, NVGRE, GTPU = _b(19), _b(20), _b(21), _b(23)
ETH, S_VLAN, C_VLAN, ESP, AH, L2TPV3, PFCP, PPPOE = (_b(i) for i in range(24, 32))
ECPRI, MPLS, IPV4_CHKSUM, L4_CHKSUM, L2TPV2, IPV6_FLOW_LABEL, IB_BTH = (
    _b(i) for i in range(32, 39)
)
L3_SRC_ONLY, L3_DST_ONLY, L4_SRC_ONLY, L4_DST_ONLY = _b(63), _b(62), _b(61), _b(60)
L2_SRC_ONLY, L2_DST_ONLY = _b(59), _b(58)
L3_PRE32, L3_PRE40, L3_PRE48, L3_PRE56, L3_PRE64, L3_PRE96 = (
    _b(57),
    _b(56),
    _b(55),
    _b(54),
    _b(53),
    _b(52),
)
RSS_IP = IPV4 | FRAG_IPV4 | IPV4_OTHER | IPV6 | FRAG_IPV6 | IPV6_OTHER | IPV6_EX
RSS_UDP = IPV4_UDP | IPV6_UDP | IPV6_UDP_EX
RSS_TCP = IPV4_TCP | IPV6_TCP | IPV6_TCP_EX
RSS_SCTP = IPV4_SCTP | IPV6_SCTP
RSS_TUNNEL = VXLAN | GENEVE | NVGRE
RSS_VLAN = S_VLAN | C_VLAN

#: testpmd's rss_type_table (app/test-pmd/config.c): name -> rss_hf bits.
RSS_TYPE_BITS: dict[str, int] = {
    "all": ETH
    | RSS_VLAN
    | RSS_IP
    | RSS_TCP
    | RSS_UDP
    | RSS_SCTP
    | L2_PAYLOAD
    | L2TPV3
    | ESP
    | AH
    | PFCP
    | GTPU
    | ECPRI
    | MPLS
    | L2TPV2
    | IB_BTH,
    "none": 0,
    "ip": RSS_IP,
    "udp": RSS_UDP,
    "tcp": RSS_TCP,
    "sctp": RSS_SCTP,
    "tunnel": RSS_TUNNEL,
    "vlan": RSS_VLAN,
    "ipv4": IPV4,
    "ipv4-frag": FRAG_IPV4,
    "ipv4-tcp": IPV4_TCP,
    "ipv4-udp": IPV4_UDP,
    "ipv4-sctp": IPV4_SCTP,
    "ipv4-other": IPV4_OTHER,
    "ipv6": IPV6,
    "ipv6-frag": FRAG_IPV6,
    "ipv6-tcp": IPV6_TCP,
    "ipv6-udp": IPV6_UDP,
    "ipv6-sctp": IPV6_SCTP,
    "ipv6-other": IPV6_OTHER,
    "l2-payload": L2_PAYLOAD,
    "ipv6-ex": IPV6_EX,
    "ipv6-tcp-ex": IPV6_TCP_EX,
    "ipv6-udp-ex": IPV6_UDP_EX,
    "port": PORT,
    "vxlan": VXLAN,
    "geneve": GENEVE,
    "nvgre": NVGRE,
    "gtpu": GTPU,
    "eth": ETH,
    "s-vlan": S_VLAN,
    "c-vlan": C_VLAN,
    "esp": ESP,
    "ah": AH,
    "l2tpv3": L2TPV3,
    "pfcp": PFCP,
    "pppoe": PPPOE,
    "ecpri": ECPRI,
    "mpls": MPLS,
    "ipv4-chksum": IPV4_CHKSUM,
    "l4-chksum": L4_CHKSUM,
    "l2tpv2": L2TPV2,
    "l3-pre96": L3_PRE96,
    "l3-pre64": L3_PRE64,
    "l3-pre56": L3_PRE56,
    "l3-pre48": L3_PRE48,
    "l3-pre40": L3_PRE40,
    "l3-pre32": L3_PRE32,
    "l2-dst-only": L2_DST_ONLY,
    "l2-src-only": L2_SRC_ONLY,
    "l4-dst-only": L4_DST_ONLY,
    "l4-src-only": L4_SRC_ONLY,
    "l3-dst-only": L3_DST_ONLY,
    "l3-src-only": L3_SRC_ONLY,
    "ipv6-flow-label": IPV6_FLOW_LABEL,
    "ib-bth": IB_BTH,
}

#: What the ice PF offers as port RSS (ICE_RSS_OFFLOAD_ALL, dev_info's
#: flow_type_rss_offloads); testpmd masks the requested types with it.
ICE_RSS_OFFLOAD_ALL = (
    IPV4
    | FRAG_IPV4
    | IPV4_TCP
    | IPV4_UDP
    | IPV4_SCTP
    | IPV4_OTHER
    | IPV6
    | FRAG_IPV6
    | IPV6_TCP
    | IPV6_UDP
    | IPV6_SCTP
    | IPV6_OTHER
    | L2_PAYLOAD
)
#: The types ice_rss_hash_set turns into profiles (ICE_RSS_HF_ALL): pf->rss_hf.
ICE_RSS_HF_ALL = IPV4 | IPV6 | IPV4_UDP | IPV6_UDP | IPV4_TCP | IPV6_TCP | IPV4_SCTP | IPV6_SCTP


def rss_hf(types: Iterable[str]) -> int:
    """The rss_hf bits of testpmd type names (``ipv4-udp``, ``ip``, ``l3-src-only``...).

    Raises:
        UsageError: a name testpmd does not know.
    """
    hf = 0
    for t in types:
        if t not in RSS_TYPE_BITS:
            raise UsageError(f"unknown RSS type '{t}'")
        hf |= RSS_TYPE_BITS[t]
    return hf


# Names of single bits, in testpmd's table order (rss_types_display).
HF_NAMES: tuple[tuple[str, int], ...] = tuple(
    (n, b) for n, b in list(RSS_TYPE_BITS.items())[8:] if b and b & (b - 1) == 0
)


def hf_names(hf: int) -> list[str]:
    """The names of the bits of `hf`, as ``show port N rss-hash`` lists them."""
    return [n for n, b in HF_NAMES if hf & b]


# ---------------------------------------------------------------------------
# Segment headers (enum ice_flow_seg_hdr) and fields (enum ice_flow_field)

H_NONE = 0
H_ETH, H_VLAN, H_IPV4, H_IPV6, H_ARP, H_ICMP, H_TCP, H_UDP = (_b(i) for i in range(8))
H_SCTP, H_GRE, H_GTPC, H_GTPC_TEID, H_GTPU_IP, H_GTPU_EH, H_GTPU_DWN, H_GTPU_UP = (
    _b(i) for i in range(8, 16)
)
H_PPPOE, H_PFCP_NODE, H_PFCP_SESSION, H_L2TPV3, H_ESP, H_AH, H_NAT_T_ESP = (
    _b(i) for i in range(16, 23)
)
H_ETH_NON_IP, H_GTPU_NON_IP, H_VXLAN, H_ECPRI_TP0, H_UDP_ECPRI_TP0, H_L2TPV2, H_PPP = (
    _b(i) for i in range(23, 30)
)
H_IPV_FRAG, H_IPV_OTHER = _b(30), _b(31)
H_PFCP = H_PFCP_NODE | H_PFCP_SESSION
_L4_NO_OTHER = H_TCP | H_UDP | H_SCTP
_GTPU_ANY = H_GTPU_IP | H_GTPU_EH | H_GTPU_DWN | H_GTPU_UP

# enum ice_rss_cfg_hdr_type
OUTER, INNER, INNER_W_OUTER_IPV4, INNER_W_OUTER_IPV6 = 0, 1, 2, 3
ANY_HEADERS = 6

# Hardware protocol IDs (enum ice_prot_id) the fields are extracted from.
P_MAC_OF, P_MAC_IL, P_ETYPE_OL, P_ETYPE_IL = 1, 4, 9, 10
P_IPV4_OF, P_IPV4_IL, P_IPV6_OF, P_IPV6_IL, P_IPV6_NEXT_PROTO, P_IPV6_FRAG = 32, 33, 40, 41, 43, 47
P_TCP_IL, P_UDP_OF, P_UDP_IL, P_GRE_OF, P_ESP_F, P_ESP_2 = 49, 52, 53, 64, 88, 89
P_SCTP_IL, P_ICMP_IL, P_ICMPV6_IL, P_PPPOE, P_L2TPV3, P_ARP_OF = 96, 98, 100, 103, 104, 118

# (name, protocol ID in the outer segment, in the inner one, byte offset in that
# protocol's header, size, 16-bit word mask or 0), in enum ice_flow_field order: the
# protocols ice_flow_xtract_fld() extracts each field from (ice_flds_info gives the
# offsets). Note that L4 ports are read from the innermost L4 header in either segment.
_FIELD_TABLE: tuple[tuple[str, int, int, int, int, int], ...] = (
    ("ETH_DA", P_MAC_OF, P_MAC_IL, 0, 6, 0),
    ("ETH_SA", P_MAC_OF, P_MAC_IL, 6, 6, 0),
    ("S_VLAN", P_MAC_OF, P_MAC_IL, 12, 2, 0),
    ("C_VLAN", P_MAC_OF, P_MAC_IL, 14, 2, 0),
    ("ETH_TYPE", P_ETYPE_OL, P_ETYPE_IL, 0, 2, 0),
    ("IPV4_DSCP", P_IPV4_OF, P_IPV4_IL, 0, 1, 0x00FC),
    ("IPV6_DSCP", P_IPV6_OF, P_IPV6_IL, 0, 1, 0x0FF0),
    ("IPV4_TTL", P_IPV4_OF, P_IPV4_IL, 8, 1, 0xFF00),
    ("IPV4_FRAG_OFS", P_IPV4_OF, P_IPV4_OF, 6, 2, 0x3FFF),
    ("IPV4_PROT", P_IPV4_OF, P_IPV4_IL, 8, 1, 0x00FF),
    ("IPV6_TTL", P_IPV6_NEXT_PROTO, P_IPV6_IL, 6, 1, 0x00FF),
    ("IPV6_PROT", P_IPV6_NEXT_PROTO, P_IPV6_IL, 6, 1, 0xFF00),
    ("IPV4_SA", P_IPV4_OF, P_IPV4_IL, 12, 4, 0),
    ("IPV4_DA", P_IPV4_OF, P_IPV4_IL, 16, 4, 0),
    ("IPV6_SA", P_IPV6_OF, P_IPV6_IL, 8, 16, 0),
    ("IPV6_DA", P_IPV6_OF, P_IPV6_IL, 24, 16, 0),
    ("IPV4_CHKSUM", P_IPV4_OF, P_IPV4_IL, 10, 2, 0),
    ("IPV4_ID", P_IPV4_OF, P_IPV4_OF, 4, 2, 0),
    ("IPV6_ID", P_IPV6_FRAG, P_IPV6_FRAG, 4, 4, 0),
    ("IPV6_PRE32_SA", P_IPV6_OF, P_IPV6_IL, 8, 4, 0),
    ("IPV6_PRE32_DA", P_IPV6_OF, P_IPV6_IL, 24, 4, 0),
    ("IPV6_PRE48_SA", P_IPV6_OF, P_IPV6_IL, 8, 6, 0),
    ("IPV6_PRE48_DA", P_IPV6_OF, P_IPV6_IL, 24, 6, 0),
    ("IPV6_PRE64_SA", P_IPV6_OF, P_IPV6_IL, 8, 8, 0),
    ("IPV6_PRE64_DA", P_IPV6_OF, P_IPV6_IL, 24, 8, 0),
    ("TCP_SRC_PORT", P_TCP_IL, P_TCP_IL, 0, 2, 0),
    ("TCP_DST_PORT", P_TCP_IL, P_TCP_IL, 2, 2, 0),
    ("UDP_SRC_PORT", P_UDP_IL, P_UDP_IL, 0, 2, 0),
    ("UDP_DST_PORT", P_UDP_IL, P_UDP_IL, 2, 2, 0),
    ("SCTP_SRC_PORT", P_SCTP_IL, P_SCTP_IL, 0, 2, 0),
    ("SCTP_DST_PORT", P_SCTP_IL, P_SCTP_IL, 2, 2, 0),
    ("TCP_FLAGS", P_TCP_IL, P_TCP_IL, 13, 1, 0),
    ("TCP_CHKSUM", P_TCP_IL, P_TCP_IL, 16, 2, 0),
    ("UDP_CHKSUM", P_UDP_IL, P_UDP_IL, 6, 2, 0),
    ("SCTP_CHKSUM", P_SCTP_IL, P_SCTP_IL, 8, 4, 0),
    ("ARP_SIP", P_ARP_OF, P_ARP_OF, 14, 4, 0),
    ("ARP_DIP", P_ARP_OF, P_ARP_OF, 24, 4, 0),
    ("ARP_SHA", P_ARP_OF, P_ARP_OF, 8, 6, 0),
    ("ARP_DHA", P_ARP_OF, P_ARP_OF, 18, 6, 0),
    ("ARP_OP", P_ARP_OF, P_ARP_OF, 6, 2, 0),
    ("ICMP_TYPE", P_ICMP_IL, P_ICMP_IL, 0, 1, 0),
    ("ICMP_CODE", P_ICMP_IL, P_ICMP_IL, 1, 1, 0),
    ("GRE_KEYID", P_GRE_OF, P_GRE_OF, 12, 4, 0),
    ("GTPC_TEID", P_UDP_OF, P_UDP_OF, 12, 4, 0),
    ("GTPU_IP_TEID", P_UDP_OF, P_UDP_OF, 12, 4, 0),
    ("GTPU_EH_TEID", P_UDP_OF, P_UDP_OF, 12, 4, 0),
    ("GTPU_EH_QFI", P_UDP_OF, P_UDP_OF, 22, 2, 0x3F00),
    ("GTPU_UP_TEID", P_UDP_OF, P_UDP_OF, 12, 4, 0),
    ("GTPU_UP_QFI", P_UDP_OF, P_UDP_OF, 22, 2, 0x3F00),
    ("GTPU_DWN_TEID", P_UDP_OF, P_UDP_OF, 12, 4, 0),
    ("GTPU_DWN_QFI", P_UDP_OF, P_UDP_OF, 22, 2, 0x3F00),
    ("PPPOE_SESS_ID", P_PPPOE, P_PPPOE, 2, 2, 0),
    ("PFCP_SEID", P_UDP_IL, P_UDP_IL, 12, 8, 0),
    ("L2TPV3_SESS_ID", P_L2TPV3, P_L2TPV3, 0, 4, 0),
    ("ESP_SPI", P_ESP_F, P_ESP_F, 0, 4, 0),
    ("AH_SPI", P_ESP_2, P_ESP_2, 4, 4, 0),
    ("NAT_T_ESP_SPI", P_UDP_IL, P_UDP_IL, 8, 4, 0),
)
FIELD_INDEX = {f[0]: i for i, f in enumerate(_FIELD_TABLE)}


def F(*names: str) -> int:
    """The hash-field bits of field names (``F("IPV4_SA", "IPV4_DA")``)."""
    out = 0
    for n in names:
        out |= 1 << FIELD_INDEX[n]
    return out


HASH_ETH = F("ETH_DA", "ETH_SA")
HASH_IPV4 = F("IPV4_SA", "IPV4_DA")
HASH_IPV6 = F("IPV6_SA", "IPV6_DA")
HASH_TCP_PORT = F("TCP_SRC_PORT", "TCP_DST_PORT")
HASH_UDP_PORT = F("UDP_SRC_PORT", "UDP_DST_PORT")
HASH_SCTP_PORT = F("SCTP_SRC_PORT", "SCTP_DST_PORT")
IPV4_PROT, IPV6_PROT = F("IPV4_PROT"), F("IPV6_PROT")
# Field pairs symmetric Toeplitz folds (ice_rss_update_symm): both XORed together.
_SYMM_PAIRS = (
    ("IPV4_SA", "IPV4_DA"),
    ("IPV6_SA", "IPV6_DA"),
    ("TCP_SRC_PORT", "TCP_DST_PORT"),
    ("UDP_SRC_PORT", "UDP_DST_PORT"),
    ("SCTP_SRC_PORT", "SCTP_DST_PORT"),
)


def field_names(bits: int) -> list[str]:
    return [f[0] for i, f in enumerate(_FIELD_TABLE) if bits >> i & 1]


# ---------------------------------------------------------------------------
# Hash configurations (struct ice_rss_hash_cfg) and the templates of ice_hash.c


@dataclass(frozen=True)
class HashCfg:
    """What ``ice_add_rss_cfg`` is given: headers, hashed fields, inner/outer, symmetric."""

    addl_hdrs: int
    hash_flds: int
    hdr_type: int = OUTER
    symm: bool = False


_IP4 = H_IPV4 | H_IPV_OTHER
_IP6 = H_IPV6 | H_IPV_OTHER
TEMPLATES: dict[str, HashCfg] = {
    "ipv4": HashCfg(H_ETH | _IP4, HASH_ETH | HASH_IPV4),
    "ipv4_udp": HashCfg(H_ETH | _IP4 | H_UDP, HASH_ETH | HASH_IPV4 | HASH_UDP_PORT | IPV4_PROT),
    "ipv4_tcp": HashCfg(H_ETH | _IP4 | H_TCP, HASH_ETH | HASH_IPV4 | HASH_TCP_PORT | IPV4_PROT),
    "ipv4_sctp": HashCfg(H_ETH | _IP4 | H_SCTP, HASH_ETH | HASH_IPV4 | HASH_SCTP_PORT | IPV4_PROT),
    "ipv6": HashCfg(H_ETH | _IP6, HASH_ETH | HASH_IPV6),
    "ipv6_frag": HashCfg(H_ETH | H_IPV6 | H_IPV_FRAG, HASH_ETH | HASH_IPV6),
    "ipv6_udp": HashCfg(H_ETH | _IP6 | H_UDP, HASH_ETH | HASH_IPV6 | HASH_UDP_PORT | IPV6_PROT),
    "ipv6_tcp": HashCfg(H_ETH | _IP6 | H_TCP, HASH_ETH | HASH_IPV6 | HASH_TCP_PORT | IPV6_PROT),
    "ipv6_sctp": HashCfg(H_ETH | _IP6 | H_SCTP, HASH_ETH | HASH_IPV6 | HASH_SCTP_PORT | IPV6_PROT),
    "esp4": HashCfg(_IP4 | H_ESP, F("ESP_SPI")),
    "udp_esp4": HashCfg(_IP4 | H_NAT_T_ESP, F("NAT_T_ESP_SPI")),
    "ah4": HashCfg(_IP4 | H_AH, F("AH_SPI")),
    "l2tpv3_4": HashCfg(_IP4 | H_L2TPV3, F("L2TPV3_SESS_ID")),
    "pfcp4": HashCfg(_IP4 | H_PFCP_SESSION, F("PFCP_SEID")),
    "esp6": HashCfg(_IP6 | H_ESP, F("ESP_SPI")),
    "udp_esp6": HashCfg(_IP6 | H_NAT_T_ESP, F("NAT_T_ESP_SPI")),
    "ah6": HashCfg(_IP6 | H_AH, F("AH_SPI")),
    "l2tpv3_6": HashCfg(_IP6 | H_L2TPV3, F("L2TPV3_SESS_ID")),
    "pfcp6": HashCfg(_IP6 | H_PFCP_SESSION, F("PFCP_SEID")),
    "pppoe": HashCfg(H_ETH, HASH_ETH | F("PPPOE_SESS_ID")),
    "eth": HashCfg(H_ETH | H_ETH_NON_IP, HASH_ETH),
    "empty": HashCfg(H_NONE, 0, ANY_HEADERS),
}
for _outer, _ht in (("4", INNER_W_OUTER_IPV4), ("6", INNER_W_OUTER_IPV6)):
    for _inner, _ip, _hash, _prot in (
        ("4", _IP4, HASH_IPV4, IPV4_PROT),
        ("6", _IP6, HASH_IPV6, IPV6_PROT),
    ):
        TEMPLATES[f"o{_outer}_i{_inner}"] = HashCfg(_ip, _hash, _ht)
        TEMPLATES[f"o{_outer}_i{_inner}_udp"] = HashCfg(
            _ip | H_UDP, _hash | HASH_UDP_PORT | _prot, _ht
        )
        TEMPLATES[f"o{_outer}_i{_inner}_tcp"] = HashCfg(
            _ip | H_TCP, _hash | HASH_TCP_PORT | _prot, _ht
        )

# The rss types each pattern allows (ICE_RSS_TYPE_*).
_T_ETH_IPV4 = ETH | IPV4 | FRAG_IPV4 | IPV4_CHKSUM
_T_ETH_IPV6 = ETH | IPV6
_T_VLAN = S_VLAN | C_VLAN
_T_PPPOE = ETH | PPPOE

# ice_hash_pattern_list: (items, allowed types, template)
_PATTERNS: tuple[tuple[tuple[str, ...], int, str], ...] = (
    (("eth", "ipv4"), _T_ETH_IPV4, "ipv4"),
    (("eth", "ipv4", "udp"), _T_ETH_IPV4 | IPV4_UDP | L4_CHKSUM, "ipv4_udp"),
    (("eth", "ipv4", "tcp"), _T_ETH_IPV4 | IPV4_TCP | L4_CHKSUM, "ipv4_tcp"),
    (("eth", "ipv4", "sctp"), _T_ETH_IPV4 | IPV4_SCTP | L4_CHKSUM, "ipv4_sctp"),
    (("eth", "vlan", "ipv4"), IPV4 | _T_VLAN | FRAG_IPV4, "ipv4"),
    (("eth", "vlan", "ipv4", "udp"), IPV4 | IPV4_UDP | _T_VLAN, "ipv4_udp"),
    (("eth", "vlan", "ipv4", "tcp"), IPV4 | IPV4_TCP | _T_VLAN, "ipv4_tcp"),
    (("eth", "vlan", "ipv4", "sctp"), IPV4 | IPV4_SCTP | _T_VLAN, "ipv4_sctp"),
    (("eth", "pppoes", "ipv4"), IPV4 | _T_PPPOE, "ipv4"),
    (("eth", "pppoes", "ipv4", "udp"), IPV4 | IPV4_UDP | _T_PPPOE, "ipv4_udp"),
    (("eth", "pppoes", "ipv4", "tcp"), IPV4 | IPV4_TCP | _T_PPPOE, "ipv4_tcp"),
    (("eth", "ipv4", "esp"), ESP | IPV4, "esp4"),
    (("eth", "ipv4", "udp", "esp"), ESP | IPV4, "udp_esp4"),
    (("eth", "ipv4", "ah"), AH | IPV4, "ah4"),
    (("eth", "ipv4", "l2tpv3oip"), L2TPV3 | IPV4, "l2tpv3_4"),
    (("eth", "ipv4", "udp", "pfcp"), PFCP | IPV4, "pfcp4"),
    (("eth", "ipv6"), _T_ETH_IPV6, "ipv6"),
    (("eth", "ipv6", "ipv6_frag_ext"), _T_ETH_IPV6 | FRAG_IPV6, "ipv6_frag"),
    (("eth", "ipv6", "udp"), _T_ETH_IPV6 | IPV6_UDP | L4_CHKSUM, "ipv6_udp"),
    (("eth", "ipv6", "tcp"), _T_ETH_IPV6 | IPV6_TCP | L4_CHKSUM, "ipv6_tcp"),
    (("eth", "ipv6", "sctp"), _T_ETH_IPV6 | IPV6_SCTP | L4_CHKSUM, "ipv6_sctp"),
    (("eth", "vlan", "ipv6"), IPV6 | _T_VLAN, "ipv6"),
    (("eth", "vlan", "ipv6", "ipv6_frag_ext"), IPV6 | _T_VLAN | FRAG_IPV6, "ipv6_frag"),
    (("eth", "vlan", "ipv6", "udp"), IPV6 | IPV6_UDP | _T_VLAN, "ipv6_udp"),
    (("eth", "vlan", "ipv6", "tcp"), IPV6 | IPV6_TCP | _T_VLAN, "ipv6_tcp"),
    (("eth", "vlan", "ipv6", "sctp"), IPV6 | IPV6_SCTP | _T_VLAN, "ipv6_sctp"),
    (("eth", "pppoes", "ipv6"), IPV6 | _T_PPPOE, "ipv6"),
    (("eth", "pppoes", "ipv6", "udp"), IPV6 | IPV6_UDP | _T_PPPOE, "ipv6_udp"),
    (("eth", "pppoes", "ipv6", "tcp"), IPV6 | IPV6_TCP | _T_PPPOE, "ipv6_tcp"),
    (("eth", "ipv6", "esp"), ESP | IPV6, "esp6"),
    (("eth", "ipv6", "udp", "esp"), ESP | IPV6, "udp_esp6"),
    (("eth", "ipv6", "ah"), AH | IPV6, "ah6"),
    (("eth", "ipv6", "l2tpv3oip"), L2TPV3 | IPV6, "l2tpv3_6"),
    (("eth", "ipv6", "udp", "pfcp"), PFCP | IPV6, "pfcp6"),
    (("eth", "pppoes"), _T_PPPOE, "pppoe"),
    (("eth",), ETH, "eth"),
    ((), 0, "empty"),
)
_GTP_PATTERNS: list[tuple[tuple[str, ...], int, str]] = []
for _o in ("4", "6"):
    for _eh in ((), ("gtp_psc",)):
        for _i in ("4", "6"):
            _ipt = IPV4 if _i == "4" else IPV6
            _l4 = {"udp": IPV4_UDP if _i == "4" else IPV6_UDP}
            _l4["tcp"] = IPV4_TCP if _i == "4" else IPV6_TCP
            _head = ("eth", f"ipv{_o}", "udp", "gtpu", *_eh, f"ipv{_i}")
            _GTP_PATTERNS.append((_head, _ipt | GTPU, f"o{_o}_i{_i}"))
            for _p in ("udp", "tcp"):
                _GTP_PATTERNS.append(((*_head, _p), _ipt | _l4[_p] | GTPU, f"o{_o}_i{_i}_{_p}"))
PATTERNS = (*_PATTERNS, *_GTP_PATTERNS)
_PATTERN_INDEX = {items: (allowed, tmpl) for items, allowed, tmpl in PATTERNS}

# What a VF's rules take besides (iavf_hash.c's iavf_hash_pattern_list): the inner
# headers of GRE tunnels (inner_ipv4_tmplt...: TUNNEL_LEVEL_INNER, which the PF turns
# into an inner-header profile with no condition on the outer headers).
for _vname, _vhdr, _vhash, _vprot in (
    ("ipv4", _IP4, HASH_IPV4, IPV4_PROT),
    ("ipv6", _IP6, HASH_IPV6, IPV6_PROT),
):
    TEMPLATES[f"inner_{_vname}"] = HashCfg(_vhdr, _vhash, INNER)
    TEMPLATES[f"inner_{_vname}_udp"] = HashCfg(
        _vhdr | H_UDP, _vhash | HASH_UDP_PORT | _vprot, INNER
    )
    TEMPLATES[f"inner_{_vname}_tcp"] = HashCfg(
        _vhdr | H_TCP, _vhash | HASH_TCP_PORT | _vprot, INNER
    )
VF_PATTERNS: dict[tuple[str, ...], tuple[int, str]] = {
    # iavf_pattern_eth_ipv4_gtpu -> outer_ipv4_udp_tmplt: the outer IP of GTP-U packets
    ("eth", "ipv4", "udp", "gtpu"): (IPV4, "ipv4_udp"),
    ("eth", "ipv6", "udp", "gtpu"): (IPV6, "ipv6_udp"),
    # iavf_pattern_eth_ipv4_gtpc -> ipv4_udp_gtpc_tmplt: GTP-C packets' outer IP
    ("eth", "ipv4", "udp", "gtpc"): (IPV4, "gtpc4"),
    ("eth", "ipv6", "udp", "gtpc"): (IPV6, "gtpc6"),
}
TEMPLATES["gtpc4"] = HashCfg(_IP4 | H_UDP | H_GTPC, HASH_IPV4 | HASH_UDP_PORT)
TEMPLATES["gtpc6"] = HashCfg(_IP6 | H_UDP | H_GTPC, HASH_IPV6 | HASH_UDP_PORT)
for _vouter in ("ipv4", "ipv6"):
    for _vname, _vt, _vudp, _vtcp in (
        ("ipv4", IPV4, IPV4_UDP, IPV4_TCP),
        ("ipv6", IPV6, IPV6_UDP, IPV6_TCP),
    ):
        _vhead: tuple[str, ...] = ("eth", _vouter, "gre", _vname)
        VF_PATTERNS[_vhead] = (_vt, f"inner_{_vname}")
        VF_PATTERNS[_vhead + ("udp",)] = (_vt | _vudp, f"inner_{_vname}_udp")
        VF_PATTERNS[_vhead + ("tcp",)] = (_vt | _vtcp, f"inner_{_vname}_tcp")

# Items that are no header of the pattern (ice_match_pattern skips VOID; the PPPoE
# protocol-ID item belongs to the pppoes pattern).
_SKIP_ITEMS = frozenset({"void", "end", "pppoe_proto_id"})

FUNCS = ("default", "toeplitz", "symmetric_toeplitz", "simple_xor")
_VALID_L3 = IPV4 | FRAG_IPV4 | IPV4_TCP | IPV4_UDP | IPV4_SCTP
_VALID_L3 |= IPV6 | FRAG_IPV6 | IPV6_TCP | IPV6_UDP | IPV6_SCTP
_VALID_L4 = IPV4_TCP | IPV4_UDP | IPV4_SCTP | IPV6_TCP | IPV6_UDP | IPV6_SCTP
_VALID_IPV6 = IPV6 | FRAG_IPV6 | IPV6_TCP | IPV6_UDP | IPV6_SCTP
_VALID_ATTR = L3_SRC_ONLY | L3_DST_ONLY | L4_SRC_ONLY | L4_DST_ONLY | L2_SRC_ONLY
_VALID_ATTR |= L2_DST_ONLY | L3_PRE32 | L3_PRE48 | L3_PRE64
_INVALID_COMB = (
    IPV4 | IPV4_UDP,
    IPV4 | IPV4_TCP,
    IPV6 | IPV6_UDP,
    IPV6 | IPV6_TCP,
    L3_PRE40 | L3_PRE56 | L3_PRE96,
)
_ATTR_NEEDS = (
    (L2_SRC_ONLY | L2_DST_ONLY, ETH),
    (L3_SRC_ONLY | L3_DST_ONLY, _VALID_L3),
    (L4_SRC_ONLY | L4_DST_ONLY, _VALID_L4),
    (L3_PRE32, _VALID_IPV6),
    (L3_PRE48, _VALID_IPV6),
    (L3_PRE64, _VALID_IPV6),
    (L3_PRE40 | L3_PRE56 | L3_PRE96, 0),
)


def refine_hf(hf: int) -> int:
    """rte_eth_rss_hf_refine: src-only and dst-only of one layer together mean both."""
    if hf & L3_SRC_ONLY and hf & L3_DST_ONLY:
        hf &= ~(L3_SRC_ONLY | L3_DST_ONLY)
    if hf & L4_SRC_ONLY and hf & L4_DST_ONLY:
        hf &= ~(L4_SRC_ONLY | L4_DST_ONLY)
    return hf


def invalid_types(func: str, hf: int, allowed: int) -> bool:
    """ice_any_invalid_rss_type."""
    if func == "symmetric_toeplitz":
        if hf & (L3_SRC_ONLY | L3_DST_ONLY | L4_SRC_ONLY | L4_DST_ONLY):
            return True
        if not hf & _VALID_L3:
            return True
    if any(bin(hf & comb).count("1") > 1 for comb in _INVALID_COMB):
        return True
    if any(hf & attr and not hf & need for attr, need in _ATTR_NEEDS):
        return True
    hf &= ~_VALID_ATTR
    return hf & allowed != hf


def refine_cfg(cfg: HashCfg, hf: int, hint: frozenset[str], symm: bool) -> HashCfg:
    """ice_refine_hash_cfg: the template's headers and fields as the types select."""
    hdrs, flds = cfg.addl_hdrs, cfg.hash_flds
    # ice_refine_proto_hdrs_by_pattern
    if "vlan" in hint:
        hdrs |= H_VLAN
    if "pppoe" in hint:
        hdrs |= H_PPPOE
    if "gtpu_dwn" in hint:
        hdrs |= H_GTPU_DWN
    elif "gtpu_up" in hint:
        hdrs |= H_GTPU_UP
    elif "gtpu_eh" in hint:
        hdrs |= H_GTPU_EH
    elif "gtpu" in hint:
        hdrs |= H_GTPU_IP
    # ice_refine_hash_cfg_l234
    if hdrs & H_ETH:
        if not hf & ETH:
            flds &= ~HASH_ETH
        if hf & L2_SRC_ONLY:
            flds &= ~F("ETH_DA")
        elif hf & L2_DST_ONLY:
            flds &= ~F("ETH_SA")
        hdrs &= ~H_ETH
    if hdrs & H_ETH_NON_IP and hf & ETH:
        flds |= F("ETH_TYPE")
    if hdrs & H_VLAN:
        if hf & C_VLAN:
            flds |= F("C_VLAN")
        elif hf & S_VLAN:
            flds |= F("S_VLAN")
    if hdrs & H_PPPOE and not hf & PPPOE:
        flds &= ~F("PPPOE_SESS_ID")
    if hdrs & H_IPV4:
        if hf & (IPV4 | FRAG_IPV4 | IPV4_UDP | IPV4_TCP | IPV4_SCTP):
            if hf & FRAG_IPV4:
                hdrs = (hdrs | H_IPV_FRAG) & ~H_IPV_OTHER
                flds |= F("IPV4_ID")
            if hf & L3_SRC_ONLY:
                flds &= ~F("IPV4_DA")
            elif hf & L3_DST_ONLY:
                flds &= ~F("IPV4_SA")
            elif hf & (L4_SRC_ONLY | L4_DST_ONLY):
                flds &= ~HASH_IPV4
        else:
            flds &= ~HASH_IPV4
        if hf & IPV4_CHKSUM:
            flds |= F("IPV4_CHKSUM")
    if hdrs & H_IPV6:
        if hf & (IPV6 | FRAG_IPV6 | IPV6_UDP | IPV6_TCP | IPV6_SCTP):
            if hf & FRAG_IPV6:
                flds |= F("IPV6_ID")
            if hf & L3_SRC_ONLY:
                flds &= ~F("IPV6_DA")
            elif hf & L3_DST_ONLY:
                flds &= ~F("IPV6_SA")
            elif hf & (L4_SRC_ONLY | L4_DST_ONLY):
                flds &= ~HASH_IPV6
        else:
            flds &= ~HASH_IPV6
        for pre, bits in ((L3_PRE32, "32"), (L3_PRE48, "48"), (L3_PRE64, "64")):
            if not hf & pre:
                continue
            sa, da = F(f"IPV6_PRE{bits}_SA"), F(f"IPV6_PRE{bits}_DA")
            if hf & L3_SRC_ONLY:
                flds = (flds & ~F("IPV6_SA")) | sa
            elif hf & L3_DST_ONLY:
                flds = (flds & ~F("IPV6_DA")) | da
            else:
                flds = (flds & ~HASH_IPV6) | sa | da
    for hdr, types, ports, l4 in (
        (H_UDP, IPV4_UDP | IPV6_UDP, HASH_UDP_PORT, "UDP"),
        (H_TCP, IPV4_TCP | IPV6_TCP, HASH_TCP_PORT, "TCP"),
        (H_SCTP, IPV4_SCTP | IPV6_SCTP, HASH_SCTP_PORT, "SCTP"),
    ):
        src, dst, chk = f"{l4}_SRC_PORT", f"{l4}_DST_PORT", f"{l4}_CHKSUM"
        if not hdrs & hdr:
            continue
        if hf & types:
            if hf & L4_SRC_ONLY:
                flds &= ~F(dst)
            elif hf & L4_DST_ONLY:
                flds &= ~F(src)
            elif hf & (L3_SRC_ONLY | L3_DST_ONLY):
                flds &= ~ports
        else:
            flds &= ~ports
        if hf & L4_CHKSUM:
            flds |= F(chk)
    for hdr, bit, fld in (
        (H_L2TPV3, L2TPV3, "L2TPV3_SESS_ID"),
        (H_ESP, ESP, "ESP_SPI"),
        (H_AH, AH, "AH_SPI"),
        (H_PFCP_SESSION, PFCP, "PFCP_SEID"),
    ):
        if hdrs & hdr and not hf & bit:
            flds &= ~F(fld)
    # ice_refine_hash_cfg_gtpu
    if hf & GTPU:
        if hdrs & H_GTPU_DWN:
            flds |= F("GTPU_DWN_TEID")
        elif hdrs & H_GTPU_UP:
            flds |= F("GTPU_UP_TEID")
        elif hdrs & H_GTPU_EH:
            flds |= F("GTPU_EH_TEID")
        elif hdrs & H_GTPU_IP:
            flds |= F("GTPU_IP_TEID")
    return HashCfg(hdrs, flds, cfg.hdr_type, symm)


# ---------------------------------------------------------------------------
# Profiles: segments, PTYPEs, and the hash input of a packet


@dataclass(frozen=True)
class HashProfile:
    """An RSS profile: its segments' headers, the hashed fields, symmetric or not.

    ``segs`` are the headers of each segment, outermost first (one segment for outer
    headers, two for inner ones); ``fields`` the hashed fields of the last segment.
    """

    segs: tuple[int, ...]
    fields: int
    symm: bool = False

    @property
    def key(self) -> tuple[int, ...]:
        return self.segs

    def describe(self) -> str:
        names = ", ".join(f.lower() for f in field_names(self.fields)) or "nothing"
        where = "inner " if len(self.segs) > 1 else ""
        return f"{where}{names}{' (symmetric)' if self.symm else ''}"


@dataclass(frozen=True)
class RawHashProfile:
    """A profile from a raw pattern (``ice_hash_parse_raw_pattern``): the PTYPE the
    parser gives the sample and the field-vector words its mask selects, as
    (protocol ID, offset, 16-bit mask). One per PTYPE group: a new one replaces it."""

    ptype: int
    words: tuple[tuple[int, int, int], ...]
    symm: bool = False

    @property
    def segs(self) -> tuple[str, int]:
        return ("raw", self.ptype)

    @property
    def fields(self) -> tuple[tuple[int, int, int], ...]:
        return self.words

    def describe(self) -> str:
        words = ", ".join(f"{p}+{o}&{m:04x}" for p, o, m in self.words)
        return f"raw PTYPE {self.ptype}: {words}{' (symmetric)' if self.symm else ''}"


# Word pairs ice_rss_update_raw_symm folds: (protocol IDs, first offset, partner
# offset, words): IPv4 and IPv6 addresses, L4 ports.
_RAW_SYMM = (
    ((P_IPV4_OF, P_IPV4_IL), 12, 16, 2),
    ((P_IPV6_OF, P_IPV6_IL), 8, 24, 8),
    ((P_TCP_IL, P_UDP_IL, P_SCTP_IL), 0, 2, 1),
)


def raw_plan(profile: RawHashProfile, res: ParseResult) -> Plan:
    """The byte ranges a raw profile hashes in packets parsed as `res`."""
    po = dict(res.po)
    parts: list[tuple[int, int, int]] = []
    where: dict[tuple[int, int], int] = {}
    for pid, off, mask in profile.words:
        base = po.get(pid)
        if base is None:
            continue
        parts.append((base + off, base + off + 2, mask if mask != 0xFFFF else 0))
        where[(pid, off)] = len(parts) - 1
    pairs: list[tuple[int, int]] = []
    if profile.symm:
        for pids, a, b, n in _RAW_SYMM:
            for pid in pids:
                for k in range(n):
                    i, j = where.get((pid, a + 2 * k)), where.get((pid, b + 2 * k))
                    if i is not None and j is not None:
                        pairs.append((i, j))
    return tuple(parts), tuple(pairs)


def profile_of(cfg: HashCfg) -> HashProfile:
    """ice_flow_set_rss_seg_info: the segments of a hash configuration."""
    if cfg.hdr_type == OUTER or cfg.hdr_type == ANY_HEADERS:
        return HashProfile((cfg.addl_hdrs,), cfg.hash_flds, cfg.symm)
    outer = 0  # ICE_RSS_INNER_HEADERS: any outer headers
    if cfg.hdr_type == INNER_W_OUTER_IPV4:
        outer = H_IPV4 | H_IPV_FRAG | H_IPV_OTHER
    elif cfg.hdr_type == INNER_W_OUTER_IPV6:
        outer = H_IPV6 | H_IPV_FRAG | H_IPV_OTHER
    return HashProfile((outer, cfg.addl_hdrs), cfg.hash_flds, cfg.symm)


_G = PTYPE_GROUPS


def seg_ptypes(segs: Sequence[int]) -> tuple[frozenset[int], str | None]:
    """ice_flow_proc_seg_hdrs: the PTYPEs a profile covers, and the GTP-U attribute
    it requires (``session``: no extension header, ``eh``, ``down``, ``up``)."""
    pt = set(ALL_PTYPES)
    attr: str | None = None
    for i, h in enumerate(segs):
        if h & H_ETH:
            pt &= _G["mac_ofos"] if i == 0 else _G["mac_il"]
        if i and h & H_VLAN:
            pt &= _G["macvlan_il"]
        if i == 0 and h & H_ARP:
            pt &= _G["arp_of"]
        if h & H_IPV4 and h & H_IPV_OTHER:
            pt &= _G["ipv4_il"] if i else _G["ipv4_ofos_all"]
        elif h & H_IPV6 and h & H_IPV_OTHER:
            pt &= _G["ipv6_il"] if i else _G["ipv6_ofos_all"]
        elif h & H_IPV4 and h & H_IPV_FRAG:
            pt &= _G["ipv4_frag"]
        elif h & H_IPV6 and h & H_IPV_FRAG:
            pt &= _G["ipv6_frag"]
        elif h & H_IPV4 and not h & _L4_NO_OTHER:
            pt &= _G["ipv4_ofos_no_l4"] if i == 0 else _G["ipv4_il_no_l4"]
        elif h & H_IPV4:
            pt &= _G["ipv4_ofos"] if i == 0 else _G["ipv4_il"]
        elif h & H_IPV6 and not h & _L4_NO_OTHER:
            pt &= _G["ipv6_ofos_no_l4"] if i == 0 else _G["ipv6_il_no_l4"]
        elif h & H_IPV6:
            pt &= _G["ipv6_ofos"] if i == 0 else _G["ipv6_il"]
        if h & H_ETH_NON_IP:
            pt &= _G["mac_non_ip_ofos"]
        elif h & H_PPPOE:
            pt &= _G["pppoe"]
        else:
            pt -= _G["pppoe"]
        if h & H_UDP:
            pt &= _G["udp_il"]
        elif h & H_TCP:
            pt &= _G["tcp_il"]
        elif h & H_SCTP:
            pt &= _G["sctp_il"]
        if h & H_ICMP:
            pt &= _G["icmp_of"] if i == 0 else _G["icmp_il"]
        elif h & H_GRE:
            pt &= _G["gre_of"]
        elif h & H_GTPC:
            pt &= _G["gtpc"]
        elif h & H_GTPC_TEID:
            pt &= _G["gtpc_tid"]
        elif h & H_GTPU_NON_IP:
            pt &= _G["gtpu_no_ip"]
        elif h & _GTPU_ANY:
            pt &= _G["gtpu"]
            attr = (
                "down"
                if h & H_GTPU_DWN
                else "up"
                if h & H_GTPU_UP
                else "eh"
                if h & H_GTPU_EH
                else "session"
            )
        elif h & H_L2TPV2:
            pt &= _G["l2tpv2"]
        elif h & H_L2TPV3:
            pt &= _G["l2tpv3"]
        elif h & H_ESP:
            pt &= _G["esp"]
        elif h & H_AH:
            pt &= _G["ah"]
        elif h & H_NAT_T_ESP:
            pt &= _G["nat_t_esp"]
        elif h & H_VXLAN:
            pt &= _G["vxlan_vni"]
        if h & H_PPP:
            pt &= _G["ppp"]
        if h & H_PFCP:
            pt &= _G["pfcp_node"] if h & H_PFCP_NODE else _G["pfcp_session"]
        else:
            pt -= _G["pfcp_node"] | _G["pfcp_session"]
    return frozenset(pt), attr


def gtpu_attr(data: bytes, res: ParseResult) -> str:
    """A GTP-U packet's attribute: ``session`` without the PDU session container,
    else ``down`` or ``up`` from its PDU type (0 downlink, 1 uplink)."""
    for h in res.headers:
        if h.name == "gtpu_ext":
            off = h.offset + 1
            pdu = data[off] >> 4 if off < len(data) else 0
            return "down" if pdu == 0 else "up" if pdu == 1 else "eh"
    return "session"


def _attr_ok(want: str | None, have: str) -> bool:
    if want is None:
        return True
    if want == "eh":
        return have != "session"
    return want == have


def _next_proto_offset(res: ParseResult, po: dict[int, int]) -> int | None:
    """Where ICE_PROT_IPV6_NEXT_PROTO's word is: the parser's offset when it reports
    the protocol, else (a model choice) the byte holding the next header after the
    outer IPv6 header's extension headers, less the field's offset 6: byte 6 of a
    header without extensions, the first byte of the last extension header."""
    if P_IPV6_NEXT_PROTO in po:
        return po[P_IPV6_NEXT_PROTO] - 6  # its word is at offset 0 (xtrct.off = 0)
    base = po.get(P_IPV6_OF)
    if base is None:
        return None
    at = base
    for j, h in enumerate(res.headers):
        lv = res.levels[j] if j < len(res.levels) else 0
        if lv == 0 and h.name.startswith("ipv6_") and h.offset > base:
            at = h.offset - 6
    return at


Plan = tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int], ...]]


def hash_plan(profile: HashProfile, res: ParseResult) -> Plan:
    """The byte ranges a profile hashes in packets parsed as `res`: (start, end, word
    mask) per field in input order, and the symmetric pairs (indexes into them).
    Fields are read at the parser's protocol offsets, as the field vector is filled;
    a field whose protocol the packet lacks adds nothing."""
    inner = len(profile.segs) > 1
    po = dict(res.po)
    parts: list[tuple[int, int, int]] = []
    where: dict[str, int] = {}
    for i, (name, p_out, p_in, off, size, mask) in enumerate(_FIELD_TABLE):
        if not profile.fields >> i & 1:
            continue
        prot = p_in if inner else p_out
        if prot == P_IPV6_NEXT_PROTO:
            base = _next_proto_offset(res, po)
        else:
            base = po.get(prot)
        if base is None:
            continue
        start = base + off
        # a masked field is the 16-bit word its mask applies to
        parts.append((start, start + 2, mask) if mask else (start, start + size, 0))
        where[name] = len(parts) - 1
    pairs: list[tuple[int, int]] = []
    if profile.symm:
        for a, b in _SYMM_PAIRS:
            if a in where and b in where:
                pairs.append((where[a], where[b]))
    return tuple(parts), tuple(pairs)


def hash_input(data: bytes, plan: Plan) -> bytes:
    """The bytes hashed for one packet under a plan (symmetric pairs folded)."""
    parts, pairs = plan
    chunks: list[bytes] = []
    n = len(data)
    for a, b, mask in parts:
        chunk = data[a:b] if b <= n else (data[a:b] + bytes(b - min(max(a, n), b)))
        if mask:
            chunk = bytes((chunk[0] & mask >> 8, chunk[1] & mask & 0xFF))
        chunks.append(chunk)
    for i, j in pairs:
        x = bytes(p ^ q for p, q in zip(chunks[i], chunks[j], strict=False))
        chunks[i] = chunks[j] = x
    return b"".join(chunks)


# ---------------------------------------------------------------------------
# The rte_flow engine


@dataclass(frozen=True)
class HashRule:
    """What a parsed hash rule installs: a profile configuration, or the simple XOR
    scheme (the empty pattern with ``func simple_xor``)."""

    cfg: HashCfg | None
    simple_xor: bool = False
    raw: RawHashProfile | None = None


def _err(kind: str, message: str, index: int | None = None) -> RuleError:
    return rule_error(kind, message, index)


def parse_rule(
    rule: FlowRule, raw_compile: Callable[[Item], Match] | None = None, vf: bool = False
) -> HashRule:
    """ice_hash_parse_pattern_action: the rule as the hash engine reads it, or the
    RuleError it gives (then the other engines are tried). `raw_compile` turns a raw
    item into the words of its sample's profile (the parser's, as ice runs its own)."""
    rss_conf = rule.extra.get("rss", {})
    acts = [a for a in rule.actions if a.type not in ("void", "end")]
    if not acts or any(a.type != "rss" for a in acts):
        bad = next((a for a in acts if a.type != "rss"), None)
        raise _err("ACTION", "Invalid action.", bad.index if bad else None)
    if len(acts) > 1:
        raise _err("ACTION", "Invalid action.", acts[1].index)
    act = acts[0]
    conf = rss_conf.get(act.index, {})
    if rule.group or rule.priority:
        raise _err("ATTR", "Not support group or priority.")
    func = str(conf.get("func", "default"))
    if func not in FUNCS:
        raise _err("ACTION_CONF", "Selected RSS hash function not supported", act.index)
    if conf.get("level"):
        raise _err("ACTION_CONF", "a nonzero RSS encapsulation level is not supported", act.index)
    if conf.get("key_len") or conf.get("key"):
        raise _err("ACTION_CONF", "a nonzero RSS key_len is not supported", act.index)
    if act.queues:
        raise _err("ACTION_CONF", "a non-NULL RSS queue is not supported", act.index)
    items = [i for i in rule.pattern if i.type not in _SKIP_ITEMS]
    names = tuple(i.type for i in items)
    if names == ("raw",):  # pattern_raw: no types to refine (ice_hash_parse_rss_action)
        if func == "simple_xor":
            raise _err(
                "ACTION_CONF", "XOR hash function is only supported for empty pattern", act.index
            )
        if raw_compile is None:
            raise _err("ITEM", "Parse raw pattern failed", items[0].index)
        # the ASCII-hex spec and mask ice converts to bytes (ice_hash_parse_raw_pattern)
        item = ice_raw_bytes(items[0], "Parse raw pattern failed")
        try:
            m = raw_compile(item)
        except RuleError:
            raise _err("ITEM", "Parse raw pattern failed", items[0].index) from None
        words = tuple((w.proto_id, w.offset, mask) for w, _, mask in m.words)
        (ptype,) = m.ptypes
        return HashRule(None, raw=RawHashProfile(ptype, words, func == "symmetric_toeplitz"))
    found = _PATTERN_INDEX.get(names)
    if found is None and vf:
        found = VF_PATTERNS.get(names)
    if found is None or any(i.type == "raw" for i in items):
        raise _err("ITEM", "Unsupported pattern", items[-1].index if items else None)
    for it in items:
        if any(s.last is not None for s in it.specs):
            raise _err("ITEM", "Not support range", it.index)
    allowed, tmpl = found
    if func == "simple_xor":
        if names:
            raise _err(
                "ACTION_CONF", "XOR hash function is only supported for empty pattern", act.index
            )
        return HashRule(None, simple_xor=True)
    hint: set[str] = set()
    for it in items:
        if it.type == "vlan":
            hint.add("vlan")
        elif it.type == "pppoes":
            hint.add("pppoe")
        elif it.type == "gtpu":
            hint.add("gtpu")
        elif it.type == "gtp_psc":
            hint.add("gtpu_eh")
            for s in it.specs:
                if s.field.endswith("pdu_t") and s.mask:
                    hint.add("gtpu_up" if s.value == 1 else "gtpu_dwn" if s.value == 0 else "")
    types = conf.get("types", ())
    # an action without `types` has testpmd's global rss_hf (parse_vc_action_rss)
    hf = refine_hf(int(conf["hf"]) if "types" not in conf and "hf" in conf else rss_hf(types))
    if invalid_types(func, hf, allowed):
        raise _err("ACTION_CONF", "RSS type not supported", act.index)
    cfg = refine_cfg(TEMPLATES[tmpl], hf, frozenset(hint), func == "symmetric_toeplitz")
    return HashRule(cfg)


class HashEngine(Engine):
    """rte_flow rules that configure hashing (enum ice_flow_engine_type 3).

    Args:
        stage_for: the RSS stage of a VSI (the pipeline's), where profiles go.
        vsi_for: the VSI a rule acts on (its port's main VSI).
    """

    name = "hash"

    def __init__(
        self,
        stage_for: Callable[[int], RssStage],
        vsi_for: Callable[[FlowRule], int],
        supported: Callable[[Sequence[Item]], object] | None = None,
        raw_compile: Callable[[Item], Match] | None = None,
        port_kind: Callable[[FlowRule], str] | None = None,
    ) -> None:
        self._raw_compile = raw_compile
        self._port_kind = port_kind or (lambda rule: "pf")
        self._stage_for = stage_for
        self._vsi_for = vsi_for
        self._supported = supported
        self._rules: dict[int, tuple[int, HashRule]] = {}

    def parse(self, rule: FlowRule) -> HashRule:
        """The rule as the engine reads it. Like ice_search_pattern_match_item, a
        pattern whose packets the loaded package gives no PTYPE is not supported
        (ice_pattern_is_supported: ice_hw_ptype_ena), whatever the pattern list says."""
        kind = self._port_kind(rule)
        if kind == "dcf":
            # ice_dcf_init_parent_adapter disables the hash engine on a DCF port
            raise _err("UNSPECIFIED", "engine is not enabled.")
        hr = parse_rule(rule, self._raw_compile, vf=kind == "vf")
        items = [i for i in rule.pattern if i.type not in _SKIP_ITEMS]
        if items and hr.raw is None and self._supported is not None:
            names = [i.type for i in items]
            if names[-2:] == ["udp", "esp"]:
                # ice_ptype_map: ESP over UDP is the NAT-T ESP PTYPE (the parse graph's
                # nat_t header)
                items = [*items[:-1], replace(items[-1], type="nat_t")]
            try:
                self._supported(items)
            except RuleError:
                raise _err("ITEM", "Unsupported pattern", items[-1].index) from None
        return hr

    def validate(self, rule: FlowRule, match: Match) -> None:
        self.parse(rule)

    def add(self, rule_id: int, rule: FlowRule, match: Match) -> None:
        hr = self.parse(rule)
        vsi = self._vsi_for(rule)
        stage = self._stage_for(vsi)
        if hr.simple_xor:
            stage.set_scheme("simple_xor")
        elif hr.raw is not None:
            stage.add_profile(hr.raw)  # ice_hash_add_raw_cfg
        elif hr.cfg is not None:
            stage.add_cfg(hr.cfg)
        self._rules[rule_id] = (vsi, hr)

    def remove(self, rule_id: int) -> None:
        got = self._rules.pop(rule_id, None)
        if got is None:
            return
        vsi, hr = got
        stage = self._stage_for(vsi)
        if hr.simple_xor:
            # ice_hash_destroy: back to the symmetric Toeplitz scheme ice_init_rss set
            stage.set_scheme("symmetric_toeplitz")
        elif hr.raw is not None:
            stage.rem_profile(hr.raw)  # ice_hash_rem_raw_cfg: the PTYPE group's profile
        elif hr.cfg is not None:
            stage.rem_cfg(hr.cfg)

    def lookup(self, frame: Frame) -> Verdict | None:
        return None  # the hash engine decides no queue; the RSS stage hashes

    def words_read(self, ptype: int) -> Iterable[tuple[int, int]] | None:
        return ()


EMPTY_MATCH = Match(frozenset(), None, ())


def port_cfgs(hf: int, symm: bool = False) -> list[HashCfg]:
    """The profiles ice_rss_hash_set adds for `rss_hf`, in its order."""
    out: list[HashCfg] = []
    l3 = (
        (IPV4, _IP4, HASH_IPV4),
        (IPV6, _IP6, HASH_IPV6),
    )
    l4 = (
        (IPV4_UDP, _IP4 | H_UDP, HASH_IPV4 | HASH_UDP_PORT),
        (IPV6_UDP, _IP6 | H_UDP, HASH_IPV6 | HASH_UDP_PORT),
        (IPV4_TCP, _IP4 | H_TCP, HASH_IPV4 | HASH_TCP_PORT),
        (IPV6_TCP, _IP6 | H_TCP, HASH_IPV6 | HASH_TCP_PORT),
        (IPV4_SCTP, _IP4 | H_SCTP, HASH_IPV4 | HASH_SCTP_PORT),
        (IPV6_SCTP, _IP6 | H_SCTP, HASH_IPV6 | HASH_SCTP_PORT),
    )
    for bit, hdrs, flds in (*l3, *l4):
        if hf & bit:
            out.append(HashCfg(hdrs, flds, OUTER, symm))
    for bit, hdrs, flds in (*l3, *l4[:4]):
        if hf & bit:
            out.append(HashCfg(H_PPPOE | hdrs, flds, OUTER, symm))
    return out


HASH_KEY_SIZE = 52  # dev_info.hash_key_size: (VSIQF_HKEY_MAX_INDEX + 1) * 4


def key_update(stage: RssStage, rss_type: str, key: bytes, keep_types: bool = False) -> str:
    """``port config N rss-hash-key TYPE HEX`` as testpmd and ice do it: the key must
    be hash_key_size bytes (cmd_config_rss_hash_key_parsed); port_rss_hash_key_update
    then passes the key with rss_hf = the one TYPE to ice_rss_hash_update, which sets
    the key and applies ice_rss_hash_set to that type alone. Returns what testpmd
    prints (nothing when it worked).

    ``keep_types`` is testpmd before DPDK 25.07: port_rss_hash_key_update read the
    port's configuration back with rte_eth_dev_rss_hash_conf_get after filling in the
    user's type, so the update carried the port's own rss_hf and only the key changed
    (fixed by commit 24e94a4c86, "app/testpmd: fix RSS hash key update"); DTS's Flow
    Director suites were written against that testpmd."""
    if len(key) != HASH_KEY_SIZE:
        return (
            f"key length: {2 * len(key)} invalid - key must be a string of "
            f"{2 * HASH_KEY_SIZE} hexa-decimal numbers\n"
        )
    hf = RSS_TYPE_BITS.get(rss_type, 0)
    if hf & ~ICE_RSS_OFFLOAD_ALL:  # rte_eth_dev_rss_hash_update's check
        return "operation failed - diag=-22\n"
    stage.set_key(key)
    if not keep_types:
        stage.set_hf(hf)
    return ""


def with_symm(cfg: HashCfg, symm: bool) -> HashCfg:
    return replace(cfg, symm=symm)


__all__ = [
    "EMPTY_MATCH",
    "HF_NAMES",
    "ICE_RSS_HF_ALL",
    "ICE_RSS_OFFLOAD_ALL",
    "PATTERNS",
    "RSS_TYPE_BITS",
    "TEMPLATES",
    "HashCfg",
    "HashEngine",
    "HashProfile",
    "HashRule",
    "hash_input",
    "hash_plan",
    "hf_names",
    "parse_rule",
    "port_cfgs",
    "profile_of",
    "refine_cfg",
    "rss_hf",
    "seg_ptypes",
]

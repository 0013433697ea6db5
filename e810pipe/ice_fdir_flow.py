"""Flow Director flow types as the ice PMD derives them from an rte_flow pattern.

Facts from DPDK ``drivers/net/intel/ice/ice_fdir_filter.c`` (BSD-3-Clause, Intel;
DPDK main, 26.11-rc0):

- ``ice_fdir_parse_pattern()`` turns the pattern into one ``enum ice_fltr_ptype``
  (the last L3/L4 item decides: ``eth / ipv4 / end`` is ``NONF_IPV4_OTHER``; an ESP
  item after UDP is ``NONF_IPV4_NAT_T_ESP``; a GTP-U or VXLAN item renames the type)
  and a tunnel type (VXLAN is the only one that makes a two-segment profile,
  ``ice_fdir_is_tunnel_profile``).
- ``ice_fdir_input_set_conf()`` gives each segment the headers of
  ``ice_fdir_input_set_hdrs()``: the outer segment only when the rule has outer
  fields, the inner one of a tunnel profile always.
- ``ice_flow_proc_seg_hdrs()`` (base/ice_flow.c) intersects the ``ice_ptypes_*``
  bitmaps of those headers into the PTYPEs the profile covers
  (:func:`e810pipe.hash.seg_ptypes`), so ``NONF_IPV4_OTHER`` covers IPv4 packets with
  any L4 header, ``NON_IP_L2`` covers ARP and PPPoE, and a VXLAN profile, whose
  headers narrow nothing, covers every packet that has the inner headers its input
  set reads (VXLAN, VXLAN-GPE, with or without an inner Ethernet header).
- ``ice_fdir_cross_prof_conflict()``: profiles whose PTYPEs overlap (IPv4 "other" and
  IPv4 UDP/TCP/SCTP...) cannot both hold rules.

Patterns the PMD's list (``ice_fdir_supported_pattern``) does not have, a DDP
profile's own protocols, raw patterns and IP fragments give None: Flow Director then
uses the exact PTYPEs of the pattern's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from .hash import (
    H_ESP,
    H_ETH_NON_IP,
    H_GTPU_EH,
    H_GTPU_IP,
    H_IPV4,
    H_IPV6,
    H_IPV_OTHER,
    H_NAT_T_ESP,
    H_SCTP,
    H_TCP,
    H_UDP,
    seg_ptypes,
)
from .ice_flow_ptypes import PTYPE_GROUPS
from .rules import Item

_OTHER = H_IPV_OTHER

# ice_fdir_input_set_hdrs: the segment headers of each flow type (enum ice_fltr_ptype
# without ICE_FLTR_PTYPE_), for the segments of a one-segment profile and for both
# segments of a VXLAN profile
HDRS: dict[str, int] = {
    "NONF_IPV4_UDP": H_UDP | H_IPV4 | _OTHER,
    "NONF_IPV4_TCP": H_TCP | H_IPV4 | _OTHER,
    "NONF_IPV4_SCTP": H_SCTP | H_IPV4 | _OTHER,
    "NONF_IPV4_OTHER": H_IPV4 | _OTHER,
    "NONF_IPV6_UDP": H_UDP | H_IPV6 | _OTHER,
    "NONF_IPV6_TCP": H_TCP | H_IPV6 | _OTHER,
    "NONF_IPV6_SCTP": H_SCTP | H_IPV6 | _OTHER,
    "NONF_IPV6_OTHER": H_IPV6 | _OTHER,
    "NONF_IPV4_UDP_VXLAN_IPV4_UDP": 0,
    "NONF_IPV4_UDP_VXLAN_IPV4_TCP": 0,
    "NONF_IPV4_UDP_VXLAN_IPV4_SCTP": 0,
    "NONF_IPV4_UDP_VXLAN_IPV4_OTHER": _OTHER,
    "NONF_IPV4_GTPU": H_GTPU_IP | H_IPV4 | _OTHER,
    "NONF_IPV4_GTPU_EH": H_GTPU_EH | H_GTPU_IP | H_IPV4 | _OTHER,
    "NONF_IPV6_GTPU": H_GTPU_IP | H_IPV6 | _OTHER,
    "NONF_IPV6_GTPU_EH": H_GTPU_EH | H_GTPU_IP | H_IPV6 | _OTHER,
    "NON_IP_L2": H_ETH_NON_IP,
    "NONF_IPV4_ESP": H_ESP | H_IPV4 | _OTHER,
    "NONF_IPV6_ESP": H_ESP | H_IPV6 | _OTHER,
    "NONF_IPV4_NAT_T_ESP": H_NAT_T_ESP | H_IPV4 | _OTHER,
    "NONF_IPV6_NAT_T_ESP": H_NAT_T_ESP | H_IPV6 | _OTHER,
}

# ice_fdir_cross_prof_conflict: a new profile of the key's type conflicts with a
# profile of each listed type (of the same tunnel kind) that still holds rules
_V4 = ("NONF_IPV4_UDP", "NONF_IPV4_TCP", "NONF_IPV4_SCTP")
_V6 = ("NONF_IPV6_UDP", "NONF_IPV6_TCP", "NONF_IPV6_SCTP")
_VX = (
    "NONF_IPV4_UDP_VXLAN_IPV4_UDP",
    "NONF_IPV4_UDP_VXLAN_IPV4_TCP",
    "NONF_IPV4_UDP_VXLAN_IPV4_SCTP",
)
CROSS_CONFLICTS: dict[str, tuple[str, ...]] = {
    **{t: ("NONF_IPV4_OTHER",) for t in _V4},
    "NONF_IPV4_OTHER": _V4,
    **{t: ("NONF_IPV6_OTHER",) for t in _V6},
    "NONF_IPV6_OTHER": _V6,
    **{t: ("NONF_IPV4_UDP_VXLAN_IPV4_OTHER",) for t in _VX},
    "NONF_IPV4_UDP_VXLAN_IPV4_OTHER": _VX,
}

# the PTYPEs whose GTP-U attributes (ice_attr_gtpu_session, ice_attr_gtpu_eh) the
# profile TCAM checks: GTP-U with an inner IP header; without one (gtpu_no_ip) a
# session and an EH profile both apply
GTPU_ATTR_PTYPES = PTYPE_GROUPS["gtpu"] - PTYPE_GROUPS["gtpu_no_ip"]

#: every PTYPE some ice_ptypes_* bitmap lists
KNOWN_PTYPES: frozenset[int] = frozenset().union(*PTYPE_GROUPS.values())

# ice_fdir_supported_pattern (the raw, fragment and L2TPv2 entries aside)
SUPPORTED: frozenset[tuple[str, ...]] = frozenset(
    tuple(p.split())
    for p in (
        "eth",
        "eth ipv4",
        "eth ipv4 udp",
        "eth ipv4 tcp",
        "eth ipv4 sctp",
        "eth ipv6",
        "eth ipv6 udp",
        "eth ipv6 tcp",
        "eth ipv6 sctp",
        "eth ipv4 esp",
        "eth ipv4 udp esp",
        "eth ipv6 esp",
        "eth ipv6 udp esp",
        "eth ipv4 udp vxlan ipv4",
        "eth ipv4 udp vxlan ipv4 udp",
        "eth ipv4 udp vxlan ipv4 tcp",
        "eth ipv4 udp vxlan ipv4 sctp",
        "eth ipv4 udp vxlan eth ipv4",
        "eth ipv4 udp vxlan eth ipv4 udp",
        "eth ipv4 udp vxlan eth ipv4 tcp",
        "eth ipv4 udp vxlan eth ipv4 sctp",
        "eth ipv4 udp gtpu",
        "eth ipv4 udp gtpu gtp_psc",
        "eth ipv6 udp gtpu",
        "eth ipv6 udp gtpu gtp_psc",
    )
)


@dataclass(frozen=True)
class IceFlowType:
    """An FD flow type as the ice PMD programs it.

    Attributes:
        name: the ``enum ice_fltr_ptype`` name without ``ICE_FLTR_PTYPE_``.
        tunnel: a two-segment (VXLAN) profile; the profile ID is type + tunnel.
        ptypes: the PTYPEs the profile covers (``ice_flow_proc_seg_hdrs``).
        gtpu_attr: ``session`` or ``eh``: the GTP-U attribute the profile requires
            of the PTYPEs in :data:`GTPU_ATTR_PTYPES`.
    """

    name: str
    tunnel: bool
    ptypes: frozenset[int]
    gtpu_attr: str | None = None


def _has_fields(item: Item) -> bool:
    return any(s.mask for s in item.specs)


_BY_SHAPE: dict[tuple, IceFlowType | None] = {}  # pattern shape -> flow type
_BY_SHAPE_MAX = 4096


def ice_flow_type(pattern: Sequence[Item]) -> IceFlowType | None:
    """The flow type ``ice_fdir_parse_pattern`` gives `pattern`, or None when the
    pattern is not one of the PMD's (or uses what this table leaves out: fragments).

    It depends on the items' types and levels and which fields they match (not on
    the values): worked out once per shape (16K rules have a few)."""
    shape = tuple(
        [(i.type, i.level, tuple([(s.field, not s.mask) for s in i.specs])) for i in pattern]
    )
    got = _BY_SHAPE.get(shape, _BY_SHAPE)
    if got is _BY_SHAPE:
        got = _ice_flow_type(pattern)
        if len(_BY_SHAPE) < _BY_SHAPE_MAX:
            _BY_SHAPE[shape] = got
    return got  # type: ignore[return-value]


def _ice_flow_type(pattern: Sequence[Item]) -> IceFlowType | None:
    items = [i for i in pattern if i.type not in ("void", "end")]
    names = tuple(i.type for i in items)
    if names not in SUPPORTED:
        return None
    for it in items:
        if it.type == "ipv4" and any(s.field.endswith("fragment_offset") for s in it.specs):
            return None  # FRAG_IPV4: the fragment flow types are not in this table
    name = "NON_IP_L2"
    l3 = l4 = ""
    tunnel = ""
    outer_fields = False
    for it in items:
        t = it.type
        if t == "vxlan":
            tunnel = "vxlan"
            l3 = ""
        elif t in ("gtpu", "gtp_psc"):
            tunnel = "gtpu_eh" if t == "gtp_psc" else "gtpu"
            l3 = ""
        elif t == "eth" and not tunnel:
            name = "NON_IP_L2"
        elif t in ("ipv4", "ipv6"):
            l3, l4 = t, ""
            name = f"NONF_{t.upper()}_OTHER"
        elif t in ("tcp", "udp", "sctp"):
            l4 = t
            name = f"NONF_{(l3 or 'ipv4').upper()}_{t.upper()}"
        elif t == "esp":
            v = l3.upper()
            name = f"NONF_{v}_NAT_T_ESP" if l4 == "udp" else f"NONF_{v}_ESP"
        if it.level == 0 and tunnel != "vxlan" and _has_fields(it):
            outer_fields = True
        if t == "vxlan" and _has_fields(it):
            outer_fields = True
    if tunnel in ("gtpu", "gtpu_eh") and name.endswith("_UDP"):
        name = name[: -len("_UDP")] + ("_GTPU_EH" if tunnel == "gtpu_eh" else "_GTPU")
    elif tunnel == "vxlan":
        inner = name.split("_", 1)[1]  # IPV4_OTHER, IPV4_UDP...
        name = f"NONF_IPV4_UDP_VXLAN_{inner}"
    return _flow_type(name, tunnel == "vxlan", outer_fields)


@cache
def _flow_type(name: str, tunnel: bool, outer_fields: bool) -> IceFlowType | None:
    hdrs = HDRS.get(name)
    if hdrs is None:
        return None
    # ice_fdir_input_set_conf: the outer segment has headers only with outer fields;
    # the inner one of a tunnel profile always has them
    segs = ((hdrs if outer_fields else 0), hdrs) if tunnel else (hdrs,)
    ptypes, attr = seg_ptypes(segs)
    return IceFlowType(name, tunnel, ptypes, attr if attr in ("session", "eh") else None)


__all__ = ["CROSS_CONFLICTS", "GTPU_ATTR_PTYPES", "KNOWN_PTYPES", "IceFlowType", "ice_flow_type"]

"""Flow Director rules made through a VF, as the iavf PMD reads them.

Facts from DPDK ``drivers/net/intel/iavf/iavf_fdir.c`` (BSD-3-Clause, Intel; DPDK
main, 26.11-rc0), ``iavf_fdir_parse_pattern()``; the PF programs what iavf sends over
virtchnl (the kernel's ``ice_vc_fdir_parse_pattern``, ``ice_vc_fdir_set_flow_hdr``):

- ``gtp_psc pdu_t is 0|1`` is no field of the input set: it picks the virtchnl header
  type (``IAVF_GTPU_EH_UPLINK`` 1: ``VIRTCHNL_PROTO_HDR_GTPU_EH_PDU_UP``,
  ``IAVF_GTPU_EH_DWLINK`` 0: ``..._PDU_DWN``; a ``qfi`` mask without a ``pdu_t`` one
  leaves ``GTPU_EH``), so the profile's segment has ``ICE_FLOW_SEG_HDR_GTPU_UP`` or
  ``_DWN`` and covers only G-PDUs whose PDU session container has that PDU type
  (``ice_attr_gtpu_up`` / ``_down``).
- Headers after ``gtpu`` (``tun_inner``) are the inner ones: ``eth / ipv4 / udp /
  gtpu / ipv4 src is A`` matches the inner IPv4 source of every G-PDU over IPv4 whose
  payload is IPv4 (any inner L4, fragments too), ``... / ipv4 / udp`` those with an
  inner UDP header. The profile has an outer segment (the GTP-U headers) and an inner
  one (the payload's IP and L4). ``GTPU_EH`` and its uplink and downlink forms are one
  flow type with different segments: while its profile holds rules, a rule with
  another PDU type is refused, and inner IP "other" conflicts with inner UDP / TCP
  (``ice_vc_fdir_has_prof_conflict``).
- An ``eth type`` mask must be whole ("Invalid type mask.") and the type neither IPv4
  nor IPv6 ("Unsupported ether_type.").
- ``iavf_fdir_refine_input_set()``: a pattern without an input set is taken when it
  ends with ``tcp`` or ``udp`` right after ``ipv4`` / ``ipv6``: the IP protocol (6 or
  17) becomes its input set, so ``eth / ipv4 / tcp / end`` matches every IPv4 TCP
  packet; any other pattern without one is "Invalid input set".
"""

from __future__ import annotations

from dataclasses import replace

from .hash import (
    H_GTPU_DWN,
    H_GTPU_EH,
    H_GTPU_IP,
    H_GTPU_UP,
    H_IPV4,
    H_IPV6,
    H_IPV_OTHER,
    H_PFCP_NODE,
    H_PFCP_SESSION,
    H_TCP,
    H_UDP,
    seg_ptypes,
)
from .ice_fdir_flow import IceFlowType, ice_flow_type
from .rules import FieldSpec, FlowRule, rule_error

ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD  # RTE_ETHER_TYPE_IPV4, _IPV6
PFCP_PORT = 8805  # PFCP_PORT_NR
GTPU_EH_DWLINK = 0  # IAVF_GTPU_EH_DWLINK
GTPU_EH_UPLINK = 1  # IAVF_GTPU_EH_UPLINK
_PROTO = {"tcp": 6, "udp": 17}
_L3 = {"ipv4": H_IPV4, "ipv6": H_IPV6}
_L4 = {"tcp": H_TCP, "udp": H_UDP}


IAVF_FDIR_ACTIONS = ("passthru", "drop", "queue", "rss", "mark")  # iavf_fdir_parse
IAVF_FDIR_MAX_ACTIONS = 2
IAVF_FDIR_MAX_QREGION = 128  # IAVF_FDIR_MAX_QREGION_SIZE


def iavf_check_actions(rule: FlowRule, nb_rx_queues: int) -> None:
    """The actions as iavf_fdir_parse checks them, before the pattern: ci_flow_check_actions
    (common/flow_check.h: the allowed types, at most two actions, RSS queues in ascending,
    contiguous order) then iavf_fdir_parse_action_check (the queue index, the queue
    region, one destination and one mark). No count: iavf's Flow Director has none."""
    acts = [a for a in rule.actions if a.type not in ("void", "end")]
    for n, a in enumerate(acts):
        if a.type not in IAVF_FDIR_ACTIONS:
            raise rule_error("ACTION", "Unsupported action", a.index)
        if a.type == "rss":
            qs = a.queues
            if any(y < x for x, y in zip(qs, qs[1:])):
                raise rule_error("ACTION_CONF", "RSS queues must be in ascending order", a.index)
            if any(y != qs[0] + k + 1 for k, y in enumerate(qs[1:])):
                raise rule_error("ACTION_CONF", "RSS queues must be contiguous", a.index)
        if n >= IAVF_FDIR_MAX_ACTIONS:
            raise rule_error("ACTION", "Too many actions", a.index)
    if not acts:
        raise rule_error("ACTION", "No valid actions specified")
    dest = mark = 0
    for a in acts:
        if a.type == "mark":
            mark += 1
            continue
        dest += 1
        if a.type == "queue" and (a.queue is None or a.queue >= nb_rx_queues):
            raise rule_error("ACTION", "Invalid queue index.", a.index)
        if a.type == "rss":
            qs = a.queues
            if len(qs) <= 1:
                raise rule_error("ACTION_CONF", "Queue region size can't be 0 or 1.", a.index)
            if qs[-1] >= nb_rx_queues:
                raise rule_error("ACTION_CONF", "Invalid queue region indexes.", a.index)
            if len(qs) & (len(qs) - 1) or len(qs) > IAVF_FDIR_MAX_QREGION:
                raise rule_error(
                    "ACTION_CONF",
                    "The region size should be any of the following values:1, 2, 4, 8, 16, "
                    "32, 64, 128 as long as the total number of queues do not exceed the VSI "
                    "allocation.",
                    a.index,
                )
    if dest > 1 or mark > 1:
        raise rule_error("ACTION", "Unsupported action combination")


def iavf_check(rule: FlowRule) -> None:
    """What iavf_fdir_parse_pattern refuses in the items as the user wrote them (before
    a fragment rule's ethertype is added): an ``eth type`` mask that is not whole, and
    the IPv4 or IPv6 ethertype."""
    for it in rule.pattern:
        if it.type != "eth":
            continue
        for s in it.specs:
            if s.field != "eth.type" or not s.mask:
                continue
            if s.mask != 0xFFFF:
                raise rule_error("ITEM", "Invalid type mask.", it.index)
            if s.value in (ETHERTYPE_IPV4, ETHERTYPE_IPV6):
                raise rule_error("ITEM", "Unsupported ether_type.", it.index)


def iavf_view(rule: FlowRule) -> FlowRule:
    """`rule` as iavf_fdir_parse_pattern hands it to the PF: ``gtp_psc pdu_t`` taken out
    of the fields (its PDU type in ``extra["iavf_pdu"]``: ``up`` or ``down``), and the
    IP protocol added to a TCP/UDP pattern that has no input set
    (iavf_fdir_refine_input_set)."""
    items = list(rule.pattern)
    pdu: str | None = None
    changed = False
    for n, it in enumerate(items):
        if it.type != "gtp_psc":
            continue
        specs = {s.field.split(".")[-1]: s for s in it.specs}
        pt = specs.get("pdu_t")
        if pt is not None:
            # iavf_fdir_parse_pattern: without a pdu_t mask the header stays GTPU_EH
            if pt.mask:
                v = pt.value
                pdu = "up" if v == GTPU_EH_UPLINK else "down" if v == GTPU_EH_DWLINK else None
            items[n] = replace(it, specs=tuple(s for s in it.specs if s is not pt))
            changed = True
    for n, it in enumerate(items):
        if it.type == "sctp" and any(s.field == "sctp.tag" for s in it.specs):
            # iavf_fdir_parse_pattern reads the SCTP ports only (IAVF_INSET_SCTP_*_PORT)
            items[n] = replace(it, specs=tuple(s for s in it.specs if s.field != "sctp.tag"))
            changed = True
        elif it.type == "pfcp" and it.specs:
            # VIRTCHNL_PROTO_HDR_PFCP_S_FIELD: the S flag picks the PFCP node or session
            # flow type and the PF matches the UDP destination port 8805
            # (ice_vc_fdir_parse_pattern, fdir_inset_map); no other PFCP field is read
            sf = next((s for s in it.specs if s.field == "pfcp.s_field"), None)
            items[n] = replace(it, specs=())
            changed = True
            udp = next((k for k in range(n) if items[k].type == "udp"), None)
            if sf is not None and sf.mask == 0xFF and udp is not None:
                u = items[udp]
                kept = tuple(s for s in u.specs if s.field != "udp.dst")
                items[udp] = replace(u, specs=(*kept, FieldSpec("udp.dst", PFCP_PORT, 0xFFFF)))
                extra_pfcp = "SESSION" if sf.value & 1 else "NODE"
                rule = replace(rule, extra={**rule.extra, "iavf_pfcp": extra_pfcp})
    body = [i for i in items if i.type not in ("end", "void")]
    if not any(s.mask for i in body for s in i.specs) and len(body) >= 3:
        last, l3 = body[-1], body[-2]
        if last.type in _PROTO and l3.type in _L3:
            k = items.index(l3)
            field = f"{l3.type}.proto"
            kept = tuple(s for s in l3.specs if s.field != field)
            items[k] = replace(l3, specs=(*kept, FieldSpec(field, _PROTO[last.type], 0xFF)))
            changed = True
    if not changed:
        return rule
    extra = dict(rule.extra)
    if pdu is not None:
        extra["iavf_pdu"] = pdu
    return replace(rule, pattern=tuple(items), extra=extra)


def iavf_flow_type(rule: FlowRule) -> IceFlowType | None:
    """The flow type and PTYPEs of a VF's rule (`rule` as :func:`iavf_view` gives it):
    ice's for the patterns both lists have, the GTP-U patterns with inner headers of
    iavf's list (``iavf_pattern_eth_ipv4_gtpu_eh_ipv4_udp``...) as two segments, and the
    PDU type of ``gtp_psc pdu_t`` as the GTP-U attribute; None for what neither has."""
    items = [i for i in rule.pattern if i.type not in ("void", "end")]
    names = [i.type for i in items]
    pdu = rule.extra.get("iavf_pdu")
    pfcp = rule.extra.get("iavf_pfcp")
    if pfcp is not None and names[:2] == ["eth", names[1]] and names[1] in _L3:
        # ice_vc_fdir_set_flow_hdr: PFCP_NODE / PFCP_SESSION | IPV4 / IPV6 | IPV_OTHER
        hdr = H_PFCP_SESSION if pfcp == "SESSION" else H_PFCP_NODE
        ptypes, _ = seg_ptypes((hdr | _L3[names[1]] | H_IPV_OTHER,))
        return IceFlowType(f"NONF_{names[1].upper()}_PFCP_{pfcp}", False, ptypes)
    if "gtpu" not in names:
        return ice_flow_type(rule.pattern)
    g = names.index("gtpu")
    outer, inner = names[:g], names[g + 1 :]
    eh = bool(inner) and inner[0] == "gtp_psc"
    if eh:
        inner = inner[1:]
    if len(outer) != 3 or outer[0] != "eth" or outer[1] not in _L3 or outer[2] != "udp":
        return None
    gtp = H_GTPU_IP
    if eh:
        gtp |= H_GTPU_UP if pdu == "up" else H_GTPU_DWN if pdu == "down" else H_GTPU_EH
    if not inner:
        base = ice_flow_type(rule.pattern)
        if base is None or pdu is None:
            return base
        ptypes, attr = seg_ptypes((gtp | _L3[outer[1]] | H_IPV_OTHER,))
        return IceFlowType(base.name, base.tunnel, ptypes, attr)
    if len(inner) > 2 or inner[0] not in _L3 or (len(inner) == 2 and inner[1] not in _L4):
        return None
    l4 = inner[1] if len(inner) == 2 else "other"
    in_hdrs = _L3[inner[0]] | H_IPV_OTHER | (_L4.get(l4, 0))
    ptypes, attr = seg_ptypes((gtp | _L3[outer[1]] | H_IPV_OTHER, in_hdrs))
    fam = "GTPU" + ("" if not eh else "_EH_UP" if pdu == "up" else "_EH_DWN" if pdu else "_EH")
    name = f"NONF_{outer[1].upper()}_{fam}_{inner[0].upper()}_{l4.upper()}"
    return IceFlowType(name, True, ptypes, attr)


# GTP-U tunnel types whose G-PDUs overlap: GTPU_EH (any PDU type) and its uplink and
# downlink forms; the uplink and downlink ones are apart
_FAMILY_OVERLAP = {
    frozenset({"GTPU_EH", "GTPU_EH_UP"}),
    frozenset({"GTPU_EH", "GTPU_EH_DWN"}),
}


def iavf_cross_conflicts(name: str) -> tuple[str, ...]:
    """The flow types a VF's GTP-U flow type with inner headers cannot hold rules
    beside, as DTS sees the PF refuse them (ice_vc_fdir_has_prof_conflict's rule for
    overlapping profiles): of overlapping tunnel types, inner IP "other" and inner UDP
    or TCP, and the same inner L4 under GTPU_EH and one of its PDU types."""
    parts = name.split("_")
    if len(parts) < 5 or parts[0] != "NONF" or "GTPU" not in parts:
        return ()
    outer, inner, l4 = parts[1], parts[-2], parts[-1]
    fam = "_".join(parts[2:-2])
    out = []
    for other_fam in ("GTPU", "GTPU_EH", "GTPU_EH_UP", "GTPU_EH_DWN"):
        if other_fam != fam and frozenset({fam, other_fam}) not in _FAMILY_OVERLAP:
            continue
        for other_l4 in ("OTHER", "UDP", "TCP"):
            if other_fam == fam and other_l4 == l4:
                continue
            if other_l4 == l4 or "OTHER" in (l4, other_l4):
                out.append(f"NONF_{outer}_{other_fam}_{inner}_{other_l4}")
    return tuple(out)


__all__ = [
    "iavf_check",
    "iavf_check_actions",
    "iavf_cross_conflicts",
    "iavf_flow_type",
    "iavf_view",
]

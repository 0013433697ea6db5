"""IP fragment Flow Director rules as the ice PMD reads them.

Facts from DPDK ``drivers/net/intel/ice/ice_fdir_filter.c`` (BSD-3-Clause, Intel;
DPDK main, 26.11-rc0), ``ice_fdir_parse_pattern()``:

- An ``ipv4`` item whose ``fragment_offset`` spec and mask both have the MF bit
  (``fragment_offset spec 0x2000 fragment_offset mask 0x2000``) selects the flow type
  ``ICE_FLTR_PTYPE_FRAG_IPV4``. The bit only selects it: the fragment offset is in the
  input set only when the mask covers offset bits (``ICE_INSET_IPV4_FRAG_OFS``, field
  ``ICE_FLOW_FIELD_IDX_IPV4_FRAG_OFS`` under 0x3fff, whose value is the training
  packet's, ``ice_fdir_ipv4_frag_pkt``: MF set, offset 0), and the ethertype is added
  ("all IPv4 fragment packet has the same ethertype"). Without the MF selector, a
  full ``packet_id`` mask is "Invalid IPv4 mask."; ``packet_id`` is never in an input
  set.
- iavf (``iavf_fdir_parse_pattern``, drivers/net/intel/iavf/iavf_fdir.c) still wants
  the spec and the mask to be exactly 0x2000 (as ice did before DPDK 25.03), and has
  no fragment-offset field: ``fragment_offset spec 0x2000 fragment_offset mask 0xffff``
  with a full ``packet_id`` mask is "Invalid IPv4 mask." on a VF.
- An ``ipv6_frag_ext`` item selects ``ICE_FLTR_PTYPE_FRAG_IPV6``; ``frag_data spec 1
  mask 1`` adds the ethertype to the input set, and otherwise a full ``packet_id``
  mask is "Invalid IPv6 mask.". Its fields are never in an input set.
- The fragment flow types' segment headers are IPv4 (IPv6) + ``IPV_FRAG``
  (``ice_fdir_input_set_hdrs``), so the profile covers the fragment PTYPEs
  (``ice_ptypes_ipv4_frag``: MAC_IPV4_FRAG), which every fragment of a packet has,
  the first one included: a fragment rule catches all of them.
"""

from __future__ import annotations

from dataclasses import replace

from .hash import H_IPV4, H_IPV6, H_IPV_FRAG, seg_ptypes
from .iavf_fdir import iavf_check, iavf_view
from .rules import FieldSpec, FlowRule, Item, rule_error

MF = 0x2000  # RTE_IPV4_HDR_MF_FLAG
OFFSET_BITS = 0x1FFF
FRAG_OFS_MASK = 0x3FFF  # ICE_FLOW_FIELD_IDX_IPV4_FRAG_OFS
TRAINING_FRAG_OFS = 0x2000  # ice_fdir_ipv4_frag_pkt: MF set, offset 0
# fields whose partial mask is the ice field's own (not a user's partial mask)
FIELD_MASKS = frozenset({("ipv4.fragment_offset", FRAG_OFS_MASK)})
ETHERTYPES = {"ipv4": 0x0800, "ipv6": 0x86DD}
FRAG_PTYPES = {
    "ipv4": seg_ptypes((H_IPV4 | H_IPV_FRAG,))[0],
    "ipv6": seg_ptypes((H_IPV6 | H_IPV_FRAG,))[0],
}


def fd_view(rule: FlowRule, iavf: bool = False) -> FlowRule:
    """`rule` as Flow Director matches it: for a fragment rule, the selector bits out
    of the input set (their specs kept with mask 0), the ethertype in, and
    ``extra["ice_frag"]`` naming the fragment flow type (``ipv4`` or ``ipv6``); any
    other rule unchanged. `iavf`: a VF's rule, read as iavf_fdir.c reads it."""
    if iavf:
        iavf_check(rule)
    items = list(rule.pattern)
    frag: str | None = None
    ethertype = False
    for n, it in enumerate(items):
        if it.type == "ipv4":
            if not any(s.field in ("ipv4.fragment_offset", "ipv4.packet_id") for s in it.specs):
                continue  # nothing below changes: the item as it is, not a copy
            specs = list(it.specs)
            for k, s in enumerate(specs):
                if s.field != "ipv4.fragment_offset":
                    continue
                if s.value == s.mask == MF if iavf else s.value & s.mask & MF:
                    frag, ethertype = "ipv4", True
                    if s.mask & OFFSET_BITS:
                        specs[k] = replace(s, value=TRAINING_FRAG_OFS, mask=FRAG_OFS_MASK)
                    else:
                        specs[k] = replace(s, mask=0)
            for k, s in enumerate(specs):
                if s.field == "ipv4.packet_id" and s.mask:
                    if frag != "ipv4" and s.mask == 0xFFFF:
                        raise rule_error("ITEM", "Invalid IPv4 mask.", it.index)
                    specs[k] = replace(s, mask=0)
            items[n] = replace(it, specs=tuple(specs))
        elif it.type == "ipv6_frag_ext":
            frag = "ipv6"
            data = {s.field.split(".")[-1]: s for s in it.specs}
            fd = data.get("frag_data")
            if fd is not None and fd.value == 1 and fd.mask == 1:
                ethertype = True
            elif (pid := data.get("packet_id")) is not None and pid.mask == 0xFFFFFFFF:
                raise rule_error("ITEM", "Invalid IPv6 mask.", it.index)
            items[n] = replace(it, specs=tuple(replace(s, mask=0) for s in it.specs))
    if frag is not None:
        if ethertype:
            _add_ethertype(items, ETHERTYPES[frag])
        rule = replace(rule, pattern=tuple(items), extra={**rule.extra, "ice_frag": frag})
    # a VF's rule: the rest of iavf_fdir_parse_pattern (pdu_t, the refined input set)
    return iavf_view(rule) if iavf else rule


def switch_view(rule: FlowRule) -> FlowRule:
    """`rule` as the switch matches it: ice_switch_parse_pattern never reads an IPv4
    ``fragment_offset`` (its input set has the addresses, TTL, protocol and TOS only), so
    a switch rule with one matches fragments and whole packets alike."""
    items = list(rule.pattern)
    changed = False
    for n, it in enumerate(items):
        if it.type == "ipv4" and any(s.field == "ipv4.fragment_offset" for s in it.specs):
            specs = tuple(
                replace(s, mask=0) if s.field == "ipv4.fragment_offset" else s for s in it.specs
            )
            items[n] = replace(it, specs=specs)
            changed = True
    return replace(rule, pattern=tuple(items)) if changed else rule


def _add_ethertype(items: list[Item], value: int) -> None:
    for n, it in enumerate(items):
        if it.type == "eth" and it.level == 0:
            specs = [s for s in it.specs if s.field != "eth.type"]
            specs.append(FieldSpec("eth.type", value, 0xFFFF))
            items[n] = replace(it, specs=tuple(specs))
            return


__all__ = ["FIELD_MASKS", "FRAG_PTYPES", "fd_view", "switch_view"]

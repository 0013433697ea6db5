"""The ice PMD's pattern lists: which item sequences each flow engine's parser takes.

Each engine's parser first looks the rule's items up in its ``ice_pattern_match_item``
array with ``ice_search_pattern_match_item`` (``ice_generic_flow.c``): the items without
``void`` must equal one of the array's patterns (``ice_match_pattern``), else the parser
fails with "Unsupported pattern" (RTE_FLOW_ERROR_TYPE_ITEM). The arrays here are the
item sequences of the ``pattern_*`` lists named in the comments, as testpmd spells the
items; the input-set masks that go with them are checked by the engines.
"""

from __future__ import annotations

from collections.abc import Iterable

from .rules import FlowRule, rule_error

Pattern = tuple[str, ...]

_E4 = ("eth", "ipv4")
_E6 = ("eth", "ipv6")


def _l4(base: Pattern, *l4s: str) -> list[Pattern]:
    return [base, *((*base, x) for x in l4s)]


def _gtpu_inner(outer: Pattern) -> list[Pattern]:
    out: list[Pattern] = []
    for eh in ((), ("gtp_psc",)):
        for inner in ("ipv4", "ipv6"):
            out.extend(_l4((*outer, "udp", "gtpu", *eh, inner), "udp", "tcp"))
    return out


# ice_switch_pattern_perm_list (ice_switch_filter.c, DPDK 23.07): the switch's parser in
# pipeline mode (pipeline-mode-support=1), for priority-0 rules (the permission stage).
# DPDK 23.11 removed it with pipeline mode (commit 14b12c939f, "net/ice: remove pipeline
# mode"); DTS still tests it.
SWITCH_PERM_PATTERNS: frozenset[Pattern] = frozenset(
    [
        ("any",),
        ("eth",),
        ("eth", "vlan"),
        ("eth", "vlan", "vlan"),
        ("eth", "arp_eth_ipv4"),
        *_l4(_E4, "udp", "tcp"),
        *_l4(_E6, "udp", "tcp"),
        *_l4((*_E4, "udp", "vxlan", "eth", "ipv4"), "udp", "tcp"),
        *_l4((*_E4, "nvgre", "eth", "ipv4"), "udp", "tcp"),
        *(
            (*head, "pppoes", *tail)
            for head in (("eth",), ("eth", "vlan"))
            for tail in (
                (),
                ("pppoe_proto_id",),
                ("ipv4",),
                ("ipv4", "tcp"),
                ("ipv4", "udp"),
                ("ipv6",),
                ("ipv6", "tcp"),
                ("ipv6", "udp"),
            )
        ),
        (*_E4, "esp"),
        (*_E4, "udp", "esp"),
        (*_E6, "esp"),
        (*_E6, "udp", "esp"),
        (*_E4, "ah"),
        (*_E6, "ah"),
        (*_E6, "udp", "ah"),
        (*_E4, "l2tpv3oip"),
        (*_E6, "l2tpv3oip"),
        (*_E4, "udp", "pfcp"),
        (*_E6, "udp", "pfcp"),
        *_l4(("eth", "vlan", "vlan", "ipv4"), "tcp", "udp"),
        *_l4(("eth", "vlan", "vlan", "ipv6"), "tcp", "udp"),
        ("eth", "vlan", "vlan", "pppoes"),
        ("eth", "vlan", "vlan", "pppoes", "pppoe_proto_id"),
        ("eth", "vlan", "vlan", "pppoes", "ipv4"),
        ("eth", "vlan", "vlan", "pppoes", "ipv6"),
        (*_E4, "udp", "gtpu"),
        (*_E6, "udp", "gtpu"),
        *_gtpu_inner(_E4),
        *_gtpu_inner(_E6),
    ]
)

# ice_fdir_supported_pattern (ice_fdir_filter.c, DPDK main)
FDIR_PATTERNS: frozenset[Pattern] = frozenset(
    [
        ("raw",),
        ("eth",),
        *_l4(_E4, "udp", "tcp", "sctp"),
        *_l4(_E6, "udp", "tcp", "sctp"),
        (*_E6, "ipv6_frag_ext"),
        (*_E4, "esp"),
        (*_E4, "udp", "esp"),
        (*_E6, "esp"),
        (*_E6, "udp", "esp"),
        *_l4((*_E4, "udp", "vxlan", "ipv4"), "udp", "tcp", "sctp"),
        *_l4((*_E4, "udp", "vxlan", "eth", "ipv4"), "udp", "tcp", "sctp"),
        (*_E4, "udp", "gtpu"),
        (*_E4, "udp", "gtpu", "gtp_psc"),
        (*_E6, "udp", "gtpu"),
        (*_E6, "udp", "gtpu", "gtp_psc"),
        *(
            (*outer, "udp", "l2tpv2", *tail)
            for outer in (_E4, _E6)
            for tail in (
                (),
                ("ppp",),
                *(("ppp", ip, *l4) for ip in ("ipv4", "ipv6") for l4 in ((), ("udp",), ("tcp",))),
            )
        ),
    ]
)


def items_of(rule: FlowRule) -> Pattern:
    """The rule's item types without ``void`` and ``end`` (ice_pattern_skip_void_item)."""
    return tuple(i.type for i in rule.pattern if i.type not in ("void", "end"))


def search_pattern(rule: FlowRule, patterns: Iterable[Pattern]) -> None:
    """``ice_search_pattern_match_item``: the rule's items must be one of `patterns`."""
    if items_of(rule) not in patterns:
        raise rule_error("ITEM", "Unsupported pattern", 0)


__all__ = ["FDIR_PATTERNS", "SWITCH_PERM_PATTERNS", "items_of", "search_pattern"]

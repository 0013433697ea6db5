"""Flow rules, independent of how they were written (testpmd text or YAML).

A :class:`FlowRule` is what ``flow create`` describes: attributes, a pattern of
items from the outermost header in, and actions. Item fields are named as in the
field catalog (:mod:`e810pipe.fields`), e.g. ``ipv4.src`` or ``vxlan.vni``.
Errors follow rte_flow: a category (``RTE_FLOW_ERROR_TYPE_*``) and the index of the
offending item or action.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import RuleError

# RTE_FLOW_ERROR_TYPE_* (lib/ethdev/rte_flow.h) and testpmd's wording for each.
ERROR_TYPES: dict[str, tuple[int, str]] = {
    "UNSPECIFIED": (1, "cause unspecified"),
    "HANDLE": (2, "flow rule (handle)"),
    "ATTR_GROUP": (3, "group field"),
    "ATTR_PRIORITY": (4, "priority field"),
    "ATTR_INGRESS": (5, "ingress field"),
    "ATTR_EGRESS": (6, "egress field"),
    "ATTR_TRANSFER": (7, "transfer field"),
    "ATTR": (8, "attributes structure"),
    "ITEM_NUM": (9, "pattern length"),
    "ITEM_SPEC": (10, "item specification"),
    "ITEM_LAST": (11, "item specification range"),
    "ITEM_MASK": (12, "item specification mask"),
    "ITEM": (13, "specific pattern item"),
    "ACTION_NUM": (14, "number of actions"),
    "ACTION_CONF": (15, "action configuration"),
    "ACTION": (16, "specific action"),
    "STATE": (17, "current device state"),
}


def rule_error(kind: str, message: str, index: int | None = None) -> RuleError:
    """A RuleError of rte_flow category `kind` (a key of ERROR_TYPES)."""
    code, category = ERROR_TYPES[kind]
    return RuleError(message, category, code, index)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One matched field: value under mask, optionally a range up to `last`."""

    field: str
    value: int
    mask: int
    last: int | None = None


@dataclass(frozen=True, slots=True)
class RawSpec:
    """A raw pattern item: bytes (and a mask) at an offset of the packet."""

    pattern: bytes
    mask: bytes
    offset: int = 0
    relative: bool = False


@dataclass(frozen=True, slots=True)
class Item:
    type: str  # rte_flow item name: eth, vlan, ipv4, ..., raw, end
    index: int  # position in the pattern, for error messages
    specs: tuple[FieldSpec, ...] = ()
    level: int = 0  # segment: 0 outer (or only), 1 inner
    raw: RawSpec | None = None


@dataclass(frozen=True, slots=True)
class Action:
    type: str  # queue, rss, drop, passthru, mark, count
    index: int
    queue: int | None = None
    queues: tuple[int, ...] = ()
    mark: int | None = None
    counter: int | None = None


@dataclass(frozen=True, slots=True)
class FlowRule:
    port: int
    pattern: tuple[Item, ...]
    actions: tuple[Action, ...]
    group: int = 0
    priority: int = 0
    ingress: bool = True
    text: str = ""
    where: str = ""  # file:line it came from, for messages
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def source(self) -> str:
        """The rule as written, with the file:line it came from (YAML rules' text
        starts with it already): what traces and reports show."""
        if self.where and not self.text.startswith(self.where):
            return f"{self.text}  ({self.where})" if self.text else f"({self.where})"
        return self.text

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(i for i in self.pattern if i.type != "end")

    def action(self, kind: str) -> Action | None:
        for a in self.actions:
            if a.type == kind:
                return a
        return None

    @property
    def is_tunnel(self) -> bool:
        return any(i.level > 0 for i in self.pattern)

"""The kernel front end: ``ethtool -N|-U DEV flow-type ...`` ntuple rules, as ice takes them.

With the ice kernel driver, an ethtool ntuple rule is a Flow Director filter and
nothing else (``ice_set_rxnfc`` -> ``ice_add_fdir_ethtool`` in
``drivers/net/ethernet/intel/ice/ice_ethtool_fdir.c``). This module reads the
command as ethtool(8) does (``rxclass_parse_ruleopts`` in ethtool's rxclass.c), checks
it as the kernel does, and hands the pipeline the same :class:`FlowRule` the testpmd
front end makes of the equivalent ``flow create`` rule, placed on Flow Director only.
The engines never see this text.

What the kernel checks, in ``ice_add_fdir_ethtool``'s order:

1. ``ice_parse_rx_flow_user_data``: a ``user-def`` mask must cover the low 32 bits and
   the offset may not pass 0x1fe (-EINVAL); ``dst-mac`` (``FLOW_MAC_EXT``) is -EINVAL.
2. ``ice_cfg_fdir_xtrct_seq``: the flow type (tcp4 udp4 sctp4 ip4 tcp6 udp6 sctp6 ip6;
   any other is -EINVAL), then ``ice_set_fdir_ip4_seg`` / ``ice_set_fdir_ip4_usr_seg`` /
   ``ice_set_fdir_ip6_seg`` / ``ice_set_fdir_ip6_usr_seg``: a rule with no field is
   -EINVAL, every mask is all-ones or zero (-EOPNOTSUPP otherwise), tos / tclass / l4proto
   are -EOPNOTSUPP (-EINVAL for ip4's tos and l4data); then ``ice_fdir_set_hw_fltr_rule``:
   a flow type whose filters use another input set refuses the rule ("Flow director
   filters on each port must have the same input set").
3. The location: ``loc`` at or past ``ice_get_fdir_cnt_all`` (guaranteed plus
   best-effort entries) is -ENOSPC.
4. ``ice_set_fdir_input_set``: ``action -1`` (``RX_CLS_FLOW_DISC``) drops; VF bits in the
   ring cookie are refused ("Flow director filters are not supported on VF queues");
   a queue at or past the VSI's ``num_rxq`` is -EINVAL.
5. ``ice_fdir_is_dup_fltr``: a filter of the same flow type with the same values is
   -EINVAL, unless it sits at the same location with another queue (an update).
6. ``ice_fdir_update_list_entry``: a rule at the same location is replaced.

Without ``loc``, ethtool picks the location itself (ice reports no
``RX_CLS_LOC_SPECIAL``): the highest free one below the table size
(``rmgr_find_empty_slot``), and prints ``Added rule with ID N``. ``delete N`` removes
location N (``ice_del_fdir_ethtool``; -ENOENT when there is none). Masks are written
as ethtool(8) takes them: bits set in ``m MASK`` are ignored (ethtool inverts the mask
before the kernel sees it, ``invert_flow_mask``).
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from errno import EINVAL, ENODEV, ENOENT, ENOSPC, EOPNOTSUPP
from typing import TYPE_CHECKING, Any

from .errors import RuleError
from .rules import Action, FieldSpec, FlowRule, Item

if TYPE_CHECKING:
    from .pipeline import Pipeline

U64 = (1 << 64) - 1
RX_CLS_FLOW_DISC = U64  # ethtool's `action -1`
RING_MASK = 0xFFFFFFFF  # ETHTOOL_RX_FLOW_SPEC_RING
RING_VF_MASK = 0xFF << 32  # ETHTOOL_RX_FLOW_SPEC_RING_VF
USERDEF_MAX_OFFSET = 0x1FE  # ICE_USERDEF_FLEX_MAX_OFFS_VAL
EXTRA_KEY = "ethtool"  # rule.extra: the kernel's view of an ntuple rule

COMMANDS = ("-N", "-U", "--config-ntuple", "--config-nfc")

# ethtool flow-type -> (L3 item, L4 item or None, the ice flow type it maps to or None).
# ice_ethtool_flow_to_fltr maps these; ah/esp parse in ethtool but ice has no case
# for them in ice_cfg_fdir_xtrct_seq.
FLOW_TYPES: dict[str, tuple[str, str | None, str | None]] = {
    "tcp4": ("ipv4", "tcp", "ICE_FLTR_PTYPE_NONF_IPV4_TCP"),
    "udp4": ("ipv4", "udp", "ICE_FLTR_PTYPE_NONF_IPV4_UDP"),
    "sctp4": ("ipv4", "sctp", "ICE_FLTR_PTYPE_NONF_IPV4_SCTP"),
    "ip4": ("ipv4", None, "ICE_FLTR_PTYPE_NONF_IPV4_OTHER"),
    "tcp6": ("ipv6", "tcp", "ICE_FLTR_PTYPE_NONF_IPV6_TCP"),
    "udp6": ("ipv6", "udp", "ICE_FLTR_PTYPE_NONF_IPV6_UDP"),
    "sctp6": ("ipv6", "sctp", "ICE_FLTR_PTYPE_NONF_IPV6_SCTP"),
    "ip6": ("ipv6", None, "ICE_FLTR_PTYPE_NONF_IPV6_OTHER"),
    "ah4": ("ipv4", None, None),
    "esp4": ("ipv4", None, None),
    "ah6": ("ipv6", None, None),
    "esp6": ("ipv6", None, None),
    "ether": ("eth", None, None),
}

# The options ethtool(8) takes per flow type (rxclass.c's rule_nfc_* tables), by kind
# of value. "l4" options are the ports; ip4/ip6 ("usr" specs) read them into l4data.
_L3 = ("src-ip", "dst-ip")
_OPTIONS: dict[str, tuple[str, ...]] = {
    "tcp4": (*_L3, "tos", "src-port", "dst-port"),
    "ip4": (*_L3, "tos", "l4proto", "l4data", "spi", "src-port", "dst-port"),
    "ah4": (*_L3, "tos", "spi"),
    "tcp6": (*_L3, "tclass", "src-port", "dst-port"),
    "ip6": (*_L3, "tclass", "l4proto", "l4data", "spi", "src-port", "dst-port"),
    "ah6": (*_L3, "tclass", "spi"),
    "ether": ("src", "dst", "proto"),
}
for _a, _b in (
    ("udp4", "tcp4"),
    ("sctp4", "tcp4"),
    ("esp4", "ah4"),
    ("udp6", "tcp6"),
    ("sctp6", "tcp6"),
    ("esp6", "ah6"),
):
    _OPTIONS[_a] = _OPTIONS[_b]
# every flow type also takes these (the ethtool_flow_ext fields and the destination)
_EXT = ("vlan-etype", "vlan", "user-def", "dst-mac")
_ACTION = ("action", "vf", "queue", "context", "loc")

# rxclass.c's NFC_FLAG_* / NTUPLE_FLAG_* per option (spi and l4data are SPORT|DPORT)
_FLAGS = {
    "action": 0x1,
    "vf": 0x1000,
    "queue": 0x2000,
    "context": 0x4000,
    "loc": 0x2,
    "src-ip": 0x4,
    "src": 0x4,
    "dst-ip": 0x8,
    "dst": 0x8,
    "src-port": 0x10,
    "dst-port": 0x20,
    "spi": 0x30,
    "l4data": 0x30,
    "tos": 0x40,
    "tclass": 0x40,
    "l4proto": 0x80,
    "proto": 0x80,
    "vlan": 0x100,
    "user-def": 0x200,
    "vlan-etype": 0x400,
    "dst-mac": 0x800,
}

_WIDTH = {
    "tos": 8,
    "tclass": 8,
    "l4proto": 8,
    "l4data": 32,
    "spi": 32,
    "src-port": 16,
    "dst-port": 16,
    "vlan-etype": 16,
    "vlan": 16,
    "user-def": 64,
    "proto": 16,
}


class EthtoolError(RuleError):
    """A refused ethtool command, located, in ethtool's and the kernel's words."""

    def __init__(self, message: str, errno: int = EINVAL) -> None:
        super().__init__(message, "cause unspecified", 1, None, errno)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class NtupleSpec:
    """What the kernel keeps of an ntuple rule: its flow type, the fields its input
    set holds (those with a full mask) and their values, and the ring cookie."""

    flow_type: str
    values: tuple[tuple[str, int], ...]  # (field, value) of the input set, sorted
    ring_cookie: int
    loc: int

    @property
    def input_set(self) -> frozenset[str]:
        return frozenset(f for f, _ in self.values)

    @property
    def q_index(self) -> int:
        # ice_set_fdir_input_set: a drop rule's q_index stays 0
        return 0 if self.ring_cookie == RX_CLS_FLOW_DISC else self.ring_cookie & RING_MASK


@dataclass(frozen=True)
class EthtoolCommand:
    """``ethtool -N DEV flow-type T ... [loc N]`` (op "add") or ``... delete N``."""

    op: str  # add, delete
    dev: str
    flow_type: str = ""
    fields: dict[str, tuple[int, int]] = field(default_factory=dict)  # option -> (value, mask)
    ring_cookie: int = 0
    loc: int | None = None
    context: int | None = None
    text: str = ""
    where: str = ""

    @property
    def rule(self) -> FlowRule | None:
        """The rule as far as the text alone says (port 0): what `flow validate
        --analyze` explains when the rule is refused."""
        if self.op != "add" or self.flow_type not in FLOW_TYPES:
            return None
        try:
            spec = _kernel_spec(self, self.loc or 0)
        except EthtoolError:
            return None
        return to_rule(self, spec, 0)


def is_ethtool(line: str) -> bool:
    """Whether a command line is an ethtool command (its first word)."""
    words = line.split(None, 1)
    return bool(words) and words[0] == "ethtool"


# ---------------------------------------------------------------------------
# Reading the command (ethtool's rxclass_parse_ruleopts)


def _bad(where: str, message: str) -> EthtoolError:
    return EthtoolError(f"{where}: {message}")


def _number(text: str, width: int) -> int | None:
    """A number as ethtool reads one (strtoull base 0: decimal, 0x hex, 0 octal);
    negative values wrap as in C."""
    try:
        neg = text.startswith("-")
        body = text[1:] if neg else text
        if re.fullmatch(r"0[0-7]+", body):
            v = int(body, 8)
        else:
            v = int(body, 0)
    except ValueError:
        return None
    limit = (1 << width) - 1
    if neg:
        v = -v & limit
    return v if 0 <= v <= limit else None


def _value(opt: str, text: str, l3: str) -> int | None:
    if opt in ("src-ip", "dst-ip"):
        try:
            if l3 == "ipv6":
                return int(ipaddress.IPv6Address(text))
            return int(ipaddress.IPv4Address(text))
        except ValueError:
            return None
    if opt in ("src", "dst", "dst-mac"):
        if re.fullmatch(r"[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){5}", text):
            return int("".join(f"{int(b, 16):02x}" for b in text.split(":")), 16)
        return None
    return _number(text, _WIDTH.get(opt, 32))


def _full(opt: str, l3: str) -> int:
    if opt in ("src-ip", "dst-ip"):
        return (1 << (128 if l3 == "ipv6" else 32)) - 1
    if opt in ("src", "dst", "dst-mac"):
        return (1 << 48) - 1
    return (1 << _WIDTH.get(opt, 32)) - 1


def parse_ethtool(line: str, where: str = "<cmd>") -> EthtoolCommand:
    """One ethtool command line; a located EthtoolError when ethtool itself refuses it."""
    text = line.split("#", 1)[0].strip()
    words = text.split()
    if not words or words[0] != "ethtool":
        raise _bad(where, "not an ethtool command")
    if len(words) < 2 or words[1] not in COMMANDS:
        got = words[1] if len(words) > 1 else "nothing"
        raise _bad(
            where,
            f"ethtool: only ntuple rules are modelled ({' / '.join(COMMANDS)} DEV "
            f"flow-type ... | delete N), not {got}",
        )
    if len(words) < 3:
        raise _bad(where, "ethtool: bad command line argument(s): no device name")
    dev, args = words[2], words[3:]
    if not args:
        raise _bad(where, "ethtool: bad command line argument(s): flow-type or delete needed")
    if args[0] == "delete":
        if len(args) != 2:
            raise _bad(where, "ethtool: bad command line argument(s): delete takes one location")
        loc = _number(args[1], 32)
        if loc is None:
            raise _bad(where, f"ethtool: bad command line argument(s): bad location '{args[1]}'")
        return EthtoolCommand("delete", dev, loc=loc, text=text, where=where)
    if args[0] != "flow-type" or len(args) < 2:
        raise _bad(where, "Add rule, invalid syntax: expected 'flow-type TYPE' or 'delete N'")
    ftype = args[1]
    if ftype not in FLOW_TYPES:
        # rxclass_parse_ruleopts: an unknown flow type is a syntax error
        raise _bad(where, f"Add rule, invalid syntax (flow-type {ftype}: {', '.join(FLOW_TYPES)})")
    l3 = FLOW_TYPES[ftype][0]
    ext = tuple(o for o in _EXT if not (ftype == "ether" and o == "dst-mac"))
    allowed = _OPTIONS[ftype] + ext + _ACTION
    fields: dict[str, tuple[int, int]] = {}
    found: dict[str, int] = {}
    flags = 0
    i = 2
    while i < len(args):
        opt = args[i]
        if opt not in allowed:
            raise _bad(where, f"Add rule, unrecognized option[{opt}]")
        if i + 1 >= len(args):
            raise _bad(where, f"Add rule, invalid syntax (option {opt} needs a value)")
        raw = args[i + 1]
        i += 2
        # rxclass_get_val: an option whose flag is set already (given twice, or spi /
        # l4data after a port: they share the flag) is an invalid value
        flag = _FLAGS[opt]
        if flags & flag:
            raise _bad(where, f"Invalid {opt} value[{raw}]")
        flags |= flag
        if opt in _ACTION:
            n = _number(raw, 64 if opt == "action" else 32)
            if n is None:
                raise _bad(where, f"Invalid {opt} value[{raw}]")
            found[opt] = n
            continue
        v = _value(opt, raw, l3)
        if v is None:
            raise _bad(where, f"Invalid {opt} value[{raw}]")
        full = _full(opt, l3)
        ignore = 0  # ethtool's mask: bits set are ignored (rxclass_get_mask stores ~M)
        if i < len(args) and args[i] in ("m", f"{opt}-mask"):
            if i + 1 >= len(args):
                raise _bad(where, "Add rule, invalid syntax (a mask needs a value)")
            mraw = args[i + 1]
            mv = _value(opt, mraw, l3)
            if mv is None:
                raise _bad(where, f"Invalid {opt} mask[{mraw}]")
            ignore = mv
            i += 2
        fields[opt] = (v, ~ignore & full)
    ring = found.get("action")
    vf, queue = found.get("vf"), found.get("queue")
    if ring is not None and (vf is not None or queue is not None):
        raise _bad(where, "Add rule, invalid syntax (action with vf / queue)")
    if ring is None:
        if queue is None:
            raise _bad(where, "Add rule, invalid syntax (no action: action N|-1, or vf N queue M)")
        ring = ((vf or 0) << 32) | queue
    at, context = found.get("loc"), found.get("context")
    return EthtoolCommand("add", dev, ftype, fields, ring, at, context, text, where)


# ---------------------------------------------------------------------------
# What the kernel does with it (ice_add_fdir_ethtool)


def _refused(cmd: EthtoolCommand, errno: int, log: str = "", delete: bool = False) -> EthtoolError:
    what = "delete" if delete else "insert"
    # located as the engines' refusals are: the source after the message
    msg = f"rmgr: Cannot {what} RX class rule: {os.strerror(errno)} ({cmd.where})"
    if log:
        msg += f"\n{cmd.dev}: {log}"  # the netdev's dev_err line (dmesg)
    return EthtoolError(msg, errno)


# ethtool option -> the FlowRule field name, per L3/L4 item
def _field_name(opt: str, l3: str, l4: str | None) -> str:
    if opt in ("src-ip", "dst-ip"):
        return f"{l3}.{opt[:3]}"
    return f"{l4}.{opt[:3]}"


def _kernel_spec(cmd: EthtoolCommand, loc: int) -> NtupleSpec:
    """The kernel's checks on the rule's own fields (ice_parse_rx_flow_user_data, the
    FLOW_MAC_EXT test and ice_set_fdir_*_seg), and what its input set is."""
    ftype = cmd.flow_type
    l3, l4, ice = FLOW_TYPES[ftype]
    f = cmd.fields
    if "user-def" in f:
        value, mask = f["user-def"]
        # ice_parse_rx_flow_user_data: the mask must cover the low 32 bits (flex word
        # and offset), the value fit them, the offset not pass 0x1fe
        if mask:
            if mask & RING_MASK != RING_MASK or value > RING_MASK:
                raise _refused(cmd, EINVAL)
            if (value >> 16) & 0xFFFF > USERDEF_MAX_OFFSET:
                raise _refused(cmd, EINVAL)
            raise EthtoolError(
                "user-def: ice's flexible word (ice_flow_add_fld_raw at offset "
                f"{(value >> 16) & 0xFFFF}) is not modelled yet ({cmd.where})",
                EOPNOTSUPP,
            )
    if "dst-mac" in f and f["dst-mac"][1]:
        raise _refused(cmd, EINVAL)  # ice_add_fdir_ethtool: FLOW_MAC_EXT
    if ice is None:
        raise _refused(cmd, EINVAL)  # ice_cfg_fdir_xtrct_seq: no case for the flow type

    def mask_of(opt: str) -> int:
        return f[opt][1] if opt in f else 0

    ip_fields = ("src-ip", "dst-ip")
    usr = l4 is None
    if usr:
        if l3 == "ipv4":
            # ice_set_fdir_ip4_usr_seg: l4_4_bytes, tos and ip_ver are -EINVAL, proto
            # -EOPNOTSUPP (ports and spi are l4_4_bytes for an ip4 rule)
            if any(mask_of(o) for o in ("l4data", "spi", "src-port", "dst-port", "tos")):
                raise _refused(cmd, EINVAL)
            if mask_of("l4proto"):
                raise _refused(cmd, EOPNOTSUPP)
        else:
            # ice_set_fdir_ip6_usr_seg: l4_4_bytes, tclass, l4_proto -EOPNOTSUPP
            if any(mask_of(o) for o in ("l4data", "spi", "src-port", "dst-port")):
                raise _refused(cmd, EOPNOTSUPP)
            if mask_of("tclass") or mask_of("l4proto"):
                raise _refused(cmd, EOPNOTSUPP)
        used: tuple[str, ...] = ip_fields
    else:
        used = (*ip_fields, "src-port", "dst-port")
    # ice_set_fdir_ip4_seg / ip6_seg: an empty rule is -EINVAL, then tos/tclass
    # -EOPNOTSUPP, then each mask all-ones or zero
    if not any(mask_of(o) for o in used):
        raise _refused(cmd, EINVAL)
    if not usr and (mask_of("tos") or mask_of("tclass")):
        raise _refused(cmd, EOPNOTSUPP)
    values = []
    for opt in used:
        m = mask_of(opt)
        if not m:
            continue
        if m != _full(opt, l3):
            raise _refused(cmd, EOPNOTSUPP)
        values.append((_field_name(opt, l3, l4), f[opt][0]))
    return NtupleSpec(ftype, tuple(sorted(values)), cmd.ring_cookie, loc)


def to_rule(cmd: EthtoolCommand, spec: NtupleSpec, port: int) -> FlowRule:
    """The FlowRule the testpmd front end makes of the same rule: ``eth / L3 / [L4] /
    end`` with the input set's fields matched whole, and a queue or drop action."""
    l3, l4, _ = FLOW_TYPES[spec.flow_type]
    by_item: dict[str, list[FieldSpec]] = {}
    for name, value in spec.values:
        item = name.split(".", 1)[0]
        width = 128 if item == "ipv6" else 32 if item == "ipv4" else 16
        by_item.setdefault(item, []).append(FieldSpec(name, value, (1 << width) - 1))
    # the testpmd front end orders an item's fields as written: src before dst
    order = {"src": 0, "dst": 1}
    items = [Item("eth", 0)]
    for t in (l3, l4):
        if t is None:
            continue
        specs = sorted(by_item.get(t, ()), key=lambda s: order.get(s.field.split(".")[1], 2))
        items.append(Item(t, len(items), tuple(specs)))
    items.append(Item("end", len(items)))
    if spec.ring_cookie == RX_CLS_FLOW_DISC:
        act = Action("drop", 0)
    else:
        act = Action("queue", 0, queue=spec.q_index)
    return FlowRule(
        port,
        tuple(items),
        (act,),
        text=cmd.text,
        where=cmd.where,
        extra={EXTRA_KEY: spec},
    )


def _port_of(pipe: Pipeline, cmd: EthtoolCommand) -> int:
    """The ethdev port whose netdev is `cmd.dev`: ``ethN`` is PF N's own port."""
    m = re.fullmatch(r"eth(\d+)", cmd.dev)
    if m is not None:
        pf = int(m.group(1))
        for b in pipe.eth_ports:
            if b.kind == "pf" and b.pf == pf:
                return b.number
    names = ", ".join(f"eth{b.pf}" for b in pipe.eth_ports if b.kind == "pf")
    raise EthtoolError(
        f"Cannot get RX class rule count: {os.strerror(ENODEV)} "
        f"('{cmd.dev}'; the PF netdevs are {names}) ({cmd.where})",
        ENODEV,
    )


def ntuple_rules(pipe: Pipeline, port: int) -> dict[int, NtupleSpec]:
    """The kernel's filter list of `port` (hw->fdir_list_head): location -> spec."""
    out = {}
    for e in pipe.port_rules(port):
        spec = e.rule.extra.get(EXTRA_KEY)
        if isinstance(spec, NtupleSpec):
            out[e.rule_id] = spec
    return out


def table_size(pipe: Pipeline) -> int:
    """ice_get_fdir_cnt_all: the PF's guaranteed plus the best-effort entries."""
    fd: Any = pipe.engines["fd"]
    return int(fd.guaranteed_per_pf) + int(fd.best_effort)


def apply_ethtool(pipe: Pipeline, cmd: EthtoolCommand) -> list[str]:
    """Apply one ethtool command as ice does; ethtool's answer lines."""
    port = _port_of(pipe, cmd)
    have = ntuple_rules(pipe, port)
    if cmd.op == "delete":
        assert cmd.loc is not None
        # ice_del_fdir_ethtool -> ice_fdir_update_list_entry(NULL): -ENOENT if none
        if cmd.loc not in have:
            raise _refused(cmd, ENOENT, delete=True)
        pipe.destroy(port, cmd.loc)
        return []
    size = table_size(pipe)
    loc = cmd.loc
    if loc is None:
        # rmgr_find_empty_slot: the highest free location below the table size
        taken = {e.rule_id for e in pipe.port_rules(port)}
        loc = next((n for n in range(size - 1, -1, -1) if n not in taken), None)
        if loc is None:
            raise EthtoolError(
                f"rmgr: Cannot find appropriate slot to insert rule ({cmd.where})", ENOSPC
            )
    spec = _kernel_spec(cmd, loc)
    if cmd.context is not None:
        raise EthtoolError(
            f"context {cmd.context}: RSS contexts are not modelled ({cmd.where})", EOPNOTSUPP
        )
    # ice_fdir_set_hw_fltr_rule: the flow type's profile has another input set while
    # filters use it (the one this rule would replace counts: it is removed later)
    for other in have.values():
        if other.flow_type == spec.flow_type and other.input_set != spec.input_set:
            from .fdir import INPUT_SET_CONFLICT

            raise _refused(cmd, EINVAL, INPUT_SET_CONFLICT)
    if loc >= size:
        raise _refused(
            cmd,
            ENOSPC,
            "Failed to add filter. The number of ntuple filters or provided location "
            f"exceed max {size}.",
        )
    if spec.ring_cookie != RX_CLS_FLOW_DISC:
        # ice_set_fdir_input_set
        if spec.ring_cookie & RING_VF_MASK:
            raise _refused(
                cmd,
                EINVAL,
                "Failed to add filter. Flow director filters are not supported on VF queues.",
            )
        if spec.q_index >= pipe.pf_vsi(port).num_queues:
            raise _refused(cmd, EINVAL)
    # ice_fdir_is_dup_fltr: same flow type and values, unless it is this location's
    # filter with another queue
    for other in have.values():
        if other.flow_type == spec.flow_type and other.values == spec.values:
            if not (other.loc == loc and other.q_index != spec.q_index):
                raise _refused(cmd, EINVAL)
    rule = to_rule(cmd, spec, port)
    old = pipe.rule(port, loc)
    if old is not None:
        pipe.destroy(port, loc)  # ice_fdir_update_list_entry replaces it
    try:
        pipe.create(rule, rule_id=loc, engines=("fd",))
    except RuleError as err:
        if old is not None:
            pipe.create(old.rule, rule_id=loc, engines=(old.engine,))
        # what the Flow Director model refuses after the kernel's own checks (its
        # capacity, and the flow types whose PTYPEs overlap: ice_fdir_cross_prof_conflict
        # is DPDK's; the kernel has no such check, and what the profile TCAM then does
        # is not modelled): said as the model's, not as a kernel log line
        errno = getattr(err, "errno", EINVAL) or EINVAL
        out = _refused(cmd, errno)
        out.message += "\nFlow Director model: " + " ".join(err.message.split())
        raise out from None
    return [] if cmd.loc is not None else [f"Added rule with ID {loc}"]


# ---------------------------------------------------------------------------
# Text with both dialects


def parse_text(text: str, where: str = "<cmd>", protocols: Any = ()) -> list[Any]:
    """Commands of `text`: ethtool lines read here, every other line by the testpmd
    front end (``testpmd.parse_commands``), each with its own line number."""
    from .testpmd import parse_commands

    if "ethtool" not in text:
        return parse_commands(text, where, protocols)
    out: list[Any] = []
    lines = text.splitlines()
    chunk_start = 0
    for n, raw in enumerate(lines):
        if is_ethtool(raw.strip()) and not _continued(lines, n):
            if n > chunk_start:
                pad = "\n" * chunk_start
                out.extend(parse_commands(pad + "\n".join(lines[chunk_start:n]), where, protocols))
            out.append(parse_ethtool(raw, f"{where}:{n + 1}"))
            chunk_start = n + 1
    if chunk_start < len(lines):
        pad = "\n" * chunk_start
        out.extend(parse_commands(pad + "\n".join(lines[chunk_start:]), where, protocols))
    return out


def _continued(lines: list[str], n: int) -> bool:
    """Whether line n continues the line before it (a testpmd ``\\`` continuation)."""
    return n > 0 and lines[n - 1].split("#", 1)[0].rstrip().endswith("\\")

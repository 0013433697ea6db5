"""Explain one packet's way through the pipeline, in the style of OVS ofproto/trace."""

from __future__ import annotations

import re

from .engine import Verdict
from .pipeline import Decision, Pipeline, RuleEntry

BLOCK_TITLES = {"switch": "Switch", "acl": "ACL", "fd": "Flow Director", "rss": "RSS"}


def format_trace(pipe: Pipeline, decision: Decision, data: bytes, index: int = 0) -> str:
    res = decision.parse
    pkg = pipe.package
    names = {v: k for k, v in pkg.proto_ids.items()}
    out: list[str] = []
    out.append(f"Packet {index}: {len(data)} bytes")
    out.append(f"  {data[:64].hex()}{'...' if len(data) > 64 else ''}")
    out.append("")
    out.append(f"Parser ({pkg.title}; window {pipe.parser.window} bytes)")
    path = " -> ".join(f"{h.name}@{h.offset}+{h.length}" for h in res.headers)
    out.append(f"  path: {path}")
    out.append(
        f"  status: {res.status}, depth {res.depth}"
        + (f", flags: {' '.join(res.flags)}" if res.flags else "")
    )
    out.append("  po: " + " ".join(f"{names.get(p, p)}@{o}" for p, o in res.po))
    out.append(f"  PTYPE {res.ptype} {res.ptype_name}  (markers: {' '.join(res.markers)})")
    order = {"switch": 0, "acl": 1, "fd": 2, "rss": 3}
    verdicts = sorted(decision.verdicts, key=lambda v: order.get(v.block, 9))
    for block in ("acl", "fd"):
        if not any(v.block == block for v in verdicts):
            count = sum(1 for e in pipe.rules.values() if e.engine == block)
            verdicts.append(Verdict(block, note=f"no rule hit ({count} rule(s) loaded)"))
    verdicts.sort(key=lambda v: order.get(v.block, 9))
    for v in verdicts:
        out.append("")
        out.append(BLOCK_TITLES.get(v.block, v.block))
        if v.profile is not None:
            out.append(f"  profile {v.profile}")
        if v.words:
            out.append(
                "  field vector: "
                + " ".join(f"{_word_name(str(w), names)}={val:#06x}" for w, val in v.words)
            )
        if v.note:
            out.append(f"  {v.note}")
        if v.rule is not None:
            entry = pipe.rules.get(v.rule)
            text = entry.rule.source if entry is not None else ""
            out.append(f"  rule {v.rule} hit" + (f": {text}" if text else ""))
            if entry is not None:
                out.extend(_raw_lines(pipe, entry, res.ptype))
        act = v.action
        if v.block != "rss" and v.note.startswith("no rule hit"):
            continue
        if v.block != "rss":
            detail = act
            if v.vsi is not None:
                detail += f" vsi {pipe.device.vsi(v.vsi).name}"
            if v.queue is not None:
                detail += f" queue {v.queue}"
            if v.qgroup is not None:
                detail += f" queue group {v.qgroup[0]}..{v.qgroup[0] + v.qgroup[1] - 1}"
            if v.mark is not None:
                detail += f" mark {v.mark}"
            out.append(f"  verdict: {detail}")
    out.append("")
    if decision.drop:
        out.append(f"Final: drop ({decision.drop_reason})")
    else:
        out.append(
            f"Final: VSI {decision.vsi_name} (number {decision.vsi}), queue "
            f"{decision.vsi_queue} (device queue {decision.queue}); {decision.reason}"
        )
    if decision.mark is not None:
        out.append(f"       mark {decision.mark} (FDID in the Rx descriptor)")
    if decision.hashed:
        out.append(f"       RSS hash {decision.rss_hash:#010x}")
    else:
        out.append("       RSS: no profile hashes this packet")
    return "\n".join(out)


def _word_name(word: str, names: dict[int, str]) -> str:
    """'52@12' -> 'UDP_OF+12' (words print as proto_id@offset)."""
    m = re.fullmatch(r"(\d+)@(\d+)", word)
    if m is None:
        return word
    pid = int(m.group(1))
    return f"{names.get(pid, pid)}+{m.group(2)}"


def _raw_lines(pipe: Pipeline, entry: RuleEntry, ptype: int) -> list[str]:
    """For a rule on a profile's own protocol: the raw-pattern rule real ice takes."""
    from .rawform import profile_items, raw_forms, rule_text

    if not profile_items(pipe, entry.rule):
        return []
    forms, note = raw_forms(pipe, entry.rule, entry.match)
    form = next((f for f in forms if f.ptype == ptype), None)
    if form is None:
        return [f"  on the NIC: no raw-pattern form ({note or 'none for this PTYPE'})"]
    return [
        "  on the NIC (testpmd has no item for the profile's protocols; ice takes it raw):",
        f"    {rule_text(entry.rule, form)}",
    ]

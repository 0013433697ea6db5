"""Load Intel's parser-model golden records and compare them with ours.

The records come from ../shared/golden (copied into tests/data): the PTYPE and
protocol-offset list that Intel's own E810 parser model reports with the real
OS-default 1.3.30.0 and COMMS 1.3.37.0 DDP packages.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from e810pipe.parser import STATUS_NO_MATCH, Parser

DATA = Path(__file__).parent / "data"

CONFIGS = {
    "os": dict(profiles=["os-default"]),
    "os+ports": dict(profiles=["os-default"], vxlan_ports=[4789, 8472], geneve_ports=[6081]),
    "comms+ports": dict(profiles=["comms"], vxlan_ports=[4789, 8472], geneve_ports=[6081]),
    "os+ports+dvm": dict(
        profiles=["os-default"], vxlan_ports=[4789, 8472], geneve_ports=[6081], dvm=True
    ),
}


@cache
def parser_for(config: str) -> Parser:
    return Parser.load(**CONFIGS[config])  # type: ignore[arg-type]


def records(name: str) -> list[dict]:
    with open(DATA / name) as f:
        return [json.loads(line) for line in f]


@dataclass
class Agreement:
    total: Counter = field(default_factory=Counter)
    ptype: Counter = field(default_factory=Counter)
    po: Counter = field(default_factory=Counter)
    status: Counter = field(default_factory=Counter)
    misses: list[str] = field(default_factory=list)

    def rate(self, what: Counter) -> float:
        return sum(what.values()) / max(sum(self.total.values()), 1)

    def table(self) -> str:
        rows = [f"{'category':<22} {'records':>7} {'ptype':>8} {'po':>8} {'status':>8}"]
        for cat in sorted(self.total):
            n = self.total[cat]
            rows.append(
                f"{cat:<22} {n:>7} {self.ptype[cat] / n:>8.1%} {self.po[cat] / n:>8.1%} "
                f"{self.status[cat] / n:>8.1%}"
            )
        n = sum(self.total.values())
        rows.append(
            f"{'all':<22} {n:>7} {self.rate(self.ptype):>8.2%} {self.rate(self.po):>8.2%} "
            f"{self.rate(self.status):>8.2%}"
        )
        return "\n".join(rows)


def compare(recs: list[dict], key: str = "category") -> Agreement:
    """Compare every record; `po` leaves out the entries the record marks suspect."""
    ag = Agreement()
    for r in recs:
        res = parser_for(r["config"]).parse(bytes.fromhex(r["hex"]))
        cat = r[key] if key in r else r["category"]
        ag.total[cat] += 1
        suspect = set(r["suspect"])
        suspect_ids = {p[0] for p in r["po"] if p[1] in suspect}
        exp = {(p[0], p[2]) for p in r["po"] if p[1] not in suspect}
        got = {(pid, off) for pid, off in res.po if pid not in suspect_ids}
        ok_pt = res.ptype == r["ptype"]
        ok_po = exp == got
        ok_st = (r["status"] == -1) == (res.status == STATUS_NO_MATCH)
        ag.ptype[cat] += ok_pt
        ag.po[cat] += ok_po
        ag.status[cat] += ok_st
        if not (ok_pt and ok_po):
            ag.misses.append(
                f"{r['config']:<13} {r['label']}: ptype {r['ptype']} vs ours {res.ptype}; "
                f"missing {sorted(exp - got)} extra {sorted(got - exp)}"
            )
    return ag

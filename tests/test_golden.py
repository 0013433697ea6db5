"""Agreement with Intel's E810 parser model (tests/data/e810-parser-golden*.jsonl)."""

from __future__ import annotations

import pytest
from golden import CONFIGS, compare, records


@pytest.fixture(scope="module")
def golden() -> list[dict]:
    return records("e810-parser-golden.jsonl")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_golden_agreement_per_config(golden: list[dict], config: str) -> None:
    recs = [r for r in golden if r["config"] == config]
    assert recs, f"no golden records for {config}"
    ag = compare(recs)
    print(f"\n{config}: agreement with Intel's parser model\n{ag.table()}")
    print("\n".join(ag.misses))
    assert ag.rate(ag.ptype) >= 0.995
    assert ag.rate(ag.po) >= 0.99
    assert ag.rate(ag.status) >= 0.99


def test_golden_agreement_overall(golden: list[dict]) -> None:
    ag = compare(golden)
    print(f"\nall configurations\n{ag.table()}")
    assert len(golden) == 2052
    assert ag.rate(ag.ptype) >= 0.995
    assert ag.rate(ag.po) >= 0.99


def test_mutated_agreement() -> None:
    recs = records("e810-parser-golden-mutated.jsonl")
    for r in recs:  # category:kind, e.g. "gre:cut"
        r["kind"] = ":".join(r["label"].split(":")[:2])
    ag = compare(recs, key="kind")
    print(f"\nmalformed packets\n{ag.table()}")
    print("\n".join(ag.misses))
    assert len(recs) == 3600
    assert ag.rate(ag.ptype) >= 0.98
    assert ag.rate(ag.po) >= 0.97


def test_comparison_can_fail(golden: list[dict]) -> None:
    # The harness must notice a wrong answer: with no tunnel ports, the os+ports
    # VXLAN records disagree.
    vx = [dict(r, config="os") for r in golden if r["config"] == "os+ports"]
    vx = [r for r in vx if r["category"] == "vxlan"]
    ag = compare(vx)
    assert ag.rate(ag.ptype) < 0.5

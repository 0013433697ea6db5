"""DPDK DTS cases (tests/data/dts/, converted from DPDK DTS, BSD-3-Clause, Intel) run
through the testpmd console.

Every case must run to a verdict: no case may fail on something that is the
console's (a command it cannot read while testpmd can, a launch option, a port, an
unknown step or check). Whether the model steers as the NIC does is each engine's
conformance; the pass count per suite and the failing case ids are printed at the
end of the pytest run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e810pipe.conformance import CaseResult, load_cases, run_case, summary

DTS = Path(__file__).parent / "data" / "dts"
SUITES = sorted(DTS.glob("*.jsonl.gz"))
RESULTS: dict[str, list[CaseResult]] = {}

# The pass counts the model has reached, per suite: a count may rise (raise the floor
# with it), a drop is a regression in some engine. The failing cases left are listed
# with their reasons in the README's "DTS conformance".
FLOORS = {
    "iavf_fdir_protocol_agnostic_flow": 45,
    "iavf_rss_protocol_agnostic_flow": 12,
    "ice_advanced_iavf_rss": 215,
    "ice_advanced_iavf_rss_gtpu": 438,
    "ice_advanced_iavf_rss_vlan_esp_ah_l2tp_pfcp": 32,
    "ice_advanced_rss": 177,
    "ice_advanced_rss_gtpu": 478,
    "ice_advanced_rss_pppoe": 80,
    "ice_advanced_rss_vlan_esp_ah_l2tp_pfcp": 32,
    "ice_dcf_acl_filter": 33,
    "ice_dcf_switch_filter": 57,
    "ice_fdir": 236,
    "ice_fdir_protocol_agnostic_flow": 45,
    "ice_flow_priority": 27,
    "ice_iavf_fdir": 887,
    "ice_iavf_ip_fragment_rte_flow": 39,
    "ice_iavf_rss_configure": 11,
    "ice_ip_fragment_rte_flow": 50,
    "ice_limit_value_test": 5,
    "ice_rss_configure": 11,
    "ice_rss_protocol_agnostic_flow": 12,
    "ice_switch_filter": 146,
}

# What a failure may not be: the console's own shortcomings
CONSOLE_FAULTS = ("launch:", "setup ", "unknown step", "unknown check", "Traceback")


@pytest.mark.parametrize("path", SUITES, ids=[p.name.split(".")[0] for p in SUITES])
def test_every_case_runs_to_a_verdict(path: Path) -> None:
    cases = load_cases(path)
    results = [run_case(c) for c in cases]
    RESULTS[path.name.split(".")[0]] = results
    faults = [
        f"{r.id}: {r.reason}"
        for r in results
        if not r.passed and (r.reason.startswith(CONSOLE_FAULTS) or _refused_as_unreadable(r))
    ]
    assert faults == []
    passed = sum(r.passed for r in results)
    name = path.name.split(".")[0]
    assert passed >= FLOORS[name], (
        f"{name}: {passed}/{len(results)} passed, below the {FLOORS[name]} reached before"
    )


def _refused_as_unreadable(r: CaseResult) -> bool:
    """testpmd reads the command but the console answered Bad arguments."""
    return "was refused: Bad arguments" in r.reason


def test_every_suite_has_a_floor() -> None:
    assert sorted(FLOORS) == sorted(p.name.split(".")[0] for p in SUITES)


def test_summary_names_each_failure() -> None:
    results = [
        CaseResult("a/b", "s", True),
        CaseResult("a/c", "s", False, 2, "expected mark 1"),
    ]
    assert summary(results).splitlines() == [
        "s: 1/2 passed (50.0%)",
        "  FAIL a/c (step 2): expected mark 1",
    ]


def pytest_terminal_summary_lines() -> list[str]:
    lines = []
    for rs in RESULTS.values():
        lines.extend(summary(rs).splitlines())
    return lines

"""pytest plugin: scenario files as tests, and PTF-style fixtures for Python tests.

Installed with e810pipe (entry point ``pytest11``), so ``pytest scenarios/``
collects every ``*.scenario.yaml`` file: one test per expectation, whose failure
shows expected against actual and the trace of the first failing packet.

Fixtures:
    e810_pipeline   a Pipeline (OS-default, one PF with 16 queues); override the
                    fixture to load other profiles, rules or devices.
    send            send(packet) -> Decision: run bytes or a Scapy packet through it.
    verify_packet   verify_packet(packet, queue=..., vsi=..., drop=..., mark=...):
                    check the decision for a packet sent before (as PTF does).
    verify_no_other_packets
                    fail if a packet that reached a queue was not verified.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .device import Device
from .package import load_package
from .pipeline import Decision, Pipeline
from .scenario import Outcome, Scenario, load_scenario

SUFFIX = ".scenario.yaml"


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name.endswith(SUFFIX):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ScenarioFile(pytest.File):
    """One scenario file; its expectations are the test items."""

    _scenario: Scenario | None = None
    _outcomes: list[Outcome] | None = None

    def load(self) -> tuple[Scenario, list[Outcome]]:
        if self._scenario is None:
            self._scenario = load_scenario(self.path)
            self._outcomes = self._scenario.run()
        assert self._outcomes is not None
        return self._scenario, self._outcomes

    def collect(self) -> Iterator[pytest.Item]:
        try:
            _, outcomes = self.load()
        except Exception as err:  # a located error in the scenario itself
            yield ScenarioError.from_parent(self, name="load", error=err)
            return
        for i, o in enumerate(outcomes):
            yield ScenarioItem.from_parent(self, name=f"{i}: {o.expectation}", index=i)


class ScenarioError(pytest.Item):
    def __init__(self, *, error: Exception, **kw: Any) -> None:
        super().__init__(**kw)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        return f"scenario file is invalid: {self.error}"

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"scenario {self.path.name}"


class ScenarioFailure(AssertionError):
    pass


class ScenarioItem(pytest.Item):
    def __init__(self, *, index: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.index = index

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, ScenarioFile)
        sc, outcomes = parent.load()
        o = outcomes[self.index]
        if not o.passed:
            lines = [
                f"{o.expectation}  (at {o.where})",
                f"expected: {o.expected}",
                f"actual:   {o.actual}",
            ]
            if o.failing is not None:
                lines.append(f"first failing packet: {o.failing} ({sc.sent[o.failing].origin})")
                lines.append("")
                lines.append(sc.trace(o.failing))
            raise ScenarioFailure("\n".join(lines))

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.path.name}::{self.name}"


# ---------------------------------------------------------------- fixtures


def _bytes(pkt: Any) -> bytes:
    return bytes(pkt)


@pytest.fixture()
def e810_pipeline() -> Pipeline:
    """The pipeline the send/verify fixtures use; override it in a conftest.py."""
    return Pipeline(load_package(["os-default"]), Device.build(rxq=16))


class _Sent:
    def __init__(self) -> None:
        self.items: list[tuple[bytes, Decision, bool]] = []


@pytest.fixture()
def _e810_sent() -> _Sent:
    return _Sent()


@pytest.fixture()
def send(e810_pipeline: Pipeline, _e810_sent: _Sent) -> Callable[[Any], Decision]:
    def _send(pkt: Any) -> Decision:
        data = _bytes(pkt)
        dec = e810_pipeline.process(data)
        _e810_sent.items.append((data, dec, False))
        return dec

    return _send


@pytest.fixture()
def verify_packet(_e810_sent: _Sent) -> Callable[..., Decision]:
    def _verify(pkt: Any, **expected: Any) -> Decision:
        data = _bytes(pkt)
        for i, (d, dec, seen) in enumerate(_e810_sent.items):
            if d == data and not seen:
                _e810_sent.items[i] = (d, dec, True)
                actual = {
                    "queue": dec.queue,
                    "vsi": dec.vsi_name,
                    "vsi_queue": dec.vsi_queue,
                    "drop": dec.drop,
                    "mark": dec.mark,
                    "ptype": dec.ptype,
                }
                for key, want in expected.items():
                    if key not in actual:
                        raise TypeError(f"verify_packet: unknown expectation '{key}'")
                    assert actual[key] == want, (
                        f"packet {i}: expected {key} {want}, got {actual[key]}; "
                        f"decision: {dec.reason or dec.drop_reason}"
                    )
                return dec
        raise AssertionError("verify_packet: this packet was not sent (or already verified)")

    return _verify


@pytest.fixture()
def verify_no_other_packets(_e810_sent: _Sent) -> Callable[[], None]:
    def _verify() -> None:
        left = [i for i, (_, dec, seen) in enumerate(_e810_sent.items) if not seen and not dec.drop]
        assert not left, f"packets {left} reached a queue but were not verified"

    return _verify

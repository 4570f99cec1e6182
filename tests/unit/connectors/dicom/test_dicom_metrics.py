"""The DICOM operation recorder: counts by outcome, response times, the error rate
window, and the ``@recorded`` decorator the SCU functions wear."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from pacsync.connectors.dicom import metrics
from pacsync.connectors.dicom.metrics import Operation, Outcome, Recorder, outcome_of, recorded
from pacsync.domain.node_health import ErrorRate
from pacsync.errors import (
    AssociationRejected,
    ConnectionTimeout,
    DimseFailure,
    InvalidDicom,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def registered(recorder: Recorder) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    metrics.register(registry, recorder)
    return registry


def test_operations_are_counted_by_node_operation_and_outcome() -> None:
    recorder = Recorder()
    recorder.record("pacs", Operation.ECHO, Outcome.SUCCESS, 0.004)
    recorder.record("pacs", Operation.ECHO, Outcome.SUCCESS, 0.006)
    recorder.record("pacs", Operation.FIND, Outcome.UNREACHABLE, 1.0)
    registry = registered(recorder)

    def count(operation: str, outcome: str) -> float | None:
        labels = {"node": "pacs", "operation": operation, "outcome": outcome}
        return registry.get_sample_value("pacsync_dicom_operations_total", labels)

    assert count("echo", "success") == 2
    assert count("find", "unreachable") == 1
    assert count("find", "success") is None
    labels = {"node": "pacs", "operation": "echo"}
    assert registry.get_sample_value("pacsync_dicom_operation_seconds_count", labels) == 2
    assert registry.get_sample_value(
        "pacsync_dicom_operation_seconds_sum", labels
    ) == pytest.approx(0.01)
    assert (
        registry.get_sample_value(
            "pacsync_dicom_operation_seconds_bucket", {**labels, "le": "0.005"}
        )
        == 1
    )
    text = generate_latest(registry).decode()
    assert "# TYPE pacsync_dicom_operation_seconds histogram" in text


def test_the_error_rate_looks_at_the_last_operations_within_the_window() -> None:
    clock = Clock()
    recorder = Recorder(window=4, window_s=60, clock=clock)
    assert recorder.error_rate("pacs") == ErrorRate(0, 0)
    recorder.record("pacs", Operation.FIND, Outcome.FAILURE, 0.1)
    recorder.record("pacs", Operation.FIND, Outcome.UNREACHABLE, 0.1)
    recorder.record("pacs", Operation.ECHO, Outcome.ERROR, 0.0)  # not the node's doing
    recorder.record("other", Operation.ECHO, Outcome.FAILURE, 0.1)
    assert recorder.error_rate("pacs") == ErrorRate(2, 2)
    for _ in range(3):
        recorder.record("pacs", Operation.ECHO, Outcome.SUCCESS, 0.01)
    assert recorder.error_rate("pacs") == ErrorRate(4, 1)  # only the last 4
    clock.now += 61
    assert recorder.error_rate("pacs") == ErrorRate(0, 0)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, Outcome.SUCCESS),
        (ConnectionTimeout("no answer"), Outcome.UNREACHABLE),
        (DimseFailure("0xA700"), Outcome.FAILURE),
        (AssociationRejected("called AE"), Outcome.FAILURE),
        (InvalidDicom("not DICOM"), Outcome.ERROR),
        (RuntimeError("bug"), Outcome.ERROR),
    ],
)
def test_outcomes_of_errors(error: BaseException | None, outcome: Outcome) -> None:
    assert outcome_of(error) is outcome


@dataclass
class Node:
    name: str


@dataclass
class HeldSession:
    node: Node


def test_recorded_counts_calls_on_nodes_and_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(metrics, "RECORDER", recorder)

    @recorded(Operation.STORE, failed=lambda result: result == "some failed")
    def operation(node: object, answer: str) -> str:
        if answer == "drop":
            raise ConnectionTimeout("dropped")
        return answer

    assert operation(Node("a"), "ok") == "ok"
    assert operation(HeldSession(Node("a")), "some failed") == "some failed"
    with pytest.raises(ConnectionTimeout):
        operation(Node("a"), "drop")
    registry = registered(recorder)
    for outcome in ("success", "failure", "unreachable"):
        labels = {"node": "a", "operation": "store", "outcome": outcome}
        assert registry.get_sample_value("pacsync_dicom_operations_total", labels) == 1
    assert recorder.error_rate("a") == ErrorRate(3, 2)

"""A DICOM node's retry policy: transient errors tried again with growing waits, terminal
ones never, an operation on a caller's session once."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from pacsync.connectors.dicom import scu
from pacsync.connectors.dicom.metrics import RECORDER
from pacsync.connectors.dicom.retry import attempt, retried
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import (
    AssociationRejected,
    ConnectionTimeout,
    DimseFailure,
    InvalidDicom,
    PacsyncError,
)


def node(attempts: int = 3, backoff_s: float = 2.0, name: str = "pacs") -> DicomNode:
    retry = {"attempts": attempts, "backoff_s": backoff_s}
    return DicomNode.of(name, "dicom://PACS@127.0.0.1:11112", {"retry": retry})


class Flaky:
    """Fails with the given errors in turn, then answers ``"answer"``."""

    def __init__(self, *errors: PacsyncError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "answer"


class Sleeps:
    def __init__(self) -> None:
        self.waited: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


def refused() -> ConnectionTimeout:
    return ConnectionTimeout("connection refused", connection="pacs")


def run(call: Callable[[], str], target: DicomNode, sleeps: Sleeps) -> str:
    return attempt(call, target, "C-ECHO", sleep=sleeps, rand=lambda: 0.5)


def test_transient_errors_are_tried_again_after_growing_waits() -> None:
    flaky, sleeps = Flaky(refused(), refused()), Sleeps()
    assert run(flaky, node(attempts=3, backoff_s=2.0), sleeps) == "answer"
    assert flaky.calls == 3
    assert sleeps.waited == [2.0, 4.0]  # rand 0.5: the jitter adds nothing


def test_the_last_transient_error_is_raised_when_the_attempts_run_out() -> None:
    last = ConnectionTimeout("aborted the association", connection="pacs")
    flaky, sleeps = Flaky(refused(), last, refused()), Sleeps()
    with pytest.raises(ConnectionTimeout) as raised:
        run(flaky, node(attempts=2), sleeps)
    assert raised.value is last
    assert flaky.calls == 2
    assert len(sleeps.waited) == 1


def test_one_attempt_means_no_retry() -> None:
    flaky, sleeps = Flaky(refused()), Sleeps()
    with pytest.raises(ConnectionTimeout):
        run(flaky, node(attempts=1), sleeps)
    assert flaky.calls == 1
    assert sleeps.waited == []


@pytest.mark.parametrize(
    "error",
    [
        AssociationRejected("rejected permanently by the service user"),
        DimseFailure("answered C-MOVE with 0xA801 MOVE_DESTINATION_UNKNOWN"),
        InvalidDicom("not a DICOM file"),
    ],
    ids=["rejected", "dimse-failure", "invalid-dicom"],
)
def test_terminal_errors_are_never_tried_again(error: PacsyncError) -> None:
    flaky, sleeps = Flaky(error), Sleeps()
    with pytest.raises(type(error)):
        run(flaky, node(attempts=5), sleeps)
    assert flaky.calls == 1
    assert sleeps.waited == []


def test_a_terminal_error_after_a_transient_one_ends_the_retries() -> None:
    flaky, sleeps = Flaky(refused(), DimseFailure("failed"), refused()), Sleeps()
    with pytest.raises(DimseFailure):
        run(flaky, node(attempts=5), sleeps)
    assert flaky.calls == 2


class HeldSession:
    """Stands for a caller's session: it holds a node but is not one."""

    def __init__(self, target: DicomNode) -> None:
        self.node = target


def test_an_operation_on_a_callers_session_runs_once() -> None:
    calls: list[object] = []

    @retried("C-ECHO")
    def operation(target: DicomNode | HeldSession) -> str:
        calls.append(target)
        raise refused()

    with pytest.raises(ConnectionTimeout):
        operation(HeldSession(node(attempts=3, backoff_s=0)))
    assert len(calls) == 1
    with pytest.raises(ConnectionTimeout):
        operation(node(attempts=3, backoff_s=0))
    assert len(calls) == 4


def test_echo_to_a_refusing_port_is_attempted_as_the_node_says() -> None:
    with socket.socket() as held:  # bound, never listening: connections are refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        target = DicomNode.of(
            "retry-refused",
            f"dicom://PACS@127.0.0.1:{port}",
            {"retry": {"attempts": 3, "backoff_s": 0}, "timeouts": {"connect": 2}},
        )
        before = RECORDER.error_rate(target.name).operations
        with pytest.raises(ConnectionTimeout):
            scu.echo(target)
    assert RECORDER.error_rate(target.name).operations - before == 3

"""The circuit breaker over the in-memory store, with a clock the tests move."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

import pytest

from pacsync.connectors.memory.circuits import MemoryCircuitStore
from pacsync.domain.circuit import BreakerPolicy, CircuitState
from pacsync.errors import (
    CircuitOpen,
    ConnectionTimeout,
    DataValidationError,
    PacsyncError,
    SchemaMismatch,
    StoreUnavailable,
)
from pacsync.jobs.breaker import CircuitBreaker

T0 = dt.datetime(2024, 5, 1, 10, 0, 0)
POLICY = BreakerPolicy(failure_threshold=3, cool_down_s=30.0, probe_timeout_s=300.0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryCircuitStore:
    return MemoryCircuitStore()


@pytest.fixture
def breaker(store: MemoryCircuitStore, clock: Clock) -> CircuitBreaker:
    return CircuitBreaker(store, POLICY, clock)


def trip(breaker: CircuitBreaker, connection: str = "legacy", times: int = 3) -> None:
    for n in range(times):
        breaker.failed(connection, ConnectionTimeout(f"{connection}: timed out ({n + 1})"))


def test_a_connection_never_seen_is_admitted_and_leaves_no_row(
    breaker: CircuitBreaker, store: MemoryCircuitStore
) -> None:
    assert breaker.before_call("legacy") is False
    breaker.succeeded("legacy")
    assert store.circuits == {}
    assert breaker.states() == []


def test_the_circuit_opens_after_the_threshold_of_transient_failures(
    breaker: CircuitBreaker,
) -> None:
    trip(breaker, times=2)
    assert breaker.before_call("legacy") is False
    trip(breaker, times=1)
    with pytest.raises(CircuitOpen) as caught:
        breaker.before_call("legacy")
    error = caught.value
    assert error.code == "PACS-009"
    assert error.transient
    assert error.message.startswith("connection 'legacy': circuit open after 3 consecutive")
    assert "PACS-001 legacy: timed out (1)" in error.message
    assert "retry after 2024-05-01 10:00:30 UTC" in error.hint
    assert "`pacsync status`" in error.hint


def test_terminal_errors_say_nothing_about_the_endpoint_and_are_not_counted(
    breaker: CircuitBreaker, store: MemoryCircuitStore
) -> None:
    for error in (DataValidationError("bad row"), SchemaMismatch("no column"), CircuitOpen("x")):
        for _ in range(5):
            breaker.failed("legacy", error)
    assert breaker.before_call("legacy") is False
    assert store.circuits == {}


def test_a_success_restarts_the_count_of_consecutive_failures(
    breaker: CircuitBreaker, store: MemoryCircuitStore
) -> None:
    trip(breaker, times=2)
    breaker.succeeded("legacy")
    trip(breaker, times=2)
    assert store.circuits["legacy"].failures == 2
    assert breaker.before_call("legacy") is False


def test_after_the_cool_down_exactly_one_caller_probes(
    breaker: CircuitBreaker, clock: Clock, store: MemoryCircuitStore
) -> None:
    trip(breaker)
    clock.advance(29)
    with pytest.raises(CircuitOpen):
        breaker.before_call("legacy")
    clock.advance(1)
    assert breaker.before_call("legacy") is True
    assert store.circuits["legacy"].state == "half_open"
    with pytest.raises(CircuitOpen, match="a probe call is in flight") as caught:
        breaker.before_call("legacy")
    assert "retry after 2024-05-01 10:05:30 UTC" in caught.value.hint


def test_a_successful_probe_closes_the_circuit(
    breaker: CircuitBreaker, clock: Clock, store: MemoryCircuitStore
) -> None:
    trip(breaker)
    clock.advance(30)
    assert breaker.before_call("legacy") is True
    breaker.succeeded("legacy")
    assert store.circuits["legacy"] == CircuitState("legacy")
    assert [breaker.before_call("legacy") for _ in range(3)] == [False, False, False]


def test_a_failed_probe_opens_the_circuit_for_another_cool_down(
    breaker: CircuitBreaker, clock: Clock, store: MemoryCircuitStore
) -> None:
    trip(breaker)
    clock.advance(30)
    assert breaker.before_call("legacy") is True
    clock.advance(5)
    breaker.failed("legacy", ConnectionTimeout("legacy: still down"))
    state = store.circuits["legacy"]
    assert (state.state, state.failures, state.opened_at) == (
        "open",
        4,
        T0 + dt.timedelta(seconds=35),
    )
    clock.advance(29)
    with pytest.raises(CircuitOpen, match="after 4 consecutive failures"):
        breaker.before_call("legacy")
    clock.advance(1)
    assert breaker.before_call("legacy") is True


def test_a_probe_whose_worker_died_is_replaced_after_the_probe_timeout(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    clock.advance(30)
    assert breaker.before_call("legacy") is True
    clock.advance(299)
    with pytest.raises(CircuitOpen):
        breaker.before_call("legacy")
    clock.advance(1)
    assert breaker.before_call("legacy") is True


def test_a_probe_ending_in_a_terminal_error_frees_the_probe_for_the_next_call(
    breaker: CircuitBreaker, clock: Clock, store: MemoryCircuitStore
) -> None:
    trip(breaker)
    clock.advance(30)
    assert breaker.before_call("legacy") is True
    breaker.failed("legacy", DataValidationError("bad row"))
    assert store.circuits["legacy"].state == "half_open"
    assert store.circuits["legacy"].failures == 3
    assert breaker.before_call("legacy") is True


def test_two_breakers_sharing_the_store_agree(store: MemoryCircuitStore, clock: Clock) -> None:
    one, two = CircuitBreaker(store, POLICY, clock), CircuitBreaker(store, POLICY, clock)
    trip(one, times=2)
    trip(two, times=1)
    with pytest.raises(CircuitOpen):
        one.before_call("legacy")
    clock.advance(30)
    assert two.before_call("legacy") is True
    with pytest.raises(CircuitOpen):
        one.before_call("legacy")


class Interleaving(MemoryCircuitStore):
    """Runs ``meanwhile`` once, between a caller's read and its compare-and-set."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], None] | None = None

    def compare_and_set(self, expected: CircuitState | None, new: CircuitState) -> bool:
        meanwhile, self.meanwhile = self.meanwhile, None
        if meanwhile is not None:
            meanwhile()
        return super().compare_and_set(expected, new)


def test_the_caller_losing_the_race_for_the_probe_is_refused(clock: Clock) -> None:
    store = Interleaving()
    one, two = CircuitBreaker(store, POLICY, clock), CircuitBreaker(store, POLICY, clock)
    trip(one)
    clock.advance(30)
    probes: list[bool] = []
    store.meanwhile = lambda: probes.append(two.before_call("legacy"))
    with pytest.raises(CircuitOpen, match="a probe call is in flight"):
        one.before_call("legacy")
    assert probes == [True]


def test_failures_reported_concurrently_are_all_counted(clock: Clock) -> None:
    store = Interleaving()
    one, two = CircuitBreaker(store, POLICY, clock), CircuitBreaker(store, POLICY, clock)
    store.meanwhile = lambda: two.failed("legacy", ConnectionTimeout("b"))
    one.failed("legacy", ConnectionTimeout("a"))
    assert store.circuits["legacy"].failures == 2


def race_for_the_probe(breakers: list[CircuitBreaker], connection: str) -> list[str]:
    """Every breaker calls ``before_call`` at once from its own thread; the outcomes."""
    start = threading.Barrier(len(breakers))
    outcomes: list[str] = []

    def call(breaker: CircuitBreaker) -> None:
        start.wait()
        try:
            outcomes.append("probe" if breaker.before_call(connection) else "call")
        except CircuitOpen:
            outcomes.append("refused")

    threads = [threading.Thread(target=call, args=(b,)) for b in breakers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


class SlowReads(MemoryCircuitStore):
    """Reads take a millisecond, so racing threads all read before any of them writes."""

    def get(self, connection: str) -> CircuitState | None:
        state = super().get(connection)
        time.sleep(0.001)
        return state


def test_threads_racing_for_the_probe_yield_exactly_one(clock: Clock) -> None:
    store = SlowReads()
    workers = 8
    breakers = [CircuitBreaker(store, POLICY, clock) for _ in range(workers)]
    for round_ in range(20):
        store.reset("legacy")
        trip(breakers[0])
        clock.advance(30)
        outcomes = race_for_the_probe(breakers, "legacy")
        assert outcomes == ["probe"] + ["refused"] * (workers - 1), f"round {round_}"


def test_guard_counts_the_outcome_of_the_block_and_re_raises(
    breaker: CircuitBreaker, store: MemoryCircuitStore
) -> None:
    with breaker.guard("legacy"):
        pass
    for _ in range(2):
        with pytest.raises(ConnectionTimeout), breaker.guard("legacy"):
            raise ConnectionTimeout("legacy: timed out")
    with pytest.raises(DataValidationError), breaker.guard("legacy"):
        raise DataValidationError("bad row")
    with pytest.raises(KeyError), breaker.guard("legacy"):
        raise KeyError("bug")
    assert store.circuits["legacy"].failures == 2
    with pytest.raises(ConnectionTimeout), breaker.guard("legacy"):
        raise ConnectionTimeout("legacy: timed out")
    ran: list[str] = []
    with pytest.raises(CircuitOpen), breaker.guard("legacy"):
        ran.append("block")
    assert ran == []


def test_guard_closes_the_circuit_when_the_probe_succeeds(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    clock.advance(30)
    with breaker.guard("legacy"), pytest.raises(CircuitOpen):
        breaker.before_call("legacy")
    assert breaker.states() == [CircuitState("legacy")]


def test_guard_frees_the_probe_when_the_block_fails_for_another_reason(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    trip(breaker)
    clock.advance(30)
    with pytest.raises(RuntimeError), breaker.guard("legacy"):
        raise RuntimeError("not about the endpoint")
    assert breaker.before_call("legacy") is True


class Unreachable(MemoryCircuitStore):
    """A store that can still be read but no longer written."""

    def compare_and_set(self, expected: CircuitState | None, new: CircuitState) -> bool:
        raise StoreUnavailable("store: connection refused")


def test_guard_re_raises_the_blocks_error_when_the_store_cannot_record_it(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    breaker = CircuitBreaker(Unreachable(), POLICY, clock)
    with (
        caplog.at_level(logging.WARNING, "pacsync.jobs.breaker"),
        pytest.raises(ConnectionTimeout, match="legacy: timed out"),
        breaker.guard("legacy"),
    ):
        raise ConnectionTimeout("legacy: timed out")
    assert "failure not recorded: PACS-201 store: connection refused" in caplog.text


class AlwaysLosing(MemoryCircuitStore):
    """A store on which every compare-and-set loses (others always write first)."""

    def compare_and_set(self, expected: CircuitState | None, new: CircuitState) -> bool:
        return False


def test_a_change_that_keeps_losing_is_dropped_with_a_warning(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    store = AlwaysLosing()
    breaker = CircuitBreaker(store, POLICY, clock)
    with caplog.at_level(logging.WARNING, "pacsync.jobs.breaker"):
        breaker.failed("legacy", ConnectionTimeout("x"))
    assert "circuit of legacy: change dropped after 16 attempts" in caplog.text
    assert store.circuits == {}


def test_pick_endpoint_falls_back_while_the_primary_is_open_and_returns_after_recovery(
    breaker: CircuitBreaker, clock: Clock
) -> None:
    assert breaker.pick_endpoint("legacy", "replica") == "legacy"
    trip(breaker, "legacy")
    assert breaker.pick_endpoint("legacy", "replica") == "replica"
    assert breaker.pick_endpoint("legacy", None) == "legacy"
    clock.advance(30)
    assert breaker.pick_endpoint("legacy", "replica") == "legacy"
    with breaker.guard(breaker.pick_endpoint("legacy", "replica")):
        assert breaker.pick_endpoint("legacy", "replica") == "replica"
    assert breaker.pick_endpoint("legacy", "replica") == "legacy"
    assert breaker.states() == [CircuitState("legacy")]


def test_pick_endpoint_keeps_the_primary_when_the_fallback_is_open_too(
    breaker: CircuitBreaker,
) -> None:
    trip(breaker, "legacy")
    trip(breaker, "replica")
    assert breaker.pick_endpoint("legacy", "replica") == "legacy"
    with pytest.raises(CircuitOpen, match="connection 'legacy'"):
        breaker.before_call(breaker.pick_endpoint("legacy", "replica"))


def test_states_list_every_circuit_and_reset_closes_one(breaker: CircuitBreaker) -> None:
    trip(breaker, "replica", times=1)
    trip(breaker, "legacy")
    assert [(s.connection, s.state, s.failures) for s in breaker.states()] == [
        ("legacy", "open", 3),
        ("replica", "closed", 1),
    ]
    breaker.reset("legacy")
    assert breaker.before_call("legacy") is False
    assert [s.connection for s in breaker.states()] == ["replica"]


def test_errors_of_any_kind_are_pacsync_errors_with_a_hint() -> None:
    error: PacsyncError = CircuitOpen("connection 'legacy': circuit open")
    assert error.as_dict() == {
        "code": "PACS-009",
        "message": "connection 'legacy': circuit open",
        "hint": "Retry after the cool-down; `pacsync status` shows circuit states.",
        "transient": True,
        "connection": None,
    }

"""The circuit store's compare-and-set contract, on SQLite and PostgreSQL (and the fake).

Each racing worker gets its own engine, as separate processes would: the only
thing they share is the database.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pacsync.connectors.memory.circuits import MemoryCircuitStore
from pacsync.connectors.sql.engine import make_engine
from pacsync.db.circuits import CircuitStore
from pacsync.db.store import open_store
from pacsync.domain.circuit import BreakerPolicy, CircuitState
from pacsync.errors import CircuitOpen, ConnectionTimeout, SchemaMismatch
from pacsync.jobs.breaker import CircuitBreaker
from pacsync.ports import CircuitStore as CircuitStorePort

pytestmark = pytest.mark.integration

T0 = dt.datetime(2024, 5, 1, 10, 0, 0, 123456)
OPEN = CircuitState("legacy", "open", 5, T0, None, "PACS-001 legacy: timed out")
WORKERS = 6

#: A new handle on the same store, as another worker process would open it.
Opener = Callable[[], CircuitStorePort]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "memory":
        shared = MemoryCircuitStore()
        yield lambda: shared
        return
    url = f"sqlite:///{tmp_path / 'store.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
    engines: list[Engine] = []

    def open_one() -> CircuitStorePort:
        engines.append(open_store(url))
        return CircuitStore(engines[-1])

    yield open_one
    for engine in engines:
        engine.dispose()


@pytest.fixture
def store(opener: Opener) -> CircuitStorePort:
    return opener()


def test_no_row_reads_as_none_and_a_first_write_inserts_it(store: CircuitStorePort) -> None:
    assert store.get("legacy") is None
    assert store.all() == []
    assert store.compare_and_set(None, OPEN) is True
    assert store.get("legacy") == OPEN
    assert store.compare_and_set(None, replace(OPEN, failures=9)) is False
    assert store.get("legacy") == OPEN


def test_a_write_from_the_state_as_read_succeeds(store: CircuitStorePort) -> None:
    assert store.compare_and_set(None, OPEN)
    probing = replace(OPEN, state="half_open", probe_started_at=T0 + dt.timedelta(seconds=30))
    assert store.compare_and_set(OPEN, probing) is True
    assert store.get("legacy") == probing
    assert store.compare_and_set(probing, CircuitState("legacy")) is True
    assert store.get("legacy") == CircuitState("legacy")


@pytest.mark.parametrize(
    "stale",
    [
        replace(OPEN, state="closed"),
        replace(OPEN, failures=4),
        replace(OPEN, opened_at=None),
        replace(OPEN, opened_at=T0 + dt.timedelta(microseconds=1)),
        replace(OPEN, probe_started_at=T0),
    ],
    ids=["state", "failures", "opened_at-null", "opened_at", "probe_started_at"],
)
def test_a_write_from_a_stale_state_loses_and_changes_nothing(
    store: CircuitStorePort, stale: CircuitState
) -> None:
    assert store.compare_and_set(None, OPEN)
    assert store.compare_and_set(stale, CircuitState("legacy")) is False
    assert store.get("legacy") == OPEN


def test_null_times_compare_equal_to_null(store: CircuitStorePort) -> None:
    failing = CircuitState("legacy", "closed", 1, None, None, "PACS-001 a")
    assert store.compare_and_set(None, failing)
    assert store.compare_and_set(failing, replace(failing, failures=2)) is True
    assert store.compare_and_set(replace(failing, opened_at=T0), failing) is False
    assert store.get("legacy") == replace(failing, failures=2)


def test_last_error_is_written_but_not_compared(store: CircuitStorePort) -> None:
    assert store.compare_and_set(None, OPEN)
    assert store.compare_and_set(replace(OPEN, last_error="other"), replace(OPEN, failures=6))
    assert store.get("legacy") == replace(OPEN, failures=6)


def test_a_write_for_a_missing_row_loses(store: CircuitStorePort) -> None:
    assert store.compare_and_set(OPEN, CircuitState("legacy")) is False
    assert store.get("legacy") is None


def test_a_write_must_concern_the_expected_connection(store: CircuitStorePort) -> None:
    with pytest.raises(ValueError, match="'legacy' is not 'replica'"):
        store.compare_and_set(OPEN, replace(OPEN, connection="replica"))


def test_all_lists_circuits_by_connection_and_reset_forgets_one(store: CircuitStorePort) -> None:
    for name in ("replica", "legacy", "archive"):
        assert store.compare_and_set(None, replace(OPEN, connection=name))
    assert [s.connection for s in store.all()] == ["archive", "legacy", "replica"]
    store.reset("legacy")
    store.reset("never-seen")
    assert store.get("legacy") is None
    assert [s.connection for s in store.all()] == ["archive", "replica"]
    assert store.compare_and_set(None, OPEN) is True


def run_at_once(tasks: list[Callable[[], str]]) -> list[str]:
    """Run every task in its own thread, released together; their results, sorted."""
    start = threading.Barrier(len(tasks))
    results: list[str] = []
    errors: list[BaseException] = []

    def run(task: Callable[[], str]) -> None:
        start.wait()
        try:
            results.append(task())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return sorted(results)


def test_of_workers_writing_from_the_same_state_exactly_one_wins(opener: Opener) -> None:
    stores = [opener() for _ in range(WORKERS)]
    assert stores[0].compare_and_set(None, OPEN)

    def write(n: int) -> Callable[[], str]:
        new = replace(OPEN, state="half_open", probe_started_at=T0 + dt.timedelta(seconds=n))
        return lambda: "won" if stores[n].compare_and_set(OPEN, new) else "lost"

    assert run_at_once([write(n) for n in range(WORKERS)]) == ["lost"] * (WORKERS - 1) + ["won"]
    state = stores[0].get("legacy")
    assert state is not None
    assert state.state == "half_open"


def test_of_workers_creating_the_row_at_once_exactly_one_wins(opener: Opener) -> None:
    stores = [opener() for _ in range(WORKERS)]

    def create(n: int) -> Callable[[], str]:
        new = CircuitState("legacy", "closed", 1, None, None, f"worker {n}")
        return lambda: "won" if stores[n].compare_and_set(None, new) else "lost"

    assert run_at_once([create(n) for n in range(WORKERS)]) == ["lost"] * (WORKERS - 1) + ["won"]


def test_breakers_of_racing_workers_admit_exactly_one_probe(opener: Opener) -> None:
    policy = BreakerPolicy(failure_threshold=2, cool_down_s=30)
    now = [T0]
    breakers = [CircuitBreaker(opener(), policy, lambda: now[0]) for _ in range(WORKERS)]
    for breaker in breakers[:2]:
        breaker.failed("legacy", ConnectionTimeout("legacy: timed out"))
    with pytest.raises(CircuitOpen, match="circuit open after 2 consecutive failures"):
        breakers[0].before_call("legacy")
    now[0] = T0 + dt.timedelta(seconds=30)

    def call(breaker: CircuitBreaker) -> Callable[[], str]:
        def attempt() -> str:
            try:
                return "probe" if breaker.before_call("legacy") else "call"
            except CircuitOpen:
                return "refused"

        return attempt

    outcomes = run_at_once([call(b) for b in breakers])
    assert outcomes == ["probe"] + ["refused"] * (WORKERS - 1)
    breakers[-1].succeeded("legacy")
    assert breakers[0].states() == [CircuitState("legacy")]


def test_store_errors_become_pacsync_errors(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(SchemaMismatch, match="store: no such table: circuit_breakers"):
            CircuitStore(engine).get("legacy")
    finally:
        engine.dispose()

"""The sync job workflow: steps per entity, retries on transient errors, parking."""

from __future__ import annotations

from typing import Any

from pacsync.connectors.memory.jobs import MemoryJobContext
from pacsync.errors import ConnectionTimeout, JobInterrupted, SchemaMismatch, StoreUnavailable
from pacsync.jobs.request import JobRequest
from pacsync.jobs.sync_job import BUSY_WAIT_S, run_sync_job

ENTITIES = ["properties", "owners", "valuations"]


class FakeSteps:
    """Scripted entity outcomes: ``failures[entity]`` errors are returned before success."""

    def __init__(self, failures: dict[str, list[Exception]] | None = None, busy: int = 0):
        self.failures = {k: list(v) for k, v in (failures or {}).items()}
        self.busy = busy
        self.calls: list[tuple[str, Any]] = []
        self.finished: dict[str, Any] | None = None
        self.parked: tuple[dict[str, Any], list[dict[str, Any]]] | None = None

    def start(self, job_id: str, request: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("start", job_id))
        if self.busy:
            self.busy -= 1
            return {"busy": "other-job"}
        return {"entities": ENTITIES, "retry": {"attempts": 3, "backoff_s": 2.0}}

    def run_entity(
        self, job_id: str, request: dict[str, Any], entity: str, progress: dict[str, Any]
    ) -> dict[str, Any]:
        self.calls.append(("entity", entity))
        pending = self.failures.get(entity)
        done = {**progress, entity: "done"}
        if pending:
            error = pending.pop(0)
            return {"progress": progress, "error": error.as_dict()}  # type: ignore[attr-defined]
        return {"progress": done, "error": None}

    def note_retry(self, job_id: str, error: dict[str, Any], attempt: int, delay: float) -> None:
        self.calls.append(("retry", attempt))

    def finish(self, job_id: str, outcome: dict[str, Any]) -> None:
        self.finished = outcome

    def park(
        self,
        job_id: str,
        request: dict[str, Any],
        error: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> None:
        self.parked = (error, history)


REQUEST = JobRequest(kind="sync", pipeline="property-assessment", mode="full")


def test_each_entity_is_one_step_in_reference_order() -> None:
    ctx, steps = MemoryJobContext(), FakeSteps()
    outcome = run_sync_job(ctx, steps, REQUEST)
    assert outcome["status"] == "succeeded"
    assert outcome["progress"] == dict.fromkeys(ENTITIES, "done")
    assert ctx.steps == [
        "start #0",
        "entity properties #1",
        "entity owners #1",
        "entity valuations #1",
        "finish",
    ]
    assert steps.finished == outcome
    assert steps.parked is None


def test_a_transient_error_is_retried_after_a_durable_wait_from_the_failed_entity() -> None:
    ctx = MemoryJobContext()
    steps = FakeSteps({"owners": [ConnectionTimeout("down"), ConnectionTimeout("down")]})
    outcome = run_sync_job(ctx, steps, REQUEST)
    assert (outcome["status"], outcome["attempts"]) == ("succeeded", 3)
    # the entity done before the failure is not synced again
    entity_calls = [name for kind, name in steps.calls if kind == "entity"]
    assert entity_calls == ["properties", "owners", "owners", "owners", "valuations"]
    # backoff about 2 s then 4 s, with jitter of at most a quarter either way
    assert len(ctx.sleeps) == 2
    assert 1.5 <= ctx.sleeps[0] <= 2.5
    assert 3.0 <= ctx.sleeps[1] <= 5.0


def test_jitter_is_the_same_when_the_job_is_replayed() -> None:
    failures = {"owners": [ConnectionTimeout("down")]}
    first, second = MemoryJobContext("job-7"), MemoryJobContext("job-7")
    run_sync_job(first, FakeSteps(failures), REQUEST)
    run_sync_job(second, FakeSteps(failures), REQUEST)
    assert first.sleeps == second.sleeps
    other = MemoryJobContext("job-8")
    run_sync_job(other, FakeSteps(failures), REQUEST)
    assert other.sleeps != first.sleeps


def test_a_terminal_error_is_not_retried_and_the_job_is_parked() -> None:
    ctx = MemoryJobContext()
    steps = FakeSteps({"valuations": [SchemaMismatch("no table PropertyValue")]})
    outcome = run_sync_job(ctx, steps, REQUEST)
    assert (outcome["status"], outcome["attempts"]) == ("failed", 1)
    assert outcome["error"]["code"] == "PACS-003"
    assert outcome["entity"] == "valuations"
    assert ctx.sleeps == []
    assert steps.parked is not None
    error, history = steps.parked
    assert error["code"] == "PACS-003"
    assert [(h["attempt"], h["entity"]) for h in history] == [(1, "valuations")]


def test_transient_errors_give_up_after_the_policy_attempts() -> None:
    ctx = MemoryJobContext()
    steps = FakeSteps({"properties": [ConnectionTimeout("down")] * 5})
    outcome = run_sync_job(ctx, steps, REQUEST)
    assert (outcome["status"], outcome["attempts"]) == ("failed", 3)
    assert steps.parked is not None
    assert [h["attempt"] for h in steps.parked[1]] == [1, 2, 3]
    assert ctx.steps[-2:] == ["finish", "park"]


def test_a_replay_returns_recorded_steps_and_reruns_the_one_in_flight() -> None:
    first = MemoryJobContext()
    run_sync_job(first, FakeSteps(), REQUEST)
    # the process died while "entity owners #1" ran: start and properties were recorded
    replay = MemoryJobContext(recorded=first.results[:2])
    steps = FakeSteps()
    outcome = run_sync_job(replay, steps, REQUEST)
    assert outcome["status"] == "succeeded"
    assert replay.ran == ["entity owners #1", "entity valuations #1", "finish"]
    assert ("entity", "properties") not in steps.calls


def test_a_pipeline_held_by_another_run_is_waited_for() -> None:
    ctx = MemoryJobContext()
    outcome = run_sync_job(ctx, FakeSteps(busy=2), REQUEST)
    assert outcome["status"] == "succeeded"
    assert ctx.steps[:3] == ["start #0", "start #1", "start #2"]
    assert ctx.sleeps == [BUSY_WAIT_S, BUSY_WAIT_S]


def test_an_interrupted_run_is_not_retried_nor_parked() -> None:
    ctx = MemoryJobContext()
    steps = FakeSteps({"owners": [JobInterrupted("stopped")]})
    outcome = run_sync_job(ctx, steps, REQUEST)
    assert outcome["status"] == "interrupted"
    assert outcome["error"]["code"] == "PACS-006"
    assert steps.parked is None


class StepsWhoseStoreIsDown(FakeSteps):
    """The first entity step cannot even run: it raises (the engine gave up retrying)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = 1

    def run_entity(
        self, job_id: str, request: dict[str, Any], entity: str, progress: dict[str, Any]
    ) -> dict[str, Any]:
        if self.down:
            self.down -= 1
            raise StoreUnavailable("store: connection refused")
        return super().run_entity(job_id, request, entity, progress)


def test_a_step_that_raises_a_transient_error_is_an_attempt_that_failed() -> None:
    ctx = MemoryJobContext()
    outcome = run_sync_job(ctx, StepsWhoseStoreIsDown(), REQUEST)
    assert (outcome["status"], outcome["attempts"]) == ("succeeded", 2)
    assert len(ctx.sleeps) == 1

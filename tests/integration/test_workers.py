"""``pacsync worker`` processes running queued jobs, killed and taken over for real.

The store is PostgreSQL here (the distributed mode: workers share it) or the
embedded SQLite file; the legacy database and the target are PostgreSQL.
Whatever happens to the workers, the job ends once and the target equals the
source, with no key written twice.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .assessment import ENTITIES, Deployment, count
from .test_crash_resume import STARTED_ROWS, _assert_target_equals_source, big_legacy, legacy

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["big_legacy", "legacy"]  # module fixtures shared with the crash-resume tests

KILLS = 20


class Worker:
    """A ``pacsync worker`` process and the lines it printed."""

    def __init__(self, pacsync: Any, executor_id: str, *extra: str) -> None:
        self.id = executor_id
        self.process = pacsync.start("worker", "--id", executor_id, *extra)
        self.lines: list[str] = []
        self.errors = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any("ready" in line for line in self.lines):
            if self.process.poll() is not None:
                self.stop()
                pytest.fail(f"worker {self.id} exited {self.process.returncode}: {self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {self.id} not ready within {timeout} s")
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
        self._close()

    def _close(self) -> None:
        self.reader.join(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None and not self.process.stderr.closed:
            self.errors = self.process.stderr.read()
        self._close()
        return self.process.returncode

    def output(self) -> str:
        return "".join(self.lines) + self.errors


@pytest.fixture
def target(postgres: Any) -> Iterator[str]:
    url: str = postgres.create()
    yield url
    postgres.drop(url)


@pytest.fixture(params=["postgresql", "sqlite"])
def store(request: pytest.FixtureRequest, pacsync: Any, postgres: Any) -> Iterator[str]:
    """Where the jobs live: a PostgreSQL store shared by workers, or the embedded file."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    url: str = postgres.create()
    pacsync.env["PACSYNC_DATABASE_URL"] = url
    yield url
    postgres.drop(url)


@pytest.fixture
def workers(store: str) -> Iterator[list[Worker]]:
    """Workers started by a test, stopped before its databases are dropped."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


@pytest.fixture
def deployment(pacsync: Any, recipe: Any, big_legacy: str, target: str, store: str) -> Deployment:
    pacsync.env.update(
        {"LEGACY_DB_URL": big_legacy, "WAREHOUSE_URL": target, "PACS_SYNC_BATCH_SIZE": "200"}
    )
    return Deployment(recipe.pipeline, pacsync.env)


def _serve(pacsync: Any, workers: list[Worker], executor_id: str, *extra: str) -> Worker:
    """A worker started, stopped at the end of the test, and ready."""
    worker = Worker(pacsync, executor_id, *extra)
    workers.append(worker)
    worker.wait_ready()
    return worker


def _submit(pacsync: Any, pipeline: Any, *extra: str) -> str:
    done = pacsync("jobs", "submit", pipeline, "--full", *extra)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split()[1]


def _wait_for_valuations(target: str, timeout: float = 120) -> None:
    """Until the running job has committed some valuations (it is mid-entity)."""
    deadline = time.monotonic() + timeout
    while count(target, "valuations") < STARTED_ROWS:
        assert time.monotonic() < deadline, "no valuations reached the target"
        time.sleep(0.05)


def _wait_for(deployment: Deployment, job_id: str, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = next((j for j in deployment.jobs() if j.id == job_id), None)
        if job is not None and job.status not in ("queued", "running"):
            return job
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not end within {timeout} s")


def test_a_worker_runs_a_queued_job_once_however_often_its_key_is_submitted(
    pacsync: Any,
    deployment: Deployment,
    workers: list[Worker],
    target: str,
    legacy: dict[str, set[tuple[Any, ...]]],
) -> None:
    first = _submit(pacsync, deployment.pipeline, "--key", "nightly-2026-11-23")
    again = _submit(pacsync, deployment.pipeline, "--key", "nightly-2026-11-23")
    assert again == first
    workers.append(Worker(pacsync, "w1"))
    workers[0].wait_ready()
    job = _wait_for(deployment, first)
    assert (job.status, job.queue, job.executor_id) == ("succeeded", "sync-jobs", "w1")
    assert [j.id for j in deployment.jobs()] == [first]
    _assert_target_equals_source(pacsync, deployment, target, legacy)
    shown = pacsync("jobs", "show", first[:8])
    assert "valuations: " in shown.stdout
    assert workers[0].stop() == 0


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_worker_killed_20_times_at_random_points_still_finishes_the_job(
    pacsync: Any,
    deployment: Deployment,
    workers: list[Worker],
    target: str,
    legacy: dict[str, set[tuple[Any, ...]]],
) -> None:
    job_id = _submit(pacsync, deployment.pipeline)
    chance = random.Random(20261123)
    seen: list[int] = []
    for _ in range(KILLS):
        worker = Worker(pacsync, "w1")
        worker.wait_ready()
        time.sleep(chance.uniform(0.2, 1.5))
        worker.kill()
        seen.append(sum(count(target, e.target) for e in ENTITIES.values()))
        if deployment.jobs()[0].status not in ("queued", "running"):
            break
    total = sum(len(keys) for keys in legacy.values())
    assert any(0 < n < total for n in seen), seen  # killed in the middle of the work
    workers.append(Worker(pacsync, "w1"))  # the restarted worker recovers its own job
    job = _wait_for(deployment, job_id)
    assert job.status == "succeeded", job
    _assert_target_equals_source(pacsync, deployment, target, legacy)


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_the_job_of_a_worker_that_stopped_heart_beating_is_taken_over(
    pacsync: Any,
    deployment: Deployment,
    workers: list[Worker],
    target: str,
    legacy: dict[str, set[tuple[Any, ...]]],
) -> None:
    first = Worker(pacsync, "host-a")
    first.wait_ready()
    job_id = _submit(pacsync, deployment.pipeline)
    _wait_for_valuations(target)
    first.kill()
    held = count(target, "valuations")
    survivor = Worker(pacsync, "host-b", "--stale-after", "3")
    workers.append(survivor)
    job = _wait_for(deployment, job_id)
    assert job.status == "succeeded", job
    _assert_target_equals_source(pacsync, deployment, target, legacy)
    assert held < len(legacy["valuations"])
    taken = {w.executor_id: w for w in deployment.store_workers()}
    assert (taken["host-a"].status, taken["host-a"].taken_over_by) == ("lost", "host-b")


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_cancelled_job_stops_after_its_batch_and_the_next_one_of_the_pipeline_runs(
    pacsync: Any,
    deployment: Deployment,
    workers: list[Worker],
    target: str,
    legacy: dict[str, set[tuple[Any, ...]]],
) -> None:
    worker = _serve(pacsync, workers, "w1")
    first = _submit(pacsync, deployment.pipeline)
    second = _submit(pacsync, deployment.pipeline)  # the same pipeline: waits behind the first
    _wait_for_valuations(target)
    jobs = {j.id: j for j in deployment.jobs()}
    assert (jobs[first].status, jobs[second].status) == ("running", "queued")
    cancelled = pacsync("jobs", "cancel", first[:8])
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    done = _wait_for(deployment, second)
    assert done.status == "succeeded", done
    jobs = {j.id: j for j in deployment.jobs()}
    assert jobs[first].status == "cancelled"
    assert jobs[first].finished_at is not None
    assert done.started_at is not None
    assert done.started_at >= jobs[first].finished_at
    _assert_target_equals_source(pacsync, deployment, target, legacy)
    assert worker.process.poll() is None  # cancelling a job leaves its worker serving


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_concurrency_set_by_one_worker_is_kept_by_workers_started_without_it(
    pacsync: Any, deployment: Deployment, workers: list[Worker]
) -> None:
    _serve(pacsync, workers, "w1", "--concurrency", "1")
    _serve(pacsync, workers, "w2", "--queues", "sync-jobs")
    jobs_db = Path(pacsync.env["PACSYNC_HOME"]) / "jobs.sqlite"
    with sqlite3.connect(jobs_db) as conn:
        stored = conn.execute(
            "SELECT name, worker_concurrency FROM queues WHERE name = 'sync-jobs'"
        ).fetchall()
    conn.close()
    assert stored == [("sync-jobs", 1)]

"""A job run entity by entity, as the job layer's steps do, resuming its result."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pacsync.connectors.memory import MemoryJobLog
from pacsync.domain.records import EntityCounts
from pacsync.sync.pipeline import RunContext, RunResult, run_entity

Make = Callable[..., Any]


class SlowProgress:
    """A progress sink that takes 5 ms a batch, so the run's own time dominates."""

    def entity_started(self, entity: str, total: int | None, mode: str) -> None:
        return None

    def batch_done(self, entity: str, counts: EntityCounts) -> None:
        time.sleep(0.005)

    def entity_done(self, entity: str, counts: EntityCounts) -> None:
        return None


def test_an_entity_run_in_two_steps_counts_its_time_once(parcels: Make) -> None:
    world = parcels(60)
    log = MemoryJobLog()
    ctx = RunContext(
        world.spec,
        "job-1",
        world.source,
        world.destination,
        world.dead_letters,
        log,
        SlowProgress(),
        flush_s=0.0,
    )
    began = time.monotonic()
    result = RunResult(job_id="job-1")
    run_entity(ctx, result, "parcel", "full")
    assert log.progress_of["job-1"]["entities"]["parcel"]["total"] == 60
    # the next step starts from what the job persisted
    resumed = RunResult.resumed("job-1", result.progress())
    run_entity(ctx, resumed, "parcel", "incremental")
    wall = time.monotonic() - began

    assert resumed.error is None
    assert resumed.entities["parcel"].read == 60
    assert 0.03 < result.seconds < resumed.seconds <= wall + 0.002  # progress keeps ms

"""Running a pipeline: its entities in reference order, as one job.

The job's progress is persisted while it runs (at most every ``flush_s``
seconds), and its outcome — succeeded, failed with a code, or interrupted —
is recorded whatever happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pacsync.domain.records import EntityCounts
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import ConfigError, JobInterrupted, PacsyncError
from pacsync.ports import (
    BulkLoad,
    DeadLetters,
    Destination,
    JobLog,
    PartitionRunner,
    ProgressSink,
    Source,
)
from pacsync.sync.entity import EntitySync, Mode


@dataclass(slots=True)
class RunResult:
    job_id: str
    status: str = "running"
    entities: dict[str, EntityCounts] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)
    error: PacsyncError | None = None
    failed_entity: str | None = None
    seconds: float = 0.0
    totals: dict[str, int | None] = field(default_factory=dict)

    def progress(self) -> dict[str, Any]:
        """What is persisted with the job: counts, total and mode per entity, seconds."""
        return {
            "entities": {
                name: {
                    **counts.as_dict(),
                    "mode": self.modes.get(name, ""),
                    "total": self.totals.get(name),
                }
                for name, counts in self.entities.items()
            },
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def resumed(cls, job_id: str, progress: dict[str, Any]) -> RunResult:
        """The result so far of a job whose progress was persisted."""
        result = cls(job_id=job_id, seconds=float(progress.get("seconds", 0.0)))
        for name, saved in progress.get("entities", {}).items():
            data = dict(saved)
            result.modes[name] = str(data.pop("mode", ""))
            result.totals[name] = data.pop("total", None)
            result.entities[name] = EntityCounts(**data)
        return result


class NullProgress:
    """A :class:`pacsync.ports.ProgressSink` that shows nothing (jobs run by a worker)."""

    def entity_started(self, entity: str, total: int | None, mode: str) -> None:
        return None

    def batch_done(self, entity: str, counts: EntityCounts) -> None:
        return None

    def entity_done(self, entity: str, counts: EntityCounts) -> None:
        return None


class ProgressTracker:
    """Forwards progress to the caller's sink and, now and then, to the job log."""

    def __init__(self, result: RunResult, sink: ProgressSink, log: JobLog, flush_s: float):
        self.result, self.sink, self.log, self.flush_s = result, sink, log, flush_s
        self.started = time.monotonic()
        self.base_seconds = result.seconds
        self.last = 0.0

    def entity_started(self, entity: str, total: int | None, mode: str) -> None:
        self.result.modes[entity] = mode
        self.result.totals[entity] = total
        self.result.entities.setdefault(entity, EntityCounts())
        self.sink.entity_started(entity, total, mode)

    def batch_done(self, entity: str, counts: EntityCounts) -> None:
        self.result.entities[entity] = counts
        self.sink.batch_done(entity, counts)
        now = time.monotonic()
        if now - self.last >= self.flush_s:
            self.last = now
            self.result.seconds = self.base_seconds + now - self.started
            self.log.progress(self.result.job_id, self.result.progress())

    def entity_done(self, entity: str, counts: EntityCounts) -> None:
        self.result.entities[entity] = counts
        self.sink.entity_done(entity, counts)


@dataclass(slots=True)
class RunContext:
    """What one job's entity runs share: the ends, the stores and the stop signals."""

    spec: PipelineSpec
    job_id: str
    source: Source
    destination: Destination
    dead_letters: DeadLetters
    job_log: JobLog
    progress: ProgressSink
    should_stop: Callable[[], bool] = lambda: False
    flush_s: float = 1.0
    runner: PartitionRunner | None = None
    deadline: float | None = None  # wall-clock (epoch seconds) end of the job's time budget
    bulk: BulkLoad | None = None  # fresh full loads done between the databases, where exact


def run_entity(ctx: RunContext, result: RunResult, name: str, mode: Mode) -> None:
    """Sync one entity into ``result``; a PacsyncError is recorded there, never raised.

    Resumes from the entity's checkpoint, so running it again after a crash or a
    failed attempt continues where the committed batches end."""
    tracker = ProgressTracker(result, ctx.progress, ctx.job_log, ctx.flush_s)
    with entity_outcome(result, name, f"syncing '{name}'"):
        sync = EntitySync(
            ctx.spec,
            name,
            source=ctx.source,
            destination=ctx.destination,
            dead_letters=ctx.dead_letters,
            progress=tracker,
            job_id=ctx.job_id,
            deadline=monotonic_deadline(ctx.deadline),
            should_stop=ctx.should_stop,
            runner=ctx.runner,
            bulk=ctx.bulk,
        )
        result.entities[name] = sync.run(mode)
        result.modes[name] = sync.mode_run


def monotonic_deadline(deadline: float | None) -> float | None:
    """A wall-clock (epoch) deadline on the monotonic clock entity syncs check."""
    return None if deadline is None else time.monotonic() + (deadline - time.time())


@contextmanager
def entity_outcome(result: RunResult, name: str, doing: str) -> Iterator[None]:
    """Around one entity's work: its time is added to ``result``, and a PacsyncError or
    an interruption is recorded there (``doing`` says what was stopped), never raised."""
    started, before = time.monotonic(), result.seconds
    try:
        yield
    except PacsyncError as error:
        result.status, result.error, result.failed_entity = "failed", error, name
    except KeyboardInterrupt:
        result.status, result.failed_entity = "interrupted", name
        result.error = JobInterrupted(f"stopped while {doing}; every committed batch is kept")
    finally:
        result.seconds = before + time.monotonic() - started


def run_pipeline(
    spec: PipelineSpec,
    *,
    job_id: str,
    source: Source,
    destination: Destination,
    dead_letters: DeadLetters,
    job_log: JobLog,
    progress: ProgressSink,
    mode: Mode = "incremental",
    entities: list[str] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    flush_s: float = 1.0,
    runner: PartitionRunner | None = None,
) -> RunResult:
    """Run ``entities`` (default: all) of ``spec`` as one job; never raises a PacsyncError."""
    ctx = RunContext(
        spec,
        job_id,
        source,
        destination,
        dead_letters,
        job_log,
        progress,
        should_stop,
        flush_s,
        runner,
        time.time() + spec.timeout if spec.timeout else None,
    )
    result = RunResult(job_id=job_id)
    job_log.start(job_id)
    try:
        for name in selected_entities(spec, entities):
            run_entity(ctx, result, name, mode)
            if result.error is not None:
                break
        else:
            result.status = "succeeded"
    except PacsyncError as error:
        result.status, result.error = "failed", error
    except Exception as exc:
        result.status = "failed"
        result.error = PacsyncError(f"internal error: {exc!r}", hint="Please report this bug.")
        raise
    finally:
        job_log.finish(job_id, result.status, result.progress(), result.error, result.failed_entity)
    return result


def selected_entities(spec: PipelineSpec, entities: list[str] | None) -> list[str]:
    order = spec.ordered_entities()
    if not entities:
        return order
    unknown = [e for e in entities if e not in spec.entities]
    if unknown:
        raise ConfigError(
            f"unknown entity '{unknown[0]}' in pipeline '{spec.name}'",
            hint="Entities are: " + ", ".join(spec.entities),
        )
    return [e for e in order if e in entities]

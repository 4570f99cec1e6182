"""Running a pipeline: its entities in reference order, as one job.

The job's progress is persisted while it runs (at most every ``flush_s``
seconds), and its outcome — succeeded, failed with a code, or interrupted —
is recorded whatever happens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pacsync.domain.records import EntityCounts
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import ConfigError, JobInterrupted, PacsyncError
from pacsync.ports import (
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

    def progress(self) -> dict[str, Any]:
        return {
            "entities": {
                name: {**counts.as_dict(), "mode": self.modes.get(name, "")}
                for name, counts in self.entities.items()
            },
            "seconds": round(self.seconds, 3),
        }


class _Tracker:
    """Forwards progress to the caller's sink and, now and then, to the job log."""

    def __init__(self, result: RunResult, sink: ProgressSink, log: JobLog, flush_s: float):
        self.result, self.sink, self.log, self.flush_s = result, sink, log, flush_s
        self.started = time.monotonic()
        self.last = 0.0

    def entity_started(self, entity: str, total: int | None, mode: str) -> None:
        self.result.modes[entity] = mode
        self.result.entities.setdefault(entity, EntityCounts())
        self.sink.entity_started(entity, total, mode)

    def batch_done(self, entity: str, counts: EntityCounts) -> None:
        self.result.entities[entity] = counts
        self.sink.batch_done(entity, counts)
        now = time.monotonic()
        if now - self.last >= self.flush_s:
            self.last = now
            self.result.seconds = now - self.started
            self.log.progress(self.result.job_id, self.result.progress())

    def entity_done(self, entity: str, counts: EntityCounts) -> None:
        self.result.entities[entity] = counts
        self.sink.entity_done(entity, counts)


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
    """Run ``entities`` (default: all) of ``spec``; never raises a PacsyncError."""
    result = RunResult(job_id=job_id)
    tracker = _Tracker(result, progress, job_log, flush_s)
    deadline = time.monotonic() + spec.timeout if spec.timeout else None
    job_log.start(job_id)
    current: str | None = None
    try:
        for name in _selected(spec, entities):
            current = name
            sync = EntitySync(
                spec,
                name,
                source=source,
                destination=destination,
                dead_letters=dead_letters,
                progress=tracker,
                job_id=job_id,
                deadline=deadline,
                should_stop=should_stop,
                runner=runner,
            )
            result.entities[name] = sync.run(mode)
            result.modes[name] = sync.mode_run
        result.status = "succeeded"
    except PacsyncError as error:
        result.status, result.error, result.failed_entity = "failed", error, current
    except KeyboardInterrupt:
        result.status = "interrupted"
        result.failed_entity = current
        result.error = JobInterrupted(
            f"stopped while syncing '{current}'; every committed batch is kept"
        )
    except Exception as exc:
        result.status, result.failed_entity = "failed", current
        result.error = PacsyncError(f"internal error: {exc!r}", hint="Please report this bug.")
        raise
    finally:
        result.seconds = time.monotonic() - tracker.started
        job_log.finish(job_id, result.status, result.progress(), result.error, result.failed_entity)
    return result


def _selected(spec: PipelineSpec, entities: list[str] | None) -> list[str]:
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

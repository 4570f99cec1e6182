"""The one DBOS workflow every pacsync job runs, dispatching on the job's kind.

Handlers are registered by kind before the engine launches; a job's steps are
DBOS steps, its sleeps DBOS durable sleeps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from dbos import DBOS
from dbos import error as dbos_error

from pacsync.errors import ConfigError, PacsyncError
from pacsync.ports import JobContext

WORKFLOW_NAME = "pacsync.job"
SCHEDULED_NAME = "pacsync.scheduled"
Handler = Callable[[JobContext, dict[str, Any]], dict[str, Any]]
STEP_RETRY_FIRST_S = 1.0
STEP_RETRY_ATTEMPTS = 7  # waits 1, 2, 4 ... 32 s: a minute in all


def _transient(error: BaseException) -> bool:
    return isinstance(error, PacsyncError) and error.transient


_HANDLERS: dict[str, Handler] = {}


def register_handler(kind: str, handler: Handler) -> None:
    _HANDLERS[kind] = handler


class DbosJobContext:
    """A :class:`pacsync.ports.JobContext` inside a running DBOS workflow."""

    def __init__(self, job_id: str) -> None:
        self._job_id = job_id

    @property
    def job_id(self) -> str:
        return self._job_id

    def step(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run and record ``fn``; a transient error it raises (the store restarting, say)
        is retried with backoff for about a minute before the job fails."""
        try:
            return DBOS.run_step(
                {
                    "name": name,
                    "retries_allowed": True,
                    "interval_seconds": STEP_RETRY_FIRST_S,
                    "backoff_rate": 2.0,
                    "max_attempts": STEP_RETRY_ATTEMPTS,
                    "should_retry": _transient,
                },
                fn,
                *args,
            )
        except dbos_error.DBOSMaxStepRetriesExceeded as gave_up:
            last = gave_up.errors[-1] if gave_up.errors else None
            if isinstance(last, PacsyncError):
                raise last from gave_up
            raise PacsyncError(f"step '{name}' failed: {last!r}") from gave_up

    def sleep(self, seconds: float) -> None:
        DBOS.sleep(seconds)


@DBOS.workflow(name=WORKFLOW_NAME)
def job_workflow(request: dict[str, Any]) -> dict[str, Any]:
    handler = _HANDLERS.get(str(request.get("kind")))
    if handler is None:
        raise ConfigError(
            f"no handler for jobs of kind '{request.get('kind')}' in this worker",
            hint="Run the worker of the same pacsync version as the process that enqueued it.",
        )
    job_id = DBOS.workflow_id
    assert job_id is not None
    return handler(DbosJobContext(job_id), request)


@DBOS.workflow(name=SCHEDULED_NAME)
def scheduled_workflow(scheduled_at: dt.datetime, context: Any) -> None:
    """One tick of a pipeline's schedule: submits that tick's job (the same job from any
    worker, so a tick never runs twice)."""
    handler = _HANDLERS.get("schedule")
    if handler is None:
        raise ConfigError("no schedule handler in this worker")
    job_id = DBOS.workflow_id
    assert job_id is not None
    handler(DbosJobContext(job_id), {"scheduled_at": scheduled_at.isoformat(), **dict(context)})

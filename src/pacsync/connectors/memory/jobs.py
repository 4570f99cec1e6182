"""In-memory fake of the job engine's context: recorded steps, replayed like a recovery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class MemoryJobContext:
    """A :class:`pacsync.ports.JobContext` recording every step's name and result.

    Given ``recorded`` results (of an earlier run that crashed), the first steps return
    those without running, as the engine does when it recovers a job."""

    def __init__(self, job_id: str = "job-1", recorded: list[Any] | None = None) -> None:
        self._job_id = job_id
        self.recorded: list[Any] = list(recorded or [])
        self.steps: list[str] = []
        self.ran: list[str] = []
        self.results: list[Any] = []
        self.sleeps: list[float] = []

    @property
    def job_id(self) -> str:
        return self._job_id

    def step(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        index = len(self.steps)
        self.steps.append(name)
        if index < len(self.recorded):
            result = self.recorded[index]
        else:
            self.ran.append(name)
            result = fn(*args)
        self.results.append(result)
        return result

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


class MemoryJobLog:
    """A :class:`pacsync.ports.JobLog` keeping each job's last progress and its end."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.progress_of: dict[str, dict[str, Any]] = {}
        self.finished: dict[str, tuple[str, Any]] = {}

    def start(self, job_id: str) -> None:
        self.started.append(job_id)

    def progress(self, job_id: str, progress: dict[str, Any]) -> None:
        self.progress_of[job_id] = progress

    def finish(
        self,
        job_id: str,
        status: str,
        progress: dict[str, Any],
        error: Any = None,
        entity: str | None = None,
    ) -> None:
        self.progress_of[job_id] = progress
        self.finished[job_id] = (status, error)

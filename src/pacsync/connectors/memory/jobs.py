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

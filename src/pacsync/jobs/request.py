"""What a job is asked to do: the request stored with it, replayable as it was."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from pacsync.errors import ConfigError
from pacsync.jobs.queues import QUEUES, SYNC


@dataclass(frozen=True, slots=True)
class JobRequest:
    kind: str
    pipeline: str
    mode: str = "incremental"
    entities: list[str] = field(default_factory=list)  # empty: every entity
    trigger: str = "manual"
    queue: str = SYNC
    priority: int = 0  # lower runs first
    partition: str = ""  # defaults to the pipeline
    key: str = ""  # idempotency key: the same key twice is one job
    path: str = ""  # the pipeline's file when not found by name
    args: dict[str, Any] = field(default_factory=dict)  # what other kinds need (delivery_id)

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise ConfigError(
                f"unknown queue '{self.queue}'", hint="Queues are: " + ", ".join(QUEUES)
            )
        if self.mode not in ("full", "incremental"):
            raise ConfigError(f"unknown sync mode '{self.mode}'", hint="Use full or incremental.")

    @property
    def locator(self) -> str:
        return self.path or self.pipeline

    @property
    def partition_key(self) -> str:
        return self.partition or self.pipeline

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

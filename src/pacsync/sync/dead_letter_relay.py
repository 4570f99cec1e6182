"""Dead letters that pass every call on to other dead letters: the base of those that
add something to parking (a file's report, an event)."""

from __future__ import annotations

from collections.abc import Sequence

from pacsync.domain.records import Key, Rejected
from pacsync.ports import DeadLetters


class RelayedDeadLetters:
    """A :class:`pacsync.ports.DeadLetters` handing each call to ``inner``."""

    def __init__(self, inner: DeadLetters) -> None:
        self.inner = inner

    def park(
        self, job_id: str | None, pipeline: str, entity: str, rejected: Sequence[Rejected]
    ) -> int:
        return self.inner.park(job_id, pipeline, entity, rejected)

    def open_keys(self, pipeline: str, entity: str) -> set[Key]:
        return self.inner.open_keys(pipeline, entity)

    def resolve(self, pipeline: str, entity: str, keys: Sequence[Key], reason: str) -> int:
        return self.inner.resolve(pipeline, entity, keys, reason)

    def retry_keys(self, pipeline: str, entity: str) -> set[Key]:
        return self.inner.retry_keys(pipeline, entity)

    def retried(self, pipeline: str, entity: str, keys: Sequence[Key]) -> int:
        return self.inner.retried(pipeline, entity, keys)

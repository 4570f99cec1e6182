"""In-memory dead letters, de-duplicated by record version like the store's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pacsync.domain.records import Key, Rejected, key_text, parse_key

Record = dict[str, Any]


LetterStatus = Literal["open", "retry", "superseded", "resolved"]
PARKED = ("open", "retry")  # still waiting for the record: a retry is asked for or not


@dataclass(slots=True)
class DeadLetter:
    """One parked record, as the dead-letter store keeps it."""

    job_id: str | None
    pipeline: str
    entity: str
    key: Key
    fingerprint: str
    record: Record
    field: str
    rule: str
    message: str
    status: LetterStatus = "open"
    reason: str | None = None


class MemoryDeadLetters:
    """Dead letters in a list, with the rules of the store's ``DeadLetterStore``.

    A record version, (pipeline, entity, key, fingerprint), is parked once
    whatever its status; parking a new version of a key supersedes the key's
    open letter.  Keys are compared through their JSON text, and
    :meth:`open_keys` returns them as they read back from JSON.
    """

    def __init__(self) -> None:
        self.items: list[DeadLetter] = []

    def open(self, entity: str | None = None) -> list[DeadLetter]:
        """The open letters (of one entity)."""
        return [
            i for i in self.items if i.status == "open" and (entity is None or i.entity == entity)
        ]

    def park(
        self, job_id: str | None, pipeline: str, entity: str, rejected: Sequence[Rejected]
    ) -> int:
        known = {
            (key_text(i.key), i.fingerprint)
            for i in self.items
            if (i.pipeline, i.entity) == (pipeline, entity)
        }
        fresh: list[DeadLetter] = []
        for item in rejected:
            identity = (key_text(item.key), item.fingerprint)
            if identity in known:
                continue
            known.add(identity)
            fresh.append(
                DeadLetter(
                    job_id=job_id,
                    pipeline=pipeline,
                    entity=entity,
                    key=item.key,
                    fingerprint=item.fingerprint,
                    record=dict(item.record),
                    field=item.error.field,
                    rule=item.error.rule,
                    message=item.error.message,
                )
            )
        stale = {key_text(d.key) for d in fresh}
        for letter in self.items:
            if (
                (letter.pipeline, letter.entity) == (pipeline, entity)
                and letter.status in PARKED
                and key_text(letter.key) in stale
            ):
                letter.status = "superseded"
        self.items.extend(fresh)
        return len(fresh)

    def open_keys(self, pipeline: str, entity: str) -> set[Key]:
        return {
            parse_key(key_text(i.key))
            for i in self.items
            if (i.pipeline, i.entity) == (pipeline, entity) and i.status in PARKED
        }

    def retry_keys(self, pipeline: str, entity: str) -> set[Key]:
        return {
            parse_key(key_text(i.key))
            for i in self.items
            if (i.pipeline, i.entity, i.status) == (pipeline, entity, "retry")
        }

    def retried(self, pipeline: str, entity: str, keys: Sequence[Key]) -> int:
        texts = {key_text(k) for k in keys}
        changed = 0
        for letter in self.items:
            if (letter.pipeline, letter.entity, letter.status) == (
                pipeline,
                entity,
                "retry",
            ) and key_text(letter.key) in texts:
                letter.status = "open"
                changed += 1
        return changed

    def resolve(self, pipeline: str, entity: str, keys: Sequence[Key], reason: str) -> int:
        texts = {key_text(k) for k in keys}
        changed = 0
        for letter in self.items:
            if (
                (letter.pipeline, letter.entity) == (pipeline, entity)
                and letter.status in PARKED
                and key_text(letter.key) in texts
            ):
                letter.status = "resolved"
                letter.reason = reason
                changed += 1
        return changed


ProgressKind = Literal["entity_started", "batch_done", "entity_done"]

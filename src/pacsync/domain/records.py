"""Records as they move through a pipeline, and the errors a single row can raise."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Row = tuple[Any, ...]
Key = tuple[Any, ...]


class RowError(Exception):
    """One record failed a mapping or validation rule; the record goes to dead letters."""

    def __init__(self, field_name: str, rule: str, message: str) -> None:
        super().__init__(f"{field_name}: {message} [{rule}]")
        self.field = field_name
        self.rule = rule
        self.message = message


@dataclass(frozen=True, slots=True)
class Rejected:
    """A source row that will not reach the destination, with why."""

    key: Key
    fingerprint: str
    record: dict[str, Any]
    error: RowError


@dataclass(slots=True)
class EntityCounts:
    """What one run did to one entity."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    filtered: int = 0
    dead_lettered: int = 0
    batches: int = 0
    rules_failed: dict[str, int] = field(default_factory=dict)

    @classmethod
    def total(cls, parts: Iterable[EntityCounts]) -> EntityCounts:
        """The counts of several partial runs added up."""
        total = cls()
        for counts in parts:
            for name in COUNTERS:
                setattr(total, name, getattr(total, name) + getattr(counts, name))
            for rule, n in counts.rules_failed.items():
                total.rules_failed[rule] = total.rules_failed.get(rule, 0) + n
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            **{name: getattr(self, name) for name in COUNTERS},
            "rules_failed": dict(self.rules_failed),
        }


COUNTERS = (
    "read",
    "inserted",
    "updated",
    "unchanged",
    "deleted",
    "filtered",
    "dead_lettered",
    "batches",
)


def jsonable(value: Any) -> Any:
    """A JSON-safe form of a database value (dead letters, checkpoints)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def key_text(key: Key) -> str:
    """A stable text form of a record key, for stores that index keys as text."""
    return json.dumps([jsonable(v) for v in key], separators=(",", ":"))


def parse_key(text: str) -> Key:
    """The key written by :func:`key_text` (JSON scalars only)."""
    return tuple(json.loads(text))

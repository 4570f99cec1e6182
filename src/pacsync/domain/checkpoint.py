"""Checkpoints: where an entity of a pipeline stopped reading.

A checkpoint is committed in the same transaction as the rows it covers, so a
crash loses at most the batch in flight.  Cursor values keep their type through
JSON with a small tag.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

Phase = Literal["full", "idle"]


def encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"t": "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {"t": "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {"t": "decimal", "v": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"t": "bytes", "v": bytes(value).hex()}
    return value


def decode_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    kind, text = value["t"], value["v"]
    decoders: dict[str, Callable[[str], Any]] = {
        "datetime": dt.datetime.fromisoformat,
        "date": dt.date.fromisoformat,
        "decimal": Decimal,
        "bytes": bytes.fromhex,
    }
    return decoders[kind](text)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    pipeline: str
    entity: str
    mapping_version: str
    phase: Phase = "idle"
    after_key: tuple[Any, ...] | None = None
    fresh: bool = False
    cursor: Any = None
    change_version: int | None = None
    completed_runs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "mapping_version": self.mapping_version,
                "phase": self.phase,
                "after_key": None
                if self.after_key is None
                else [encode_value(v) for v in self.after_key],
                "fresh": self.fresh,
                "cursor": encode_value(self.cursor),
                "change_version": self.change_version,
                "completed_runs": self.completed_runs,
                "extra": self.extra,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, pipeline: str, entity: str, text: str) -> Checkpoint:
        data = json.loads(text)
        after = data.get("after_key")
        return cls(
            pipeline=pipeline,
            entity=entity,
            mapping_version=data["mapping_version"],
            phase=data.get("phase", "idle"),
            after_key=None if after is None else tuple(decode_value(v) for v in after),
            fresh=bool(data.get("fresh", False)),
            cursor=decode_value(data.get("cursor")),
            change_version=data.get("change_version"),
            completed_runs=int(data.get("completed_runs", 0)),
            extra=dict(data.get("extra") or {}),
        )

    def advance(self, **changes: Any) -> Checkpoint:
        return replace(self, **changes)


def cursor_below(value: Any, overlap: float) -> Any:
    """The cursor value ``overlap`` below ``value`` (seconds for date-times, units otherwise)."""
    if value is None or not overlap:
        return value
    if isinstance(value, str):  # a date-time kept as text by the driver (SQLite)
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        return value - dt.timedelta(seconds=overlap)
    if isinstance(value, int):
        return value - int(overlap)
    if isinstance(value, Decimal):
        return value - Decimal(str(overlap))
    if isinstance(value, float):
        return value - overlap
    return value


def cursor_max(current: Any, values: Iterable[Any]) -> Any:
    """The highest of ``current`` and ``values``, ignoring NULLs."""
    best = current
    for value in values:
        if value is not None and (best is None or value > best):
            best = value
    return best

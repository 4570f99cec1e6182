"""What one index batch shares: IN-list chunks and the keys it touched."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

CHUNK = 400  # keys per IN list


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@dataclass(slots=True)
class Touched:
    studies: set[str]
    series: set[str]
    patients: set[tuple[str, str]]

"""File drops: the values a dropped file is read, checked and reported with.

A file is known by its identity (name, size, modification time and content
hash); the checkpoint of a drop entity keeps the identity of the file being
loaded and how many of its records are committed, so a run stopped mid-file
resumes at the next record of the same file and starts a changed file over.

Every record read is a :class:`FileRecord`: its values in the reader's column
order, or, when it could not be read (wrong column count, undecodable bytes,
a line that is not JSON), the reason.  What a file came to is its
:class:`FileReport`, written beside it in archive/ or error/.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pacsync.domain.records import jsonable
from pacsync.errors import DropFileRefused

REPORTED_REJECTS = 200  # rejected records listed in a report (all are counted)
Outcome = Literal["archived", "refused"]


class WrongColumns(DropFileRefused):
    """A file whose header does not have the declared columns."""

    def __init__(self, message: str, *, missing: list[str], unexpected: list[str]) -> None:
        super().__init__(message)
        self.missing, self.unexpected = missing, unexpected


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """A dropped file as it was when its loading started."""

    name: str
    size: int
    mtime_ns: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> FileIdentity | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                str(data["name"]), int(data["size"]), int(data["mtime_ns"]), str(data["sha256"])
            )
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One record of a file: ``index`` counts records from 0 (the resume offset),
    ``line`` is where it starts (0 when the format has no lines to tell)."""

    index: int
    line: int
    values: tuple[Any, ...] | None
    raw: str = ""
    problem: str | None = None


@dataclass(slots=True)
class FileReport:
    """What loading one file did; kept in the checkpoint while it loads."""

    file: str
    records: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    filtered: int = 0
    deleted: int = 0
    rejected: int = 0
    malformed: int = 0  # of the rejected, those that could not be read at all
    rejects: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome | None = None
    reason: str | None = None
    missing_columns: list[str] = field(default_factory=list)
    unexpected_columns: list[str] = field(default_factory=list)

    def reject(self, line: int, index: int, reason: str, key: Sequence[Any] | None) -> None:
        self.rejected += 1
        if len(self.rejects) < REPORTED_REJECTS:
            entry: dict[str, Any] = {"line": line, "record": index + 1, "reason": reason}
            if key is not None:
                entry["key"] = [jsonable(v) for v in key]
            self.rejects.append(entry)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def fingerprint(values: Sequence[Any], version: str) -> str:
    """The record state of a file record: its values read by the mapping, and the
    mapping's version (a changed mapping rewrites every record it meets again)."""
    text = json.dumps([version, *values], separators=(",", ":"), default=_text)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()


def _text(value: Any) -> str:
    """What a value JSON has no type for stands as in a fingerprint."""
    return str(jsonable(value))


@dataclass(frozen=True, slots=True)
class HeaderCheck:
    missing: list[str]
    unexpected: list[str]
    duplicated: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.duplicated)

    def reason(self) -> str:
        parts = []
        if self.missing:
            parts.append("missing columns: " + ", ".join(self.missing))
        if self.unexpected:
            parts.append("unexpected columns: " + ", ".join(self.unexpected))
        if self.duplicated:
            parts.append("repeated columns: " + ", ".join(self.duplicated))
        return "; ".join(parts)


def check_header(
    found: Sequence[str], declared: Sequence[str], needed: Sequence[str]
) -> HeaderCheck:
    """A header against the declared columns (every one, no other), or, when none are
    declared, against the columns the mapping needs (extra ones are ignored)."""
    seen: set[str] = set()
    duplicated: list[str] = []
    for column in found:
        if column in seen and column not in duplicated:
            duplicated.append(column)
        seen.add(column)
    wanted = list(declared) or list(needed)
    missing = [c for c in wanted if c not in seen]
    unexpected = [c for c in found if c not in wanted] if declared else []
    return HeaderCheck(missing, unexpected, duplicated)

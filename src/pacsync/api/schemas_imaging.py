"""Request and response bodies of the imaging routes (archives, search)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from pacsync.api.schemas import Model, UtcTime

ARCHIVE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class ArchiveAdd(Model):
    name: str = Field(pattern=ARCHIVE_NAME, examples=["ct-nas"])
    kind: Literal["dicom", "firebird-j2k"]
    path: str = Field(
        min_length=1,
        max_length=4096,
        description="the DICOM root (dicom) or the JPEG 2000 image root (firebird-j2k)",
    )
    dsn: str | None = Field(default=None, max_length=1000, description="firebird-j2k only")
    user: str | None = Field(default=None, max_length=100)
    password: str | None = Field(default=None, max_length=1000, description="sealed at rest")
    charset: str | None = Field(default=None, max_length=40)
    mapping: dict[str, Any] | None = Field(
        default=None, description="legacy tables and columns (firebird-j2k)"
    )
    rescan_minutes: int = Field(default=15, ge=0, le=10_080)
    watch: bool = False


class Archive(Model):
    name: str
    kind: str
    path: str
    options: dict[str, Any]
    status: str = Field(description="new, online or offline")
    status_reason: str | None
    rescan_minutes: int
    created_at: UtcTime
    last_scan_at: UtcTime | None
    last_scan_job: str | None
    last_scan: dict[str, Any] | None
    counts: dict[str, int]


class ArchiveRemoved(Model):
    name: str
    removed: bool = True


class ProblemFile(Model):
    path: str
    state: str = Field(description="invalid (not DICOM, truncated, corrupt) or unreadable")
    reason: str | None
    size: int
    indexed_at: UtcTime


class IdentityConflict(Model):
    id: int
    archive: str
    issuer: str
    patient_id: str
    known_name: str | None
    known_birth_date: str | None
    found_name: str | None
    found_birth_date: str | None
    study_uid: str | None
    sop_instance_uid: str | None
    path: str | None
    reason: str
    scope: str = Field(description="patient (flagged) or study (instance quarantined)")
    status: str
    detected_at: UtcTime
    resolved_at: UtcTime | None = None
    resolved_by: str | None = None
    resolution: str | None = None


class ConflictResolution(Model):
    resolution: str = Field(
        min_length=1,
        max_length=2000,
        description="what the reviewer found and did (e.g. 'file corrected at the modality')",
    )

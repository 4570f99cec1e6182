"""Configured archives (imaging roots) and what their scans found.

An archive is a DICOM folder (``dicom``) or a legacy store (``firebird-j2k``: a
Firebird database listing JPEG 2000 image files).  The legacy database password
is sealed; listings never show it.  Removing an archive removes its index
entries (its files are never touched)."""

from __future__ import annotations

import builtins
import dataclasses
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.archive_tables import (
    archive_files,
    archives,
    identity_conflicts,
    image_instances,
    image_patients,
    image_series,
    image_studies,
)
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest, InvalidState, NotFound
from pacsync.security.secrets import SecretBox

_a = archives.c
KINDS = ("dicom", "firebird-j2k")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class ArchiveView:
    name: str
    kind: str
    path: str
    options: dict[str, Any]
    status: str
    status_reason: str | None
    rescan_minutes: int
    created_at: dt.datetime
    last_scan_at: dt.datetime | None
    last_scan_job: str | None
    last_scan: dict[str, Any] | None
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _view(row: Any, counts: dict[str, int] | None = None) -> ArchiveView:
    return ArchiveView(
        name=row.name,
        kind=row.kind,
        path=row.path,
        options=dict(row.options),
        status=row.status,
        status_reason=row.status_reason,
        rescan_minutes=row.rescan_minutes,
        created_at=row.created_at,
        last_scan_at=row.last_scan_at,
        last_scan_job=row.last_scan_job,
        last_scan=row.last_scan,
        counts=counts or {},
    )


class ArchiveStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self.engine = engine
        self.box = box

    def add(
        self,
        name: str,
        kind: str,
        path: str,
        *,
        options: dict[str, Any] | None = None,
        password: str | None = None,
        rescan_minutes: int = 15,
    ) -> ArchiveView:
        if not _NAME.match(name):
            raise InvalidRequest(
                f"invalid archive name {name!r}",
                hint="Use letters, digits, '.', '_' and '-' (up to 100), starting with a "
                "letter or digit.",
            )
        if kind not in KINDS:
            raise InvalidRequest(
                f"unknown archive kind {kind!r}", hint=f"Use one of: {', '.join(KINDS)}."
            )
        if rescan_minutes < 0:
            raise InvalidRequest("rescan_minutes must be 0 (never) or more")
        if self.get(name, counts=False) is not None:
            raise InvalidRequest(
                f"archive '{name}' exists",
                hint=f"Choose another name or remove it first: `pacsync archive remove {name}`.",
            )
        secret = None if password is None else self.box.seal(password, _context(name))
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                insert(archives).values(
                    name=name,
                    kind=kind,
                    path=path,
                    options=options or {},
                    secret=secret,
                    status="new",
                    rescan_minutes=rescan_minutes,
                    created_at=utc_now(),
                )
            )
        return self.require(name)

    def get(self, name: str, *, counts: bool = True) -> ArchiveView | None:
        """The archive; ``counts`` adds its index counts (a count query per level)."""
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(archives).where(_a.name == name)).first()
        if row is None:
            return None
        return _view(row, self._counts(name) if counts else None)

    def require(self, name: str, *, counts: bool = True) -> ArchiveView:
        found = self.get(name, counts=counts)
        if found is None:
            raise NotFound(
                f"no archive '{name}'", hint="List the archives with `pacsync archive list`."
            )
        return found

    def list(self, *, counts: bool = True) -> builtins.list[ArchiveView]:
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(select(archives).order_by(_a.name)).all()
        return [_view(row, self._counts(row.name) if counts else None) for row in rows]

    def password(self, name: str) -> str | None:
        with translated("store"), self.engine.connect() as conn:
            sealed = conn.execute(select(_a.secret).where(_a.name == name)).scalar()
        return None if sealed is None else self.box.open(sealed, _context(name))

    def scan_started(self, name: str, job_id: str) -> None:
        with translated("store"), self.engine.begin() as conn:
            conn.execute(update(archives).where(_a.name == name).values(last_scan_job=job_id))

    def remove(self, name: str) -> bool:
        with translated("store"), self.engine.begin() as conn:
            for table in (
                image_instances,
                image_series,
                image_studies,
                image_patients,
                archive_files,
                identity_conflicts,
            ):
                conn.execute(delete(table).where(table.c.archive == name))
            return conn.execute(delete(archives).where(_a.name == name)).rowcount == 1

    def problem_files(self, name: str, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """Files that could not be indexed, with the reason (newest first)."""
        f = archive_files.c
        query = (
            select(f.path, f.state, f.reason, f.size, f.indexed_at)
            .where(f.archive == name, f.state != "indexed")
            .order_by(f.indexed_at.desc(), f.path)
            .limit(limit)
        )
        with translated("store"), self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def identity_conflicts(
        self, name: str | None = None, status: str = "open", limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        c = identity_conflicts.c
        query = select(identity_conflicts).where(c.status == status)
        if name is not None:
            query = query.where(c.archive == name)
        query = query.order_by(c.id.desc()).limit(limit)
        with translated("store"), self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def resolve_conflict(
        self, name: str, conflict_id: int, by: str, resolution: str
    ) -> dict[str, Any]:
        """Close an open identity conflict with what the reviewer found; a closed one is
        :class:`InvalidState`.  A quarantined instance stays held back: fix its file (or
        the legacy row) and the next scan indexes it under its own patient."""
        c = identity_conflicts.c
        with translated("store"), self.engine.begin() as conn:
            done = conn.execute(
                update(identity_conflicts)
                .where(c.id == conflict_id, c.archive == name, c.status == "open")
                .values(status="resolved", resolved_by=by, resolution=resolution,
                        resolved_at=utc_now())
            ).rowcount  # fmt: skip
            row = conn.execute(
                select(identity_conflicts).where(c.id == conflict_id, c.archive == name)
            ).first()
        if row is None:
            raise NotFound(f"archive '{name}' has no identity conflict {conflict_id}")
        if not done:
            raise InvalidState(f"identity conflict {conflict_id} is already {row.status}")
        return dict(row._mapping)

    def _counts(self, name: str) -> dict[str, int]:
        f = archive_files.c
        with translated("store"), self.engine.connect() as conn:
            by_state: dict[str, int] = dict(
                conn.execute(
                    select(f.state, func.count()).where(f.archive == name).group_by(f.state)
                ).all()
            )
            counts = {f"files_{state}": int(n) for state, n in by_state.items()}
            for label, table in (
                ("patients", image_patients),
                ("studies", image_studies),
                ("series", image_series),
                ("instances", image_instances),
            ):
                counts[label] = int(
                    conn.execute(
                        select(func.count()).select_from(table).where(table.c.archive == name)
                    ).scalar_one()
                )
            i = image_instances.c
            counts["held_back"] = int(
                conn.execute(
                    select(func.count()).where(i.archive == name, i.quarantined.is_(True))
                ).scalar_one()
            )
            counts["instances"] -= counts["held_back"]  # only what can be found
            counts["identity_conflicts"] = int(
                conn.execute(
                    select(func.count())
                    .select_from(identity_conflicts)
                    .where(
                        identity_conflicts.c.archive == name,
                        identity_conflicts.c.status == "open",
                    )
                ).scalar_one()
            )
        return counts


def _context(name: str) -> str:
    return f"archive:{name}"

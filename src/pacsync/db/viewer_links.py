"""Viewer links as issued: one row per link, so a link can be revoked before it expires.

The token itself is never stored (it is signed, see
:mod:`pacsync.security.viewer_links`); the row keeps the link's id, its study, who
asked for it, when it expires and, once revoked, when and by whom.
"""

from __future__ import annotations

import builtins
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, DateTime, Engine, Index, String, Table, insert, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import metadata
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidState, NotFound

viewer_links = Table(
    "viewer_links",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("study_uid", String(64), nullable=False),
    Column("issued_to", String(200), nullable=False),
    Column("issued_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("revoked_at", DateTime),
    Column("revoked_by", String(200)),
    Index("ix_viewer_links_study", "study_uid"),
)
_t = viewer_links.c
_LIST_HINT = (
    "List them: `pacsync viewer-links list --all` or GET /api/v1/viewer-links?active=false."
)


@dataclass(frozen=True)
class ViewerLinkRecord:
    """An issued link (times are naive UTC, as the store keeps them)."""

    link_id: str
    study_uid: str
    issued_to: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None

    def active(self, now: dt.datetime | None = None) -> bool:
        """Neither revoked nor expired."""
        return self.revoked_at is None and self.expires_at > (now or utc_now())


def _record(row: Any) -> ViewerLinkRecord:
    return ViewerLinkRecord(
        link_id=row.id,
        study_uid=row.study_uid,
        issued_to=row.issued_to,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


class ViewerLinkStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        link_id: str,
        study_uid: str,
        issued_to: str,
        expires_at: dt.datetime,
        issued_at: dt.datetime | None = None,
    ) -> ViewerLinkRecord:
        """Keep a link just issued."""
        link = ViewerLinkRecord(
            link_id, study_uid, issued_to, issued_at or utc_now(), expires_at, None, None
        )
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                insert(viewer_links).values(
                    id=link.link_id,
                    study_uid=link.study_uid,
                    issued_to=link.issued_to,
                    issued_at=link.issued_at,
                    expires_at=link.expires_at,
                )
            )
        return link

    def get(self, link_id: str) -> ViewerLinkRecord | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(viewer_links).where(_t.id == link_id)).first()
        return None if row is None else _record(row)

    def status(self, link_id: str) -> str:
        """``active``, ``revoked``, or ``unknown`` for a link never issued through the API
        (or issued before links were recorded)."""
        stmt = select(_t.revoked_at).where(_t.id == link_id)
        with translated("store"), self.engine.connect() as conn:
            found = conn.execute(stmt).first()
        if found is None:
            return "unknown"
        return "active" if found[0] is None else "revoked"

    def revoke(self, link_id: str, by: str) -> ViewerLinkRecord:
        """Revoke one link; NotFound for an unknown id, InvalidState when already revoked."""
        with translated("store"), self.engine.begin() as conn:
            result = conn.execute(
                update(viewer_links)
                .where(_t.id == link_id, _t.revoked_at.is_(None))
                .values(revoked_at=utc_now(), revoked_by=by)
            )
            row = conn.execute(select(viewer_links).where(_t.id == link_id)).first()
        if row is None:
            raise NotFound(f"no viewer link '{link_id}'", hint=_LIST_HINT)
        if result.rowcount != 1:
            raise InvalidState(
                f"viewer link '{link_id}' was already revoked by {row.revoked_by}",
                hint="A revoked link stays revoked; nothing to do.",
            )
        return _record(row)

    def revoke_study(self, study_uid: str, by: str) -> int:
        """Revoke every active link of a study; how many were."""
        now = utc_now()
        with translated("store"), self.engine.begin() as conn:
            result = conn.execute(
                update(viewer_links)
                .where(_t.study_uid == study_uid, _t.revoked_at.is_(None), _t.expires_at > now)
                .values(revoked_at=now, revoked_by=by)
            )
        return int(result.rowcount)

    def list(
        self, *, study_uid: str | None = None, active_only: bool = False, limit: int = 100
    ) -> builtins.list[ViewerLinkRecord]:
        """Links, newest first."""
        stmt = select(viewer_links).order_by(_t.issued_at.desc(), _t.id).limit(limit)
        if study_uid is not None:
            stmt = stmt.where(_t.study_uid == study_uid)
        if active_only:
            stmt = stmt.where(_t.revoked_at.is_(None), _t.expires_at > utc_now())
        with translated("store"), self.engine.connect() as conn:
            return [_record(row) for row in conn.execute(stmt)]

"""The audit trail: an append-only record of who did what, when, from where, with what outcome."""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, insert, select

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import audit_log


def local_actor() -> str:
    """The operating-system user running a command (the CLI's actor)."""
    try:
        return f"os:{getpass.getuser()}"
    except (KeyError, OSError):
        return "os:unknown"


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        *,
        actor: str,
        action: str,
        target: str | None,
        outcome: str,
        detail: dict[str, Any] | None = None,
        source_ip: str | None = None,
    ) -> None:
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                insert(audit_log).values(
                    at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    actor=actor,
                    action=action,
                    target=target,
                    detail=detail or {},
                    outcome=outcome,
                    source_ip=source_ip,
                )
            )

    def recent(self, *, action: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if action:
            stmt = stmt.where(audit_log.c.action == action)
        with translated("store"), self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def query(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        outcome: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Entries newest first, ``limit`` from ``offset``, and how many match in all.

        ``action`` ending in ``*`` matches a family (``jobs.*``); times are naive UTC,
        ``since`` inclusive and ``until`` exclusive.
        """
        where: list[ColumnElement[bool]] = []
        c = audit_log.c
        if actor:
            where.append(c.actor == actor)
        if action and action.endswith("*"):
            where.append(c.action.startswith(action[:-1], autoescape=True))
        elif action:
            where.append(c.action == action)
        if target:
            where.append(c.target == target)
        if outcome:
            where.append(c.outcome == outcome)
        if since:
            where.append(c.at >= since)
        if until:
            where.append(c.at < until)
        stmt = select(audit_log).where(*where).order_by(c.id.desc()).limit(limit).offset(offset)
        counted = select(func.count()).select_from(audit_log).where(*where)
        with translated("store"), self.engine.connect() as conn:
            items = [dict(r._mapping) for r in conn.execute(stmt)]
            return items, int(conn.execute(counted).scalar_one())

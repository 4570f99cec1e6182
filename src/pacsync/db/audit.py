"""The audit trail: an append-only record of who did what, when, from where, with what outcome."""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

from sqlalchemy import Engine, insert, select

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

"""Messages on their way to MLLP routes: one row per (route, message), sent in the
order the messages arrived, each until its ACK (at least once: a resend keeps the
message's control id, so a receiver that de-duplicates keeps it once)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    func,
    select,
    update,
)

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import metadata
from pacsync.ports import Outgoing

hl7_deliveries = Table(
    "hl7_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("route", String(100), nullable=False),
    Column("message_id", Integer, nullable=False),
    Column("state", String(10), nullable=False),  # pending, sent, refused
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("ack_code", String(2)),
    Column("error", JSON),
    Column("created_at", DateTime, nullable=False),
    Column("sent_at", DateTime),
    UniqueConstraint("route", "message_id", name="uq_hl7_deliveries_once"),
    Index("ix_hl7_deliveries_route", "route", "state", "message_id"),
)

PENDING, SENT, REFUSED = "pending", "sent", "refused"


class DeliveryStore:
    """The :class:`pacsync.ports.MllpOutbox` of every route, in the pacsync store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def enqueue(
        self, conn: Any, items: Sequence[tuple[str, int]], now: dt.datetime, *, again: bool = False
    ) -> None:
        """(route, message id) pairs to send, in ``conn``'s transaction; known ones skipped,
        or with ``again`` put back in line (an application ACK after a reprocessing)."""
        if not items:
            return
        d = hl7_deliveries
        rows = [
            {"route": route, "message_id": mid, "state": PENDING, "created_at": now}
            for route, mid in dict.fromkeys(items)
        ]
        known = {
            (r, m): i
            for i, r, m in conn.execute(
                select(d.c.id, d.c.route, d.c.message_id).where(
                    d.c.message_id.in_([row["message_id"] for row in rows])
                )
            )
        }
        fresh = [row for row in rows if (row["route"], row["message_id"]) not in known]
        if fresh:
            conn.execute(d.insert(), fresh)
        seen = [known[(row["route"], row["message_id"])] for row in rows if row not in fresh]
        if again and seen:
            conn.execute(
                update(d).where(d.c.id.in_(seen)).values(state=PENDING, ack_code=None, error=None)
            )

    def pending(self, route: str, limit: int) -> list[Outgoing]:
        d, m = hl7_deliveries, metadata.tables["hl7_messages"]  # by name: no import cycle
        stmt = (
            select(d.c.id, d.c.message_id, m.c.payload, m.c.control_id)
            .join(m, m.c.id == d.c.message_id)
            .where(d.c.route == route, d.c.state == PENDING)
            .order_by(d.c.message_id)
            .limit(limit)
        )
        with translated("store"), self.engine.connect() as conn:
            return [Outgoing(i, mid, bytes(p), c) for i, mid, p, c in conn.execute(stmt)]

    def sent(self, delivery_id: int, ack_code: str, now: dt.datetime) -> None:
        self._mark(delivery_id, state=SENT, ack_code=ack_code[:2], sent_at=now, error=None)

    def refused(self, delivery_id: int, error: dict[str, Any], now: dt.datetime) -> None:
        self._mark(delivery_id, state=REFUSED, sent_at=now, error=error)

    def tried(self, delivery_id: int, error: dict[str, Any]) -> None:
        """A transient failure: it stays pending, the attempt is counted."""
        self._mark(delivery_id, error=error)

    def routes_waiting(self) -> list[str]:
        d = hl7_deliveries
        stmt = select(d.c.route).where(d.c.state == PENDING).distinct()
        with translated("store"), self.engine.connect() as conn:
            return sorted(conn.execute(stmt).scalars())

    def counts(self) -> dict[str, dict[str, int]]:
        d = hl7_deliveries
        stmt = select(d.c.route, d.c.state, func.count()).group_by(d.c.route, d.c.state)
        out: dict[str, dict[str, int]] = {}
        with translated("store"), self.engine.connect() as conn:
            for route, state, n in conn.execute(stmt):
                out.setdefault(route, {})[state] = int(n)
        return out

    def retry_refused(self, route: str) -> int:
        d = hl7_deliveries
        with translated("store"), self.engine.begin() as conn:
            result = conn.execute(
                update(d).where(d.c.route == route, d.c.state == REFUSED).values(state=PENDING)
            )
            return int(result.rowcount or 0)

    def _mark(self, delivery_id: int, **values: Any) -> None:
        d = hl7_deliveries
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                update(d).where(d.c.id == delivery_id).values(attempts=d.c.attempts + 1, **values)
            )


__all__ = ["PENDING", "REFUSED", "SENT", "DeliveryStore", "hl7_deliveries"]

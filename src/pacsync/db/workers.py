"""Workers in the store: who is running, their heart-beats, and who took over whom."""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, insert, or_, select, update

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import workers
from pacsync.domain.clock import utc_now


@dataclass(frozen=True, slots=True)
class WorkerView:
    executor_id: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int | None
    status: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    taken_over_by: str | None
    taken_over_at: dt.datetime | None


class WorkerRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def register(self, executor_id: str, queues: list[str], concurrency: int | None) -> None:
        now = utc_now()
        values: dict[str, Any] = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": queues,
            "concurrency": concurrency,
            "status": "running",
            "started_at": now,
            "heartbeat_at": now,
            "taken_over_by": None,
            "taken_over_at": None,
        }
        with translated("store"), self.engine.begin() as conn:
            found = conn.execute(
                update(workers).where(workers.c.executor_id == executor_id).values(values)
            ).rowcount
            if not found:
                conn.execute(insert(workers).values(executor_id=executor_id, **values))

    def beat(self, executor_id: str) -> None:
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                update(workers)
                .where(workers.c.executor_id == executor_id)
                .values(heartbeat_at=utc_now(), status="running")
            )

    def stopped(self, executor_id: str) -> None:
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                update(workers)
                .where(workers.c.executor_id == executor_id)
                .values(status="stopped", heartbeat_at=utc_now())
            )

    def claim_stale(self, me: str, silent_for_s: float) -> list[str]:
        """Executors silent for ``silent_for_s`` seconds and not yet taken over since, each
        claimed by exactly one caller (the one whose update matched)."""
        now = utc_now()
        cutoff = now - dt.timedelta(seconds=silent_for_s)
        stale = and_(
            workers.c.executor_id != me,
            workers.c.heartbeat_at < cutoff,
            or_(
                workers.c.taken_over_at.is_(None), workers.c.taken_over_at < workers.c.heartbeat_at
            ),
        )
        claimed: list[str] = []
        with translated("store"), self.engine.connect() as conn:
            candidates = [r[0] for r in conn.execute(select(workers.c.executor_id).where(stale))]
        for executor in candidates:
            with translated("store"), self.engine.begin() as conn:
                won = conn.execute(
                    update(workers)
                    .where(workers.c.executor_id == executor, stale)
                    .values(taken_over_by=me, taken_over_at=now, status="lost")
                ).rowcount
            if won:
                claimed.append(executor)
        return claimed

    def all(self) -> list[WorkerView]:
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(select(workers).order_by(workers.c.executor_id))
            return [WorkerView(**{f: r._mapping[f] for f in WorkerView.__slots__}) for r in rows]

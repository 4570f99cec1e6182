"""Dead letters: rejected records stored whole with their reason; listable and reprocessable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import dead_letters
from pacsync.domain.clock import utc_now
from pacsync.domain.records import Key, Rejected, jsonable, key_text, parse_key

VALIDATION_CODE = "PACS-004"
PARKED = ("open", "retry")  # waiting for the record, with or without a retry asked for


class DeadLetterStore:
    """A :class:`pacsync.ports.DeadLetters` in the store, plus the operator's view of it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def park(
        self, job_id: str | None, pipeline: str, entity: str, rejected: Sequence[Rejected]
    ) -> int:
        if not rejected:
            return 0
        now = utc_now()
        keys = [key_text(r.key) for r in rejected]
        with translated("store"), self.engine.begin() as conn:
            known = {
                (row.record_key, row.fingerprint)
                for row in conn.execute(
                    select(dead_letters.c.record_key, dead_letters.c.fingerprint).where(
                        dead_letters.c.pipeline == pipeline,
                        dead_letters.c.entity == entity,
                        dead_letters.c.record_key.in_(keys),
                    )
                )
            }
            fresh = []
            for key, item in zip(keys, rejected, strict=True):
                if (key, item.fingerprint) in known:
                    continue
                known.add((key, item.fingerprint))
                fresh.append(
                    {
                        "job_id": job_id,
                        "pipeline": pipeline,
                        "entity": entity,
                        "record_key": key,
                        "fingerprint": item.fingerprint,
                        "payload": {k: jsonable(v) for k, v in item.record.items()},
                        "error_code": VALIDATION_CODE,
                        "rule": item.error.rule,
                        "field": item.error.field,
                        "message": item.error.message,
                        "status": "open",
                        "attempts": 1,
                        "history": [
                            {
                                "at": now.isoformat(),
                                "event": "parked",
                                "job_id": job_id,
                                "message": item.error.message,
                            }
                        ],
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            stale = [d["record_key"] for d in fresh]
            if stale:
                conn.execute(
                    update(dead_letters)
                    .where(
                        dead_letters.c.pipeline == pipeline,
                        dead_letters.c.entity == entity,
                        dead_letters.c.status.in_(PARKED),
                        dead_letters.c.record_key.in_(stale),
                    )
                    .values(status="superseded", updated_at=now)
                )
            if fresh:
                try:
                    conn.execute(insert(dead_letters), fresh)
                except IntegrityError:  # a concurrent run parked the same record version
                    return 0
        return len(fresh)

    def park_job(
        self,
        job_id: str,
        request: dict[str, Any],
        error: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> bool:
        """Keep a job that failed for good, whole, to be retried or discarded."""
        now = utc_now()
        events = [{"event": "attempt failed", **h} for h in history]
        events.append({"at": now.isoformat(), "event": "parked", "job_id": job_id})
        letter = {
            "kind": "job",
            "job_id": job_id,
            "pipeline": str(request.get("pipeline", "")),
            "entity": ",".join(request.get("entities") or []) or "*",
            "record_key": job_id,
            "fingerprint": "job",
            "payload": request,
            "error_code": str(error.get("code")),
            "rule": "job",
            "field": None,
            "message": str(error.get("message")),
            "status": "open",
            "attempts": max(1, len(history)),
            "history": events,
            "created_at": now,
            "updated_at": now,
        }
        with translated("store"), self.engine.begin() as conn:
            try:
                conn.execute(insert(dead_letters).values(letter))
            except IntegrityError:  # parked already: the step ran again after a crash
                return False
        return True

    def open_keys(self, pipeline: str, entity: str) -> set[Key]:
        return self._keys(pipeline, entity, PARKED)

    def retry_keys(self, pipeline: str, entity: str) -> set[Key]:
        return self._keys(pipeline, entity, ("retry",))

    def _keys(self, pipeline: str, entity: str, statuses: Sequence[str]) -> set[Key]:
        stmt = select(dead_letters.c.record_key).where(
            dead_letters.c.kind == "record",
            dead_letters.c.pipeline == pipeline,
            dead_letters.c.entity == entity,
            dead_letters.c.status.in_(statuses),
        )
        with translated("store"), self.engine.connect() as conn:
            return {parse_key(row[0]) for row in conn.execute(stmt)}

    def retried(self, pipeline: str, entity: str, keys: Sequence[Key]) -> int:
        return self._update_keys(
            pipeline,
            entity,
            keys,
            ("retry",),
            {"status": "open", "attempts": dead_letters.c.attempts + 1},
        )

    def resolve(self, pipeline: str, entity: str, keys: Sequence[Key], reason: str) -> int:
        return self._update_keys(
            pipeline,
            entity,
            keys,
            PARKED,
            {"status": "resolved", "message": dead_letters.c.message + f" [{reason}]"},
        )

    def _update_keys(
        self,
        pipeline: str,
        entity: str,
        keys: Sequence[Key],
        statuses: Sequence[str],
        values: dict[str, Any],
    ) -> int:
        """Set ``values`` on the letters of ``keys`` that are in one of ``statuses``."""
        texts = [key_text(k) for k in keys]
        changed = 0
        with translated("store"), self.engine.begin() as conn:
            for start in range(0, len(texts), 1000):
                changed += conn.execute(
                    update(dead_letters)
                    .where(
                        dead_letters.c.pipeline == pipeline,
                        dead_letters.c.entity == entity,
                        dead_letters.c.status.in_(statuses),
                        dead_letters.c.record_key.in_(texts[start : start + 1000]),
                    )
                    .values(updated_at=utc_now(), **values)
                ).rowcount
        return changed

    def find(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = "open",
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        stmt = select(dead_letters).order_by(dead_letters.c.id).limit(limit).offset(offset)
        if pipeline:
            stmt = stmt.where(dead_letters.c.pipeline == pipeline)
        if status:
            stmt = stmt.where(dead_letters.c.status == status)
        with translated("store"), self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def count(self, *, pipeline: str | None = None, status: str | None = "open") -> int:
        """How many letters ``find`` would list without a limit."""
        stmt = select(func.count()).select_from(dead_letters)
        if pipeline:
            stmt = stmt.where(dead_letters.c.pipeline == pipeline)
        if status:
            stmt = stmt.where(dead_letters.c.status == status)
        with translated("store"), self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def open_by_pipeline(self) -> dict[str, int]:
        """Letters waiting for an operator (open or asked to retry), per pipeline."""
        stmt = (
            select(dead_letters.c.pipeline, func.count())
            .where(dead_letters.c.status.in_(PARKED))
            .group_by(dead_letters.c.pipeline)
        )
        with translated("store"), self.engine.connect() as conn:
            return {str(p): int(n) for p, n in conn.execute(stmt)}

    def parked_job(self, job_id: str) -> dict[str, Any] | None:
        """The dead letter a job that failed for good was parked as, while still parked."""
        stmt = select(dead_letters).where(
            dead_letters.c.kind == "job",
            dead_letters.c.record_key == job_id,
            dead_letters.c.status.in_(PARKED),
        )
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else dict(row._mapping)

    def get(self, letter_id: int) -> dict[str, Any] | None:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(
                select(dead_letters).where(dead_letters.c.id == letter_id)
            ).one_or_none()
        return None if row is None else dict(row._mapping)

    def set_status(self, letter_id: int, status: str, event: str) -> bool:
        letter = self.get(letter_id)
        if letter is None:
            return False
        now = utc_now()
        history = [*letter["history"], {"at": now.isoformat(), "event": event}]
        attempts = letter["attempts"] + (1 if event == "retried" else 0)
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                update(dead_letters)
                .where(dead_letters.c.id == letter_id)
                .values(
                    status=status,
                    history=history,
                    attempts=attempts,
                    updated_at=now,
                )
            )
        return True

"""The message journal: every HL7 v2 message received, kept before it is acknowledged.

An accepted message is kept once per sender and control id (a partial unique
index over accepted rows); a copy arriving later is answered from the first.
Messages answered AE/AR are logged too (state ``rejected``) and never processed.
On SQLite the journal writes through connections of its own whose commits are
fsynced (``synchronous=FULL``) whatever the store's default: an acknowledged
message survives a power cut, not only a crash.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    and_,
    bindparam,
    event,
    func,
    select,
    true,
    update,
)

from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.errors import translated
from pacsync.db import hl7_letters
from pacsync.db.message_journal import JournalWriter
from pacsync.db.tables import metadata
from pacsync.domain.messaging import Incoming, Kept, MessageState
from pacsync.ports import PendingMessage, Settled

hl7_messages = Table(
    "hl7_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("feed", String(100), nullable=False),
    Column("sender", String(400), nullable=False),
    Column("control_id", String(199), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("version", String(20), nullable=False),
    Column("peer", String(100), nullable=False),
    Column("received_at", DateTime, nullable=False),
    Column("encoding", String(40), nullable=False),
    Column("size", Integer, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("ack_code", String(2), nullable=False),
    Column("accepted", Boolean, nullable=False),
    Column("reason", String(500)),
    Column("state", String(12), nullable=False),
    Column("patient_id", String(100)),
    Column("processed_at", DateTime),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("error", JSON),
    Index("ix_hl7_messages_state", "state", "feed", "id"),
    Index("ix_hl7_messages_kind", "kind", "id"),
    Index("ix_hl7_messages_patient", "patient_id"),
)

_ACCEPTED = hl7_messages.c.accepted == true()
Index(
    "uq_hl7_messages_control",
    hl7_messages.c.sender,
    hl7_messages.c.control_id,
    unique=True,
    sqlite_where=_ACCEPTED,
    postgresql_where=_ACCEPTED,
)


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """One row of the message log, without the payload."""

    id: int
    feed: str
    sender: str
    control_id: str
    kind: str
    version: str
    peer: str
    received_at: dt.datetime
    encoding: str
    size: int
    ack_code: str
    accepted: bool
    state: str
    reason: str | None
    patient_id: str | None
    processed_at: dt.datetime | None
    attempts: int
    error: dict[str, Any] | None


class MessageStore:
    """The :class:`pacsync.ports.MessageJournal` on the pacsync store, and its log."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer: JournalWriter | None = None  # made on the first keep: most uses read
        self._making = threading.Lock()

    # -- MessageJournal ------------------------------------------------------------------

    def keep(self, messages: Sequence[Incoming]) -> list[Kept]:
        with self._making:
            if self._writer is None:
                journal = self.engine
                if journal.dialect.name == "sqlite":  # its own connections, fsyncing commits
                    journal = make_engine(journal.url.render_as_string(hide_password=False))
                    event.listen(journal, "connect", _synchronous_full)
                self._writer = JournalWriter(journal)
        return self._writer.keep(messages)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()

    # -- the log ------------------------------------------------------------------------

    def search(
        self,
        *,
        kind: str | None = None,
        control_id: str | None = None,
        patient_id: str | None = None,
        state: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        feed: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[LoggedMessage]:
        table = hl7_messages
        stmt = select(*(c for c in table.c if c.name != "payload"))
        if kind:
            stmt = stmt.where(
                table.c.kind.like(kind.replace("*", "%") + ("" if "^" in kind else "%"))
            )
        if control_id:
            stmt = stmt.where(table.c.control_id == control_id)
        if patient_id:
            stmt = stmt.where(table.c.patient_id == patient_id)
        if state:
            stmt = stmt.where(table.c.state == state)
        if feed:
            stmt = stmt.where(table.c.feed == feed)
        if since:
            stmt = stmt.where(table.c.received_at >= since)
        if until:
            stmt = stmt.where(table.c.received_at < until)
        stmt = stmt.order_by(table.c.id.desc()).limit(limit).offset(offset)
        with translated("store"), self.engine.connect() as conn:
            return [LoggedMessage(**row._mapping) for row in conn.execute(stmt)]

    def get(self, message_id: int) -> LoggedMessage | None:
        table = hl7_messages
        stmt = select(*(c for c in table.c if c.name != "payload")).where(table.c.id == message_id)
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else LoggedMessage(**row._mapping)

    def payload(self, message_id: int) -> tuple[bytes, str] | None:
        table = hl7_messages
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(
                select(table.c.payload, table.c.encoding).where(table.c.id == message_id)
            ).first()
        return None if row is None else (bytes(row[0]), row[1])

    def counts(self) -> dict[str, dict[str, int]]:
        """Messages per feed by state and answer, for metrics and the dashboard."""
        table = hl7_messages
        stmt = select(table.c.feed, table.c.state, table.c.ack_code, func.count()).group_by(
            table.c.feed, table.c.state, table.c.ack_code
        )
        out: dict[str, dict[str, int]] = {}
        with translated("store"), self.engine.connect() as conn:
            for feed, state, code, count in conn.execute(stmt):
                feed_counts = out.setdefault(feed, {})
                feed_counts[state] = feed_counts.get(state, 0) + count
                feed_counts[f"ack_{code or 'none'}"] = (
                    feed_counts.get(f"ack_{code or 'none'}", 0) + count
                )
        return out

    def oldest_pending(self) -> dict[str, float]:
        """Seconds the oldest message waiting to be processed has waited, per feed."""
        table = hl7_messages
        stmt = (
            select(table.c.feed, func.min(table.c.received_at))
            .where(table.c.state == MessageState.RECEIVED)
            .group_by(table.c.feed)
        )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with translated("store"), self.engine.connect() as conn:
            return {feed: (now - at).total_seconds() for feed, at in conn.execute(stmt)}

    def processing_seconds(
        self, feeds: Sequence[str], recent: int = 1000
    ) -> dict[str, list[float]]:
        """Seconds from receipt to processing of each feed's ``recent`` last processed
        messages, sorted (a reprocessed message counts from its first receipt)."""
        table = hl7_messages
        out: dict[str, list[float]] = {}
        with translated("store"), self.engine.connect() as conn:
            for feed in feeds:
                stmt = (
                    select(table.c.received_at, table.c.processed_at)
                    .where(table.c.state == MessageState.PROCESSED, table.c.feed == feed)
                    .order_by(table.c.id.desc())
                    .limit(recent)
                )
                spans = [(done - at).total_seconds() for at, done in conn.execute(stmt) if done]
                if spans:
                    out[feed] = sorted(max(0.0, s) for s in spans)
        return out

    # -- processing ---------------------------------------------------------------------

    def pending(self, feed: str | None, limit: int) -> list[PendingMessage]:
        """The oldest received messages not yet processed."""
        table = hl7_messages
        stmt = select(table.c.id, table.c.payload, table.c.encoding).where(
            table.c.state == MessageState.RECEIVED
        )
        if feed is not None:
            stmt = stmt.where(table.c.feed == feed)
        stmt = stmt.order_by(table.c.id).limit(limit)
        with translated("store"), self.engine.connect() as conn:
            return [PendingMessage(i, bytes(p), e) for i, p, e in conn.execute(stmt)]

    def settle(
        self,
        outcomes: Sequence[Settled],
        now: dt.datetime,
        then: Callable[[Any], None] | None = None,
    ) -> None:
        """Mark messages processed (with the patient they concern) or failed (with why,
        parked as a dead letter); ``then`` writes more in the same transaction."""
        table = hl7_messages
        stmt = update(table).where(table.c.id == bindparam("message_id"))
        stmt = stmt.values(
            state=bindparam("new_state"), processed_at=now, patient_id=bindparam("patient"),
            attempts=table.c.attempts + 1, error=bindparam("why", type_=JSON),
        )  # fmt: skip
        params = [
            {
                "message_id": o.id,
                "new_state": MessageState.PROCESSED if o.error is None else MessageState.FAILED,
                "patient": o.patient_id and o.patient_id[:100],
                "why": o.error,
            }
            for o in outcomes
        ]
        if not params:
            return
        with translated("store"), self.engine.begin() as conn:
            conn.execute(stmt, params)
            hl7_letters.record(conn, table, outcomes, now)  # failures park as dead letters
            if then is not None:
                then(conn)

    def reprocess(self, ids: Sequence[int] | None = None, feed: str | None = None) -> int:
        """Put failed messages back in line (all of them, or those of ``ids``/``feed``)."""
        table = hl7_messages
        where = [table.c.state == MessageState.FAILED]
        if ids:
            where.append(table.c.id.in_(list(ids)))
        if feed:
            where.append(table.c.feed == feed)
        with translated("store"), self.engine.begin() as conn:
            result = conn.execute(
                update(table).where(and_(*where)).values(state=MessageState.RECEIVED)
            )
            return int(result.rowcount or 0)


def _synchronous_full(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


__all__ = ["LoggedMessage", "MessageStore", "hl7_messages"]

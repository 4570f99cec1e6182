"""Keeping received HL7 messages: the write path of the message journal.

Every acknowledgement waits for one of these commits, thousands of times a
second, so the path is the driver's own: one connection held for it, one
multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` per commit for the
accepted messages, the parameters built straight from the messages.  A
general-purpose layer's statement building and transaction bookkeeping would
cost more than the commit itself.

An accepted message is kept once per sender and control id (the partial unique
index ``uq_hl7_messages_control``); a copy, in the same commit or later, is
answered from the first.  Messages answered AE/AR are logged too, each one.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pacsync.connectors.sql.errors import translate
from pacsync.domain.messaging import Incoming, Kept, MessageState

Key = tuple[str, str]  # sender, control id

COLUMNS = (
    "feed", "sender", "control_id", "kind", "version", "peer", "received_at", "encoding",
    "size", "payload", "ack_code", "accepted", "reason", "state",
)  # fmt: skip


class JournalWriter:
    """Keeps batches of messages in ``hl7_messages`` through one held driver connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._error: type[BaseException] = engine.dialect.loaded_dbapi.Error
        self._held: Any = None  # the pool's proxy of a driver connection
        self._lock = threading.Lock()
        self._values: Callable[[Incoming], list[Any]] = _sqlite_values if self.sqlite else _values

    def keep(self, messages: Sequence[Incoming]) -> list[Kept]:
        """Keep ``messages`` in one commit; where each one is, in order."""
        if not messages:
            return []
        first: dict[Key, int] = {}  # the same message twice in one batch: kept once
        for index, message in enumerate(messages):
            if message.accepted:
                first.setdefault(_key(message), index)
        with self._lock:
            try:
                if self._held is None:
                    self._held = self.engine.raw_connection()
                cursor = self._held.cursor()
                try:
                    kept = self._accepted(cursor, messages, first)
                    kept |= self._rejected(cursor, messages)
                finally:
                    cursor.close()
                self._held.commit()
            except BaseException as exc:
                self._drop()
                if isinstance(exc, (self._error, SQLAlchemyError, OSError)):
                    raise translate(exc, "store") from exc
                raise
        return [
            kept[i] if i in kept else Kept(kept[first[_key(m)]].id, True)
            for i, m in enumerate(messages)
        ]

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _accepted(
        self, cursor: Any, messages: Sequence[Incoming], first: dict[Key, int]
    ) -> dict[int, Kept]:
        """Insert each accepted message not kept before; by index, where each one is."""
        if not first:
            return {}
        params = [value for i in first.values() for value in self._values(messages[i])]
        cursor.execute(_upsert_sql(self.sqlite, len(first)), params)
        new = {(s, c): i for s, c, i in cursor.fetchall()}
        kept = {index: Kept(new[key], False) for key, index in first.items() if key in new}
        select = _earlier_sql(self.sqlite)
        for key, index in first.items():
            if key not in new:  # kept before: answered from the first copy
                cursor.execute(select, key)
                kept[index] = Kept(cursor.fetchone()[0], True)
        return kept

    def _rejected(self, cursor: Any, messages: Sequence[Incoming]) -> dict[int, Kept]:
        """Log the messages answered AE/AR (never de-duplicated: each answer is logged)."""
        kept: dict[int, Kept] = {}
        for index, message in enumerate(messages):
            if not message.accepted:
                cursor.execute(_insert_sql(self.sqlite), self._values(message))
                kept[index] = Kept(cursor.fetchone()[0], False)
        return kept

    def _drop(self) -> None:
        """Throw the held connection away: the next commit starts on a fresh one."""
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(Exception):  # already broken: nothing more to release
                held.invalidate()


def _key(message: Incoming) -> Key:
    return _text(message.sender[:400]), _text(message.control_id[:199])


def _values(message: Incoming) -> list[Any]:
    """A message's row, in :data:`COLUMNS` order, as the driver takes it."""
    return [
        message.feed,
        _text(message.sender[:400]),
        _text(message.control_id[:199]),
        _text(message.kind[:40]),
        _text(message.version[:20]),
        message.peer[:100],
        message.received_at,
        message.encoding,
        len(message.payload),
        message.payload,
        message.ack_code,
        message.accepted,
        (message.reason or None) and _text(message.reason[:500]),
        (MessageState.RECEIVED if message.accepted else MessageState.REJECTED).value,
    ]


def _text(value: str) -> str:
    """Text a database takes (PostgreSQL refuses NUL): the reader refuses such headers,
    so this is only a guard that one message cannot fail the commit of the others."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _sqlite_values(message: Incoming) -> list[Any]:
    """The row for SQLite: the time as SQLAlchemy writes it, the flag as an integer."""
    values = _values(message)
    values[6] = message.received_at.isoformat(" ", "microseconds")
    values[11] = int(message.accepted)
    return values


def _marks(sqlite: bool) -> tuple[str, str]:
    return ("?", "accepted = 1") if sqlite else ("%s", "accepted = true")


@functools.lru_cache(maxsize=1024)  # one per batch size up to the group commit's largest
def _upsert_sql(sqlite: bool, count: int) -> str:
    mark, accepted = _marks(sqlite)
    one = "(" + ", ".join([mark] * len(COLUMNS)) + ")"
    return (
        f"INSERT INTO hl7_messages ({', '.join(COLUMNS)}) VALUES "
        + ", ".join([one] * count)
        + f" ON CONFLICT (sender, control_id) WHERE {accepted} DO NOTHING"
        " RETURNING sender, control_id, id"
    )


@functools.cache
def _insert_sql(sqlite: bool) -> str:
    mark, _ = _marks(sqlite)
    return (
        f"INSERT INTO hl7_messages ({', '.join(COLUMNS)}) VALUES "
        f"({', '.join([mark] * len(COLUMNS))}) RETURNING id"
    )


@functools.cache
def _earlier_sql(sqlite: bool) -> str:
    mark, accepted = _marks(sqlite)
    return (
        f"SELECT id FROM hl7_messages WHERE {accepted} AND sender = {mark} AND control_id = {mark}"
    )


__all__ = ["COLUMNS", "JournalWriter"]

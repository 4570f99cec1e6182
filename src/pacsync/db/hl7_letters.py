"""HL7 messages that could not be processed, as dead letters (kind ``hl7``).

A message that fails processing is parked as a dead letter beside the records
and jobs that failed, so one list shows everything waiting for an operator: its
pipeline is ``hl7:<feed>``, its entity the message type, its key the message's
id in the log.  The letter refers to the message (kept whole in the message
log) and carries the coded reason with every value it quotes masked: the list
is open to viewers, the log's full text to operators only.  The same failure
again reopens its letter; another failure supersedes it; processing the message
at last resolves it.  All of it in the transaction that settles the messages.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update

from pacsync.db.tables import dead_letters
from pacsync.domain.phi import mask_error
from pacsync.ports import Settled

KIND = "hl7"
PREFIX = "hl7:"
PARKED = ("open", "retry")


def pipeline_of(feed: str) -> str:
    return f"{PREFIX}{feed}"[:100]


def record(conn: Any, messages: Any, outcomes: Sequence[Settled], now: dt.datetime) -> None:
    """Park the failed ``outcomes`` and resolve the letters of the processed ones;
    ``messages`` is the message log's table, already updated by the settle."""
    done = [o.id for o in outcomes if o.error is None]
    if done:  # only a message tried before can have a letter (attempts is counted already)
        again = conn.execute(
            select(messages.c.id, messages.c.feed).where(
                messages.c.id.in_(done), messages.c.attempts > 1
            )
        ).all()
        if again:
            _resolve(conn, again, now)
    failed = {o.id: o.error for o in outcomes if o.error is not None}
    if failed:
        _park(conn, messages, failed, now)


def _letters_of(rows: Sequence[Any], *columns: Any) -> Any:
    """The letters of the messages ``rows`` (each with its id and feed), found by the
    (pipeline, …) index with plain equality: no collation can reorder them."""
    table = dead_letters
    return select(table.c.id, table.c.history, table.c.attempts, *columns).where(
        table.c.kind == KIND,
        table.c.pipeline.in_(sorted({pipeline_of(row.feed) for row in rows})),
        table.c.record_key.in_([str(row.id) for row in rows]),
    )


def _resolve(conn: Any, rows: Sequence[Any], now: dt.datetime) -> None:
    found = conn.execute(_letters_of(rows).where(dead_letters.c.status.in_(PARKED))).all()
    for letter in found:
        _set(conn, letter, now, "resolved", "processed")


def _park(conn: Any, messages: Any, failed: dict[int, dict[str, Any]], now: dt.datetime) -> None:
    table = dead_letters
    rows = conn.execute(
        select(
            messages.c.id, messages.c.feed, messages.c.kind, messages.c.sender,
            messages.c.control_id, messages.c.received_at,
        ).where(messages.c.id.in_(list(failed)))
    ).all()  # fmt: skip
    if not rows:
        return
    earlier = conn.execute(
        _letters_of(rows, table.c.record_key, table.c.fingerprint, table.c.status)
    ).all()
    for row in rows:
        error = mask_error(failed[row.id]) or {}
        key, fingerprint = str(row.id), _fingerprint(error)
        again = None
        for letter in earlier:
            if letter.record_key != key:
                continue
            if letter.fingerprint == fingerprint:
                again = letter
            elif letter.status in PARKED:
                _set(conn, letter, now, "superseded", "failed otherwise")
        if again is not None:
            _set(conn, again, now, "open", "failed again")
            continue
        conn.execute(insert(table).values(_letter(row, key, fingerprint, error, now)))


def _letter(
    row: Any, key: str, fingerprint: str, error: dict[str, Any], now: dt.datetime
) -> dict[str, Any]:
    message = str(error.get("message") or "the message could not be processed")
    return {
        "kind": KIND,
        "job_id": None,
        "pipeline": pipeline_of(row.feed),
        "entity": (row.kind or "unknown")[:100],
        "record_key": key,
        "fingerprint": fingerprint,
        "payload": {
            "message_id": row.id,
            "feed": row.feed,
            "kind": row.kind,
            "sender": row.sender,
            "control_id": row.control_id,
            "received_at": row.received_at.isoformat(),
            "location": error.get("location"),
        },
        "error_code": str(error.get("code") or "PACS-600")[:20],
        "rule": KIND,
        "field": (str(error["location"])[:100] if error.get("location") else None),
        "message": message,
        "status": "open",
        "attempts": 1,
        "history": [{"at": now.isoformat(), "event": "parked", "message": message}],
        "created_at": now,
        "updated_at": now,
    }


def _set(conn: Any, letter: Any, now: dt.datetime, status: str, event: str) -> None:
    """Move ``letter`` (a row with its id, history and attempts) to ``status``."""
    values: dict[str, Any] = {
        "status": status,
        "updated_at": now,
        "history": [*letter.history, {"at": now.isoformat(), "event": event}],
    }
    if status == "open":  # failed once more
        values["attempts"] = letter.attempts + 1
    conn.execute(update(dead_letters).where(dead_letters.c.id == letter.id).values(values))


def _fingerprint(error: dict[str, Any]) -> str:
    text = "\x1f".join(str(error.get(k) or "") for k in ("code", "location", "message"))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


__all__ = ["KIND", "pipeline_of", "record"]

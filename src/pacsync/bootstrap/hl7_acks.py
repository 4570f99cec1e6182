"""Application acknowledgements (enhanced mode, MSH-16) wired to MLLP routes.

A message whose MSH-16 asks for one (AL; ER on an error; SU on success) gets an
application ACK once it is processed: AA, or AE with the PACS-601 reason and the
segment and field at fault.  It is queued, in the transaction that marks the
message processed or failed, for each route of ``acks`` taking the message's type
and feed, and sent like any routed message (in order, until its own commit ACK,
at least once with the same control id).  A message processed again after a fix
queues a fresh ACK, with a control id of that attempt.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, select

from pacsync.connectors.hl7 import msh
from pacsync.connectors.hl7.ack import AckCode, application_ack, wants_application_ack
from pacsync.connectors.sql.errors import translated
from pacsync.db.deliveries import DeliveryStore
from pacsync.db.messages import MessageStore, hl7_messages
from pacsync.domain.messaging import MessageState, Route
from pacsync.ports import Outgoing, PendingMessage, Settled


class AcknowledgingInbox:
    """The message journal as processing's inbox: settling a batch also queues the
    application ACKs it asks for, in the same transaction."""

    def __init__(self, messages: MessageStore, routes: Sequence[Route]) -> None:
        self.messages = messages
        self.routes = [route for route in routes if route.acks]
        self.deliveries = DeliveryStore(messages.engine)

    def pending(self, feed: str | None, limit: int) -> list[PendingMessage]:
        return self.messages.pending(feed, limit)

    def settle(self, outcomes: Sequence[Settled], now: dt.datetime) -> None:
        if not self.routes:
            self.messages.settle(outcomes, now)
            return
        accepted = {o.id: o.error is None for o in outcomes}

        def queue(conn: Any) -> None:
            items = []
            for mid, feed, kind, payload, encoding in _messages(conn, list(accepted)):
                header = _header(payload, encoding)
                if header is None or not wants_application_ack(header, accepted[mid]):
                    continue
                items += [(r.name, mid) for r in self.routes if r.takes(kind, feed)]
            self.deliveries.enqueue(conn, items, now, again=True)

        self.messages.settle(outcomes, now, then=queue)


class AckOutbox:
    """What waits for a route of ``acks``: the application ACK of each message, built
    from the message and how its processing ended."""

    def __init__(self, engine: Engine) -> None:
        self.deliveries = DeliveryStore(engine)
        self.engine = engine

    def pending(self, route: str, limit: int) -> list[Outgoing]:
        waiting = self.deliveries.pending(route, limit)
        table = hl7_messages
        columns = (table.c.id, table.c.encoding, table.c.state, table.c.error, table.c.attempts)
        stmt = select(*columns).where(table.c.id.in_([w.message_id for w in waiting]))
        with translated("store"), self.engine.connect() as conn:
            found = {row[0]: row[1:] for row in conn.execute(stmt)}
        out = []
        for item in waiting:
            encoding, state, error, attempts = found[item.message_id]
            header = _header(item.payload, encoding)
            if state not in (MessageState.PROCESSED, MessageState.FAILED) or header is None:
                break  # put back in line to be processed again: its ACK waits, order kept
            control_id = f"ACK{item.message_id}-{attempts}"
            out.append(Outgoing(item.delivery_id, item.message_id,
                                _ack(header, state, error, control_id), control_id))  # fmt: skip
        return out

    def sent(self, delivery_id: int, ack_code: str, now: dt.datetime) -> None:
        self.deliveries.sent(delivery_id, ack_code, now)

    def refused(self, delivery_id: int, error: dict[str, Any], now: dt.datetime) -> None:
        self.deliveries.refused(delivery_id, error, now)

    def tried(self, delivery_id: int, error: dict[str, Any]) -> None:
        self.deliveries.tried(delivery_id, error)


def _ack(header: msh.Header, state: str, error: dict[str, Any] | None, control_id: str) -> bytes:
    if state == MessageState.PROCESSED:
        return application_ack(header, AckCode.AA, control_id=control_id)
    why = error or {}
    reason = f"{why.get('code', '')}: {why.get('message', '')}".strip(": ")
    location = str(why.get("location") or "")
    condition = msh.DATA_TYPE_ERROR if location else msh.APPLICATION_INTERNAL_ERROR
    return application_ack(
        header, AckCode.AE, control_id=control_id, condition=condition, reason=reason,
        location=location,
    )  # fmt: skip


def _messages(conn: Any, ids: list[int]) -> list[tuple[int, str, str, bytes, str]]:
    table = hl7_messages
    stmt = select(table.c.id, table.c.feed, table.c.kind, table.c.payload, table.c.encoding)
    rows = conn.execute(stmt.where(table.c.id.in_(ids)).order_by(table.c.id))
    return [(int(i), str(f), str(k), bytes(p), str(e)) for i, f, k, p, e in rows]


def _header(payload: bytes, encoding: str) -> msh.Header | None:
    try:
        return msh.read_header(payload, encoding)
    except msh.HeaderError:
        return None


__all__ = ["AckOutbox", "AcknowledgingInbox"]

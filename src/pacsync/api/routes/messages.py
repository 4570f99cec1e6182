"""``/messages``: the HL7 v2 message log — what was received, what it was answered,
whether it was processed — and reprocessing of failed messages.

Viewers see it de-identified: patient ids shortened, the identity segments of a
message (PID, NK1, GT1, IN1, …) masked; searching by patient id needs an operator."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from pacsync.api import problems
from pacsync.api.deps import AUTHENTICATED, Audit, AuditEntry, StateDep, Viewer
from pacsync.api.schemas import MAX_OFFSET, Model, UtcTime
from pacsync.db.messages import LoggedMessage, MessageStore
from pacsync.domain.access import Principal, Role
from pacsync.domain.phi import mask_error, mask_identifier, mask_message
from pacsync.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/messages", tags=["messages"], responses=AUTHENTICATED)
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the message's id in the log")]
State = Literal["received", "processed", "failed", "rejected"]


class Message(Model):
    id: int
    feed: str = Field(examples=["mllp"])
    sender: str = Field(examples=["PMS|NORTHCLINIC"], description="MSH-3|MSH-4")
    control_id: str = Field(examples=["MSG00001"], description="MSH-10")
    type: str = Field(examples=["ADT^A01"], description="MSH-9.1^MSH-9.2")
    version: str = Field(examples=["2.5.1"])
    peer: str = Field(examples=["10.0.0.7:51022"])
    received_at: UtcTime
    size: int
    ack: str = Field(examples=["AA"], description="the answer sent; empty when none was asked")
    state: State
    reason: str | None = Field(None, description="why it was answered AE/AR")
    patient_id: str | None = Field(None, description="shortened for viewers")
    processed_at: UtcTime | None = None
    attempts: int
    error: dict[str, Any] | None = None

    @classmethod
    def of(cls, row: LoggedMessage, who: Principal) -> Message:
        operator = who.role.allows(Role.OPERATOR)
        patient = row.patient_id if operator else mask_identifier(row.patient_id)
        return cls(
            id=row.id, feed=row.feed, sender=row.sender, control_id=row.control_id,
            type=row.kind, version=row.version, peer=row.peer, received_at=row.received_at,
            size=row.size, ack=row.ack_code, state=row.state,
            reason=row.reason, patient_id=patient, processed_at=row.processed_at,
            attempts=row.attempts, error=row.error if operator else mask_error(row.error),
        )  # fmt: skip


class MessageText(Message):
    text: str = Field(description="segments on lines; identity segments masked for viewers")


class MessagePage(Model):
    items: list[Message] = Field(description="newest first")
    limit: int
    offset: int


class Reprocess(Model):
    ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] = Field(
        default_factory=list, max_length=10000, description="default: every failed message"
    )
    feed: str | None = Field(None, max_length=100)


class Requeued(Model):
    requeued: int


@router.get("", summary="The message log, newest first, with filters")
def list_messages(
    state: StateDep,
    who: Viewer,
    *,
    type: Annotated[str | None, Query(max_length=40, description="ADT, ADT^A01, SIU^*")] = None,
    control_id: Annotated[str | None, Query(max_length=199)] = None,
    patient_id: Annotated[
        str | None, Query(max_length=100, description="PID-3 (operators and admins)")
    ] = None,
    status: State | None = None,
    feed: Annotated[str | None, Query(max_length=100)] = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> MessagePage:
    if patient_id and not who.role.allows(Role.OPERATOR):
        raise InvalidRequest(
            "searching by patient id needs the operator role",
            hint="Ask an operator, or search by type, control id or date.",
        )
    rows = MessageStore(state.store.engine).search(
        kind=type, control_id=control_id, patient_id=patient_id, state=status, feed=feed,
        since=_naive(since), until=_naive(until), limit=limit, offset=offset,
    )  # fmt: skip
    return MessagePage(items=[Message.of(r, who) for r in rows], limit=limit, offset=offset)


@router.get("/{message_id}", summary="One message as received", responses=problems.responses(404))
def get_message(message_id: MessageId, state: StateDep, who: Viewer) -> MessageText:
    store = MessageStore(state.store.engine)
    row = store.get(message_id)
    found = store.payload(message_id)
    if row is None or found is None:
        raise NotFound(f"no message {message_id}", hint="List them: GET /api/v1/messages")
    payload, encoding = found
    text = payload.decode(encoding, errors="replace")
    if not who.role.allows(Role.OPERATOR):
        text = mask_message(text, text[3:4] or "|")
    shown = Message.of(row, who)
    return MessageText(**shown.model_dump(), text=text.replace("\r", "\n").rstrip("\n"))


@router.post(
    "/reprocess",
    summary="Queue failed messages for processing again (operator), after a mapping fix",
)
def reprocess(
    body: Reprocess,
    state: StateDep,
    entry: Annotated[AuditEntry, Audit("messages.reprocess", Role.OPERATOR)],
) -> Requeued:
    count = MessageStore(state.store.engine).reprocess(body.ids or None, body.feed)
    entry.detail = {"requeued": count, "feed": body.feed, "ids": body.ids[:50]}
    return Requeued(requeued=count)


def _naive(at: dt.datetime | None) -> dt.datetime | None:
    """UTC without a zone, as the log stores it."""
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(dt.UTC).replace(tzinfo=None)

"""Messaging: the HL7 feed and one message with its fields named."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from pacsync.api.dashboard.auth import (
    CallerDep,
)
from pacsync.api.dashboard.rendering import audit_read, render, state_of

router = APIRouter(include_in_schema=False)


# -- messaging -----------------------------------------------------------------------------


@router.get("/messages", response_class=HTMLResponse)
def messages_page(request: Request, caller: CallerDep) -> HTMLResponse:
    return render(request, "messages.html", caller)


@router.get("/messages/{message_id}", response_class=HTMLResponse)
def message_page(request: Request, caller: CallerDep, message_id: int) -> HTMLResponse:
    from pacsync.api.dashboard.hl7_fields import segments
    from pacsync.db.messages import MessageStore
    from pacsync.domain.phi import mask_error, mask_message

    state = state_of(request)
    store = MessageStore(state.store.engine)
    row = store.get(message_id) if 0 < message_id < 2**31 else None
    found = store.payload(message_id) if row is not None else None
    if row is None or found is None:
        return render(request, "missing.html", caller, what=f"message {message_id}", code=404)
    payload, encoding = found
    text = payload.decode(encoding, errors="replace")
    if not caller.can_operate:
        text = mask_message(text, text[3:4] or "|")
        row = replace(row, error=mask_error(row.error))
    audit_read(request, caller, "message.read", str(message_id))
    return render(request, "message.html", caller, message=row, segments=segments(text))

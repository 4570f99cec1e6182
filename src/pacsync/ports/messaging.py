"""The ports of clinical messaging: where received messages are kept, how kept ones are
processed, and how processed ones are sent on over MLLP."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pacsync.domain.clinical import ParsedMessage
from pacsync.domain.messaging import Incoming, Kept


class MessageJournal(Protocol):
    """Where received messages are kept durably before they are acknowledged."""

    def keep(self, messages: Sequence[Incoming]) -> list[Kept]:
        """Keep ``messages`` in one transaction (accepted ones once per sender and
        control id); answers in the same order.  Returns only once it is durable."""
        ...


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A kept message waiting to be processed, as received."""

    id: int
    payload: bytes
    encoding: str


@dataclass(frozen=True, slots=True)
class Settled:
    """How one message's processing ended: done (with the patient it concerns) or failed."""

    id: int
    patient_id: str | None
    error: dict[str, Any] | None = None


class MessageInbox(Protocol):
    """Kept messages in arrival order, and where their processing is noted."""

    def pending(self, feed: str | None, limit: int) -> list[PendingMessage]: ...

    def settle(self, outcomes: Sequence[Settled], now: dt.datetime) -> None: ...


class ClinicalSink(Protocol):
    """Where the records of processed messages go (canonical records, FHIR resources)."""

    def apply(self, messages: Sequence[tuple[int, ParsedMessage]]) -> int:
        """Write what ``messages`` say, in order, in one transaction; records written."""
        ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A processed message waiting to be sent on one route."""

    delivery_id: int
    message_id: int
    payload: bytes
    control_id: str


class MllpOutbox(Protocol):
    """Messages waiting for one route, in arrival order, and what became of each."""

    def pending(self, route: str, limit: int) -> list[Outgoing]: ...

    def sent(self, delivery_id: int, ack_code: str, now: dt.datetime) -> None: ...

    def refused(self, delivery_id: int, error: dict[str, Any], now: dt.datetime) -> None: ...

    def tried(self, delivery_id: int, error: dict[str, Any]) -> None: ...


class MessageSender(Protocol):
    """One MLLP peer: sends a message and waits for its ACK (retrying what is transient);
    the ACK code, or a PacsyncError (NegativeAcknowledgement when refused)."""

    def send(self, payload: bytes) -> str: ...

    def close(self) -> None: ...

"""Clinical messages as pacsync receives them: what is kept before acknowledging.

A message source persists first and acknowledges second; a job processes what
was kept.  A message is identified by its sender (MSH-3 and MSH-4) and control
id (MSH-10): the same pair again is a duplicate, acknowledged and not kept twice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class MessageState(StrEnum):
    RECEIVED = "received"  # kept and acknowledged, waiting to be processed
    PROCESSED = "processed"
    FAILED = "failed"  # processing failed: a dead letter until reprocessed
    REJECTED = "rejected"  # answered AE/AR: logged, never processed


@dataclass(frozen=True, slots=True)
class Incoming:
    """One message as received, with the answer it is about to get."""

    feed: str  # the listener or drop it came through
    sender: str
    control_id: str
    kind: str  # MSH-9.1^MSH-9.2, e.g. ADT^A01
    version: str
    payload: bytes  # as received, in ``encoding``
    encoding: str
    peer: str
    received_at: dt.datetime
    ack_code: str  # the code answered, empty when MSH-15 asked for none
    accepted: bool
    reason: str | None = None  # why it was not accepted


@dataclass(frozen=True, slots=True)
class Kept:
    """Where an incoming message was kept: its id, or the id of the earlier copy."""

    id: int
    duplicate: bool


# HL7 table 0357 conditions a policy decision names
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNSUPPORTED_PROCESSING_ID = 202
UNSUPPORTED_VERSION_ID = 203

#: the triggers pacsync processes (ADT, SIU, DFT and ORU of a practice-management feed)
PROCESSED_KINDS = frozenset(
    [f"ADT^{t}" for t in ("A01", "A03", "A04", "A08", "A28", "A31", "A40")]
    + [f"SIU^{t}" for t in ("S12", "S13", "S14", "S15")]
    + ["DFT^P03", "ORU^R01"]
)
VERSIONS = frozenset(
    [
        "2.1",
        "2.2",
        "2.3",
        "2.3.1",
        "2.4",
        "2.5",
        "2.5.1",
        "2.6",
        "2.7",
        "2.7.1",
        "2.8",
        "2.8.1",
        "2.8.2",
        "2.9",
    ]
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a message is rejected (AR): an HL7 table 0357 condition and the MSH field."""

    condition: int
    reason: str
    field: int


@dataclass(frozen=True, slots=True)
class AcceptPolicy:
    """Which messages a feed accepts: kinds (``ADT^A01``; ``ADT^*`` or ``ADT`` for every
    ADT trigger; empty for any), versions and processing ids (MSH-11: P, T, D)."""

    kinds: frozenset[str] = PROCESSED_KINDS
    versions: frozenset[str] = VERSIONS
    processing_ids: frozenset[str] = frozenset({"P", "T", "D"})

    def refusal(
        self, message_type: str, trigger: str, version: str, processing_id: str
    ) -> Refusal | None:
        if self.kinds:
            if not any(k.split("^")[0] == message_type for k in self.kinds):
                return Refusal(
                    UNSUPPORTED_MESSAGE_TYPE, f"message type {message_type} is not accepted", 9
                )
            kind = f"{message_type}^{trigger}"
            if not {kind, f"{message_type}^*", message_type} & self.kinds:
                return Refusal(UNSUPPORTED_EVENT_CODE, f"{kind} is not accepted", 9)
        if self.versions and version not in self.versions:
            return Refusal(UNSUPPORTED_VERSION_ID, f"version {version!r} is not accepted", 12)
        if self.processing_ids and processing_id not in self.processing_ids:
            return Refusal(
                UNSUPPORTED_PROCESSING_ID, f"processing id {processing_id!r} is not accepted", 11
            )
        return None


@dataclass(frozen=True, slots=True)
class Route:
    """Where processed messages are sent on over MLLP: kinds (``ADT^*``; empty for any)
    and feeds (empty for any) it takes, in arrival order, each once acknowledged.  A route
    of ``acks`` takes, instead of the messages, the application ACKs their MSH-16 asks for."""

    name: str
    host: str
    port: int
    kinds: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    tls: bool = False
    acks: bool = False

    def takes(self, kind: str, feed: str) -> bool:
        if self.feeds and feed not in self.feeds:
            return False
        if not self.kinds:
            return True
        family = kind.split("^", maxsplit=1)[0]
        wanted = {kind, family, f"{family}^*"}
        return any(k in wanted for k in self.kinds)


__all__ = ["AcceptPolicy", "Incoming", "Kept", "MessageState", "Refusal", "Route"]

"""Processing kept messages: parse each into canonical records and write them on.

Messages are taken in arrival order, in batches (never a job per message).  A
message that cannot be read is marked failed with the coded reason (the inbox
parks it as a dead letter) until reprocessed; the others of its batch go on.
The records of a batch are written in one transaction before their messages
are marked processed, so a crash re-processes at most one batch, which writes
the same records again (resources are keyed by natural identifiers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pacsync.domain.clinical import ParsedMessage, Patient
from pacsync.errors import InvalidHl7Message, TerminalError
from pacsync.ports import ClinicalSink, MessageInbox, PendingMessage, Settled

Parser = Callable[[str], ParsedMessage]
BATCH = 500


@dataclass(slots=True)
class ProcessCounts:
    processed: int = 0
    failed: int = 0
    records: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "processed": self.processed,
            "failed": self.failed,
            "records": self.records,
            "batches": self.batches,
        }


def process_pending(
    inbox: MessageInbox,
    parse: Parser,
    sink: ClinicalSink,
    *,
    feed: str | None = None,
    batch: int = BATCH,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[ProcessCounts], None] = lambda counts: None,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None),
    identify: Callable[[str], str | None] = lambda text: None,
) -> ProcessCounts:
    """Process what is pending (of ``feed``, or every feed) until nothing is left;
    ``identify`` names the patient of a message that cannot be processed, where it can."""
    counts = ProcessCounts()
    while not should_stop():
        pending = inbox.pending(feed, batch)
        if not pending:
            break
        parsed: list[tuple[int, ParsedMessage]] = []
        outcomes: list[Settled] = []
        for message in pending:
            text = None
            try:
                text = _text(message)
                result = parse(text)
            except TerminalError as error:
                patient = identify(text) if text is not None else None
                outcomes.append(Settled(message.id, patient, _why(error)))
                counts.failed += 1
                continue
            parsed.append((message.id, result))
            outcomes.append(Settled(message.id, _patient_id(result.patient)))
        counts.records += sink.apply(parsed)  # a transient failure stops here: nothing settled
        inbox.settle(outcomes, now())
        counts.processed += len(parsed)
        counts.batches += 1
        progress(counts)
    return counts


def _text(message: PendingMessage) -> str:
    try:
        return message.payload.decode(message.encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise InvalidHl7Message(
            f"message {message.id} is not valid {message.encoding}: {exc}",
            location="MSH-18",
            hint="Fix MSH-18 or the sender's character set, then reprocess the message.",
        ) from None


def _why(error: TerminalError) -> dict[str, object]:
    """The coded error, with the segment and field at fault where one is named (PID-7)."""
    why: dict[str, object] = dict(error.as_dict())
    if isinstance(error, InvalidHl7Message) and error.location:
        why["location"] = error.location
    return why


def _patient_id(patient: Patient | None) -> str | None:
    if patient is None or not patient.identifiers:
        return None
    medical = [i for i in patient.identifiers if i.type_code == "MR"]
    return (medical or list(patient.identifiers))[0].value


__all__ = ["BATCH", "Parser", "ProcessCounts", "process_pending"]

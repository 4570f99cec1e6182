"""ADT messages: admit (A01), discharge (A03), register (A04), update (A08), add and
update person (A28, A31) — PID and PV1 — and merge patient (A40) — PID/MRG pairs."""

from __future__ import annotations

from dataclasses import replace

from pacsync.connectors.hl7.patient import read_merge, read_pid, read_pv1
from pacsync.connectors.hl7.segments import Message, Segment
from pacsync.domain.clinical import Merge, ParsedMessage
from pacsync.errors import InvalidHl7Message

ADT_EVENTS = frozenset({"A01", "A03", "A04", "A08", "A28", "A31", "A40"})


def read_ADT(message: Message, base: ParsedMessage) -> ParsedMessage:
    """The patient and visit of an ADT message (the merges of an A40)."""
    if base.event == "A40":
        return _read_ADT_A40(message, base)
    pid = message.require("PID", base.trigger)
    pv1 = message.find("PV1")
    visit = read_pv1(pv1, discharged=base.event == "A03") if pv1 else None
    return replace(base, patient=read_pid(pid), visit=visit)


def _read_ADT_A40(message: Message, base: ParsedMessage) -> ParsedMessage:
    message.require("PID", base.trigger)
    message.require("MRG", base.trigger)
    merges: list[Merge] = []
    pid: Segment | None = None
    for segment in message:
        if segment.name == "PID":
            pid = segment
        elif segment.name == "MRG":
            if pid is None:
                raise InvalidHl7Message(
                    f"{segment.where(1)[:-2]} comes before any PID",
                    location=segment.name,
                    hint="Each MRG follows the PID of the patient it is merged into.",
                )
            merges.append(read_merge(pid, segment))
            pid = None
    first = message.require("PID", base.trigger)
    return replace(base, patient=read_pid(first), merges=tuple(merges))

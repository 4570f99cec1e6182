"""One stored HL7 v2 message → canonical clinical records.

:func:`parse_message` reads the header (trigger, control id, sender, version, time),
then hands the segments to the reader of the message family: ADT (A01, A03, A04, A08,
A28, A31, A40), SIU (S12–S15), DFT (P03), ORU (R01).  Every problem comes out as
:class:`~pacsync.errors.InvalidHl7Message` (PACS-601, terminal) naming the segment and
field at fault: an unsupported trigger, a required segment or field missing, a value
that does not read (a date, a number, an escape sequence).
"""

from __future__ import annotations

from collections.abc import Callable

from pacsync.connectors.hl7.adt import ADT_EVENTS, read_ADT
from pacsync.connectors.hl7.dft import DFT_EVENTS, read_DFT
from pacsync.connectors.hl7.oru import ORU_EVENTS, read_ORU
from pacsync.connectors.hl7.segments import Message, split
from pacsync.connectors.hl7.siu import SIU_EVENTS, read_SIU
from pacsync.domain.clinical import ParsedMessage
from pacsync.errors import InvalidHl7Message

Reader = Callable[[Message, ParsedMessage], ParsedMessage]

_FAMILIES: dict[str, tuple[frozenset[str], Reader]] = {
    "ADT": (ADT_EVENTS, read_ADT),
    "SIU": (SIU_EVENTS, read_SIU),
    "DFT": (DFT_EVENTS, read_DFT),
    "ORU": (ORU_EVENTS, read_ORU),
}

#: every trigger :func:`parse_message` turns into records, e.g. "ADT^A01"
SUPPORTED_TRIGGERS = frozenset(
    f"{family}^{event}" for family, (events, _) in _FAMILIES.items() for event in events
)


def _header(message: Message) -> ParsedMessage:
    msh = message.segments[0]
    code, event = msh.text(9, 1).upper(), msh.text(9, 2).upper()
    trigger = f"{code}^{event}"
    family = _FAMILIES.get(code)
    if family is None or event not in family[0]:
        raise InvalidHl7Message(
            f"MSH-9: {trigger} is not a message type pacsync processes",
            location="MSH-9",
            hint="Supported: " + ", ".join(sorted(SUPPORTED_TRIGGERS)) + ". Filter other "
            "types out at the sender or in the pipeline.",
        )
    control_id = msh.text(10)
    if not control_id:
        raise InvalidHl7Message(
            "MSH-10 (message control id) is empty",
            location="MSH-10",
            hint="Every message needs a control id unique for its sender.",
        )
    return ParsedMessage(
        trigger=trigger,
        control_id=control_id,
        version=msh.text(12, 1),
        sent_at=msh.timestamp(7),
        sending_application=msh.text(3),
        sending_facility=msh.text(4),
    )


def parse_message(text: str) -> ParsedMessage:
    """The canonical records of one HL7 v2 message given as text (already decoded from
    the character set MSH-18 names).  Raises only :class:`InvalidHl7Message`."""
    message = split(text)
    base = _header(message)
    _, read = _FAMILIES[base.message_type]
    return read(message, base)


def patient_of(text: str) -> str | None:
    """The patient a message is about, read without the rest of it: PID-3's identifier
    of type MR, else its first (as for a processed message), so a message that cannot be
    processed is still found by its patient.  None when there is none to read."""
    try:
        message = split(text)
        pid = next((s for s in message.segments if s.name == "PID"), None)
        found = pid.repetitions(3) if pid is not None else ()
        chosen = next((r for r in found if r.text(5).upper() == "MR"), found[0] if found else None)
        return (chosen.text(1) or None) if chosen is not None else None
    except InvalidHl7Message:
        return None

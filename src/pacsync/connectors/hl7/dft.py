"""DFT^P03 (post detail financial transaction): the FT1 charge lines of a patient's
visit (HL7 v2.5.1 chapter 6)."""

from __future__ import annotations

from dataclasses import replace

from pacsync.connectors.hl7.datatypes import clinicians, coded, coded_list, decimal, integer
from pacsync.connectors.hl7.patient import read_pid, read_pv1
from pacsync.connectors.hl7.segments import Message, Segment
from pacsync.domain.clinical import Charge, ParsedMessage
from pacsync.errors import InvalidHl7Message

DFT_EVENTS = frozenset({"P03"})


def read_FT1(ft1: Segment) -> Charge:
    """One FT1; its transaction code (FT1-7) is required."""
    code = coded(ft1.first(7))
    if code is None:
        where = ft1.where(7)
        raise InvalidHl7Message(
            f"{where} (transaction code) is empty",
            location=where,
            hint="Each charge line needs the code of what is charged, e.g. a CPT code.",
        )
    return Charge(
        transaction_id=ft1.text(2),
        set_id=integer(ft1, 1),
        batch_id=ft1.text(3),
        transaction_date=ft1.timestamp(4, 1),
        transaction_end=ft1.timestamp(4, 2),
        posted_at=ft1.timestamp(5),
        transaction_type=ft1.text(6).upper(),
        code=code,
        description=ft1.text(8),
        quantity=decimal(ft1, 10),
        # CP: price (MO: quantity & denomination) ^ price type ^ …
        amount=decimal(ft1, 11, 1, 1),
        unit_amount=decimal(ft1, 12, 1, 1),
        currency=ft1.text(11, 1, 2) or ft1.text(12, 1, 2),
        department=coded(ft1.first(13)),
        diagnoses=coded_list(ft1, 19),
        performed_by=clinicians(ft1, 20),
        ordered_by=clinicians(ft1, 21),
        procedure=coded(ft1.first(25)),
        modifiers=coded_list(ft1, 26),
    )


def read_DFT(message: Message, base: ParsedMessage) -> ParsedMessage:
    """The patient, visit and charge lines of a DFT^P03."""
    pid = message.require("PID", base.trigger)
    message.require("FT1", base.trigger)
    pv1 = message.find("PV1")
    return replace(
        base,
        patient=read_pid(pid),
        visit=read_pv1(pv1) if pv1 else None,
        charges=tuple(read_FT1(ft1) for ft1 in message.all("FT1")),
    )

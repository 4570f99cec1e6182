"""SIU scheduling and DFT charge messages read into appointments and charges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hl7_fixture_files import message_text

from pacsync.connectors.hl7.records import parse_message
from pacsync.domain.clinical import Coded, Identifier, Location

MINUS_FIVE = dt.timezone(dt.timedelta(hours=-5))


def test_new_booking_reads_ids_times_reason_and_every_resource() -> None:
    message = parse_message(message_text("siu_s12"))
    appointment = message.appointment
    assert appointment is not None

    assert message.trigger == "SIU^S12"
    assert appointment.placer_id == Identifier("PL-9001", "PMS")
    assert appointment.filler_id == Identifier("APT-31877", "PMS")
    assert appointment.start is not None
    assert appointment.start.value == dt.datetime(2026, 4, 12, 14, 0, tzinfo=MINUS_FIVE)
    assert appointment.end is not None
    assert appointment.end.value == dt.datetime(2026, 4, 12, 14, 20, tzinfo=MINUS_FIVE)
    assert appointment.duration == dt.timedelta(minutes=20)
    assert appointment.reason == Coded("ROUTINE", "Routine follow-up", "HL70276")
    assert appointment.appointment_type == Coded("FU", "Follow-up", "LOCAL")
    assert (appointment.filler_status, appointment.status) == ("Booked", "booked")
    kinds = [r.kind for r in appointment.resources]
    assert kinds == ["service", "resource", "location", "personnel"]
    service, equipment, room, person = appointment.resources
    assert service.code == Coded("99213", "Office visit, established", "CPT")
    assert equipment.duration == dt.timedelta(minutes=15)
    assert room.location == Location("CARD", "EXAM2", "", "NCL")
    assert person.clinician is not None
    assert person.clinician.name.family == "Nguyen"
    assert message.patient is not None
    assert message.patient.identifiers[0].value == "PMS00412"


def test_reschedule_moves_the_start_and_keeps_the_event_reason() -> None:
    appointment = parse_message(message_text("siu_s13")).appointment
    assert appointment is not None

    assert appointment.start is not None
    assert appointment.start.value == dt.datetime(2026, 4, 14, 9, 30, tzinfo=MINUS_FIVE)
    assert appointment.event_reason == Coded("PATREQ", "Patient request", "HL70276")
    assert appointment.status == "booked"


def test_modification_without_an_end_derives_it_from_the_duration() -> None:
    appointment = parse_message(message_text("siu_s14")).appointment
    assert appointment is not None

    assert appointment.duration == dt.timedelta(minutes=30)
    assert appointment.end is not None
    assert appointment.end.value == dt.datetime(2026, 4, 14, 10, 0, tzinfo=MINUS_FIVE)
    assert [r.code.code for r in appointment.resources if r.code] == ["99214"]


def test_cancellation_is_cancelled() -> None:
    appointment = parse_message(message_text("siu_s15")).appointment
    assert appointment is not None

    assert appointment.status == "cancelled"
    assert appointment.filler_status == "Cancelled"
    assert appointment.event_reason == Coded("CANC", "Cancelled by patient", "LOCAL")


@pytest.mark.parametrize(
    ("event", "filler_status", "status"),
    [("S12", "Pending", "pending"), ("S14", "Noshow", "noshow"), ("S15", "Booked", "cancelled")],
)
def test_appointment_status_follows_the_trigger_then_sch_25(
    event: str, filler_status: str, status: str
) -> None:
    text = (
        f"MSH|^~\\&|PMS|C|PACSYNC|C|20260405083000||SIU^{event}|X1|P|2.5.1\r"
        f"SCH||APT-1^PMS{'|' * 23}{filler_status}\r"
    )
    message = parse_message(text)
    appointment = message.appointment
    assert appointment is not None

    assert appointment.status == status
    assert appointment.placer_id is None
    assert (message.patient, message.visit) == (None, None)


def test_charges_read_every_ft1_line() -> None:
    message = parse_message(message_text("dft_p03"))

    assert message.trigger == "DFT^P03"
    assert [c.transaction_id for c in message.charges] == ["TX-88001", "TX-88002"]
    visit_charge, ecg = message.charges
    assert visit_charge.set_id == 1
    assert visit_charge.batch_id == "B-0402"
    assert visit_charge.transaction_type == "CG"
    assert visit_charge.code == Coded("99213", "Office visit, established", "CPT")
    assert visit_charge.description == "Office visit, established patient"
    assert visit_charge.quantity == Decimal(1)
    assert (visit_charge.amount, visit_charge.unit_amount) == (Decimal("125.00"), Decimal("125.00"))
    assert visit_charge.currency == "USD"
    assert visit_charge.transaction_date is not None
    assert visit_charge.transaction_date.value == dt.datetime(2026, 4, 2, 9, 15, tzinfo=MINUS_FIVE)
    assert visit_charge.department == Coded("CAR", "Cardiology", "LOCAL")
    assert visit_charge.procedure == Coded("99213", "Office visit, established", "CPT")
    assert [m.code for m in visit_charge.modifiers] == ["25"]
    assert [c.id for c in visit_charge.ordered_by] == ["3311"]
    assert [d.code for d in ecg.diagnoses] == ["I10", "R00.2"]
    assert ecg.amount == Decimal("48.50")
    assert ecg.ordered_by == ()
    assert message.visit is not None
    assert message.visit.visit_number == Identifier("V-55102", "NCL", type_code="VN")

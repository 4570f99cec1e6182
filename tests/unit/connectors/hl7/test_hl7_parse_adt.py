"""ADT messages read into canonical patient, visit and merge records."""

from __future__ import annotations

import datetime as dt

import pytest
from hl7_fixture_files import message_text

from pacsync.connectors.hl7.records import parse_message
from pacsync.domain.clinical import (
    Address,
    Identifier,
    Location,
    PersonName,
    Precision,
    Telecom,
)

PLUS_ONE = dt.timezone(dt.timedelta(hours=1))


def test_admit_reads_repeated_identifiers_with_their_authorities() -> None:
    message = parse_message(message_text("adt_a01"))

    assert (message.trigger, message.control_id, message.version) == (
        "ADT^A01",
        "MSG00001",
        "2.5.1",
    )
    assert (message.sending_application, message.sending_facility) == ("EPICADT", "GRHOSP")
    patient = message.patient
    assert patient is not None
    assert patient.identifiers == (
        Identifier("884512", "GRH", "1.2.840.114350.1.13.99", "ISO", "MR"),
        Identifier("123-45-6789", "SSA", type_code="SS"),
        Identifier("A77001", "MEDICARE", type_code="MC"),
    )
    assert patient.primary_identifier == patient.identifiers[0]
    assert patient.account_number == Identifier("ACC-77812", "GRH", type_code="AN")


def test_admit_reads_names_birth_sex_address_and_phones() -> None:
    patient = parse_message(message_text("adt_a01")).patient
    assert patient is not None

    assert patient.names == (
        PersonName("Brennan", ("Siobhan", "Mary"), prefix="Dr", suffix="Jr", use="L"),
        PersonName("Brennan-Kelly", ("Siobhan",), use="A"),
    )
    assert patient.mothers_maiden_name == PersonName("Kelly", ("Ann",))
    assert patient.birth is not None
    assert patient.birth.date == dt.date(1962, 3, 14)
    assert patient.birth.precision is Precision.DAY
    assert patient.sex == "F"
    # \T\ in the second street line is the subcomponent separator, unescaped
    assert patient.addresses == (
        Address(("12 Harbour Rd", "Building A & B"), "Galway", "GY", "H91 X2Y4", "IRL", "H"),
    )
    assert patient.telecoms == (
        Telecom("+353 91 555012", "PRN", "PH"),
        Telecom("siobhan.brennan@example.org", "NET", "Internet"),
        Telecom("+353 91 555099", "WPN", "PH"),
    )
    assert patient.marital_status is not None
    assert (patient.marital_status.code, patient.marital_status.system) == ("M", "HL70002")
    assert patient.language is not None
    assert patient.language.code == "en"
    assert patient.deceased is False


def test_admit_reads_the_visit_with_offsets_kept() -> None:
    message = parse_message(message_text("adt_a01"))
    visit = message.visit
    assert visit is not None

    assert visit.patient_class == "I"
    assert visit.status == "in-progress"
    assert visit.visit_number == Identifier("V100234", "GRH", type_code="VN")
    assert visit.location == Location("4W", "401", "A", "GRH", "MAIN", "4")
    assert visit.location.label == "4W-401-A (GRH)"
    assert [c.id for c in visit.attending] == ["1234"]
    assert visit.attending[0].name == PersonName("Okafor", ("Chidi",), prefix="Dr", degree="MD")
    assert visit.attending[0].authority == "GRH"
    assert [c.name.family for c in visit.referring] == ["Walsh"]
    assert visit.admitted_at is not None
    assert visit.admitted_at.value == dt.datetime(2026, 3, 15, 14, 15, tzinfo=PLUS_ONE)
    assert message.sent_at is not None
    assert message.sent_at.value == dt.datetime(2026, 3, 15, 14, 30, 12, tzinfo=PLUS_ONE)


def test_discharge_finishes_the_visit() -> None:
    visit = parse_message(message_text("adt_a03")).visit
    assert visit is not None

    assert visit.status == "finished"
    assert visit.discharged_at is not None
    assert visit.discharged_at.value == dt.datetime(2026, 3, 19, 10, 0, tzinfo=PLUS_ONE)
    assert visit.discharge_disposition == "01"


def test_registration_is_an_outpatient_visit_with_minute_precision() -> None:
    message = parse_message(message_text("adt_a04"))
    assert message.visit is not None
    assert message.patient is not None

    assert message.visit.patient_class == "O"
    assert message.visit.admitted_at is not None
    assert message.visit.admitted_at.precision is Precision.MINUTE
    assert message.visit.admitted_at.value.utcoffset() == dt.timedelta(hours=-5)
    assert message.patient.telecoms == (Telecom("(312)555-0147", "PRN", "CP"),)


def test_update_keeps_a_birth_month_without_inventing_a_day() -> None:
    message = parse_message(message_text("adt_a08"))
    patient, visit = message.patient, message.visit
    assert patient is not None
    assert visit is not None

    assert patient.birth is not None
    assert patient.birth.precision is Precision.MONTH
    assert (patient.birth.value.year, patient.birth.value.month) == (1962, 3)
    # PID-13 is "" (HL7 null): no phone
    assert patient.telecoms == ()
    assert visit.location == Location("4W", "405", "B", "GRH")
    assert visit.prior_location == Location("4W", "401", "A", "GRH")


@pytest.mark.parametrize("name", ["adt_a28", "adt_a31"])
def test_person_messages_have_no_visit(name: str) -> None:
    message = parse_message(message_text(name))

    assert message.patient is not None
    assert message.visit is None  # PV1-2 is N (not applicable)


def test_add_person_reads_several_identifier_types() -> None:
    patient = parse_message(message_text("adt_a28")).patient
    assert patient is not None

    assert [(i.value, i.authority, i.type_code) for i in patient.identifiers] == [
        ("E-40021", "REGIONMPI", "PI"),
        ("9434765919", "NHS", "NH"),
    ]
    assert patient.primary_identifier == patient.identifiers[0]  # none is typed MR
    assert patient.names[0] == PersonName("Patel", ("Ravi", "Kumar"), prefix="Mr", use="L")
    assert patient.birth is not None
    assert patient.birth.value.tzinfo is None  # neither the value nor MSH-7 has an offset


def test_iso_8859_1_message_keeps_its_accents() -> None:
    patient = parse_message(message_text("adt_a31")).patient
    assert patient is not None

    assert patient.names == (PersonName("Müller", ("Zoë", "Renée"), use="L"),)
    assert patient.addresses[0].lines == ("Königstraße 5",)
    assert patient.addresses[0].city == "München"


def test_merge_reads_every_pid_mrg_pair() -> None:
    message = parse_message(message_text("adt_a40"))

    assert [m.surviving for m in message.merges] == [
        (Identifier("884512", "GRH", type_code="MR"),),
        (Identifier("884513", "GRH", type_code="MR"),),
    ]
    first, second = message.merges
    assert first.retired == (
        Identifier("889001", "GRH", type_code="MR"),
        Identifier("TMP-17", "GRHER", type_code="PI"),
    )
    assert first.retired_account == Identifier("ACC-70001", "GRH", type_code="AN")
    assert first.retired_name == PersonName("Brennan", ("Siobhan",))
    assert second.retired == (Identifier("889002", "GRH", type_code="MR"),)
    assert message.patient is not None
    assert message.patient.identifiers == first.surviving

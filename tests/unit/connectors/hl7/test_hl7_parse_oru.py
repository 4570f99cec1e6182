"""ORU^R01 results: order groups, every OBX value type, notes and escapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hl7_fixture_files import message_text

from pacsync.connectors.hl7.records import parse_message
from pacsync.domain.clinical import Coded, Identifier, Precision, Report, StructuredNumeric

PLUS_ONE = dt.timezone(dt.timedelta(hours=1))


def _reports() -> tuple[Report, ...]:
    return parse_message(message_text("oru_r01")).reports


def test_results_are_grouped_under_their_order() -> None:
    panel, culture = _reports()

    assert panel.service == Coded("24323-8", "Comprehensive metabolic panel", "LN")
    assert panel.placer_order == Identifier("ORD-55120", "EPIC")
    assert panel.filler_order == Identifier("LAB-90311", "LABSYS")
    assert (panel.status, panel.diagnostic_service) == ("F", "CH")
    assert panel.observed_at is not None
    assert panel.observed_at.value == dt.datetime(2026, 3, 16, 7, 15, tzinfo=PLUS_ONE)
    assert panel.reported_at is not None
    assert panel.reported_at.value == dt.datetime(2026, 3, 16, 9, 29, tzinfo=PLUS_ONE)
    assert [c.id for c in panel.ordering_provider] == ["1234"]
    assert panel.notes == ("Specimen slightly haemolysed.",)
    assert [o.set_id for o in panel.observations] == [1, 2, 3, 4, 5]
    assert [o.set_id for o in culture.observations] == [1, 2, 3, 4, 5, 6]
    assert culture.status == "P"


def test_numeric_results_carry_units_range_flags_and_status() -> None:
    glucose, _, potassium, *_ = _reports()[0].observations

    assert glucose.value_type == "NM"
    assert glucose.code == Coded("2345-7", "Glucose", "LN")
    assert glucose.values == (Decimal(182),)
    assert glucose.units == Coded("mg/dL", "milligrams per deciliter", "UCUM")
    assert glucose.reference_range == "70-99"
    assert glucose.abnormal_flags == ("H",)
    assert glucose.status == "F"
    assert glucose.producer == Coded("GRHLAB", "Galway Lab", "L")
    assert glucose.effective is not None
    assert glucose.effective.value == dt.datetime(2026, 3, 16, 7, 15, tzinfo=PLUS_ONE)
    assert potassium.value == Decimal("6.8")
    assert (potassium.abnormal_flags, potassium.status) == (("HH",), "C")
    # the NTE after an OBX belongs to that result; \T\ is "&"
    assert potassium.notes == ("Critical value phoned to Dr Okafor at 09:20 & read back.",)


def test_structured_numeric_and_string_values() -> None:
    observations = _reports()[0].observations

    assert observations[3].value == StructuredNumeric(">", Decimal(60))
    assert observations[4].value_type == "ST"
    assert observations[4].value == "Amber | cloudy"  # \F\ is the field separator
    assert observations[4].status == "P"


def test_coded_text_formatted_date_and_ratio_values() -> None:
    organism, gram, comment, due, period, titer = _reports()[1].observations

    assert organism.value == Coded("3092008", "Staphylococcus aureus", "SCT")
    assert organism.sub_id == "1"
    # TX repetitions are kept apart
    assert gram.values == ("Gram positive cocci in clusters", "Seen in 2 of 2 bottles")
    # FT: \.br\ is a line break, \XC3A9\ UTF-8 bytes (MSH-18), \E\ the escape character
    assert comment.value == "Comment:\nCafé au lait spots noted \\ not graded."
    assert isinstance(due.value, type(period.value))
    assert due.value is not None
    assert period.value is not None
    assert due.values[0] == due.value
    assert getattr(due.value, "precision", None) is Precision.DAY
    assert getattr(due.value, "date", None) == dt.date(2026, 10, 1)
    assert getattr(period.value, "precision", None) is Precision.MINUTE
    assert titer.value == StructuredNumeric("", Decimal(1), ":", Decimal(160))
    assert titer.abnormal_flags == ("A",)


def test_order_numbers_fall_back_to_orc() -> None:
    text = (
        "MSH|^~\\&|LAB|L|PACSYNC|H|20260316093015||ORU^R01|L1|P|2.5.1\r"
        "ORC|RE|ORD-1^EPIC|LAB-1^LABSYS\r"
        "OBR|1|||GLU^Glucose^LN|||20260316\r"
        "OBX|1|NM|GLU^Glucose^LN||5.4|mmol/L||||||F\r"
    )
    (report,) = parse_message(text).reports

    assert report.placer_order == Identifier("ORD-1", "EPIC")
    assert report.filler_order == Identifier("LAB-1", "LABSYS")
    assert report.observations[0].value == Decimal("5.4")
    assert report.status == ""


def test_specimen_observations_are_not_results() -> None:
    text = (
        "MSH|^~\\&|LAB|L|PACSYNC|H|20260316093015||ORU^R01|L2|P|2.5.1\r"
        "OBR|1||LAB-2|GLU^Glucose^LN" + "|" * 21 + "F\r"
        "OBX|1|NM|GLU^Glucose^LN||5.4|mmol/L||||||F\r"
        "SPM|1|SP-1||BLD^Blood^HL70487\r"
        "OBX|1|NM|SPECVOL^Specimen volume^L||4|mL||||||F\r"
    )
    (report,) = parse_message(text).reports

    assert [o.code.code for o in report.observations] == ["GLU"]


def test_pending_order_without_results_is_accepted() -> None:
    text = (
        "MSH|^~\\&|LAB|L|PACSYNC|H|20260316093015||ORU^R01|L3|P|2.5.1\r"
        "OBR|1||LAB-3|GLU^Glucose^LN" + "|" * 21 + "I\r"
    )
    (report,) = parse_message(text).reports

    assert report.observations == ()
    assert report.status == "I"

"""Canonical clinical records: the few rules they carry."""

from __future__ import annotations

import datetime as dt

from pacsync.domain.clinical import (
    Coded,
    Identifier,
    Location,
    Observation,
    ParsedMessage,
    Patient,
    Precision,
    Timestamp,
)


def test_primary_identifier_prefers_the_medical_record_number() -> None:
    ssn = Identifier("123-45-6789", "SSA", type_code="SS")
    mrn = Identifier("884512", "GRH", type_code="MR")

    assert Patient((ssn, mrn)).primary_identifier == mrn
    assert Patient((ssn,)).primary_identifier == ssn
    assert Patient(()).primary_identifier is None


def test_location_label() -> None:
    assert Location("4W", "401", "A", "GRH").label == "4W-401-A (GRH)"
    assert Location("ER").label == "ER"
    assert Location(facility="GRH").label == "GRH"
    assert Location().label == ""


def test_timestamp_knows_whether_it_has_a_time() -> None:
    day = Timestamp(dt.datetime(2026, 3, 15), Precision.DAY)
    hour = Timestamp(dt.datetime(2026, 3, 15, 14), Precision.HOUR)

    assert (day.has_time, hour.has_time) == (False, True)
    assert day.date == dt.date(2026, 3, 15)


def test_message_type_and_event_and_first_value() -> None:
    message = ParsedMessage("ORU^R01", "C1")
    result = Observation(1, "ST", Coded("X"), values=("a", "b"))

    assert (message.message_type, message.event) == ("ORU", "R01")
    assert result.value == "a"
    assert Observation(2, "", Coded("Y")).value is None

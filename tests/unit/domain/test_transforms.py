"""Value transforms and type casts (pacsync.domain.transforms)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from pacsync.domain import transforms
from pacsync.domain.transforms import build, cast_for


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("trim", "  Elm St \t", "Elm St"),
        ("upper", "elm st", "ELM ST"),
        ("lower", "ELM St", "elm st"),
        ("title", "  mary   ann o'neil ", "Mary Ann O'neil"),
        ("collapse_spaces", "  12   Elm \t St ", "12 Elm St"),
        ("digits", "(555) 010-2030", "5550102030"),
        ("zip5", "02134-1234", "02134"),
        ("zip5", "213", None),
        ("zip", "021341234", "02134-1234"),
        ("zip", " 02134 ", "02134"),
        ("zip", "0213", None),
        ("phone", "(555) 010-2030", "555-010-2030"),
        ("phone", "+1 555.010.2030", "555-010-2030"),
        ("phone", "010 2030", "010-2030"),
        ("phone", "12345", None),
        ("empty_to_null", "   ", None),
        ("empty_to_null", " x ", " x "),
    ],
)
def test_simple_transforms(name: str, value: Any, expected: Any) -> None:
    assert build(name)(value) == expected


@pytest.mark.parametrize("name", sorted(transforms.SIMPLE))
def test_simple_transforms_pass_none_through(name: str) -> None:
    assert build(name)(None) is None


@pytest.mark.parametrize("name", ["trim", "upper", "zip", "phone", "digits"])
def test_string_transforms_leave_other_types_alone(name: str) -> None:
    assert build(name)(12345) == 12345


def test_null_if_blocks_listed_values_after_trimming() -> None:
    null_if = build({"null_if": ["N/A", "", 0]})
    assert null_if(" N/A ") is None
    assert null_if("") is None
    assert null_if(0) is None
    assert null_if("n/a") == "n/a"
    assert null_if(7) == 7


def test_replace() -> None:
    assert build({"replace": ["STREET", "ST"]})("12 ELM STREET") == "12 ELM ST"


def test_pad_left() -> None:
    assert build({"pad_left": {"width": 5}})(2134) == "02134"
    assert build({"pad_left": {"width": 4, "char": "*"}})("ab") == "**ab"
    assert build({"pad_left": {"width": 4}})(None) is None


def test_round_half_up_for_decimals_and_floats() -> None:
    round2 = build({"round": 2})
    assert round2(Decimal("2.345")) == Decimal("2.35")
    assert round2(Decimal("-2.345")) == Decimal("-2.35")
    assert round2(1.23456) == 1.23
    assert round2("1.23456") == "1.23456"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("shout", "unknown transform 'shout'"),
        ({"shout": 1}, "unknown transform 'shout'"),
        ({"round": 1, "trim": 1}, "exactly one name"),
        ({"pad_left": {"char": "0"}}, "bad arguments for transform 'pad_left'"),
        ({"replace": ["only-one"]}, "bad arguments for transform 'replace'"),
    ],
)
def test_build_rejects_bad_transforms(item: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(item)


# --- casts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("42", 42), (" 1,234 ", 1234), ("12.000", 12), (3.0, 3), (Decimal("7"), 7), (True, 1), (9, 9)],
)
def test_integer_cast(value: Any, expected: int) -> None:
    result = cast_for("integer")(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", ["1.5", 1.5, Decimal("0.1"), "twelve", ""])
def test_integer_cast_rejects_fractions_and_text(value: Any) -> None:
    with pytest.raises((ValueError, ArithmeticError)):
        cast_for("integer")(value)


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        ("$1,234.5", 2, Decimal("1234.50")),
        ("2.345", 2, Decimal("2.35")),
        (2.345, 2, Decimal("2.35")),
        (Decimal("10"), 0, Decimal("10")),
        (7, 3, Decimal("7.000")),
        ("-0.125", 2, Decimal("-0.13")),
    ],
)
def test_decimal_cast_rounds_half_up_to_scale(value: Any, scale: int, expected: Decimal) -> None:
    result = cast_for("decimal", scale=scale)(value)
    assert result == expected
    assert result.as_tuple().exponent == -scale


def test_decimal_cast_rejects_text() -> None:
    with pytest.raises(ValueError, match="is not a number"):
        cast_for("decimal")("12 dollars")


def test_float_cast() -> None:
    assert cast_for("float")(" 1,234.5 ") == 1234.5
    with pytest.raises(ValueError, match="could not convert"):
        cast_for("float")("abc")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Y", True),
        (" yes ", True),
        ("1", True),
        (1, True),
        ("off", False),
        ("N", False),
        (False, False),
        (0, False),
    ],
)
def test_boolean_cast(value: Any, expected: bool) -> None:
    assert cast_for("boolean")(value) is expected


def test_boolean_cast_rejects_other_words() -> None:
    with pytest.raises(ValueError, match="yes/no"):
        cast_for("boolean")("maybe")


def test_date_cast_tries_formats_then_iso() -> None:
    cast = cast_for("date", formats=["%m/%d/%Y", "%d.%m.%Y"])
    assert cast("03/04/2021") == dt.date(2021, 3, 4)
    assert cast("04.03.2021") == dt.date(2021, 3, 4)
    assert cast("2021-03-04 10:30:00") == dt.date(2021, 3, 4)
    assert cast(dt.datetime(2021, 3, 4, 23, 59)) == dt.date(2021, 3, 4)
    assert cast(dt.date(2021, 3, 4)) == dt.date(2021, 3, 4)
    with pytest.raises(ValueError, match="not a date"):
        cast("31/31/2021")


def test_date_cast_without_formats_reads_iso_only() -> None:
    with pytest.raises(ValueError, match="ISO"):
        cast_for("date")("03/04/2021")


def test_datetime_cast() -> None:
    cast = cast_for("datetime", formats=["%m/%d/%Y %H:%M"])
    assert cast("03/04/2021 13:45") == dt.datetime(2021, 3, 4, 13, 45)
    assert cast("2021-03-04T13:45:10") == dt.datetime(2021, 3, 4, 13, 45, 10)
    assert cast(dt.date(2021, 3, 4)) == dt.datetime(2021, 3, 4)
    with pytest.raises(ValueError, match="not a date-time"):
        cast("yesterday")


def test_string_cast() -> None:
    assert cast_for("string")(12) == "12"
    assert cast_for("text")("as is") == "as is"

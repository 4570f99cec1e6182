"""Validation rules (pacsync.domain.validation)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from pacsync.domain.records import RowError
from pacsync.domain.spec import EntitySpec
from pacsync.domain.validation import ReferenceRule, UniqueRule, Validator

FIELDS = {
    "id": {"from": "ID", "type": "integer"},
    "name": {"from": "Name"},
    "value": {"from": "Value", "type": "decimal"},
    "zip": {"from": "Zip"},
    "use": {"from": "Use"},
    "owner_id": {"from": "OwnerID", "type": "integer"},
}
NAMES = list(FIELDS)


def validator(*rules: dict[str, Any]) -> Validator:
    spec = EntitySpec.model_validate(
        {
            "source": {"table": "Parcel", "key": ["ID"]},
            "target": {"table": "parcel"},
            "fields": FIELDS,
            "validate": list(rules),
        }
    )
    return Validator(spec, NAMES)


def row(**values: Any) -> tuple[Any, ...]:
    base: dict[str, Any] = {
        "id": 1,
        "name": "Ann",
        "value": Decimal("10.00"),
        "zip": "97301",
        "use": "R",
        "owner_id": 3,
    }
    base.update(values)
    return tuple(base[n] for n in NAMES)


def failure(check: Validator, values: tuple[Any, ...]) -> RowError:
    with pytest.raises(RowError) as caught:
        check.check(values)
    return caught.value


def test_no_rules_accepts_anything() -> None:
    validator().check(row(name=None, value=None))


@pytest.mark.parametrize("value", [None, "", "   \t"])
def test_required_rejects_missing_and_blank(value: Any) -> None:
    error = failure(validator({"field": "name", "rule": "required"}), row(name=value))
    assert (error.field, error.rule, error.message) == ("name", "required", "a value is required")


def test_required_accepts_zero_and_false_like_values() -> None:
    check = validator({"field": "value", "rule": "required"})
    check.check(row(value=Decimal(0)))


def test_range_min_and_max() -> None:
    check = validator({"field": "value", "rule": "range", "min": 0, "max": 1000})
    check.check(row(value=Decimal(0)))
    check.check(row(value=Decimal(1000)))
    low = failure(check, row(value=Decimal("-0.01")))
    assert (low.field, low.rule) == ("value", "range")
    assert "below 0" in low.message
    high = failure(check, row(value=Decimal("1000.01")))
    assert "above 1000" in high.message


def test_range_on_an_incomparable_value() -> None:
    check = validator({"field": "name", "rule": "range", "min": 1})
    error = failure(check, row(name=dt.date(2020, 1, 1)))
    assert error.rule == "range"
    assert "not comparable" in error.message


def test_regex_must_match_the_whole_value() -> None:
    check = validator({"field": "zip", "rule": "regex", "pattern": r"\d{5}"})
    check.check(row(zip="97301"))
    error = failure(check, row(zip="97301-1234"))
    assert (error.field, error.rule) == ("zip", "regex")
    assert failure(check, row(zip="x97301")).rule == "regex"


def test_enum() -> None:
    check = validator({"field": "use", "rule": "enum", "values": ["R", "C", "I"]})
    check.check(row(use="C"))
    error = failure(check, row(use="X"))
    assert (error.field, error.rule) == ("use", "enum")
    assert error.message == "'X' is not one of R, C, I"


def test_length_counts_characters_of_the_text_form() -> None:
    check = validator({"field": "zip", "rule": "length", "min": 5, "max": 10})
    check.check(row(zip="97301"))
    check.check(row(zip="97301-1234"))
    short = failure(check, row(zip="9730"))
    assert (short.rule, short.message) == ("length", "4 characters, at least 5 needed")
    long = failure(check, row(zip="97301-12345"))
    assert long.message == "11 characters, at most 10 allowed"


def test_rules_other_than_required_skip_missing_values() -> None:
    check = validator(
        {"field": "value", "rule": "range", "min": 0},
        {"field": "zip", "rule": "regex", "pattern": r"\d{5}"},
        {"field": "use", "rule": "enum", "values": ["R"]},
        {"field": "name", "rule": "length", "max": 2},
    )
    check.check(row(value=None, zip=None, use=None, name=None))


def test_custom_message_replaces_the_default() -> None:
    check = validator(
        {"field": "use", "rule": "enum", "values": ["R"], "message": "unknown land use"}
    )
    assert failure(check, row(use="Q")).message == "unknown land use"


def test_required_is_checked_before_other_rules() -> None:
    check = validator(
        {"field": "zip", "rule": "regex", "pattern": r"\d{5}"},
        {"field": "name", "rule": "required"},
    )
    assert failure(check, row(zip="bad", name=None)).rule == "required"


def test_first_broken_rule_in_declaration_order_wins() -> None:
    check = validator(
        {"field": "zip", "rule": "regex", "pattern": r"\d{5}"},
        {"field": "use", "rule": "enum", "values": ["R"]},
    )
    assert failure(check, row(zip="bad", use="bad")).field == "zip"


def test_unique_and_reference_are_collected_for_the_batch_step() -> None:
    check = validator(
        {"field": "name", "rule": "unique"},
        {"field": "owner_id", "rule": "reference", "entity": "owner", "message": "no owner"},
    )
    assert check.unique == [UniqueRule("name", 1, None)]
    assert check.references == [ReferenceRule("owner_id", 5, "owner", "no owner")]
    # They are not row rules: a row is never rejected for them here.
    check.check(row(name="dup", owner_id=999))

"""Field mapping (pacsync.domain.mapping)."""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal
from typing import Any

import pytest

from pacsync.domain.mapping import Mapper, mapping_version, source_columns
from pacsync.domain.records import RowError
from pacsync.domain.spec import EntitySpec

ID = {"id": {"from": "ID", "type": "integer"}}


def entity(fields: dict[str, Any], *, key: list[str] | None = None, **extra: Any) -> EntitySpec:
    return EntitySpec.model_validate(
        {
            "source": {"table": "Owner", "key": key or ["ID"]},
            "target": {"table": "owner"},
            "fields": fields if key else {**ID, **fields},
            **extra,
        }
    )


def mapper_for(spec: EntitySpec) -> Mapper:
    return Mapper(spec, source_columns(spec))


def mapped(fields: dict[str, Any], record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Map one source record (a dict by column) and return the target row by field."""
    mapper = mapper_for(entity(fields, **extra))
    row = tuple(record.get(c) for c in mapper.columns)
    return dict(zip(mapper.fields, mapper.map(row), strict=True))


def test_rename_copies_a_column_under_the_field_name() -> None:
    assert mapped({"owner_name": {"from": "OWNER_NM"}}, {"ID": 1, "OWNER_NM": "Ann"}) == {
        "id": 1,
        "owner_name": "Ann",
    }


def test_cast_to_the_declared_types() -> None:
    fields = {
        "rooms": {"from": "Rooms", "type": "integer"},
        "value": {"from": "Value", "type": "decimal", "scale": 1},
        "ratio": {"from": "Ratio", "type": "float"},
        "exempt": {"from": "Exempt", "type": "boolean"},
        "code": {"from": "Code"},
    }
    row = mapped(
        fields,
        {"ID": "7", "Rooms": "3", "Value": "1,000.06", "Ratio": "0.5", "Exempt": "Y", "Code": 42},
    )
    assert row == {
        "id": 7,
        "rooms": 3,
        "value": Decimal("1000.1"),
        "ratio": 0.5,
        "exempt": True,
        "code": "42",
    }


def test_default_fills_missing_values_and_is_cast() -> None:
    fields = {
        "status": {"from": "Status", "default": "active"},
        "rooms": {"from": "Rooms", "type": "integer", "default": "0"},
        "region": {"default": "north"},
    }
    assert mapped(fields, {"ID": 1, "Status": None, "Rooms": None}) == {
        "id": 1,
        "status": "active",
        "rooms": 0,
        "region": "north",
    }
    assert mapped(fields, {"ID": 1, "Status": "sold", "Rooms": 4})["status"] == "sold"


def test_concat_joins_non_blank_parts_with_the_separator() -> None:
    fields = {
        "name": {"concat": ["First", "Middle", "Last"]},
        "place": {"concat": ["City", "State"], "separator": ", "},
    }
    assert mapped(
        fields,
        {"ID": 1, "First": " Ann ", "Middle": None, "Last": "Lee", "City": "Salem", "State": "OR"},
    ) == {
        "id": 1,
        "name": "Ann Lee",
        "place": "Salem, OR",
    }
    assert mapped(fields, {"ID": 1, "First": None, "Middle": " ", "Last": None})["name"] is None


def test_split_takes_one_stripped_piece() -> None:
    fields = {
        "last": {"split": {"from": "Name", "separator": ",", "index": 0}},
        "first": {"split": {"from": "Name", "separator": ",", "index": 1}},
        "extra": {"split": {"from": "Name", "separator": ",", "index": 5}},
    }
    assert mapped(fields, {"ID": 1, "Name": "Lee, Ann"}) == {
        "id": 1,
        "last": "Lee",
        "first": "Ann",
        "extra": None,
    }
    assert mapped(fields, {"ID": 1, "Name": None})["last"] is None


def test_lookup_translates_codes() -> None:
    fields = {
        "use": {"from": "UseCode", "lookup": {"R": "Residential", "1": "One"}},
        "kind": {"from": "Kind", "lookup": {"C": "Commercial"}, "lookup_default": "Other"},
    }
    assert mapped(fields, {"ID": 1, "UseCode": "R", "Kind": "C"})["use"] == "Residential"
    assert mapped(fields, {"ID": 1, "UseCode": 1, "Kind": "C"})["use"] == "One"
    row = mapped(fields, {"ID": 1, "UseCode": "X", "Kind": "Z"})
    assert row["use"] == "X"
    assert row["kind"] == "Other"
    assert mapped(fields, {"ID": 1, "UseCode": None, "Kind": None})["kind"] is None


def test_dates_with_formats() -> None:
    fields = {
        "sold": {"from": "SaleDate", "type": "date", "formats": ["%m/%d/%Y"]},
        "seen": {"from": "Seen", "type": "datetime", "formats": ["%Y%m%d %H%M"]},
    }
    row = mapped(fields, {"ID": 1, "SaleDate": "12/31/1999", "Seen": "20240102 0930"})
    assert row["sold"] == dt.date(1999, 12, 31)
    assert row["seen"] == dt.datetime(2024, 1, 2, 9, 30)


def test_trim_and_case_transforms_run_in_order() -> None:
    fields = {
        "city": {"from": "City", "transforms": ["trim", "upper"]},
        "email": {"from": "Email", "transforms": ["trim", "lower", "empty_to_null"]},
    }
    assert mapped(fields, {"ID": 1, "City": "  salem ", "Email": " A@B.ORG "}) == {
        "id": 1,
        "city": "SALEM",
        "email": "a@b.org",
    }
    assert mapped(fields, {"ID": 1, "City": None, "Email": "   "})["email"] is None


def test_zip_and_phone_normalisation() -> None:
    fields = {
        "zip": {"from": "Zip", "transforms": ["zip"]},
        "phone": {"from": "Phone", "transforms": ["phone"]},
    }
    assert mapped(fields, {"ID": 1, "Zip": "97301 1234", "Phone": "1 (503) 555-0100"}) == {
        "id": 1,
        "zip": "97301-1234",
        "phone": "503-555-0100",
    }
    assert mapped(fields, {"ID": 1, "Zip": "973", "Phone": "55"}) == {
        "id": 1,
        "zip": None,
        "phone": None,
    }


def test_computed_field_sees_columns_and_earlier_fields() -> None:
    fields = {
        "land": {"from": "LandValue", "type": "decimal"},
        "total": {"expr": "land + BuildingValue", "type": "decimal"},
        "band": {"expr": "'high' if total > 1000 else 'low'"},
    }
    row = mapped(fields, {"ID": 1, "LandValue": "600", "BuildingValue": Decimal("500")})
    assert row == {"id": 1, "land": Decimal("600.00"), "total": Decimal("1100.00"), "band": "high"}


def test_computed_field_cannot_use_a_later_field() -> None:
    spec = entity({"total": {"expr": "land * 2"}, "land": {"from": "Land"}})
    with pytest.raises(ValueError, match="field 'total'"):
        mapper_for(spec)


def test_computed_field_error_is_a_row_error() -> None:
    with pytest.raises(RowError) as caught:
        mapped({"ratio": {"expr": "a / b", "type": "float"}}, {"ID": 1, "a": 1, "b": 0})
    assert (caught.value.field, caught.value.rule) == ("ratio", "expr")


def test_bad_cast_raises_row_error_naming_field_and_rule() -> None:
    with pytest.raises(RowError) as caught:
        mapped({"value": {"from": "Value", "type": "decimal"}}, {"ID": 1, "Value": "ten"})
    error = caught.value
    assert error.field == "value"
    assert error.rule == "type"
    assert "decimal" in error.message
    assert str(error) == f"value: {error.message} [type]"


def test_string_longer_than_length_is_a_row_error() -> None:
    fields = {"code": {"from": "Code", "length": 3}}
    assert mapped(fields, {"ID": 1, "Code": "abc"})["code"] == "abc"
    with pytest.raises(RowError) as caught:
        mapped(fields, {"ID": 1, "Code": "abcd"})
    assert (caught.value.field, caught.value.rule) == ("code", "length")


def test_a_transform_failing_on_one_value_is_a_row_error() -> None:
    fields = {"value": {"from": "Value", "type": "decimal", "transforms": [{"round": 2}]}}
    with pytest.raises(RowError) as caught:
        mapped(fields, {"ID": 1, "Value": Decimal("1E+30")})
    assert caught.value.field == "value"


# --- filter, keys ------------------------------------------------------------------------------


def test_keep_applies_the_filter_to_fields_and_columns() -> None:
    spec = entity(
        {"status": {"from": "Status", "transforms": ["lower"]}},
        filter="status != 'retired' and Region == 'N'",
    )
    mapper = mapper_for(spec)
    assert mapper.columns == ("ID", "Status", "Region")

    def keep(status: str, region: str) -> bool:
        row = (1, status, region)
        return mapper.keep(row, mapper.map(row))

    assert keep("Active", "N")
    assert not keep("RETIRED", "N")
    assert not keep("Active", "S")


def test_source_columns_key_first_then_each_used_column_once() -> None:
    spec = entity(
        {
            "name": {"concat": ["First", "Last"]},
            "last": {"split": {"from": "Last", "separator": " "}},
            "code": {"from": "Code"},
            "double": {"expr": "code + Extra"},
            "code2": {"expr": "upper(code)"},
        },
        filter="Flag == 1 and name != ''",
        cursor={"column": "Modified"},
    )
    assert source_columns(spec) == ["ID", "First", "Last", "Code", "Extra", "Flag", "Modified"]


def test_source_columns_with_a_composite_key() -> None:
    spec = entity(
        {
            "book": {"from": "Book", "type": "integer"},
            "page": {"from": "Page"},
            "owner": {"from": "Owner"},
        },
        key=["Book", "Page"],
    )
    assert source_columns(spec) == ["Book", "Page", "Owner"]
    assert spec.key_fields == ["book", "page"]
    mapper = mapper_for(spec)
    row = (12, "0034", "Lee")
    assert mapper.source_key(row) == (12, "0034")
    assert mapper.key_positions == (0, 1)


def test_mapper_needs_every_source_column() -> None:
    spec = entity({"name": {"from": "Name"}})
    with pytest.raises(ValueError, match="source columns not selected: Name"):
        Mapper(spec, ["ID"])


def test_mapper_accepts_extra_and_reordered_columns() -> None:
    spec = entity({"name": {"from": "Name"}})
    mapper = Mapper(spec, ["Name", "Unused", "ID"])
    assert mapper.map(("Ann", "x", "5")) == (5, "Ann")
    assert mapper.source_key(("Ann", "x", "5")) == ("5",)
    assert mapper.record(("Ann", "x", "5", "fp")) == {"Name": "Ann", "Unused": "x", "ID": "5"}


def test_mapping_version_is_stable_and_changes_with_the_mapping() -> None:
    base = {"name": {"from": "Name"}}
    version = mapping_version(entity(base))
    assert version == mapping_version(entity({"name": {"from": "Name"}}))
    assert len(version) == 16
    changed = [
        entity({"name": {"from": "Name", "transforms": ["upper"]}}),
        entity({"name": {"from": "FullName"}}),
        entity({"name": {"from": "Name", "type": "text"}}),
        entity({**base, "extra": {"from": "Extra"}}),
        entity(base, filter="name != ''"),
        entity(base, validate=[{"field": "name", "rule": "required"}]),
    ]
    versions = {mapping_version(e) for e in changed}
    assert version not in versions
    assert len(versions) == len(changed)


def test_mapping_version_ignores_strategy_and_batch_size() -> None:
    base = {"name": {"from": "Name"}}
    version = mapping_version(entity(base))
    assert mapping_version(entity(base, batch_size=500)) == version
    assert mapping_version(entity(base, strategy="change_tracking")) == version


def test_mapping_version_ignores_cursor_tuning() -> None:
    base = {"name": {"from": "Name"}}
    before = entity(base, strategy="cursor", cursor={"column": "Modified"})
    after = entity(
        base, strategy="cursor", cursor={"column": "Modified", "overlap": 60, "key_check_every": 10}
    )
    assert mapping_version(after) == mapping_version(before)


def test_target_key_applies_the_key_fields_mapping() -> None:
    spec = EntitySpec.model_validate(
        {
            "source": {"table": "Owner", "key": ["Code"]},
            "target": {"table": "owner"},
            "fields": {
                "name": {"from": "Name"},
                "code": {"from": "Code", "transforms": ["trim", "upper"]},
            },
        }
    )
    mapper = mapper_for(spec)
    assert mapper.target_key((" ab1 ",)) == ("AB1",)
    convert = mapper.key_converter()
    assert convert((" ab1 ",)) == ("AB1",)


def test_key_converter_passes_plain_keys_through_and_casts_others() -> None:
    mapper = mapper_for(entity({"name": {"from": "Name"}}))
    convert = mapper.key_converter()
    key = (42,)
    assert convert(key) is key
    assert convert(("42",)) == (42,)
    assert convert((Decimal("42"),)) == (42,)


def test_key_converter_for_string_and_composite_keys() -> None:
    spec = entity(
        {"book": {"from": "Book", "type": "integer"}, "page": {"from": "Page"}},
        key=["Book", "Page"],
    )
    convert = mapper_for(spec).key_converter()
    assert convert((12, "0034")) == (12, "0034")
    assert convert(("12", 34)) == (12, "34")


def test_decimal_at_the_declared_source_scale_is_taken_as_is() -> None:
    spec = EntitySpec.model_validate(
        {
            "source": {"table": "T", "key": ["Id"]},
            "target": {"table": "t"},
            "fields": {
                "id": {"from": "Id", "type": "integer"},
                "value": {"from": "Value", "type": "decimal", "scale": 2},
            },
        }
    )
    same = Mapper(spec, ["Id", "Value"], {"Value": 2})
    other = Mapper(spec, ["Id", "Value"], {"Value": 4})
    exact = Decimal("12.50")
    assert same.map((1, exact))[1] is exact
    assert other.map((1, Decimal("12.5049")))[1] == Decimal("12.50")
    assert same.map((1, "7"))[1] == Decimal("7.00")


def test_rounding_does_not_depend_on_the_threads_decimal_context() -> None:
    """firebird-driver raises the thread's precision to 34 when it loads."""
    fields = {"value": {"from": "Value", "type": "decimal", "transforms": [{"round": 2}]}}
    with decimal.localcontext() as context:
        context.prec = 34
        with pytest.raises(RowError):
            mapped(fields, {"ID": 1, "Value": Decimal("1E+30")})

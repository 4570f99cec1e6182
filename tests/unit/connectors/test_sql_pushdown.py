"""Which mappings and rules a PostgreSQL source computes itself, and the SQL it is given."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import (
    CHAR,
    REAL,
    TEXT,
    TIMESTAMP,
    VARCHAR,
    BigInteger,
    Column,
    Integer,
    MetaData,
    Numeric,
    Table,
)
from sqlalchemy.dialects import postgresql

from pacsync.connectors.sql.pushdown import NotPushable, literal, plan
from pacsync.domain.spec import EntitySpec

TABLE = Table(
    "legacy",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("code", CHAR(8)),
    Column("name", VARCHAR(40)),
    Column("note", TEXT),
    Column("small", Integer),
    Column("amount", Numeric(12, 2)),
    Column("rate", Numeric(12, 4)),
    Column("ratio", REAL),
    Column("at", TIMESTAMP(timezone=True)),
)
QUOTE = postgresql.dialect().identifier_preparer.quote


def _entity(fields: dict[str, Any], **more: Any) -> EntitySpec:
    return EntitySpec.model_validate(
        {
            "source": {"table": "legacy", "key": ["id"]},
            "target": {"table": "t"},
            "fields": {"id": {"from": "id", "type": "bigint"}, **fields},
            **more,
        }
    )


def _plan(fields: dict[str, Any], **more: Any) -> Any:
    return plan(_entity(fields, **more), list(TABLE.columns), QUOTE)


def test_a_plain_mapping_is_translated_with_its_conditions_and_rules() -> None:
    pushed = _plan(
        {
            "code": {"from": "code", "transforms": ["trim", "upper"], "length": 8},
            "name": {"from": "name", "transforms": ["title"], "default": "unknown"},
            "amount": {"from": "amount", "type": "decimal", "scale": 2},
            "rate": {"from": "rate", "type": "decimal", "scale": 2},
            "small": {"from": "small", "type": "integer"},
            "note": {"from": "note", "length": 30},
        },
        validate=[
            {"field": "code", "rule": "required"},
            {"field": "small", "rule": "range", "min": 0, "max": 100},
            {"field": "name", "rule": "enum", "values": ["A", "B"]},
        ],
    )
    assert pushed.casts == ["bigint", "text", "text", "numeric", "numeric", "integer", "text"]
    assert pushed.values[1] == 'upper((btrim(code::text)) COLLATE "C")'  # padding trimmed away
    assert pushed.values[2].startswith("COALESCE(initcap((btrim(name))")
    assert pushed.values[3] == "amount"  # the column's scale already: no rounding
    assert pushed.values[4] == "round(rate::numeric, 2)"
    assert pushed.exact[0] == "concat(code, name) !~ '[^ -~]'"
    assert "name !~ '[^A-Za-z ]|  '" in pushed.exact[1]
    assert "abs(rate::numeric) < 1e26::numeric" in pushed.exact[2]
    # code's 8 characters cannot exceed its length; a text column can
    assert pushed.rules == [
        "char_length(v6) <= 30",
        "btrim(v1) <> ''",
        "(v5 IS NULL OR (v5 >= 0 AND v5 <= 100))",
        "(v2 IS NULL OR (v2 COLLATE \"C\") IN ('A', 'B'))",
    ]


def test_a_padded_column_without_trim_keeps_its_padding() -> None:
    pushed = _plan({"code": {"from": "code"}})
    assert pushed.values[1] == "rpad(code::text, 8)"
    assert pushed.exact == []


def test_five_digits_skip_the_regular_expression_of_zip5() -> None:
    pushed = _plan({"zip": {"from": "name", "transforms": ["zip5"], "length": 5}})
    assert pushed.values[1].startswith(
        "(CASE WHEN char_length(name) = 5 AND translate(name, '0123456789', '') = '' THEN name"
    )
    assert pushed.rules == []  # zip5 gives at most five characters


def test_null_if_is_translated_on_text_after_a_strip_and_on_whole_numbers_as_is() -> None:
    pushed = _plan(
        {
            "n": {"from": "name", "transforms": [{"null_if": ["", "N/A"]}]},
            "s": {"from": "small", "type": "integer", "transforms": [{"null_if": [0, -1]}]},
        }
    )
    name, small = "name", "small"  # plain names are not quoted
    assert pushed.values[1] == (
        f"(CASE WHEN btrim({name}) IN ('', 'N/A') THEN NULL ELSE {name} END)"
    )
    assert pushed.values[2] == f"(CASE WHEN {small} IN (0, -1) THEN NULL ELSE {small} END)"
    assert pushed.exact == [f"concat({name}) !~ '[^ -~]'"]  # numbers need no ASCII test


@pytest.mark.parametrize(
    ("fields", "more", "reason"),
    [
        ({"n": {"from": "name"}}, {"filter": "n != 'x'"}, "the entity has a filter"),
        ({"n": {"concat": ["name", "note"]}}, {}, "field 'n' is not a plain column"),
        ({"n": {"from": "name", "lookup": {"a": "b"}}}, {}, "field 'n' uses a lookup"),
        ({"n": {"from": "name", "transforms": ["phone"]}}, {}, "transform 'phone'"),
        ({"n": {"from": "small", "transforms": ["trim"]}}, {}, "on a int4 column"),
        (
            {"n": {"from": "small", "type": "integer", "transforms": [{"null_if": [True]}]}},
            {},
            "on a int4 column",
        ),
        (
            {"n": {"from": "small", "type": "integer", "transforms": [{"null_if": ["0"]}]}},
            {},
            "on a int4 column",
        ),
        ({"n": {"from": "name", "transforms": [{"null_if": [0]}]}}, {}, "no exact SQL form"),
        (
            {"n": {"from": "amount", "type": "decimal", "transforms": [{"null_if": [0]}]}},
            {},
            "transforms a numeric column",
        ),
        ({"n": {"from": "ratio", "type": "float"}}, {}, "a other column read as float"),
        ({"n": {"from": "at", "type": "datetime"}}, {}, "a other column read as datetime"),
        ({"n": {"from": "note", "type": "integer"}}, {}, "a text column read as integer"),
        ({"n": {"from": "id", "type": "integer"}}, {}, "a int8 column read as integer"),
        ({"n": {"from": "name", "default": "é"}}, {}, "a str default"),
        (
            {"n": {"from": "name"}},
            {"validate": [{"field": "n", "rule": "regex", "pattern": "a+"}]},
            "rule 'regex' on field 'n'",
        ),
        (
            {"n": {"from": "name"}},
            {"validate": [{"field": "n", "rule": "unique"}]},
            "rule 'unique' on field 'n'",
        ),
        (
            {"n": {"from": "small", "type": "integer"}},
            {"validate": [{"field": "n", "rule": "enum", "values": [1, True]}]},
            "rule 'enum' on field 'n'",
        ),
    ],
)
def test_what_has_no_exact_sql_form_takes_the_row_path(
    fields: dict[str, Any], more: dict[str, Any], reason: str
) -> None:
    with pytest.raises(NotPushable, match=reason):
        _plan(fields, **more)


def test_a_transformed_key_takes_the_row_path() -> None:
    entity = EntitySpec.model_validate(
        {
            "source": {"table": "legacy", "key": ["name"]},
            "target": {"table": "t"},
            "fields": {"name": {"from": "name", "transforms": ["trim"]}},
        }
    )
    with pytest.raises(NotPushable, match="key field 'name'"):
        plan(entity, list(TABLE.columns), QUOTE)


def test_configuration_values_become_quoted_literals() -> None:
    assert literal("it's \\ here") == "E'it''s \\\\ here'"
    assert literal(1800.0) == "'1800'::numeric"
    assert literal(0.1).startswith("'0.1000000000000000055511151231257827")
    assert literal(7) == "7"

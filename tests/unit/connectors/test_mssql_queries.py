"""SQL Server cannot run here: its queries are checked by compiling them with the mssql dialect."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Numeric, String, Table
from sqlalchemy.dialects import mssql
from sqlalchemy.dialects.mssql import TIMESTAMP

from pacsync.connectors.sql import dialects
from pacsync.connectors.sql.source import EntityQuery, compile_for_driver
from pacsync.domain.spec import EntitySpec

DIALECT = mssql.pymssql.dialect(paramstyle="pyformat")  # type: ignore[attr-defined]


def entity(strategy: str = "change_tracking", key: list[str] | None = None) -> EntitySpec:
    fields: dict[str, Any] = {
        "property_id": {"from": "PropertyID", "type": "integer"},
        "parcel": {"from": "ParcelNumber"},
        "acreage": {"from": "Acreage", "type": "decimal"},
        "modified": {"from": "LastModified", "type": "datetime"},
    }
    if key and "TaxYear" in key:
        fields["tax_year"] = {"from": "TaxYear", "type": "integer"}
    return EntitySpec.model_validate(
        {
            "source": {"table": "Property", "schema": "dbo", "key": key or ["PropertyID"]},
            "target": {"table": "properties"},
            "strategy": strategy,
            "cursor": {"column": "RowVer"},
            "fields": fields,
        }
    )


def table() -> Table:
    return Table(
        "Property",
        MetaData(),
        Column("PropertyID", Integer, primary_key=True),
        Column("TaxYear", Integer),
        Column("ParcelNumber", String(20)),
        Column("Acreage", Numeric(10, 4)),
        Column("LastModified", DateTime),
        Column("RowVer", TIMESTAMP),
        schema="dbo",
    )


def sql(stmt: Any) -> str:
    return " ".join(str(stmt.compile(dialect=DIALECT)).split())


def test_fingerprint_is_computed_by_sql_server_with_hashbytes() -> None:
    query = EntityQuery(table(), "properties", entity(), DIALECT)
    text = sql(query.rows())
    assert "HASHBYTES('MD5', CONCAT(" in text
    assert "CONVERT(NVARCHAR(40), dbo.[Property].[LastModified], 126)" in text
    assert "ISNULL(CAST(dbo.[Property].[Acreage] AS NVARCHAR(MAX)), NCHAR(30))" in text
    assert text.startswith("SELECT dbo.[Property].[PropertyID], dbo.[Property].[ParcelNumber]")
    assert "FROM dbo.[Property]" in text


def test_rowversion_cursor_is_bounded_by_min_active_rowversion() -> None:
    query = EntityQuery(table(), "properties", entity("cursor"), DIALECT)
    assert query.cursor is not None
    assert dialects.is_rowversion(DIALECT, query.cursor, "auto")
    assert sql(dialects.cursor_bound_query(DIALECT)) == "SELECT MIN_ACTIVE_ROWVERSION()"
    stmt = query.rows().where(query.cursor >= b"\x00" * 8, query.cursor < b"\x01" * 8)
    text = sql(stmt.order_by(query.cursor, *query.keys))
    assert "[Property].[RowVer] >= %(RowVer_1)s AND dbo.[Property].[RowVer] < %(RowVer_2)s" in text
    assert text.endswith("ORDER BY dbo.[Property].[RowVer], dbo.[Property].[PropertyID]")


def test_change_tracking_reads_changetable_joined_to_the_table() -> None:
    query = EntityQuery(table(), "properties", entity(), DIALECT)
    stmt = dialects.change_rows_query(
        DIALECT, "[dbo].[Property]", ["PropertyID"], query.columns, query.fingerprint
    )
    text = " ".join(str(stmt).split())
    assert "FROM CHANGETABLE(CHANGES [dbo].[Property], :since) AS CT" in text
    assert "LEFT OUTER JOIN [dbo].[Property] AS T ON T.[PropertyID] = CT.[PropertyID]" in text
    assert "CT.SYS_CHANGE_OPERATION, CT.[PropertyID] AS [ct_PropertyID]" in text
    assert "HASHBYTES('MD5', CONCAT(ISNULL(CAST(T.[PropertyID]" in text
    assert "[Property]." not in text  # every column read through the alias
    assert text.endswith("ORDER BY CT.SYS_CHANGE_VERSION")
    versions = " ".join(str(dialects.change_versions_query(DIALECT, "[dbo].[Property]")).split())
    assert versions == (
        "SELECT CHANGE_TRACKING_CURRENT_VERSION(), "
        "CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(:table_ref))"
    )


def test_resume_after_a_composite_key_avoids_row_values() -> None:
    query = EntityQuery(table(), "values", entity("hash_diff", ["PropertyID", "TaxYear"]), DIALECT)
    text, params = compile_for_driver(query.rows().where(query.after((7, 2024))), DIALECT)
    flat = " ".join(text.split())
    assert (
        "[Property].[PropertyID] > %(PropertyID_1)s OR dbo.[Property].[PropertyID] = "
        "%(PropertyID_2)s AND dbo.[Property].[TaxYear] > %(TaxYear_1)s"
    ) in flat
    assert params == {"PropertyID_1": 7, "PropertyID_2": 7, "TaxYear_1": 2024}
    keyed = sql(query.rows().where(query.key_filter([(1, 2023), (2, 2024)], "mssql")))
    assert "[Property].[PropertyID] = %(PropertyID_1)s AND dbo.[Property].[TaxYear] =" in keyed
    assert " OR " in keyed


def test_driver_parameters_are_expanded_for_in_lists() -> None:
    query = EntityQuery(table(), "properties", entity("hash_diff"), DIALECT)
    text, params = compile_for_driver(
        query.rows().where(query.key_filter([(1,), (2,)], "mssql")), DIALECT
    )
    assert "[Property].[PropertyID] IN (%(PropertyID_1_1)s, %(PropertyID_1_2)s)" in text
    assert params == {"PropertyID_1_1": 1, "PropertyID_1_2": 2}


@pytest.mark.parametrize("value", [dt.datetime(2024, 5, 1, 12, 0, 1), None])
def test_python_fingerprint_tells_null_from_empty(value: dt.datetime | None) -> None:
    assert dialects.python_fingerprint([value, ""]) != dialects.python_fingerprint([value, None])
    assert len(dialects.python_fingerprint([value])) == 16

"""Target tables derived from a pipeline's mapping, created and upgraded in place."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    inspect,
    types,
)

from pacsync.connectors.sql.errors import translated
from pacsync.domain.spec import EntitySpec, FieldSpec, PipelineSpec
from pacsync.errors import SchemaMismatch

FINGERPRINT = "_pacsync_fingerprint"
SYNCED_AT = "_pacsync_synced_at"
DELETED_AT = "deleted_at"
CHECKPOINTS = "pacsync_checkpoints"


def column_type(spec: FieldSpec) -> types.TypeEngine[Any]:
    kinds: dict[str, types.TypeEngine[Any]] = {
        "string": String(spec.length or 255),
        "text": Text(),
        "integer": Integer(),
        "bigint": BigInteger(),
        "decimal": Numeric(spec.precision, spec.scale),
        "float": Float(),
        "boolean": Boolean(),
        "date": Date(),
        "datetime": DateTime(),
    }
    return kinds[spec.type]


def target_table(spec: PipelineSpec, entity: EntitySpec, metadata: MetaData) -> Table:
    keys = set(entity.key_fields)
    columns: list[Column[Any]] = [
        Column(name, column_type(field), primary_key=name in keys, nullable=name not in keys)
        for name, field in entity.fields.items()
    ]
    columns.append(Column(FINGERPRINT, String(40), nullable=False))
    columns.append(Column(SYNCED_AT, DateTime(), nullable=False))
    if spec.destination.delete_mode == "soft":
        columns.append(Column(DELETED_AT, DateTime(), nullable=True))
    schema = entity.target.db_schema or spec.destination.db_schema
    return Table(entity.target.table_name, metadata, *columns, schema=schema)


def checkpoints_table(metadata: MetaData, schema: str | None) -> Table:
    return Table(
        CHECKPOINTS,
        metadata,
        Column("pipeline", String(100), primary_key=True),
        Column("entity", String(100), primary_key=True),
        Column("state", Text(), nullable=False),
        Column("updated_at", DateTime(), nullable=False),
        schema=schema,
    )


def ensure(engine: Engine, table: Table, where: str) -> None:
    """Create ``table`` or add the columns it lacks; refuse incompatible key changes."""
    with translated(where):
        inspector = inspect(engine)
        if not inspector.has_table(table.name, schema=table.schema):
            table.create(engine, checkfirst=True)
            return
        existing = {c["name"].lower(): c for c in inspector.get_columns(table.name, table.schema)}
        pk = inspector.get_pk_constraint(table.name, table.schema)
    wanted_pk = [c.name.lower() for c in table.primary_key.columns]
    have_pk = [c.lower() for c in pk.get("constrained_columns") or []]
    if have_pk and have_pk != wanted_pk:
        raise SchemaMismatch(
            f"table '{table.fullname}' has primary key ({', '.join(have_pk)}), "
            f"the mapping needs ({', '.join(wanted_pk)})",
            hint="Rename the target table in the pipeline or migrate the existing one.",
        )
    for column in table.columns:
        found = existing.get(column.name.lower())
        if found is None:
            _add_column(engine, table, column, where)
            continue
        if not _compatible(found["type"], column.type):
            raise SchemaMismatch(
                f"column '{column.name}' of table '{table.fullname}' is {found['type']}, "
                f"the mapping makes it {column.type}",
                hint="Change the field's type in the mapping or alter the column.",
            )


def _compatible(have: types.TypeEngine[Any], want: types.TypeEngine[Any]) -> bool:
    def family(t: types.TypeEngine[Any]) -> str:
        if isinstance(t, types.Boolean):
            return "bool"
        if isinstance(t, types.Integer):
            return "int"
        if isinstance(t, types.Numeric | types.Float):  # Float is no Numeric in SQLAlchemy 2.1
            return "number"
        if isinstance(t, types.DateTime | types.Date):
            return "time"
        if isinstance(t, types.String):
            return "text"
        return type(t).__name__

    a, b = family(have), family(want)
    return a == b or {a, b} <= {"int", "number", "bool"}


def _add_column(engine: Engine, table: Table, column: Column[Any], where: str) -> None:
    preparer = engine.dialect.identifier_preparer
    ddl_type = column.type.compile(dialect=engine.dialect)
    default = ""
    if not column.nullable:
        default = " DEFAULT '' " if isinstance(column.type, types.String) else ""
        if column.name == SYNCED_AT:
            default = " DEFAULT CURRENT_TIMESTAMP"
    null = "" if column.nullable or default else " NULL"
    with translated(where), engine.begin() as conn:
        conn.exec_driver_sql(
            f"ALTER TABLE {preparer.format_table(table)} ADD "
            f"{preparer.quote(column.name)} {ddl_type}{default}{null}"
        )

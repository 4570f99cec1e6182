"""The legacy mapping checked against the database's own tables, and the one query
that lists every image with its series, study and patient.

Names resolve as Firebird would resolve them unquoted (case-insensitively), and a
quoted mixed-case name is found too; the query then quotes the names as stored.  A
table or column the database does not have is a SourceError that names it, the
mapping key that asked for it, and what exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from pacsync.domain.legacy_mapping import LegacyMapping
from pacsync.errors import SourceError

#: every column of every user table and view, in column order
COLUMNS_SQL = (
    "SELECT TRIM(r.RDB$RELATION_NAME), TRIM(f.RDB$FIELD_NAME) "
    "FROM RDB$RELATIONS r JOIN RDB$RELATION_FIELDS f "
    "ON f.RDB$RELATION_NAME = r.RDB$RELATION_NAME "
    "WHERE COALESCE(r.RDB$SYSTEM_FLAG, 0) = 0 "
    "ORDER BY r.RDB$RELATION_NAME, f.RDB$FIELD_POSITION"
)
_SHOWN = 40  # names listed in an error at most

Existing = dict[str, list[str]]  # table → its columns


@dataclass(frozen=True, slots=True)
class ImagesQuery:
    """The SELECT, and which InstanceHeader attribute each selected column holds
    (``file_path`` first)."""

    sql: str
    attributes: tuple[str, ...]


def existing(rows: list[tuple[object, ...]]) -> Existing:
    tables: Existing = {}
    for table, column in rows:
        tables.setdefault(str(table), []).append(str(column))
    return tables


def images_query(mapping: LegacyMapping, tables: Existing) -> ImagesQuery:
    """The joined query over the mapped tables, every name checked against ``tables``."""
    levels = mapping.levels()  # images, series, studies, patients
    aliases = [f"L{i}" for i in range(len(levels))]
    resolved = [_table(level.level, level.table, tables) for level in levels]

    def column(i: int, key: str, name: str) -> str:
        level = levels[i]
        found = _column(f"{level.level}.{key}", resolved[i], name, tables[resolved[i]])
        return f"{aliases[i]}.{quoted(found)}"

    attributes = ["file_path"]
    selected = [column(0, "file_path", mapping.images.file_path)]
    for i, level in enumerate(levels):
        for attribute, name in level.attributes().items():
            attributes.append(attribute)
            selected.append(column(i, attribute, name))
    sql = [f"SELECT {', '.join(selected)}", f"FROM {quoted(resolved[0])} {aliases[0]}"]
    for i, (child, parent) in enumerate(mapping.joins(), start=1):  # child is level i - 1
        pairs = zip(parent.key, child.parent, strict=True)
        condition = " AND ".join(
            f"{column(i, f'key[{n}]', key)} = {column(i - 1, f'parent[{n}]', ref)}"
            for n, (key, ref) in enumerate(pairs)
        )
        sql.append(f"LEFT JOIN {quoted(resolved[i])} {aliases[i]} ON {condition}")
    return ImagesQuery("\n".join(sql), tuple(attributes))


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _table(level: str, name: str, tables: Existing) -> str:
    found = _resolve(name, tables)
    if found is None:
        raise SourceError(
            f"legacy table {name} ({level}.table) does not exist; "
            f"tables: {_listed(sorted(tables))}",
            hint="Fix the table name in the legacy mapping.",
        )
    return found


def _column(key: str, table: str, name: str, columns: list[str]) -> str:
    found = _resolve(name, columns)
    if found is None:
        raise SourceError(
            f"legacy column {table}.{name} ({key}) does not exist; "
            f"columns of {table}: {_listed(columns)}",
            hint="Fix the column name in the legacy mapping.",
        )
    return found


def _resolve(name: str, candidates: Existing | list[str]) -> str | None:
    """The stored name: exactly as written, else the one unquoted Firebird would mean
    (upper case), else the only one equal ignoring case."""
    for wanted in (name, name.upper()):
        if wanted in candidates:
            return wanted
    folded = [c for c in candidates if c.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _listed(shown: list[str]) -> str:
    more = f" … ({len(shown) - _SHOWN} more)" if len(shown) > _SHOWN else ""
    return ", ".join(shown[:_SHOWN]) + more if shown else "(none)"

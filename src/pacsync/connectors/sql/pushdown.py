"""An entity's mapping and row rules as PostgreSQL expressions, where they are exact.

A fresh full load between two PostgreSQL databases can leave the rows in the
databases: the source computes each mapped field and checks each row rule, and
the rows travel as binary COPY data without becoming Python objects.  That is
only right where the SQL gives exactly what the row path (``domain.mapping``
and ``domain.validation``) gives, so every field and rule is translated with
the conditions under which it is exact; a transform is exact on text of
printable ASCII, a title-cased value on words of letters only, and so on.  A
row that meets every condition and every rule goes across in SQL; any other
row is read back and takes the row path, where it is mapped, checked and, if
it fails, dead-lettered as always.  What has no exact translation (regex and
batch rules, lookups, computed fields, a filter, most casts, transforms of
numbers other than ``null_if``) makes the whole
entity take the row path: :class:`NotPushable` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg import sql
from sqlalchemy import Column, types

from pacsync.domain.spec import EntitySpec, FieldSpec, RuleSpec

# On printable ASCII, the only character Python's str.strip() and str.split() take for
# whitespace is the space, which is what btrim() removes.
_NOT_PRINTABLE = "'[^ -~]'"
_NOT_WORDS = "'[^A-Za-z ]|  '"  # a title-cased value: letters in words one space apart
_PG_TYPES = {
    "string": "text",
    "text": "text",
    "integer": "integer",
    "bigint": "bigint",
    "decimal": "numeric",
    "float": "double precision",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamp",
}
_TEXT = ("string", "text")
_TIME_RANGE = "'0001-01-01'", "'10000-01-01'"  # what Python's datetime can hold
_DECIMAL_DIGITS = 28  # the row path's decimal context


class NotPushable(Exception):
    """The entity's mapping or rules have no exact SQL form: it takes the row path."""


@dataclass(frozen=True, slots=True)
class Pushdown:
    """The SQL of one entity: ``values`` and ``exact`` over the source table's columns,
    ``rules`` over the mapped values named ``v0``, ``v1``…; ``casts`` per field."""

    values: list[str]
    casts: list[str]
    exact: list[str]
    rules: list[str]


def literal(value: Any) -> str:
    """A SQL literal of a configuration value (quoted by the driver's own rules)."""
    if isinstance(value, float):
        value = Decimal(value)  # exactly the float's value
    if isinstance(value, Decimal):
        return f"'{value}'::numeric"
    return sql.Literal(value).as_string(None).strip()


def plan(
    entity: EntitySpec, columns: Sequence[Column[Any]], quote: Callable[[str], str]
) -> Pushdown:
    """The SQL of ``entity`` read from ``columns`` (reflected); raises :class:`NotPushable`."""
    if entity.filter:
        raise NotPushable("the entity has a filter")
    by_name = {c.name: c for c in columns}
    required = {r.field for r in entity.validate_ if r.rule == "required"}
    values: list[str] = []
    casts: list[str] = []
    exact: list[str] = []
    rules: list[str] = []
    printable: list[str] = []  # columns whose text must be printable ASCII
    for name, spec in entity.fields.items():
        column = by_name.get(spec.source or "")
        if column is None:
            raise NotPushable(f"field '{name}' is not a plain column")
        if name in entity.key_fields and (spec.transforms or spec.default is not None):
            raise NotPushable(f"key field '{name}' is not a plain copy of its column")
        value, conditions, longest = _field(name, spec, quote(column.name), column.type)
        if spec.type == "string" and spec.length and (longest is None or longest > spec.length):
            rules.append(f"char_length(v{len(values)}) <= {int(spec.length)}")
        textual = _kind(column.type)[0] in ("char", "text")
        if (spec.transforms and textual) or (name in required and spec.type in _TEXT):
            printable.append(quote(column.name))
        values.append(value)
        casts.append(_PG_TYPES[spec.type])
        exact.extend(conditions)
    if printable:  # one test for them all (concat skips nulls)
        exact.insert(0, f"concat({', '.join(printable)}) !~ {_NOT_PRINTABLE}")
    position = {name: i for i, name in enumerate(entity.fields)}
    for rule in entity.validate_:
        index = position[rule.field]
        rules.append(_rule(rule, f"v{index}", entity.fields[rule.field].type))
    return Pushdown(values, casts, exact, rules)


# -- fields ------------------------------------------------------------------------------------


def _kind(column_type: types.TypeEngine[Any]) -> tuple[str, int | None]:
    """The column's family as the row path sees its values, and its length or scale."""
    if isinstance(column_type, types.CHAR):
        return "char", column_type.length
    if isinstance(column_type, types.VARCHAR | types.TEXT) and not isinstance(
        column_type, types.Enum
    ):
        return "text", None
    if isinstance(column_type, types.BigInteger):
        return "int8", None
    if isinstance(column_type, types.Integer):
        return "int4", None  # smallint and integer
    if isinstance(column_type, types.Float):
        return ("float8", None) if not isinstance(column_type, types.REAL) else ("other", None)
    if isinstance(column_type, types.Numeric):
        return "numeric", column_type.scale
    if isinstance(column_type, types.DateTime):
        return ("timestamp", None) if not column_type.timezone else ("other", None)
    if isinstance(column_type, types.Date):
        return "date", None
    if isinstance(column_type, types.Boolean):
        return "bool", None
    return "other", None


def _field(
    name: str, spec: FieldSpec, column: str, column_type: types.TypeEngine[Any]
) -> tuple[str, list[str], int | None]:
    """The field's SQL, the conditions it is exact under, and the longest text it gives
    (None: not known, or not text)."""
    kind, size = _kind(column_type)
    longest = size if kind == "char" else getattr(column_type, "length", None)
    if spec.lookup is not None:
        raise NotPushable(f"field '{name}' uses a lookup")
    value, conditions = column, list[str]()
    if kind == "char":
        if size is None:
            raise NotPushable(f"field '{name}' reads a character column without a length")
        # the driver's value keeps the padding, which a trim removes again
        trimmed = spec.transforms[:1] == ["trim"]
        value = f"{column}::text" if trimmed else f"rpad({column}::text, {int(size)})"
    if spec.transforms and kind in ("int4", "int8"):  # only null_if on whole numbers
        for item in spec.transforms:
            value = _null_if_whole(name, item, value, kind)
    elif spec.transforms:
        if kind not in ("char", "text"):
            raise NotPushable(f"field '{name}' transforms a {kind} column")
        before: str | dict[str, Any] | None = None
        for item in spec.transforms:
            value = _transform(name, item, value, conditions, trimmed=before in _TRIMMING)
            longest = _longest(item, longest)
            before = item
    if spec.default is not None:
        value = _default(name, spec, value)
        longest = None if longest is None else max(longest, len(str(spec.default)))
    value, more = _cast(name, spec, value, kind, size)
    return value, conditions + more, longest


_TRIMMING = ("trim", "collapse_spaces")


def _longest(item: str | dict[str, Any], longest: int | None) -> int | None:
    """The longest text a transform gives from text of at most ``longest`` characters."""
    if item == "zip5":
        return 5
    if item == "zip":
        return 10
    if isinstance(item, dict) and "null_if" in item:
        return longest
    if isinstance(item, dict):  # replace: only no longer when the new text is no longer
        old, new = item["replace"]
        return longest if len(new) <= len(old) else None
    return longest  # trimming, case, title, collapsing, digits: never longer on ASCII


def _transform(
    name: str, item: str | dict[str, Any], value: str, conditions: list[str], *, trimmed: bool
) -> str:
    """One transform on printable ASCII text (:func:`plan` makes that a condition);
    ``trimmed``: the value has no spaces at its ends already."""
    if item == "trim":
        return f"btrim({value})"
    if item in ("upper", "lower"):
        return f'{item}(({value}) COLLATE "C")'
    if item == "title":
        conditions.append(f"({value} IS NULL OR {value} !~ {_NOT_WORDS})")
        return f'initcap(({value if trimmed else f"btrim({value})"}) COLLATE "C")'
    if item == "collapse_spaces":
        return f"btrim(regexp_replace({value}, ' {{2,}}', ' ', 'g'))"
    if item == "empty_to_null":
        return f"(CASE WHEN btrim({value}) = '' THEN NULL ELSE {value} END)"
    if item in ("digits", "zip5", "zip"):
        digits = f"regexp_replace({value}, '[^0-9]', '', 'g')"
        if item == "digits":
            return digits
        five = f"CASE WHEN char_length({digits}) >= 5 THEN left({digits}, 5) END"
        nine = f"left({digits}, 5) || '-' || right({digits}, 4)"
        slow = (
            five
            if item == "zip5"
            else f"CASE WHEN char_length({digits}) = 9 THEN {nine} ELSE {five} END"
        )
        # five digits and nothing else, the common case, without a regular expression
        plain = f"char_length({value}) = 5 AND translate({value}, '0123456789', '') = ''"
        return f"(CASE WHEN {plain} THEN {value} ELSE {slow} END)"
    if isinstance(item, dict) and set(item) == {"null_if"}:
        blocked = item["null_if"]
        if isinstance(blocked, list) and blocked and all(type(b) is str for b in blocked):
            listed = ", ".join(literal(b) for b in blocked)  # the row path strips, then compares
            return f"(CASE WHEN btrim({value}) IN ({listed}) THEN NULL ELSE {value} END)"
    if isinstance(item, dict) and set(item) == {"replace"}:
        old, new = item["replace"]
        if isinstance(old, str) and isinstance(new, str) and old:
            return f"replace({value}, {literal(old)}, {literal(new)})"
    raise NotPushable(f"field '{name}': transform {item!r} has no exact SQL form")


def _null_if_whole(name: str, item: str | dict[str, Any], value: str, kind: str) -> str:
    """``null_if`` on an integer column: exact for integer values (True would match 1 in
    Python, and a string never matches a number there)."""
    blocked = item.get("null_if") if isinstance(item, dict) and set(item) == {"null_if"} else None
    if not isinstance(blocked, list) or not blocked or any(type(b) is not int for b in blocked):
        raise NotPushable(f"field '{name}': transform {item!r} on a {kind} column")
    listed = ", ".join(str(int(b)) for b in blocked)
    return f"(CASE WHEN {value} IN ({listed}) THEN NULL ELSE {value} END)"


def _default(name: str, spec: FieldSpec, value: str) -> str:
    default = spec.default
    textual = (
        spec.type in ("string", "text")
        and isinstance(default, str)
        and all(" " <= c <= "~" for c in default)
    )
    whole = spec.type in ("integer", "bigint") and type(default) is int
    if not (textual or whole):
        raise NotPushable(f"field '{name}': a {type(default).__name__} default")
    return f"COALESCE({value}, {literal(default)})"


def _cast(
    name: str, spec: FieldSpec, value: str, kind: str, size: int | None
) -> tuple[str, list[str]]:
    """The value in the field's type, and when that is exact (the row path's cast)."""
    wanted = spec.type
    if wanted in ("string", "text") and kind in ("char", "text"):
        return value, []
    whole = {"bigint": ("int4", "int8"), "integer": ("int4",)}
    if kind in whole.get(wanted, ()):
        return value, []
    if wanted == "decimal" and kind == "numeric" and size == spec.scale and not spec.transforms:
        return value, []  # the value already has the field's scale: no rounding
    if wanted == "decimal" and kind in ("numeric", "int4", "int8"):
        bound = f"1e{_DECIMAL_DIGITS - spec.scale}::numeric"
        finite = f"({value} IS NULL OR abs({value}::numeric) < {bound})"  # NaN sorts above
        return f"round({value}::numeric, {int(spec.scale)})", [finite]
    if (wanted, kind) in (("float", "float8"), ("boolean", "bool")):
        return value, []
    if wanted in ("date", "datetime") and kind in ("date", "timestamp"):
        low, high = _TIME_RANGE
        held = f"({value} IS NULL OR ({value} >= {low} AND {value} < {high}))"
        return f"{value}::{_PG_TYPES[wanted]}", [held]
    raise NotPushable(f"field '{name}': a {kind} column read as {wanted}")


# -- rules -------------------------------------------------------------------------------------


def _rule(rule: RuleSpec, v: str, field_type: str) -> str:
    textual = field_type in ("string", "text")
    numeric = field_type in ("integer", "bigint", "decimal", "float")
    if rule.rule == "required":
        if textual:  # printable ASCII (see plan), so anything but spaces
            return f"btrim({v}) <> ''"
        return f"{v} IS NOT NULL"
    if rule.rule == "enum":
        allowed = list(rule.values or [])
        if textual and allowed and all(isinstance(a, str) for a in allowed):
            listed = ", ".join(literal(a) for a in allowed)
            return f'({v} IS NULL OR ({v} COLLATE "C") IN ({listed}))'
        if field_type in ("integer", "bigint") and allowed and all(type(a) is int for a in allowed):
            return f"({v} IS NULL OR {v} IN ({', '.join(str(a) for a in allowed)}))"
    if rule.rule == "range" and numeric:
        return _bounds(v, rule, whole=field_type in ("integer", "bigint"))
    if rule.rule == "length" and textual:
        return _bounds(f"char_length({v})", rule, whole=True)
    raise NotPushable(f"rule '{rule.rule}' on field '{rule.field}' has no exact SQL form")


def _bounds(measure: str, rule: RuleSpec, *, whole: bool) -> str:
    """``whole``: the measure is an integer, compared with whole bounds as integers (a
    numeric literal would make the database convert every value)."""

    def bound(limit: float) -> str:
        return str(int(limit)) if whole and float(limit).is_integer() else literal(limit)

    checks = [f"{measure} >= {bound(rule.min)}"] if rule.min is not None else []
    if rule.max is not None:
        checks.append(f"{measure} <= {bound(rule.max)}")
    inner = " AND ".join(checks) or "TRUE"
    return f"({measure} IS NULL OR ({inner}))"

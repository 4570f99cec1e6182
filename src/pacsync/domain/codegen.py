"""Generating straight-line Python for compiled mappings and validations.

Per-row work is the hot path of every sync, so a mapping is turned into one
function without loops or per-field calls where a field is a plain copy.  The
generated text holds only indexes and names made here: every value from the
configuration (lookups, defaults, patterns, transforms) is handed over by
reference through the function's namespace and never written into the code.
Fields whose conversion is costly and whose values repeat (cities, codes,
dates as text) are memoised per run.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from pacsync.domain import transforms
from pacsync.domain.records import Row, RowError
from pacsync.domain.spec import EntitySpec, FieldSpec, RuleSpec

Reader = Callable[[str, FieldSpec], Callable[[Row, list[Any]], Any]]

MEMO_LIMIT = 4096
# Inline forms of the commonest string transforms.
_INLINE = {"trim": "strip", "upper": "upper", "lower": "lower"}
_EXACT: dict[str, type] = {
    "string": str,
    "text": str,
    "integer": int,
    "bigint": int,
    "float": float,
    "boolean": bool,
    "date": dt.date,
    "datetime": dt.datetime,
}
_MISS = object()


def _costly(spec: FieldSpec) -> bool:
    """Whether memoising the field pays: a call-level transform, a lookup or text parsing."""
    called = [t for t in spec.transforms if not (isinstance(t, str) and t in _INLINE)]
    return bool(called) or spec.lookup is not None or spec.type in ("date", "datetime")


def _field_lines(
    i: int, spec: FieldSpec, ns: dict[str, Any], pad: str, source_scale: int | None = None
) -> list[str]:
    """Transforms, lookup, default, cast and length check of field ``i`` on ``v{i}``."""
    v = f"v{i}"
    lines: list[str] = []
    if spec.transforms:
        lines.append(f"{pad}try:")
        for j, item in enumerate(spec.transforms):
            if isinstance(item, str) and item in _INLINE:
                lines.append(f"{pad}    if {v}.__class__ is str: {v} = {v}.{_INLINE[item]}()")
            else:
                ns[f"t{i}_{j}"] = transforms.build(item)
                lines.append(f"{pad}    {v} = t{i}_{j}({v})")
        lines += [
            f"{pad}except (ValueError, TypeError, ArithmeticError) as exc:",
            f"{pad}    raise RowError(name{i}, 'transform', f'cannot transform: {{exc}}') "
            "from None",
        ]
    if spec.lookup is not None:
        ns[f"lookup{i}"] = dict(spec.lookup)
        ns[f"lookup_default{i}"] = spec.lookup_default
        fallback = v if spec.lookup_default is None else f"lookup_default{i}"
        lines.append(f"{pad}if {v} is not None: {v} = lookup{i}.get(str({v}), {fallback})")
    if spec.default is not None:
        ns[f"default{i}"] = spec.default
        lines.append(f"{pad}if {v} is None: {v} = default{i}")
    ns[f"cast{i}"] = transforms.cast_for(spec.type, scale=spec.scale, formats=spec.formats)
    exact = _EXACT.get(spec.type)
    if spec.type == "decimal" and source_scale == spec.scale and not spec.transforms:
        exact = Decimal  # a fixed-point source column already carries the target scale
    if exact is not None:
        ns[f"exact{i}"] = exact
        lines.append(f"{pad}if {v} is not None and {v}.__class__ is not exact{i}:")
    else:
        lines.append(f"{pad}if {v} is not None:")
    lines += [
        f"{pad}    try:",
        f"{pad}        {v} = cast{i}({v})",
        f"{pad}    except (ValueError, TypeError, ArithmeticError) as exc:",
        f"{pad}        raise RowError(name{i}, 'type', f'cannot read as {{type{i}}}: {{exc}}') "
        "from None",
    ]
    if spec.type == "string" and spec.length:
        limit = int(spec.length)
        lines += [
            f"{pad}if {v} is not None and len({v}) > {limit}:",
            f"{pad}    raise RowError(name{i}, 'length', "
            f"f'{{len({v})}} characters, limit {limit}')",
        ]
    return lines


def generate_mapper(
    entity: EntitySpec,
    position: Mapping[str, int],
    reader: Reader,
    scales: Mapping[str, int] | None = None,
) -> Callable[[Row], Row]:
    """One function from a source row to the target row of ``entity``."""
    ns: dict[str, Any] = {"RowError": RowError, "MISS": _MISS}
    lines = ["def map_row(row):"]
    names: list[str] = []
    for i, (name, spec) in enumerate(entity.fields.items()):
        v = f"v{i}"
        names.append(v)
        ns[f"name{i}"] = name
        ns[f"type{i}"] = spec.type
        if spec.source:
            lines.append(f"    {v} = row[{position[spec.source]}]")
        else:
            ns[f"read{i}"] = reader(name, spec)
            lines.append(f"    {v} = read{i}(row, [{', '.join(names[:-1])}])")
        if spec.source and _costly(spec):
            ns[f"memo{i}"] = {}
            lines += [
                f"    hit = memo{i}.get({v}, MISS)",
                "    if hit is MISS:",
                f"        raw = {v}",
                *_field_lines(i, spec, ns, "        "),
                f"        if len(memo{i}) < {MEMO_LIMIT}: memo{i}[raw] = {v}",
                "    else:",
                f"        {v} = hit",
            ]
        else:
            scale = (scales or {}).get(spec.source) if spec.source else None
            lines += _field_lines(i, spec, ns, "    ", scale)
    lines.append(f"    return ({', '.join(names)},)")
    mapper: Callable[[Row], Row] = _build(lines, ns, "map_row", f"<mapping of {len(names)} fields>")
    return mapper


def generate_validator(rules: list[RuleSpec], position: Mapping[str, int]) -> Callable[[Row], None]:
    """One function raising :class:`RowError` for the first row rule a mapped row breaks."""
    ns: dict[str, Any] = {"RowError": RowError}
    lines = ["def check(row):"]
    for k, rule in enumerate(rules):
        v = f"row[{position[rule.field]}]"
        ns[f"field{k}"] = rule.field
        ns[f"message{k}"] = rule.message
        raise_ = f"raise RowError(field{k}, {rule.rule!r}, message{k} or "
        if rule.rule == "required":
            lines += [
                f"    value = {v}",
                "    if value is None or (value.__class__ is str and not value.strip()):",
                f"        {raise_}'a value is required')",
            ]
        elif rule.rule == "enum":
            ns[f"allowed{k}"] = frozenset(rule.values or [])
            ns[f"shown{k}"] = ", ".join(map(str, rule.values or []))
            lines += [
                f"    value = {v}",
                f"    if value is not None and value not in allowed{k}:",
                f"        {raise_}f'{{value!r}} is not one of {{shown{k}}}')",
            ]
        elif rule.rule == "regex":
            ns[f"pattern{k}"] = re.compile(rule.pattern or "")
            ns[f"source{k}"] = rule.pattern
            lines += [
                f"    value = {v}",
                f"    if value is not None and not pattern{k}.fullmatch(str(value)):",
                f"        {raise_}f'{{value!r}} does not match {{source{k}}}')",
            ]
        elif rule.rule in ("range", "length"):
            measure = "len(str(value))" if rule.rule == "length" else "value"
            lines += [f"    value = {v}", "    if value is not None:"]
            lines.append("        try:")
            length = rule.rule == "length"
            for bound, op in (("min", "<"), ("max", ">")):
                limit = getattr(rule, bound)
                if limit is None:
                    continue
                ns[f"{bound}{k}"] = limit
                if length:
                    need = "at least {x:g} needed" if bound == "min" else "at most {x:g} allowed"
                    text = f"{{{measure}}} characters, " + need.replace("x", f"{bound}{k}")
                else:
                    word = "below" if bound == "min" else "above"
                    text = f"{{value}} is {word} {{{bound}{k}:g}}"
                lines += [
                    f"            if {measure} {op} {bound}{k}:",
                    f"                {raise_}f'{text}')",
                ]
            lines += [
                "        except TypeError:",
                f"            {raise_}f'{{value!r}} is not comparable with the range')",
            ]
    lines.append("    return None")
    check: Callable[[Row], None] = _build(lines, ns, "check", f"<validation of {len(rules)} rules>")
    return check


def _build(lines: list[str], ns: dict[str, Any], name: str, label: str) -> Any:
    code = compile("\n".join(lines), label, "exec")
    exec(code, ns)  # text generated above from indexes and names only (see module docstring)
    return ns[name]

"""Validation rules compiled once per run.

Row rules (required, range, regex, enum, length) look at one mapped row.
Batch rules (unique, reference) need the destination, so they are returned as
plain descriptions and applied by the sync use case per batch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pacsync.domain.records import Row, RowError
from pacsync.domain.spec import EntitySpec, RuleSpec

Check = Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class UniqueRule:
    field: str
    position: int
    message: str | None


@dataclass(frozen=True, slots=True)
class ReferenceRule:
    field: str
    position: int
    entity: str
    message: str | None


def _range(rule: RuleSpec) -> Check:
    low, high = rule.min, rule.max

    def check(value: Any) -> str | None:
        try:
            if low is not None and value < low:
                return f"{value} is below {low:g}"
            if high is not None and value > high:
                return f"{value} is above {high:g}"
        except TypeError:
            return f"{value!r} is not comparable with the range"
        return None

    return check


def _length(rule: RuleSpec) -> Check:
    low, high = rule.min, rule.max

    def check(value: Any) -> str | None:
        size = len(str(value))
        if low is not None and size < low:
            return f"{size} characters, at least {low:g} needed"
        if high is not None and size > high:
            return f"{size} characters, at most {high:g} allowed"
        return None

    return check


def _regex(rule: RuleSpec) -> Check:
    assert rule.pattern is not None
    pattern = re.compile(rule.pattern)
    return lambda v: None if pattern.fullmatch(str(v)) else f"{v!r} does not match {rule.pattern}"


def _enum(rule: RuleSpec) -> Check:
    allowed = set(rule.values or [])
    shown = ", ".join(map(str, rule.values or []))
    return lambda v: None if v in allowed else f"{v!r} is not one of {shown}"


_ROW_RULES: dict[str, Callable[[RuleSpec], Check]] = {
    "range": _range,
    "length": _length,
    "regex": _regex,
    "enum": _enum,
}


class Validator:
    """The compiled validation of one entity's mapped rows."""

    def __init__(self, entity: EntitySpec, fields: Sequence[str]) -> None:
        position = {f: i for i, f in enumerate(fields)}
        self.required: list[tuple[int, str, str | None]] = []
        self.checks: list[tuple[int, str, str, Check, str | None]] = []
        self.unique: list[UniqueRule] = []
        self.references: list[ReferenceRule] = []
        for rule in entity.validate_:
            index = position[rule.field]
            if rule.rule == "required":
                self.required.append((index, rule.field, rule.message))
            elif rule.rule == "unique":
                self.unique.append(UniqueRule(rule.field, index, rule.message))
            elif rule.rule == "reference":
                assert rule.entity is not None
                self.references.append(ReferenceRule(rule.field, index, rule.entity, rule.message))
            else:
                check = _ROW_RULES[rule.rule](rule)
                self.checks.append((index, rule.field, rule.rule, check, rule.message))

    def check(self, row: Row) -> None:
        """Raise :class:`RowError` for the first rule the row breaks."""
        for index, name, message in self.required:
            value = row[index]
            if value is None or (isinstance(value, str) and not value.strip()):
                raise RowError(name, "required", message or "a value is required")
        for index, name, rule, check, message in self.checks:
            value = row[index]
            if value is None:
                continue
            problem = check(value)
            if problem is not None:
                raise RowError(name, rule, message or problem)

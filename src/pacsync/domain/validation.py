"""Validation rules compiled once per run.

Row rules (required, range, regex, enum, length) look at one mapped row.
Batch rules (unique, reference) need the destination, so they are returned as
plain descriptions and applied by the sync use case per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pacsync.domain.codegen import generate_validator
from pacsync.domain.records import Row
from pacsync.domain.spec import EntitySpec


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


class Validator:
    """The compiled validation of one entity's mapped rows."""

    def __init__(self, entity: EntitySpec, fields: Sequence[str]) -> None:
        position = {f: i for i, f in enumerate(fields)}
        self.unique: list[UniqueRule] = []
        self.references: list[ReferenceRule] = []
        for rule in entity.validate_:
            index = position[rule.field]
            if rule.rule == "unique":
                self.unique.append(UniqueRule(rule.field, index, rule.message))
            elif rule.rule == "reference":
                assert rule.entity is not None
                self.references.append(ReferenceRule(rule.field, index, rule.entity, rule.message))

        row_rules = [r for r in entity.validate_ if r.rule not in ("unique", "reference")]
        row_rules.sort(key=lambda r: r.rule != "required")  # required first, as documented
        self.check: Callable[[Row], None] = generate_validator(row_rules, position)

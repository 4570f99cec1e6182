"""Field mapping: compile an entity's ``fields`` once into a row function.

A compiled mapper turns a source row (a tuple in the order of
``source_columns``) into a target row (a tuple in the order of the entity's
fields).  Failures raise :class:`RowError` naming the field and the rule.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Sequence
from typing import Any

from pacsync.domain import transforms
from pacsync.domain.codegen import generate_mapper
from pacsync.domain.expressions import ExpressionError, compile_expression, referenced_names
from pacsync.domain.records import Key, Row, RowError
from pacsync.domain.spec import EntitySpec, FieldSpec

FieldFn = Callable[[Row, list[Any]], Any]


def source_columns(entity: EntitySpec) -> list[str]:
    """Source columns the entity reads: key first, then every column a field uses."""
    field_names = set(entity.fields)
    wanted: list[str] = list(entity.source.key)

    def add(column: str) -> None:
        if column not in wanted:
            wanted.append(column)

    for spec in entity.fields.values():
        for column in _field_inputs(spec):
            add(column)
        if spec.expr:
            for name in sorted(referenced_names(spec.expr) - field_names):
                add(name)
    if entity.filter:
        for name in sorted(referenced_names(entity.filter) - field_names):
            add(name)
    if entity.cursor:
        add(entity.cursor.column)
    return wanted


def _field_inputs(spec: FieldSpec) -> list[str]:
    if spec.source:
        return [spec.source]
    if spec.concat:
        return list(spec.concat)
    if spec.split:
        return [spec.split.source]
    return []


def mapping_version(entity: EntitySpec) -> str:
    """A short hash of everything that shapes target rows; a change forces a full resync."""
    shape = entity.model_dump(
        mode="json",
        by_alias=True,
        exclude={
            "strategy": True,
            "batch_size": True,
            "pushdown": True,
            "cursor": {"overlap", "key_check_every"},
        },
    )
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


class Mapper:
    """The compiled mapping of one entity for one source column layout."""

    def __init__(
        self, entity: EntitySpec, columns: Sequence[str], scales: dict[str, int] | None = None
    ) -> None:
        self.entity = entity
        self.columns = tuple(columns)
        self.fields = tuple(entity.fields)
        position = {c: i for i, c in enumerate(self.columns)}
        missing = [c for c in source_columns(entity) if c not in position]
        if missing:
            raise ValueError("source columns not selected: " + ", ".join(missing))
        self._position = position
        self._needs_env = any(f.expr for f in entity.fields.values()) or bool(entity.filter)
        self._steps = [self._compile_field(name, spec) for name, spec in entity.fields.items()]
        self._mapper: Callable[[Row], Row] = generate_mapper(
            entity, self._position, self._reader, scales or {}
        )
        self.key_source_positions = tuple(position[k] for k in entity.source.key)
        if len(self.key_source_positions) == 1:
            only = self.key_source_positions[0]
            self._source_key: Callable[[Row], Key] = lambda row: (row[only],)
        else:
            self._source_key = operator.itemgetter(*self.key_source_positions)
        self.key_positions = tuple(self.fields.index(f) for f in entity.key_fields)
        self._key_steps = [self._steps[i] for i in self.key_positions]
        self._filter = (
            compile_expression(entity.filter, set(self.fields) | set(self.columns))
            if entity.filter
            else None
        )

    # -- public -------------------------------------------------------------------------------

    def map(self, row: Row) -> Row:
        """The target row for ``row``; raises :class:`RowError` naming the field and rule."""
        return self._mapper(row)

    def keep(self, row: Row, mapped: Row) -> bool:
        """Whether the entity's filter lets a mapped row through."""
        if self._filter is None:
            return True
        try:
            return bool(self._filter(self._env(row, list(mapped))))
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise RowError("filter", "filter", f"cannot evaluate the filter: {exc}") from None

    def source_key(self, row: Row) -> Key:
        return self._source_key(row)

    def target_key(self, source_key: Key) -> Key:
        """The destination key of a source key (the key fields' transforms applied)."""
        row: list[Any] = [None] * len(self.columns)
        for position, value in zip(self.key_source_positions, source_key, strict=True):
            row[position] = value
        frozen = tuple(row)
        return tuple(step(frozen, []) for step in self._key_steps)

    def key_converter(self) -> Callable[[Key], Key]:
        """A fast ``target_key`` for the common case of plainly copied key columns."""
        specs = [self.entity.fields[f] for f in self.entity.key_fields]
        plain = all(
            not s.transforms
            and s.lookup is None
            and s.default is None
            and s.type in ("integer", "bigint", "string", "text")
            for s in specs
        )
        if not plain:
            return self.target_key
        wanted = tuple(int if s.type in ("integer", "bigint") else str for s in specs)
        slow = self.target_key
        if len(wanted) == 1:
            only = wanted[0]

            def convert_one(key: Key) -> Key:
                return key if key[0].__class__ is only else slow(key)

            return convert_one

        def convert(key: Key) -> Key:
            for value, kind in zip(key, wanted, strict=True):
                if type(value) is not kind:
                    return slow(key)
            return key

        return convert

    def record(self, row: Row) -> dict[str, Any]:
        return dict(zip(self.columns, row, strict=False))

    # -- compilation --------------------------------------------------------------------------

    def _env(self, row: Row, out: list[Any]) -> dict[str, Any]:
        env = dict(zip(self.columns, row, strict=False))
        env.update(zip(self.fields, out, strict=False))
        return env

    def _compile_field(self, name: str, spec: FieldSpec) -> FieldFn:
        read = self._reader(name, spec)
        chain = [transforms.build(t) for t in spec.transforms]
        lookup = dict(spec.lookup) if spec.lookup is not None else None
        lookup_default = spec.lookup_default
        default = spec.default
        cast = transforms.cast_for(spec.type, scale=spec.scale, formats=spec.formats)
        max_length = spec.length if spec.type == "string" else None

        def run(row: Row, out: list[Any]) -> Any:
            value = read(row, out)
            try:
                for fn in chain:
                    value = fn(value)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise RowError(name, "transform", f"cannot transform: {exc}") from None
            if lookup is not None and value is not None:
                value = lookup.get(str(value), value if lookup_default is None else lookup_default)
            if value is None:
                value = default
                if value is None:
                    return None
            try:
                value = cast(value)
            except (ValueError, TypeError, ArithmeticError) as exc:
                raise RowError(name, "type", f"cannot read as {spec.type}: {exc}") from None
            if max_length is not None and len(value) > max_length:
                raise RowError(name, "length", f"{len(value)} characters, limit {max_length}")
            return value

        return run

    def _reader(self, name: str, spec: FieldSpec) -> FieldFn:
        position = self._position
        if spec.source:
            index = position[spec.source]
            return lambda row, out: row[index]
        if spec.concat:
            indexes = [position[c] for c in spec.concat]
            separator = spec.separator

            def concat(row: Row, out: list[Any]) -> Any:
                parts = [str(row[i]).strip() for i in indexes if row[i] is not None]
                parts = [p for p in parts if p]
                return separator.join(parts) if parts else None

            return concat
        if spec.split:
            index, split = position[spec.split.source], spec.split

            def part(row: Row, out: list[Any]) -> Any:
                value = row[index]
                if value is None:
                    return None
                pieces = str(value).split(split.separator)
                try:
                    return pieces[split.index].strip()
                except IndexError:
                    return None

            return part
        if spec.expr:
            known = set(self.fields[: list(self.entity.fields).index(name)]) | set(self.columns)
            try:
                compiled = compile_expression(spec.expr, known)
            except ExpressionError as exc:
                raise ValueError(f"field '{name}': {exc}") from None

            def computed(row: Row, out: list[Any]) -> Any:
                try:
                    return compiled(self._env(row, out))
                except (ArithmeticError, TypeError, ValueError) as exc:
                    raise RowError(name, "expr", f"cannot compute: {exc}") from None

            return computed
        return lambda row, out: None

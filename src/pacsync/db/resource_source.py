"""pacsync's FHIR resources as a pipeline source: what processed HL7 messages mapped to
(patients, encounters, observations…) read as rows, so a pipeline maps, checks and
writes them like a table's (into a warehouse's PostgreSQL, say).

Each entity reads the resources of one type; its columns are paths into a resource
(``name.0.family``), its key the resource's id.  Rows are read in id order, a batch
at a time, and fingerprinted here; the resources have no cursor or change feed, so
such an entity is compared whole (``hash_diff``), which finds deletions too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, func, select

from pacsync.connectors.sql.dialects import python_fingerprint
from pacsync.connectors.sql.errors import translated
from pacsync.db.fhir_resources import fhir_resources
from pacsync.domain.records import Key, Row
from pacsync.domain.resource_spec import ResourceSpec, value_at
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import UnsupportedFeature
from pacsync.ports import Change, ChangeVersions

_r = fhir_resources.c
_KEYS_AT_ONCE = 500


class ResourceSource:
    """A :class:`pacsync.ports.Source` over the store's ``fhir_resources``."""

    def __init__(self, spec: PipelineSpec, engine: Engine, *, connection_name: str) -> None:
        self.spec, self.engine = spec, engine
        self.where = f"source '{connection_name}'"

    def _resources(self, entity: str) -> ResourceSpec:
        found = self.spec.entities[entity].resources
        assert found is not None, f"entity '{entity}' does not read FHIR resources"
        return found

    # -- Source port ----------------------------------------------------------------------------

    def columns(self, entity: str) -> list[str]:
        return list(self._resources(entity).columns)

    def scales(self, entity: str) -> dict[str, int]:
        return {}

    def check(self) -> None:
        with translated(self.where), self.engine.connect() as conn:
            conn.execute(select(_r.resource_id).limit(1)).all()

    def count(self, entity: str) -> int:
        kind = self._resources(entity).resources
        stmt = select(func.count()).select_from(fhir_resources).where(_r.resource_type == kind)
        with translated(self.where), self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def read(
        self, entity: str, *, after_key: Key | None, batch_size: int, up_to: Key | None = None
    ) -> Iterator[list[Row]]:
        spec = self._resources(entity)
        after = None if after_key is None else str(after_key[0])
        while True:
            stmt = (
                select(_r.resource_id, _r.resource)
                .where(_r.resource_type == spec.resources)
                .order_by(_r.resource_id)
                .limit(batch_size)
            )
            if after is not None:
                stmt = stmt.where(_r.resource_id > after)
            if up_to is not None:
                stmt = stmt.where(_r.resource_id <= str(up_to[0]))
            with translated(self.where), self.engine.connect() as conn:
                found = conn.execute(stmt).all()
            if not found:
                return
            yield [_row(spec, resource) for _, resource in found]
            after = found[-1].resource_id

    def key_range(self, entity: str) -> tuple[Any, Any]:
        kind = self._resources(entity).resources
        stmt = select(func.min(_r.resource_id), func.max(_r.resource_id)).where(
            _r.resource_type == kind
        )
        with translated(self.where), self.engine.connect() as conn:
            low, high = conn.execute(stmt).one()
        return low, high

    def read_fingerprints(
        self, entity: str, batch_size: int, *, ordered: bool = False
    ) -> Iterator[list[Row]]:
        key = self._key_position(entity)
        for rows in self.read(entity, after_key=None, batch_size=batch_size):
            yield [(row[key], row[-1]) for row in rows]

    def read_keys(self, entity: str, keys: Sequence[Key]) -> list[Row]:
        spec = self._resources(entity)
        ids = [str(k[0]) for k in keys]
        rows: list[Row] = []
        with translated(self.where), self.engine.connect() as conn:
            for start in range(0, len(ids), _KEYS_AT_ONCE):
                stmt = select(_r.resource).where(
                    _r.resource_type == spec.resources,
                    _r.resource_id.in_(ids[start : start + _KEYS_AT_ONCE]),
                )
                rows.extend(_row(spec, resource) for (resource,) in conn.execute(stmt))
        return rows

    def cursor_bound(self, entity: str) -> Any:
        raise self._no_feed()

    def cursor_max(self, entity: str) -> Any:
        raise self._no_feed()

    def read_since(self, entity: str, low: Any, high: Any, batch_size: int) -> Iterator[list[Row]]:
        raise self._no_feed()

    def change_versions(self, entity: str) -> ChangeVersions:
        raise self._no_feed()

    def read_changes(
        self, entity: str, since: int, batch_size: int
    ) -> tuple[int, Iterator[list[Change]]]:
        raise self._no_feed()

    def orphans(self, entity: str, column: str, parent: str) -> int:
        position = self.columns(entity).index(column)
        parents = {row[0] for rows in self.read_fingerprints(parent, 5000) for row in rows}
        return sum(
            1
            for rows in self.read(entity, after_key=None, batch_size=5000)
            for row in rows
            if row[position] is not None and row[position] not in parents
        )

    def close(self) -> None:
        self.engine.dispose()

    # -- internals ------------------------------------------------------------------------------

    def _key_position(self, entity: str) -> int:
        spec = self._resources(entity)
        return list(spec.columns).index(spec.key[0])

    def _no_feed(self) -> UnsupportedFeature:
        return UnsupportedFeature(
            f"{self.where} holds FHIR resources, which have no cursor or change feed",
            hint="Use strategy hash_diff for entities of FHIR resources.",
        )


def _row(spec: ResourceSpec, resource: dict[str, Any]) -> Row:
    """The resource's values at the entity's column paths, then their fingerprint."""
    values = tuple(_cell(value_at(resource, path)) for path in spec.columns.values())
    return (*values, python_fingerprint(values))


def _cell(value: Any) -> Any:
    """A leaf as it is; an element with parts (a name, a list) as its JSON text."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return value

"""An in-memory :class:`pacsync.ports.BulkLoad` over the memory source and destination."""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from pacsync.connectors.memory.destination import MemoryDestination
from pacsync.connectors.memory.source import MemorySource
from pacsync.domain.mapping import Mapper
from pacsync.domain.records import Key, Row
from pacsync.ports import WriteBatch
from pacsync.ports.bulk_load import Finish


class MemoryBulkLoad:
    """Rows ``across(row)`` accepts are mapped here as the source's SQL would and written
    with the row path's batch in one destination write; ``refused`` maps an entity to why
    it cannot load this way.  ``loads`` counts the ranges."""

    def __init__(
        self,
        source: MemorySource,
        destination: MemoryDestination,
        across: Callable[[Row], bool],
        refused: dict[str, str] | None = None,
    ) -> None:
        self.source, self.destination, self.across = source, destination, across
        self.refused = refused or {}
        self.loads = 0

    def refusal(self, entity: str) -> str | None:
        return self.refused.get(entity)

    def load(
        self, entity: str, after: Key | None, size: int, finish: Finish
    ) -> tuple[Key | None, int]:
        self.loads += 1
        reading = self.source.read(entity, after_key=after, batch_size=size + 1)
        rows = list(islice((r for batch in reading for r in batch), size + 1))
        in_range = rows[:size]
        mapper = Mapper(
            self.source.spec.entities[entity],
            self.source.columns(entity),
            self.source.scales(entity),
        )
        upto = mapper.source_key(in_range[-1]) if len(rows) > size else None
        copied = [r for r in in_range if self.across(r)]
        batch = finish([r for r in in_range if not self.across(r)], upto)
        whole = WriteBatch(
            rows=[*(mapper.map(r) for r in copied), *batch.rows],
            fingerprints=[*(r[-1] for r in copied), *batch.fingerprints],
            checkpoint=batch.checkpoint,
            insert_only=True,
        )
        self.destination.write(entity, whole)
        return upto, len(copied)

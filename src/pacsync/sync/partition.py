"""Full loads split by key range and run side by side.

A fresh full load (an empty target) of an entity with a one-column integer
key can be cut into contiguous key ranges, each loaded by its own process with
its own checkpoint, so that several cores map and write at once.  The plan is
stored in the entity's checkpoint first, so a crash resumes every range where
its last committed batch ended.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.mapping import Mapper, mapping_version
from pacsync.domain.records import EntityCounts
from pacsync.domain.spec import PipelineSpec
from pacsync.domain.validation import Validator
from pacsync.ports import DeadLetters, Destination, Partition, Source
from pacsync.sync.batch import BatchProcessor


def plan(entity: str, low: int, high: int, parts: int) -> list[Partition]:
    """``parts`` contiguous ranges covering every key from ``low`` to ``high``."""
    tag = uuid.uuid4().hex[:8]
    span = high - low + 1
    parts = max(1, min(parts, span))
    bounds = [low - 1 + span * i // parts for i in range(parts + 1)]
    return [
        Partition(
            i,
            None if i == 0 else bounds[i],
            None if i == parts - 1 else bounds[i + 1],
            f"{entity}#{tag}.{i}",
        )
        for i in range(parts)
    ]


def to_extra(partitions: list[Partition]) -> list[list[Any]]:
    return [[p.index, p.low, p.high, p.checkpoint_name] for p in partitions]


def from_extra(stored: list[list[Any]]) -> list[Partition]:
    return [Partition(int(i), low, high, name) for i, low, high, name in stored]


def load_partition(
    spec: PipelineSpec,
    entity: str,
    part: Partition,
    *,
    source: Source,
    destination: Destination,
    dead_letters: DeadLetters,
    job_id: str | None,
    report: Callable[[EntityCounts], None],
) -> EntityCounts:
    """Insert every source row of one key range, resuming after its own checkpoint."""
    spec_entity = spec.entities[entity]
    mapper = Mapper(spec_entity, source.columns(entity), source.scales(entity))
    processor = BatchProcessor(
        pipeline=spec.name,
        entity=entity,
        mapper=mapper,
        validator=Validator(spec_entity, mapper.fields),
        destination=destination,
        dead_letters=dead_letters,
        job_id=job_id,
    )
    saved = destination.load_checkpoint(part.checkpoint_name)
    checkpoint = saved or Checkpoint(
        pipeline=spec.name,
        entity=part.checkpoint_name,
        mapping_version=mapping_version(spec_entity),
        phase="full",
        fresh=True,
        after_key=None if part.low is None else (part.low,),
    )
    counts = EntityCounts()
    up_to = None if part.high is None else (part.high,)
    for rows in source.read(
        entity, after_key=checkpoint.after_key, batch_size=spec.batch_size_for(entity), up_to=up_to
    ):
        batch = processor.process(rows, counts, None)
        checkpoint = checkpoint.advance(after_key=mapper.source_key(rows[-1]))
        batch.checkpoint = checkpoint
        destination.write(entity, batch)
        counts.batches += 1
        report(counts)
    return counts


class InProcessRunner:
    """Loads the ranges one after the other in this process (the fallback, and for tests)."""

    def __init__(self, source: Source, destination: Destination, dead_letters: DeadLetters):
        self.source, self.destination, self.dead_letters = source, destination, dead_letters

    def run(
        self,
        spec: PipelineSpec,
        entity: str,
        partitions: Sequence[Partition],
        job_id: str | None,
        report: Callable[[int, EntityCounts], None],
    ) -> list[EntityCounts]:
        return [
            load_partition(
                spec,
                entity,
                part,
                source=self.source,
                destination=self.destination,
                dead_letters=self.dead_letters,
                job_id=job_id,
                report=functools.partial(report, part.index),
            )
            for part in partitions
        ]

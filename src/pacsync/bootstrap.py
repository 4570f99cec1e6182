"""Composition root: the only place that turns configuration into concrete objects."""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from pacsync.config import Settings, find_pipeline, load_pipeline
from pacsync.connectors.sql.destination import SqlDestination
from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.source import SqlSource
from pacsync.db.audit import AuditLog
from pacsync.db.dead_letters import DeadLetterStore
from pacsync.db.jobs import JobStore
from pacsync.db.store import open_store
from pacsync.domain.records import EntityCounts
from pacsync.domain.spec import PipelineSpec
from pacsync.ports import Partition
from pacsync.sync.partition import load_partition


@dataclass
class Store:
    engine: Engine
    jobs: JobStore
    dead_letters: DeadLetterStore
    audit: AuditLog


def store(settings: Settings) -> Store:
    engine = open_store(settings.store_url)
    return Store(
        engine=engine,
        jobs=JobStore(engine),
        dead_letters=DeadLetterStore(engine),
        audit=AuditLog(engine),
    )


def pipeline(name_or_path: str, settings: Settings) -> tuple[Path, PipelineSpec]:
    path = find_pipeline(name_or_path, settings)
    return path, load_pipeline(path)


def source(spec: PipelineSpec) -> SqlSource:
    name = spec.source.connection
    conn = spec.connections[name]
    engine = make_engine(conn.url, connect_timeout=conn.connect_timeout, **conn.options)
    return SqlSource(spec, engine, connection_name=name)


def destination(spec: PipelineSpec) -> SqlDestination:
    name = spec.destination.connection
    conn = spec.connections[name]
    engine = make_engine(conn.url, connect_timeout=conn.connect_timeout, **conn.options)
    return SqlDestination(spec, engine, connection_name=name)


class ProcessPartitionRunner:
    """Loads key ranges in child processes, each with its own connections (spawned, so
    nothing of the parent's connection pools is shared)."""

    def __init__(self, settings: Settings) -> None:
        self.store_url = settings.store_url

    def run(
        self,
        spec: PipelineSpec,
        entity: str,
        partitions: Sequence[Partition],
        job_id: str | None,
        report: Callable[[int, EntityCounts], None],
    ) -> list[EntityCounts]:
        context = multiprocessing.get_context("spawn")
        updates = context.Manager().Queue()
        spec_json = spec.model_dump_json(by_alias=True)
        with context.Pool(len(partitions)) as pool:
            pending = [
                pool.apply_async(
                    _load_partition_child,
                    (_PartitionTask(spec_json, entity, part, job_id, self.store_url), updates),
                )
                for part in partitions
            ]
            while not all(p.ready() for p in pending):
                _drain(updates, report, timeout=0.2)
            _drain(updates, report, timeout=0)
            return [_counts(p.get()) for p in pending]


def _drain(updates: Any, report: Callable[[int, EntityCounts], None], timeout: float) -> None:
    try:
        while True:
            index, counts = updates.get(timeout=timeout) if timeout else updates.get_nowait()
            report(index, _counts(counts))
    except queue.Empty:
        return


def _counts(data: dict[str, Any]) -> EntityCounts:
    return EntityCounts(**data)


@dataclass(frozen=True)
class _PartitionTask:
    spec_json: str
    entity: str
    part: Partition
    job_id: str | None
    store_url: str


def _load_partition_child(task: _PartitionTask, updates: Any) -> dict[str, Any]:
    """One key range, in a child process: its own source, destination and store."""
    spec = PipelineSpec.model_validate_json(task.spec_json)
    part = task.part
    src, dst = source(spec), destination(spec)
    engine = open_store(task.store_url)
    try:
        counts = load_partition(
            spec,
            task.entity,
            part,
            source=src,
            destination=dst,
            dead_letters=DeadLetterStore(engine),
            job_id=task.job_id,
            report=lambda c: updates.put((part.index, c.as_dict())),
        )
        return counts.as_dict()
    finally:
        src.close()
        dst.close()
        engine.dispose()

"""Composition root: the only place that turns configuration into concrete objects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from pacsync.config import Settings, find_pipeline, load_pipeline
from pacsync.connectors.sql.destination import SqlDestination
from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.source import SqlSource
from pacsync.db.audit import AuditLog
from pacsync.db.dead_letters import DeadLetterStore
from pacsync.db.jobs import JobStore
from pacsync.db.store import open_store
from pacsync.domain.spec import PipelineSpec


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

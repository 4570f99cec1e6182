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
from pacsync.connectors.files.drops import FolderDrops
from pacsync.connectors.hl7.destination import MllpDestination
from pacsync.connectors.hl7.sender import MllpPeer, MllpSender
from pacsync.connectors.sql.bulk_load import SqlBulkLoad
from pacsync.connectors.sql.destination import SqlDestination
from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.source import SqlSource
from pacsync.db.api_keys import ApiKeyStore
from pacsync.db.archive_search import ArchiveSearch
from pacsync.db.archives import ArchiveStore
from pacsync.db.audit import AuditLog
from pacsync.db.circuits import CircuitStore
from pacsync.db.conflicts import ConflictStore
from pacsync.db.connections import ConnectionStore
from pacsync.db.dead_letters import DeadLetterStore
from pacsync.db.jobs import JobStore
from pacsync.db.record_states import StoreRecordStates
from pacsync.db.resource_source import ResourceSource
from pacsync.db.statistics import StatisticsStore
from pacsync.db.store import open_store
from pacsync.db.viewer_links import ViewerLinkStore
from pacsync.db.webhook_sources import WebhookSourceStore
from pacsync.db.webhooks import WebhookStore
from pacsync.domain.circuit import BreakerPolicy
from pacsync.domain.records import EntityCounts
from pacsync.domain.resource_spec import STORE_URL
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import ConfigError, JobInterrupted, PacsyncError, WorkerLost
from pacsync.jobs.breaker import CircuitBreaker
from pacsync.ports import Partition
from pacsync.security.secrets import SecretBox
from pacsync.security.tokens import JwtVerifier
from pacsync.sync.partition import load_partition


@dataclass
class Store:
    engine: Engine
    jobs: JobStore
    dead_letters: DeadLetterStore
    audit: AuditLog
    api_keys: ApiKeyStore
    connections: ConnectionStore
    conflicts: ConflictStore
    webhooks: WebhookStore
    webhook_sources: WebhookSourceStore
    statistics: StatisticsStore
    archives: ArchiveStore
    archive_search: ArchiveSearch
    viewer_links: ViewerLinkStore


def breaker(settings: Settings, engine: Engine) -> CircuitBreaker:
    policy = BreakerPolicy(
        failure_threshold=settings.circuit_failures, cool_down_s=settings.circuit_cool_down_s
    )
    return CircuitBreaker(CircuitStore(engine), policy)


def store(settings: Settings) -> Store:
    engine = open_store(settings.store_url)
    box = secret_box(settings)
    return Store(
        engine=engine,
        jobs=JobStore(engine),
        dead_letters=DeadLetterStore(engine),
        audit=AuditLog(engine),
        api_keys=ApiKeyStore(engine),
        connections=ConnectionStore(engine, box),
        conflicts=ConflictStore(engine),
        webhooks=WebhookStore(engine, box),
        webhook_sources=WebhookSourceStore(engine, box),
        statistics=StatisticsStore(engine),
        archives=ArchiveStore(engine, box),
        archive_search=ArchiveSearch(engine),
        viewer_links=ViewerLinkStore(engine),
    )


def secret_box(settings: Settings) -> SecretBox:
    """The box that seals stored secrets (its key is read when it is first used)."""
    return SecretBox.load(settings)


def token_verifier(settings: Settings) -> JwtVerifier | None:
    """The verifier of bearer JWTs the settings configure (None: API keys only)."""
    return JwtVerifier.from_settings(settings)


def pipeline(name_or_path: str, settings: Settings) -> tuple[Path, PipelineSpec]:
    path = find_pipeline(name_or_path, settings)
    return path, load_pipeline(path)


def source(spec: PipelineSpec, connection: str | None = None) -> SqlSource | ResourceSource:
    """The pipeline's source, on ``connection`` (default: the configured one): a database,
    or pacsync's own FHIR resources (``pacsync:store``)."""
    name = connection or spec.source.connection
    conn = spec.connections[name]
    if conn.url == STORE_URL:
        return ResourceSource(spec, open_store(Settings().store_url), connection_name=name)
    if conn.folder is not None:
        raise ConfigError(
            f"connection '{name}' is a folder ({conn.url}), not a database",
            hint="Its files are read by the pipeline's drop entities: `pacsync run` loads them.",
        )
    engine = make_engine(conn.url, connect_timeout=conn.connect_timeout, **conn.options)
    return SqlSource(spec, engine, connection_name=name)


def source_end(spec: PipelineSpec) -> SqlSource | ResourceSource | FolderDrops:
    """What the pipeline reads: its database, or the drop folders of a ``file:`` connection
    (``check()`` finds each entity's folder)."""
    if spec.connections[spec.source.connection].folder is not None:
        return FolderDrops(spec)
    return source(spec)


def destination(
    spec: PipelineSpec, connection: str | None = None
) -> SqlDestination | MllpDestination:
    """The pipeline's destination, on ``connection`` (default: the configured one): a
    database, or an MLLP receiver each record is sent to as an HL7 message."""
    name = connection or spec.destination.connection
    conn = spec.connections[name]
    if conn.mllp is not None:
        host, port = conn.mllp
        states = StoreRecordStates(open_store(Settings().store_url))
        return MllpDestination(
            spec,
            MllpPeer(MllpSender(host, port, timeout_s=float(conn.connect_timeout) * 3)),
            states,
            key_positions=lambda entity: [
                list(spec.entities[entity].fields).index(k)
                for k in spec.entities[entity].key_fields
            ],
        )
    engine = make_engine(conn.url, connect_timeout=conn.connect_timeout, **conn.options)
    return SqlDestination(spec, engine, connection_name=name)


def bulk_load(
    source: SqlSource | ResourceSource | None, destination: SqlDestination | MllpDestination
) -> SqlBulkLoad | None:
    """Fresh full loads done by the databases themselves, between two SQL ends (it refuses
    the entities it cannot load, other databases than PostgreSQL among them)."""
    if not isinstance(source, SqlSource) or not isinstance(destination, SqlDestination):
        return None
    return SqlBulkLoad(source, destination)


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
        messages = context.Queue()
        spec_json = spec.model_dump_json(by_alias=True)
        workers = [
            context.Process(
                target=_load_partition_child,
                args=(_PartitionTask(spec_json, entity, part, job_id, self.store_url), messages),
                name=f"pacsync-{part.checkpoint_name}",
                daemon=True,
            )
            for part in partitions
        ]
        for worker in workers:
            worker.start()
        done: dict[int, EntityCounts] = {}
        try:
            while len(done) < len(workers):
                try:
                    kind, index, payload = messages.get(timeout=0.2)
                except queue.Empty:
                    lost = [w for w in workers if w.exitcode not in (None, 0)]
                    if lost:
                        raise WorkerLost(
                            f"key-range worker {lost[0].name} stopped (exit code "
                            f"{lost[0].exitcode}); committed batches are kept"
                        ) from None
                    continue
                if kind == "error":
                    raise payload
                counts = _counts(payload)
                report(index, counts)
                if kind == "done":
                    done[index] = counts
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.terminate()
                worker.join()
            messages.close()
        return [done[p.index] for p in partitions]


def _counts(data: dict[str, Any]) -> EntityCounts:
    return EntityCounts(**data)


@dataclass(frozen=True)
class _PartitionTask:
    spec_json: str
    entity: str
    part: Partition
    job_id: str | None
    store_url: str


def _load_partition_child(task: _PartitionTask, messages: Any) -> None:
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
            report=lambda c: messages.put(("progress", part.index, c.as_dict())),
        )
        messages.put(("done", part.index, counts.as_dict()))
    except PacsyncError as error:
        messages.put(("error", part.index, error))
    except KeyboardInterrupt:
        messages.put(("error", part.index, JobInterrupted("a key-range worker was stopped")))
    except Exception as exc:  # handed to the parent as ours: driver errors may not pickle
        messages.put(("error", part.index, PacsyncError(f"key-range worker failed: {exc!r}")))
    finally:
        src.close()
        dst.close()
        engine.dispose()

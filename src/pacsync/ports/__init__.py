"""The narrow interfaces use cases talk to; connectors and stores implement them.

Those of the sync and job layers are here; clinical messaging's are in
:mod:`pacsync.ports.messaging`, FHIR sync's in :mod:`pacsync.ports.fhir` and webhook
delivery's in :mod:`pacsync.ports.webhooks`, all importable from here too.

``pacsync.connectors.memory`` holds an in-memory implementation of each, for
unit tests of the use cases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.circuit import CircuitState
from pacsync.domain.drops import FileIdentity, FileRecord, FileReport
from pacsync.domain.records import EntityCounts, Key, Rejected, Row
from pacsync.domain.spec import PipelineSpec
from pacsync.ports.bulk_load import BulkLoad as BulkLoad
from pacsync.ports.fhir import FhirParams as FhirParams
from pacsync.ports.fhir import FhirServer as FhirServer
from pacsync.ports.fhir import LocalFhirResources as LocalFhirResources
from pacsync.ports.fhir import SyncBase as SyncBase
from pacsync.ports.fhir import SyncBases as SyncBases
from pacsync.ports.fhir import SyncConflicts as SyncConflicts
from pacsync.ports.fhir import SyncDecision as SyncDecision
from pacsync.ports.messaging import ClinicalSink as ClinicalSink
from pacsync.ports.messaging import MessageInbox as MessageInbox
from pacsync.ports.messaging import MessageJournal as MessageJournal
from pacsync.ports.messaging import MessageSender as MessageSender
from pacsync.ports.messaging import MllpOutbox as MllpOutbox
from pacsync.ports.messaging import Outgoing as Outgoing
from pacsync.ports.messaging import PendingMessage as PendingMessage
from pacsync.ports.messaging import Settled as Settled
from pacsync.ports.webhooks import OutboundMessage as OutboundMessage
from pacsync.ports.webhooks import WebhookDeliveryLog as WebhookDeliveryLog
from pacsync.ports.webhooks import WebhookResponse as WebhookResponse
from pacsync.ports.webhooks import WebhookSender as WebhookSender
from pacsync.ports.webhooks import WebhookSigner as WebhookSigner

ChangeOp = Literal["I", "U", "D"]


@dataclass(frozen=True, slots=True)
class ChangeVersions:
    """SQL Server change tracking: the version now and the oldest still answerable."""

    current: int
    min_valid: int


@dataclass(frozen=True, slots=True)
class Change:
    op: ChangeOp
    key: Key
    row: Row | None


@dataclass(slots=True)
class WriteBatch:
    """One atomic write: rows (with fingerprints), deleted keys and the new checkpoint."""

    rows: list[Row] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    deletes: list[Key] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    insert_only: bool = False


class Source(Protocol):
    """A system records are read from. Rows end with the source's fingerprint."""

    def columns(self, entity: str) -> list[str]: ...

    def scales(self, entity: str) -> dict[str, int]:
        """Declared scales of the entity's fixed-point columns (values arrive at that scale)."""
        ...

    def check(self) -> None: ...

    def count(self, entity: str) -> int: ...

    def read(
        self, entity: str, *, after_key: Key | None, batch_size: int, up_to: Key | None = None
    ) -> Iterator[list[Row]]:
        """Every row ordered by key, after ``after_key`` and up to ``up_to`` (inclusive)."""
        ...

    def key_range(self, entity: str) -> tuple[Any, Any]:
        """The lowest and highest key of a one-column key (None, None when empty)."""
        ...

    def read_fingerprints(
        self, entity: str, batch_size: int, *, ordered: bool = False
    ) -> Iterator[list[Row]]:
        """Every row as its key columns followed by its fingerprint (key order if ``ordered``)."""
        ...

    def read_keys(self, entity: str, keys: Sequence[Key]) -> list[Row]: ...

    def cursor_bound(self, entity: str) -> Any:
        """An exclusive upper bound below which no transaction is still in flight, or None."""
        ...

    def cursor_max(self, entity: str) -> Any: ...

    def read_since(self, entity: str, low: Any, high: Any, batch_size: int) -> Iterator[list[Row]]:
        """Rows with low <= cursor (< high when given), ordered by cursor then key."""
        ...

    def change_versions(self, entity: str) -> ChangeVersions: ...

    def read_changes(
        self, entity: str, since: int, batch_size: int
    ) -> tuple[int, Iterator[list[Change]]]:
        """The current version and the changes since ``since``, read in one snapshot."""
        ...

    def orphans(self, entity: str, column: str, parent: str) -> int:
        """Rows of ``entity`` whose ``column`` matches no key of ``parent``."""
        ...

    def close(self) -> None: ...


class Destination(Protocol):
    """Where mapped rows land, together with their fingerprints and checkpoints."""

    def check(self) -> None: ...

    def prepare(self, entity: str) -> None:
        """Create or upgrade the entity's target table."""
        ...

    def is_empty(self, entity: str) -> bool: ...

    def fingerprints(self, entity: str) -> dict[Key, str]: ...

    def fingerprint_batches(self, entity: str, batch_size: int) -> Iterator[list[Row]]:
        """Live rows as their key fields followed by their fingerprint, in key order."""
        ...

    def lookup(self, entity: str, keys: Sequence[Key]) -> dict[Key, str]: ...

    def holders(self, entity: str, field_name: str, values: Sequence[Any]) -> dict[Any, Key]:
        """For each value present in the target column, the key of a row holding it."""
        ...

    def existing(self, entity: str, keys: Sequence[Key]) -> set[Key]: ...

    def write(self, entity: str, batch: WriteBatch) -> None: ...

    def load_checkpoint(self, entity: str) -> Checkpoint | None: ...

    def forget_checkpoints(self, names: Sequence[str]) -> None:
        """Remove checkpoints no longer needed (those of finished key ranges)."""
        ...

    def orphans(self, entity: str, field_name: str, parent: str) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Partition:
    """A key range of a full load: ``low`` exclusive (None: from the start), ``high``
    inclusive (None: to the end)."""

    index: int
    low: Any
    high: Any
    checkpoint_name: str


class PartitionRunner(Protocol):
    """Loads key ranges of one entity side by side (in other processes)."""

    def run(
        self,
        spec: PipelineSpec,
        entity: str,
        partitions: Sequence[Partition],
        job_id: str | None,
        report: Callable[[int, EntityCounts], None],
    ) -> list[EntityCounts]: ...


class FileRecords(Protocol):
    """The records of one open dropped file, in file order."""

    @property
    def columns(self) -> list[str]:
        """The column each value of a record is, in order."""
        ...

    def __iter__(self) -> Iterator[FileRecord]:
        """Every record, malformed ones with their reason; raises
        :class:`pacsync.domain.drops.DropFileRefused` when the rest cannot be read."""
        ...


class DropFolder(Protocol):
    """The folders files are dropped in for a pipeline's entities."""

    def ready(self, entity: str) -> list[str]:
        """Names of the complete files waiting, in the order they are loaded."""
        ...

    def identify(self, entity: str, name: str) -> FileIdentity | None:
        """The file as it is now (its content hashed); None when it is gone."""
        ...

    def records(
        self, entity: str, name: str, needed: Sequence[str]
    ) -> AbstractContextManager[FileRecords]:
        """The file opened for reading; ``needed`` are the columns the mapping reads.
        Raises :class:`pacsync.domain.drops.DropFileRefused` for a wrong header."""
        ...

    def finish(self, entity: str, name: str, report: FileReport) -> str:
        """Move the file to archive/ (or error/ when refused) with its report beside it;
        where it went."""
        ...


class RecordStates(Protocol):
    """Fingerprints of records written and checkpoints, kept apart from the destination
    (for destinations that keep no state of ours, such as an MLLP receiver)."""

    def check(self) -> None: ...

    def any(self, pipeline: str, entity: str) -> bool: ...

    def fingerprints(self, pipeline: str, entity: str) -> dict[Key, str]: ...

    def lookup(self, pipeline: str, entity: str, keys: Sequence[Key]) -> dict[Key, str]: ...

    def commit(
        self,
        pipeline: str,
        entity: str,
        written: Sequence[tuple[Key, str]],
        deleted: Sequence[Key],
        checkpoint: Checkpoint | None,
    ) -> None: ...

    def load_checkpoint(self, pipeline: str, entity: str) -> Checkpoint | None: ...

    def forget_checkpoints(self, pipeline: str, names: Sequence[str]) -> None: ...


class DeadLetters(Protocol):
    def park(
        self, job_id: str | None, pipeline: str, entity: str, rejected: Sequence[Rejected]
    ) -> int:
        """Store rejected records whole; returns how many were new (not already parked).

        An open letter for the same key with another fingerprint is superseded.
        """
        ...

    def open_keys(self, pipeline: str, entity: str) -> set[Key]:
        """Keys of the entity's open dead letters."""
        ...

    def resolve(self, pipeline: str, entity: str, keys: Sequence[Key], reason: str) -> int:
        """Close the open letters of ``keys`` (the record was synced or deleted since)."""
        ...

    def retry_keys(self, pipeline: str, entity: str) -> set[Key]:
        """Keys whose letters an operator asked to retry (read again at the next run)."""
        ...

    def retried(self, pipeline: str, entity: str, keys: Sequence[Key]) -> int:
        """The retry of ``keys`` failed again: their letters are open again, one more attempt."""
        ...


class ProgressSink(Protocol):
    def entity_started(self, entity: str, total: int | None, mode: str) -> None: ...

    def batch_done(self, entity: str, counts: EntityCounts) -> None: ...

    def entity_done(self, entity: str, counts: EntityCounts) -> None: ...


class JobLog(Protocol):
    """Where a running job reports its state (the store's jobs table)."""

    def start(self, job_id: str) -> None: ...

    def progress(self, job_id: str, progress: dict[str, Any]) -> None: ...

    def finish(
        self,
        job_id: str,
        status: str,
        progress: dict[str, Any],
        error: Any = None,
        entity: str | None = None,
    ) -> None: ...


class JobContext(Protocol):
    """What a running job may do durably (the job engine): checkpointed steps and sleeps.

    A step's result is recorded once it returns; after a crash the job runs again and
    every recorded step returns its recorded result, so a step runs at least once and
    its writes must be idempotent.  A transient error raised by a step is retried with
    backoff by the engine; any other error raised by a step fails the job."""

    @property
    def job_id(self) -> str: ...

    def step(self, name: str, fn: Callable[..., Any], *args: Any) -> Any: ...

    def sleep(self, seconds: float) -> None: ...


class SyncJobSteps(Protocol):
    """The steps of a sync job, each run (and recorded) once per call."""

    def start(self, job_id: str, request: dict[str, Any]) -> dict[str, Any]:
        """Mark the job running; its entities in order, retry policy and deadline."""
        ...

    def run_entity(
        self, job_id: str, request: dict[str, Any], entity: str, progress: dict[str, Any]
    ) -> dict[str, Any]:
        """Sync one entity from its checkpoint: the job's progress and the error, if any."""
        ...

    def note_retry(
        self, job_id: str, error: dict[str, Any], attempt: int, delay: float
    ) -> None: ...

    def finish(self, job_id: str, outcome: dict[str, Any]) -> None:
        """Record the job's end: status, progress, error, failed entity and attempts."""
        ...

    def park(
        self,
        job_id: str,
        request: dict[str, Any],
        error: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> None:
        """Keep a job that failed for good as a dead letter, to be retried or discarded."""
        ...


class CircuitStore(Protocol):
    """Circuit breaker states shared by every worker (the store's circuit_breakers table)."""

    def get(self, connection: str) -> CircuitState | None:
        """The connection's circuit, or None when it has no row (closed, no failures)."""
        ...

    def all(self) -> list[CircuitState]:
        """Every stored circuit, ordered by connection."""
        ...

    def compare_and_set(self, expected: CircuitState | None, new: CircuitState) -> bool:
        """Store ``new`` if the row still equals ``expected``, atomically.

        Equal means the same state, failures, opened_at and probe_started_at
        (``last_error`` is not compared); ``expected`` None means no row yet.
        Returns False, changing nothing, when another writer got there first.
        """
        ...

    def reset(self, connection: str) -> None:
        """Forget the connection's circuit: it is closed again."""
        ...

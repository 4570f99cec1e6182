"""The narrow interfaces use cases talk to; connectors and stores implement them.

``pacsync.connectors.memory`` holds an in-memory implementation of each, for
unit tests of the use cases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.circuit import CircuitState
from pacsync.domain.clinical import ParsedMessage
from pacsync.domain.drops import FileIdentity, FileRecord, FileReport
from pacsync.domain.fhir_resource import Versioned
from pacsync.domain.messaging import Incoming, Kept
from pacsync.domain.records import EntityCounts, Key, Rejected, Row
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import PacsyncError

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


class MessageJournal(Protocol):
    """Where received messages are kept durably before they are acknowledged."""

    def keep(self, messages: Sequence[Incoming]) -> list[Kept]:
        """Keep ``messages`` in one transaction (accepted ones once per sender and
        control id); answers in the same order.  Returns only once it is durable."""
        ...


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """A kept message waiting to be processed, as received."""

    id: int
    payload: bytes
    encoding: str


@dataclass(frozen=True, slots=True)
class Settled:
    """How one message's processing ended: done (with the patient it concerns) or failed."""

    id: int
    patient_id: str | None
    error: dict[str, Any] | None = None


class MessageInbox(Protocol):
    """Kept messages in arrival order, and where their processing is noted."""

    def pending(self, feed: str | None, limit: int) -> list[PendingMessage]: ...

    def settle(self, outcomes: Sequence[Settled], now: dt.datetime) -> None: ...


class ClinicalSink(Protocol):
    """Where the records of processed messages go (canonical records, FHIR resources)."""

    def apply(self, messages: Sequence[tuple[int, ParsedMessage]]) -> int:
        """Write what ``messages`` say, in order, in one transaction; records written."""
        ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A processed message waiting to be sent on one route."""

    delivery_id: int
    message_id: int
    payload: bytes
    control_id: str


class MllpOutbox(Protocol):
    """Messages waiting for one route, in arrival order, and what became of each."""

    def pending(self, route: str, limit: int) -> list[Outgoing]: ...

    def sent(self, delivery_id: int, ack_code: str, now: dt.datetime) -> None: ...

    def refused(self, delivery_id: int, error: dict[str, Any], now: dt.datetime) -> None: ...

    def tried(self, delivery_id: int, error: dict[str, Any]) -> None: ...


class MessageSender(Protocol):
    """One MLLP peer: sends a message and waits for its ACK (retrying what is transient);
    the ACK code, or a PacsyncError (NegativeAcknowledgement when refused)."""

    def send(self, payload: bytes) -> str: ...

    def close(self) -> None: ...


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


@dataclass(frozen=True, slots=True)
class WebhookResponse:
    """A receiver's answer: its status, the start of its body, and why it is a failure
    (None: delivered; a transient error for 5xx and 429, a terminal one otherwise)."""

    status: int
    body: str
    error: PacsyncError | None = None


class WebhookSender(Protocol):
    """Posts signed webhook messages over HTTP."""

    def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout_s: float
    ) -> WebhookResponse:
        """POST ``body`` to ``url``; the answer.  A :class:`TransientError` when none came
        (timeout, refused connection), a terminal one when the URL cannot be used."""
        ...


class WebhookSigner(Protocol):
    """The signature headers of one message (Standard Webhooks: webhook-id, -timestamp,
    -signature)."""

    def __call__(self, secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A webhook delivery ready to send; its message id is the same on every attempt."""

    delivery_id: int
    message_id: str
    url: str
    payload: Any
    status: str  # pending, delivered, failed
    secret: str = field(repr=False)


class WebhookDeliveryLog(Protocol):
    """Deliveries to send and the record of each attempt (the store's delivery log)."""

    def message(self, delivery_id: int) -> OutboundMessage | None:
        """The delivery with its webhook's URL and secret; None when either is gone or
        the webhook is disabled."""
        ...

    def delivered(self, delivery_id: int, status: int, body: str) -> None: ...

    def failed(
        self,
        delivery_id: int,
        error: str,
        status: int | None,
        body: str | None,
        retry_at: dt.datetime | None,
    ) -> None:
        """One failed attempt; another is planned at ``retry_at`` (None: given up)."""
        ...

    def park(
        self,
        job_id: str,
        request: dict[str, Any],
        error: dict[str, Any],
        history: list[dict[str, Any]],
    ) -> None:
        """Keep a delivery job that failed for good as a dead letter."""
        ...


FhirParams = Mapping[str, str] | Sequence[tuple[str, str]]


class FhirServer(Protocol):
    """An EHR's FHIR R4 API as a sync reads and writes it (pacsync.connectors.fhir's
    FhirClient; MemoryFhirServer in memory).  Failures are pacsync's FHIR errors:
    PACS-702 not found, PACS-704 an If-Match that found another version, PACS-705/706
    transient."""

    def read(self, resource_type: str, resource_id: str) -> Versioned: ...

    def search(
        self, resource_type: str, params: FhirParams | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every match, page after page."""
        ...

    def changed_since(
        self, resource_type: str, since: dt.datetime, params: FhirParams | None = None
    ) -> Iterator[dict[str, Any]]:
        """Resources changed after ``since`` (``_lastUpdated``), oldest first."""
        ...

    def create(
        self, resource: dict[str, Any], *, if_none_exist: FhirParams | None = None
    ) -> Versioned:
        """A new resource; with ``if_none_exist`` the one that matches, if any (200)."""
        ...

    def update(self, resource: dict[str, Any], *, if_match: str | None = None) -> Versioned:
        """Write the resource at its id; with ``if_match`` only over that version."""
        ...

    def delete(self, resource_type: str, resource_id: str) -> None:
        """Gone (deleting what is gone already is fine)."""
        ...


class LocalFhirResources(Protocol):
    """pacsync's own FHIR-shaped resources as a sync with an EHR reads and writes them.
    A resource read has ``meta.versionId`` and ``meta.lastUpdated`` of the local store."""

    def current(self, resource_type: str, resource_id: str) -> dict[str, Any] | None: ...

    def ids(self, resource_type: str) -> set[str]:
        """The id of every resource of the type held."""
        ...

    def changed(
        self, resource_type: str, since: dt.datetime | None, patient: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Resources of the type changed after ``since`` (None: all), of ``patient`` only
        when given (the Patient itself, or what refers to it as subject or patient)."""
        ...

    def save(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Write the resource at its id (a new local version); as read back."""
        ...

    def remove(self, resource_type: str, resource_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncBase:
    """The version of a record both sides last agreed on (its elements), by id."""

    resource_id: str
    resource: dict[str, Any]


class SyncBases(Protocol):
    """Base versions and reading positions of a sync, by scope (the sync's pipeline
    name) and resource type: the record state of a three-way compare."""

    def bases(self, scope: str, resource_type: str) -> dict[str, SyncBase]: ...

    def agree(
        self, scope: str, resource_type: str, agreed: Sequence[SyncBase], gone: Sequence[str]
    ) -> None:
        """Store the agreed versions and forget the records gone from both sides."""
        ...

    def position(self, scope: str, resource_type: str) -> dict[str, Any] | None: ...

    def save_position(self, scope: str, resource_type: str, position: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class SyncDecision:
    """The latest conflict of a record: open (waiting), or decided with the record the
    decision settled on (``value``: elements; None for a conflict ignored)."""

    conflict_id: int
    status: str  # open, resolved, ignored
    fields: list[dict[str, Any]]
    value: Any


class SyncConflicts(Protocol):
    """Where records waiting for a person's decision go (the store's conflicts)."""

    def latest(self, scope: str, resource_type: str, resource_id: str) -> SyncDecision | None: ...

    def open(
        self, scope: str, resource_type: str, resource_id: str, fields: list[dict[str, Any]]
    ) -> int: ...

"""A two-way sync of pacsync's FHIR resources with a FHIR connection, as a job:
``pacsync fhir sync CONNECTION`` runs one here, or queues it for the workers with
``--background`` (queue ``sync-jobs``, partitioned by connection like an export, so
one sync or export per connection runs at a time).  A patient sync (PATIENT_SYNC, the
kind a notification queues) goes before full and incremental ones: priority
:data:`PATIENT_PRIORITY` against :data:`SYNC_PRIORITY` (the job engine runs lower
first, and 0 before any other).

The sync's scope in record state and in the conflicts store is ``fhir:CONNECTION``:
its open conflicts are listed and decided through ``/api/v1/conflicts`` (each decision
audited there), and the next sync writes what was decided.

Each record the sync writes is announced as ``record.changed`` to the webhooks (data:
resource type, id, direction ``inbound``/``outbound``, change ``created``/``updated``/
``deleted``, mode), one event per record when a run changed at most
:data:`CHANGES_TOLD_ONE_BY_ONE` records (a patient sync, a usual incremental one); a
full sync, or a run that changed more, sends one summary event instead (counts by type,
direction and change), so a 10,000-patient full sync is one delivery, not 10,000.
A run that fails midway still announces what it wrote before the failure."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from pacsync import bootstrap
from pacsync.bootstrap import fhir
from pacsync.db.fhir_resources import FhirResourceStore
from pacsync.db.record_states import StoreRecordStates
from pacsync.domain.fhir_conflicts import ConflictPolicy, Strategy, rules_from
from pacsync.domain.fhir_notifications import patient_of, reference_parts
from pacsync.errors import ConfigError, FhirResourceNotFound, InvalidRequest, PacsyncError
from pacsync.jobs.queues import SYNC
from pacsync.jobs.request import JobRequest
from pacsync.ports import (
    FhirServer,
    JobContext,
    LocalFhirResources,
    SyncConflicts,
    SyncDecision,
)
from pacsync.sync.fhir_request import Direction, FhirSyncRequest, RecordChange, SyncMode
from pacsync.sync.fhir_sync import FhirSync

KIND = "fhir-sync"
DEFAULT_TYPES = ("Patient", "Encounter", "Observation")
PATIENT_PRIORITY = 0  # the engine's first
SYNC_PRIORITY = 1
CHANGES_TOLD_ONE_BY_ONE = 100
RECORD_CHANGED = "record.changed"


def scope_of(connection: str) -> str:
    return f"fhir:{connection}"


def sync_request(
    connection: str,
    *,
    direction: str = "both",
    full: bool = False,
    patient: str | None = None,
    strategy: str = "manual",
    fallback: str = "manual",
    rules: dict[str, Any] | list[dict[str, Any]] | None = None,
    types: Sequence[str] = DEFAULT_TYPES,
    trigger: str = "manual",
    focus: str | None = None,
) -> JobRequest:
    """The job; its arguments are checked here, before anything is queued.  ``focus``
    (``Type/id``, from a notification) asks for a patient sync of that resource's
    patient, found when the job runs."""
    Direction.parse(direction)
    ConflictPolicy(Strategy.parse(strategy), Strategy.parse(fallback), rules_from(rules))
    if full and (patient or focus):
        raise InvalidRequest("a patient sync is not a full one", hint="Drop --full.")
    args = {"direction": direction, "full": full, "patient": patient, "strategy": strategy,
            "fallback": fallback, "rules": rules or {}, "types": list(types)}  # fmt: skip
    if focus:
        args["focus"] = focus
    one = bool(patient or focus)
    return JobRequest(kind=KIND, pipeline=connection, mode="full" if full else "incremental",
                      entities=list(types), trigger=trigger, queue=SYNC,
                      priority=PATIENT_PRIORITY if one else SYNC_PRIORITY,
                      partition=f"fhir:{connection}", args=args)  # fmt: skip


def rules_file(path: Path) -> dict[str, Any] | list[dict[str, Any]]:
    """Auto-resolution rules from a YAML file: its ``rules`` (a mapping such as
    ``{telecom: remote, Patient.address: local}`` or a list of ``{element, wins,
    resource}``), checked here."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as bad:
        raise ConfigError(f"cannot read rules from {path}: {bad}") from None
    rules = loaded.get("rules") if isinstance(loaded, dict) else None
    if not isinstance(rules, dict | list):
        raise ConfigError(
            f"{path} has no rules",
            hint="Write rules: {telecom: remote} or rules: [{element: telecom, wins: remote}].",
        )
    rules_from(rules)
    return rules


def rules_of(path: Path | None, remote_wins: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The rules of a sync: elements the server always wins (``--remote-wins``, first),
    then those of the rules file, if any."""
    found = rules_file(path) if path is not None else []
    listed = (
        [{"element": k, "wins": v} for k, v in found.items()]
        if isinstance(found, dict)
        else list(found)
    )
    return [{"element": e, "wins": "remote"} for e in remote_wins] + listed


class ConflictRecorder(Protocol):
    """Stores an open conflict and tells the webhooks (bootstrap.events.EventSink)."""

    def record_conflict(
        self, pipeline: str, entity: str, record_key: str, fields: list[dict[str, Any]]
    ) -> int: ...

    def emit(self, event: str, data: dict[str, Any], pipeline: str | None = None) -> list[int]: ...


class ChangeAnnouncer:
    """Collects the records a sync wrote and announces them as ``record.changed``: one
    event each, or one summary (see the module docstring)."""

    def __init__(
        self, events: ConflictRecorder | None, scope: str, mode: SyncMode, job_id: str | None
    ) -> None:
        self.events, self.scope, self.mode, self.job_id = events, scope, mode, job_id
        self.changes: list[RecordChange] = []

    def __call__(self, change: RecordChange) -> None:
        self.changes.append(change)

    def flush(self) -> int:
        """Emit what was collected; the number of events."""
        changes, self.changes = self.changes, []
        if self.events is None or not changes:
            return 0
        common = {"mode": self.mode.value, "job_id": self.job_id}
        if self.mode is SyncMode.FULL or len(changes) > CHANGES_TOLD_ONE_BY_ONE:
            by_type: dict[str, dict[str, dict[str, int]]] = {}
            for c in changes:
                way = by_type.setdefault(c.resource_type, {}).setdefault(c.direction, {})
                way[c.change] = way.get(c.change, 0) + 1
            summary = {**common, "summary": True, "records": len(changes), "by_type": by_type}
            self.events.emit(RECORD_CHANGED, summary, self.scope)
            return 1
        for c in changes:
            data = {**common, "summary": False, "resource_type": c.resource_type,
                    "resource_id": c.resource_id, "direction": c.direction,
                    "change": c.change}  # fmt: skip
            self.events.emit(RECORD_CHANGED, data, self.scope)
        return len(changes)


class AnnouncedConflicts:
    """The store's conflicts for a sync, each opened one announced as
    ``conflict.detected``."""

    def __init__(self, store: bootstrap.Store, events: ConflictRecorder) -> None:
        self.store, self.events = store, events

    def latest(self, scope: str, resource_type: str, resource_id: str) -> SyncDecision | None:
        return self.store.conflicts.latest(scope, resource_type, resource_id)

    def open(
        self, scope: str, resource_type: str, resource_id: str, fields: list[dict[str, Any]]
    ) -> int:
        return self.events.record_conflict(scope, resource_type, resource_id, fields)


def run(
    store: bootstrap.Store,
    connection: str,
    args: dict[str, Any],
    events: ConflictRecorder | None = None,
    job_id: str | None = None,
) -> dict[str, Any]:
    """Run the sync ``args`` describe (see :func:`sync_request`); counts by type.  With
    ``events``, each conflict opened and each record written is announced to the
    webhooks."""
    with fhir.client(store, connection) as server:
        return _run(store, server, connection, args, events=events, job_id=job_id)


def _run(
    store: bootstrap.Store,
    server: FhirServer,
    connection: str,
    args: dict[str, Any],
    *,
    events: ConflictRecorder | None,
    job_id: str | None,
) -> dict[str, Any]:
    local = FhirResourceStore(store.engine)
    patient = args.get("patient")
    if not patient and args.get("focus"):
        patient = patient_of_focus(server, local, str(args["focus"]))
        if patient is None:  # gone from both sides, or about no patient
            return {}
    mode = SyncMode.PATIENT if patient else SyncMode.FULL if args.get("full") else None
    policy = ConflictPolicy(
        Strategy.parse(str(args.get("strategy") or "manual")),
        Strategy.parse(str(args.get("fallback") or "manual")),
        rules_from(args.get("rules")),
    )
    request = FhirSyncRequest(
        scope_of(connection),
        tuple(args.get("types") or DEFAULT_TYPES),
        Direction.parse(str(args.get("direction") or "both")),
        mode or SyncMode.INCREMENTAL,
        policy,
        patient,
    )
    conflicts: SyncConflicts = (
        store.conflicts if events is None else AnnouncedConflicts(store, events)
    )
    announcer = ChangeAnnouncer(events, request.scope, request.mode, job_id)
    sync = FhirSync(server, local, StoreRecordStates(store.engine), conflicts, announcer)
    try:
        return sync.run(request)
    finally:
        announcer.flush()


def patient_of_focus(server: FhirServer, local: LocalFhirResources, focus: str) -> str | None:
    """The patient a resource (``Type/id``) is about: from the server's copy, else from
    pacsync's (a resource deleted on the server); None when neither says."""
    parts = reference_parts(focus)
    if parts is None:
        return None
    rtype, rid = parts
    if rtype == "Patient":
        return rid
    try:
        held: dict[str, Any] | None = server.read(rtype, rid).resource
    except FhirResourceNotFound:
        held = None
    found = patient_of(held) if held is not None else None
    if found is None:
        mine = local.current(rtype, rid)
        found = patient_of(mine) if mine is not None else None
    return found


class SyncJobs:
    """The fhir-sync job: marks it running, syncs, records the outcome."""

    def __init__(
        self, store: bootstrap.Store, executor_id: str, events: ConflictRecorder | None = None
    ) -> None:
        self.store, self.executor_id, self.events = store, executor_id, events

    def __call__(self, ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        asked = JobRequest.from_dict(request)
        return dict(ctx.step("sync", self.run, ctx.job_id, asked.pipeline, asked.args))

    def run(self, job_id: str, connection: str, args: dict[str, Any]) -> dict[str, Any]:
        jobs = self.store.jobs
        jobs.start(job_id, self.executor_id)
        try:
            counts = run(self.store, connection, args, self.events, job_id)
        except PacsyncError as failed:
            jobs.finish(job_id, "failed", {"entities": {}}, failed)
            return {"status": "failed", "error": failed.as_dict()}
        jobs.finish(job_id, "succeeded", {"entities": counts})
        return {"status": "succeeded", "counts": counts}

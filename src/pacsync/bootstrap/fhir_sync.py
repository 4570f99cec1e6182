"""A two-way sync of pacsync's FHIR resources with a FHIR connection, as a job:
``pacsync fhir sync CONNECTION`` runs one here, or queues it for the workers with
``--background`` (queue ``sync-jobs``, partitioned by connection like an export, so
one sync or export per connection runs at a time).  A patient sync goes before the
others (priority -1).

The sync's scope in record state and in the conflicts store is ``fhir:CONNECTION``:
its open conflicts are listed and decided through ``/api/v1/conflicts`` (each decision
audited there), and the next sync writes what was decided."""

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
from pacsync.errors import ConfigError, PacsyncError
from pacsync.jobs.queues import SYNC
from pacsync.jobs.request import JobRequest
from pacsync.ports import JobContext, SyncConflicts, SyncDecision
from pacsync.sync.fhir_sync import Direction, FhirSync, FhirSyncRequest, SyncMode

KIND = "fhir-sync"
DEFAULT_TYPES = ("Patient", "Encounter", "Observation")


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
) -> JobRequest:
    """The job; its arguments are checked here, before anything is queued."""
    Direction.parse(direction)
    ConflictPolicy(Strategy.parse(strategy), Strategy.parse(fallback), rules_from(rules))
    args = {"direction": direction, "full": full, "patient": patient, "strategy": strategy,
            "fallback": fallback, "rules": rules or {}, "types": list(types)}  # fmt: skip
    return JobRequest(kind=KIND, pipeline=connection, mode="full" if full else "incremental",
                      entities=list(types), trigger=trigger, queue=SYNC,
                      priority=-1 if patient else 0, partition=f"fhir:{connection}",
                      args=args)  # fmt: skip


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
) -> dict[str, Any]:
    """Run the sync ``args`` describe (see :func:`sync_request`); counts by type.  With
    ``events``, each conflict opened is announced to the webhooks."""
    patient = args.get("patient")
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
    sync = FhirSync(
        fhir.server(store, connection),
        FhirResourceStore(store.engine),
        StoreRecordStates(store.engine),
        conflicts,
    )
    return sync.run(request)


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
            counts = run(self.store, connection, args, self.events)
        except PacsyncError as failed:
            jobs.finish(job_id, "failed", {"entities": {}}, failed)
            return {"status": "failed", "error": failed.as_dict()}
        jobs.finish(job_id, "succeeded", {"entities": counts})
        return {"status": "succeeded", "counts": counts}

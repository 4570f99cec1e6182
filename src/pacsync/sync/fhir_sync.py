"""Sync of pacsync's FHIR-shaped resources with an EHR's FHIR server, over ports only.

For each resource type, the records changed on either side (all of them in a full
sync, those changed since the last position in an incremental one, one patient's in a
patient sync) are compared three ways against their base version, the one both sides
agreed on at the last sync (:mod:`pacsync.domain.fhir_conflicts`):

- a record on one side only, never synced, is copied to the other (to the server at its
  id, a PUT, so a write repeated after a failure is still one record; and only after a
  search by its identifier found no record of another id holding it — such a twin waits
  in the conflicts store as ``(identifier)`` — then as a conditional update on that
  identifier, so one made meanwhile is not written twice either);
- a record gone from one side and unchanged on the other since the base is deleted
  there; changed on the other side (a sync both ways), the policy decides: ``manual``
  opens a conflict on the whole record (its field ``(record)``, the deleted side None),
  ``local-wins`` / ``remote-wins`` let that side's state win (its deletion too), and
  ``last-write-wins`` keeps the change (a deletion has no time to compare);
  ``field-merge`` goes by its fallback;
- otherwise the policy settles it; what it settles on is written where it differs, and
  becomes the new base.  A conflict the policy leaves to a person is opened in the
  conflicts store and waits; once decided there, the next sync writes the decision
  (while the sides still hold the values it was about).

Writes to the server carry If-Match with the version read: a 412 means someone changed
the record meanwhile, so it is read again and compared again, never overwritten.

INBOUND writes only the local side (the base becomes what the server holds, so local
changes are still seen as such later); OUTBOUND writes only the server (the base
becomes the local record).  An incremental read finds the server's deletions in its
history (``Type/_history?_since``; a server without history leaves them to a full
sync) and the local ones by the ids gone from the store.  The
position is the latest change time read on each side, not the time of the sync's own
writes: a change another writer made meanwhile is never passed over, and the sync's
own writes are read again next time and found agreed.  Each side is read again from
:data:`OVERLAP` before its position, for changes committed late.

Each record written or deleted on either side is told to ``on_change`` as a
:class:`RecordChange` (the webhooks' ``record.changed``).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pacsync.domain.fhir_conflicts import (
    ConflictPolicy,
    Resolution,
    Strategy,
    conflict_fields,
    elements,
    last_updated,
    resolve,
)
from pacsync.errors import (
    FhirPreconditionFailed,
    FhirResourceNotFound,
)
from pacsync.ports import (
    FhirServer,
    LocalFhirResources,
    SyncBase,
    SyncBases,
    SyncConflicts,
    SyncDecision,
)
from pacsync.sync.fhir_create import CreatesOnServer
from pacsync.sync.fhir_request import (
    JSON,
    Direction,
    FhirSyncRequest,
    RecordChange,
    SyncMode,
    TypeCounts,
    TypeRun,
    sides,
    whole_resource,
)

WRITE_ATTEMPTS = 5
RECORD = "(record)"  # the field of a conflict between a deletion and a change
OVERLAP = dt.timedelta(seconds=5)  # re-read before a position; what is agreed stays so


class FhirSync(CreatesOnServer):
    def __init__(
        self,
        server: FhirServer,
        local: LocalFhirResources,
        bases: SyncBases,
        conflicts: SyncConflicts,
        on_change: Callable[[RecordChange], None] | None = None,
    ) -> None:
        self.server = server
        self.local = local
        self.bases = bases
        self.conflicts = conflicts
        self.on_change = on_change or (lambda _: None)

    def _changed(self, rtype: str, rid: str, direction: str, change: str) -> None:
        self.on_change(RecordChange(rtype, rid, direction, change))

    def _decided(self, run: TypeRun, rid: str, fields: list[JSON]) -> SyncDecision | None:
        """A person's decision on ``fields``; None while there is none: the conflict is
        opened (unless the same one waits already) and counted."""
        request, counts = run.request, run.counts
        decision = self.conflicts.latest(request.scope, run.rtype, rid)
        if decision is None or sides(decision.fields) != sides(fields):
            self.conflicts.open(request.scope, run.rtype, rid, fields)
            counts.conflicts += 1
            return None
        if decision.status != "resolved":
            counts.waiting += 1
            return None
        return decision

    def run(self, request: FhirSyncRequest) -> dict[str, dict[str, int]]:
        """Sync each resource type in turn; counts by type."""
        return {t: self.sync_type(request, t).as_dict() for t in request.resource_types}

    # -- one resource type ---------------------------------------------------------------

    def sync_type(self, request: FhirSyncRequest, resource_type: str) -> TypeCounts:
        run = TypeRun(request, resource_type)
        bases = self.bases.bases(request.scope, resource_type)
        position = self.bases.position(request.scope, resource_type) or {}
        incremental = request.mode is SyncMode.INCREMENTAL and bool(position)
        remote_since = _before(position.get("remote")) if incremental else None
        local_since = _before(position.get("local")) if incremental else None

        remote_seen = {r["id"]: r for r in self._remote(request, resource_type, remote_since)}
        local_seen = {
            r["id"]: r for r in self.local.changed(resource_type, local_since, request.patient)
        }
        ids = set(remote_seen) | set(local_seen)
        if request.mode is SyncMode.FULL:
            ids |= set(bases)
        elif incremental:  # a deletion leaves no change to read: look for it
            ids |= set(bases) - self.local.ids(resource_type)
            if remote_since is not None:
                ids |= set(bases) & set(self.server.deleted_since(resource_type, remote_since))

        for rid in sorted(ids):
            local = local_seen.get(rid) or self.local.current(resource_type, rid)
            remote = remote_seen.get(rid)
            if remote is None and rid not in remote_seen:
                remote = self._read(resource_type, rid)
            self._one(run, rid, bases.get(rid), local, remote)

        self.bases.agree(request.scope, resource_type, run.agreed, run.gone)
        if request.mode is not SyncMode.PATIENT:
            self.bases.save_position(
                request.scope,
                resource_type,
                {
                    "remote": _latest(remote_seen.values(), position.get("remote")),
                    "local": _latest(local_seen.values(), position.get("local")),
                },
            )
        return run.counts

    def _remote(
        self, request: FhirSyncRequest, resource_type: str, since: dt.datetime | None
    ) -> Iterable[JSON]:
        if request.patient is not None:
            name = "_id" if resource_type == "Patient" else "patient"
            return self.server.search(resource_type, [(name, request.patient)])
        if since is not None:
            return self.server.changed_since(resource_type, since)
        return self.server.search(resource_type)

    def _read(self, resource_type: str, rid: str) -> JSON | None:
        try:
            return self.server.read(resource_type, rid).resource
        except FhirResourceNotFound:
            return None

    def _one(
        self,
        run: TypeRun,
        rid: str,
        base: SyncBase | None,
        local: JSON | None,
        remote: JSON | None,
    ) -> None:
        direction, rtype, counts = run.request.direction, run.rtype, run.counts
        for _ in range(WRITE_ATTEMPTS):
            if local is None and remote is None:
                if base is not None:
                    run.gone.append(rid)
                return
            if local is None or remote is None:
                self._one_sided(run, rid, base, local, remote)
                return
            resolution = self._settle(run, rid, base, local, remote)
            if resolution is None:
                return
            settled = resolution.resource
            assert settled is not None
            wrote = False
            if direction.writes_remote and resolution.differs_from(remote):
                try:
                    self._push(rtype, rid, settled, remote)
                except FhirPreconditionFailed:
                    counts.retried += 1
                    remote = self._read(rtype, rid)
                    continue
                counts.pushed += 1
                self._changed(rtype, rid, "outbound", "updated")
                wrote = True
            if direction.writes_local and resolution.differs_from(local):
                self.local.save(whole_resource(rtype, rid, settled))
                counts.pulled += 1
                self._changed(rtype, rid, "inbound", "updated")
                wrote = True
            if not wrote:
                counts.unchanged += 1
            if direction is Direction.INBOUND:
                settled = elements(remote)
            elif direction is Direction.OUTBOUND:
                settled = elements(local)
            run.agreed.append(SyncBase(rid, copy.deepcopy(settled)))
            return
        raise FhirPreconditionFailed(
            f"{rtype}/{rid} changed on the server during each of {WRITE_ATTEMPTS} writes",
            hint="The record is busy on the server; the next sync tries again.",
        )

    def _settle(
        self, run: TypeRun, rid: str, base: SyncBase | None, local: JSON, remote: JSON
    ) -> Resolution | None:
        """What the policy (or a person's decision) settles on; None while it waits."""
        request, rtype = run.request, run.rtype
        base_resource = base.resource if base is not None else None
        resolution = resolve(rtype, base_resource, local, remote, request.policy)
        if not resolution.needs_review:
            return resolution
        fields = conflict_fields(base_resource, local, remote, resolution.conflicting)
        decision = self._decided(run, rid, fields)
        if decision is None:
            return None
        merged = resolve(
            rtype,
            base_resource,
            local,
            remote,
            ConflictPolicy(Strategy.FIELD_MERGE, Strategy.LOCAL_WINS, request.policy.rules),
        )
        assert merged.resource is not None
        decided = dict(merged.resource)
        for name, value in dict(decision.value or {}).items():
            if name in ("resourceType", "id", "meta"):
                continue
            if value is None:
                decided.pop(name, None)
            else:
                decided[name] = copy.deepcopy(value)
        return Resolution(decided, resolution.comparison, (), {"decision": "conflicts store"})

    def _one_sided(
        self,
        run: TypeRun,
        rid: str,
        base: SyncBase | None,
        local: JSON | None,
        remote: JSON | None,
    ) -> None:
        direction, rtype, counts, agreed = run.request.direction, run.rtype, run.counts, run.agreed
        held = local if local is not None else remote
        assert held is not None
        unchanged = base is not None and elements(held) == base.resource
        if base is not None and not unchanged and direction is Direction.BIDIRECTIONAL:
            # deleted on one side, changed on the other
            kept = self._deleted_or_changed(run, rid, base, local, remote)
            if kept is None:
                return
            if not kept:
                self._delete(run, rid, local_side=local is not None)
                return
            held = kept
        if local is None:  # on the server only
            if unchanged and direction.writes_remote:  # deleted locally
                self._delete(run, rid, local_side=False)
            elif not unchanged and direction.writes_local:  # new there, or changed there
                self.local.save(whole_resource(rtype, rid, elements(held)))
                counts.pulled += 1
                self._changed(rtype, rid, "inbound", "created")
                if elements(held) != elements(remote):  # a decision changed it
                    self._write_remote(rtype, rid, held, remote)
                agreed.append(SyncBase(rid, elements(held)))
            return
        if unchanged and direction.writes_local:  # deleted on the server
            self._delete(run, rid, local_side=True)
        elif not unchanged and direction.writes_remote:
            if base is None:
                guard = self._may_create(run, rid, held)
                if guard is False or not self._create(run, rid, held, guard):
                    return
            else:
                self._write_remote(rtype, rid, held, None)
            counts.pushed += 1
            if elements(held) != elements(local):  # a decision changed it
                self.local.save(whole_resource(rtype, rid, elements(held)))
                self._changed(rtype, rid, "inbound", "updated")
            agreed.append(SyncBase(rid, elements(held)))

    def _write_remote(self, rtype: str, rid: str, held: JSON, remote: JSON | None) -> None:
        """Write ``held`` to the server: over the version read (If-Match), or as a new
        record at its id (a PUT: written again after a failure, it is still one)."""
        if remote is None:
            self.server.update(whole_resource(rtype, rid, elements(held)))
            self._changed(rtype, rid, "outbound", "created")
        else:
            self._push(rtype, rid, elements(held), remote)
            self._changed(rtype, rid, "outbound", "updated")

    def _delete(self, run: TypeRun, rid: str, *, local_side: bool) -> None:
        """Delete the record where it is still held; both sides then agree it is gone."""
        rtype, counts = run.rtype, run.counts
        if local_side:
            self.local.remove(rtype, rid)
            counts.deleted_local += 1
            self._changed(rtype, rid, "inbound", "deleted")
        else:
            self.server.delete(rtype, rid)
            counts.deleted_remote += 1
            self._changed(rtype, rid, "outbound", "deleted")
        run.gone.append(rid)

    def _deleted_or_changed(
        self, run: TypeRun, rid: str, base: SyncBase, local: JSON | None, remote: JSON | None
    ) -> JSON | Literal[False] | None:
        """A record deleted on one side and changed on the other, settled by the policy:
        the record to keep (on both sides), False when the deletion wins, None while a
        conflict waits for a person's decision."""
        request = run.request
        held = local if local is not None else remote
        assert held is not None
        deleted_here = local is None
        strategy = request.policy.strategy
        if strategy is Strategy.FIELD_MERGE:
            strategy = request.policy.fallback
        if strategy is Strategy.LAST_WRITE_WINS:
            return held  # a deletion has no time to compare: the change is kept
        if strategy is Strategy.LOCAL_WINS:
            return False if deleted_here else held
        if strategy is Strategy.REMOTE_WINS:
            return held if deleted_here else False
        fields = [
            {
                "field": RECORD,
                "local": None if local is None else elements(local),
                "remote": None if remote is None else elements(remote),
                "base": base.resource,
            }
        ]
        decision = self._decided(run, rid, fields)
        if decision is None:
            return None
        value = decision.value if isinstance(decision.value, dict) else {}
        if RECORD in value:  # use_local / use_remote: that side's record, or its absence
            kept = value[RECORD]
            if not kept:
                return False
            return elements(kept) if isinstance(kept, dict) else held
        given = elements(value)  # a record written by hand: over the one kept
        return {**elements(held), **given} if given else False

    def _push(self, rtype: str, rid: str, settled: JSON, remote: JSON) -> None:
        version = (remote.get("meta") or {}).get("versionId")
        etag = f'W/"{version}"' if version else None
        self.server.update(whole_resource(rtype, rid, settled), if_match=etag)


def _when(text: Any) -> dt.datetime | None:
    return last_updated({"meta": {"lastUpdated": text}}) if text else None


def _before(text: Any) -> dt.datetime | None:
    """A position read again from a little earlier (a change written with an earlier
    time but committed after the last read is not passed over)."""
    when = _when(text)
    return None if when is None else when - OVERLAP


def _latest(resources: Iterable[JSON], before: Any) -> str | None:
    best = _when(before)
    text = before if best is not None else None
    for resource in resources:
        when = last_updated(resource)
        if when is not None and (best is None or when > best):
            best, text = when, resource["meta"]["lastUpdated"]
    return text


__all__ = ["Direction", "FhirSync", "FhirSyncRequest", "SyncMode", "TypeCounts"]

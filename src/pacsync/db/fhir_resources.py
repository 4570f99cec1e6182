"""FHIR R4 resources pacsync holds: what processed messages mapped to.

A resource is kept once per type and id (ids come from natural identifiers:
medical record number and authority, visit number, order numbers), so a
message processed again, or a later message about the same patient, updates
it in place; ``version`` counts the updates, like a FHIR server's versionId.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
    tuple_,
)

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import metadata

fhir_resources = Table(
    "fhir_resources",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("resource", JSON, nullable=False),
    Column("message_id", Integer),
    Column("updated_at", DateTime, nullable=False),
)


class FhirResourceStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, conn: Any, resources: Sequence[tuple[int | None, dict[str, Any]]]) -> int:
        """Insert or replace each resource (later ones win) in ``conn``'s transaction."""
        table = fhir_resources
        latest: dict[tuple[str, str], tuple[int | None, dict[str, Any]]] = {}
        for message_id, resource in resources:
            latest[(resource["resourceType"], resource["id"])] = (message_id, resource)
        if not latest:
            return 0
        keys = list(latest)
        known: dict[tuple[str, str], int] = {}
        for start in range(0, len(keys), 400):
            chunk = keys[start : start + 400]
            found = conn.execute(
                select(table.c.resource_type, table.c.resource_id, table.c.version).where(
                    tuple_(table.c.resource_type, table.c.resource_id).in_(chunk)
                )
            )
            known.update({(t, i): v for t, i, v in found})
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        fresh = [
            {"resource_type": t, "resource_id": i, "version": 1, "resource": r,
             "message_id": m, "updated_at": now}
            for (t, i), (m, r) in latest.items() if (t, i) not in known
        ]  # fmt: skip
        if fresh:
            conn.execute(table.insert(), fresh)
        changed = [
            {"kind": t, "rid": i, "new_version": known[(t, i)] + 1, "body": r, "mid": m}
            for (t, i), (m, r) in latest.items() if (t, i) in known
        ]  # fmt: skip
        if changed:  # one executemany for the batch, not a statement per resource
            conn.execute(
                table.update()
                .where(
                    table.c.resource_type == bindparam("kind"),
                    table.c.resource_id == bindparam("rid"),
                )
                .values(
                    version=bindparam("new_version"),
                    resource=bindparam("body", type_=JSON),
                    message_id=bindparam("mid"),
                    updated_at=now,
                ),
                changed,
            )
        return len(latest)

    def get(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        table = fhir_resources
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(
                select(table.c.resource, table.c.version, table.c.updated_at).where(
                    table.c.resource_type == resource_type, table.c.resource_id == resource_id
                )
            ).first()
        if row is None:
            return None
        resource = dict(row[0])
        resource["meta"] = {"versionId": str(row[1]), "lastUpdated": f"{row[2]:%Y-%m-%dT%H:%M:%S}Z"}
        return resource

    def list(
        self, resource_type: str, *, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        table = fhir_resources
        stmt = (
            select(table.c.resource)
            .where(table.c.resource_type == resource_type)
            .order_by(table.c.resource_id)
            .limit(limit)
            .offset(offset)
        )
        with translated("store"), self.engine.connect() as conn:
            return [dict(r) for (r,) in conn.execute(stmt)]

    def counts(self) -> dict[str, int]:
        table = fhir_resources
        stmt = select(table.c.resource_type, func.count()).group_by(table.c.resource_type)
        with translated("store"), self.engine.connect() as conn:
            return {t: int(n) for t, n in conn.execute(stmt)}

    # -- as a sync with an EHR reads and writes them (pacsync.ports.LocalFhirResources) --

    def current(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The resource with meta.lastUpdated to the microsecond (as ``changed`` compares)."""
        table = fhir_resources
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(
                select(table.c.resource, table.c.version, table.c.updated_at).where(
                    table.c.resource_type == resource_type, table.c.resource_id == resource_id
                )
            ).first()
        return None if row is None else _with_meta(row[0], row[1], row[2])

    def ids(self, resource_type: str) -> set[str]:
        table = fhir_resources
        stmt = select(table.c.resource_id).where(table.c.resource_type == resource_type)
        with translated("store"), self.engine.connect() as conn:
            return {str(rid) for (rid,) in conn.execute(stmt)}

    def changed(
        self, resource_type: str, since: dt.datetime | None, patient: str | None = None
    ) -> Iterator[dict[str, Any]]:
        table = fhir_resources
        stmt = (
            select(table.c.resource, table.c.version, table.c.updated_at)
            .where(table.c.resource_type == resource_type)
            .order_by(table.c.updated_at, table.c.resource_id)
        )
        if since is not None:
            stmt = stmt.where(table.c.updated_at > since.astimezone(dt.UTC).replace(tzinfo=None))
        if patient is not None and resource_type == "Patient":
            stmt = stmt.where(table.c.resource_id == patient)
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        for resource, version, updated_at in rows:
            found = _with_meta(resource, version, updated_at)
            if patient is None or resource_type == "Patient" or _refers_to(found, patient):
                yield found

    def save(self, resource: dict[str, Any]) -> dict[str, Any]:
        """Write the resource as a new version; the message that made it stays noted."""
        table = fhir_resources
        body = {k: v for k, v in resource.items() if k != "meta"}
        kind, rid = str(body["resourceType"]), str(body["id"])
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        mine = (table.c.resource_type == kind) & (table.c.resource_id == rid)
        with translated("store"), self.engine.begin() as conn:
            changed = conn.execute(
                table.update()
                .where(mine)
                .values(version=table.c.version + 1, resource=body, updated_at=now)
            ).rowcount
            if not changed:
                conn.execute(
                    table.insert().values(resource_type=kind, resource_id=rid, version=1,
                                          resource=body, updated_at=now)
                )  # fmt: skip
        saved = self.current(str(body["resourceType"]), str(body["id"]))
        assert saved is not None
        return saved

    def remove(self, resource_type: str, resource_id: str) -> None:
        table = fhir_resources
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                delete(table).where(
                    table.c.resource_type == resource_type, table.c.resource_id == resource_id
                )
            )


def _with_meta(resource: Any, version: int, updated_at: dt.datetime) -> dict[str, Any]:
    found = dict(resource)
    stamp = updated_at.replace(tzinfo=dt.UTC).isoformat(timespec="microseconds")
    found["meta"] = {"versionId": str(version), "lastUpdated": stamp.replace("+00:00", "Z")}
    return found


def _refers_to(resource: dict[str, Any], patient: str) -> bool:
    for name in ("subject", "patient"):
        reference = str((resource.get(name) or {}).get("reference") or "")
        if reference in (patient, f"Patient/{patient}"):
            return True
    return False


__all__ = ["FhirResourceStore", "fhir_resources"]

"""The Modality Worklist's store: ``scheduled_procedures``, one row per procedure
step (see :mod:`pacsync.domain.worklist`).

A step stays in the table when it is cancelled (status ``cancelled``); only
``scheduled`` ones answer worklist queries.  Two scheduled steps may not share an
accession number and step ID (a unique index on the scheduled rows).

:meth:`WorklistStore.find` narrows by what the database can compare exactly (status,
start date range, station, modality, accession number, patient ID without wild
cards), then applies :func:`~pacsync.domain.worklist.matches` to every candidate:
the domain's rules decide, the SQL only saves reading rows that cannot match."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from pacsync.connectors.sql.errors import translated
from pacsync.db.tables import metadata
from pacsync.domain.clock import utc_now
from pacsync.domain.matching import date_range
from pacsync.domain.worklist import NewProcedure, ProcedureStatus, ScheduledProcedure, matches
from pacsync.errors import InvalidState, NotFound

scheduled_procedures = Table(
    "scheduled_procedures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("accession_number", String(16), nullable=False),
    Column("step_id", String(16), nullable=False),
    Column("requested_procedure_id", String(16), nullable=False),
    Column("requested_procedure_description", String(64), nullable=False),
    Column("step_description", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("patient_name", String(194), nullable=False),
    Column("patient_birth_date", String(8), nullable=False),
    Column("patient_sex", String(1), nullable=False),
    Column("study_uid", String(64)),
    Column("modality", String(16), nullable=False),
    Column("station_ae", String(16), nullable=False),
    Column("station_name", String(16), nullable=False),
    Column("start_at", DateTime, nullable=False),  # the department's local clock (DA/TM)
    Column("referring_physician", String(194), nullable=False),
    Column("performing_physician", String(194), nullable=False),
    Column("status", String(20), nullable=False),
    Column("source", String(100), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("cancelled_at", DateTime),
    Index("ix_scheduled_procedures_start", "status", "start_at"),
    Index(
        "uq_scheduled_procedures_step",
        "accession_number",
        "step_id",
        unique=True,
        sqlite_where=text("status = 'scheduled'"),
        postgresql_where=text("status = 'scheduled'"),
    ),
)
_p = scheduled_procedures.c
_FIELDS = tuple(NewProcedure.model_fields)
_COLUMN = {"start": "start_at"}


def _procedure(row: Any) -> ScheduledProcedure:
    values = {name: getattr(row, _COLUMN.get(name, name)) for name in _FIELDS}
    return ScheduledProcedure(
        id=int(row.id),
        procedure=NewProcedure.model_validate(values),
        status=ProcedureStatus(row.status),
        source=row.source,
        created_at=row.created_at,
    )


class WorklistStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, procedure: NewProcedure, *, source: str) -> ScheduledProcedure:
        """Store a scheduled step; :class:`InvalidState` when a scheduled one has the same
        accession number and step ID."""
        p = procedure.with_defaults()
        row = {_COLUMN.get(name, name): value for name, value in p.model_dump().items()}
        row |= {"status": ProcedureStatus.SCHEDULED.value, "source": source,
                "created_at": utc_now()}  # fmt: skip
        with translated("store"):
            try:
                with self.engine.begin() as conn:
                    added = conn.execute(insert(scheduled_procedures).values(row))
                    new_id = added.inserted_primary_key
            except IntegrityError:
                raise InvalidState(
                    f"accession {p.accession_number} step {p.step_id} is already scheduled",
                    hint="Cancel that procedure first (pacsync worklist cancel ID), or give "
                    "another step ID.",
                ) from None
        assert new_id is not None
        return self.get(int(new_id[0]))

    def get(self, procedure_id: int) -> ScheduledProcedure:
        with translated("store"), self.engine.connect() as conn:
            row = conn.execute(select(scheduled_procedures).where(_p.id == procedure_id)).first()
        if row is None:
            raise NotFound(
                f"no scheduled procedure {procedure_id}",
                hint="List them with `pacsync worklist list --all` (GET /api/v1/worklist).",
            )
        return _procedure(row)

    def cancel(self, procedure_id: int) -> ScheduledProcedure:
        """Cancel a scheduled step (it no longer answers worklist queries)."""
        current = self.get(procedure_id)
        if current.status is not ProcedureStatus.SCHEDULED:
            raise InvalidState(
                f"procedure {procedure_id} is {current.status.value}",
                hint="Only a scheduled procedure can be cancelled.",
            )
        with translated("store"), self.engine.begin() as conn:
            conn.execute(
                update(scheduled_procedures)
                .where(_p.id == procedure_id, _p.status == ProcedureStatus.SCHEDULED.value)
                .values(status=ProcedureStatus.CANCELLED.value, cancelled_at=utc_now())
            )
        return self.get(procedure_id)

    def page(
        self,
        *,
        status: ProcedureStatus | None = ProcedureStatus.SCHEDULED,
        station_ae: str | None = None,
        start_from: dt.datetime | None = None,
        start_to: dt.datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[ScheduledProcedure], int]:
        """Steps by start time (oldest first) and how many match in all."""
        where = []
        if status is not None:
            where.append(_p.status == status.value)
        if station_ae:
            where.append(_p.station_ae == station_ae)
        if start_from is not None:
            where.append(_p.start_at >= start_from)
        if start_to is not None:
            where.append(_p.start_at < start_to)
        query = select(scheduled_procedures).where(*where).order_by(_p.start_at, _p.id)
        with translated("store"), self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(scheduled_procedures)
                                 .where(*where)).scalar_one()  # fmt: skip
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [_procedure(r) for r in rows], int(total)

    def find(self, keys: Mapping[str, str]) -> list[ScheduledProcedure]:
        """The scheduled steps matching a worklist query (keyword → matching value)."""
        where = [_p.status == ProcedureStatus.SCHEDULED.value]
        when = keys.get("ScheduledProcedureStepStartDate", "").strip()
        if when:
            low, high = date_range(when, "ScheduledProcedureStepStartDate")
            if low:
                where.append(_p.start_at >= dt.datetime.strptime(low, "%Y%m%d"))
            if high:
                day_after = dt.datetime.strptime(high, "%Y%m%d") + dt.timedelta(days=1)
                where.append(_p.start_at < day_after)
        exact = {"ScheduledStationAETitle": _p.station_ae, "Modality": _p.modality,
                 "AccessionNumber": _p.accession_number, "PatientID": _p.patient_id}  # fmt: skip
        for keyword, column in exact.items():
            value = keys.get(keyword, "")
            if value and "*" not in value and "?" not in value:
                where.append(column == value)
        query = select(scheduled_procedures).where(*where).order_by(_p.start_at, _p.id)
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [p for p in map(_procedure, rows) if matches(p, keys)]

"""The study workflow timeline: ``study_events``, one row per thing pacsync observed
happening to a study (see :mod:`pacsync.domain.study_workflow`).

A received study does not write a row per instance: ``received`` rows accumulate,
one per (study, event, source) with the first and last instance's times and a
count.  Those rows carry ``accumulated = 1`` under a unique constraint, so two
threads (or processes) receiving a study's first instances together still make
one row; other events leave it NULL and add a row each time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    case,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from pacsync.connectors.sql.errors import translated
from pacsync.db import archive_tables as index  # its names are read when used: it imports tables
from pacsync.db.tables import metadata
from pacsync.domain.clock import utc_now
from pacsync.domain.study_workflow import ACCUMULATED, Event, StudyEvent, Workflow
from pacsync.errors import NotFound

study_events = Table(
    "study_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(100), nullable=False),  # the archive or DICOM node
    Column("study_uid", String(64), nullable=False),
    Column("event", String(20), nullable=False),
    Column("at", DateTime, nullable=False),  # received: the last instance
    Column("first_at", DateTime),  # received: the first instance
    Column("instances", Integer),
    Column("accumulated", Boolean),  # 1: the one row of its study, event and source
    Column("detail", JSON),
    UniqueConstraint("study_uid", "event", "source", "accumulated", name="uq_study_events_once"),
    Index("ix_study_events_study", "study_uid", "at"),
)
_e = study_events.c


class StudyEvents:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        study_uid: str,
        event: Event | str,
        *,
        source: str,
        detail: dict[str, Any] | None = None,
        at: dt.datetime | None = None,
        instances: int | None = None,
    ) -> None:
        """Add an event; a ``received`` one adds ``instances`` (default 1) to its
        study's and source's entry, moving its last time on."""
        kind = Event(event)
        when = at or utc_now()
        if kind in ACCUMULATED:
            self._accumulate(
                study_uid, kind, source=source, when=when, count=instances or 1, detail=detail
            )
            return
        row = {"study_uid": study_uid, "event": kind.value, "source": source, "at": when,
               "instances": instances, "detail": detail}  # fmt: skip
        with translated("store"), self.engine.begin() as conn:
            conn.execute(insert(study_events).values(row))

    def _accumulate(
        self,
        study_uid: str,
        kind: Event,
        *,
        source: str,
        when: dt.datetime,
        count: int,
        detail: dict[str, Any] | None,
    ) -> None:
        same = (_e.study_uid == study_uid, _e.event == kind.value, _e.source == source,
                _e.accumulated.is_(True))  # fmt: skip
        bump = (
            update(study_events)
            .where(*same)
            .values(
                at=case((_e.at < when, when), else_=_e.at),
                first_at=case((_e.first_at > when, when), else_=_e.first_at),
                instances=_e.instances + count,
            )
        )
        row = {"study_uid": study_uid, "event": kind.value, "source": source, "at": when,
               "first_at": when, "instances": count, "accumulated": True,
               "detail": detail}  # fmt: skip
        with translated("store"):
            for _attempt in range(2):
                with self.engine.begin() as conn:
                    if conn.execute(bump).rowcount:
                        return
                try:
                    with self.engine.begin() as conn:
                        conn.execute(insert(study_events).values(row))
                    return
                except IntegrityError:
                    continue  # another writer made the row first: add to it

    def workflow(self, study_uid: str) -> Workflow:
        """The study's timeline and status; :class:`NotFound` when nothing was observed
        of it and no archive holds it."""
        events = self.timeline(study_uid)
        instances = self.indexed_instances(study_uid)
        if not events and instances is None:
            raise NotFound(
                f"no study {study_uid}: nothing was observed of it and no archive holds it",
                hint="Find studies in the index with `pacsync search`.",
            )
        return Workflow.of(study_uid, events, instances, utc_now())

    def timeline(self, study_uid: str) -> list[StudyEvent]:
        """The study's events, oldest first."""
        query = select(study_events).where(_e.study_uid == study_uid).order_by(_e.at, _e.id)
        with translated("store"), self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StudyEvent(
                study_uid=r.study_uid,
                event=Event(r.event),
                source=r.source,
                at=r.at,
                first_at=r.first_at,
                instances=r.instances,
                detail=r.detail or {},
            )
            for r in rows
        ]

    def indexed_instances(self, study_uid: str) -> int | None:
        """The study's instances in the index across every archive; None when no
        archive holds it."""
        st = index.image_studies.c
        query = select(func.count(), func.sum(st.instance_count)).where(st.study_uid == study_uid)
        with translated("store"), self.engine.connect() as conn:
            found, total = conn.execute(query).one()
        return int(total or 0) if found else None

    def indexed_since(
        self, archive: str, since: dt.datetime, *, detail: dict[str, Any] | None = None
    ) -> int:
        """An ``indexed`` event (with its instance count) for each study of ``archive``
        the index changed since ``since``, in one statement; how many."""
        now = utc_now()
        st = index.image_studies.c
        changed = select(
            literal(archive, String),
            st.study_uid,
            literal(Event.INDEXED.value, String),
            literal(now, DateTime),
            st.instance_count,
            literal(detail, JSON),
        ).where(st.archive == archive, st.updated_at >= since)
        columns = ["source", "study_uid", "event", "at", "instances", "detail"]
        with translated("store"), self.engine.begin() as conn:
            return conn.execute(insert(study_events).from_select(columns, changed)).rowcount

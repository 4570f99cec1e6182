"""The worklist store on PostgreSQL: the migration, one scheduled step per accession
and step ID (a partial unique index), cancelling, and worklist queries."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from pacsync.db.store import open_store
from pacsync.db.tables import metadata
from pacsync.db.worklist import WorklistStore
from pacsync.domain.worklist import NewProcedure, ProcedureStatus
from pacsync.errors import InvalidState

pytestmark = pytest.mark.integration


def new(accession: str, **changes: object) -> NewProcedure:
    start = dt.datetime(2026, 11, 24, 9)
    given = {"accession_number": accession, "patient_id": "P1", "patient_name": "Müller^Jürgen",
             "modality": "CT", "station_ae": "CT1", "start": start}  # fmt: skip
    return NewProcedure.of({**given, **changes})


def test_worklist_on_postgresql(pg_url: str) -> None:
    engine = open_store(pg_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert [d for d in diff if "scheduled_procedures" in str(d)] == []
        store = WorklistStore(engine)
        first = store.add(new("A1", study_uid="2.25.1"), source="api")
        with pytest.raises(InvalidState, match="already scheduled"):
            store.add(new("A1"), source="api")
        store.add(new("A2", station_ae="MR1", modality="MR",
                      start=dt.datetime(2026, 11, 25, 8)), source="api")  # fmt: skip
        assert store.cancel(first.id).status is ProcedureStatus.CANCELLED
        again = store.add(new("A1"), source="api")
        keys = {"PatientName": "muller*", "ScheduledProcedureStepStartDate": "20261124"}
        found = store.find(keys)
        assert [p.id for p in found] == [again.id]
        assert found[0].procedure.patient_name == "Müller^Jürgen"
        by_station = store.find({"ScheduledStationAETitle": "MR1"})
        assert [p.procedure.accession_number for p in by_station] == ["A2"]
        items, total = store.page(status=None)
        assert total == 3
        assert [p.status for p in items].count(ProcedureStatus.CANCELLED) == 1
    finally:
        engine.dispose()

"""The worklist store: scheduling, the one scheduled step per accession and step ID,
cancelling, listing, and queries whose SQL narrowing agrees with the domain's matching."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine

from pacsync.db.worklist import WorklistStore
from pacsync.domain.worklist import NewProcedure, ProcedureStatus, matches
from pacsync.errors import InvalidState, NotFound

DAY = dt.datetime(2026, 11, 24)


def new(accession: str, **changes: Any) -> NewProcedure:
    given = {"accession_number": accession, "patient_id": "P1", "patient_name": "DOE^JOHN",
             "modality": "CT", "station_ae": "CT1", "start": DAY.replace(hour=9)}  # fmt: skip
    return NewProcedure.of({**given, **changes})


def test_a_scheduled_step_is_kept_as_given(engine: Engine) -> None:
    store = WorklistStore(engine)
    added = store.add(new("A1", study_uid="2.25.1", patient_name="Müller^Jürgen"), source="api")
    assert added.status is ProcedureStatus.SCHEDULED
    assert added.source == "api"
    got = store.get(added.id)
    assert got.procedure == added.procedure
    assert got.procedure.patient_name == "Müller^Jürgen"
    assert got.procedure.step_id == "A1"


def test_one_scheduled_step_per_accession_and_step_id(engine: Engine) -> None:
    store = WorklistStore(engine)
    first = store.add(new("A1"), source="cli")
    with pytest.raises(InvalidState, match="already scheduled"):
        store.add(new("A1"), source="cli")
    store.add(new("A1", step_id="2"), source="cli")  # another step of the same order
    store.cancel(first.id)
    again = store.add(new("A1"), source="cli")  # a cancelled step does not hold its place
    assert again.id != first.id


def test_cancel(engine: Engine) -> None:
    store = WorklistStore(engine)
    added = store.add(new("A1"), source="cli")
    assert store.cancel(added.id).status is ProcedureStatus.CANCELLED
    with pytest.raises(InvalidState, match="is cancelled"):
        store.cancel(added.id)
    with pytest.raises(NotFound) as missing:
        store.cancel(999)
    assert "pacsync worklist list" in missing.value.hint


def test_pages_by_start_time_with_filters(engine: Engine) -> None:
    store = WorklistStore(engine)
    late = store.add(new("A1", start=DAY.replace(hour=15)), source="cli")
    early = store.add(new("A2", start=DAY.replace(hour=8)), source="cli")
    other = store.add(new("A3", station_ae="MR1", start=DAY + dt.timedelta(days=1)), source="cli")
    store.cancel(other.id)
    items, total = store.page()
    assert ([p.id for p in items], total) == ([early.id, late.id], 2)
    items, total = store.page(status=None, limit=1, offset=2)
    assert ([p.id for p in items], total) == ([other.id], 3)
    items, _ = store.page(status=None, station_ae="MR1")
    assert [p.id for p in items] == [other.id]
    items, _ = store.page(start_from=DAY.replace(hour=12), start_to=DAY + dt.timedelta(days=1))
    assert [p.id for p in items] == [late.id]


QUERIES = [
    {},
    {"ScheduledStationAETitle": "CT1"},
    {"ScheduledStationAETitle": "CT*"},
    {"ScheduledStationAETitle": "MR1", "Modality": "MR"},
    {"Modality": "CT", "ScheduledProcedureStepStartDate": "20261124"},
    {"ScheduledProcedureStepStartDate": "20261125-"},
    {"ScheduledProcedureStepStartDate": "-20261124"},
    {"ScheduledProcedureStepStartDate": "20261124-20261125"},
    {"PatientID": "P2"},
    {"PatientID": "P*"},
    {"AccessionNumber": "A3"},
    {"PatientName": "doe*"},
    {"ScheduledProcedureStepStartTime": "1200-"},
]


@pytest.mark.parametrize("keys", QUERIES, ids=[str(q) for q in QUERIES])
def test_find_agrees_with_the_domains_matching(engine: Engine, keys: dict[str, str]) -> None:
    store = WorklistStore(engine)
    steps = [
        store.add(new("A1", start=DAY.replace(hour=23, minute=59)), source="t"),
        store.add(new("A2", start=DAY.replace(hour=8), patient_id="P2"), source="t"),
        store.add(
            new(
                "A3",
                station_ae="MR1",
                modality="MR",
                patient_name="ROE^R",
                start=DAY + dt.timedelta(days=1),
            ),
            source="t",
        ),
    ]
    cancelled = store.add(new("A4"), source="t")
    store.cancel(cancelled.id)
    in_start_order = sorted(steps, key=lambda p: p.procedure.start)
    expected = [p.id for p in in_start_order if matches(p, keys)]
    assert [p.id for p in store.find(keys)] == expected
    assert expected or keys  # the empty query matches everything scheduled

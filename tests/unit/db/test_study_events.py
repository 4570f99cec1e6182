"""The study timeline store: received instances accumulate in one row per study and
source, other events add a row each, and the workflow sums them up."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, insert, select

from pacsync.db.archive_tables import image_studies
from pacsync.db.store import open_store
from pacsync.db.study_events import StudyEvents, study_events
from pacsync.domain.study_workflow import Event, Status
from pacsync.errors import NotFound

STUDY = "1.2.840.99.1"
T0 = dt.datetime(2026, 3, 1, 8, 0)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


def rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(study_events)).scalar_one())


def index_study(engine: Engine, study_uid: str, instances: int, at: dt.datetime) -> None:
    with engine.begin() as conn:
        conn.execute(insert(image_studies).values(
            archive="nas", study_uid=study_uid, issuer="", patient_id="P1", name_folded="DOE",
            instance_count=instances, updated_at=at))  # fmt: skip


def test_received_instances_make_one_row_per_study_and_source(engine: Engine) -> None:
    events = StudyEvents(engine)
    for n in range(500):
        events.record(STUDY, Event.RECEIVED, source="inbox", at=T0 + dt.timedelta(seconds=n))
    events.record(STUDY, Event.RECEIVED, source="other", at=T0)
    assert rows(engine) == 2
    inbox = next(e for e in events.timeline(STUDY) if e.source == "inbox")
    assert (inbox.instances, inbox.first_at, inbox.at) == (
        500, T0, T0 + dt.timedelta(seconds=499),
    )  # fmt: skip


def test_an_earlier_instance_recorded_late_moves_the_first_time_only(engine: Engine) -> None:
    events = StudyEvents(engine)
    events.record(STUDY, Event.RECEIVED, source="inbox", at=T0)
    events.record(STUDY, Event.RECEIVED, source="inbox", at=T0 - dt.timedelta(minutes=1))
    (entry,) = events.timeline(STUDY)
    assert (entry.first_at, entry.at, entry.instances) == (T0 - dt.timedelta(minutes=1), T0, 2)


def test_threads_receiving_a_new_study_together_make_one_row(engine: Engine) -> None:
    events = StudyEvents(engine)

    def receive() -> None:
        for _ in range(20):
            events.record(STUDY, Event.RECEIVED, source="inbox")

    threads = [threading.Thread(target=receive) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (entry,) = events.timeline(STUDY)
    assert entry.instances == 80


def test_other_events_add_a_row_each_and_the_workflow_orders_them(engine: Engine) -> None:
    events = StudyEvents(engine)
    events.record(STUDY, Event.SENT, source="sectra", instances=3, at=T0 + dt.timedelta(hours=2))
    events.record(STUDY, Event.RECEIVED, source="inbox", at=T0)
    events.record(STUDY, Event.SENT, source="sectra", instances=3, at=T0 + dt.timedelta(hours=3),
                  detail={"failed": 0})  # fmt: skip
    workflow = events.workflow(STUDY)
    assert [e.event for e in workflow.events] == [Event.RECEIVED, Event.SENT, Event.SENT]
    assert workflow.status is Status.SENT
    assert workflow.indexed_instances is None
    assert workflow.as_dict()["events"][2]["detail"] == {"failed": 0}


def test_a_study_only_in_the_index_has_an_empty_timeline(engine: Engine) -> None:
    index_study(engine, STUDY, 4, T0)
    workflow = StudyEvents(engine).workflow(STUDY)
    assert (workflow.status, workflow.indexed_instances, workflow.events) == (
        Status.UNKNOWN, 4, [],
    )  # fmt: skip


def test_an_unknown_study_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound):
        StudyEvents(engine).workflow("1.2.3")


def test_studies_a_scan_changed_get_one_indexed_event_each(engine: Engine) -> None:
    index_study(engine, "1.2.840.99.1", 3, T0)
    index_study(engine, "1.2.840.99.2", 7, T0 + dt.timedelta(minutes=5))
    events = StudyEvents(engine)
    assert events.indexed_since("nas", T0 + dt.timedelta(minutes=1), detail={"scan": "online"}) == 1
    (entry,) = events.timeline("1.2.840.99.2")
    assert (entry.event, entry.source, entry.instances) == (Event.INDEXED, "nas", 7)
    assert entry.detail == {"scan": "online"}
    assert events.timeline("1.2.840.99.1") == []

"""Events produced by what pacsync does: the SCP's inbox records received instances
(one entry per study), an archive scan records the studies it indexed."""

from __future__ import annotations

from pathlib import Path

from imaging_data import realistic_ct
from pacsync import bootstrap
from pacsync.bootstrap import archives, dicom_nodes, dicom_scp
from pacsync.config import Settings
from pacsync.db.study_events import StudyEvents
from pacsync.domain.imaging import InstanceHeader
from pacsync.domain.study_workflow import Event

STUDY = "1.2.826.0.1.3680043.10.3002.1"
CT = "1.2.840.10008.5.1.4.1.1.2"


def settings_for(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, home=tmp_path / "home", database_url=None,  # type: ignore[call-arg]
                    secret_key=None, archive_workers=1)  # fmt: skip


def ct(folder: Path, number: int) -> Path:
    path = folder / f"{number}.dcm"
    realistic_ct(path, patient_id="P1", patient_name="DOE^JOHN", study_uid=STUDY,
                 series_uid=f"{STUDY}.1", sop_uid=f"{STUDY}.1.{number}", instance_number=number,
                 rows=16, columns=16)  # fmt: skip
    return path


def test_instances_received_by_the_inbox_accumulate_on_the_timeline(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = bootstrap.store(settings)
    inbox = dicom_scp.inbox(settings, store)
    sources = tmp_path / "sources"
    sources.mkdir()
    for number in (1, 2, 3):
        data = ct(sources, number).read_bytes()
        inbox.receive(data, f"{STUDY}.1.{number}", CT)
        inbox.receive(data, f"{STUDY}.1.{number}", CT)  # the same again: not counted
    inbox.close()  # the events are written by a thread of their own: all of them by now
    (received,) = StudyEvents(store.engine).timeline(STUDY)
    assert (received.event, received.source, received.instances) == (Event.RECEIVED, "inbox", 3)
    assert received.first_at is not None
    assert received.first_at <= received.at
    store.engine.dispose()


def test_received_events_of_several_studies_are_added_up_per_study(tmp_path: Path) -> None:
    store = bootstrap.store(settings_for(tmp_path))
    events = StudyEvents(store.engine)
    received = dicom_scp.ReceivedEvents(events)
    other = f"{STUDY}.2"
    for study in (STUDY, other, STUDY, STUDY, other):
        received(InstanceHeader(sop_instance_uid="1.2.3", study_instance_uid=study))
    received.close()
    received(InstanceHeader(sop_instance_uid="1.2.4", study_instance_uid=other))
    received.close()  # told again after closing: written at the next close
    counts = {s: [(e.event, e.instances) for e in events.timeline(s)] for s in (STUDY, other)}
    assert counts == {STUDY: [(Event.RECEIVED, 3)], other: [(Event.RECEIVED, 3)]}
    store.engine.dispose()


def test_a_scan_records_the_studies_it_indexed_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = bootstrap.store(settings)
    root = tmp_path / "nas"
    root.mkdir()
    for number in (1, 2):
        ct(root, number)
    store.archives.add("nas", "dicom", str(root))
    archives.scan(settings, store, "nas")
    archives.scan(settings, store, "nas")  # nothing new: nothing recorded
    (indexed,) = StudyEvents(store.engine).timeline(STUDY)
    assert (indexed.event, indexed.source, indexed.instances) == (Event.INDEXED, "nas", 2)
    assert indexed.detail == {"scan": "online"}
    store.engine.dispose()


def test_retrievals_and_sends_are_recorded_when_they_brought_instances(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = bootstrap.store(settings)
    dicom_nodes.record_retrieved(store, "sectra", STUDY, how="move", completed=0, failed=2)
    dicom_nodes.record_retrieved(store, "sectra", STUDY, how="get", completed=5, into="nas")
    dicom_nodes.record_sent(store, "sectra", STUDY, stored=5)
    events = StudyEvents(store.engine).timeline(STUDY)
    assert [(e.event, e.instances) for e in events] == [(Event.RETRIEVED, 5), (Event.SENT, 5)]
    assert events[0].detail["how"] == "get"
    store.engine.dispose()

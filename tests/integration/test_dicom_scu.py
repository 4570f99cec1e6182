"""pacsync as a DICOM SCU against a real Orthanc: echo, find, move (to a DCMTK
storescp), get, store, failover and unreachable nodes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from imaging_data import realistic_ct
from orthanc import (
    DESTINATION_AE,
    LOOPBACK,
    ORTHANC_AE,
    PACSYNC_AE,
    Orthanc,
    StoreScp,
    Unavailable,
    free_port,
    late_relay,
    orthanc,
    storescp,
    unavailable,
)
from orthanc import silent_port as silent_listener
from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.config import Settings
from pacsync.connectors.dicom import retrieve, scu, storage
from pacsync.connectors.dicom.association import Session
from pacsync.connectors.dicom.metrics import RECORDER
from pacsync.connectors.dicom.query import Level, date_range, value_list
from pacsync.connectors.dicom.status import Category
from pacsync.domain.access import Role
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import AssociationRejected, ConnectionTimeout, DimseFailure

with warnings.catch_warnings():  # starlette would rather use httpx2, which is not installed
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Study:
    patient_id: str
    patient_name: str
    study_uid: str
    series_uid: str
    date: str
    modality: str
    instances: int


STUDIES = (
    Study("SCU001", "DOE^JOHN", "2.25.9001", "2.25.9001.1", "20240105", "CT", 3),
    Study("SCU002", "DOE^JANE", "2.25.9002", "2.25.9002.1", "20240310", "MR", 2),
    Study("SCU003", "SMITH^ANNA", "2.25.9003", "2.25.9003.1", "20230720", "CT", 2),
)


def write_study(folder: Path, study: Study) -> list[Path]:
    files = []
    for n in range(1, study.instances + 1):
        path = folder / study.study_uid / f"{n}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        realistic_ct(
            path,
            patient_id=study.patient_id,
            patient_name=study.patient_name,
            study_uid=study.study_uid,
            series_uid=study.series_uid,
            sop_uid=f"{study.series_uid}.{n}",
            instance_number=n,
            modality=study.modality,
            study_date=study.date,
            rows=64,
            columns=64,
        )
        files.append(path)
    return files


@dataclass
class Peers:
    orthanc: Orthanc
    destination: StoreScp
    files: dict[str, list[Path]]

    def node(self, **options: object) -> DicomNode:
        return DicomNode.of(
            "orthanc",
            self.orthanc.node_url,
            {
                "calling_ae": PACSYNC_AE,
                "timeouts": {"connect": 3, "acse": 5, "dimse": 10, "network": 10},
                **options,
            },
        )


@pytest.fixture(scope="module")
def peers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Peers]:
    base = tmp_path_factory.mktemp("dicom-scu")
    try:
        with (
            storescp(base / "storescp") as destination,
            orthanc(base / "orthanc", pacsync_port=free_port(), destination=destination) as server,
        ):
            files = {s.study_uid: write_study(base / "studies", s) for s in STUDIES}
            server.upload([f for group in files.values() for f in group])
            yield Peers(server, destination, files)
    except Unavailable as missing:
        unavailable(request.config, str(missing))


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    scu.clear_query_cache()


def test_echo_answers_with_a_response_time(peers: Peers) -> None:
    took = scu.echo(peers.node())
    assert 0 < took < 1


def test_wrong_called_ae_is_rejected_with_the_reason(peers: Peers) -> None:
    url = f"dicom://NOT_ORTHANC@{LOOPBACK}:{peers.orthanc.dicom_port}"
    node = DicomNode.of("wrong", url, {"calling_ae": PACSYNC_AE})
    # Orthanc closes the socket right after its A-ASSOCIATE-RJ; now and then the close is
    # read first and the attempt is an abort (transient): the rejection comes within a few
    rejected: AssociationRejected | None = None
    for _ in range(5):
        try:
            scu.echo(node)
        except AssociationRejected as refused:
            rejected = refused
            break
        except ConnectionTimeout:  # an abort: transient, tried again
            continue
    assert rejected is not None, "the node never answered with its A-ASSOCIATE-RJ"
    assert "called AE title not recognised" in rejected.message
    assert "'wrong'" in rejected.message
    assert not rejected.transient


def test_find_at_each_level(peers: Peers) -> None:
    node = peers.node()
    patients = scu.find(node, Level.PATIENT, {"PatientID": "SCU00*"})
    assert {p["PatientID"] for p in patients} == {"SCU001", "SCU002", "SCU003"}
    studies = scu.find(node, Level.STUDY, {"PatientName": "DOE^*"})
    assert {s["StudyInstanceUID"] for s in studies} == {"2.25.9001", "2.25.9002"}
    assert {s["PatientName"] for s in studies} == {"DOE^JOHN", "DOE^JANE"}
    series = scu.find(node, Level.SERIES, {"StudyInstanceUID": "2.25.9001"})
    assert [(s["SeriesInstanceUID"], s["Modality"]) for s in series] == [("2.25.9001.1", "CT")]
    images = scu.find(
        node, Level.IMAGE, {"StudyInstanceUID": "2.25.9001", "SeriesInstanceUID": "2.25.9001.1"}
    )
    assert sorted(i["SOPInstanceUID"] for i in images) == [f"2.25.9001.1.{n}" for n in (1, 2, 3)]


def test_find_by_date_range_and_modality_list(peers: Peers) -> None:
    node = peers.node()
    in_2024 = scu.find(
        node,
        Level.STUDY,
        {"PatientID": "SCU*", "StudyDate": date_range("2024-01-01", "2024-12-31")},
    )
    assert {s["StudyInstanceUID"] for s in in_2024} == {"2.25.9001", "2.25.9002"}
    ct_2024 = scu.find(
        node,
        Level.STUDY,
        {"PatientID": "SCU*", "StudyDate": "20240101-", "ModalitiesInStudy": value_list(["CT"])},
    )
    assert [s["StudyInstanceUID"] for s in ct_2024] == ["2.25.9001"]
    either = scu.find(
        node, Level.STUDY, {"PatientID": "SCU*", "ModalitiesInStudy": value_list(["mr", "ct"])}
    )
    assert len(either) == 3


def test_find_stops_at_the_limit_and_the_association_stays_usable(peers: Peers) -> None:
    with Session(peers.node()) as session:
        found = scu.find(
            session,
            Level.IMAGE,
            {"StudyInstanceUID": "2.25.9001", "SeriesInstanceUID": "2.25.9001.1"},
            limit=1,
        )
        assert len(found) == 1
        assert len(scu.find(session, Level.PATIENT, {"PatientID": "SCU00*"})) == 3
        assert scu.echo(session) < 1


def test_find_answers_are_cached_for_the_node_ttl(peers: Peers) -> None:
    node = peers.node(query_cache_s=60)
    first = scu.find(node, Level.STUDY, {"PatientID": "SCU001"})
    peers.orthanc.upload(
        write_study(
            peers.orthanc.folder / "extra",
            Study("SCU001", "DOE^JOHN", "2.25.9009", "2.25.9009.1", "20240106", "CT", 1),
        )
    )
    try:
        assert scu.find(node, Level.STUDY, {"PatientID": "SCU001"}) == first
        fresh = scu.find(node, Level.STUDY, {"PatientID": "SCU001"}, cached=False)
        assert len(fresh) == len(first) + 1
    finally:
        peers.orthanc.delete_study("2.25.9009")


def test_tcp_nodelay_removes_the_delayed_ack_stall(peers: Peers) -> None:
    keys = {"PatientID": "SCU*"}

    def round_trips(nodelay: bool) -> float:
        with Session(peers.node(query_cache_s=0), nodelay=nodelay) as session:
            scu.echo(session)
            started = time.perf_counter()
            for _ in range(5):
                scu.find(session, Level.STUDY, keys, cached=False)
            return (time.perf_counter() - started) / 5

    with_nodelay, without = round_trips(True), round_trips(False)
    print(
        f"C-FIND round trip: {with_nodelay * 1000:.1f} ms with TCP_NODELAY, "
        f"{without * 1000:.1f} ms without"
    )
    assert with_nodelay < without


def test_move_to_storescp_reports_progress(peers: Peers) -> None:
    seen: list[retrieve.SubOperations] = []
    result = retrieve.move(peers.node(), DESTINATION_AE, "2.25.9001", progress=seen.append)
    assert result.category is Category.SUCCESS
    assert result.counts.completed == 3
    assert result.counts.failed == 0
    assert any(c.remaining > 0 for c in seen)
    received = {
        str(dcmread(p, stop_before_pixels=True).SOPInstanceUID)
        for p in peers.destination.received()
    }
    assert {f"2.25.9001.1.{n}" for n in (1, 2, 3)} <= received


def test_move_to_an_unknown_destination_names_the_status(peers: Peers) -> None:
    with pytest.raises(DimseFailure) as caught:
        retrieve.move(peers.node(), "NOWHERE", "2.25.9001")
    assert "0xA801" in caught.value.message or "0xC" in caught.value.message


def test_get_series_into_a_callback(peers: Peers) -> None:
    received: list[bytes] = []
    result = retrieve.get(peers.node(), received.append, "2.25.9002", series_uid="2.25.9002.1")
    assert result.category is Category.SUCCESS
    assert result.counts.completed == 2
    uids = sorted(str(dcmread(__import__("io").BytesIO(b)).SOPInstanceUID) for b in received)
    assert uids == ["2.25.9002.1.1", "2.25.9002.1.2"]


def test_store_files_and_bytes(peers: Peers, tmp_path: Path) -> None:
    study = Study("SCU004", "ROE^RICK", "2.25.9004", "2.25.9004.1", "20240201", "CT", 2)
    first, second = write_study(tmp_path, study)
    results = storage.store(peers.node(), [first, second.read_bytes()])
    assert [r.category for r in results] == [Category.SUCCESS, Category.SUCCESS]
    try:
        assert "2.25.9004" in peers.orthanc.studies()
    finally:
        peers.orthanc.delete_study("2.25.9004")


def test_failover_to_the_secondary_when_the_primary_is_closed(peers: Peers) -> None:
    closed = f"dicom://{ORTHANC_AE}@{LOOPBACK}:{free_port()}"
    node = DicomNode.of(
        "ha", closed, {"calling_ae": PACSYNC_AE, "secondary": peers.orthanc.node_url}
    )
    assert scu.echo(node) < 1


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_listener() as port:
        yield port


def test_an_unreachable_node_times_out_within_the_connect_timeout(silent_port: int) -> None:
    url = f"dicom://FAR@{LOOPBACK}:{silent_port}"
    node = DicomNode.of("far", url, {"timeouts": {"connect": 1, "acse": 1},
                                     "retry": {"attempts": 1}})  # fmt: skip
    started = time.monotonic()
    with pytest.raises(ConnectionTimeout) as caught:
        scu.echo(node)
    assert time.monotonic() - started < 2.5
    assert "'far'" in caught.value.message
    assert caught.value.transient


def test_a_closed_port_is_a_transient_connection_error() -> None:
    node = DicomNode.of("off", f"dicom://OFF@{LOOPBACK}:{free_port()}", {"retry": {"attempts": 1}})
    with pytest.raises(ConnectionTimeout, match="cannot be reached"):
        scu.echo(node)


def test_a_node_that_refuses_at_first_is_tried_again_until_it_answers(peers: Peers) -> None:
    with late_relay(peers.orthanc.dicom_port, after_s=1.0) as port:
        node = DicomNode.of(
            "late",
            f"dicom://{ORTHANC_AE}@{LOOPBACK}:{port}",
            {"calling_ae": PACSYNC_AE, "retry": {"attempts": 6, "backoff_s": 0.3}},
        )
        started = time.monotonic()
        found = scu.find(node, Level.STUDY, {"PatientID": "SCU001"}, cached=False)
        waited = time.monotonic() - started
    assert [f["StudyInstanceUID"] for f in found] == ["2.25.9001"]
    assert waited >= 1.0  # nothing listened for the first second
    rate = RECORDER.error_rate("late")
    assert rate.errors >= 1  # refused attempts, each recorded as unreachable
    assert rate.operations == rate.errors + 1


def test_a_dimse_failure_is_not_tried_again(peers: Peers) -> None:
    node = peers.node(retry={"attempts": 4, "backoff_s": 0.1})
    node = node.model_copy(update={"name": "terminal"})
    with pytest.raises(DimseFailure):
        retrieve.move(node, "NOWHERE", "2.25.9001")
    assert RECORDER.error_rate("terminal").operations == 1


def test_retries_and_failover_together(peers: Peers) -> None:
    """Each attempt tries the primary (closed here), then the secondary."""
    closed = f"dicom://{ORTHANC_AE}@{LOOPBACK}:{free_port()}"
    with late_relay(peers.orthanc.dicom_port, after_s=0.8) as port:
        node = DicomNode.of(
            "ha-late",
            closed,
            {
                "calling_ae": PACSYNC_AE,
                "secondary": f"dicom://{ORTHANC_AE}@{LOOPBACK}:{port}",
                "retry": {"attempts": 6, "backoff_s": 0.3},
            },
        )
        assert scu.echo(node) < 1
    rate = RECORDER.error_rate("ha-late")
    assert rate.errors >= 1
    assert rate.operations == rate.errors + 1


# -- the CLI, end to end ------------------------------------------------------------------------


def added(pacsync: Any, peers: Peers, name: str = "orthanc") -> None:
    done = pacsync("dicom", "node", "add", name, peers.orthanc.node_url,
                   "--calling-ae", PACSYNC_AE, "--option", "timeouts.connect=3",
                   "--option", "query_cache_s=0")  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_cli_adds_lists_echoes_and_finds(pacsync: Any, peers: Peers) -> None:
    added(pacsync, peers)
    listed = pacsync("dicom", "node", "list")
    assert "orthanc" in listed.stdout
    assert PACSYNC_AE in listed.stdout
    echoed = pacsync("dicom", "echo", "orthanc")
    assert echoed.returncode == 0, echoed.stderr
    assert "echo ok in" in echoed.stdout
    found = pacsync("dicom", "find", "orthanc", "--name", "DOE^*", "--from", "2024-01-01",
                    "--to", "2024-12-31", "--modality", "CT", "--json")  # fmt: skip
    assert found.returncode == 0, found.stderr
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert [r["StudyInstanceUID"] for r in rows] == ["2.25.9001"]
    table = pacsync("dicom", "find", "orthanc", "--level", "patient", "--patient-id", "SCU*",
                    "--limit", "2")  # fmt: skip
    assert "2 patient answer(s)" in table.stdout


def test_cli_errors_have_a_code_and_a_hint(pacsync: Any, peers: Peers) -> None:
    url = f"dicom://WRONG@{LOOPBACK}:{peers.orthanc.dicom_port}"
    assert pacsync("dicom", "node", "add", "wrong", url, "--calling-ae", PACSYNC_AE).returncode == 0
    rejected = pacsync("dicom", "echo", "wrong")
    assert rejected.returncode == 2
    assert "PACS-501" in rejected.stderr
    assert "called AE title not recognised" in rejected.stderr
    assert "hint:" in rejected.stderr
    bad = pacsync("dicom", "node", "add", "bad", "dicom://PACS@host:104", "-o", "max_pdu=-5")
    assert bad.returncode == 2
    assert "PACS-101" in bad.stderr
    assert "max_pdu" in bad.stderr
    missing = pacsync("dicom", "echo", "nobody")
    assert "PACS-104" in missing.stderr


def test_cli_moves_with_progress(pacsync: Any, peers: Peers) -> None:
    added(pacsync, peers)
    moved = pacsync("dicom", "move", "orthanc", "--study", "2.25.9003", "--to", DESTINATION_AE)
    assert moved.returncode == 0, moved.stderr
    assert f"moved 2 instance(s) to {DESTINATION_AE}" in moved.stdout
    assert "2/2" in moved.stdout


def test_cli_gets_into_a_folder_and_into_an_archive(
    pacsync: Any, peers: Peers, tmp_path: Path
) -> None:
    added(pacsync, peers)
    got = pacsync("dicom", "get", "orthanc", "--study", "2.25.9001", "--into", tmp_path / "got")
    assert got.returncode == 0, got.stderr
    assert len(list((tmp_path / "got" / "2.25.9001" / "2.25.9001.1").glob("*.dcm"))) == 3
    root = tmp_path / "inbox"
    root.mkdir()
    assert pacsync("archive", "add", "inbox", "dicom", root).returncode == 0
    into = pacsync("dicom", "get", "orthanc", "--study", "2.25.9002", "--into-archive", "inbox")
    assert into.returncode == 0, into.stderr
    assert "2 indexed" in into.stdout
    searched = pacsync("search", "--id", "SCU002", "--json")
    assert "2.25.9002" in searched.stdout


def test_cli_stores_an_indexed_study(pacsync: Any, peers: Peers, tmp_path: Path) -> None:
    added(pacsync, peers)
    study = Study("SCU005", "POE^EDGAR", "2.25.9005", "2.25.9005.1", "20240401", "CT", 2)
    write_study(tmp_path / "nas", study)
    assert pacsync("archive", "add", "nas", "dicom", tmp_path / "nas").returncode == 0
    assert pacsync("archive", "scan", "nas", "--quiet").returncode == 0
    try:
        stored = pacsync("dicom", "store", "orthanc", "--study", "2.25.9005")
        assert stored.returncode == 0, stored.stderr
        assert "stored 2 of 2 instance(s) on orthanc" in stored.stdout
        assert "2.25.9005" in peers.orthanc.studies()
        one = write_study(tmp_path / "loose", Study("SCU006", "X^Y", "2.25.9006", "2.25.9006.1",
                                                    "20240402", "CT", 1))  # fmt: skip
        sent = pacsync("dicom", "store", "orthanc", "--file", one[0])
        assert "stored 1 of 1" in sent.stdout, sent.stderr
    finally:
        peers.orthanc.delete_study("2.25.9005")
        peers.orthanc.delete_study("2.25.9006")


class Worker:
    """A ``pacsync worker`` serving the dicom-retrieve queue, stopped by SIGTERM."""

    def __init__(self, pacsync: Any) -> None:
        self.process = pacsync.start("worker", "--id", "retrieve-test", "--queues",
                                     "dicom-retrieve")  # fmt: skip
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any("ready" in line for line in self.lines):
            assert self.process.poll() is None, "".join(self.lines)
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=10)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def _job_id(queued: subprocess.CompletedProcess[str]) -> str:
    assert queued.returncode == 0, queued.stderr
    found = re.search(r"job (\w{8}) queued", queued.stdout)
    assert found, queued.stdout
    return found.group(1)


def _until_ended(api: TestClient, job_id: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        listed = api.get("/api/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200, listed.text
        jobs = [j for j in listed.json()["items"] if j["id"].startswith(job_id)]
        if jobs and jobs[0]["status"] not in ("queued", "running"):
            return dict(jobs[0])
        assert time.monotonic() < deadline, f"job {job_id} did not end: {jobs}"
        time.sleep(0.3)


def test_background_moves_and_gets_are_jobs_with_sub_operation_progress(
    pacsync: Any, peers: Peers, tmp_path: Path
) -> None:
    added(pacsync, peers)
    settings = Settings(_env_file=None, home=Path(pacsync.env["PACSYNC_HOME"]),  # type: ignore[call-arg]
                        database_url=None, secret_key=None)  # fmt: skip
    store = bootstrap.store(settings)
    token = store.api_keys.create("retrieve-test", Role.VIEWER)[1]
    worker = Worker(pacsync)
    try:
        worker.wait_ready()
        moved = _job_id(pacsync("dicom", "move", "orthanc", "--study", "2.25.9001", "--to",
                                DESTINATION_AE, "--background"))  # fmt: skip
        got = _job_id(pacsync("dicom", "get", "orthanc", "--study", "2.25.9002", "--into",
                              tmp_path / "got", "--background"))  # fmt: skip
        nowhere = _job_id(pacsync("dicom", "move", "orthanc", "--study", "2.25.9001", "--to",
                                  "NOWHERE", "--background"))  # fmt: skip
        app = create_app(settings, store=store)
        with TestClient(app) as api:
            move_job = _until_ended(api, moved, token)
            get_job = _until_ended(api, got, token)
            failed_job = _until_ended(api, nowhere, token)
    finally:
        worker.stop()
    assert (move_job["kind"], move_job["queue"], move_job["pipeline"]) == (
        "dicom-retrieve", "dicom-retrieve", "orthanc")  # fmt: skip
    assert move_job["status"] == "succeeded", move_job
    counts = {"read": 3, "total": 3, "completed": 3, "remaining": 0, "failed": 0, "warning": 0}
    assert move_job["progress"]["entities"]["instances"] == counts
    assert move_job["records"] == 3
    assert get_job["status"] == "succeeded", get_job
    assert get_job["progress"]["entities"]["instances"]["completed"] == 2
    assert len(list((tmp_path / "got" / "2.25.9002").rglob("*.dcm"))) == 2
    assert failed_job["status"] == "failed"
    assert failed_job["error"]["code"] == "PACS-502"
    listed = pacsync("jobs", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line.split("│") for line in listed.stdout.splitlines() if moved in line]
    cells = [cell.strip() for cell in row[1:-1]]
    assert (cells[1], cells[3], cells[6]) == ("orthanc", "succeeded", "3"), cells
    shown = pacsync("jobs", "show", moved)
    assert "instances: 3/3 records" in shown.stdout, shown.stdout
    assert '"remaining": 0' in shown.stdout
    timeline = pacsync("study", "timeline", "2.25.9001", "--json")
    events = json.loads(timeline.stdout)["events"]
    assert [(e["event"], e["detail"]["into"]) for e in events if e["event"] == "retrieved"] == [
        ("retrieved", DESTINATION_AE)]  # fmt: skip
    store.engine.dispose()

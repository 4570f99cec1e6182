"""Retrieve jobs: what a move or get job asks for, refused when incomplete, the
sub-operation counts as job progress, and how a job ends (on a fake retriever)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pacsync import bootstrap
from pacsync.bootstrap import dicom_nodes
from pacsync.bootstrap.dicom_retrieve import (
    KIND,
    RetrieveJobs,
    progress_of,
    retrieve_request,
)
from pacsync.bootstrap.jobs import create_job
from pacsync.config import Settings
from pacsync.connectors.dicom.retrieve import Progress, RetrieveResult, SubOperations
from pacsync.db.study_events import StudyEvents
from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import ConnectionTimeout, InvalidRequest, PacsyncError
from pacsync.jobs.queues import DICOM_RETRIEVE, QUEUES
from pacsync.jobs.request import JobRequest


def test_a_move_job_runs_one_at_a_time_per_node() -> None:
    request = retrieve_request("sectra", "move", "2.25.1", series="2.25.1.1", destination="WS1")
    assert (request.kind, request.queue, request.partition_key) == (KIND, DICOM_RETRIEVE, "sectra")
    assert QUEUES[DICOM_RETRIEVE].partition_by == "connection"
    assert QUEUES[DICOM_RETRIEVE].partition_concurrency == 1
    assert request.args == {"how": "move", "study": "2.25.1", "series": "2.25.1.1",
                            "instance": None, "destination": "WS1", "into": None,
                            "into_archive": None}  # fmt: skip
    assert JobRequest.from_dict(request.as_dict()) == request


def test_a_get_job_keeps_an_absolute_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    request = retrieve_request("sectra", "get", "2.25.1", into=Path("got"))
    assert request.args["into"] == str(tmp_path / "got")


@pytest.mark.parametrize(
    ("how", "options", "hint"),
    [
        ("move", {}, "--to"),
        ("get", {}, "--into"),
        ("get", {"into": Path("/tmp/a"), "into_archive": "inbox"}, "either"),
        ("echo", {"destination": "X"}, "move or get"),
    ],
)
def test_an_incomplete_retrieve_is_refused(how: str, options: dict[str, object], hint: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        retrieve_request("sectra", how, "2.25.1", **options)  # type: ignore[arg-type]
    assert hint in refused.value.hint + refused.value.message


def test_progress_reads_as_records_done_of_total() -> None:
    progress = progress_of(SubOperations(completed=5, remaining=3, failed=1, warning=1))
    counts = {"read": 7, "total": 10, "completed": 5, "remaining": 3, "failed": 1, "warning": 1}
    assert progress == {"entities": {"instances": counts}}


class FakeRetriever:
    """Answers a C-MOVE with the given pending counts, then a final result or an error."""

    def __init__(self, pending: list[SubOperations], final: RetrieveResult | PacsyncError) -> None:
        self.pending, self.final = pending, final
        self.asked: list[tuple[str, str, dict[str, Any]]] = []

    def move(self, node: DicomNode, destination_ae: str, study_uid: str, *,
             progress: Progress = lambda counts: None, **where: Any) -> RetrieveResult:  # fmt: skip
        self.asked.append((node.name, destination_ae, where))
        for counts in self.pending:
            progress(counts)
        if isinstance(self.final, PacsyncError):
            raise self.final
        progress(self.final.counts)
        return self.final

    def get(self, node: DicomNode, into: Callable[[bytes], None], study_uid: str, *,
            progress: Progress = lambda counts: None, **where: Any) -> RetrieveResult:  # fmt: skip
        raise AssertionError("not asked")


@pytest.fixture
def store(tmp_path: Path) -> bootstrap.Store:
    settings = Settings(_env_file=None, home=tmp_path / "home", database_url=None,  # type: ignore[call-arg]
                        secret_key=None)  # fmt: skip
    held = bootstrap.store(settings)
    dicom_nodes.add_node(held, "pacs", "dicom://PACS@127.0.0.1:11112", {})
    return held


def run_move(store: bootstrap.Store, retriever: FakeRetriever) -> tuple[dict[str, Any], Any]:
    request = retrieve_request("pacs", "move", "2.25.1", destination="WS1")
    job_id, _ = create_job(store, request)
    shown: list[SubOperations] = []
    jobs = RetrieveJobs(Settings(_env_file=None, home=Path("unused")), store, "test",  # type: ignore[call-arg]
                        progress=lambda: shown.append, retriever=retriever)  # fmt: skip
    outcome = jobs.run(job_id, "pacs", request.args)
    job = store.jobs.get(job_id)
    assert job is not None
    assert shown[: len(retriever.pending)] == retriever.pending
    return outcome, job


def test_failed_sub_operations_fail_the_job_and_the_rest_is_on_the_timeline(
    store: bootstrap.Store,
) -> None:
    pending = [SubOperations(remaining=3), SubOperations(completed=1, remaining=2)]
    final = RetrieveResult(0xB000, SubOperations(completed=2, failed=1), ("2.25.1.1.3",))
    retriever = FakeRetriever(pending, final)
    outcome, job = run_move(store, retriever)
    assert retriever.asked == [("pacs", "WS1", {"series_uid": None, "sop_uid": None})]
    assert (outcome["status"], outcome["completed"], outcome["failed"]) == ("failed", 2, 1)
    assert (job.status, job.error_code) == ("failed", "PACS-502")
    assert "1 of 3 instance(s) of study 2.25.1 failed to move" in (job.error_message or "")
    assert job.progress["entities"]["instances"]["read"] == 3
    (event,) = StudyEvents(store.engine).timeline("2.25.1")
    assert (event.event.value, event.instances, event.detail["failed"]) == ("retrieved", 2, 1)


def test_a_node_lost_mid_move_fails_the_job_keeping_the_progress_so_far(
    store: bootstrap.Store,
) -> None:
    lost = ConnectionTimeout("DICOM node 'pacs' ended the association during C-MOVE")
    outcome, job = run_move(store, FakeRetriever([SubOperations(completed=4, remaining=6)], lost))
    assert outcome["error"]["code"] == "PACS-001"
    assert (job.status, job.error_code) == ("failed", "PACS-001")
    so_far = {"read": 4, "total": 10, "completed": 4, "remaining": 6, "failed": 0, "warning": 0}
    assert job.progress["entities"]["instances"] == so_far
    assert StudyEvents(store.engine).timeline("2.25.1") == []


def test_a_complete_move_succeeds(store: bootstrap.Store) -> None:
    final = RetrieveResult(0x0000, SubOperations(completed=3))
    outcome, job = run_move(store, FakeRetriever([SubOperations(remaining=3)], final))
    assert (outcome["status"], job.status, job.error_code) == ("succeeded", "succeeded", None)
    assert job.progress["entities"]["instances"]["completed"] == 3

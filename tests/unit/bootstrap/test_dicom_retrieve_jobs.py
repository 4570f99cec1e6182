"""Retrieve jobs: what a move or get job asks for, refused when incomplete, and the
sub-operation counts as job progress."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsync.bootstrap.dicom_retrieve import KIND, progress_of, retrieve_request
from pacsync.connectors.dicom.retrieve import SubOperations
from pacsync.errors import InvalidRequest
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

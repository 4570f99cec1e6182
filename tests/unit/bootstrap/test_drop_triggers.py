"""Runs nobody asked for: a pipeline's run queued when complete files wait in its drop
folders, once per set of files and retry period."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from pacsync.bootstrap.drops import DropTriggers
from pacsync.config import Settings
from pacsync.jobs.queues import SYNC
from pacsync.jobs.request import JobRequest

NOW = 1_800_000_000.0

PIPELINE = """\
name: pms
connections:
  exports: {{url: "file:{root}"}}
  warehouse: {{url: "sqlite:///{root}/w.db"}}
source: {{connection: exports}}
destination: {{connection: warehouse}}
entities:
  patients:
    source: {{drop: patients, pattern: "*.csv", format: csv, key: [id], quiet_s: {quiet}}}
    target: {{table: patients}}
    fields: {{id: {{from: id}}}}
  visits:
    source: {{drop: visits, pattern: "*.csv", format: csv, key: [id], quiet_s: {quiet}}}
    target: {{table: visits}}
    fields: {{id: {{from: id}}}}
"""


class Queue:
    def __init__(self) -> None:
        self.requests: list[JobRequest] = []

    def __call__(self, request: JobRequest) -> tuple[str, bool]:
        created = request.key not in {r.key for r in self.requests}
        self.requests.append(request)
        return request.key, created


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    (folder / "pms.yaml").write_text(PIPELINE.format(root=tmp_path / "drops", quiet=5))
    (folder / "sql.yaml").write_text(
        PIPELINE.format(root=tmp_path, quiet=5)
        .replace("name: pms", "name: sql")
        .replace("source: {connection: exports}", "source: {connection: warehouse}")
        .replace("drop: patients,", "table: P,")
        .replace("drop: visits,", "table: V,")
        .replace(', pattern: "*.csv", format: csv', "")
        .replace(", quiet_s: 5", "")
    )
    (folder / "broken.yaml").write_text("name: [")
    return Settings(home=tmp_path / "home", pipelines_dir=folder)


def put(folder: Path, name: str, age_s: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("id\n1\n")
    os.utime(path, (NOW - age_s, NOW - age_s))


def test_complete_files_queue_one_run_of_their_entities(settings: Settings, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    put(drops / "visits", "v1.csv", 60)
    put(drops / "patients", "p1.csv", 1)  # still being written
    queue = Queue()
    clock = [NOW]
    triggers = DropTriggers(settings, queue, retry_s=300, clock=lambda: clock[0])

    first = triggers.tick()
    again = triggers.tick()

    assert first == again
    assert len(first) == 1
    request = queue.requests[0]
    assert (request.kind, request.pipeline, request.queue) == ("sync", "pms", SYNC)
    assert (request.entities, request.trigger, request.mode) == (["visits"], "watch", "incremental")
    assert request.path == str((settings.pipelines_dir or tmp_path) / "pms.yaml")

    clock[0] = NOW + 10  # the patients file has settled: another set of files, another job
    assert triggers.tick() != first
    assert queue.requests[-1].entities == ["patients", "visits"]

    clock[0] = NOW + 400  # the same files still there after the retry period: tried again
    later = triggers.tick()
    assert later != first
    assert queue.requests[-1].key == later[0]


def test_no_files_no_job(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "drops" / "patients").mkdir(parents=True)
    queue = Queue()

    assert DropTriggers(settings, queue, clock=lambda: NOW).tick() == []
    assert queue.requests == []


def test_a_new_file_wakes_the_watcher(tmp_path: Path) -> None:
    folder = tmp_path / "pipelines"
    folder.mkdir()
    drops = tmp_path / "drops"
    (drops / "patients").mkdir(parents=True)
    (drops / "visits").mkdir(parents=True)
    (folder / "pms.yaml").write_text(PIPELINE.format(root=drops, quiet=0))
    queue = Queue()
    triggers = DropTriggers(
        Settings(home=tmp_path / "home", pipelines_dir=folder), queue, every_s=60
    )
    triggers.start()
    try:
        deadline = time.monotonic() + 10
        while not triggers._watched and time.monotonic() < deadline:  # the first look is done
            time.sleep(0.02)
        (drops / "patients" / "p1.csv").write_text("id\n1\n")
        while not queue.requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        triggers.stop()
        triggers.join(timeout=10)
    assert [r.entities for r in queue.requests][:1] == [["patients"]]


def test_a_missing_drop_folder_is_reported_once_until_it_is_back(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "drops" / "patients").mkdir(parents=True)
    triggers = DropTriggers(settings, Queue(), clock=lambda: NOW)

    with caplog.at_level(logging.WARNING, logger="pacsync.drops"):
        triggers.tick()
        triggers.tick()
        (tmp_path / "drops" / "visits").mkdir()
        triggers.tick()
        (tmp_path / "drops" / "visits").rmdir()
        triggers.tick()

    missing = [r.getMessage() for r in caplog.records if "visits" in r.getMessage()]
    assert len(missing) == 2
    assert "PACS-304" in missing[0]

"""Scans nobody asked for: the periodic rescan of each archive and a scan soon after a
watched folder changes, each queued once per period or change."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from pacsync import bootstrap
from pacsync.bootstrap.archive_triggers import ArchiveTriggers
from pacsync.config import Settings
from pacsync.imaging import rescans
from pacsync.jobs.queues import ARCHIVES
from pacsync.jobs.request import JobRequest

NOW = dt.datetime(2026, 3, 1, 12, 0)


def test_due_after_the_interval_and_never_when_off() -> None:
    assert rescans.due(None, 15, NOW)
    assert not rescans.due(NOW - dt.timedelta(minutes=14), 15, NOW)
    assert rescans.due(NOW - dt.timedelta(minutes=15), 15, NOW)
    assert not rescans.due(None, 0, NOW)


def test_one_key_per_period() -> None:
    same = rescans.periodic_key("ct", 15, NOW + dt.timedelta(minutes=3))
    assert rescans.periodic_key("ct", 15, NOW) == same
    assert rescans.periodic_key("ct", 15, NOW + dt.timedelta(minutes=15)) != same
    assert rescans.periodic_key("mr", 15, NOW) != same


def test_settled_only_after_a_quiet_spell() -> None:
    assert not rescans.settled(None, 100.0, 5.0)
    assert not rescans.settled(98.0, 100.0, 5.0)
    assert rescans.settled(94.0, 100.0, 5.0)


class Queue:
    def __init__(self) -> None:
        self.requests: list[JobRequest] = []

    def __call__(self, request: JobRequest) -> tuple[str, bool]:
        created = request.key not in {r.key for r in self.requests}
        self.requests.append(request)
        return request.key, created


@pytest.fixture
def store(tmp_path: Path) -> bootstrap.Store:
    return bootstrap.store(Settings(home=tmp_path / "home", secret_key="00" * 32))


def test_a_due_archive_is_queued_once_per_period(store: bootstrap.Store, tmp_path: Path) -> None:
    store.archives.add("ct", "dicom", str(tmp_path), rescan_minutes=15)
    store.archives.add("manual", "dicom", str(tmp_path), rescan_minutes=0)
    queue = Queue()
    triggers = ArchiveTriggers(store, queue)
    first, again = triggers.tick(), triggers.tick()
    assert first == again
    assert [r.pipeline for r in queue.requests] == ["ct", "ct"]
    request = queue.requests[0]
    assert (request.queue, request.kind, request.trigger) == (ARCHIVES, "archive-scan", "schedule")
    assert request.mode == "incremental"


def test_a_watched_folder_is_scanned_after_its_files_settle(
    store: bootstrap.Store, tmp_path: Path
) -> None:
    root = tmp_path / "nas"
    root.mkdir()
    store.archives.add("ct", "dicom", str(root), options={"watch": True}, rescan_minutes=0)
    queue = Queue()
    triggers = ArchiveTriggers(store, queue, every_s=0.05, quiet_s=0.3)
    triggers.start()
    try:
        deadline = time.monotonic() + 10
        while "ct" not in triggers._watched and time.monotonic() < deadline:
            time.sleep(0.02)
        (root / "new.dcm").write_bytes(b"DICM")
        while not queue.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        triggers.stop()
        triggers.join(5)
    assert [(r.pipeline, r.trigger) for r in queue.requests] == [("ct", "watch")]

"""Imaging archives wired: the scan of each kind of root with its concrete walker,
parse pool, legacy catalog and index store, and the archive-scan job.  The
studies a scan indexed get an ``indexed`` event on their timeline."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from pacsync import bootstrap
from pacsync.config import Settings
from pacsync.connectors.files import tree
from pacsync.db.archive_index import ArchiveIndexStore
from pacsync.db.archives import ArchiveView
from pacsync.db.study_events import StudyEvents
from pacsync.domain.clock import utc_now
from pacsync.domain.legacy_mapping import LegacyMapping
from pacsync.errors import ArchiveOffline, JobInterrupted, PacsyncError
from pacsync.imaging.legacy_scan import LegacyScan
from pacsync.imaging.ports import LegacyCatalog
from pacsync.imaging.scan import ArchiveScan, ScanCounts, ScanResult
from pacsync.jobs.queues import ARCHIVES
from pacsync.jobs.request import JobRequest
from pacsync.ports import JobContext

log = logging.getLogger("pacsync.archives")
KIND = "archive-scan"
Progress = Callable[[ScanCounts, int], None]


def scan_request(
    name: str, *, full: bool = False, trigger: str = "manual", key: str = ""
) -> JobRequest:
    return JobRequest(
        kind=KIND,
        pipeline=name,
        mode="full" if full else "incremental",
        trigger=trigger,
        queue=ARCHIVES,
        partition=name,
        key=key,
    )


def scan(
    settings: Settings,
    store: bootstrap.Store,
    name: str,
    *,
    full: bool = False,
    progress: Progress = lambda counts, todo: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ScanResult:
    """Scan one archive now, in this process."""
    started = utc_now()
    result = _scan(settings, store, name, full=full, progress=progress, should_stop=should_stop)
    record_indexed(store, name, started, result)
    return result


def record_indexed(
    store: bootstrap.Store, name: str, started: dt.datetime, result: ScanResult
) -> None:
    """An ``indexed`` event for each study of ``name`` the index changed since the
    scan ``started`` (the scan's counts do not list studies), with its instances."""
    if result.counts.indexed:
        StudyEvents(store.engine).indexed_since(name, started, detail={"scan": result.status})


def _scan(
    settings: Settings,
    store: bootstrap.Store,
    name: str,
    *,
    full: bool,
    progress: Progress,
    should_stop: Callable[[], bool],
) -> ScanResult:
    archive = store.archives.require(name, counts=False)
    index = ArchiveIndexStore(store.engine)
    if archive.kind == "dicom":
        # imported here: pydicom and its pixel handlers cost every other command 0.3 s
        from pacsync.connectors.dicom.pool import ProcessParsePool

        return ArchiveScan(
            name,
            archive.path,
            index=index,
            walker=tree.walk,
            pool=ProcessParsePool(settings.archive_workers or None),
            hasher=tree.content_hash,
            progress=progress,
            should_stop=should_stop,
        ).run(full=full)
    return LegacyScan(
        name,
        archive.path,
        catalog=legacy_catalog(store, archive),
        index=index,
        stat=tree.stat_file,
        root_online=tree.root_trouble,
        progress=progress,
        should_stop=should_stop,
    ).run(full=full)


def legacy_catalog(store: bootstrap.Store, archive: ArchiveView) -> LegacyCatalog:
    from pacsync.connectors.firebird.catalog import FirebirdCatalog  # only legacy stores need it

    options = archive.options
    mapping = LegacyMapping.model_validate(options.get("mapping") or {})
    return FirebirdCatalog(
        options["dsn"],
        options.get("user"),
        store.archives.password(archive.name),
        mapping,
        charset=options.get("charset"),
        name=archive.name,
    )


class ScanJobs:
    """The archive-scan job: marks the job running, scans, records the outcome."""

    def __init__(
        self,
        settings: Settings,
        store: bootstrap.Store,
        executor_id: str,
        *,
        progress: Callable[[], Progress] = lambda: lambda counts, todo: None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.settings, self.store, self.executor_id = settings, store, executor_id
        self.progress = progress
        self.stopping = stopping or threading.Event()

    def __call__(self, ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        asked = JobRequest.from_dict(request)
        return dict(ctx.step("scan", self.run, ctx.job_id, asked.pipeline, asked.mode == "full"))

    def run(self, job_id: str, name: str, full: bool) -> dict[str, Any]:
        jobs = self.store.jobs
        jobs.start(job_id, self.executor_id)
        self.store.archives.scan_started(name, job_id)
        shown = self.progress()
        last = [0.0]

        def progress(counts: ScanCounts, todo: int) -> None:
            shown(counts, todo)
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                jobs.progress(job_id, {name: {**counts.as_dict(), "todo": todo}})

        def should_stop() -> bool:
            return self.stopping.is_set() or jobs.status_of(job_id) == "cancelled"

        try:
            result = scan(
                self.settings, self.store, name, full=full, progress=progress,
                should_stop=should_stop,
            )  # fmt: skip
        except PacsyncError as failed:
            jobs.finish(job_id, "failed", {}, failed)
            return {"status": "failed", "error": failed.as_dict()}
        outcome = result.as_dict()
        error: PacsyncError | None = None
        status = "succeeded"
        if result.status == "offline":
            status, error = "failed", ArchiveOffline(result.reason or "archive offline")
        elif result.status == "interrupted":
            status, error = (
                "interrupted",
                JobInterrupted(f"scan of archive '{name}' stopped; what it indexed is kept"),
            )
        jobs.finish(job_id, status, {name: outcome}, error)
        return {**outcome, "status": status, "archive_status": result.status}

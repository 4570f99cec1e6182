"""In a worker serving the sync queue: queue a run of a pipeline when complete files wait
in its drop folders.

Every ``every_s`` seconds, and soon after watchdog reports a change in a watched drop
folder, each pipeline reading a ``file:`` connection is looked at; when some of its
entities have complete files waiting (see :mod:`pacsync.connectors.files.drops`), one
sync job of those entities is queued.  The job's key names the files waiting and the
``retry_s`` period, so the same files queue one job per period: a job that failed
(the target was down) is followed by another one later, and files that arrive while
a run is busy get their own job, which waits for the pipeline to be free.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from pacsync.config import Settings, list_pipelines, load_pipeline
from pacsync.connectors.files.drops import FolderDrops
from pacsync.errors import PacsyncError
from pacsync.jobs.request import JobRequest

log = logging.getLogger("pacsync.drops")


class _Woken(FileSystemEventHandler):
    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write"):
            self.wake.set()


class DropTriggers(threading.Thread):
    def __init__(
        self,
        settings: Settings,
        submit: Callable[[JobRequest], tuple[str, bool]],
        *,
        every_s: float = 5.0,
        retry_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name="pacsync-drop-triggers", daemon=True)
        self.settings, self.submit = settings, submit
        self.every_s, self.retry_s, self.clock = every_s, retry_s, clock
        self.halt = threading.Event()
        self.wake = threading.Event()
        self._observer: Any = None
        self._watched: dict[str, Any] = {}
        self._warned: set[str] = set()  # folders said to be unreadable, until they are again

    def run(self) -> None:
        self._observer = Observer()
        self._observer.start()
        try:
            while not self.halt.is_set():
                try:
                    self.tick()
                except Exception as exc:  # the store is down: try again next tick
                    log.warning("drop triggers: %s", exc)
                self.wake.wait(self.every_s)
                self.wake.clear()
        finally:
            self._observer.stop()
            self._observer.join(timeout=5)

    def tick(self) -> list[str]:
        """Queue a run of each pipeline with files waiting; the keys of the jobs asked for."""
        asked: list[str] = []
        folders: set[str] = set()
        for path in list_pipelines(self.settings):
            try:
                spec = load_pipeline(path)
                if spec.connections[spec.source.connection].folder is None:
                    continue
                drops = FolderDrops(spec, clock=self.clock)
            except PacsyncError as error:
                self._warn(str(path), f"{path}: not watched: {error}")
                continue
            self._warned.discard(str(path))
            waiting: dict[str, list[str]] = {}
            for entity in drops.drops:
                folders.add(str(drops.folder(entity)))
                try:
                    names = drops.ready(entity)
                except PacsyncError as error:
                    self._warn(f"{spec.name}/{entity}", f"pipeline {spec.name}: {error}")
                    continue
                self._warned.discard(f"{spec.name}/{entity}")
                if names:
                    waiting[entity] = names
            if waiting:
                asked.append(self._queue(spec.name, path, waiting))
        self._follow(folders)
        return asked

    def _warn(self, what: str, message: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            log.warning("%s", message)

    def _queue(self, pipeline: str, path: Path, waiting: dict[str, list[str]]) -> str:
        files = "\n".join(f"{e}/{n}" for e, names in sorted(waiting.items()) for n in names)
        digest = hashlib.sha256(files.encode()).hexdigest()[:16]
        period = int(self.clock() // self.retry_s)
        key = f"drop:{pipeline}:{digest}:{period}"
        request = JobRequest(
            kind="sync",
            pipeline=pipeline,
            path=str(path.resolve()),
            entities=sorted(waiting),
            trigger="watch",
            key=key,
        )
        job_id, created = self.submit(request)
        if created:
            log.info("files waiting for %s (%s): job %s", pipeline, ", ".join(waiting), job_id)
        return key

    def _follow(self, wanted: set[str]) -> None:
        if self._observer is None:
            return
        for folder in set(self._watched) - wanted:
            self._observer.unschedule(self._watched.pop(folder))
        for folder in wanted - set(self._watched):
            try:
                handler = _Woken(self.wake)
                self._watched[folder] = self._observer.schedule(handler, folder, recursive=False)
            except OSError as exc:  # not there yet: the periodic look finds files anyway
                log.debug("cannot watch drop folder %s: %s", folder, exc)

    def stop(self) -> None:
        self.halt.set()
        self.wake.set()

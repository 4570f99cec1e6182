"""In a worker: queue archive scans nobody asked for — the periodic rescan of each
archive, and a scan soon after files change in a watched archive (inotify through
watchdog; a network share's own changes are often invisible to it, which is why the
periodic rescan stays on)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from pacsync import bootstrap
from pacsync.bootstrap import archives as wiring
from pacsync.domain.clock import utc_now
from pacsync.imaging import rescans
from pacsync.jobs.request import JobRequest

log = logging.getLogger("pacsync.archives")


class _Changed(FileSystemEventHandler):
    def __init__(self, name: str, marks: dict[str, float], lock: threading.Lock) -> None:
        self.name, self.marks, self.lock = name, marks, lock

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        with self.lock:
            self.marks[self.name] = time.time()


class ArchiveTriggers(threading.Thread):
    def __init__(
        self,
        store: bootstrap.Store,
        submit: Callable[[JobRequest], tuple[str, bool]],
        *,
        every_s: float = 30.0,
        quiet_s: float = 5.0,
    ) -> None:
        super().__init__(name="pacsync-archive-triggers", daemon=True)
        self.store, self.submit = store, submit
        self.every_s, self.quiet_s = every_s, quiet_s
        self.halt = threading.Event()
        self.changed: dict[str, float] = {}
        self._lock = threading.Lock()
        self._observer: Any = None
        self._watched: dict[str, Any] = {}

    def run(self) -> None:
        self._observer = Observer()
        self._observer.start()
        try:
            while True:
                try:
                    self.tick()
                except Exception as exc:  # the store is down: try again next tick
                    log.warning("archive triggers: %s", exc)
                if self.halt.wait(min(self.every_s, self.quiet_s)):
                    break
        finally:
            self._observer.stop()
            self._observer.join(timeout=5)

    def tick(self) -> list[str]:
        """Queue what is due now; the keys of the scans asked for."""
        asked: list[str] = []
        now = utc_now()
        archives = self.store.archives.list(counts=False)
        for archive in archives:
            if rescans.due(archive.last_scan_at, archive.rescan_minutes, now):
                key = rescans.periodic_key(archive.name, archive.rescan_minutes, now)
                asked.append(self._submit(archive.name, "schedule", key))
        self._follow({a.name: a.path for a in archives if a.options.get("watch")})
        with self._lock:
            settled = {n: t for n, t in self.changed.items()
                       if rescans.settled(t, time.time(), self.quiet_s)}  # fmt: skip
            for name in settled:
                del self.changed[name]
        for name, changed_at in settled.items():
            asked.append(self._submit(name, "watch", rescans.watch_key(name, changed_at)))
        return asked

    def _submit(self, name: str, trigger: str, key: str) -> str:
        request = wiring.scan_request(name, trigger=trigger, key=key)
        job_id, created = self.submit(request)
        if created:
            log.info("scan of %s queued (%s) as job %s", name, trigger, job_id)
        return key

    def _follow(self, wanted: dict[str, str]) -> None:
        if self._observer is None:
            return
        for name in set(self._watched) - set(wanted):
            self._observer.unschedule(self._watched.pop(name))
        for name, path in wanted.items():
            if name not in self._watched:
                try:
                    handler = _Changed(name, self.changed, self._lock)
                    self._watched[name] = self._observer.schedule(handler, path, recursive=True)
                except OSError as exc:  # offline root: the periodic rescan reports it
                    log.warning("cannot watch archive %s at %s: %s", name, path, exc)

    def stop(self) -> None:
        self.halt.set()

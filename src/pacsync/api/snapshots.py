"""Short-lived snapshots of the pages monitoring polls (sync status, job lists).

Dashboards and monitoring poll these pages many times a second; every poll
within ``ttl_s`` of the last answer to the same question gets that answer's
bytes, so the store answers each question at most once per ``ttl_s`` however
many clients ask. Concurrent askers of an expired page wait for one refresh
instead of all querying the store (single flight).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from fastapi import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

TTL_S = 0.5  # how old a polled page may be
MAX_PAGES = 512


class Snapshots:
    def __init__(
        self,
        ttl_s: float = TTL_S,
        max_pages: int = MAX_PAGES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s, self.max_pages, self.clock = ttl_s, max_pages, clock
        self._pages: OrderedDict[Hashable, tuple[float, bytes]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def json(self, key: Hashable, build: Callable[[], BaseModel]) -> Response:
        """The JSON response for ``key``: a snapshot younger than ``ttl_s``, or a new one."""
        body = self._fresh(key)
        if body is None:
            with self._lock_for(key):
                body = self._fresh(key)  # refreshed while this caller waited
                if body is None:
                    body = build().model_dump_json().encode()
                    self._keep(key, body)
        return Response(content=body, media_type="application/json")

    async def respond(self, key: Hashable, build: Callable[[], BaseModel]) -> Response:
        """:meth:`json` for async routes: a fresh snapshot without leaving the event loop,
        a refresh in the thread pool (it queries the store)."""
        body = self._fresh(key)
        if body is not None:
            return Response(content=body, media_type="application/json")
        return await run_in_threadpool(self.json, key, build)

    def _fresh(self, key: Hashable) -> bytes | None:
        with self._guard:
            page = self._pages.get(key)
        if page is None or self.clock() - page[0] >= self.ttl_s:
            return None
        return page[1]

    def _keep(self, key: Hashable, body: bytes) -> None:
        with self._guard:
            self._pages[key] = (self.clock(), body)
            self._pages.move_to_end(key)
            while len(self._pages) > self.max_pages:
                old, _ = self._pages.popitem(last=False)
                self._locks.pop(old, None)

    def _lock_for(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def clear(self) -> None:
        """Forget every snapshot (after a write this process made, say)."""
        with self._guard:
            self._pages.clear()

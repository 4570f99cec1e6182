"""What the app holds for its whole life: settings, the store, the token verifier, the
rate limiter, the metrics registry and, once first needed, a job-engine client."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from pacsync import bootstrap
from pacsync.api.key_cache import KeyCache
from pacsync.api.rate_limit import RateLimiter
from pacsync.api.snapshots import Snapshots
from pacsync.bootstrap import jobs as job_layer
from pacsync.bootstrap.dicomweb import DicomWebService
from pacsync.config import Settings
from pacsync.connectors.dbos.engine import JobClient
from pacsync.security.tokens import JwtVerifier


@dataclass
class ApiState:
    settings: Settings
    store: bootstrap.Store
    verifier: JwtVerifier | None
    limiter: RateLimiter
    registry: CollectorRegistry
    owns_store: bool = True
    snapshots: Snapshots = field(default_factory=Snapshots)
    keys: KeyCache = field(default_factory=KeyCache)
    _client: JobClient | None = field(default=None, init=False)
    _dicomweb: DicomWebService | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def job_client(self) -> JobClient:
        """The client of the job engine, made on first use (it migrates the engine's
        tables the first time a process talks to them)."""
        with self._lock:
            if self._client is None:
                self._client = job_layer.job_client(self.settings)
            return self._client

    def dicomweb(self) -> DicomWebService:
        """What DICOMweb serves (its rendering cache opened on first use)."""
        with self._lock:
            if self._dicomweb is None:
                self._dicomweb = DicomWebService(self.settings, self.store)
            return self._dicomweb

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
        if self.owns_store:
            self.store.engine.dispose()

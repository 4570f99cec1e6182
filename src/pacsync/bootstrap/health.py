"""Readiness: can the store, the job layer and every pipeline's connections be reached?

Each check runs in its own thread with a short timeout, all at once, so one
unreachable server costs the timeout once.  A SQLite connection is not opened
(that would create the file); its folder is looked at instead.

Every configured DICOM node gets an echo and a query probe (:func:`dicom_nodes`),
with short timeouts, in a thread pool, their results kept ``NODE_MAX_AGE_S``
seconds so that a burst of /ready calls probes each node once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from pacsync import bootstrap
from pacsync.bootstrap import dicom_nodes as dicom_wiring
from pacsync.config import Settings, list_pipelines, load_pipeline
from pacsync.connectors.dbos.engine import JobClient
from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.errors import translated
from pacsync.domain.dicom_node import DicomNode
from pacsync.domain.node_health import ErrorRate, NodeHealth, Probe, judge
from pacsync.domain.resource_spec import STORE_URL
from pacsync.domain.spec import MLLP_SCHEME, ConnectionSpec
from pacsync.errors import (
    ConfigError,
    DropFolderUnavailable,
    MllpPeerUnavailable,
    PacsyncError,
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str  # store, job_layer, connection, pipeline
    up: bool
    response_ms: float
    detail: str | None = None


@dataclass(frozen=True)
class _Check:
    name: str
    kind: str
    run: Callable[[], str | None]  # raises when down; may return a detail


def store_check(engine: Engine) -> Callable[[], str | None]:
    def run() -> str | None:
        with translated("store"), engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None

    return run


def job_layer_check(client: Callable[[], JobClient]) -> Callable[[], str | None]:
    def run() -> str | None:
        depths = client().queue_depths()
        waiting = sum(d["waiting"] for d in depths.values())
        return f"{waiting} job(s) waiting"

    return run


def connection_check(url: str, timeout_s: float) -> Callable[[], str | None]:
    """The check of one connection: a database is queried, a drop folder looked at, an
    MLLP receiver connected to; ``pacsync:store`` is the store itself."""
    if url == STORE_URL:
        return lambda: "pacsync's own store"
    spec = ConnectionSpec(url=url)
    folder, receiver = spec.folder, spec.mllp
    if folder is not None:
        return lambda: _drop_folder(Path(folder))
    if receiver is not None:
        return lambda: _receiver(receiver, timeout_s)
    if url.startswith(MLLP_SCHEME):
        return _refuse(ConfigError(f"not an mllp://HOST:PORT address: {url}"))

    def run() -> str | None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise PacsyncError("not a database URL") from None
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_file(parsed.database)
        engine = make_engine(url, connect_timeout=max(1, round(timeout_s)), poolclass=NullPool)
        try:
            with translated("connection"), engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        finally:
            engine.dispose()
        return None

    return run


def _drop_folder(path: Path) -> str | None:
    if not path.is_dir():
        raise DropFolderUnavailable(f"drop folder {path} does not exist")
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError as exc:
        raise DropFolderUnavailable(
            f"drop folder {path} cannot be read: {exc.strerror or exc}"
        ) from exc
    return "folder readable"


def _receiver(address: tuple[str, int], timeout_s: float) -> str | None:
    """An MLLP receiver takes connections (nothing is sent on it)."""
    try:
        socket.create_connection(address, timeout=timeout_s).close()
    except OSError as exc:
        host, port = address
        raise MllpPeerUnavailable(
            f"{host}:{port} takes no connection: {exc.strerror or exc}"
        ) from exc
    return None


def _refuse(error: PacsyncError) -> Callable[[], str | None]:
    def run() -> str | None:
        raise error

    return run


def _sqlite_file(database: str | None) -> str | None:
    if not database or database == ":memory:":
        return "in memory"
    path = Path(database)
    if path.is_file():
        return None
    if path.parent.is_dir():
        return "file not created yet"
    raise PacsyncError(f"folder {path.parent} does not exist")


def pipeline_checks(settings: Settings, timeout_s: float) -> list[_Check | CheckResult]:
    """One check per connection of every pipeline; a file that does not load is a
    failed check of its own.  A URL shared by pipelines is checked once."""
    found: list[_Check | CheckResult] = []
    shared: dict[str, _Check] = {}
    for path in list_pipelines(settings):
        try:
            spec = load_pipeline(path)
        except PacsyncError as error:
            found.append(CheckResult(f"pipeline {path.stem}", "pipeline", False, 0.0, str(error)))
            continue
        for name, connection in spec.connections.items():
            label = f"connection {spec.name}/{name}"
            check = shared.get(connection.url)
            run = check.run if check else connection_check(connection.url, timeout_s)
            shared.setdefault(connection.url, _Check(label, "connection", run))
            found.append(_Check(label, "connection", run))
    return found


def readiness(
    settings: Settings,
    engine: Engine,
    client: Callable[[], JobClient],
    *,
    timeout_s: float = 2.0,
) -> list[CheckResult]:
    """Every check's result, in order: the store, the job layer, then the connections."""
    checks: list[_Check | CheckResult] = [
        _Check("store", "store", store_check(engine)),
        _Check("job layer", "job_layer", job_layer_check(client)),
        *pipeline_checks(settings, timeout_s),
    ]
    runs = {c.run for c in checks if isinstance(c, _Check)}
    pool = ThreadPoolExecutor(max_workers=min(8, len(runs)), thread_name_prefix="pacsync-ready")
    try:
        futures = {run: pool.submit(_timed, run) for run in runs}
        wait(futures.values(), timeout=timeout_s + 1.0)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    results = []
    for check in checks:
        if isinstance(check, CheckResult):
            results.append(check)
            continue
        future = futures[check.run]
        if not future.done():
            results.append(
                CheckResult(check.name, check.kind, False, timeout_s * 1000, "timed out")
            )
            continue
        up, ms, detail = future.result()
        results.append(CheckResult(check.name, check.kind, up, ms, detail))
    return results


def _timed(run: Callable[[], str | None]) -> tuple[bool, float, str | None]:
    began = time.perf_counter()
    try:
        detail = run()
        up = True
    except PacsyncError as error:
        up, detail = False, f"{error.code} {error.message}"
    except Exception as exc:  # a check must report, whatever the driver raised
        up, detail = False, type(exc).__name__
    return up, round((time.perf_counter() - began) * 1000, 1), detail


# -- DICOM nodes ---------------------------------------------------------------------------

NODE_MAX_AGE_S = 30.0
NODE_TIMEOUT_S = 1.0  # each of connect, ACSE and DIMSE while probing for /ready


@dataclass(frozen=True)
class NodeCheck:
    health: NodeHealth
    age_s: float  # how long ago the node was probed (0: just now)


def _check_node(node: DicomNode, timeout_s: float) -> NodeHealth:
    from pacsync.connectors.dicom import health  # pynetdicom only when nodes exist

    try:
        return health.check(health.with_short_timeouts(node, timeout_s))
    except Exception as exc:  # a check must report, whatever went wrong
        failed = Probe.failed(f"check failed: {type(exc).__name__}: {exc}")
        return judge(node.name, failed, None, ErrorRate())


class NodeProbes:
    """Probes nodes in a thread pool and keeps each node's last result for ``max_age_s``;
    a node already being probed is not probed again until that probe ends."""

    def __init__(
        self,
        max_age_s: float = NODE_MAX_AGE_S,
        timeout_s: float = NODE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age_s = max_age_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._done: dict[str, tuple[float, DicomNode, NodeHealth]] = {}
        self._running: dict[str, tuple[DicomNode, Future[NodeHealth]]] = {}
        self._lock = threading.RLock()  # a probe that ends at once calls back under it
        self._pool: ThreadPoolExecutor | None = None

    def check(self, nodes: list[DicomNode], budget_s: float) -> list[NodeCheck]:
        """Each node's health, waiting at most ``budget_s`` for the probes to end."""
        pending: list[Future[NodeHealth]] = []
        with self._lock:
            for node in nodes:
                if self._fresh(node) is None:
                    pending.append(self._start(node))
        if pending:
            wait(pending, timeout=budget_s)
        results = []
        for node in nodes:
            with self._lock:
                kept = self._fresh(node)
            if kept is not None:
                results.append(NodeCheck(kept[1], round(self.clock() - kept[0], 1)))
                continue
            late = Probe.failed(f"no answer within {budget_s:g} s (still being checked)")
            results.append(NodeCheck(judge(node.name, late, None, ErrorRate()), 0.0))
        return results

    def _fresh(self, node: DicomNode) -> tuple[float, NodeHealth] | None:
        kept = self._done.get(node.name)
        if kept is None or kept[1] != node or self.clock() - kept[0] >= self.max_age_s:
            return None
        return kept[0], kept[2]

    def _start(self, node: DicomNode) -> Future[NodeHealth]:
        running = self._running.get(node.name)
        if running is not None and running[0] == node:
            return running[1]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pacsync-dicom")
        future = self._pool.submit(_check_node, node, self.timeout_s)
        self._running[node.name] = (node, future)
        future.add_done_callback(lambda done: self._finished(node, done))
        return future

    def _finished(self, node: DicomNode, done: Future[NodeHealth]) -> None:
        with self._lock:
            if self._running.get(node.name, (None, None))[1] is done:
                del self._running[node.name]
            if not done.cancelled() and done.exception() is None:
                self._done[node.name] = (self.clock(), node, done.result())


_PROBES = NodeProbes()


def dicom_nodes(
    store: bootstrap.Store, *, budget_s: float = 2.0, probes: NodeProbes | None = None
) -> list[NodeCheck]:
    """Every configured DICOM node's health (none when the store cannot be read: the
    store's own check reports that)."""
    try:
        nodes = dicom_wiring.nodes(store)
    except PacsyncError:
        return []
    return (probes or _PROBES).check(nodes, budget_s)

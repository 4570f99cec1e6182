"""Readiness: can the store, the job layer and every pipeline's connections be reached?

Each check runs in its own thread with a short timeout, all at once, so one
unreachable server costs the timeout once.  A SQLite connection is not opened
(that would create the file); its folder is looked at instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from pacsync.config import Settings, list_pipelines, load_pipeline
from pacsync.connectors.dbos.engine import JobClient
from pacsync.connectors.sql.engine import make_engine
from pacsync.connectors.sql.errors import translated
from pacsync.errors import PacsyncError


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

"""``pacsync run``, ``check`` and ``reconcile``: the property-assessment style SQL sync."""

from __future__ import annotations

import os
import signal
import socket
import threading
from types import FrameType
from typing import Annotated, Any

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.bootstrap import jobs
from pacsync.cli.console import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    console,
    reports_errors,
    show_error,
    tune_collector,
)
from pacsync.cli.progress import RichProgress
from pacsync.config import Settings
from pacsync.connectors.sql.engine import redact
from pacsync.domain.records import COUNTERS
from pacsync.errors import JobAlreadyRunning, PacsyncError
from pacsync.jobs.outcome import error_from_dict
from pacsync.jobs.request import JobRequest
from pacsync.sync.pipeline import RunResult
from pacsync.sync.reconcile import EntityReport, reconcile

PipelineArg = Annotated[str, typer.Argument(help="Pipeline name or path to its YAML file")]
EntityOpt = Annotated[
    list[str] | None, typer.Option("--entity", "-e", help="Only these entities (repeatable)")
]


@reports_errors
def run(
    pipeline: PipelineArg,
    full: Annotated[bool, typer.Option("--full", help="Re-read everything")] = False,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Only changes (the default)")
    ] = False,
    entity: EntityOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
) -> None:
    """Run a pipeline now, in this process, as a durable job (retried when transient)."""
    if full and incremental:
        raise typer.BadParameter("choose one of --full and --incremental")
    settings = Settings()
    path, spec = bootstrap.pipeline(pipeline, settings)
    store = bootstrap.store(settings)
    _refuse_concurrent(store, settings, spec.name)
    request = JobRequest(
        kind="sync",
        pipeline=spec.name,
        path=str(path),
        mode="full" if full else "incremental",
        entities=list(entity or []),
    )
    job_id, _ = jobs.create_job(store, request)
    console.print(f"job [bold]{job_id[:8]}[/] {spec.name} ({request.mode})", highlight=False)
    stop = _StopOnSignal()
    tune_collector()

    def retrying(error: dict[str, Any], attempt: int, delay: float) -> None:
        show_error(error_from_dict(error) or PacsyncError("unknown error"))
        console.print(
            f"retrying in {delay:.1f} s (attempt {attempt + 1} of {spec.retry.attempts}); "
            "committed batches are kept",
            highlight=False,
        )

    try:
        with RichProgress(quiet=quiet) as bars:
            summary = jobs.run_here(
                settings,
                store,
                job_id,
                request,
                progress=lambda: bars,
                stopping=stop.event,
                on_retry=retrying,
            )
    finally:
        stop.restore()
    result = RunResult.resumed(job_id, summary["progress"])
    result.status, result.error = summary["status"], error_from_dict(summary["error"])
    print_summary(result)
    if result.error is not None:
        show_error(result.error)
        raise typer.Exit(EXIT_INTERRUPTED if result.status == "interrupted" else EXIT_FAILED)


def _refuse_concurrent(store: bootstrap.Store, settings: Settings, pipeline: str) -> None:
    """Refuse a second run of a pipeline; a run whose process is gone is marked interrupted
    (its committed batches are kept; this run continues after them)."""
    for job in store.jobs.active(pipeline):
        here = job.host == socket.gethostname()
        if job.status == "queued":
            continue
        if job.pid is None or (here and not _alive(job.pid)):
            store.jobs.mark_interrupted(job.id, "the process running this job stopped")
            jobs.abandon(settings, job.id)
        elif not (here and job.pid == os.getpid()):
            raise JobAlreadyRunning(
                f"pipeline '{pipeline}' is already running as job {job.id[:8]} "
                f"(host {job.host}, pid {job.pid})"
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _StopOnSignal:
    """SIGTERM or Ctrl-C asks the run to stop after the batch in flight; a second Ctrl-C
    stops at once (committed batches are kept either way)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.previous = signal.signal(signal.SIGTERM, self._handle)
        self.previous_int = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self.previous)
        signal.signal(signal.SIGINT, self.previous_int)


_SHOWN = [name for name in COUNTERS if name != "batches"]
_HEADERS = {"dead_lettered": "dead letters"}


def print_summary(result: RunResult) -> None:
    table = Table(title=f"job {result.job_id[:8]}: {result.status} in {result.seconds:.1f}s")
    table.add_column("entity")
    table.add_column("mode")
    for name in _SHOWN:
        table.add_column(_HEADERS.get(name, name), justify="right")
    table.add_column("rows/s", justify="right")
    for entity, c in result.entities.items():
        rate = c.read / result.seconds if result.seconds else 0.0
        values = [f"{getattr(c, name):,}" for name in _SHOWN]
        table.add_row(entity, result.modes.get(entity, ""), *values, f"{rate:,.0f}")
    console.print(table)
    failed: dict[str, int] = {}
    for counts in result.entities.values():
        for rule, n in counts.rules_failed.items():
            failed[rule] = failed.get(rule, 0) + n
    if failed:
        shown = ", ".join(f"{rule}: {n}" for rule, n in sorted(failed.items()))
        console.print(f"PACS-004 records parked as dead letters by rule: {shown}", highlight=False)
        console.print(
            "hint: list them with `pacsync dead-letters list`; fix the source data "
            "or the rule and run again",
            highlight=False,
        )


@reports_errors
def check(pipeline: PipelineArg) -> None:
    """Validate a pipeline file and test every connection and table it uses."""
    settings = Settings()
    path, spec = bootstrap.pipeline(pipeline, settings)
    console.print(
        f"[green]ok[/] {path}: pipeline '{spec.name}', {len(spec.entities)} entities",
        highlight=False,
    )
    problems: list[PacsyncError] = []
    ends = (("source", bootstrap.source_end), ("destination", bootstrap.destination))
    for role, build in ends:
        name = getattr(spec, role).connection
        conn = spec.connections[name]
        url = conn.url if conn.folder is not None else redact(conn.url)
        try:
            endpoint = build(spec)
            endpoint.check()
            endpoint.close()
            console.print(f"[green]ok[/] {role} '{name}' ({url})", highlight=False)
        except PacsyncError as error:
            console.print(f"[red]failed[/] {role} '{name}' ({url})", highlight=False)
            show_error(error)
            problems.append(error)
    if problems:
        raise typer.Exit(EXIT_FAILED)


@reports_errors
def reconcile_command(pipeline: PipelineArg, entity: EntityOpt = None) -> None:
    """Compare source and target: counts, content checksums, orphans, dead letters."""
    settings = Settings()
    _, spec = bootstrap.pipeline(pipeline, settings)
    store = bootstrap.store(settings)
    source, destination = bootstrap.source(spec), bootstrap.destination(spec)
    try:
        for name in spec.entities:
            destination.prepare(name)
        reports = reconcile(spec, source, destination, store.dead_letters, entity)
    finally:
        source.close()
        destination.close()
    print_reconciliation(reports)
    if not all(r.explained for r in reports):
        raise typer.Exit(EXIT_FAILED)


def print_reconciliation(reports: list[EntityReport]) -> None:
    table = Table(title="reconciliation")
    for column in ("entity", "source", "target", "parked", "content", "orphans src/tgt", "verdict"):
        table.add_column(
            column, justify="right" if column in ("source", "target", "parked") else "left"
        )
    for r in reports:
        orphans = "; ".join(f"{o.field}: {o.source}/{o.target}" for o in r.orphans)
        verdict = "[green]match[/]" if r.explained else "[red]MISMATCH[/]"
        table.add_row(
            r.entity,
            f"{r.source_rows:,}",
            f"{r.target_rows:,}",
            f"{r.dead_letters:,}",
            "same" if r.content_match else "differs",
            orphans or "-",
            verdict,
        )
    console.print(table)
    console.print(
        "content: checksum of record fingerprints; records parked as dead letters "
        "are set aside on both sides",
        style="dim",
    )

"""``pacsync jobs``: recent jobs and one job's detail."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.bootstrap import jobs as job_layer
from pacsync.bootstrap import operations
from pacsync.cli.auditing import audited
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.db.jobs import JobView
from pacsync.jobs.queues import SYNC

app = typer.Typer(help="List, show, submit, cancel and retry jobs.", invoke_without_command=True)
JobArg = Annotated[str, typer.Argument(help="Job id or its first characters")]


@app.callback()
@reports_errors
def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="queued, running, succeeded, failed, interrupted, cancelled"),
    ] = None,
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
) -> None:
    """Recent jobs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    store = bootstrap.store(Settings())
    table = Table(title="jobs")
    for column in ("id", "pipeline", "mode", "status", "started", "seconds", "records", "error"):
        table.add_column(column)
    for job in store.jobs.recent(status=status, pipeline=pipeline, limit=limit):
        records = sum(e.get("read", 0) for e in job.progress.get("entities", {}).values())
        started = job.started_at.strftime("%Y-%m-%d %H:%M:%S") if job.started_at else "-"
        seconds = f"{job.duration_s:.1f}" if job.duration_s is not None else "-"
        table.add_row(
            job.id[:8],
            job.pipeline,
            job.mode,
            job.status,
            started,
            seconds,
            f"{records:,}",
            job.error_code or "",
        )
    console.print(table)


@app.command("show")
@reports_errors
def show(job_id: JobArg) -> None:
    """One job: status, per-entity counts and errors."""
    store = bootstrap.store(Settings())
    job = operations.find_job(store, job_id)
    console.print(
        f"[bold]{job.id}[/] {job.pipeline} {job.mode} [bold]{job.status}[/]", highlight=False
    )
    if job.error_code:
        console.print(
            f"{job.error_code} {job.error_message}\nhint: {job.error_hint}", highlight=False
        )
    console.print(
        f"queue {job.queue}  attempts {job.attempts}  worker {job.executor_id or '-'}",
        highlight=False,
    )
    for line in progress_lines(job):
        console.print(line, highlight=False)
    console.print_json(json.dumps(job.progress, default=str))
    for e in store.jobs.errors(job.id):
        console.print(
            f"{e['at']:%H:%M:%S} {e['entity'] or '-'} {e['code']} {e['message']}", highlight=False
        )


def progress_lines(job: JobView) -> list[str]:
    """Per entity: processed of total, rate and the time left at that rate."""
    seconds = float(job.progress.get("seconds") or 0.0) or (job.duration_s or 0.0)
    lines = []
    for name, e in job.progress.get("entities", {}).items():
        read, total = int(e.get("read", 0)), e.get("total")
        rate = read / seconds if seconds else 0.0
        of = f"/{total:,}" if total else ""
        eta = ""
        if total and rate and job.status == "running" and read < total:
            eta = f", about {(total - read) / rate:,.0f} s left"
        lines.append(f"{name}: {read:,}{of} records, {rate:,.0f}/s{eta}")
    return lines


@app.command("submit")
@reports_errors
def submit(
    pipeline: Annotated[str, typer.Argument(help="Pipeline name or path to its YAML file")],
    full: Annotated[bool, typer.Option("--full", help="Re-read everything")] = False,
    entity: Annotated[list[str] | None, typer.Option("--entity", "-e")] = None,
    priority: Annotated[int, typer.Option(min=0, help="Lower runs first")] = 0,
    key: Annotated[str, typer.Option(help="Idempotency key: the same key is one job")] = "",
) -> None:
    """Queue a sync job for the workers (`pacsync worker`)."""
    settings = Settings()
    request = operations.sync_request(
        settings,
        pipeline,
        mode="full" if full else "incremental",
        entities=list(entity or []),
        priority=priority,
        key=key,
    )
    job_id, created = job_layer.submit(settings, request)
    state = "queued" if created else "already known (same key)"
    console.print(f"job {job_id} {state} on {SYNC}", highlight=False)


@app.command("cancel")
@reports_errors
def cancel(job_id: JobArg) -> None:
    """Cancel a queued or running job; a running one stops after the batch in flight."""
    settings = Settings()
    store = bootstrap.store(settings)
    with audited(store, "job.cancel", job_id):
        job = operations.cancel_job(settings, store, job_id)
    console.print(f"job {job.id[:8]} cancelled", highlight=False)


@app.command("retry")
@reports_errors
def retry(job_id: JobArg) -> None:
    """Queue a failed, interrupted or cancelled job again, as a new job with its request."""
    settings = Settings()
    store = bootstrap.store(settings)
    with audited(store, "job.retry", job_id, "queued") as detail:
        detail["new_job_id"] = new_id = operations.retry_job(settings, store, job_id)
    console.print(f"job {job_id[:8]} queued again as {new_id}", highlight=False)

"""``pacsync jobs``: recent jobs and one job's detail."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.console import EXIT_CONFIG, console, err, reports_errors
from pacsync.config import Settings

app = typer.Typer(help="List jobs and show one job.", invoke_without_command=True)


@app.callback()
@reports_errors
def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="queued, running, succeeded, failed, interrupted")
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
def show(job_id: Annotated[str, typer.Argument(help="Job id or its first characters")]) -> None:
    """One job: status, per-entity counts and errors."""
    store = bootstrap.store(Settings())
    job = store.jobs.get(job_id)
    if job is None:
        err.print(f"PACS-104 no job with id {job_id!r}; list them with `pacsync jobs`")
        raise typer.Exit(EXIT_CONFIG)
    console.print(
        f"[bold]{job.id}[/] {job.pipeline} {job.mode} [bold]{job.status}[/]", highlight=False
    )
    if job.error_code:
        console.print(
            f"{job.error_code} {job.error_message}\nhint: {job.error_hint}", highlight=False
        )
    console.print_json(json.dumps(job.progress, default=str))
    for e in store.jobs.errors(job.id):
        console.print(
            f"{e['at']:%H:%M:%S} {e['entity'] or '-'} {e['code']} {e['message']}", highlight=False
        )

"""``pacsync schedule``: when each pipeline runs by itself."""

from __future__ import annotations

import datetime as dt

import typer
from rich.table import Table

from pacsync.bootstrap import jobs
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.connectors.dbos import engine as dbos

app = typer.Typer(help="Pipeline schedules (applied by `pacsync worker`).", no_args_is_help=True)


@app.command("list")
@reports_errors
def list_schedules() -> None:
    """Schedules from the pipeline files, with their next and last run."""
    settings = Settings()
    schedules = jobs.pipeline_schedules(settings)
    client = dbos.JobClient(dbos.system_url(settings.store_url))
    try:
        stored = client.schedules()
    finally:
        client.close()
    now = dt.datetime.now(dt.UTC)
    table = Table(title="schedules")
    columns = ("name", "mode", "cron", "time zone", "catch-up", "next run", "last run", "state")
    for column in columns:
        table.add_column(column)
    for s in schedules:
        found = stored.get(s.name)
        last = found.get("last_fired_at") if found else None
        state = found["status"].lower() if found else "not applied"
        table.add_row(
            s.name,
            s.mode,
            s.cron,
            s.timezone,
            s.catch_up,
            s.next_tick(now).strftime("%Y-%m-%d %H:%M %Z"),
            str(last or "-"),
            state,
        )
    console.print(table)
    if not schedules:
        console.print("no pipeline has a schedule; add `schedule:` to a pipeline file")

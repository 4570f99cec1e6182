"""``pacsync study``: what pacsync observed of a study (its workflow timeline)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.db.study_events import StudyEvents

app = typer.Typer(help="Studies: their workflow timeline.", no_args_is_help=True)


@app.command("timeline")
@reports_errors
def timeline(
    uid: Annotated[str, typer.Argument(help="Study Instance UID")],
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
) -> None:
    """Scheduled, received (first and last instance), indexed, retrieved and sent."""
    workflow = StudyEvents(bootstrap.store(Settings()).engine).workflow(uid)
    if as_json:
        typer.echo(json.dumps(workflow.as_dict()))
        return
    indexed = workflow.indexed_instances
    held = "in no archive's index" if indexed is None else f"{indexed} instance(s) indexed"
    table = Table(title=f"study {uid}: {workflow.status.value} ({held})")
    for column in ("event", "source", "first (UTC)", "at (UTC)", "instances", "detail"):
        table.add_column(column)
    for e in workflow.events:
        first = e.first_at.isoformat(sep=" ", timespec="seconds") if e.first_at else ""
        table.add_row(
            e.event.value, e.source, first, e.at.isoformat(sep=" ", timespec="seconds"),
            "" if e.instances is None else str(e.instances),
            ", ".join(f"{k}={v}" for k, v in e.detail.items() if v is not None),
        )  # fmt: skip
    console.print(table)

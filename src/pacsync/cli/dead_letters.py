"""``pacsync dead-letters``: records that could not be synced, stored whole."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.bootstrap import operations
from pacsync.cli.auditing import audited
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings

app = typer.Typer(help="List, show, retry and discard dead letters.", no_args_is_help=True)


@app.command("list")
@reports_errors
def list_letters(
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline")] = None,
    status: Annotated[
        str, typer.Option(help="open, retry, retried, resolved, discarded or all")
    ] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Dead letters with the rule that failed."""
    store = bootstrap.store(Settings())
    table = Table(title="dead letters")
    columns = ("id", "kind", "pipeline", "entity", "key", "code", "rule", "tries", "message")
    for column in columns:
        table.add_column(column)
    for d in store.dead_letters.find(
        pipeline=pipeline, status=None if status == "all" else status, limit=limit
    ):
        rule = f"{d['rule']} ({d['field']})" if d["field"] else d["rule"]
        table.add_row(
            str(d["id"]),
            d["kind"],
            d["pipeline"],
            d["entity"],
            d["record_key"],
            d["error_code"],
            rule,
            str(d["attempts"]),
            d["message"],
        )
    console.print(table)


@app.command("show")
@reports_errors
def show(letter_id: int) -> None:
    """One dead letter: the whole record, the error and its history."""
    letter = operations.find_letter(bootstrap.store(Settings()), letter_id)
    console.print_json(json.dumps(letter, default=str))


@app.command("discard")
@reports_errors
def discard(letter_id: int) -> None:
    """Mark a dead letter as discarded (it stays in the store for the audit)."""
    store = bootstrap.store(Settings())
    with audited(store, "dead_letter.discard", str(letter_id)):
        operations.discard_dead_letter(store, letter_id)
    console.print(f"dead letter {letter_id} discarded")


@app.command("retry")
@reports_errors
def retry(letter_id: int) -> None:
    """Try a dead letter again: a parked job is queued again with its request; a parked
    record is read again from the source by the next run of its pipeline (queued now)."""
    settings = Settings()
    store = bootstrap.store(settings)
    with audited(store, "dead_letter.retry", str(letter_id), "queued") as detail:
        detail["job_id"] = job_id = operations.retry_dead_letter(settings, store, letter_id)
    console.print(f"dead letter {letter_id}: retry queued as job {job_id}", highlight=False)

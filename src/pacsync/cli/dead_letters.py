"""``pacsync dead-letters``: records that could not be synced, stored whole."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.console import EXIT_CONFIG, console, err, reports_errors
from pacsync.config import Settings
from pacsync.db.audit import local_actor

app = typer.Typer(help="List, show and discard dead letters.", no_args_is_help=True)


@app.command("list")
@reports_errors
def list_letters(
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline")] = None,
    status: Annotated[str, typer.Option(help="open, discarded or all")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Dead letters with the rule that failed."""
    store = bootstrap.store(Settings())
    table = Table(title="dead letters")
    for column in ("id", "pipeline", "entity", "key", "code", "rule", "field", "message"):
        table.add_column(column)
    for d in store.dead_letters.find(
        pipeline=pipeline, status=None if status == "all" else status, limit=limit
    ):
        table.add_row(
            str(d["id"]),
            d["pipeline"],
            d["entity"],
            d["record_key"],
            d["error_code"],
            d["rule"],
            d["field"] or "",
            d["message"],
        )
    console.print(table)


@app.command("show")
@reports_errors
def show(letter_id: int) -> None:
    """One dead letter: the whole record, the error and its history."""
    letter = bootstrap.store(Settings()).dead_letters.get(letter_id)
    if letter is None:
        err.print(f"PACS-104 no dead letter {letter_id}; see `pacsync dead-letters list`")
        raise typer.Exit(EXIT_CONFIG)
    console.print_json(json.dumps(letter, default=str))


@app.command("discard")
@reports_errors
def discard(letter_id: int) -> None:
    """Mark a dead letter as discarded (it stays in the store for the audit)."""
    store = bootstrap.store(Settings())
    found = store.dead_letters.set_status(letter_id, "discarded", "discarded")
    store.audit.record(
        actor=local_actor(),
        action="dead_letter.discard",
        target=str(letter_id),
        outcome="ok" if found else "not_found",
    )
    if not found:
        err.print(f"PACS-104 no dead letter {letter_id}")
        raise typer.Exit(EXIT_CONFIG)
    console.print(f"dead letter {letter_id} discarded")

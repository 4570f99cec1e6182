"""``pacsync dead-letters``: records that could not be synced, stored whole."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.bootstrap import jobs as job_layer
from pacsync.cli.console import EXIT_CONFIG, console, err, reports_errors
from pacsync.config import Settings, find_pipeline
from pacsync.db.audit import local_actor
from pacsync.jobs.request import JobRequest

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


@app.command("retry")
@reports_errors
def retry(letter_id: int) -> None:
    """Try a dead letter again: a parked job is queued again with its request; a parked
    record is read again from the source by the next run of its pipeline (queued now)."""
    settings = Settings()
    store = bootstrap.store(settings)
    letter = store.dead_letters.get(letter_id)
    if letter is None or letter["status"] not in ("open", "retry"):
        state = "no such dead letter" if letter is None else f"it is {letter['status']}"
        err.print(f"PACS-104 cannot retry dead letter {letter_id}: {state}")
        raise typer.Exit(EXIT_CONFIG)
    if letter["kind"] == "job":
        request = JobRequest.from_dict({**letter["payload"], "trigger": "retry", "key": ""})
        store.dead_letters.set_status(letter_id, "retried", "retried")
    else:
        store.dead_letters.set_status(letter_id, "retry", "retry requested")
        path = find_pipeline(letter["pipeline"], settings)
        request = JobRequest(
            kind="sync",
            pipeline=letter["pipeline"],
            path=str(path.resolve()),
            entities=[letter["entity"]],
            trigger="retry",
        )
    job_id, _ = job_layer.submit(settings, request)
    store.audit.record(
        actor=local_actor(),
        action="dead_letter.retry",
        target=str(letter_id),
        outcome="queued",
        detail={"job_id": job_id},
    )
    console.print(f"dead letter {letter_id}: retry queued as job {job_id}", highlight=False)

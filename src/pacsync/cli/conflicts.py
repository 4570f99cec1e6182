"""``pacsync conflicts``: records both sides changed since the last sync, and their
decisions.  Reading a conflict (patient data, often) and deciding one are audited, as
through the API (``/api/v1/conflicts``); a FHIR sync writes a decision at its next run."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.auditing import audited
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.db.audit import local_actor
from pacsync.db.conflicts import Strategy
from pacsync.errors import InvalidRequest, NotFound

app = typer.Typer(help="List, show and decide conflicts.", no_args_is_help=True)


@app.command("list")
@reports_errors
def list_conflicts(
    pipeline: Annotated[
        str | None, typer.Option(help="Only this pipeline (a FHIR sync's: fhir:CONNECTION)")
    ] = None,
    status: Annotated[str, typer.Option(help="open, resolved, ignored or all")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Conflicts, newest first, with the names of the fields both sides changed."""
    store = bootstrap.store(Settings())
    with audited(store, "conflict.list", pipeline or "*") as detail:
        items, total = store.conflicts.list(
            status=None if status == "all" else status, pipeline=pipeline, limit=limit
        )
        detail.update(status=status, returned=len(items))
    table = Table(title=f"conflicts ({len(items)} of {total})")
    for column in ("id", "pipeline", "entity", "key", "fields", "status", "strategy"):
        table.add_column(column)
    for c in items:
        table.add_row(str(c.id), c.pipeline, c.entity, c.record_key,
                      ", ".join(f["field"] for f in c.fields), c.status,
                      c.strategy or "-")  # fmt: skip
    console.print(table)


@app.command("show")
@reports_errors
def show(conflict_id: int) -> None:
    """One conflict: each field's local, remote and base value, and its decision."""
    store = bootstrap.store(Settings())
    with audited(store, "conflict.read", str(conflict_id)):
        found = store.conflicts.get(conflict_id)
        if found is None:
            raise NotFound(f"no conflict {conflict_id}", hint="List them: pacsync conflicts list.")
    console.print_json(json.dumps(vars(found), default=str))


@app.command("resolve")
@reports_errors
def resolve(
    conflict_id: int,
    strategy: Annotated[
        str, typer.Option("--strategy", help="use_local, use_remote, merge, manual or ignore")
    ],
    value: Annotated[
        str | None,
        typer.Option("--value", help="JSON: the record (manual) or the fields both changed"),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit")] = None,
) -> None:
    """Decide a conflict once; a FHIR sync writes the decision at its next run."""
    store = bootstrap.store(Settings())
    chosen = Strategy.parse(strategy)
    try:
        given = None if value is None else json.loads(value)
    except json.JSONDecodeError as bad:
        raise InvalidRequest(f"--value is not JSON: {bad}", hint="Quote it: '{...}'.") from None
    with audited(store, "conflict.resolve", str(conflict_id)) as detail:
        detail["strategy"] = chosen.name
        decided = store.conflicts.resolve(conflict_id, chosen, given, reason, actor=local_actor())
    console.print(f"conflict {conflict_id} {decided.status} ({decided.strategy})", highlight=False)

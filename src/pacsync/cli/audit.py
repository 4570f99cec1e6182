"""``pacsync audit``: who did what, when, from where, and how it ended."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.auditing import audited
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.domain.clock import utc_now
from pacsync.errors import InvalidRequest

_AGO = re.compile(r"(\d+)\s*([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
TimeOption = Annotated[
    str | None,
    typer.Option(help="ISO date or time (UTC unless it has an offset), or an age: 30m, 12h, 7d"),
]


def parse_time(value: str, option: str) -> dt.datetime:
    """A naive UTC datetime from ISO 8601 text or an age before now (``7d``)."""
    ago = _AGO.fullmatch(value.strip())
    if ago:
        return utc_now() - dt.timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRequest(
            f"{option} '{value}' is neither an ISO date or time nor an age",
            hint="Write 2026-11-23, 2026-11-23T08:00, 2026-11-23T08:00+01:00, 30m, 12h or 7d.",
        ) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


@reports_errors
def audit(
    *,
    actor: Annotated[str | None, typer.Option(help="e.g. os:alice, key:3f9a…, jwt:bob")] = None,
    action: Annotated[str | None, typer.Option(help="e.g. job.cancel, or job.* for all")] = None,
    target: Annotated[str | None, typer.Option(help="A job id, key id, pipeline…")] = None,
    outcome: Annotated[str | None, typer.Option(help="ok, denied, or a PACS code")] = None,
    since: TimeOption = None,
    until: TimeOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
) -> None:
    """The audit trail, newest first."""
    store = bootstrap.store(Settings())
    filters = {"actor": actor, "action": action, "target": target, "outcome": outcome}
    asked = {k: v for k, v in {**filters, "since": since, "until": until}.items() if v}
    with audited(store, "audit.read", "audit") as detail:
        detail.update(asked)
        items, total = store.audit.query(
            **filters,
            since=parse_time(since, "--since") if since else None,
            until=parse_time(until, "--until") if until else None,
            limit=limit,
            offset=offset,
        )
    table = Table(title="audit trail")
    table.add_column("at (UTC)", no_wrap=True, min_width=19)
    for column in ("actor", "action", "target", "outcome", "source ip"):
        table.add_column(column, overflow="fold")
    table.add_column("detail")
    for entry in items:
        table.add_row(
            f"{entry['at']:%Y-%m-%d %H:%M:%S}",
            entry["actor"],
            entry["action"],
            entry["target"] or "",
            entry["outcome"],
            entry["source_ip"] or "",
            json.dumps(entry["detail"], default=str) if entry["detail"] else "",
        )
    console.print(table)
    console.print(f"{len(items)} of {total} entries (from {offset})", highlight=False)

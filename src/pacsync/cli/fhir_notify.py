"""``pacsync fhir notifications add|show`` and ``pacsync fhir subscribe``: a FHIR
connection that takes notifications (each one queues a sync of the patients it names),
and a rest-hook Subscription on its server that sends them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pacsync import bootstrap
from pacsync.bootstrap import fhir_notifications as wiring
from pacsync.bootstrap import fhir_sync
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.errors import NotFound

app = typer.Typer(
    help="Notifications from a FHIR server or EHR webhook: each queues a patient sync.",
    no_args_is_help=True,
)
ConnectionArg = Annotated[
    str, typer.Argument(help="The connection's name (pacsync fhir connection list)")
]


@app.command("add")
@reports_errors
def add(
    connection: ConnectionArg,
    scheme: Annotated[
        str,
        typer.Option(
            "--scheme",
            help="Signature scheme of vendor webhooks: standard-webhooks, github or "
            "hmac-sha512 (a rest-hook sends the secret as a bearer header instead)",
        ),
    ] = "standard-webhooks",
    secret: Annotated[
        str | None, typer.Option("--secret", help="The shared secret (default: generated)")
    ] = None,
    direction: Annotated[
        str | None,
        typer.Option("--direction", help="Of the syncs queued: inbound, outbound or both"),
    ] = None,
    strategy: Annotated[
        str | None, typer.Option("--strategy", help="Of the syncs queued (default manual)")
    ] = None,
    fallback: Annotated[
        str | None, typer.Option("--fallback", help="field-merge's fallback")
    ] = None,
    remote_wins: Annotated[
        str | None, typer.Option("--remote-wins", help="Elements the server always wins")
    ] = None,
    rules_path: Annotated[
        Path | None, typer.Option("--rules", help="YAML file of auto-resolution rules")
    ] = None,
    types: Annotated[
        str | None, typer.Option("--type", help="Resource types synced, e.g. Patient,Observation")
    ] = None,
) -> None:
    """Let the connection take notifications at /api/v1/fhir/notify/CONNECTION."""
    wins = [e.strip() for e in (remote_wins or "").split(",") if e.strip()]
    rules = fhir_sync.rules_of(rules_path, wins) if (rules_path or wins) else None
    wanted = [t.strip() for t in (types or "").split(",") if t.strip()]
    options = {"direction": direction, "strategy": strategy, "fallback": fallback,
               "rules": rules, "types": wanted}  # fmt: skip
    store = bootstrap.store(Settings())
    view, made = wiring.enable(store, connection, scheme=scheme, secret=secret, sync=options)
    console.print(
        f"FHIR connection [bold]{connection}[/] takes notifications at "
        f"POST {wiring.endpoint_path(connection)} (scheme {view.scheme}, or a bearer secret)",
        highlight=False,
    )
    if made:
        console.print(f"secret (shown once): {made}", highlight=False, soft_wrap=True)


@app.command("show")
@reports_errors
def show(connection: ConnectionArg) -> None:
    """Where the connection takes notifications and the syncs they queue."""
    store = bootstrap.store(Settings())
    view = wiring.source(store, connection)
    options = wiring.sync_options(store, connection) or {"direction": "both", "strategy": "manual"}
    console.print(
        f"{connection}: POST {wiring.endpoint_path(connection)}, scheme {view.scheme}; "
        f"syncs: {options}",
        highlight=False,
    )


@app.command("remove")
@reports_errors
def remove(connection: ConnectionArg) -> None:
    """Stop taking notifications for the connection (its secret is forgotten)."""
    store = bootstrap.store(Settings())
    if not wiring.disable(store, connection):
        raise NotFound(f"FHIR connection '{connection}' takes no notifications")
    console.print(f"{connection} takes no more notifications", highlight=False)


def subscribe(
    connection: ConnectionArg,
    url: Annotated[
        str,
        typer.Option(
            "--url",
            help="pacsync's notification URL as the server reaches it, e.g. "
            "https://pacsync.example.org/api/v1/fhir/notify/CONNECTION",
        ),
    ],
    criteria: Annotated[
        str | None,
        typer.Option("--criteria", help="R4 criteria, e.g. Patient or Observation?patient=123"),
    ] = None,
    topic: Annotated[
        str | None, typer.Option("--topic", help="A SubscriptionTopic canonical (R4 backport)")
    ] = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="A topic filter, e.g. _id=123")
    ] = None,
    payload: Annotated[
        str, typer.Option("--payload", help="full-resource, id-only or empty")
    ] = "full-resource",
) -> None:
    """Create a rest-hook Subscription on the server that notifies pacsync (the
    connection's notification secret in its channel.header)."""
    store = bootstrap.store(Settings())
    made = wiring.subscribe(
        store, connection, url, criteria=criteria if criteria or topic else "Patient",
        topic=topic, filters=filters or (), payload=payload,
    )  # fmt: skip
    console.print(
        f"Subscription/{made.get('id')} on {connection}: {made.get('criteria')} → {url} "
        f"(status {made.get('status')})",
        highlight=False,
    )

"""``pacsync keys``: API keys for the REST API.  A token is shown once, when it is made."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.auditing import audited
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.db.audit import local_actor
from pacsync.domain.access import Role
from pacsync.errors import InvalidState, NotFound, PacsyncError

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
@reports_errors
def create(
    name: Annotated[str, typer.Option(help="Who or what will use the key")],
    role: Annotated[
        Role, typer.Option(case_sensitive=False, help="viewer reads; operator runs; admin manages")
    ],
    rate_limit: Annotated[
        int | None, typer.Option(min=1, help="Requests a minute (default: the server's)")
    ] = None,
) -> None:
    """Create a key and print its token: it is shown this once and never stored."""
    store = bootstrap.store(Settings())
    try:
        view, token = store.api_keys.create(name, role, rate_limit_per_min=rate_limit)
    except PacsyncError as error:
        store.audit.record(
            actor=local_actor(), action="key.create", target=None, outcome=error.code
        )
        raise
    store.audit.record(
        actor=local_actor(),
        action="key.create",
        target=view.id,
        outcome="ok",
        detail={"name": view.name, "role": view.role.value},
    )
    console.print(f"API key {view.id} ({view.role.value}) for {view.name}", highlight=False)
    console.print("token (shown once; store it now, it cannot be shown again):")
    typer.echo(token)


@app.command("list")
@reports_errors
def list_keys(
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked keys")] = False,
) -> None:
    """Keys with their role and last use (never their tokens)."""
    store = bootstrap.store(Settings())
    with audited(store, "key.list", "keys"):
        keys = store.api_keys.list(include_revoked=all_keys)
    table = Table(title="API keys")
    table.add_column("id", no_wrap=True, min_width=16)  # whole: it is what revoke takes
    for column in ("name", "role", "rate/min", "created (UTC)", "last used", "status"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key.id,
            key.name,
            key.role.value,
            str(key.rate_limit_per_min or "-"),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
            f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active",
        )
    console.print(table)


@app.command("revoke")
@reports_errors
def revoke(key_id: Annotated[str, typer.Argument(help="The key's id (pacsync keys list)")]) -> None:
    """Revoke a key: it stops working at once."""
    store = bootstrap.store(Settings())
    with audited(store, "key.revoke", key_id):
        found = store.api_keys.get(key_id)
        if found is None:
            raise NotFound(f"no API key '{key_id}'", hint="List the keys: `pacsync keys list`.")
        if not store.api_keys.revoke(key_id):
            raise InvalidState(f"API key '{key_id}' is already revoked", hint="Nothing to do.")
    console.print(f"API key {key_id} ({found.name}) revoked", highlight=False)

"""``pacsync viewer-links``: the signed viewer links issued, and their revocation."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.auditing import audited
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.db.audit import local_actor
from pacsync.errors import InvalidRequest

app = typer.Typer(help="List and revoke signed viewer links.", no_args_is_help=True)


def _when(value: object) -> str:
    return "" if value is None else str(value)[:19]


@app.command("list")
@reports_errors
def list_links(
    study: Annotated[str | None, typer.Option(help="Only this study's links")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Revoked and expired links too")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
) -> None:
    """Viewer links, newest first (active ones only unless --all)."""
    store = bootstrap.store(Settings())
    links = store.viewer_links.list(study_uid=study, active_only=not all_, limit=limit)
    table = Table(title="viewer links")
    for column in ("id", "study", "issued to", "issued at", "expires at", "revoked"):
        table.add_column(column)
    for link in links:
        revoked = f"{_when(link.revoked_at)} by {link.revoked_by}" if link.revoked_at else ""
        table.add_row(
            link.link_id,
            link.study_uid,
            link.issued_to,
            _when(link.issued_at),
            _when(link.expires_at),
            revoked,
        )
    console.print(table)


@app.command("revoke")
@reports_errors
def revoke(
    link_id: Annotated[str | None, typer.Argument(help="The link's id")] = None,
    study: Annotated[
        str | None, typer.Option(help="Revoke every active link of this study instead")
    ] = None,
) -> None:
    """Revoke one viewer link, or every active link of a study: DICOMweb refuses them
    from then on (a running API server within a few seconds)."""
    if (link_id is None) == (study is None):
        raise InvalidRequest(
            "name one viewer link or a study",
            hint="pacsync viewer-links revoke LINK_ID, or: pacsync viewer-links revoke --study UID",
        )
    store = bootstrap.store(Settings())
    if link_id is not None:
        with audited(store, "viewer_link.revoke", link_id) as detail:
            link = store.viewer_links.revoke(link_id, local_actor())
            detail["study"] = link.study_uid
        console.print(f"viewer link {link_id} of study {link.study_uid} revoked", highlight=False)
        return
    assert study is not None
    with audited(store, "viewer_link.revoke", study) as detail:
        count = store.viewer_links.revoke_study(study, local_actor())
        detail.update(scope="study", revoked=count)
    console.print(f"{count} viewer link(s) of study {study} revoked", highlight=False)

"""``pacsync fhir``: FHIR R4 servers (EHR APIs) as connections — add them, check them
step by step, Bulk-export them into a folder; and the vendor profiles."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.bootstrap import fhir as wiring
from pacsync.cli import fhir_notify
from pacsync.cli.console import EXIT_FAILED, console, reports_errors
from pacsync.config import Settings
from pacsync.domain.fhir_vendors import PROFILES
from pacsync.errors import ConfigError, InvalidRequest
from pacsync.jobs.outcome import error_from_dict

app = typer.Typer(
    help="FHIR R4 servers (EHR APIs): connections, check, Bulk export, sync, notifications.",
    no_args_is_help=True,
)
connection_app = typer.Typer(help="Configured FHIR connections.", no_args_is_help=True)
app.add_typer(connection_app, name="connection")
app.add_typer(fhir_notify.app, name="notifications")
app.command("subscribe")(reports_errors(fhir_notify.subscribe))

ConnectionArg = Annotated[
    str, typer.Argument(help="The connection's name (pacsync fhir connection list)")
]


@connection_app.command("add")
@reports_errors
def connection_add(
    name: Annotated[str, typer.Argument(help="A name for the connection, e.g. epic-prod")],
    url: Annotated[str, typer.Argument(help="The FHIR base URL, e.g. https://host/api/FHIR/R4")],
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="SMART Backend Services client id")
    ] = None,
    key: Annotated[
        Path | None, typer.Option("--key", help="The client's private key (PEM, RSA or EC)")
    ] = None,
    seal_key: Annotated[
        bool,
        typer.Option(
            "--seal-key", help="Keep the key sealed in pacsync's store instead of its path"
        ),
    ] = False,
    token_url: Annotated[
        str | None, typer.Option("--token-url", help="The server's OAuth2 token endpoint")
    ] = None,
    vendor: Annotated[
        str, typer.Option("--vendor", help="Vendor profile: " + ", ".join(sorted(PROFILES)))
    ] = "generic",
    scope: Annotated[str, typer.Option("--scope", help="Scopes asked for")] = "system/*.read",
    kid: Annotated[str | None, typer.Option("--kid", help="Key id in the JWT header")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Group id for Bulk export")] = None,
    page_size: Annotated[int, typer.Option("--page-size", help="_count of searches")] = 200,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Seconds per request")] = 30.0,
) -> None:
    """Add (or replace) a FHIR connection."""
    options: dict[str, Any] = {"vendor": vendor, "scope": scope, "page_size": page_size,
                               "timeout_s": timeout_s}  # fmt: skip
    for option, value in (("client_id", client_id), ("oauth_url", token_url), ("kid", kid),
                          ("group", group)):  # fmt: skip
        if value:
            options[option] = value
    key_pem = None
    if key is not None:
        if seal_key:
            try:
                key_pem = key.expanduser().read_text()
            except (OSError, UnicodeDecodeError) as error:
                raise ConfigError(f"cannot read the key {key}: {error}") from None
        else:
            options["key_path"] = str(key.expanduser().resolve())
    elif seal_key:
        raise InvalidRequest("--seal-key needs --key PEM")
    endpoint = wiring.add_connection(
        bootstrap.store(Settings()), name, url, options, key_pem=key_pem
    )
    auth = f"client {endpoint.client_id}" if endpoint.client_id else "no authorization"
    console.print(
        f"FHIR connection [bold]{endpoint.name}[/] {endpoint.base_url} "
        f"({endpoint.profile.name}, {auth}); check it: pacsync fhir check {name}",
        highlight=False,
    )


@connection_app.command("list")
@reports_errors
def connection_list() -> None:
    """Every configured FHIR connection."""
    table = Table(title="FHIR connections")
    for column in ("name", "base URL", "vendor", "client id", "key", "scope"):
        table.add_column(column)
    for endpoint, sealed in wiring.endpoints(bootstrap.store(Settings())):
        key = "sealed" if sealed else (endpoint.key_path or "-")
        table.add_row(endpoint.name, endpoint.base_url, endpoint.vendor,
                      endpoint.client_id or "-", key, endpoint.scope)  # fmt: skip
    console.print(table)


@app.command("check")
@reports_errors
def check(connection: ConnectionArg) -> None:
    """Ask the server for its CapabilityStatement, a token and a search; each step said."""
    steps = wiring.check(bootstrap.store(Settings()), connection)
    for step in steps:
        mark = {True: "[green]ok[/]", False: "[red]failed[/]", None: "[dim]skipped[/]"}[step.ok]
        took = f" ({step.seconds * 1000:.0f} ms)" if step.ok is not None else ""
        console.print(f"{step.name:<22} {mark}  {step.detail}{took}", highlight=False)
        if step.error is not None:
            console.print(f"{'':<22} [dim]hint:[/] {step.error.hint}", highlight=False)
    if any(step.ok is False for step in steps):
        raise typer.Exit(EXIT_FAILED)


def _since(value: str | None, into: Path) -> dt.datetime | None:
    if value is None:
        return None
    if value == "last":
        found = wiring.last_transaction_time(into)
        if found is None:
            raise InvalidRequest(
                f"--since last: no complete export in {into}",
                hint="Run a full export into that folder first, or give a time.",
            )
        return found
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"--since {value!r} is not a time",
            hint="Give an ISO time such as 2026-11-01T00:00:00Z, a date, or 'last'.",
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


@app.command("export")
@reports_errors
def export(
    connection: ConnectionArg,
    into: Annotated[Path, typer.Option("--into", help="Folder for the NDJSON files")],
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only resources changed since this time (ISO), or 'last': since the "
            "export already in --into",
        ),
    ] = None,
    types: Annotated[
        str | None, typer.Option("--type", help="Resource types, e.g. Patient,Observation")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="Export this Group (Epic: required)")
    ] = None,
    max_wait_s: Annotated[
        float, typer.Option("--max-wait", help="Seconds to wait for the server's export")
    ] = 3600.0,
    background: Annotated[
        bool, typer.Option("--background", help="Queue it as a job for the workers instead")
    ] = False,
) -> None:
    """Bulk Data $export of the server into a folder (one NDJSON file per output), as a
    job: here with its progress, or queued for the workers with --background."""
    from pacsync.bootstrap import fhir_export, jobs

    wanted = [t.strip() for t in (types or "").split(",") if t.strip()]
    settings = Settings()
    store = bootstrap.store(settings)
    wiring.endpoint(store, connection)  # an unknown connection is refused before queueing
    request = fhir_export.export_request(connection, into, types=wanted,
                                         since=_since(since, into), group=group,
                                         max_wait_s=max_wait_s)  # fmt: skip
    if background:
        job_id, _ = jobs.submit(settings, request, store=store)
        console.print(f"job [bold]{job_id[:8]}[/] queued: export of {connection} into {into} "
                      f"(pacsync jobs show {job_id[:8]})", highlight=False)  # fmt: skip
        return
    job_id, _ = jobs.create_job(store, request)
    started = time.perf_counter()
    with console.status("kicking off the export") as status:
        runner = fhir_export.ExportJobs(store, f"cli-{os.getpid()}", progress=status.update)
        outcome = runner.run(job_id, connection, request.args)
    failed = error_from_dict(outcome.get("error"))
    if failed is not None:
        raise failed
    took = time.perf_counter() - started
    table = Table(title=f"exported into {into} (job {job_id[:8]})")
    for column in ("type", "resources"):
        table.add_column(column)
    for rtype, count in sorted(outcome["counts"].items()):
        table.add_row(rtype, str(count))
    console.print(table)
    total = int(outcome["resources"])
    rate = total / took if took > 0 else 0.0
    console.print(
        f"{total} resources in {took:.1f} s ({rate:.0f}/s), {outcome['polls']} polls; "
        f"transaction time {outcome['transaction_time']} (next: --since last)",
        highlight=False,
    )


@app.command("sync")
@reports_errors
def sync(
    connection: ConnectionArg,
    direction: Annotated[
        str, typer.Option("--direction", help="inbound, outbound or both")
    ] = "both",
    patient: Annotated[
        str | None, typer.Option("--patient", help="Sync this patient's records only")
    ] = None,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy",
            help="When both sides changed an element: last-write-wins, local-wins, "
            "remote-wins, field-merge or manual (a conflict to decide)",
        ),
    ] = "manual",
    fallback: Annotated[
        str, typer.Option("--fallback", help="field-merge's strategy for elements both changed")
    ] = "manual",
    remote_wins: Annotated[
        str | None,
        typer.Option("--remote-wins", help="Elements the server always wins, e.g. telecom"),
    ] = None,
    rules_path: Annotated[
        Path | None,
        typer.Option(
            "--rules", help="YAML file of auto-resolution rules (rules: {telecom: remote})"
        ),
    ] = None,
    types: Annotated[
        str | None, typer.Option("--type", help="Resource types, e.g. Patient,Observation")
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Compare every record (finds server deletions)")
    ] = False,
    background: Annotated[
        bool, typer.Option("--background", help="Queue it as a job for the workers instead")
    ] = False,
) -> None:
    """Sync pacsync's FHIR resources with the server, one way or both; records both sides
    changed are settled by --strategy or wait in `pacsync`'s conflicts (/api/v1/conflicts)."""
    from pacsync.bootstrap import fhir_sync, jobs
    from pacsync.bootstrap.events import EventSink

    wanted = [t.strip() for t in (types or "").split(",") if t.strip()]
    wins = [e.strip() for e in (remote_wins or "").split(",") if e.strip()]
    rules = fhir_sync.rules_of(rules_path, wins)
    settings = Settings()
    store = bootstrap.store(settings)
    wiring.endpoint(store, connection)
    request = fhir_sync.sync_request(
        connection, direction=direction, full=full, patient=patient, strategy=strategy,
        fallback=fallback, rules=rules, types=wanted or fhir_sync.DEFAULT_TYPES,
    )  # fmt: skip
    if background:
        job_id, _ = jobs.submit(settings, request, store=store)
        console.print(f"job [bold]{job_id[:8]}[/] queued: sync of {connection} "
                      f"(pacsync jobs show {job_id[:8]})", highlight=False)  # fmt: skip
        return
    job_id, _ = jobs.create_job(store, request)
    events = EventSink(settings, store)  # conflicts opened are announced to the webhooks
    try:
        runner = fhir_sync.SyncJobs(store, f"cli-{os.getpid()}", events)
        outcome = runner.run(job_id, connection, request.args)
    finally:
        events.close()
    failed = error_from_dict(outcome.get("error"))
    if failed is not None:
        raise failed
    table = Table(title=f"sync of {connection} ({direction}, job {job_id[:8]})")
    names = ("pulled", "pushed", "deleted_local", "deleted_remote", "conflicts", "waiting",
             "unchanged")  # fmt: skip
    for column in ("type", *names):
        table.add_column(column)
    for rtype, counts in outcome["counts"].items():
        table.add_row(rtype, *(str(counts.get(n, 0)) for n in names))
    console.print(table)


@app.command("vendors")
def vendors() -> None:
    """The vendor profiles: auth, URL patterns, Bulk levels, limits (verified or not)."""
    table = Table(title="FHIR vendor profiles")
    for column in ("key", "vendor", "base URL", "bulk export", "limits", "verified"):
        table.add_column(column)
    for profile in PROFILES.values():
        table.add_row(
            profile.key,
            profile.name,
            profile.base_url_pattern,
            ", ".join(level.value for level in profile.bulk_levels) or "-",
            "; ".join(limit.text for limit in profile.limits) or "-",
            "yes" if profile.verified else "no",
        )
    console.print(table)

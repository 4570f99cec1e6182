"""``pacsync archive``: imaging roots (DICOM folders, legacy Firebird + JPEG 2000
stores) and their scans into the index."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pacsync import bootstrap
from pacsync.bootstrap import archives as wiring
from pacsync.bootstrap import jobs
from pacsync.cli.console import EXIT_FAILED, EXIT_INTERRUPTED, console, reports_errors
from pacsync.config import Settings
from pacsync.db.archives import KINDS
from pacsync.db.audit import local_actor
from pacsync.domain.legacy_mapping import LegacyMapping
from pacsync.errors import ConfigError, InvalidRequest
from pacsync.imaging.scan import ScanCounts

app = typer.Typer(
    help="Imaging archives: add roots, scan them into the index.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="The archive's name")]


@app.command("add")
@reports_errors
def add(
    name: NameArg,
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}")],
    path: Annotated[
        Path | None, typer.Argument(help="The root folder of DICOM files (dicom)")
    ] = None,
    images: Annotated[
        Path | None, typer.Option(help="The folder of JPEG 2000 images (firebird-j2k)")
    ] = None,
    dsn: Annotated[
        str | None, typer.Option(help="The legacy Firebird database: host/port:/path.fdb")
    ] = None,
    user: Annotated[str | None, typer.Option(help="The legacy database user")] = None,
    password_env: Annotated[
        str,
        typer.Option(help="Environment variable holding the legacy database password"),
    ] = "PACSYNC_ARCHIVE_PASSWORD",
    mapping: Annotated[
        Path | None, typer.Option(help="YAML file naming the legacy tables and columns")
    ] = None,
    charset: Annotated[str | None, typer.Option(help="Legacy text character set")] = None,
    rescan_minutes: Annotated[
        int, typer.Option(min=0, help="Rescan every this many minutes (0: never)")
    ] = 15,
    watch: Annotated[bool, typer.Option(help="Watch the folder for new files")] = False,
) -> None:
    """Add an archive root: `add CT-NAS dicom /mnt/ct` or
    `add NAS2 firebird-j2k --dsn host:/data/pacs.fdb --images /mnt/nas2`."""
    settings = Settings()
    store = bootstrap.store(settings)
    options: dict[str, Any] = {"watch": watch}
    password = None
    if kind == "dicom":
        if path is None:
            raise InvalidRequest(
                "a dicom archive needs its root folder", hint="pacsync archive add NAME dicom PATH"
            )
        root = path
    elif kind == "firebird-j2k":
        if images is None or dsn is None:
            raise InvalidRequest(
                "a firebird-j2k archive needs --dsn and --images",
                hint="pacsync archive add NAME firebird-j2k --dsn host:/path.fdb --images PATH",
            )
        root = images
        options |= {"dsn": dsn, "user": user, "charset": charset}
        options["mapping"] = _mapping(mapping)
        password = os.environ.get(password_env)
    else:
        raise InvalidRequest(
            f"unknown archive kind {kind!r}", hint=f"Use one of: {', '.join(KINDS)}."
        )
    view = store.archives.add(
        name,
        kind,
        str(root.resolve()),
        options=options,
        password=password,
        rescan_minutes=rescan_minutes,
    )
    console.print(f"archive [bold]{view.name}[/] ({view.kind}) at {view.path}", highlight=False)
    console.print(f"scan it now: pacsync archive scan {view.name}", highlight=False)


def _mapping(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return LegacyMapping.model_validate(data).model_dump(mode="json")
    except (OSError, yaml.YAMLError, ValueError) as error:
        first = f"{path}: {error}".splitlines()[0]
        raise ConfigError(first, hint="Fix the mapping file; the message names the key.") from None


@app.command("list")
@reports_errors
def list_archives() -> None:
    """Every archive with its status and index counts."""
    store = bootstrap.store(Settings())
    table = Table(title="archives")
    for column in ("name", "kind", "path", "status", "patients", "studies", "instances",
                   "failed files", "last scan"):  # fmt: skip
        table.add_column(column)
    for a in store.archives.list():
        failed = a.counts.get("files_invalid", 0) + a.counts.get("files_unreadable", 0)
        table.add_row(
            a.name, a.kind, a.path, a.status + (f" ({a.status_reason})" if a.status_reason else ""),
            f"{a.counts.get('patients', 0):,}", f"{a.counts.get('studies', 0):,}",
            f"{a.counts.get('instances', 0):,}", f"{failed:,}",
            a.last_scan_at.isoformat(timespec="seconds") if a.last_scan_at else "never",
        )  # fmt: skip
    console.print(table)


@app.command("scan")
@reports_errors
def scan(
    name: NameArg,
    full: Annotated[bool, typer.Option("--full", help="Re-read every file")] = False,
    background: Annotated[
        bool, typer.Option("--background", help="Queue it for the workers instead")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar")] = False,
) -> None:
    """Scan an archive into the index (incremental unless --full), as a job."""
    settings = Settings()
    store = bootstrap.store(settings)
    store.archives.require(name, counts=False)
    request = wiring.scan_request(name, full=full)
    if background:
        job_id, _ = jobs.submit(settings, request, store=store)
        console.print(f"job [bold]{job_id[:8]}[/] queued: scan of {name}", highlight=False)
        return
    job_id, _ = jobs.create_job(store, request)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, disable=quiet, transient=True,
    ) as bars:  # fmt: skip
        task = bars.add_task(f"scan {name}", total=None)

        def shown(counts: ScanCounts, todo: int) -> None:
            done = counts.indexed + counts.invalid + counts.unreadable
            bars.update(task, completed=done, total=todo or None)

        outcome = wiring.ScanJobs(settings, store, f"cli-{os.getpid()}",
                                  progress=lambda: shown).run(job_id, name, full)  # fmt: skip
    _print_outcome(job_id, outcome)
    if outcome["status"] == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)
    if outcome["status"] != "succeeded":
        raise typer.Exit(EXIT_FAILED)


def _print_outcome(job_id: str, outcome: dict[str, Any]) -> None:
    if "error" in outcome and "seen" not in outcome:
        error = outcome["error"]
        console.print(f"[red]{error['code']}[/] {error['message']}", highlight=False)
        console.print(f"hint: {error['hint']}", highlight=False)
        return
    console.print(
        f"job {job_id[:8]}: {outcome['status']} — {outcome['seen']:,} files seen, "
        f"{outcome['unchanged']:,} unchanged, {outcome['new']:,} new, "
        f"{outcome['changed']:,} changed, {outcome['moved']:,} moved, "
        f"{outcome['deleted']:,} deleted; {outcome['indexed']:,} indexed, "
        f"{outcome['invalid']:,} invalid, {outcome['unreadable']:,} unreadable, "
        f"{outcome['conflicts']:,} identity conflicts",
        highlight=False,
    )
    for problem in outcome.get("problems", []):
        console.print(f"[yellow]not listed[/] {problem}", highlight=False)
    if outcome.get("reason"):
        console.print(f"PACS-402 {outcome['reason']}", highlight=False)


@app.command("status")
@reports_errors
def status(
    name: NameArg,
    errors: Annotated[bool, typer.Option("--errors", help="List files that failed")] = False,
) -> None:
    """An archive's status, counts, last scan and open identity conflicts."""
    store = bootstrap.store(Settings())
    a = store.archives.require(name)
    console.print(f"[bold]{a.name}[/] ({a.kind}) {a.path}", highlight=False)
    console.print(f"status: {a.status}" + (f" — {a.status_reason}" if a.status_reason else ""),
                  highlight=False)  # fmt: skip
    for key, value in sorted(a.counts.items()):
        console.print(f"  {key}: {value:,}", highlight=False)
    if a.last_scan:
        console.print(f"last scan {a.last_scan_at}: {a.last_scan}", highlight=False)
    for conflict in store.archives.identity_conflicts(name, limit=20):
        console.print(
            f"[yellow]identity conflict {conflict['id']}[/] patient {conflict['patient_id']!r} "
            f"({conflict['scope']}): {conflict['reason']} — {conflict['path']}",
            highlight=False,
        )
    if errors:
        for row in store.archives.problem_files(name):
            console.print(f"[red]{row['state']}[/] {row['path']}: {row['reason']}",
                          highlight=False)  # fmt: skip


@app.command("remove")
@reports_errors
def remove(name: NameArg) -> None:
    """Remove an archive and its index entries (its files are not touched)."""
    store = bootstrap.store(Settings())
    store.archives.require(name)
    store.archives.remove(name)
    console.print(f"archive {name} removed from the index", highlight=False)


@app.command("resolve")
@reports_errors
def resolve(
    name: NameArg,
    conflict_id: Annotated[int, typer.Argument(help="The identity conflict's id")],
    note: Annotated[str, typer.Option("--note", help="What the review found and did")],
) -> None:
    """Close an identity conflict after review (a quarantined instance stays held back
    until its file is corrected and scanned again)."""
    store = bootstrap.store(Settings())
    store.archives.require(name)
    store.archives.resolve_conflict(name, conflict_id, local_actor(), note)
    console.print(f"identity conflict {conflict_id} of {name} resolved", highlight=False)

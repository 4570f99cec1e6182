"""The ``pacsync`` command."""

from __future__ import annotations

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli import (
    archive,
    audit,
    conflicts,
    dead_letters,
    dicom,
    dicom_listen,
    fhir,
    hl7,
    jobs,
    keys,
    schedule,
    search,
    serve,
    status,
    study,
    sync,
    viewer_links,
    worker,
    worklist,
)
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings, list_pipelines, load_pipeline
from pacsync.errors import PacsyncError

app = typer.Typer(
    name="pacsync",
    help="Move records out of legacy systems into a modern store, reliably and incrementally.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("run")(sync.run)
app.command("check")(sync.check)
app.command("reconcile")(sync.reconcile_command)
app.command("worker")(worker.worker)
app.command("status")(status.status)
app.command("serve")(serve.serve)
app.command("audit")(audit.audit)
app.add_typer(jobs.app, name="jobs")
app.add_typer(dead_letters.app, name="dead-letters")
app.add_typer(conflicts.app, name="conflicts")
app.add_typer(schedule.app, name="schedule")
app.add_typer(keys.app, name="keys")
app.add_typer(archive.app, name="archive")
app.add_typer(dicom.app, name="dicom")
app.add_typer(study.app, name="study")
app.add_typer(worklist.app, name="worklist")
app.add_typer(hl7.app, name="hl7")
app.add_typer(fhir.app, name="fhir")
app.add_typer(viewer_links.app, name="viewer-links")
app.command("search")(search.search)
app.command("dicom-listen")(dicom_listen.listen)


@app.command()
@reports_errors
def init() -> None:
    """Create the pacsync home folder and its store (idempotent)."""
    settings = Settings()
    (settings.home / "pipelines").mkdir(parents=True, exist_ok=True)
    bootstrap.store(settings)
    console.print(f"pacsync home: {settings.home.resolve()}", highlight=False)
    console.print(f"store: {settings.store_url}", highlight=False)
    console.print(
        f"put pipeline files in {(settings.home / 'pipelines').resolve()}", highlight=False
    )


@app.command()
@reports_errors
def pipelines() -> None:
    """Pipelines found in the pipeline folders."""
    table = Table(title="pipelines")
    for column in ("name", "file", "entities", "status"):
        table.add_column(column)
    for path in list_pipelines(Settings()):
        try:
            spec = load_pipeline(path)
            table.add_row(spec.name, str(path), ", ".join(spec.entities), "ok")
        except PacsyncError as error:
            table.add_row(path.stem, str(path), "-", f"{error.code} {error.message}")
    console.print(table)


def main() -> None:
    app()

"""``pacsync worklist``: the procedures scheduled for modalities, which query them
by Modality Worklist C-FIND (`pacsync dicom listen` answers)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.bootstrap import worklist as wiring
from pacsync.cli.auditing import audited
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.db.worklist import WorklistStore
from pacsync.domain.matching import date
from pacsync.domain.worklist import ProcedureStatus, ScheduledProcedure

app = typer.Typer(help="Modality Worklist: schedule, list and cancel procedures.",
                  no_args_is_help=True)  # fmt: skip
SOURCE = "cli"


@app.command("add")
@reports_errors
def add(
    accession: Annotated[str, typer.Option("--accession", help="Accession number (≤ 16)")],
    patient_id: Annotated[str, typer.Option("--patient-id", help="Patient ID")],
    patient_name: Annotated[str, typer.Option("--patient-name", help="DOE^JOHN")],
    modality: Annotated[str, typer.Option("--modality", help="CT, MR, US, …")],
    station: Annotated[str, typer.Option("--station", help="Scheduled station AE title")],
    start: Annotated[str, typer.Option("--start", help="2026-11-24T09:30 or 202611240930")],
    study: Annotated[str | None, typer.Option("--study", help="Study Instance UID")] = None,
    birth_date: Annotated[str, typer.Option("--birth-date", help="YYYYMMDD")] = "",
    sex: Annotated[str, typer.Option("--sex", help="M, F or O")] = "",
    procedure: Annotated[str, typer.Option("--procedure", help="Requested procedure")] = "",
    procedure_id: Annotated[str, typer.Option("--procedure-id", help="Default: accession")] = "",
    step: Annotated[str, typer.Option("--step", help="Step description")] = "",
    step_id: Annotated[str, typer.Option("--step-id", help="Default: the accession")] = "",
    station_name: Annotated[str, typer.Option("--station-name")] = "",
    referring: Annotated[str, typer.Option("--referring", help="Referring physician")] = "",
    performing: Annotated[str, typer.Option("--performing", help="Performing physician")] = "",
) -> None:
    """Schedule a procedure step: `add --accession A1 --patient-id P1 --patient-name
    DOE^JOHN --modality CT --station CT1 --start 2026-11-24T09:30`."""
    store = bootstrap.store(Settings())
    given = {
        "accession_number": accession, "patient_id": patient_id, "patient_name": patient_name,
        "modality": modality, "station_ae": station, "start": start, "study_uid": study,
        "patient_birth_date": birth_date, "patient_sex": sex,
        "requested_procedure_description": procedure, "requested_procedure_id": procedure_id,
        "step_description": step, "step_id": step_id, "station_name": station_name,
        "referring_physician": referring, "performing_physician": performing,
    }  # fmt: skip
    with audited(store, "worklist.add", accession) as detail:
        added = wiring.schedule(store, given, source=SOURCE)
        detail["procedure"] = added.id
    p = added.procedure
    console.print(
        f"procedure {added.id} scheduled: {p.modality} on {p.station_ae} at "
        f"{p.start.isoformat(sep=' ', timespec='minutes')} for {p.patient_name} "
        f"({p.patient_id}), accession {p.accession_number}",
        highlight=False,
    )


@app.command("list")
@reports_errors
def list_procedures(
    station: Annotated[str | None, typer.Option(help="Only this station AE title")] = None,
    day: Annotated[str | None, typer.Option("--date", help="Only this day (YYYYMMDD)")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Cancelled ones too")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Scheduled procedure steps by start time."""
    start_from = start_to = None
    if day:
        start_from = dt.datetime.strptime(date(day, "--date"), "%Y%m%d")
        start_to = start_from + dt.timedelta(days=1)
    found, total = WorklistStore(bootstrap.store(Settings()).engine).page(
        status=None if everything else ProcedureStatus.SCHEDULED, station_ae=station,
        start_from=start_from, start_to=start_to, limit=limit,
    )  # fmt: skip
    if as_json:
        for item in found:
            typer.echo(json.dumps(item.as_dict(), default=str))
        return
    table = Table(title=f"worklist: {len(found)} of {total} procedure(s)")
    for column in ("id", "start", "station", "modality", "accession", "patient", "name",
                   "procedure", "study", "status"):  # fmt: skip
        table.add_column(column)
    for item in found:
        table.add_row(*_row(item))
    console.print(table)


def _row(item: ScheduledProcedure) -> list[str]:
    p = item.procedure
    return [str(item.id), p.start.isoformat(sep=" ", timespec="minutes"), p.station_ae,
            p.modality, p.accession_number, p.patient_id, p.patient_name,
            p.requested_procedure_description, p.study_uid or "", item.status.value]  # fmt: skip


@app.command("cancel")
@reports_errors
def cancel(procedure_id: Annotated[int, typer.Argument(help="The procedure's id")]) -> None:
    """Cancel a scheduled procedure: modalities no longer see it."""
    store = bootstrap.store(Settings())
    with audited(store, "worklist.cancel", str(procedure_id)):
        cancelled = wiring.cancel(store, procedure_id)
    console.print(
        f"procedure {cancelled.id} (accession {cancelled.procedure.accession_number}) cancelled",
        highlight=False,
    )

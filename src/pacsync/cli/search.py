"""``pacsync search``: find studies, series or instances across every archive."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from pacsync import bootstrap
from pacsync.cli.console import console, reports_errors
from pacsync.config import Settings
from pacsync.imaging.search import Query

_COLUMNS = {
    "study": ["archive", "PatientName", "PatientID", "PatientBirthDate", "StudyDate",
              "ModalitiesInStudy", "StudyDescription", "AccessionNumber",
              "NumberOfStudyRelatedInstances"],
    "series": ["archive", "PatientName", "PatientID", "StudyDate", "Modality", "SeriesNumber",
               "SeriesDescription", "NumberOfSeriesRelatedInstances"],
    "instance": ["archive", "PatientName", "PatientID", "Modality", "InstanceNumber",
                 "SOPInstanceUID", "path"],
}  # fmt: skip


@reports_errors
def search(
    name: Annotated[
        str | None, typer.Argument(help="Patient name, DICOM wild cards allowed: 'DOE^J*'")
    ] = None,
    patient_id: Annotated[str | None, typer.Option("--id", help="Patient ID")] = None,
    modality: Annotated[str | None, typer.Option(help="CT, MR, … (CT\\MR for either)")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Studies on or after")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Studies on or before")] = None,
    accession: Annotated[str | None, typer.Option(help="Accession number")] = None,
    study: Annotated[str | None, typer.Option(help="Study Instance UID")] = None,
    level: Annotated[str, typer.Option(help="study, series or instance")] = "study",
    archive: Annotated[
        list[str] | None, typer.Option(help="Only these archives (repeatable)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """Search the index of every archive; each result says where it lives."""
    match: dict[str, str] = {}
    if name:
        match["PatientName"] = name
    if patient_id:
        match["PatientID"] = patient_id
    if modality:
        match["ModalitiesInStudy" if level == "study" else "Modality"] = modality
    if date_from or date_to:
        match["StudyDate"] = f"{date_from or ''}-{date_to or ''}"
    if accession:
        match["AccessionNumber"] = accession
    if study:
        match["StudyInstanceUID"] = study
    query = Query.build(level, match, archives=archive or [], limit=limit, offset=offset)
    rows = bootstrap.store(Settings()).archive_search.search(query)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str, ensure_ascii=False))
        return
    table = Table(title=f"{len(rows)} {level} results")
    columns = _COLUMNS[level]
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
    console.print(table)

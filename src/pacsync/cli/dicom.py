"""``pacsync dicom``: DICOM nodes (PACS, modalities) and what pacsync asks of them —
echo, find, move, get and store."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pacsync import bootstrap
from pacsync.bootstrap import dicom_nodes as wiring
from pacsync.cli.console import EXIT_FAILED, console, reports_errors
from pacsync.config import Settings
from pacsync.errors import InvalidRequest
from pacsync.jobs.outcome import error_from_dict
from pacsync.jobs.request import JobRequest

app = typer.Typer(
    help="DICOM nodes: add them, echo, find, move, get and store.", no_args_is_help=True
)
node_app = typer.Typer(help="Configured DICOM nodes.", no_args_is_help=True)
app.add_typer(node_app, name="node")

NodeArg = Annotated[str, typer.Argument(help="The node's name (pacsync dicom node list)")]
StudyOpt = Annotated[str | None, typer.Option("--study", help="Study Instance UID")]
SeriesOpt = Annotated[str | None, typer.Option("--series", help="Series Instance UID")]
InstanceOpt = Annotated[str | None, typer.Option("--instance", help="SOP Instance UID")]

_COLUMNS = {
    "PATIENT": ["PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                "NumberOfPatientRelatedStudies"],
    "STUDY": ["PatientID", "PatientName", "StudyDate", "ModalitiesInStudy", "StudyDescription",
              "AccessionNumber", "NumberOfStudyRelatedInstances", "StudyInstanceUID"],
    "SERIES": ["SeriesNumber", "Modality", "SeriesDescription", "NumberOfSeriesRelatedInstances",
               "SeriesInstanceUID"],
    "IMAGE": ["InstanceNumber", "SOPClassUID", "SOPInstanceUID"],
}  # fmt: skip


def _option(text: str) -> tuple[str, Any]:
    """``key=value`` with a YAML value (numbers, lists, mappings), dotted keys nest."""
    key, eq, raw = text.partition("=")
    if not eq or not key.strip():
        raise InvalidRequest(f"invalid option {text!r}", hint="Give options as key=value.")
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for text in pairs:
        key, value = _option(text)
        *parents, last = key.split(".")
        into = options
        for parent in parents:
            into = into.setdefault(parent, {})
        into[last] = value
    return options


@node_app.command("add")
@reports_errors
def node_add(
    name: Annotated[str, typer.Argument(help="A name for the node, e.g. sectra")],
    url: Annotated[str, typer.Argument(help="dicom://CALLED_AE@host:port")],
    calling_ae: Annotated[
        str | None, typer.Option("--calling-ae", help="Our AE title towards it")
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            help="key=value (repeatable): timeouts.connect=5, max_pdu=0, "
            "secondary=dicom://AE@host2:104, retry.attempts=3, retry.backoff_s=2, "
            "query_cache_s=60, tls.ca=…",
        ),
    ] = None,
) -> None:
    """Add (or replace) a DICOM node: `node add sectra dicom://SECTRA@pacs:104`."""
    options = _options(option or [])
    if calling_ae:
        options["calling_ae"] = calling_ae
    store = bootstrap.store(Settings())
    node = wiring.add_node(store, name, url, options)
    console.print(
        f"DICOM node [bold]{node.name}[/] {node.address.ae_title}@{node.address.host}:"
        f"{node.address.port} (we are {node.calling_ae}); check it: pacsync dicom echo {name}",
        highlight=False,
    )


@node_app.command("list")
@reports_errors
def node_list() -> None:
    """Every configured DICOM node."""
    table = Table(title="DICOM nodes")
    for column in ("name", "called AE", "host", "port", "calling AE", "TLS", "secondary"):
        table.add_column(column)
    for n in wiring.nodes(bootstrap.store(Settings())):
        secondary = n.secondary
        table.add_row(
            n.name, n.address.ae_title, n.address.host, str(n.address.port), n.calling_ae,
            "yes" if n.tls else "no",
            f"{secondary.ae_title}@{secondary.host}:{secondary.port}" if secondary else "",
        )  # fmt: skip
    console.print(table)


@app.command("echo")
@reports_errors
def echo(node: NodeArg) -> None:
    """C-ECHO: is the node there, and how fast does it answer?"""
    from pacsync.connectors.dicom import scu

    target = wiring.node(bootstrap.store(Settings()), node)
    took = scu.echo(target)
    console.print(f"{target.name}: echo ok in {took * 1000:.1f} ms", highlight=False)


@app.command("find")
@reports_errors
def find(
    node: NodeArg,
    level: Annotated[str, typer.Option(help="patient, study, series or image")] = "study",
    patient_id: Annotated[str | None, typer.Option(help="Patient ID (wildcards * ?)")] = None,
    name: Annotated[str | None, typer.Option(help="Patient name: 'DOE^*'")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="Studies on or after")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="Studies on or before")] = None,
    modality: Annotated[
        list[str] | None, typer.Option(help="CT, MR, … (repeatable: any of them)")
    ] = None,
    accession: Annotated[str | None, typer.Option(help="Accession number")] = None,
    study: StudyOpt = None,
    series: SeriesOpt = None,
    key: Annotated[
        list[str] | None, typer.Option(help="Any other key: Keyword=value (repeatable)")
    ] = None,
    limit: Annotated[int, typer.Option(min=0, help="At most this many (0: all)")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """C-FIND: patients, studies, series or images on the node."""
    from pacsync.connectors.dicom import scu
    from pacsync.connectors.dicom.query import Level, date_range, level_of, value_list

    chosen = level_of(level)
    keys: dict[str, str] = {}
    for text in key or []:
        keyword, value = _option(text)
        keys[keyword] = str(value)
    given = {"PatientID": patient_id, "PatientName": name, "AccessionNumber": accession,
             "StudyInstanceUID": study, "SeriesInstanceUID": series}  # fmt: skip
    keys |= {k: v for k, v in given.items() if v}
    if date_from or date_to:
        keys["StudyDate"] = date_range(date_from, date_to)
    if modality:
        keys["ModalitiesInStudy" if chosen is Level.STUDY else "Modality"] = value_list(modality)
    target = wiring.node(bootstrap.store(Settings()), node)
    found = scu.find(target, chosen, keys, limit)
    if as_json:
        for answer in found:
            typer.echo(json.dumps(answer))
        return
    table = Table(title=f"{target.name}: {len(found)} {chosen.value.lower()} answer(s)")
    columns = _COLUMNS[chosen.value]
    for column in columns:
        table.add_column(column)
    for answer in found:
        table.add_row(*(answer.get(c, "") for c in columns))
    console.print(table)


def _progress_bar(what: str) -> Progress:
    return Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _retrieve_progress(progress: Progress, task: Any) -> Any:
    def show(counts: Any) -> None:
        done = counts.completed + counts.failed + counts.warning
        detail = f"failed {counts.failed} warning {counts.warning}"
        progress.update(task, completed=done, total=max(counts.total, done), detail=detail)

    return show


def _require_study(study: str | None) -> str:
    if not study:
        raise InvalidRequest("which study?", hint="Give --study UID (find it with dicom find).")
    return study


BackgroundOpt = Annotated[
    bool, typer.Option("--background", help="Queue it as a job for the workers instead")
]


def _retrieve(request: JobRequest, what: str, background: bool) -> dict[str, Any]:
    """Queue the retrieve job, or run it here with a progress bar; its outcome."""
    from pacsync.bootstrap import dicom_retrieve, jobs

    settings = Settings()
    store = bootstrap.store(settings)
    wiring.node(store, request.pipeline)  # an unknown node is refused before queueing
    if request.args.get("into_archive"):
        wiring.archive_root(store, str(request.args["into_archive"]))
    if background:
        job_id, _ = jobs.submit(settings, request, store=store)
        console.print(f"job [bold]{job_id[:8]}[/] queued: {what} from {request.pipeline} "
                      f"(pacsync jobs show {job_id[:8]})", highlight=False)  # fmt: skip
        return {"status": "queued"}
    job_id, _ = jobs.create_job(store, request)
    with _progress_bar(what) as progress:
        task = progress.add_task(what, total=None, detail="")
        show = _retrieve_progress(progress, task)
        runner = dicom_retrieve.RetrieveJobs(settings, store, f"cli-{os.getpid()}",
                                             progress=lambda: show)  # fmt: skip
        outcome = runner.run(job_id, request.pipeline, request.args)
    failed = error_from_dict(outcome.get("error"))
    if failed is not None:  # the node refused or failed the retrieve itself
        raise failed
    return outcome


@app.command("move")
@reports_errors
def move(
    node: NodeArg,
    to: Annotated[str, typer.Option("--to", help="The destination AE title")],
    study: StudyOpt = None,
    series: SeriesOpt = None,
    instance: InstanceOpt = None,
    background: BackgroundOpt = False,
) -> None:
    """C-MOVE a study, series or instance from the node to another AE."""
    from pacsync.bootstrap.dicom_retrieve import retrieve_request

    request = retrieve_request(node, "move", _require_study(study), series=series,
                               instance=instance, destination=to)  # fmt: skip
    outcome = _retrieve(request, f"move to {to}", background)
    if background:
        return
    console.print(
        f"moved {outcome['completed']} instance(s) to {to} (failed {outcome['failed']}, "
        f"warning {outcome['warning']})",
        highlight=False,
    )
    if outcome["failed"]:
        raise typer.Exit(EXIT_FAILED)


@app.command("get")
@reports_errors
def get(
    node: NodeArg,
    study: StudyOpt = None,
    series: SeriesOpt = None,
    instance: InstanceOpt = None,
    into: Annotated[Path | None, typer.Option("--into", help="A folder to write to")] = None,
    into_archive: Annotated[
        str | None,
        typer.Option("--into-archive", help="A dicom archive: write to its root, then scan"),
    ] = None,
    background: BackgroundOpt = False,
) -> None:
    """C-GET a study, series or instance over our own association (no inbound port)."""
    from pacsync.bootstrap.dicom_retrieve import retrieve_request

    request = retrieve_request(node, "get", _require_study(study), series=series,
                               instance=instance, into=into, into_archive=into_archive)  # fmt: skip
    outcome = _retrieve(request, "get", background)
    if background:
        return
    console.print(
        f"received {outcome['completed']} instance(s) into {outcome['into']} (failed "
        f"{outcome['failed']}, warning {outcome['warning']})",
        highlight=False,
    )
    if "indexed" in outcome:
        console.print(f"archive {into_archive}: {outcome['indexed']} indexed", highlight=False)
    if outcome["failed"]:
        raise typer.Exit(EXIT_FAILED)


@app.command("store")
@reports_errors
def store(
    node: NodeArg,
    study: StudyOpt = None,
    series: SeriesOpt = None,
    file: Annotated[
        list[Path] | None, typer.Option("--file", help="A DICOM file to send (repeatable)")
    ] = None,
) -> None:
    """C-STORE an indexed study (or series) or DICOM files to the node."""
    from pacsync.connectors.dicom import storage
    from pacsync.connectors.dicom.status import Category, named

    settings = Settings()
    held = bootstrap.store(settings)
    target = wiring.node(held, node)
    if file:
        items: list[Path | bytes] = list(file)
    elif study:
        items = list(wiring.study_files(settings, held, study, series))
    else:
        raise InvalidRequest("what to send?", hint="Give --study UID or --file PATH.")
    results = storage.store(target, items)
    failed = [r for r in results if r.category is Category.FAILURE]
    if study and not file:
        wiring.record_sent(held, target.name, study, stored=len(results) - len(failed),
                           failed=len(failed))  # fmt: skip
    for r in failed:
        console.print(f"{r.source} {r.sop_instance_uid}: {named(r.status)} {r.detail}",
                      highlight=False)  # fmt: skip
    console.print(
        f"stored {len(results) - len(failed)} of {len(results)} instance(s) on {target.name}",
        highlight=False,
    )
    if failed:
        raise typer.Exit(EXIT_FAILED)


@app.command("health")
@reports_errors
def health(
    node: Annotated[str | None, typer.Argument(help="One node (default: every node)")] = None,
    slow_ms: Annotated[
        float, typer.Option(min=0.1, help="A query probe slower than this is DEGRADED")
    ] = 2000.0,
) -> None:
    """Echo and a query probe per node: HEALTHY, DEGRADED or UNHEALTHY, and why
    (exit code 1 unless every node is HEALTHY)."""
    from pacsync.connectors.dicom import health as node_health
    from pacsync.domain.node_health import HealthPolicy, NodeStatus

    store = bootstrap.store(Settings())
    targets = [wiring.node(store, node)] if node else wiring.nodes(store)
    if not targets:
        raise InvalidRequest("no DICOM nodes", hint="Add one with `pacsync dicom node add`.")
    policy = HealthPolicy(slow_probe_ms=slow_ms)
    table = Table(title="DICOM node health")
    for column in ("node", "status", "echo ms", "probe ms", "reasons"):
        table.add_column(column)
    colours = {NodeStatus.HEALTHY: "green", NodeStatus.DEGRADED: "yellow"}
    unwell = 0
    for target in targets:
        h = node_health.check(target, policy)
        unwell += h.status is not NodeStatus.HEALTHY
        probe = h.probe.ms if h.probe and h.probe.ms is not None else None
        table.add_row(
            h.node, f"[{colours.get(h.status, 'red')}]{h.status.value}[/]",
            "" if h.echo.ms is None else f"{h.echo.ms:.1f}",
            "" if probe is None else f"{probe:.1f}", "; ".join(h.reasons),
        )  # fmt: skip
    console.print(table)
    if unwell:
        raise typer.Exit(EXIT_FAILED)

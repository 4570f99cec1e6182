"""C-MOVE and C-GET from a DICOM node as jobs: ``pacsync dicom move|get … --background``
queues one for the workers (queue ``dicom-retrieve``, one retrieve per node at a
time); the foreground commands run the same job in their own process.

The job's progress is the sub-operation counts of the node's pending responses —
``{"entities": {"instances": {"read", "total", "completed", "remaining", "failed",
"warning"}}}`` (``read``: sub-operations done, so ``pacsync jobs`` and the jobs
endpoint show it like any job's records) — written at most every
``PROGRESS_EVERY_S`` and at the end.  Instances that failed fail the job with a
:class:`DimseFailure` naming how many; a retrieve that worked goes on the study's
timeline, and a C-GET into an archive is scanned into the index."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pacsync import bootstrap
from pacsync.bootstrap import archives
from pacsync.bootstrap import dicom_nodes as nodes
from pacsync.config import Settings
from pacsync.errors import DimseFailure, InvalidRequest, PacsyncError
from pacsync.jobs.queues import DICOM_RETRIEVE
from pacsync.jobs.request import JobRequest
from pacsync.ports import JobContext

if TYPE_CHECKING:
    from pacsync.connectors.dicom.retrieve import Progress, RetrieveResult, SubOperations
    from pacsync.domain.dicom_node import DicomNode

KIND = "dicom-retrieve"
ENTITY = "instances"
PROGRESS_EVERY_S = 0.5
Shown = Callable[["SubOperations"], None]


def retrieve_request(
    node: str,
    how: str,
    study: str,
    *,
    series: str | None = None,
    instance: str | None = None,
    destination: str | None = None,
    into: Path | None = None,
    into_archive: str | None = None,
    trigger: str = "manual",
) -> JobRequest:
    """The job of a C-MOVE (``how="move"``, to ``destination``) or a C-GET (into a
    folder or a dicom archive)."""
    if how == "move" and not destination:
        raise InvalidRequest("move to which AE?", hint="Give --to DESTINATION_AE.")
    if how == "get" and (into is None) == (into_archive is None):
        raise InvalidRequest("where to?", hint="Give either --into PATH or --into-archive NAME.")
    if how not in ("move", "get"):
        raise InvalidRequest(f"unknown retrieve {how!r}", hint="Use move or get.")
    args = {"how": how, "study": study, "series": series, "instance": instance,
            "destination": destination, "into": str(into.resolve()) if into else None,
            "into_archive": into_archive}  # fmt: skip
    return JobRequest(kind=KIND, pipeline=node, mode="full", trigger=trigger,
                      queue=DICOM_RETRIEVE, partition=node, args=args)  # fmt: skip


class Retriever(Protocol):
    """C-MOVE and C-GET as :mod:`pacsync.connectors.dicom.retrieve` does them."""

    def move(
        self, node: DicomNode, destination_ae: str, study_uid: str, *,
        series_uid: str | None = None, sop_uid: str | None = None, progress: Progress = ...,
    ) -> RetrieveResult: ...  # fmt: skip

    def get(
        self, node: DicomNode, into: Callable[[bytes], None], study_uid: str, *,
        series_uid: str | None = None, sop_uid: str | None = None, progress: Progress = ...,
    ) -> RetrieveResult: ...  # fmt: skip


def progress_of(counts: SubOperations) -> dict[str, Any]:
    done = counts.completed + counts.failed + counts.warning
    return {"entities": {ENTITY: {"read": done, "total": counts.total,
                                  "completed": counts.completed, "remaining": counts.remaining,
                                  "failed": counts.failed, "warning": counts.warning}}}  # fmt: skip


class RetrieveJobs:
    """The dicom-retrieve job: marks it running, retrieves with progress, records the
    outcome."""

    def __init__(
        self,
        settings: Settings,
        store: bootstrap.Store,
        executor_id: str,
        *,
        progress: Callable[[], Shown] = lambda: lambda counts: None,
        retriever: Retriever | None = None,
    ) -> None:
        self.settings, self.store, self.executor_id = settings, store, executor_id
        self.progress = progress
        self.retriever = retriever  # None: the DICOM connector's

    def __call__(self, ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        asked = JobRequest.from_dict(request)
        return dict(ctx.step("retrieve", self.run, ctx.job_id, asked.pipeline, asked.args))

    def run(self, job_id: str, node_name: str, args: dict[str, Any]) -> dict[str, Any]:
        from pacsync.connectors.dicom import retrieve  # pydicom: only retrieves pay for it

        retriever: Retriever = self.retriever or retrieve
        jobs = self.store.jobs
        jobs.start(job_id, self.executor_id)
        shown = self.progress()
        latest, written = progress_of(retrieve.SubOperations()), 0.0

        def report(counts: SubOperations) -> None:
            nonlocal latest, written
            shown(counts)
            latest = progress_of(counts)
            if time.monotonic() - written >= PROGRESS_EVERY_S:
                written = time.monotonic()
                jobs.progress(job_id, latest)

        study = str(args["study"])
        try:
            target = nodes.node(self.store, node_name)
            where = {"series_uid": args.get("series"), "sop_uid": args.get("instance")}
            if args["how"] == "move":
                into = str(args["destination"])
                result = retriever.move(target, into, study, progress=report, **where)
            else:
                into = args.get("into_archive") or str(args["into"])
                folder = (nodes.archive_root(self.store, into) if args.get("into_archive")
                          else Path(into))  # fmt: skip
                result = retriever.get(target, nodes.folder_writer(folder), study,
                                       progress=report, **where)  # fmt: skip
        except PacsyncError as failed:
            jobs.finish(job_id, "failed", latest, failed)
            return {"status": "failed", "error": failed.as_dict()}
        c = result.counts
        nodes.record_retrieved(self.store, node_name, study, how=str(args["how"]),
                               completed=c.completed, failed=c.failed, warning=c.warning,
                               into=into)  # fmt: skip
        outcome: dict[str, Any] = {"completed": c.completed, "failed": c.failed,
                                   "warning": c.warning, "into": into}  # fmt: skip
        if args.get("into_archive") and c.completed:
            scanned = archives.scan(self.settings, self.store, str(args["into_archive"]))
            outcome["indexed"] = scanned.counts.indexed
        error = None
        if c.failed:
            error = DimseFailure(
                f"DICOM node '{node_name}': {c.failed} of {c.total} instance(s) of study "
                f"{study} failed to {args['how']}", connection=node_name,
            )  # fmt: skip
        status = "failed" if error else "succeeded"
        jobs.finish(job_id, status, progress_of(c), error)
        return {**outcome, "status": status}

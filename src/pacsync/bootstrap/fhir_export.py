"""A Bulk export of a FHIR connection as a job: ``pacsync fhir export … --background``
queues one for the workers (queue ``sync-jobs``, partitioned by connection: one export
per connection at a time); the foreground command runs the same job in its own process.

The job's progress is the resources downloaded so far, by type —
``{"entities": {"Patient": {"read": 1000}, …}, "phase": "polling"}`` — so
``pacsync jobs`` and the jobs endpoint show it like any job's records.  A failed
export finishes the job with its coded error (transient or terminal as the FHIR
connector marked it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pacsync import bootstrap
from pacsync.bootstrap import fhir
from pacsync.connectors.fhir.bulk import ExportedFile
from pacsync.errors import PacsyncError
from pacsync.jobs.queues import SYNC
from pacsync.jobs.request import JobRequest
from pacsync.ports import JobContext

KIND = "fhir-export"


def export_request(
    connection: str,
    into: Path,
    *,
    types: list[str] | None = None,
    since: dt.datetime | None = None,
    group: str | None = None,
    max_wait_s: float = 3600.0,
    trigger: str = "manual",
) -> JobRequest:
    args = {"into": str(into.resolve()), "types": list(types or []),
            "since": since.isoformat() if since else None, "group": group,
            "max_wait_s": max_wait_s}  # fmt: skip
    mode = "incremental" if since else "full"
    return JobRequest(kind=KIND, pipeline=connection, mode=mode, trigger=trigger, queue=SYNC,
                      partition=f"fhir:{connection}", args=args)  # fmt: skip


class ExportJobs:
    """The fhir-export job: marks it running, exports with progress, records the
    outcome."""

    def __init__(
        self,
        store: bootstrap.Store,
        executor_id: str,
        *,
        progress: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.store, self.executor_id = store, executor_id
        self.progress = progress

    def __call__(self, ctx: JobContext, request: dict[str, Any]) -> dict[str, Any]:
        asked = JobRequest.from_dict(request)
        return dict(ctx.step("export", self.run, ctx.job_id, asked.pipeline, asked.args))

    def run(self, job_id: str, connection: str, args: dict[str, Any]) -> dict[str, Any]:
        jobs = self.store.jobs
        jobs.start(job_id, self.executor_id)
        counts: dict[str, dict[str, int]] = {}
        state: dict[str, Any] = {"entities": counts, "phase": "kick-off"}

        def said(text: str) -> None:
            self.progress(text)
            phase = "polling" if text.startswith(("in progress", "export accepted")) else None
            if phase and state["phase"] != phase:
                state["phase"] = phase
                jobs.progress(job_id, state)

        def downloaded(file: ExportedFile) -> None:
            entry = counts.setdefault(file.resource_type, {"read": 0})
            entry["read"] += file.resources
            state["phase"] = "download"
            jobs.progress(job_id, state)

        since = dt.datetime.fromisoformat(args["since"]) if args.get("since") else None
        try:
            result = fhir.export(
                self.store,
                connection,
                Path(args["into"]),
                types=list(args.get("types") or []),
                since=since,
                group=args.get("group"),
                max_wait_s=float(args.get("max_wait_s") or 3600.0),
                progress=said,
                downloaded=downloaded,
            )
        except PacsyncError as failed:
            jobs.finish(job_id, "failed", state, failed)
            return {"status": "failed", "error": failed.as_dict()}
        state["phase"] = "complete"
        jobs.finish(job_id, "succeeded", state)
        return {"status": "succeeded", "resources": result.resources, "counts": result.counts(),
                "polls": result.polls, "transaction_time": result.transaction_time,
                "into": args["into"]}  # fmt: skip

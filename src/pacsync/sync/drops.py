"""Loading dropped files into a destination: one entity, every complete file in turn.

Each record goes through the entity's mapping and validation like a table row.
A record the reader could not read (wrong column count, bad bytes, not JSON)
or whose key is empty or unreadable is parked whole as a dead letter with its
file, line and reason; the file goes on.  Records are written in batches with
a checkpoint naming the file (name, size, modification time, content hash) and
the records committed so far, so a stopped run resumes at the next record of
the same file, and a file changed since starts over.

Delta: a record whose fingerprint equals the one stored beside its target row
is not written again.  ``snapshot: true`` files hold every record, so stored
keys missing from a loaded file are deleted — unless the file had no records
or some could not be read (a record's key cannot be trusted then).

A file refused as a whole (wrong header, JSON or XML that stops being
well-formed) goes to error/; a loaded one to archive/, each with its report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pacsync.domain.checkpoint import Checkpoint
from pacsync.domain.drop_spec import DropSpec
from pacsync.domain.drops import (
    FileIdentity,
    FileReport,
    WrongColumns,
)
from pacsync.domain.mapping import mapping_version, source_columns
from pacsync.domain.records import EntityCounts, Key
from pacsync.domain.spec import EntitySpec, PipelineSpec
from pacsync.errors import DropFileRefused
from pacsync.ports import DeadLetters, Destination, DropFolder, JobLog, ProgressSink, WriteBatch
from pacsync.sync.committing import CommitsBatches
from pacsync.sync.drop_file import FileLoad
from pacsync.sync.pipeline import (
    ProgressTracker,
    RunResult,
    entity_outcome,
    monotonic_deadline,
)

MODE = "drop"


def drop_version(entity: EntitySpec) -> str:
    """The version of what shapes an entity's rows from its files: its mapping and how
    files are parsed, not where they are found or when they count as complete."""
    drop = entity.drop
    assert drop is not None
    where = ("drop", "pattern", "snapshot", "ready", "quiet_s", "marker", "archive", "error")
    fields = DropSpec.model_fields
    plain = {n: None if fields[n].is_required() else fields[n].get_default() for n in where}
    parsed = drop.model_copy(update=plain)
    return mapping_version(entity.model_copy(update={"source": parsed}))


class DropSync(CommitsBatches):
    """One run of one drop entity: every complete file waiting, in name order."""

    def __init__(
        self,
        spec: PipelineSpec,
        entity: str,
        *,
        folder: DropFolder,
        destination: Destination,
        dead_letters: DeadLetters,
        progress: ProgressSink,
        job_id: str | None = None,
        rewrite: bool = False,
        deadline: float | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.spec, self.name = spec, entity
        self.entity: EntitySpec = spec.entities[entity]
        drop = self.entity.drop
        if drop is None:
            raise ValueError(f"entity '{entity}' does not read dropped files")
        self.drop: DropSpec = drop
        self.folder, self.destination, self.progress = folder, destination, progress
        self.dead_letters = dead_letters
        self.job_id, self.rewrite = job_id, rewrite
        self.deadline, self.should_stop = deadline, should_stop
        self.batch_size = spec.batch_size_for(entity)
        self.version = drop_version(self.entity)
        self.needed = source_columns(self.entity)
        self.counts = EntityCounts()
        self.reports: list[tuple[str, FileReport]] = []  # (where the file went, its report)
        self.parked: set[Key] = set()

    def run(self) -> EntityCounts:
        self.destination.prepare(self.name)
        self.parked = self.dead_letters.open_keys(self.spec.name, self.name)
        saved = self.destination.load_checkpoint(self.name)
        names = self.folder.ready(self.name)
        self.progress.entity_started(self.name, None, MODE)
        runs = saved.completed_runs if saved else 0
        loading = saved if saved is not None and saved.phase == "full" else None
        for name in names:
            identity = self.folder.identify(self.name, name)
            if identity is None:  # taken away since it was listed
                continue
            resumed = None
            if (
                loading is not None
                and FileIdentity.from_dict(loading.extra.get("file")) == identity
            ):
                resumed = loading
            runs = self._file(identity, resumed, runs)
        self.progress.entity_done(self.name, self.counts)
        return self.counts

    # -- one file -------------------------------------------------------------------------------

    def _file(self, identity: FileIdentity, resumed: Checkpoint | None, runs: int) -> int:
        name = identity.name
        report = FileReport(file=name)
        offset = 0
        if resumed is not None:
            report = FileReport.from_dict(resumed.extra.get("report") or {"file": name})
            offset = int(resumed.extra.get("row", 0))
        checkpoint = Checkpoint(
            pipeline=self.spec.name,
            entity=self.name,
            mapping_version=self.version,
            phase="full",
            completed_runs=runs,
            extra={"file": identity.as_dict(), "row": offset, "report": report.as_dict()},
        )
        seen: set[Key] = set()
        loader: FileLoad | None = None
        try:
            with self.folder.records(self.name, name, self.needed) as records:
                loader = FileLoad(self, records.columns, identity, report, checkpoint)
                loader.load(records, offset, seen)
        except DropFileRefused as refused:
            if loader is not None:
                loader.flush()  # the records read before the fault
            report.outcome, report.reason = "refused", refused.message
            if isinstance(refused, WrongColumns):
                report.missing_columns = refused.missing
                report.unexpected_columns = refused.unexpected
        else:
            assert loader is not None
            report.outcome = "archived"
            if self.drop.snapshot:
                self._snapshot_deletes(loader, seen)
        report.rejects.sort(key=lambda entry: int(entry["record"]))
        where = self.folder.finish(self.name, name, report)
        self.reports.append((where, report))
        done = Checkpoint(
            pipeline=self.spec.name,
            entity=self.name,
            mapping_version=self.version,
            phase="idle",
            completed_runs=runs + 1,
            extra={"last_file": identity.as_dict(), "outcome": report.outcome},
        )
        self.commit(WriteBatch(), done, closing=True)
        return runs + 1

    def _snapshot_deletes(self, loader: FileLoad, seen: set[Key]) -> None:
        report = loader.report
        if not seen:
            report.reason = "snapshot with no records: nothing deleted"
            return
        if report.malformed:
            report.reason = "snapshot with unreadable records: nothing deleted"
            return
        gone = [k for k in self.destination.fingerprints(self.name) if k not in seen]
        for start in range(0, len(gone), self.batch_size):
            chunk = gone[start : start + self.batch_size]
            report.deleted += len(chunk)
            self.commit(WriteBatch(deletes=chunk), loader.checkpoint_now())

    # -- shared ---------------------------------------------------------------------------------


@dataclass(slots=True)
class DropRun:
    """What one job's drop entity runs share."""

    spec: PipelineSpec
    job_id: str
    folder: DropFolder
    destination: Destination
    dead_letters: DeadLetters
    job_log: JobLog
    progress: ProgressSink
    should_stop: Callable[[], bool] = lambda: False
    flush_s: float = 1.0
    deadline: float | None = None  # wall-clock (epoch seconds) end of the job's time budget
    refused: list[str] = field(default_factory=list)  # files refused so far, with where to


def refused_files(refused: Sequence[str]) -> DropFileRefused:
    """The error a job ends with when it refused files (after loading everything else)."""
    shown = "; ".join(refused[:3]) + (f"; and {len(refused) - 3} more" if len(refused) > 3 else "")
    return DropFileRefused(f"{len(refused)} file(s) refused: {shown}")


def run_drop_entity(
    ctx: DropRun, result: RunResult, name: str, mode: Literal["full", "incremental"]
) -> None:
    """Load the entity's waiting files into ``result``; a PacsyncError is recorded there,
    never raised.  ``full`` writes every record again, changed or not."""
    tracker = ProgressTracker(result, ctx.progress, ctx.job_log, ctx.flush_s)
    with entity_outcome(result, name, f"loading files of '{name}'"):
        sync = DropSync(
            ctx.spec,
            name,
            folder=ctx.folder,
            destination=ctx.destination,
            dead_letters=ctx.dead_letters,
            progress=tracker,
            job_id=ctx.job_id,
            rewrite=mode == "full",
            deadline=monotonic_deadline(ctx.deadline),
            should_stop=ctx.should_stop,
        )
        try:
            result.entities[name] = sync.run()
        finally:
            ctx.refused.extend(
                f"{report.file} → {where} ({report.reason})"
                for where, report in sync.reports
                if report.outcome == "refused"
            )
        result.modes[name] = MODE

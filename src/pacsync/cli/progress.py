"""A live progress bar per entity (rows, rate, ETA) while a pipeline runs."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from pacsync.cli.console import console
from pacsync.domain.records import EntityCounts


class RichProgress:
    """A :class:`pacsync.ports.ProgressSink` drawing Rich progress bars."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.bars = Progress(
            TextColumn("[bold]{task.fields[entity]:<12}[/] {task.fields[mode]:<15}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>9} rows/s"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def entity_started(self, entity: str, total: int | None, mode: str) -> None:
        self.tasks[entity] = self.bars.add_task(
            entity, total=total, entity=entity, mode=mode, rate="-"
        )

    def batch_done(self, entity: str, counts: EntityCounts) -> None:
        task_id = self.tasks.get(entity)
        if task_id is None:
            return
        task = self.bars.tasks[task_id]
        elapsed = task.elapsed or 0.0
        rate = f"{counts.read / elapsed:,.0f}" if elapsed > 0.05 else "-"
        self.bars.update(task_id, completed=counts.read, rate=rate)

    def entity_done(self, entity: str, counts: EntityCounts) -> None:
        task_id = self.tasks.get(entity)
        if task_id is None:
            return
        self.batch_done(entity, counts)
        self.bars.update(task_id, total=max(counts.read, 1), completed=max(counts.read, 1))

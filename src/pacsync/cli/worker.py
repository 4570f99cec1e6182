"""``pacsync worker``: serve the job queues until stopped."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from pacsync.bootstrap import jobs
from pacsync.cli.console import console, reports_errors, tune_collector
from pacsync.config import Settings
from pacsync.jobs.queues import QUEUES


@reports_errors
def worker(
    queues: Annotated[
        list[str] | None,
        typer.Option("--queues", "-q", help="Serve only these queues (repeatable)"),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Jobs at once per queue per worker; stored with the queues, so it applies "
            "to every worker of the site (the last one started with it wins)",
        ),
    ] = None,
    executor_id: Annotated[
        str | None,
        typer.Option("--id", help="Stable worker id; a restart with the same id resumes its jobs"),
    ] = None,
    stale_after: Annotated[
        float, typer.Option(min=1.0, help="Seconds without a heart-beat before a take-over")
    ] = 30.0,
    grace: Annotated[
        float, typer.Option(min=0.0, help="Seconds to finish running jobs when stopped")
    ] = 10.0,
) -> None:
    """Run jobs from the durable queues; takes over the jobs of workers that stopped."""
    unknown = [q for q in queues or [] if q not in QUEUES]
    if unknown:
        raise typer.BadParameter(
            f"unknown queue '{unknown[0]}'; queues are: {', '.join(QUEUES)}", param_hint="--queues"
        )
    name = executor_id or jobs.default_executor_id()
    stop = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    served = ", ".join(queues or QUEUES)
    tune_collector()
    jobs.run_worker(
        Settings(),
        executor_id=name,
        queues=queues,
        concurrency=concurrency,
        stop=stop,
        stale_after_s=stale_after,
        grace_s=grace,
        on_ready=lambda: console.print(f"worker {name} ready; queues: {served}", highlight=False),
    )
    console.print(f"worker {name} stopped", highlight=False)

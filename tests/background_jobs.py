"""A job queued by a ``--background`` command, run to its end by a real worker."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from typing import Any


def run_queued(pacsync: Any, store: Any, queued: Any, kind: str, timeout: float = 90) -> Any:
    """The job ``queued`` (the command's CompletedProcess) announced, checked to be a
    queued ``kind`` job on sync-jobs, after a worker serving that queue ended it."""
    found = re.search(r"job (\w{8}) queued", queued.stdout)
    assert found, queued.stdout + queued.stderr
    job = next(j for j in store.jobs.recent(limit=5) if j.id.startswith(found.group(1)))
    assert (job.kind, job.status, job.queue) == (kind, "queued", "sync-jobs")
    worker = pacsync.start("worker", "--id", kind, "--queues", "sync-jobs")
    try:
        deadline = time.monotonic() + timeout
        while (status := store.jobs.status_of(job.id)) in ("queued", "running"):
            assert worker.poll() is None, worker.communicate(timeout=5)
            assert time.monotonic() < deadline, f"the {kind} job is still {status}"
            time.sleep(0.3)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.communicate()
    ended = store.jobs.get(job.id)
    assert ended is not None
    return ended

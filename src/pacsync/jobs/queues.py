"""The named queues of the job layer and their defaults.

Concurrency defaults follow the systems pacsync replaces (sync 5, webhooks 10,
conflicts 3, transformations 10).  A partitioned queue runs jobs of one
partition — a pipeline, a connection, an archive — one at a time, so the same
pipeline never runs twice at once: a second start waits behind the first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` job starts per ``period_s`` seconds, per partition."""

    limit: int
    period_s: float


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    concurrency: int
    partition_by: str | None = None  # what a partition key names: pipeline, connection, ...
    partition_concurrency: int | None = None
    rate_limit: RateLimit | None = None
    # how often each worker asks for work: every poll is two queries on the store, so
    # idle workers cost CPU in proportion; queues users wait on poll more often
    polling_s: float = 0.5


SYNC = "sync-jobs"
WEBHOOKS = "webhook-delivery"
CONFLICTS = "conflict-resolution"
TRANSFORMS = "data-transformation"
ARCHIVES = "archive-scan"
MESSAGES = "message-processing"
DICOM_RETRIEVE = "dicom-retrieve"

QUEUES: dict[str, QueueSpec] = {
    q.name: q
    for q in (
        QueueSpec(SYNC, 5, partition_by="pipeline", partition_concurrency=1, polling_s=0.2),
        QueueSpec(WEBHOOKS, 10, partition_by="connection", rate_limit=RateLimit(20, 1.0)),
        QueueSpec(CONFLICTS, 3, polling_s=1.0),
        QueueSpec(TRANSFORMS, 10, polling_s=0.4),
        QueueSpec(ARCHIVES, 2, partition_by="archive", partition_concurrency=1, polling_s=1.0),
        QueueSpec(MESSAGES, 4, partition_by="connection", partition_concurrency=1, polling_s=0.4),
        # a node serves one C-MOVE or C-GET from pacsync at a time; nodes run side by side
        QueueSpec(
            DICOM_RETRIEVE, 4, partition_by="connection", partition_concurrency=1, polling_s=1.0
        ),
    )
}

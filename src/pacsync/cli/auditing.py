"""Audit records of CLI commands: the local user, the action, and how it ended."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pacsync import bootstrap
from pacsync.db.audit import local_actor
from pacsync.errors import PacsyncError


@contextmanager
def audited(
    store: bootstrap.Store, action: str, target: str, outcome: str = "ok"
) -> Iterator[dict[str, Any]]:
    """Record ``action`` on ``target`` when the block ends: ``outcome``, or the code of the
    PacsyncError it raised.  The block may fill in the yielded detail."""
    detail: dict[str, Any] = {}
    try:
        yield detail
    except PacsyncError as error:
        store.audit.record(
            actor=local_actor(), action=action, target=target, outcome=error.code, detail=detail
        )
        raise
    store.audit.record(
        actor=local_actor(), action=action, target=target, outcome=outcome, detail=detail
    )

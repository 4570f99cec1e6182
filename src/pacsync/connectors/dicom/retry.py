"""A DICOM node's retry policy applied to SCU operations.

An operation given a :class:`DicomNode` (its own association) is tried again when it
fails with a transient error — the node refused the connection, did not answer in
time, or aborted the association — up to ``retry.attempts`` attempts in all, waiting
``retry.backoff_s`` after the first failure and twice as long after each next one
(with jitter).  Each attempt tries the primary address, then the secondary.  A
terminal error (an A-ASSOCIATE-RJ, a DIMSE failure status, a file that is not DICOM)
ends it at once.  The decision is :func:`pacsync.jobs.retry.decide`'s: it looks only
at the transient/terminal marker.

An operation given a caller's :class:`~.association.Session` runs once: the session's
owner decides (a health check wants the node's state now, not after a backoff)."""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pacsync.domain.dicom_node import DicomNode
from pacsync.errors import TransientError
from pacsync.jobs.retry import RetryPolicy, decide

log = logging.getLogger("pacsync.dicom")

P = ParamSpec("P")
R = TypeVar("R")


def policy_of(node: DicomNode) -> RetryPolicy:
    return RetryPolicy(attempts=node.retry.attempts, base_delay=node.retry.backoff_s)


def attempt(
    call: Callable[[], R],
    node: DicomNode,
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
) -> R:
    """``call()`` under the node's retry policy; the last error when none succeeds."""
    policy = policy_of(node)
    tried = 0
    while True:
        tried += 1
        try:
            return call()
        except TransientError as error:
            decision = decide(error, tried, policy, rand)
            if not decision.retry:
                raise
            log.warning(
                "%s on DICOM node '%s' failed (attempt %d of %d): %s; again in %.1f s",
                what, node.name, tried, policy.attempts, error.message, decision.delay,
            )  # fmt: skip
            sleep(decision.delay)


def retried(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Apply the node's retry policy to an SCU operation whose first argument is the
    node (retried) or a session (run once)."""

    def wrap(call: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(call)
        def attempts(*args: P.args, **kwargs: P.kwargs) -> R:
            target = args[0]
            if not isinstance(target, DicomNode):
                return call(*args, **kwargs)
            return attempt(lambda: call(*args, **kwargs), target, what)

        return attempts

    return wrap

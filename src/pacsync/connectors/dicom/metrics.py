"""What this process asked of each DICOM node: operations, outcomes and response times.

:data:`RECORDER` counts every echo, find, move, get and store made through
:mod:`.scu`, :mod:`.retrieve` and :mod:`.storage` (their ``@recorded`` decorator) and keeps
each node's last outcomes for its error rate.  It is a Prometheus collector:
``register(registry)`` exposes

* ``pacsync_dicom_operations_total{node,operation,outcome}``
* ``pacsync_dicom_operation_seconds{node,operation}`` (a histogram: p50/p95/p99 with
  ``histogram_quantile``)

Outcomes: ``success``; ``failure`` (the node answered with a failure status or
rejected the association); ``unreachable`` (no answer, or the association dropped);
``error`` (refused before the node was asked, e.g. a file that is not DICOM).  The
error rate counts ``failure`` and ``unreachable``: they say something about the node.
The module imports no DICOM library, so the API can expose it cheaply.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from pacsync.domain.node_health import ErrorRate
from pacsync.errors import AssociationRejected, ConnectionTimeout, DimseFailure

#: seconds; C-ECHO and C-FIND answer in milliseconds, a C-MOVE of a study in minutes
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
WINDOW = 20  # the last operations per node the error rate looks at
WINDOW_S = 600.0  # older outcomes are forgotten


class Operation(StrEnum):
    ECHO = "echo"
    FIND = "find"
    MOVE = "move"
    GET = "get"
    STORE = "store"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNREACHABLE = "unreachable"
    ERROR = "error"


NODE_ERRORS = (Outcome.FAILURE, Outcome.UNREACHABLE)


def outcome_of(error: BaseException | None) -> Outcome:
    if error is None:
        return Outcome.SUCCESS
    if isinstance(error, ConnectionTimeout):
        return Outcome.UNREACHABLE
    if isinstance(error, DimseFailure | AssociationRejected):
        return Outcome.FAILURE
    return Outcome.ERROR


class Recorder(Collector):
    """Counts and times DICOM operations per node (thread-safe)."""

    def __init__(
        self, window: int = WINDOW, window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.window = window
        self.window_s = window_s
        self.clock = clock
        self._operations = Counter(
            "pacsync_dicom_operations",
            "DICOM operations this process made, per node, operation and outcome.",
            ["node", "operation", "outcome"],
            registry=None,
        )
        self._seconds = Histogram(
            "pacsync_dicom_operation_seconds",
            "Time DICOM operations took (association included), per node and operation.",
            ["node", "operation"],
            buckets=BUCKETS,
            registry=None,
        )
        self._recent: dict[str, deque[tuple[float, bool]]] = {}
        self._lock = threading.Lock()

    def record(self, node: str, operation: Operation, outcome: Outcome, seconds: float) -> None:
        self._operations.labels(node, operation.value, outcome.value).inc()
        self._seconds.labels(node, operation.value).observe(seconds)
        if outcome is Outcome.ERROR:
            return  # not the node's doing
        with self._lock:
            recent = self._recent.setdefault(node, deque(maxlen=self.window))
            recent.append((self.clock(), outcome in NODE_ERRORS))

    def error_rate(self, node: str) -> ErrorRate:
        """The node's recent outcomes: the last ``window`` within ``window_s`` seconds."""
        since = self.clock() - self.window_s
        with self._lock:
            kept = [failed for at, failed in self._recent.get(node, ()) if at >= since]
        return ErrorRate(len(kept), sum(kept))

    def collect(self) -> Iterator[Metric]:
        yield from self._operations.collect()
        yield from self._seconds.collect()

    def describe(self) -> Iterable[Metric]:
        return []


RECORDER = Recorder()


def register(registry: CollectorRegistry, recorder: Recorder = RECORDER) -> None:
    """Expose the recorder's metrics in ``registry`` (e.g. the API's)."""
    registry.register(recorder)


P = ParamSpec("P")
R = TypeVar("R")


def recorded(
    operation: Operation, failed: Callable[[Any], bool] = lambda result: False
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each call of an SCU operation whose first argument is the node (or a
    session with it); ``failed(result)`` marks a returned result as a node failure."""

    def wrap(call: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(call)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            node = getattr(args[0], "node", args[0])  # a Session holds its node
            name = str(getattr(node, "name", "?"))
            started = time.perf_counter()
            try:
                result = call(*args, **kwargs)
            except Exception as error:
                took = time.perf_counter() - started
                RECORDER.record(name, operation, outcome_of(error), took)
                raise
            took = time.perf_counter() - started
            kind = Outcome.FAILURE if failed(result) else Outcome.SUCCESS
            RECORDER.record(name, operation, kind, took)
            return result

        return timed

    return wrap

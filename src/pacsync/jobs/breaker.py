"""A circuit breaker per connection, its state shared by all workers through a store.

Every change is a compare-and-set on the state as read, retried a few times when
another worker changed it first; so of the workers racing for a half-open probe
exactly one gets it.  Only transient errors count as failures of a connection.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pacsync.domain.circuit import (
    Admission,
    BreakerPolicy,
    CircuitState,
    admit,
    after_failure,
    after_success,
    closed,
    release_probe,
)
from pacsync.domain.clock import utc_now
from pacsync.errors import CircuitOpen, PacsyncError
from pacsync.ports import CircuitStore

log = logging.getLogger(__name__)

#: Compare-and-set attempts before giving up on one change (each loss means
#: another worker's change went through).
ATTEMPTS = 16
LAST_ERROR_CHARS = 500


class CircuitBreaker:
    """Admits, counts and refuses calls to connections; see :mod:`pacsync.domain.circuit`."""

    def __init__(
        self,
        store: CircuitStore,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.store = store
        self.policy = policy if policy is not None else BreakerPolicy()
        self.clock = clock

    def before_call(self, connection: str) -> bool:
        """Let a call to ``connection`` go ahead (True: it is the half-open probe).

        Raises :class:`CircuitOpen` when the circuit refuses the call.
        """
        for _ in range(ATTEMPTS):
            stored = self.store.get(connection)
            current = stored or closed(connection)
            admission = admit(current, self.policy, self.clock())
            if not admission.allowed:
                raise refusal(admission)
            if admission.state == current or self.store.compare_and_set(stored, admission.state):
                return admission.probe
        raise CircuitOpen(
            f"connection '{connection}': circuit state kept changing under contention",
            hint="Retry shortly; `pacsync status` shows circuit states.",
        )

    def succeeded(self, connection: str) -> None:
        """A call to ``connection`` succeeded: its circuit closes."""
        self._change(connection, after_success)

    def failed(self, connection: str, error: PacsyncError) -> None:
        """A call to ``connection`` failed with ``error``.

        A transient error counts against the circuit.  Any other error says nothing
        about the endpoint (nor does another circuit's :class:`CircuitOpen`); it
        only frees the half-open probe so that the next call may probe.
        """
        if not error.transient or isinstance(error, CircuitOpen):
            self._change(connection, release_probe)
            return
        message = str(error)[:LAST_ERROR_CHARS]
        now = self.clock()
        self._change(connection, lambda state: after_failure(state, self.policy, now, message))

    def states(self) -> list[CircuitState]:
        """Every circuit that has a row in the store (the others are closed)."""
        return self.store.all()

    def reset(self, connection: str) -> None:
        """Close ``connection``'s circuit whatever its state."""
        self.store.reset(connection)

    def admits(self, connection: str) -> bool:
        """Whether a call to ``connection`` would be let through now; changes nothing."""
        current = self.store.get(connection) or closed(connection)
        return admit(current, self.policy, self.clock()).allowed

    def pick_endpoint(self, primary: str, fallback: str | None = None) -> str:
        """The connection to call now: ``primary`` unless its circuit refuses and
        ``fallback``'s admits.  Claims no probe: call through :meth:`guard`."""
        if fallback is None or self.admits(primary):
            return primary
        return fallback if self.admits(fallback) else primary

    @contextmanager
    def guard(self, connection: str) -> Iterator[None]:
        """Run the block as a call to ``connection``: admitted, then counted; errors re-raised."""
        self.before_call(connection)
        try:
            yield
        except Exception as exc:
            self._record_failure(connection, exc)
            raise
        self.succeeded(connection)

    def _record_failure(self, connection: str, exc: Exception) -> None:
        """Record a failed call; a store error is logged, not raised over the call's error."""
        try:
            if isinstance(exc, PacsyncError):
                self.failed(connection, exc)
            else:
                self._change(connection, release_probe)
        except PacsyncError as store_error:
            log.warning("circuit of %s: failure not recorded: %s", connection, store_error)

    def _change(
        self, connection: str, change: Callable[[CircuitState], CircuitState]
    ) -> CircuitState | None:
        """Apply ``change`` to the stored circuit; None if other writers kept winning."""
        for _ in range(ATTEMPTS):
            stored = self.store.get(connection)
            current = stored or closed(connection)
            new = change(current)
            if new == current or self.store.compare_and_set(stored, new):
                return new
        log.warning("circuit of %s: change dropped after %d attempts", connection, ATTEMPTS)
        return None


def refusal(admission: Admission) -> CircuitOpen:
    """The error for a refused call: which connection, why, and when to try again."""
    state = admission.state
    failures = f"{state.failures} consecutive failures"
    message = f"connection '{state.connection}': circuit open after {failures}"
    if state.state == "half_open":
        message += " (a probe call is in flight)"
    if state.last_error:
        message += f"; last error: {state.last_error}"
    if admission.retry_at is None:
        return CircuitOpen(message)
    return CircuitOpen(
        message,
        hint=f"retry after {admission.retry_at:%Y-%m-%d %H:%M:%S} UTC; "
        "`pacsync status` shows circuit states",
    )

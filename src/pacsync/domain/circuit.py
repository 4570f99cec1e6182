"""Circuit breakers: the state of one connection's circuit and its pure transitions.

A circuit is *closed* while calls go through; it *opens* after
``failure_threshold`` consecutive failures and refuses calls for ``cool_down_s``
seconds; then one call is let through as a *half-open* probe.  The probe's
success closes the circuit, its failure opens it again.  A probe whose worker
died is replaced after ``probe_timeout_s``.  Times are naive UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Literal

CircuitStatus = Literal["closed", "open", "half_open"]
STATUSES: tuple[CircuitStatus, ...] = ("closed", "open", "half_open")


@dataclass(frozen=True, slots=True)
class CircuitState:
    """One connection's circuit, as the store keeps it (no row: closed, no failures)."""

    connection: str
    state: CircuitStatus = "closed"
    failures: int = 0
    opened_at: dt.datetime | None = None
    probe_started_at: dt.datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cool_down_s: float = 30.0
    probe_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if self.cool_down_s < 0:
            raise ValueError("cool_down_s must not be negative")
        if self.probe_timeout_s <= 0:
            raise ValueError("probe_timeout_s must be positive")


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a call may pass now, and the circuit after that decision.

    ``state`` differs from the circuit passed to :func:`admit` only when the call
    is a probe (the change must be stored before the call goes ahead).
    ``retry_at`` is when a refused call may be admitted at the earliest.
    """

    allowed: bool
    state: CircuitState
    probe: bool = False
    retry_at: dt.datetime | None = None


def closed(connection: str) -> CircuitState:
    """A closed circuit without failures (the state of a connection with no row)."""
    return CircuitState(connection)


def parse_status(text: str) -> CircuitStatus:
    if text not in STATUSES:
        raise ValueError(f"unknown circuit state {text!r}")
    return text


def same_state(a: CircuitState | None, b: CircuitState | None) -> bool:
    """Equal for compare-and-set: connection, state, failures and both times (not last_error)."""
    if a is None or b is None:
        return a is b
    return (a.connection, a.state, a.failures, a.opened_at, a.probe_started_at) == (
        b.connection,
        b.state,
        b.failures,
        b.opened_at,
        b.probe_started_at,
    )


def admit(state: CircuitState, policy: BreakerPolicy, now: dt.datetime) -> Admission:
    """Whether a call may pass at ``now``; an admitted probe turns the circuit half-open."""
    if state.state == "closed":
        return Admission(True, state)
    if state.state == "open":
        if state.opened_at is not None:
            retry_at = state.opened_at + dt.timedelta(seconds=policy.cool_down_s)
            if now < retry_at:
                return Admission(False, state, retry_at=retry_at)
        return _probe(state, now)
    if state.probe_started_at is not None:
        expires = state.probe_started_at + dt.timedelta(seconds=policy.probe_timeout_s)
        if now < expires:
            return Admission(False, state, retry_at=expires)
    return _probe(state, now)


def _probe(state: CircuitState, now: dt.datetime) -> Admission:
    return Admission(True, replace(state, state="half_open", probe_started_at=now), probe=True)


def after_success(state: CircuitState) -> CircuitState:
    """A call succeeded: the circuit closes and its failures are forgotten."""
    return closed(state.connection)


def after_failure(
    state: CircuitState, policy: BreakerPolicy, now: dt.datetime, error: str | None = None
) -> CircuitState:
    """A call failed for a reason that concerns the endpoint (a transient error).

    Closed: the failure is counted; the circuit opens when the count reaches the
    threshold.  Half-open (the probe failed): open again from ``now``.  Open (a
    call admitted earlier failed late): counted, the cool-down is not extended.
    """
    failures = state.failures + 1
    if state.state == "open":
        return replace(state, failures=failures, last_error=error)
    if state.state == "half_open" or failures >= policy.failure_threshold:
        return CircuitState(state.connection, "open", failures, now, None, error)
    return replace(state, failures=failures, last_error=error)


def release_probe(state: CircuitState) -> CircuitState:
    """The probe ended without a verdict on the endpoint: the next call may probe."""
    if state.state != "half_open":
        return state
    return replace(state, probe_started_at=None)

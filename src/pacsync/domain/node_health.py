"""The health of a DICOM node, judged from an echo, a query probe and recent errors.

* the C-ECHO failed: **UNHEALTHY** (nothing else can work);
* the echo answered but the query probe (a C-FIND at STUDY level whose key
  matches nothing) failed, the echo or the probe was slower than the policy
  allows, or at least ``error_rate`` of the node's recent operations failed:
  **DEGRADED**, with one reason per finding;
* otherwise **HEALTHY**.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NodeStatus(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    UNHEALTHY = "UNHEALTHY"


@dataclass(frozen=True, slots=True)
class Probe:
    """One timed call: answered in ``ms``, or failed with ``error``."""

    ok: bool
    ms: float | None = None
    error: str | None = None

    @classmethod
    def answered(cls, ms: float) -> Probe:
        return cls(True, round(ms, 1))

    @classmethod
    def failed(cls, error: str, ms: float | None = None) -> Probe:
        return cls(False, None if ms is None else round(ms, 1), error)


@dataclass(frozen=True, slots=True)
class ErrorRate:
    """Of the node's last ``operations``, how many failed (``errors``)."""

    operations: int = 0
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.errors / self.operations if self.operations else 0.0


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    slow_echo_ms: float = 1000.0
    slow_probe_ms: float = 2000.0
    error_rate: float = 0.2
    #: fewer recent operations than this say nothing about the error rate
    min_operations: int = 5

    def __post_init__(self) -> None:
        if self.slow_echo_ms <= 0 or self.slow_probe_ms <= 0:
            raise ValueError("slow_echo_ms and slow_probe_ms must be positive")
        if not 0 < self.error_rate <= 1:
            raise ValueError("error_rate must be in (0, 1]")
        if self.min_operations < 1:
            raise ValueError("min_operations must be at least 1")


@dataclass(frozen=True, slots=True)
class NodeHealth:
    node: str
    status: NodeStatus
    reasons: tuple[str, ...]
    echo: Probe
    probe: Probe | None  # None: not tried (the echo failed)
    recent: ErrorRate


def judge(
    node: str,
    echo: Probe,
    probe: Probe | None,
    recent: ErrorRate,
    policy: HealthPolicy | None = None,
) -> NodeHealth:
    """The node's status and every reason for it (none when HEALTHY)."""
    policy = policy or HealthPolicy()
    if not echo.ok:
        reason = f"echo failed: {echo.error or 'no answer'}"
        return NodeHealth(node, NodeStatus.UNHEALTHY, (reason,), echo, probe, recent)
    reasons: list[str] = []
    if echo.ms is not None and echo.ms > policy.slow_echo_ms:
        reasons.append(f"echo took {echo.ms:g} ms (slower than {policy.slow_echo_ms:g} ms)")
    if probe is None:
        reasons.append("query probe not run")
    elif not probe.ok:
        reasons.append(f"query probe failed: {probe.error or 'no answer'}")
    elif probe.ms is not None and probe.ms > policy.slow_probe_ms:
        reasons.append(
            f"query probe took {probe.ms:g} ms (slower than {policy.slow_probe_ms:g} ms)"
        )
    if recent.operations >= policy.min_operations and recent.rate >= policy.error_rate:
        reasons.append(
            f"{recent.errors} of the last {recent.operations} operations failed "
            f"({recent.rate:.0%}, limit {policy.error_rate:.0%})"
        )
    status = NodeStatus.DEGRADED if reasons else NodeStatus.HEALTHY
    return NodeHealth(node, status, tuple(reasons), echo, probe, recent)

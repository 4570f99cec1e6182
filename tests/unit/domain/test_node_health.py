"""The health rule of a DICOM node: echo, query probe and recent error rate."""

from __future__ import annotations

import pytest

from pacsync.domain.node_health import (
    ErrorRate,
    HealthPolicy,
    NodeStatus,
    Probe,
    judge,
)

FAST = Probe.answered(3.0)
QUIET = ErrorRate(10, 0)


def test_fast_answers_and_no_errors_are_healthy() -> None:
    health = judge("pacs", FAST, Probe.answered(8.0), QUIET)
    assert health.status is NodeStatus.HEALTHY
    assert health.reasons == ()
    assert (health.echo.ms, health.probe and health.probe.ms) == (3.0, 8.0)


def test_a_failed_echo_is_unhealthy_whatever_else() -> None:
    health = judge("pacs", Probe.failed("PACS-001 refused"), None, QUIET)
    assert health.status is NodeStatus.UNHEALTHY
    assert health.reasons == ("echo failed: PACS-001 refused",)


def test_a_failed_probe_after_a_good_echo_is_degraded() -> None:
    health = judge("pacs", FAST, Probe.failed("PACS-502 0xA700"), QUIET)
    assert health.status is NodeStatus.DEGRADED
    assert health.reasons == ("query probe failed: PACS-502 0xA700",)


def test_a_slow_probe_or_echo_is_degraded() -> None:
    policy = HealthPolicy(slow_echo_ms=100, slow_probe_ms=500)
    slow_probe = judge("pacs", FAST, Probe.answered(501.0), QUIET, policy)
    assert slow_probe.status is NodeStatus.DEGRADED
    assert slow_probe.reasons == ("query probe took 501 ms (slower than 500 ms)",)
    at_limit = judge("pacs", FAST, Probe.answered(500.0), QUIET, policy)
    assert at_limit.status is NodeStatus.HEALTHY
    slow_echo = judge("pacs", Probe.answered(150.0), Probe.answered(5.0), QUIET, policy)
    assert slow_echo.reasons == ("echo took 150 ms (slower than 100 ms)",)


@pytest.mark.parametrize(
    ("recent", "status"),
    [
        (ErrorRate(20, 4), NodeStatus.DEGRADED),  # 20 %: at the limit
        (ErrorRate(20, 3), NodeStatus.HEALTHY),
        (ErrorRate(4, 4), NodeStatus.HEALTHY),  # too few operations to tell
        (ErrorRate(5, 1), NodeStatus.DEGRADED),
        (ErrorRate(0, 0), NodeStatus.HEALTHY),
    ],
)
def test_the_recent_error_rate_degrades_from_20_percent(
    recent: ErrorRate, status: NodeStatus
) -> None:
    health = judge("pacs", FAST, Probe.answered(5.0), recent)
    assert health.status is status
    if status is NodeStatus.DEGRADED:
        assert health.reasons == (
            f"{recent.errors} of the last {recent.operations} operations failed "
            f"({recent.rate:.0%}, limit 20%)",
        )


def test_every_reason_is_given() -> None:
    health = judge("pacs", Probe.answered(1500.0), Probe.failed("timed out"), ErrorRate(10, 5))
    assert health.status is NodeStatus.DEGRADED
    assert len(health.reasons) == 3


def test_a_probe_not_run_is_a_reason() -> None:
    assert judge("pacs", FAST, None, QUIET).reasons == ("query probe not run",)


@pytest.mark.parametrize(
    "bad",
    [
        {"slow_probe_ms": 0},
        {"slow_echo_ms": -1},
        {"error_rate": 0},
        {"error_rate": 1.5},
        {"min_operations": 0},
    ],
)
def test_policy_rejects_meaningless_limits(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        HealthPolicy(**bad)  # type: ignore[arg-type]

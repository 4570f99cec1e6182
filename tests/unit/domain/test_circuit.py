"""Circuit breaker transitions: thresholds, cool-down, probes and their timeout."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from pacsync.domain.circuit import (
    BreakerPolicy,
    CircuitState,
    admit,
    after_failure,
    after_success,
    closed,
    parse_status,
    release_probe,
    same_state,
)

T0 = dt.datetime(2024, 5, 1, 10, 0, 0)
POLICY = BreakerPolicy(failure_threshold=3, cool_down_s=30.0, probe_timeout_s=300.0)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def opened(failures: int = 3, when: dt.datetime = T0) -> CircuitState:
    return CircuitState("legacy", "open", failures, when, None, "PACS-001 timed out")


def half_open(probe_started: dt.datetime | None, failures: int = 3) -> CircuitState:
    return CircuitState("legacy", "half_open", failures, T0, probe_started, "PACS-001 timed out")


def test_a_closed_circuit_admits_without_changing() -> None:
    state = closed("legacy")
    admission = admit(state, POLICY, T0)
    assert (admission.allowed, admission.probe, admission.retry_at) == (True, False, None)
    assert admission.state is state


def test_failures_below_the_threshold_are_counted_and_the_circuit_stays_closed() -> None:
    state = closed("legacy")
    for n in (1, 2):
        state = after_failure(state, POLICY, at(n), f"error {n}")
        assert (state.state, state.failures, state.last_error) == ("closed", n, f"error {n}")
        assert state.opened_at is None
    assert admit(state, POLICY, at(3)).allowed


def test_the_failure_reaching_the_threshold_opens_the_circuit_at_that_time() -> None:
    state = closed("legacy")
    for n in range(3):
        state = after_failure(state, POLICY, at(n), "PACS-001 timed out")
    assert state == CircuitState("legacy", "open", 3, at(2), None, "PACS-001 timed out")


def test_a_threshold_of_one_opens_at_the_first_failure() -> None:
    state = after_failure(closed("x"), BreakerPolicy(failure_threshold=1), T0)
    assert (state.state, state.opened_at) == ("open", T0)


def test_an_open_circuit_refuses_until_the_cool_down_is_over() -> None:
    admission = admit(opened(), POLICY, at(29.999))
    assert not admission.allowed
    assert admission.retry_at == at(30)
    assert admission.state == opened()


def test_after_the_cool_down_one_call_is_admitted_as_the_half_open_probe() -> None:
    admission = admit(opened(), POLICY, at(30))
    assert (admission.allowed, admission.probe) == (True, True)
    assert admission.state == CircuitState(
        "legacy", "half_open", 3, T0, at(30), "PACS-001 timed out"
    )


def test_a_probe_in_flight_refuses_other_calls_until_it_times_out() -> None:
    state = half_open(probe_started=at(30))
    refused = admit(state, POLICY, at(31))
    assert not refused.allowed
    assert refused.retry_at == at(330)
    assert not admit(state, POLICY, at(329)).allowed


def test_a_probe_older_than_the_probe_timeout_is_replaced_by_a_new_one() -> None:
    admission = admit(half_open(probe_started=at(30)), POLICY, at(330))
    assert (admission.allowed, admission.probe) == (True, True)
    assert admission.state.probe_started_at == at(330)
    assert admission.state.state == "half_open"


def test_the_probe_failing_opens_the_circuit_again_from_now() -> None:
    state = after_failure(half_open(probe_started=at(30)), POLICY, at(35), "PACS-001 again")
    assert state == CircuitState("legacy", "open", 4, at(35), None, "PACS-001 again")
    assert not admit(state, POLICY, at(64)).allowed
    assert admit(state, POLICY, at(65)).probe


def test_a_late_failure_while_open_is_counted_without_extending_the_cool_down() -> None:
    state = after_failure(opened(), POLICY, at(20), "late")
    assert (state.state, state.failures, state.opened_at, state.last_error) == (
        "open",
        4,
        T0,
        "late",
    )
    assert admit(state, POLICY, at(30)).allowed


@pytest.mark.parametrize(
    "state",
    [
        CircuitState("legacy", "closed", 2, None, None, "PACS-001"),
        opened(),
        half_open(probe_started=at(30)),
    ],
)
def test_a_success_closes_the_circuit_and_forgets_its_failures(state: CircuitState) -> None:
    assert after_success(state) == CircuitState("legacy")


def test_a_success_between_failures_restarts_the_count() -> None:
    state = closed("legacy")
    for _ in range(2):
        state = after_failure(state, POLICY, T0)
    state = after_failure(after_success(state), POLICY, T0)
    assert (state.state, state.failures) == ("closed", 1)


def test_releasing_a_probe_lets_the_next_call_probe_at_once() -> None:
    released = release_probe(half_open(probe_started=at(30)))
    assert released.probe_started_at is None
    admission = admit(released, POLICY, at(31))
    assert (admission.allowed, admission.probe, admission.state.probe_started_at) == (
        True,
        True,
        at(31),
    )


@pytest.mark.parametrize("state", [closed("legacy"), opened()])
def test_releasing_a_probe_changes_nothing_outside_half_open(state: CircuitState) -> None:
    assert release_probe(state) is state


def test_same_state_compares_the_position_of_the_circuit_but_not_its_last_error() -> None:
    state = opened()
    assert same_state(state, replace(state, last_error="another"))
    assert same_state(None, None)
    assert not same_state(state, None)
    assert not same_state(None, state)
    assert not same_state(state, replace(state, failures=4))
    assert not same_state(state, replace(state, opened_at=at(1)))
    assert not same_state(state, replace(state, probe_started_at=at(1)))
    assert not same_state(state, replace(state, state="half_open"))
    assert not same_state(state, replace(state, connection="other"))


def test_states_are_parsed_from_their_stored_text() -> None:
    assert [parse_status(s) for s in ("closed", "open", "half_open")] == [
        "closed",
        "open",
        "half_open",
    ]
    with pytest.raises(ValueError, match="unknown circuit state 'ajar'"):
        parse_status("ajar")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"cool_down_s": -1}, "cool_down_s"),
        ({"probe_timeout_s": 0}, "probe_timeout_s"),
    ],
)
def test_policies_refuse_values_that_make_no_sense(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BreakerPolicy(**options)

"""The fhir-sync job request: checked before anything is queued, a patient sync first."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsync.bootstrap.fhir_sync import (
    DEFAULT_TYPES,
    KIND,
    rules_file,
    rules_of,
    scope_of,
    sync_request,
)
from pacsync.domain.fhir_conflicts import Rule, rules_from
from pacsync.errors import ConfigError, InvalidRequest
from pacsync.jobs.queues import SYNC


def test_a_sync_request_is_a_job_on_the_sync_queue_partitioned_by_connection() -> None:
    request = sync_request("ehr", direction="inbound", strategy="field-merge",
                           fallback="remote-wins", rules={"telecom": "remote"})  # fmt: skip
    assert (request.kind, request.pipeline, request.queue) == (KIND, "ehr", SYNC)
    assert (request.mode, request.priority, request.partition) == ("incremental", 1, "fhir:ehr")
    assert request.entities == list(DEFAULT_TYPES)
    assert request.args["rules"] == {"telecom": "remote"}
    assert scope_of("ehr") == "fhir:ehr"


def test_a_patient_sync_goes_first_and_a_full_one_says_so() -> None:
    assert sync_request("ehr", patient="p1").priority < sync_request("ehr").priority
    assert sync_request("ehr", full=True).mode == "full"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"direction": "sideways"}, InvalidRequest),
        ({"strategy": "newest"}, ConfigError),
        ({"strategy": "field-merge", "fallback": "field-merge"}, ConfigError),
        ({"rules": {"telecom": "ehr"}}, ConfigError),
    ],
)
def test_a_bad_request_is_refused_before_it_is_queued(
    changes: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        sync_request("ehr", **changes)  # type: ignore[arg-type]


def test_rules_come_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  telecom: remote\n  Patient.address: local\n")
    rules = rules_file(path)
    assert rules == {"telecom": "remote", "Patient.address": "local"}
    assert sync_request("ehr", rules=rules).args["rules"] == rules
    path.write_text("rules:\n  - {element: telecom, wins: remote, resource: Patient}\n")
    assert rules_file(path) == [{"element": "telecom", "wins": "remote", "resource": "Patient"}]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("strategy: manual\n", "has no rules"),
        ("rules: [\n", "cannot read rules"),
        ("rules:\n  telecom: ehr\n", "wins must be local or remote"),
    ],
)
def test_a_bad_rules_file_is_refused(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=says):
        rules_file(path)
    with pytest.raises(ConfigError, match="cannot read rules"):
        rules_file(tmp_path / "missing.yaml")


def test_remote_wins_elements_come_before_the_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  telecom: local\n")
    rules = rules_of(path, ["telecom", "Patient.address"])
    assert rules == [
        {"element": "telecom", "wins": "remote"},
        {"element": "Patient.address", "wins": "remote"},
        {"element": "telecom", "wins": "local"},
    ]
    assert rules_of(None) == []
    policy_rules = rules_from(rules)
    assert policy_rules[0] == Rule("telecom", "remote")  # the first rule for an element wins
    assert policy_rules[1] == Rule("address", "remote", "Patient")

"""Three-way compare of FHIR resources and the conflict strategies."""

from __future__ import annotations

from typing import Any

import pytest

from pacsync.domain.fhir_conflicts import (
    Comparison,
    ConflictPolicy,
    Rule,
    Strategy,
    compare,
    conflict_fields,
    later_side,
    resolve,
    rules_from,
)
from pacsync.errors import ConfigError

BASE: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00Z"},
    "name": [{"family": "Doe", "given": ["Jane"]}],
    "gender": "female",
    "birthDate": "1980-01-01",
    "telecom": [{"system": "phone", "value": "555-0100"}],
}


def side(updated: str, **changes: Any) -> dict[str, Any]:
    """BASE with elements replaced (None removes one) and a new lastUpdated."""
    resource = {**BASE, "meta": {"versionId": "2", "lastUpdated": updated}}
    for name, value in changes.items():
        if value is None:
            resource.pop(name, None)
        else:
            resource[name] = value
    return resource


EARLY, LATE = "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"


# -- compare ---------------------------------------------------------------------------


def test_unchanged_sides_compare_as_unchanged_whatever_their_meta() -> None:
    comparison = compare(BASE, side(EARLY), side(LATE))
    assert comparison == Comparison()
    assert comparison.unchanged


def test_each_group_of_the_compare() -> None:
    local = side(EARLY, gender="other", birthDate="1981-01-01", active=True)
    remote = side(LATE, gender="unknown", birthDate="1981-01-01", telecom=[])
    assert compare(BASE, local, remote) == Comparison(
        local_only=("active",),
        remote_only=("telecom",),
        both_same=("birthDate",),
        conflicting=("gender",),
    )


def test_a_list_is_compared_whole() -> None:
    local = side(EARLY, name=[{"family": "Doe", "given": ["Jane", "Q"]}])
    remote = side(LATE, name=[{"family": "Roe", "given": ["Jane"]}])
    assert compare(BASE, local, remote).conflicting == ("name",)


def test_a_removed_element_is_a_change_and_null_is_not_missing() -> None:
    local = side(EARLY, birthDate=None)  # removed
    remote = {**side(LATE), "gender": None}  # explicit null
    comparison = compare(BASE, local, remote)
    assert comparison.local_only == ("birthDate",)
    assert comparison.remote_only == ("gender",)


def test_without_a_base_every_difference_conflicts() -> None:
    local = side(EARLY, gender="other")
    comparison = compare(None, local, side(LATE))
    assert comparison.conflicting == ("gender",)
    assert comparison.local_only == ()
    assert comparison.remote_only == ()


# -- resolve: no conflict --------------------------------------------------------------


@pytest.mark.parametrize("strategy", list(Strategy))
def test_non_overlapping_changes_merge_under_every_strategy(strategy: Strategy) -> None:
    local = side(EARLY, gender="other")
    remote = side(LATE, birthDate="1990-05-05")
    resolution = resolve("Patient", BASE, local, remote, ConflictPolicy(strategy))
    assert resolution.resource is not None
    assert resolution.resource["gender"] == "other"
    assert resolution.resource["birthDate"] == "1990-05-05"
    assert "meta" not in resolution.resource
    assert "id" not in resolution.resource
    assert resolution.differs_from(local)
    assert resolution.differs_from(remote)
    assert resolution.decided == {}


def test_a_removal_on_one_side_is_kept_in_the_merge() -> None:
    resolution = resolve(
        "Patient", BASE, side(EARLY, telecom=None), side(LATE), ConflictPolicy(Strategy.MANUAL)
    )
    assert resolution.resource is not None
    assert "telecom" not in resolution.resource
    assert not resolution.differs_from(side(EARLY, telecom=None))


# -- resolve: strategies on a conflict ---------------------------------------------------


def both_changed(local_time: str, remote_time: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both changed gender; local also changed birthDate, remote also changed name."""
    local = side(local_time, gender="other", birthDate="1970-07-07")
    remote = side(remote_time, gender="unknown", name=[{"family": "Roe"}])
    return local, remote


def test_last_write_wins_takes_the_later_side_whole() -> None:
    local, remote = both_changed(LATE, EARLY)
    resolution = resolve("Patient", BASE, local, remote, ConflictPolicy(Strategy.LAST_WRITE_WINS))
    assert resolution.resource is not None
    assert resolution.resource["gender"] == "other"
    assert resolution.resource["birthDate"] == "1970-07-07"
    assert resolution.resource["name"] == BASE["name"]  # the earlier side's change is lost
    assert resolution.decided["gender"] == "last-write-wins: local"
    assert not resolution.differs_from(local)
    assert resolution.differs_from(remote)


def test_last_write_wins_prefers_the_remote_side_on_a_tie() -> None:
    local, remote = both_changed(EARLY, EARLY)
    resolution = resolve("Patient", BASE, local, remote, ConflictPolicy(Strategy.LAST_WRITE_WINS))
    assert resolution.resource is not None
    assert resolution.resource["gender"] == "unknown"


def test_later_side_reads_offsets_and_missing_times() -> None:
    assert later_side({"meta": {"lastUpdated": "2026-01-01T10:00:00+02:00"}},
                      {"meta": {"lastUpdated": "2026-01-01T09:00:00Z"}}) == "remote"  # fmt: skip
    assert later_side({"meta": {"lastUpdated": "2026-01-01T10:00:00Z"}}, {}) == "remote"
    assert later_side({"meta": {"lastUpdated": "2026-01-02"}},
                      {"meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}) == "local"  # fmt: skip


@pytest.mark.parametrize(
    ("strategy", "gender", "birth", "name"),
    [
        (Strategy.LOCAL_WINS, "other", "1970-07-07", BASE["name"]),
        (Strategy.REMOTE_WINS, "unknown", BASE["birthDate"], [{"family": "Roe"}]),
    ],
)
def test_source_priority_takes_that_side_whole(
    strategy: Strategy, gender: str, birth: str, name: Any
) -> None:
    local, remote = both_changed(EARLY, LATE)
    resolution = resolve("Patient", BASE, local, remote, ConflictPolicy(strategy))
    assert resolution.resource is not None
    assert (resolution.resource["gender"], resolution.resource["birthDate"]) == (gender, birth)
    assert resolution.resource["name"] == name


@pytest.mark.parametrize(
    ("fallback", "gender"),
    [
        (Strategy.LAST_WRITE_WINS, "unknown"),
        (Strategy.LOCAL_WINS, "other"),
        (Strategy.REMOTE_WINS, "unknown"),
    ],
)
def test_field_merge_merges_and_falls_back_on_the_overlap(fallback: Strategy, gender: str) -> None:
    local, remote = both_changed(EARLY, LATE)
    policy = ConflictPolicy(Strategy.FIELD_MERGE, fallback=fallback)
    resolution = resolve("Patient", BASE, local, remote, policy)
    assert resolution.resource is not None
    assert resolution.resource["gender"] == gender
    assert resolution.resource["birthDate"] == "1970-07-07"
    assert resolution.resource["name"] == [{"family": "Roe"}]
    assert list(resolution.decided) == ["gender"]


def test_field_merge_with_a_manual_fallback_waits_for_review() -> None:
    local, remote = both_changed(EARLY, LATE)
    resolution = resolve("Patient", BASE, local, remote, ConflictPolicy(Strategy.FIELD_MERGE))
    assert resolution.needs_review
    assert resolution.conflicting == ("gender",)


def test_manual_leaves_the_conflict_for_review() -> None:
    local, remote = both_changed(EARLY, LATE)
    resolution = resolve("Patient", BASE, local, remote, ConflictPolicy(Strategy.MANUAL))
    assert resolution.resource is None
    assert resolution.conflicting == ("gender",)
    assert not resolution.differs_from(local)
    assert conflict_fields(BASE, local, remote, resolution.conflicting) == [
        {"field": "gender", "local": "other", "remote": "unknown", "base": "female"}
    ]


def test_field_merge_cannot_fall_back_on_itself() -> None:
    with pytest.raises(ConfigError):
        ConflictPolicy(Strategy.FIELD_MERGE, fallback=Strategy.FIELD_MERGE)


# -- auto-resolution rules -------------------------------------------------------------


def test_a_rule_settles_its_element_before_a_manual_strategy() -> None:
    local = side(EARLY, telecom=[{"system": "email", "value": "a@b"}])
    remote = side(LATE, telecom=[{"system": "phone", "value": "555-0199"}])
    policy = ConflictPolicy(Strategy.MANUAL, rules=(Rule("telecom", "remote"),))
    resolution = resolve("Patient", BASE, local, remote, policy)
    assert resolution.resource is not None
    assert resolution.resource["telecom"] == [{"system": "phone", "value": "555-0199"}]
    assert resolution.decided == {"telecom": "rule: remote wins"}


def test_a_rule_wins_even_when_only_the_other_side_changed() -> None:
    local = side(EARLY, telecom=[{"system": "email", "value": "a@b"}])
    policy = ConflictPolicy(Strategy.MANUAL, rules=(Rule("telecom", "remote"),))
    resolution = resolve("Patient", BASE, local, side(LATE), policy)
    assert resolution.resource is not None
    assert resolution.resource["telecom"] == BASE["telecom"]
    assert resolution.differs_from(local)
    assert not resolution.differs_from(side(LATE))


def test_a_rule_outranks_the_whole_record_winner() -> None:
    local = side(LATE, gender="other", telecom=[])
    remote = side(EARLY, gender="unknown", telecom=[{"system": "fax", "value": "1"}])
    policy = ConflictPolicy(Strategy.LOCAL_WINS, rules=(Rule("telecom", "remote"),))
    resolution = resolve("Patient", BASE, local, remote, policy)
    assert resolution.resource is not None
    assert resolution.resource["gender"] == "other"
    assert resolution.resource["telecom"] == [{"system": "fax", "value": "1"}]


def test_a_rule_for_another_type_does_not_apply() -> None:
    local, remote = side(EARLY, telecom=[]), side(LATE, telecom=[{"value": "x"}])
    policy = ConflictPolicy(Strategy.MANUAL, rules=(Rule("telecom", "remote", "Practitioner"),))
    assert resolve("Patient", BASE, local, remote, policy).conflicting == ("telecom",)


def test_rules_from_configuration() -> None:
    assert rules_from({"telecom": "remote", "Patient.address": "local"}) == (
        Rule("telecom", "remote"),
        Rule("address", "local", "Patient"),
    )
    assert rules_from([{"element": "telecom", "wins": "remote", "resource": "Patient"}]) == (
        Rule("telecom", "remote", "Patient"),
    )
    assert rules_from(None) == ()
    with pytest.raises(ConfigError, match="wins must be local or remote"):
        rules_from({"telecom": "ehr"})
    with pytest.raises(ConfigError, match="needs an element"):
        rules_from([{"wins": "remote"}])


def test_strategy_parse() -> None:
    assert Strategy.parse(" Field-Merge ") is Strategy.FIELD_MERGE
    with pytest.raises(ConfigError, match="unknown sync conflict strategy"):
        Strategy.parse("newest")

"""The FHIR sync use case on the in-memory FHIR server and local-side fakes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pacsync.connectors.memory import MemoryFhirServer
from pacsync.connectors.memory.fhir_sync import (
    MemoryLocalFhir,
    MemorySyncBases,
    MemorySyncConflicts,
)
from pacsync.domain.fhir_conflicts import ConflictPolicy, Rule, Strategy
from pacsync.errors import (
    FhirPreconditionFailed,
    FhirRequestRejected,
    FhirServerUnavailable,
    InvalidRequest,
)
from pacsync.sync.fhir_request import Direction, FhirSyncRequest, RecordChange, SyncMode
from pacsync.sync.fhir_sync import FhirSync

SCOPE = "fhir:ehr"


class Clock:
    """A clock both sides share, a second further on each reading."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


class World:
    def __init__(self) -> None:
        clock = Clock()
        self.server = MemoryFhirServer(clock)
        self.local = MemoryLocalFhir(clock)
        self.bases = MemorySyncBases()
        self.conflicts = MemorySyncConflicts()
        self.sync = FhirSync(self.server, self.local, self.bases, self.conflicts)

    def run(
        self,
        direction: Direction = Direction.BIDIRECTIONAL,
        mode: SyncMode = SyncMode.FULL,
        policy: ConflictPolicy | None = None,
        patient: str | None = None,
        types: tuple[str, ...] = ("Patient",),
    ) -> dict[str, int]:
        request = FhirSyncRequest(
            SCOPE, types, direction, mode, policy or ConflictPolicy(), patient
        )
        return self.sync.run(request)[types[0]]

    def remote(self, rid: str) -> dict[str, Any]:
        return self.server.resources[("Patient", rid)]

    def local_(self, rid: str) -> dict[str, Any]:
        return self.local.resources[("Patient", rid)]

    def edit_remote(self, rid: str, **changes: Any) -> None:
        self.server.update({**self.remote(rid), **changes})

    def edit_local(self, rid: str, **changes: Any) -> None:
        self.local.save({**self.local_(rid), **changes})


def patient(rid: str, family: str = "Doe", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": rid, "name": [{"family": family}], **extra}


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def synced(world: World) -> World:
    """p1 on both sides, agreed."""
    world.local.save(patient("p1", gender="female", birthDate="1980-01-01"))
    world.run()
    return world


def test_a_local_record_is_created_on_the_server_and_becomes_the_base(world: World) -> None:
    world.local.save(patient("p1"))
    counts = world.run()
    assert counts["pushed"] == 1
    assert world.remote("p1")["name"] == [{"family": "Doe"}]
    assert world.bases.bases(SCOPE, "Patient")["p1"].resource == {"name": [{"family": "Doe"}]}
    assert world.run()["unchanged"] == 1  # nothing to do the second time
    assert world.server.resources[("Patient", "p1")]["meta"]["versionId"] == "1"


def test_a_server_record_is_copied_locally(world: World) -> None:
    world.server.update(patient("r1", "Roe"))
    counts = world.run()
    assert counts["pulled"] == 1
    assert world.local_("r1")["name"] == [{"family": "Roe"}]
    assert "p1" not in {k[1] for k in world.server.resources}


def test_a_change_on_either_side_reaches_the_other(synced: World) -> None:
    synced.edit_local("p1", gender="other")
    synced.edit_remote("p1", birthDate="1999-09-09")
    counts = synced.run()
    assert (counts["pushed"], counts["pulled"], counts["conflicts"]) == (1, 1, 0)
    for side in (synced.local_("p1"), synced.remote("p1")):
        assert (side["gender"], side["birthDate"]) == ("other", "1999-09-09")


def test_the_write_to_the_server_carries_the_version_read(synced: World) -> None:
    synced.edit_local("p1", gender="other")
    synced.server.calls.clear()
    synced.run()
    assert synced.remote("p1")["meta"]["versionId"] == "2"
    assert "PUT Patient/p1" in synced.server.calls


@pytest.mark.parametrize(
    ("strategy", "gender"),
    [
        (Strategy.LAST_WRITE_WINS, "unknown"),  # the server was written last
        (Strategy.LOCAL_WINS, "other"),
        (Strategy.REMOTE_WINS, "unknown"),
    ],
)
def test_a_conflict_settled_by_the_strategy_lands_on_both_sides(
    synced: World, strategy: Strategy, gender: str
) -> None:
    synced.edit_local("p1", gender="other")
    synced.edit_remote("p1", gender="unknown")
    counts = synced.run(policy=ConflictPolicy(strategy))
    assert counts["conflicts"] == 0
    assert synced.local_("p1")["gender"] == gender
    assert synced.remote("p1")["gender"] == gender
    assert synced.bases.bases(SCOPE, "Patient")["p1"].resource["gender"] == gender


def test_field_merge_keeps_both_sides_changes(synced: World) -> None:
    synced.edit_local("p1", gender="other", birthDate="1970-01-01")
    synced.edit_remote("p1", gender="unknown", telecom=[{"value": "1"}])
    synced.run(policy=ConflictPolicy(Strategy.FIELD_MERGE, Strategy.LOCAL_WINS))
    for side in (synced.local_("p1"), synced.remote("p1")):
        assert side["gender"] == "other"
        assert side["birthDate"] == "1970-01-01"
        assert side["telecom"] == [{"value": "1"}]


def test_a_manual_conflict_waits_then_its_decision_is_written(synced: World) -> None:
    synced.edit_local("p1", gender="other", birthDate="1970-01-01")
    synced.edit_remote("p1", gender="unknown")
    counts = synced.run()
    assert counts["conflicts"] == 1
    assert synced.conflicts.items[0][1].fields == [
        {"field": "gender", "local": "other", "remote": "unknown", "base": "female"}
    ]
    assert synced.run()["conflicts"] == 0  # the same conflict is not opened twice
    assert synced.conflicts.open_count == 1
    assert synced.remote("p1")["gender"] == "unknown"  # nothing written meanwhile

    synced.conflicts.decide(1, {"gender": "male"})
    counts = synced.run()
    for side in (synced.local_("p1"), synced.remote("p1")):
        assert side["gender"] == "male"
        assert side["birthDate"] == "1970-01-01"  # the non-conflicting change merged
    assert synced.run()["unchanged"] == 1


def test_an_ignored_conflict_leaves_both_sides(synced: World) -> None:
    synced.edit_local("p1", gender="other")
    synced.edit_remote("p1", gender="unknown")
    synced.run()
    synced.conflicts.decide(1, None, status="ignored")
    assert synced.run()["waiting"] == 1
    assert (synced.local_("p1")["gender"], synced.remote("p1")["gender"]) == ("other", "unknown")


def test_a_new_divergence_after_a_decision_is_a_new_conflict(synced: World) -> None:
    synced.edit_local("p1", gender="other")
    synced.edit_remote("p1", gender="unknown")
    synced.run()
    synced.conflicts.decide(1, {"gender": "male"})
    synced.edit_remote("p1", gender="x")  # the remote value the decision was about is gone
    assert synced.run()["conflicts"] == 1
    assert synced.local_("p1")["gender"] == "other"
    assert synced.conflicts.open_count == 1


def test_an_auto_resolution_rule_settles_a_manual_policy(synced: World) -> None:
    synced.edit_local("p1", telecom=[{"value": "local"}])
    synced.edit_remote("p1", telecom=[{"value": "ehr"}])
    policy = ConflictPolicy(Strategy.MANUAL, rules=(Rule("telecom", "remote"),))
    counts = synced.run(policy=policy)
    assert counts["conflicts"] == 0
    assert synced.local_("p1")["telecom"] == [{"value": "ehr"}]


def test_a_deletion_on_either_side_deletes_the_other(synced: World) -> None:
    synced.local.save(patient("p2"))
    synced.run()
    synced.local.remove("Patient", "p1")
    synced.server.delete("Patient", "p2")
    counts = synced.run()
    assert (counts["deleted_remote"], counts["deleted_local"]) == (1, 1)
    assert ("Patient", "p1") not in synced.server.resources
    assert ("Patient", "p2") not in synced.local.resources
    assert synced.bases.bases(SCOPE, "Patient") == {}


def test_a_change_outlives_a_deletion_under_last_write_wins(synced: World) -> None:
    synced.local.remove("Patient", "p1")
    synced.edit_remote("p1", gender="other")
    counts = synced.run(policy=ConflictPolicy(Strategy.LAST_WRITE_WINS))
    assert counts["pulled"] == 1
    assert synced.local_("p1")["gender"] == "other"
    assert synced.run()["unchanged"] == 1


@pytest.mark.parametrize(
    ("strategy", "deleted_on", "survives"),
    [
        (Strategy.LOCAL_WINS, "local", False),
        (Strategy.LOCAL_WINS, "remote", True),
        (Strategy.REMOTE_WINS, "local", True),
        (Strategy.REMOTE_WINS, "remote", False),
    ],
)
def test_source_priority_decides_between_a_deletion_and_a_change(
    synced: World, strategy: Strategy, deleted_on: str, survives: bool
) -> None:
    if deleted_on == "local":
        synced.local.remove("Patient", "p1")
        synced.edit_remote("p1", gender="other")
    else:
        synced.server.delete("Patient", "p1")
        synced.edit_local("p1", gender="other")
    synced.run(policy=ConflictPolicy(strategy))
    held = (
        ("Patient", "p1") in synced.local.resources,
        ("Patient", "p1") in synced.server.resources,
    )
    assert held == ((True, True) if survives else (False, False))
    if survives:
        assert synced.local_("p1")["gender"] == synced.remote("p1")["gender"] == "other"
    else:
        assert synced.bases.bases(SCOPE, "Patient") == {}


@pytest.mark.parametrize("keep", [True, False])
def test_a_deletion_against_a_change_waits_for_a_decision(synced: World, keep: bool) -> None:
    synced.server.delete("Patient", "p1")
    synced.edit_local("p1", gender="other")
    counts = synced.run()
    assert counts["conflicts"] == 1
    ((key, opened),) = synced.conflicts.items
    assert key == (SCOPE, "Patient", "p1")
    assert [f["field"] for f in opened.fields] == ["(record)"]
    assert opened.fields[0]["remote"] is None
    assert opened.fields[0]["local"]["gender"] == "other"
    assert synced.run()["waiting"] == 1
    assert ("Patient", "p1") in synced.local.resources  # nothing written while it waits

    decided = opened.fields[0]["local"] if keep else None  # use_local / use_remote
    synced.conflicts.decide(opened.conflict_id, {"(record)": decided})
    counts = synced.run()
    if keep:
        assert counts["pushed"] == 1
        assert synced.remote("p1")["gender"] == "other"
    else:
        assert counts["deleted_local"] == 1
        assert ("Patient", "p1") not in synced.local.resources
    assert synced.run()["conflicts"] == 0


def test_an_incremental_sync_finds_a_deletion_in_the_servers_history(synced: World) -> None:
    synced.run(mode=SyncMode.INCREMENTAL)  # sets the position
    synced.server.delete("Patient", "p1")
    counts = synced.run(mode=SyncMode.INCREMENTAL)
    assert counts["deleted_local"] == 1
    assert ("Patient", "p1") not in synced.local.resources


def test_a_patient_sync_propagates_a_deletion_either_way(synced: World) -> None:
    synced.local.save(
        {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}
    )
    synced.run(patient="p1", mode=SyncMode.PATIENT, types=("Observation",))
    assert ("Observation", "o1") in synced.server.resources
    synced.server.delete("Observation", "o1")
    counts = synced.run(patient="p1", mode=SyncMode.PATIENT, types=("Observation",))
    assert counts["deleted_local"] == 1
    synced.local.remove("Patient", "p1")
    assert synced.run(patient="p1", mode=SyncMode.PATIENT)["deleted_remote"] == 1
    assert ("Patient", "p1") not in synced.server.resources


def test_each_record_written_is_told_as_a_change(world: World) -> None:
    seen: list[RecordChange] = []
    world.sync.on_change = seen.append
    world.local.save(patient("p1"))
    world.server.update(patient("r1"))
    world.run()
    world.edit_remote("p1", gender="other")
    world.local.remove("Patient", "r1")
    world.run()
    assert [(c.resource_id, c.direction, c.change) for c in seen] == [
        ("p1", "outbound", "created"),
        ("r1", "inbound", "created"),
        ("p1", "inbound", "updated"),
        ("r1", "outbound", "deleted"),
    ]


def test_a_third_change_during_the_write_is_read_and_compared_again(synced: World) -> None:
    synced.edit_local("p1", gender="other")
    synced.edit_remote("p1", birthDate="2000-02-02")
    third = synced.remote("p1")
    original_update = synced.server.update
    raced: list[Any] = []

    def racing_update(resource: dict[str, Any], *, if_match: str | None = None) -> Any:
        if not raced:  # someone else writes just before our write arrives
            raced.append(original_update({**third, "active": True}))
        return original_update(resource, if_match=if_match)

    synced.server.update = racing_update  # type: ignore[method-assign]
    counts = synced.run()
    assert counts["retried"] == 1
    remote = synced.remote("p1")
    assert (remote["gender"], remote["birthDate"], remote["active"]) == (
        "other", "2000-02-02", True)  # fmt: skip
    assert synced.local_("p1")["active"] is True


def test_a_server_that_keeps_changing_is_an_error_not_an_overwrite(synced: World) -> None:
    synced.edit_local("p1", gender="other")
    synced.server.fail_next = [FhirPreconditionFailed("412")] * 10
    with pytest.raises(FhirPreconditionFailed):
        synced.run()
    assert synced.remote("p1")["gender"] == "female"


def test_a_server_failure_leaves_the_base_as_it_was(synced: World) -> None:
    before = synced.bases.bases(SCOPE, "Patient")
    synced.edit_local("p1", gender="other")
    synced.server.fail_next = [FhirServerUnavailable("down")]
    with pytest.raises(FhirServerUnavailable):
        synced.run()
    assert synced.bases.bases(SCOPE, "Patient") == before


def test_inbound_writes_only_locally_and_keeps_local_changes_for_later(synced: World) -> None:
    synced.edit_local("p1", gender="other")
    synced.edit_remote("p1", birthDate="1999-09-09")
    counts = synced.run(direction=Direction.INBOUND)
    assert counts["pushed"] == 0
    assert synced.local_("p1")["birthDate"] == "1999-09-09"
    assert synced.remote("p1")["gender"] == "female"
    synced.run()  # a later two-way sync still sees the local change as one
    assert synced.remote("p1")["gender"] == "other"


def test_outbound_writes_only_the_server(synced: World) -> None:
    synced.local.save(patient("p2"))
    synced.server.update(patient("r9"))
    counts = synced.run(direction=Direction.OUTBOUND)
    assert counts["pushed"] == 1
    assert ("Patient", "p2") in synced.server.resources
    assert ("Patient", "r9") not in synced.local.resources


def test_incremental_reads_only_what_changed_since_the_last_position(synced: World) -> None:
    synced.local.save(patient("p2"))
    synced.run(mode=SyncMode.INCREMENTAL)
    synced.edit_remote("p2", gender="other")
    synced.server.calls.clear()
    counts = synced.run(mode=SyncMode.INCREMENTAL)
    assert counts["pulled"] == 1
    assert synced.local_("p2")["gender"] == "other"
    searches = [c for c in synced.server.calls if c.startswith("GET Patient?")]
    assert searches == [c for c in searches if "_lastUpdated=gt" in c]
    assert len(searches) == 1


def test_incremental_finds_a_local_deletion(synced: World) -> None:
    synced.run(mode=SyncMode.INCREMENTAL)
    synced.local.remove("Patient", "p1")
    assert synced.run(mode=SyncMode.INCREMENTAL)["deleted_remote"] == 1


def test_a_patient_sync_touches_that_patients_records_only(world: World) -> None:
    world.server.update(patient("a"))
    world.server.update(patient("b"))
    world.server.update(
        {"resourceType": "Observation", "id": "o1", "status": "final",
         "code": {"text": "x"}, "subject": {"reference": "Patient/a"}}
    )  # fmt: skip
    world.server.update(
        {"resourceType": "Observation", "id": "o2", "status": "final",
         "code": {"text": "y"}, "subject": {"reference": "Patient/b"}}
    )  # fmt: skip
    request = FhirSyncRequest(SCOPE, ("Patient", "Observation"), mode=SyncMode.PATIENT, patient="a")
    counts = world.sync.run(request)
    assert counts["Patient"]["pulled"] == 1
    assert counts["Observation"]["pulled"] == 1
    assert set(world.local.resources) == {("Patient", "a"), ("Observation", "o1")}
    assert world.bases.positions == {}


def test_a_patient_sync_needs_its_patient() -> None:
    with pytest.raises(InvalidRequest):
        FhirSyncRequest(SCOPE, ("Patient",), mode=SyncMode.PATIENT)


def test_direction_parse() -> None:
    assert Direction.parse("Both") is Direction.BIDIRECTIONAL
    assert Direction.parse("bidirectional") is Direction.BIDIRECTIONAL
    with pytest.raises(InvalidRequest):
        Direction.parse("sideways")


def test_a_local_change_outlives_a_deletion_on_the_server(synced: World) -> None:
    synced.server.delete("Patient", "p1")
    synced.edit_local("p1", gender="other")
    counts = synced.run(policy=ConflictPolicy(Strategy.LAST_WRITE_WINS))
    assert (counts["pushed"], counts["deleted_local"]) == (1, 0)
    assert synced.remote("p1")["gender"] == "other"


def test_outbound_keeps_the_server_change_for_a_later_two_way_sync(synced: World) -> None:
    synced.edit_local("p1", gender="other")
    synced.edit_remote("p1", birthDate="1999-09-09")
    synced.run(direction=Direction.OUTBOUND)
    assert synced.local_("p1")["birthDate"] == "1980-01-01"  # not written locally
    assert synced.remote("p1")["gender"] == "other"
    counts = synced.run()
    assert counts["pulled"] == 1
    assert synced.local_("p1")["birthDate"] == "1999-09-09"


def test_a_record_on_both_sides_never_synced_and_equal_is_agreed_without_writes(
    world: World,
) -> None:
    world.local.save(patient("p1", gender="female"))
    world.server.update(patient("p1", gender="female"))
    counts = world.run()
    assert (counts["unchanged"], counts["conflicts"]) == (1, 0)
    assert set(world.bases.bases(SCOPE, "Patient")) == {"p1"}


def test_a_record_on_both_sides_never_synced_and_different_is_a_conflict(world: World) -> None:
    world.local.save(patient("p1", gender="female"))
    world.server.update(patient("p1", gender="male"))
    assert world.run()["conflicts"] == 1
    assert world.conflicts.items[0][1].fields == [
        {"field": "gender", "local": "female", "remote": "male", "base": None}
    ]


def test_an_incremental_sync_reads_a_late_committed_change_again(synced: World) -> None:
    synced.run(mode=SyncMode.INCREMENTAL)
    position = synced.bases.positions[(SCOPE, "Patient")]["local"]
    assert position is not None
    clock = synced.local.clock
    assert isinstance(clock, Clock)
    clock.now -= dt.timedelta(seconds=3)  # written before the position, committed after
    synced.edit_local("p1", gender="other")
    assert synced.local_("p1")["meta"]["lastUpdated"] < position
    counts = synced.run(mode=SyncMode.INCREMENTAL)
    assert counts["pushed"] == 1
    assert synced.remote("p1")["gender"] == "other"


MRN = {"system": "urn:mrn", "value": "42"}


def test_a_new_record_whose_identifier_the_server_holds_is_not_created_twice(
    world: World,
) -> None:
    world.server.update(patient("r1", identifier=[MRN]))
    world.local.save(patient("p1", identifier=[MRN]))
    counts = world.run(patient="p1", mode=SyncMode.PATIENT)
    assert (counts["pushed"], counts["conflicts"]) == (0, 1)
    assert ("Patient", "p1") not in world.server.resources
    ((_, opened),) = world.conflicts.items
    assert opened.fields[0]["field"] == "(identifier)"
    assert opened.fields[0]["remote"] == {"ids": ["r1"]}
    assert world.run(patient="p1", mode=SyncMode.PATIENT)["waiting"] == 1

    world.conflicts.decide(opened.conflict_id, {"(identifier)": opened.fields[0]["local"]})
    assert world.run(patient="p1", mode=SyncMode.PATIENT)["pushed"] == 1  # decided: both kept
    assert ("Patient", "p1") in world.server.resources


def test_a_new_record_of_an_identifier_unknown_there_is_created(world: World) -> None:
    world.local.save(patient("p1", identifier=[MRN]))
    world.server.calls.clear()
    assert world.run()["pushed"] == 1
    assert world.server.calls[-2:] == [
        "GET Patient?identifier=urn:mrn|42",
        "PUT Patient?identifier=urn:mrn|42",  # a conditional update: created at its id
    ]
    assert world.remote("p1")["id"] == "p1"


def test_a_twin_made_between_the_search_and_the_create_is_caught(world: World) -> None:
    world.local.save(patient("p1", identifier=[MRN]))
    real_search = world.server.search

    def racing_search(rtype: str, params: Any = None) -> Any:
        found = list(real_search(rtype, params))
        if ("Patient", "r9") not in world.server.resources:  # someone creates it now
            world.server.update(patient("r9", identifier=[MRN]))
        return iter(found)

    world.server.search = racing_search  # type: ignore[method-assign]
    counts = world.run(patient="p1", mode=SyncMode.PATIENT)
    assert (counts["pushed"], counts["conflicts"]) == (0, 1)
    assert ("Patient", "p1") not in world.server.resources
    ((_, opened),) = world.conflicts.items
    assert opened.fields[0]["remote"] == {"ids": ["r9"]}


def test_a_server_without_conditional_update_gets_a_plain_put(world: World) -> None:
    world.local.save(patient("p1", identifier=[MRN]))
    world.server.conditional_update = _refuse  # type: ignore[method-assign]
    assert world.run()["pushed"] == 1
    assert world.remote("p1")["identifier"] == [MRN]


def _refuse(*_args: Any, **_kwargs: Any) -> Any:
    raise FhirRequestRejected("PUT Patient?identifier=…: HTTP 405: not supported")


def test_a_deletion_against_a_change_decided_by_hand_keeps_the_record_given(
    synced: World,
) -> None:
    synced.local.remove("Patient", "p1")
    synced.edit_remote("p1", gender="other")
    assert synced.run()["conflicts"] == 1
    ((_, opened),) = synced.conflicts.items
    synced.conflicts.decide(opened.conflict_id, {"gender": "male"})  # manual, no (record)
    synced.run()
    assert synced.local_("p1")["gender"] == synced.remote("p1")["gender"] == "male"
    assert synced.local_("p1")["birthDate"] == "1980-01-01"

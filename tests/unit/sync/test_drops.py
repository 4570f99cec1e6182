"""DropSync against the in-memory fakes: loading, delta, refusal, resumption, snapshots."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from pacsync.connectors.memory import (
    MemoryDeadLetters,
    MemoryDestination,
    MemoryJobLog,
    RecordingProgress,
)
from pacsync.connectors.memory.drops import MemoryDrops
from pacsync.domain.records import EntityCounts
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import StoreUnavailable
from pacsync.sync.drops import DropRun, DropSync, drop_version, refused_files, run_drop_entity
from pacsync.sync.pipeline import RunResult

HEADER = "id,name,born\n"
PATIENTS: dict[str, Any] = {
    "source": {
        "drop": "patients",
        "pattern": "*.csv",
        "format": "csv",
        "key": ["id"],
        "columns": ["id", "name", "born"],
    },
    "target": {"table": "patients"},
    "fields": {
        "patient_id": {"from": "id", "type": "integer"},
        "name": {"from": "name", "transforms": ["trim"]},
        "born": {"from": "born", "type": "date"},
    },
    "validate": [{"field": "name", "rule": "required"}],
}


def pipeline(**source: Any) -> PipelineSpec:
    entity = copy.deepcopy(PATIENTS)
    entity["source"].update(source)
    return PipelineSpec.model_validate(
        {
            "name": "pms",
            "connections": {"exports": {"url": "file:/srv/pms"}, "wh": {"url": "sqlite://"}},
            "source": {"connection": "exports"},
            "destination": {"connection": "wh", "delete_mode": "hard"},
            "batch_size": 10,
            "entities": {"patients": entity},
        }
    )


@dataclass
class World:
    spec: PipelineSpec
    destination: MemoryDestination = field(init=False)
    drops: MemoryDrops = field(init=False)
    dead_letters: MemoryDeadLetters = field(default_factory=MemoryDeadLetters)
    progress: RecordingProgress = field(default_factory=RecordingProgress)

    def __post_init__(self) -> None:
        self.destination = MemoryDestination(self.spec)
        self.drops = MemoryDrops(self.spec)

    def drop(self, name: str, text: str, mtime_ns: int = 0) -> None:
        self.drops.drop("patients", name, text.encode(), mtime_ns)

    def run(self, *, rewrite: bool = False) -> EntityCounts:
        return DropSync(
            self.spec,
            "patients",
            folder=self.drops,
            destination=self.destination,
            dead_letters=self.dead_letters,
            progress=self.progress,
            job_id="job-1",
            rewrite=rewrite,
        ).run()

    def names(self) -> dict[int, str]:
        rows = self.destination.live("patients")
        return {key[0]: row["name"] for key, row in rows.items()}

    def written_ids(self, since: int = 0) -> list[int]:
        return [row[0] for w in self.destination.writes[since:] for row in w.rows]


def rows(numbers: range, name: str = "P{}") -> str:
    return "".join(f"{n},{name.format(n)},2001-02-03\n" for n in numbers)


@pytest.fixture
def world() -> World:
    return World(pipeline())


def test_a_file_is_loaded_and_archived_with_its_report(world: World) -> None:
    world.drop("a.csv", HEADER + rows(range(1, 4)) + "4,,2001-01-01\n5,Eve\n6,Fay,nope\n")

    counts = world.run()

    assert world.names() == {1: "P1", 2: "P2", 3: "P3"}
    assert (counts.read, counts.inserted, counts.dead_lettered) == (6, 3, 3)
    assert counts.rules_failed == {"required": 1, "malformed": 1, "type": 1}
    report = world.drops.archived["patients"]["a.csv"].report
    assert (report.records, report.inserted, report.rejected, report.malformed) == (6, 3, 3, 1)
    assert report.outcome == "archived"
    assert [(r["line"], r["reason"]) for r in report.rejects] == [
        (5, "name: a value is required [required]"),
        (6, "2 fields where the header has 3"),
        (7, "born: cannot read as date: 'nope' is not a date in ['ISO'] [type]"),
    ]
    assert world.drops.files["patients"] == {}
    checkpoint = world.destination.checkpoints["patients"]
    assert checkpoint.phase == "idle"
    assert checkpoint.extra["last_file"]["name"] == "a.csv"


def test_a_malformed_record_is_parked_whole_with_file_line_and_reason(world: World) -> None:
    world.drop("a.csv", HEADER + "1,Ann,2001-01-01\n2,Bo,1999-09-09,extra\n")

    world.run()

    (letter,) = [d for d in world.dead_letters.open("patients") if d.rule == "malformed"]
    assert letter.key == ("a.csv:3",)
    assert letter.record == {
        "_file": "a.csv",
        "_line": 3,
        "record": 2,
        "text": "2,Bo,1999-09-09,extra\n",
    }
    assert letter.message == "4 fields where the header has 3"
    assert [d.rule for d in world.dead_letters.items] == ["malformed"]


def test_a_rejected_mapping_keeps_the_line_in_the_dead_letter(world: World) -> None:
    world.drop("a.csv", HEADER + "1,Ann,2001-13-01\n")

    world.run()

    (letter,) = world.dead_letters.open("patients")
    assert letter.key == (1,)
    assert letter.rule == "type"
    assert (letter.record["_file"], letter.record["_line"]) == ("a.csv", 2)
    assert letter.record["born"] == "2001-13-01"


def test_unchanged_records_are_not_written_again(world: World) -> None:
    world.drop("a.csv", HEADER + rows(range(1, 21)))
    world.run()
    writes = len(world.destination.writes)
    world.drop("b.csv", HEADER + rows(range(1, 21)).replace("P7,", "Seven,") + rows(range(21, 23)))

    counts = world.run()

    assert (counts.read, counts.unchanged, counts.updated, counts.inserted) == (22, 19, 1, 2)
    assert sorted(world.written_ids(writes)) == [7, 21, 22]
    assert world.names()[7] == "Seven"
    report = world.drops.archived["patients"]["b.csv"].report
    assert (report.unchanged, report.updated, report.inserted) == (19, 1, 2)


def test_full_mode_writes_every_record_again(world: World) -> None:
    world.drop("a.csv", HEADER + rows(range(1, 6)))
    world.run()
    writes = len(world.destination.writes)
    world.drop("b.csv", HEADER + rows(range(1, 6)))

    counts = world.run(rewrite=True)

    assert counts.updated == 5
    assert sorted(world.written_ids(writes)) == [1, 2, 3, 4, 5]


def test_a_changed_mapping_rewrites_records_it_meets_again() -> None:
    before = World(pipeline())
    before.drop("a.csv", HEADER + rows(range(1, 4)))
    before.run()
    entity = copy.deepcopy(PATIENTS)
    entity["fields"]["name"]["transforms"] = ["trim", "upper"]
    changed = PipelineSpec.model_validate(
        {**before.spec.model_dump(by_alias=True), "entities": {"patients": entity}}
    )
    after = World(changed)
    after.destination.tables = before.destination.tables
    after.destination.hashes = before.destination.hashes
    after.drop("b.csv", HEADER + rows(range(1, 4), name="p{}"))

    counts = after.run()

    assert counts.updated == 3
    assert after.names() == {1: "P1", 2: "P2", 3: "P3"}


def test_files_are_loaded_in_name_order_and_the_last_version_wins(world: World) -> None:
    world.drop("2.csv", HEADER + "1,Second,2001-01-01\n")
    world.drop("1.csv", HEADER + "1,First,2001-01-01\n")

    world.run()

    assert world.names() == {1: "Second"}
    assert list(world.drops.archived["patients"]) == ["1.csv", "2.csv"]


def test_a_key_twice_in_one_batch_is_written_in_file_order(world: World) -> None:
    world.drop("a.csv", HEADER + "1,Old,2001-01-01\n2,B,2001-01-01\n1,New,2001-01-01\n")

    counts = world.run()

    assert world.names() == {1: "New", 2: "B"}
    assert (counts.inserted, counts.updated) == (2, 1)


def test_an_empty_or_unreadable_key_is_a_malformed_record(world: World) -> None:
    world.drop("a.csv", HEADER + ",Nokey,2001-01-01\nx1,Bad,2001-01-01\n3,Ok,2001-01-01\n")

    counts = world.run()

    assert world.names() == {3: "Ok"}
    assert counts.rules_failed == {"malformed": 2}
    reasons = [d.message for d in world.dead_letters.open("patients")]
    assert reasons[0] == "key column 'id' is empty"
    assert "integer" in reasons[1]


def test_a_wrong_header_refuses_the_file_naming_the_columns(world: World) -> None:
    world.drop("a.csv", "id,nam,born,extra\n1,Ann,2001-01-01,x\n")

    counts = world.run()

    assert world.destination.live("patients") == {}
    assert counts.read == 0
    report = world.drops.refused["patients"]["a.csv"].report
    assert report.outcome == "refused"
    assert (report.missing_columns, report.unexpected_columns) == (["name"], ["nam", "extra"])
    assert str(report.reason).startswith("wrong columns")
    assert world.destination.checkpoints["patients"].extra["outcome"] == "refused"


def test_json_that_breaks_off_keeps_the_records_before_and_refuses_the_file() -> None:
    world = World(pipeline(format="json", columns=["id", "name", "born"]))
    data = '[{"id": 1, "name": "A", "born": "2000-01-01"},\n{"id": 2, "name": '
    world.drop("a.json", data)

    world.run()

    assert world.names() == {1: "A"}
    report = world.drops.refused["patients"]["a.json"].report
    assert (report.records, report.inserted) == (1, 1)
    assert "not valid JSON at line 2" in str(report.reason)


# -- resumption -------------------------------------------------------------------------------


def test_a_stopped_run_resumes_at_the_next_record_of_the_same_file(world: World) -> None:
    world.drop("a.csv", HEADER + rows(range(1, 36)) + "36,Bad\n", mtime_ns=5)
    world.destination.fail_writes = [None, None, StoreUnavailable("store down")]

    with pytest.raises(StoreUnavailable):
        world.run()

    checkpoint = world.destination.checkpoints["patients"]
    assert (checkpoint.phase, checkpoint.extra["row"]) == ("full", 20)
    assert checkpoint.extra["file"]["name"] == "a.csv"
    assert len(world.names()) == 20
    assert world.drops.files["patients"] != {}  # still waiting: not archived
    writes = len(world.destination.writes)

    counts = world.run()

    assert sorted(world.written_ids(writes)) == list(range(21, 36))
    assert sorted(world.names()) == list(range(1, 36))
    report = world.drops.archived["patients"]["a.csv"].report
    assert (report.records, report.inserted, report.malformed) == (36, 35, 1)
    assert counts.inserted == 15


def test_a_file_changed_since_the_stop_starts_over(world: World) -> None:
    world.drop("a.csv", HEADER + rows(range(1, 36)), mtime_ns=5)
    world.destination.fail_writes = [None, StoreUnavailable("store down")]
    with pytest.raises(StoreUnavailable):
        world.run()
    assert world.destination.checkpoints["patients"].extra["row"] == 10
    world.drop("a.csv", HEADER + rows(range(1, 36), name="Q{}"), mtime_ns=6)
    writes = len(world.destination.writes)

    world.run()

    assert sorted(world.written_ids(writes)) == list(range(1, 36))
    assert set(world.names().values()) == {f"Q{n}" for n in range(1, 36)}
    assert world.drops.archived["patients"]["a.csv"].report.records == 35


# -- snapshots --------------------------------------------------------------------------------


def test_a_snapshot_deletes_stored_keys_missing_from_it() -> None:
    world = World(pipeline(snapshot=True))
    world.drop("1.csv", HEADER + rows(range(1, 6)))
    world.run()
    world.drop("2.csv", HEADER + rows(range(1, 4)) + "5,,2001-01-01\n")

    counts = world.run()

    assert sorted(world.names()) == [1, 2, 3, 5]  # 5 is kept: its new version was rejected
    assert counts.deleted == 1
    assert world.drops.archived["patients"]["2.csv"].report.deleted == 1


def test_a_snapshot_with_unreadable_records_deletes_nothing() -> None:
    world = World(pipeline(snapshot=True))
    world.drop("1.csv", HEADER + rows(range(1, 6)))
    world.run()
    world.drop("2.csv", HEADER + rows(range(1, 3)) + "3,broken\n")

    counts = world.run()

    assert sorted(world.names()) == [1, 2, 3, 4, 5]
    assert counts.deleted == 0
    report = world.drops.archived["patients"]["2.csv"].report
    assert report.reason == "snapshot with unreadable records: nothing deleted"


def test_an_empty_snapshot_deletes_nothing() -> None:
    world = World(pipeline(snapshot=True))
    world.drop("1.csv", HEADER + rows(range(1, 3)))
    world.run()
    world.drop("2.csv", HEADER)

    world.run()

    assert sorted(world.names()) == [1, 2]
    report = world.drops.archived["patients"]["2.csv"].report
    assert report.reason == "snapshot with no records: nothing deleted"


def test_a_resumed_snapshot_remembers_the_keys_committed_before_the_stop() -> None:
    world = World(pipeline(snapshot=True))
    world.drop("1.csv", HEADER + rows(range(1, 31)))
    world.run()
    world.drop("2.csv", HEADER + rows(range(1, 26), name="N{}"))
    world.destination.fail_writes = [None, StoreUnavailable("store down")]
    with pytest.raises(StoreUnavailable):
        world.run()

    world.run()

    assert sorted(world.names()) == list(range(1, 26))  # 26..30 deleted, 1..10 kept
    assert world.drops.archived["patients"]["2.csv"].report.deleted == 5


def test_parked_records_are_resolved_when_a_later_file_brings_them_right(world: World) -> None:
    world.drop("1.csv", HEADER + "1,,2001-01-01\n")
    world.run()
    assert [d.key for d in world.dead_letters.open("patients")] == [(1,)]
    world.drop("2.csv", HEADER + "1,Fixed,2001-01-01\n")

    world.run()

    assert world.dead_letters.open("patients") == []
    assert world.names() == {1: "Fixed"}


def test_a_job_step_notes_refused_files_for_the_job_to_report(world: World) -> None:
    world.drop("a.csv", "id,nam,born\n1,A,2001-01-01\n")
    world.drop("b.csv", HEADER + "1,A,2001-01-01\n")
    run = DropRun(
        world.spec,
        "job-1",
        world.drops,
        world.destination,
        world.dead_letters,
        MemoryJobLog(),
        world.progress,
    )
    result = RunResult(job_id="job-1")

    run_drop_entity(run, result, "patients", "incremental")

    assert result.error is None
    assert result.entities["patients"].inserted == 1
    assert result.modes["patients"] == "drop"
    assert run.refused == ["a.csv → error/a.csv (wrong columns in the header: missing columns: "
                           "name; unexpected columns: nam)"]  # fmt: skip
    error = refused_files(run.refused * 4)
    assert (error.code, error.transient) == ("PACS-305", False)
    assert error.message.startswith("4 file(s) refused: a.csv → error/a.csv")
    assert error.message.endswith("; and 1 more")


def test_where_files_are_found_is_not_part_of_the_version() -> None:
    base = pipeline().entities["patients"]
    moved = pipeline(drop="elsewhere", pattern="p*.csv", quiet_s=60, snapshot=True)
    parsed = pipeline(delimiter=";")
    assert drop_version(moved.entities["patients"]) == drop_version(base)
    assert drop_version(parsed.entities["patients"]) != drop_version(base)
    xml = pipeline(format="xml", record_path="Patient", drop="x")
    assert drop_version(xml.entities["patients"]) == drop_version(
        pipeline(format="xml", record_path="Patient", ready="marker").entities["patients"]
    )

"""The archive index on PostgreSQL (the scale path) answers as it does on SQLite: the
same folder scanned by ``pacsync`` into a fresh PostgreSQL database and into the
default SQLite store gives the same scan counts and the same search results (name
prefixes folded for accents and case, wild cards, modality and date range, every
instance with its path).  The matching keys the CLI has no option for are compared
through the index search itself, on stores scanned in this process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pacsync import bootstrap
from pacsync.bootstrap import archives as wiring
from pacsync.config import Settings
from pacsync.imaging.search import Query

from .imaging_archives import (
    cli,
    corrupt_files,
    ct_series,
    names,
    output,
    rows,
    sample,
    scan_counts,
    succeeded,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEARCHES: tuple[tuple[str, ...], ...] = (
    ("search", "--level", "instance", "--limit", "1000", "--json"),
    ("search", "muller*", "--json"),
    ("search", "d?e^j*", "--modality", "CT", "--from", "2024-01-01", "--json"),
)


def side_by_side(*runs: tuple[Any, tuple[str | Path, ...]]) -> list[Any]:
    """``(cli, args)`` pairs run at the same time; their CompletedProcesses."""
    with ThreadPoolExecutor(len(runs)) as pool:
        return list(pool.map(lambda run: run[0].run(*run[1]), runs))


def test_a_scan_and_searches_on_postgresql_equal_those_on_sqlite(
    request: pytest.FixtureRequest, pacsync: Any, pg_url: str, tmp_path: Path,
    bytecode_cache: Path,
) -> None:  # fmt: skip
    nas = tmp_path / "nas"
    ct_series(nas / "john", patient_id="PG-1", patient_name="DOE^JOHN", study_uid="2.25.901",
              study_date="20240105")  # fmt: skip
    ct_series(nas / "jane", patient_id="PG-2", patient_name="DOE^JANE", study_uid="2.25.902",
              study_date="20240210", modality="MR", images=2)  # fmt: skip
    ct_series(nas / "old", patient_id="PG-3", patient_name="DOE^JOE", study_uid="2.25.903",
              study_date="20230101", images=1)  # fmt: skip
    ct_series(nas / "latin1", patient_id="PG-4", patient_name="Müller^Jörg", study_uid="2.25.904",
              charset="ISO_IR 100", images=1)  # fmt: skip
    ct_series(nas / "utf8", patient_id="PG-5", patient_name="MULLER^ANNE", study_uid="2.25.905",
              charset="ISO_IR 192", images=1)  # fmt: skip
    ct_series(nas / "alias", patient_id="PG-1", patient_name="DOE^JONATHAN",
              study_uid="2.25.906", study_date="20240301", images=1)  # fmt: skip
    sample("CT_small.dcm", nas / "samples" / "CT_small.dcm")
    sample("examples_jpeg2k.dcm", nas / "samples" / "examples_jpeg2k.dcm")
    corrupt_files(nas / "junk", nas / "john" / "IM0001.dcm")

    postgres = pacsync
    postgres.env["PACSYNC_DATABASE_URL"] = pg_url
    sqlite = cli(request.config, tmp_path / "sqlite", bytecode_cache)
    (tmp_path / "sqlite").mkdir()
    both = ((postgres, ("archive", "add", "nas", "dicom", nas)),
            (sqlite, ("archive", "add", "nas", "dicom", nas)))  # fmt: skip
    for added in side_by_side(*both):
        succeeded(added)
    scanned = side_by_side(
        (postgres, ("archive", "scan", "nas")), (sqlite, ("archive", "scan", "nas"))
    )
    for done in scanned:
        assert done.returncode == 0, output(done)
    assert scan_counts(scanned[0]) == scan_counts(scanned[1]) == {
        "files seen": 15, "unchanged": 0, "new": 15, "changed": 0, "moved": 0, "deleted": 0,
        "indexed": 11, "invalid": 4, "unreadable": 0, "identity conflicts": 1,
    }  # fmt: skip

    answers = side_by_side(*((store, args) for args in SEARCHES for store in (postgres, sqlite)))
    on_postgres = [rows(done) for done in answers[0::2]]
    on_sqlite = [rows(done) for done in answers[1::2]]
    assert on_postgres == on_sqlite

    instances, muller, doe = on_postgres
    assert len(instances) == 11
    assert names(muller) == [("nas", "MULLER^ANNE"), ("nas", "Müller^Jörg")]
    assert names(doe) == [("nas", "DOE^JOHN"), ("nas", "DOE^JONATHAN")]


# wild-card matching keys beside PatientName: the same answer whichever store holds the index
OTHER_KEYS = (
    ("study", {"ReferringPhysicianName": "referrer*"}),
    ("study", {"ReferringPhysicianName": "Referrer^R*"}),
    ("study", {"StudyDescription": "ct chest*"}),
    ("study", {"StudyDescription": "CT Chest*"}),
    ("series", {"SeriesDescription": "axial*"}),
    ("series", {"BodyPartExamined": "ch*"}),
)


def scanned_in_process(home: Path, database_url: str | None, nas: Path) -> bootstrap.Store:
    settings = Settings(home=home, database_url=database_url)
    store = bootstrap.store(settings)
    store.archives.add("nas", "dicom", str(nas), options={"watch": False}, rescan_minutes=0)
    assert wiring.scan(settings, store, "nas").status == "online"
    return store


def test_wild_cards_on_other_keys_match_alike_on_both_stores(pg_url: str, tmp_path: Path) -> None:
    nas = tmp_path / "nas"
    ct_series(nas / "one", patient_id="PG-9", patient_name="DOE^JOHN", study_uid="2.25.991",
              images=1)  # fmt: skip
    stores = [scanned_in_process(tmp_path / "sqlite", None, nas),
              scanned_in_process(tmp_path / "postgres", pg_url, nas)]  # fmt: skip
    try:
        found = {
            (level, next(iter(match.items()))): [
                len(store.archive_search.search(Query.build(level, match))) for store in stores
            ]
            for level, match in OTHER_KEYS
        }
    finally:
        for store in stores:
            store.engine.dispose()
    assert {key: counts for key, counts in found.items() if counts[0] != counts[1]} == {}
    assert found["study", ("ReferringPhysicianName", "referrer*")] == [1, 1]  # a name

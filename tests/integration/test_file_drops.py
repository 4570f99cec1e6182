"""The pms-files recipe end to end, through the CLI, into SQLite and PostgreSQL.

The recipe's sample exports (patients CSV, appointments JSON, providers XML) are
dropped in folders and loaded by ``pacsync run``; the target rows, the dead
letters, the moved files and their reports are then read back.  A second day of
exports checks the delta (unchanged rows keep their sync time), the snapshot
delete of providers, and a patients file with a wrong header refused to error/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pacsync.connectors.sql.engine import make_engine

pytestmark = pytest.mark.integration

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "pms-files"
SAMPLES = RECIPE / "samples"
DROPS = {"patients": "patients_", "appointments": "appointments_", "providers": "providers_"}


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture
def drops(tmp_path: Path) -> Path:
    root = tmp_path / "drops"
    for folder in DROPS:
        (root / folder).mkdir(parents=True)
    return root


def drop(drops: Path, folder: str, name: str, text: str | None = None) -> Path:
    """Put an export in its folder as complete (older than the quiet time; with its marker
    for appointments)."""
    path = drops / folder / name
    if text is None:
        shutil.copy(SAMPLES / name, path)
    else:
        path.write_text(text, encoding="utf-8")
    if folder == "appointments":
        (drops / folder / f"{name}.done").touch()
    old = dt.datetime.now().timestamp() - 60
    os.utime(path, (old, old))
    return path


def drop_samples(drops: Path) -> None:
    for folder, prefix in DROPS.items():
        for sample in SAMPLES.glob(f"{prefix}*"):
            if not sample.name.endswith(".done"):
                drop(drops, folder, sample.name)


def run(pacsync: Any, target: str, drops: Path, *args: str) -> Any:
    return pacsync(
        "run",
        RECIPE / "pipeline.yaml",
        "--quiet",
        *args,
        env={"PMS_DROPS": str(drops), "WAREHOUSE_URL": target},
    )


def rows(target: str, sql: str) -> list[tuple[Any, ...]]:
    engine = make_engine(target)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    found = rows(
        f"sqlite:///{tmp_path / 'pacsync-home' / 'pacsync.db'}",
        "SELECT entity, record_key, rule, message, payload FROM dead_letters "
        "WHERE kind = 'record' AND status = 'open' ORDER BY entity, id",
    )
    return [
        {"entity": e, "key": k, "rule": r, "message": m, "payload": json.loads(p)}
        for e, k, r, m, p in found
    ]


def moved(drops: Path, folder: str, where: str) -> dict[str, dict[str, Any]]:
    """Reports of the files moved to ``where`` (archive or error), by original name."""
    reports = (drops / folder / where).glob("*.report.json")
    return {r["file"]: r for r in (json.loads(p.read_text()) for p in reports)}


def test_the_sample_exports_load_with_bad_records_parked(
    pacsync: Any, target: str, drops: Path, tmp_path: Path
) -> None:
    drop_samples(drops)

    done = run(pacsync, target, drops)

    assert done.returncode == 0, done.stdout + done.stderr
    patients = rows(
        target,
        "SELECT patient_id, mrn, last_name, first_name, birth_date, sex, phone, email "
        "FROM patients ORDER BY patient_id",
    )
    assert [(*r[:4], str(r[4]), *r[5:]) for r in patients] == [
        (1001, "MRN-0001", "Garcia", "Maria", "1956-03-14", "F", "503-555-0101",
         "maria.garcia@example.org"),
        (1002, "MRN-0002", "O'Brien", "Sean", "1971-07-02", "M", "503-555-0102", None),
        (1003, "MRN-0003", "Nguyen, Jr.", "Tuan", "1988-11-30", "M", None, "tuan@example.org"),
        (1004, "MRN-0004", "Smith", 'Anna "Annie"', "2000-02-29", "F", "503-555-0104",
         "annie@example.org"),
        (1008, "MRN-0008", "Brown", "Olivia", "1965-12-01", "F", "503-555-0108",
         "olivia.b@example.org"),
    ]  # fmt: skip
    assert rows(
        target,
        "SELECT appointment_id, patient_id, provider_npi, status FROM appointments "
        "ORDER BY appointment_id",
    ) == [
        (50001, 1001, "1234567893", "booked"),
        (50002, 1002, "1234567893", "booked"),
        (50003, 1008, "1987654321", "arrived"),
    ]
    assert rows(target, "SELECT npi, family_name, active FROM providers ORDER BY npi") == [
        ("1234567893", "Okafor", True),
        ("1987654321", "Lindqvist", True),
    ]
    letters = {(d["entity"], d["rule"]): d for d in dead_letters(tmp_path)}
    assert set(letters) == {
        ("appointments", "range"),
        ("appointments", "reference"),
        ("patients", "enum"),
        ("patients", "malformed"),
        ("patients", "type"),
        ("providers", "regex"),
    }
    malformed = letters[("patients", "malformed")]
    assert malformed["message"] == "3 fields where the header has 9"
    assert malformed["payload"] == {
        "_file": "patients_20261123.csv",
        "_line": 8,
        "record": 7,
        "text": "1007,MRN-0007,Patel\n",
    }
    typed = letters[("patients", "type")]
    assert (typed["payload"]["_line"], typed["payload"]["birth_date"]) == (6, "not a date")
    for folder, prefix in DROPS.items():
        assert sorted(p.name for p in (drops / folder).iterdir()) == ["archive"], folder
        (report,) = moved(drops, folder, "archive").values()
        assert report["file"].startswith(prefix)
        assert report["outcome"] == "archived"
    report = moved(drops, "patients", "archive")["patients_20261123.csv"]
    assert (report["records"], report["inserted"], report["rejected"]) == (8, 5, 3)
    assert [(r["line"], r["record"]) for r in report["rejects"]] == [(6, 5), (7, 6), (8, 7)]


def test_the_next_day_rewrites_only_what_changed(
    pacsync: Any, target: str, drops: Path, tmp_path: Path
) -> None:
    drop_samples(drops)
    assert run(pacsync, target, drops).returncode == 0
    before = dict(rows(target, "SELECT patient_id, _pacsync_synced_at FROM patients"))
    text = (SAMPLES / "patients_20261123.csv").read_text()
    drop(drops, "patients", "patients_20261124.csv", text.replace("Garcia,Maria", "Garcia,Mia"))
    xml = (SAMPLES / "providers_20261123.xml").read_text()
    start = xml.index('    <Provider npi="1987654321">')
    end = xml.index("</Provider>", start) + len("</Provider>\n")
    drop(drops, "providers", "providers_20261124.xml", xml[:start] + xml[end:])
    drop(drops, "patients", "patients_20261125.csv", "patient_id,mrn,surname\n1,2,3\n")

    done = run(pacsync, target, drops)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "PACS-305 1 file(s) refused: patients_20261125.csv" in done.stdout + done.stderr
    after = dict(rows(target, "SELECT patient_id, _pacsync_synced_at FROM patients"))
    assert {k for k in after if after[k] != before[k]} == {1001}
    assert rows(target, "SELECT first_name FROM patients WHERE patient_id = 1001") == [("Mia",)]
    day2 = moved(drops, "patients", "archive")["patients_20261124.csv"]
    assert (day2["updated"], day2["unchanged"], day2["inserted"]) == (1, 4, 0)
    assert rows(target, "SELECT npi FROM providers WHERE deleted_at IS NOT NULL") == [
        ("1987654321",)
    ]
    assert moved(drops, "providers", "archive")["providers_20261124.xml"]["deleted"] == 1
    refused = moved(drops, "patients", "error")["patients_20261125.csv"]
    assert refused["outcome"] == "refused"
    assert refused["unexpected_columns"] == ["surname"]
    assert refused["missing_columns"][:2] == ["last_name", "first_name"]
    assert len(list((drops / "patients" / "error").glob("patients_20261125.*.csv"))) == 1


def test_check_finds_the_drop_folders(pacsync: Any, target: str, drops: Path) -> None:
    env = {"PMS_DROPS": str(drops), "WAREHOUSE_URL": target}

    done = pacsync("check", RECIPE / "pipeline.yaml", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok source 'exports' (file:{drops})" in done.stdout

    shutil.rmtree(drops / "providers")
    done = pacsync("check", RECIPE / "pipeline.yaml", env=env)
    assert done.returncode == 1
    assert "PACS-304" in done.stderr
    assert "drop of entity 'providers'" in done.stderr

"""A real ``pacsync run`` killed (``kill -9``) in the middle of a dropped file.

What was committed stays, with the checkpoint naming the file and the records it
covers; the next run goes on at the next record of the same file, writing none of
the committed ones again.  A file changed in the meantime is read from its start
(its unchanged records are skipped by fingerprint, not rewritten).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pacsync.connectors.sql.engine import make_engine

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "pms-files"
HEADER = "patient_id,mrn,last_name,first_name,birth_date,sex,phone,email,updated_at\n"
RECORDS = 40_000
STARTED = 2_000  # patients in the target when the run is killed
NAME = "patients_big.csv"


def patient(n: int) -> str:
    if n % 10_000 == 5:  # a malformed record now and then
        return f"{n},MRN-{n}\n"
    return f"{n},MRN-{n},Family{n},Given{n},1970-01-01,F,,p{n}@example.org,2026-11-22T17:00:00\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture
def drops(tmp_path: Path) -> Path:
    folder = tmp_path / "drops" / "patients"
    folder.mkdir(parents=True)
    path = folder / NAME
    path.write_text(HEADER + "".join(patient(n) for n in range(1, RECORDS + 1)))
    old = time.time() - 60
    os.utime(path, (old, old))
    return tmp_path / "drops"


def query(target: str, sql: str) -> list[tuple[Any, ...]]:
    engine = make_engine(target)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    except sa.exc.OperationalError:
        return []  # not created yet
    except sa.exc.ProgrammingError:
        return []
    finally:
        engine.dispose()


def count(target: str) -> int:
    found = query(target, "SELECT COUNT(*) FROM patients")
    return int(found[0][0]) if found else 0


def checkpoint(target: str) -> dict[str, Any]:
    (state,) = query(target, "SELECT state FROM pacsync_checkpoints WHERE entity = 'patients'")
    return json.loads(state[0])  # type: ignore[no-any-return]


def environment(target: str, drops: Path) -> dict[str, str]:
    return {"PMS_DROPS": str(drops), "WAREHOUSE_URL": target, "PMS_BATCH_SIZE": "200"}


def killed_mid_file(pacsync: Any, target: str, drops: Path) -> None:
    process = pacsync.start(
        "run", RECIPE / "pipeline.yaml", "-e", "patients", "--quiet", env=environment(target, drops)
    )
    deadline = time.monotonic() + 90
    try:
        while count(target) < STARTED:
            if process.poll() is not None:
                out, err = process.communicate()
                pytest.fail(f"the run ended (exit {process.returncode}) too soon:\n{out}\n{err}")
            if time.monotonic() > deadline:
                pytest.fail(f"fewer than {STARTED} patients in the target after 90 s")
            time.sleep(0.01)
    finally:
        process.kill()  # SIGKILL: no cleanup at all
        process.communicate()


def run_again(pacsync: Any, target: str, drops: Path) -> subprocess.CompletedProcess[str]:
    done = pacsync(
        "run",
        RECIPE / "pipeline.yaml",
        "-e",
        "patients",
        "--quiet",
        env=environment(target, drops),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done  # type: ignore[no-any-return]


def report(drops: Path) -> dict[str, Any]:
    (path,) = (drops / "patients" / "archive").glob("*.report.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def test_a_killed_run_resumes_at_the_next_record(pacsync: Any, target: str, drops: Path) -> None:
    killed_mid_file(pacsync, target, drops)

    saved = checkpoint(target)
    assert saved["phase"] == "full"
    assert saved["extra"]["file"]["name"] == NAME
    offset = saved["extra"]["row"]
    held = count(target)
    malformed_before = len([n for n in range(1, offset + 1) if n % 10_000 == 5])
    assert held == offset - malformed_before  # exactly the committed records
    assert (drops / "patients" / NAME).exists()  # not moved while unfinished
    committed = dict(query(target, "SELECT patient_id, _pacsync_synced_at FROM patients"))

    run_again(pacsync, target, drops)

    assert count(target) == RECORDS - RECORDS // 10_000
    distinct = query(target, "SELECT COUNT(DISTINCT patient_id) FROM patients")
    assert distinct == [(count(target),)]
    after = dict(query(target, "SELECT patient_id, _pacsync_synced_at FROM patients"))
    assert all(after[k] == v for k, v in committed.items())  # none written twice
    done = report(drops)
    assert (done["records"], done["malformed"]) == (RECORDS, RECORDS // 10_000)
    assert done["inserted"] == RECORDS - RECORDS // 10_000
    assert done["unchanged"] == 0
    assert checkpoint(target)["phase"] == "idle"
    assert list((drops / "patients").glob("*.csv")) == []


def test_a_file_changed_after_the_kill_is_read_from_its_start(
    pacsync: Any, target: str, drops: Path
) -> None:
    killed_mid_file(pacsync, target, drops)
    held = count(target)
    path = drops / "patients" / NAME
    with path.open("a") as export:
        export.write(patient(RECORDS + 1))
    old = time.time() - 60
    os.utime(path, (old, old))

    run_again(pacsync, target, drops)

    assert count(target) == RECORDS + 1 - RECORDS // 10_000
    done = report(drops)
    assert done["records"] == RECORDS + 1
    assert done["unchanged"] == held  # read again from the start, not rewritten
    assert done["inserted"] == RECORDS + 1 - RECORDS // 10_000 - held

"""A legacy PACS (a Firebird 3 database listing lossless JPEG 2000 files) as an archive,
through the CLI, against the real Firebird server on loopback.

The archive reaches the server through a TCP relay of the test's own, so that the
server can be taken away without stopping it for everyone else: closing the relay
leaves a port where nothing listens.

- ``archive add NAME firebird-j2k --dsn … --images …`` with the password from
  ``PACSYNC_ARCHIVE_PASSWORD``; a scan indexes every image the database lists;
  search finds its patients (the same PatientID of two issuers stays two patients);
- the legacy database changes (a patient renamed, an image row deleted) and an image
  file goes missing: the next scan re-indexes exactly the images concerned, search
  shows the new name, and the missing file is listed with its reason;
- Firebird unreachable: the scan exits non-zero with PACS-402, the archive is listed
  offline, and its entries are kept and found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from firebird.driver import connect

from legacy_pacs import FIREBIRD_HOST, FIREBIRD_PORT, USER, LegacyStore

from .imaging_archives import (
    Relay,
    archive_table,
    cli,
    legacy_store,
    names,
    output,
    problem_files,
    rows,
    scan_counts,
    succeeded,
    together,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"


@pytest.fixture(scope="module")
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LegacyStore]:
    """4 patients (one with an accented name, two sharing a PatientID under two
    issuers), one study each, 2 images a study."""
    images = tmp_path_factory.mktemp("legacy-images")
    yield from legacy_store(
        request.config, images, patients=4, studies_per_patient=1, images_per_study=2
    )


@pytest.fixture
def relay() -> Iterator[Relay]:
    one = Relay(FIREBIRD_HOST, FIREBIRD_PORT)
    yield one
    one.close()


def legacy_sql(store: LegacyStore, statement: str, *parameters: object) -> None:
    """One statement run on the legacy database, as the legacy PACS would."""
    with connect(store.dsn, user=USER, password=store.password) as con, con.cursor() as cur:
        cur.execute(statement, parameters)
        con.commit()


def test_a_legacy_store_is_indexed_followed_and_kept_when_firebird_goes_away(
    request: pytest.FixtureRequest,
    store: LegacyStore,
    relay: Relay,
    tmp_path: Path,
    bytecode_cache: Path,
) -> None:
    pacsync = cli(request.config, tmp_path, bytecode_cache)
    dsn = f"127.0.0.1/{relay.port}:{store.database}"
    added = pacsync(
        "archive", "add", "legacy", "firebird-j2k", "--dsn", dsn, "--images", store.images,
        "--user", USER, env={"PACSYNC_ARCHIVE_PASSWORD": store.password},
    )  # fmt: skip
    succeeded(added)
    assert store.password not in added.stdout + added.stderr

    first = pacsync("archive", "scan", "legacy")
    assert first.returncode == 0, output(first)
    assert scan_counts(first) == {
        "files seen": 8, "unchanged": 0, "new": 8, "changed": 0, "moved": 0, "deleted": 0,
        "indexed": 8, "invalid": 0, "unreadable": 0, "identity conflicts": 0,
    }  # fmt: skip

    muller, instances = together(
        pacsync,
        ("search", "muller^j*", "--json"),
        ("search", "--level", "instance", "--archive", "legacy", "--json"),
    )
    assert [(r["archive"], r["PatientID"], r["PatientName"]) for r in rows(muller)] == [
        ("legacy", "P0001", "Müller^Jürgen")
    ]
    indexed = {r["SOPInstanceUID"]: r for r in rows(instances)}
    shared = {(r["IssuerOfPatientID"], r["PatientName"]) for r in indexed.values()
              if r["PatientID"] == "SHARED7"}  # fmt: skip
    assert shared == {("HOSP_A", "SMITH^ANNA"), ("HOSP_B", "JONES^PETER")}
    assert set(indexed) == set(store.stored)
    for uid, image in store.stored.items():
        row = indexed[uid]
        assert row["path"] == image.relative_path
        assert row["TransferSyntaxUID"] == JPEG2000_LOSSLESS
        assert (row["PatientID"], row["PatientName"]) == (
            image.header.patient_id,
            image.header.patient_name,
        )
        assert row["StudyDate"] == image.header.study_date
        assert (row["Rows"], row["Columns"]) == (image.header.rows, image.header.columns)

    of: dict[tuple[str | None, str | None], list[str]] = {}
    for uid, image in sorted(store.stored.items()):
        of.setdefault((image.header.issuer_of_patient_id, image.header.patient_id), []).append(uid)
    jane = of[None, "P0002"]
    (_, dropped), (lost, _) = of["HOSP_A", "P0001"], of["HOSP_A", "SHARED7"]
    legacy_sql(store, "UPDATE PATIENTS SET PAT_NAME = ? WHERE PAT_ID = ?", "DOE^JANET", "P0002")
    legacy_sql(store, "DELETE FROM IMAGES WHERE SOP_UID = ?", dropped)
    (store.images / store.stored[lost].relative_path).unlink()
    followed = pacsync("archive", "scan", "legacy")
    assert followed.returncode == 0, output(followed)
    assert scan_counts(followed) == {
        "files seen": 7, "unchanged": 4, "new": 0, "changed": 3, "moved": 0, "deleted": 1,
        "indexed": 2, "invalid": 0, "unreadable": 1, "identity conflicts": 0,
    }  # fmt: skip
    kept = set(store.stored) - {dropped, lost}

    relay.close()
    down = pacsync("archive", "scan", "legacy")
    assert down.returncode != 0, output(down)
    assert "PACS-402" in down.stdout, output(down)
    assert "legacy database 'legacy'" in down.stdout, output(down)
    assert store.password not in down.stdout + down.stderr

    listed, status, instances = together(
        pacsync,
        ("archive", "list"),
        ("archive", "status", "legacy", "--errors"),
        ("search", "doe^jan*", "--level", "instance", "--json"),
    )
    row = archive_table(listed)["legacy"]
    assert row["status"].startswith("offline"), row
    assert (row["patients"], row["studies"], row["instances"]) == ("4", "4", str(len(kept)))
    assert problem_files(status) == {
        store.stored[lost].relative_path: (
            "unreadable",
            "the database lists this image but its file is missing",
        )
    }
    assert sorted(r["SOPInstanceUID"] for r in rows(instances)) == sorted(jane)
    assert set(names(rows(instances))) == {("legacy", "DOE^JANET")}

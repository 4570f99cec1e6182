"""``pacsync archive`` and ``pacsync search`` as a user runs them, on real folders of
DICOM files and the default SQLite store.

- two archives holding the same PatientID: scanned, listed, their failed files
  listed with the reason, searched by name, modality and date; never merged;
- pydicom's own sample files (uncompressed, RLE, JPEG 2000) indexed as pydicom reads
  them, and corrupt files recorded without stopping the scan;
- incremental scans: exactly one new, changed, moved and deleted file found, and a
  rescan of an unchanged tree that parses nothing;
- names in ISO_IR 100, ISO_IR 192 and ISO 2022 IR 87 found with accents and case
  ignored;
- the identity rule: one PatientID under two names is a conflict, each study keeps its
  own name; an instance naming another patient is never shown under the study;
- a root that vanishes (missing, or an empty mount point): PACS-402, offline, every
  entry kept and found; back online with nothing lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from imaging_data import realistic_ct

from .imaging_archives import (
    CORRUPT,
    Done,
    archive_table,
    charset_sample,
    cli,
    corrupt_files,
    ct_series,
    names,
    output,
    problem_files,
    rows,
    sample,
    scan_counts,
    succeeded,
    together,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JPEG2000_LOSSLESS, RLE = "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.5"
SAMPLES = ("CT_small.dcm", "MR_small.dcm", "examples_jpeg2k.dcm", "SC_rgb_rle.dcm")


# -- two archives, one PatientID ----------------------------------------------------------------


def test_two_archives_are_scanned_listed_and_searched_without_merging_patients(
    pacsync: Any, tmp_path: Path
) -> None:
    nas1, nas2 = tmp_path / "nas1", tmp_path / "nas2"
    john = ct_series(nas1 / "2024" / "doe_john", patient_id="PID-100", patient_name="DOE^JOHN",
                     study_uid="2.25.1001", study_date="20240105")  # fmt: skip
    ct_series(nas1 / "2024" / "doe_jane", patient_id="PID-200", patient_name="DOE^JANE",
              study_uid="2.25.1002", study_date="20240210", modality="MR", images=2)  # fmt: skip
    ct_series(nas1 / "2023" / "doe_jim", patient_id="PID-300", patient_name="DOE^JIM",
              study_uid="2.25.1003", study_date="20230601", images=2)  # fmt: skip
    samples = {name: sample(name, nas1 / "samples" / name) for name in SAMPLES}
    corrupt_files(nas1 / "junk", nas1 / "2024" / "doe_john" / "IM0001.dcm")
    ct_series(nas1 / "huge", patient_id="PID-400", patient_name="ROE^HUGE", study_uid="2.25.1004",
              images=1)  # fmt: skip
    with (nas1 / "huge" / "IM0001.dcm").open("r+b") as huge:
        huge.truncate(2**31 + 4096)  # a header, then more than 2 GiB (sparse: nothing written)
    joanne = ct_series(nas2 / "incoming", patient_id="PID-100", patient_name="DOE^JOANNE",
                       study_uid="2.25.2001", study_date="20240320", images=2)  # fmt: skip

    succeeded(pacsync("archive", "add", "nas1", "dicom", nas1))
    succeeded(pacsync("archive", "add", "nas2", "dicom", nas2))
    first, second = pacsync("archive", "scan", "nas1"), pacsync("archive", "scan", "nas2")
    assert first.returncode == 0, output(first)
    assert scan_counts(first) == {
        "files seen": 16, "unchanged": 0, "new": 16, "changed": 0, "moved": 0, "deleted": 0,
        "indexed": 12, "invalid": 4, "unreadable": 0, "identity conflicts": 0,
    }  # fmt: skip
    assert second.returncode == 0, output(second)
    assert scan_counts(second)["indexed"] == 2

    listed, status, found, instances = together(
        pacsync,
        ("archive", "list"),
        ("archive", "status", "nas1", "--errors"),
        ("search", "DOE^J*", "--modality", "CT", "--from", "2024-01-01", "--json"),
        ("search", "--level", "instance", "--archive", "nas1", "--limit", "100", "--json"),
    )

    table = archive_table(listed)
    assert table["nas1"] | {"last scan": ""} == {
        "name": "nas1", "kind": "dicom", "path": table["nas1"]["path"], "status": "online",
        "patients": "8", "studies": "8", "instances": "12", "failed files": "4", "last scan": "",
    }  # fmt: skip
    assert str(nas1).startswith(table["nas1"]["path"])
    assert (table["nas2"]["status"], table["nas2"]["patients"], table["nas2"]["instances"]) == (
        "online", "1", "2",
    )  # fmt: skip

    text = succeeded(status)
    assert "status: online" in text
    assert "identity_conflicts: 0" in text
    failed = problem_files(status)
    assert sorted(failed) == sorted(f"junk/{name}" for name in CORRUPT), text
    for path, (state, reason) in failed.items():
        assert state == "invalid", path
        assert reason.strip(), f"{path} is recorded without a reason"
    assert "truncated" in failed["junk/truncated.dcm"][1]
    assert "empty" in failed["junk/empty.dcm"][1]

    results = rows(found)
    assert names(results) == [("nas1", "DOE^JOHN"), ("nas2", "DOE^JOANNE")]
    by_archive = {r["archive"]: r for r in results}
    assert by_archive["nas1"]["StudyInstanceUID"] == "2.25.1001"
    assert by_archive["nas2"]["StudyInstanceUID"] == "2.25.2001"
    for result in results:
        assert result["PatientID"] == "PID-100"
        assert result["StudyDate"] >= "20240101"
        assert result["ModalitiesInStudy"] == "CT"
    assert by_archive["nas1"]["NumberOfStudyRelatedInstances"] == len(john)
    assert by_archive["nas2"]["NumberOfStudyRelatedInstances"] == len(joanne)

    indexed = {r["path"]: r for r in rows(instances)}
    assert len(indexed) == 12
    assert indexed["huge/IM0001.dcm"]["PatientName"] == "ROE^HUGE"
    for name, path in samples.items():
        source = dcmread(path, stop_before_pixels=True)
        row = indexed[f"samples/{name}"]
        assert row["archive"] == "nas1"
        assert row["SOPInstanceUID"] == source.SOPInstanceUID
        assert row["StudyInstanceUID"] == source.StudyInstanceUID
        assert row["PatientID"] == source.PatientID
        assert row["PatientName"] == str(source.PatientName)
        assert row["Modality"] == source.Modality
        assert row["TransferSyntaxUID"] == source.file_meta.TransferSyntaxUID
        assert (row["Rows"], row["Columns"]) == (source.Rows, source.Columns)
    assert indexed["samples/examples_jpeg2k.dcm"]["TransferSyntaxUID"] == JPEG2000_LOSSLESS
    assert indexed["samples/SC_rgb_rle.dcm"]["TransferSyntaxUID"] == RLE


# -- incremental scans --------------------------------------------------------------------------


def test_a_rescan_finds_exactly_the_new_changed_moved_and_deleted_files(
    pacsync: Any, tmp_path: Path
) -> None:
    nas = tmp_path / "nas"
    ct_series(nas / "a", patient_id="INC-1", patient_name="ROE^ANNA", study_uid="2.25.301")
    ct_series(nas / "b", patient_id="INC-2", patient_name="ROE^BERT", study_uid="2.25.302",
              images=1)  # fmt: skip
    succeeded(pacsync("archive", "add", "nas", "dicom", nas))
    assert scan_counts(pacsync("archive", "scan", "nas"))["indexed"] == 4

    ct_series(nas / "c", patient_id="INC-3", patient_name="ROE^CARL", study_uid="2.25.303",
              images=1)  # fmt: skip
    realistic_ct(  # the same image rewritten under another name: the only one of its study
        nas / "b" / "IM0001.dcm", patient_id="INC-2", patient_name="ROE^BERTHA",
        study_uid="2.25.302", series_uid="2.25.302.1", sop_uid="2.25.302.1.1",
        instance_number=1, rows=64, columns=64,
    )  # fmt: skip
    (nas / "moved").mkdir()
    (nas / "a" / "IM0002.dcm").rename(nas / "moved" / "IM0002.dcm")
    (nas / "a" / "IM0003.dcm").unlink()

    changed = pacsync("archive", "scan", "nas")
    assert changed.returncode == 0, output(changed)
    assert scan_counts(changed) == {
        "files seen": 4, "unchanged": 1, "new": 1, "changed": 1, "moved": 1, "deleted": 1,
        "indexed": 2, "invalid": 0, "unreadable": 0, "identity conflicts": 0,
    }  # fmt: skip

    instances, again = together(
        pacsync, ("search", "--level", "instance", "--json"), ("archive", "scan", "nas")
    )
    assert {r["path"]: (r["PatientName"], r["SOPInstanceUID"]) for r in rows(instances)} == {
        "a/IM0001.dcm": ("ROE^ANNA", "2.25.301.1.1"),
        "moved/IM0002.dcm": ("ROE^ANNA", "2.25.301.1.2"),
        "b/IM0001.dcm": ("ROE^BERTHA", "2.25.302.1.1"),
        "c/IM0001.dcm": ("ROE^CARL", "2.25.303.1.1"),
    }
    assert again.returncode == 0, output(again)
    assert scan_counts(again) == {
        "files seen": 4, "unchanged": 4, "new": 0, "changed": 0, "moved": 0, "deleted": 0,
        "indexed": 0, "invalid": 0, "unreadable": 0, "identity conflicts": 0,
    }  # fmt: skip

    # size and mtime alike, another inode: only the content tells that the image changed
    renumbered = tmp_path / "renumbered.dcm"
    realistic_ct(
        renumbered, patient_id="INC-1", patient_name="ROE^ANNA", study_uid="2.25.301",
        series_uid="2.25.301.1", sop_uid="2.25.301.1.1", instance_number=7, rows=64, columns=64,
    )  # fmt: skip
    replace_keeping_stat(nas / "a" / "IM0001.dcm", renumbered.read_bytes())
    ambiguous = pacsync("archive", "scan", "nas")
    assert scan_counts(ambiguous) == {
        "files seen": 4, "unchanged": 3, "new": 0, "changed": 1, "moved": 0, "deleted": 0,
        "indexed": 1, "invalid": 0, "unreadable": 0, "identity conflicts": 0,
    }, output(ambiguous)  # fmt: skip
    anna = rows(pacsync("search", "--level", "instance", "--json", "--id", "INC-1"))
    assert {r["path"]: r["InstanceNumber"] for r in anna} == {
        "a/IM0001.dcm": 7,
        "moved/IM0002.dcm": 2,
    }


def replace_keeping_stat(path: Path, content: bytes) -> None:
    """``path`` replaced by a new file (a new inode) of ``content``, which must be as long
    as the old content, with the old modification time."""
    before = path.stat()
    assert len(content) == before.st_size
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(content)
    os.utime(fresh, ns=(before.st_atime_ns, before.st_mtime_ns))
    fresh.replace(path)
    assert path.stat().st_ino != before.st_ino


def test_two_copies_of_one_instance_do_not_stop_the_scan(pacsync: Any, tmp_path: Path) -> None:
    """A NAS often holds an instance twice (here as pydicom ships it: uncompressed and
    RLE); the scan goes on, the instance is found once, and the other copy is listed as
    its duplicate."""
    nas = tmp_path / "nas"
    sample("MR_small.dcm", nas / "original" / "MR_small.dcm")
    sample("MR_small_RLE.dcm", nas / "compressed" / "MR_small_RLE.dcm")
    ct_series(nas / "ct", patient_id="DUP-1", patient_name="DOE^DUP", study_uid="2.25.401")
    succeeded(pacsync("archive", "add", "nas", "dicom", nas))
    scanned = pacsync("archive", "scan", "nas")
    assert scanned.returncode == 0, output(scanned)
    assert scan_counts(scanned)["files seen"] == 5
    found, status = together(
        pacsync,
        ("search", "--level", "instance", "--json", "--id", "4MR1"),
        ("archive", "status", "nas", "--errors"),
    )
    (held,) = rows(found)
    assert held["SOPInstanceUID"] == dcmread(nas / "original" / "MR_small.dcm").SOPInstanceUID
    copies = {"original/MR_small.dcm", "compressed/MR_small_RLE.dcm"}
    assert held["path"] in copies
    ((other, (state, reason)),) = problem_files(status).items()
    assert (state, {other, held["path"]}) == ("duplicate", copies)
    assert held["path"] in reason


def test_images_held_back_by_a_misfiled_image_are_shown_once_it_is_gone(
    pacsync: Any, tmp_path: Path
) -> None:
    """A misfiled image arrives first and gives its study its patient; the study's real
    images arrive later and are held back (the identity rule); then the misfiled image
    is removed.  The next scan must show the real images, as a full scan does."""
    nas = tmp_path / "nas"
    nas.mkdir()
    realistic_ct(
        nas / "misfiled.dcm", patient_id="ID-99",
        patient_name="WRONG^PATIENT", study_uid="2.25.801", series_uid="2.25.801.1",
        sop_uid="2.25.801.1.99", instance_number=99, rows=32, columns=32,
    )  # fmt: skip
    succeeded(pacsync("archive", "add", "nas", "dicom", nas))
    succeeded(pacsync("archive", "scan", "nas"))
    ct_series(nas / "anna", patient_id="ID-77", patient_name="SMITH^ANNA", study_uid="2.25.801",
              images=2, rows=32, columns=32)  # fmt: skip
    assert scan_counts(pacsync("archive", "scan", "nas"))["identity conflicts"] == 1
    (nas / "misfiled.dcm").unlink()
    assert scan_counts(pacsync("archive", "scan", "nas"))["deleted"] == 1
    shown = rows(pacsync("search", "--level", "instance", "--study", "2.25.801", "--json"))
    assert sorted((r["PatientID"], r["SOPInstanceUID"]) for r in shown) == [
        ("ID-77", "2.25.801.1.1"),
        ("ID-77", "2.25.801.1.2"),
    ]


# -- character sets and the identity rule: one archive scanned once ------------------------------


IDENTITY_STUDIES = {"2.25.501": "SMITH^ANNA", "2.25.502": "SMYTHE^ANNE"}
STRAY_UID = "2.25.501.1.99"
REBORN_STUDY = "2.25.503"  # SMITH^ANNA again, under ID-77 but born on another day
PYDICOM_CHARSETS = ("chrH31.dcm", "chrX1.dcm", "chrGerm.dcm", "chrFren.dcm")
SEARCHED = ("muller*", "*佐藤^花子*", "YAMADA^TAROU*")  # accents, ISO 2022 IR 87, pydicom's


@dataclass(frozen=True)
class People:
    nas: Path
    instances: list[dict[str, Any]]  # every instance the index shows, after both scans
    status: Done  # archive status people
    found: dict[str, Done]  # search NAME --json, by NAME


@pytest.fixture(scope="module")
def people(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, bytecode_cache: Path
) -> People:
    """One archive of names in several character sets and of one PatientID under two
    names, scanned; then an image of another patient filed under one of those studies
    arrives, and it is scanned again."""
    folder = tmp_path_factory.mktemp("people")
    nas = folder / "nas"
    one = {"images": 1, "rows": 32, "columns": 32}
    ct_series(nas / "latin1", patient_id="CS-100", patient_name="Müller^Hans",
              study_uid="2.25.601", charset="ISO_IR 100", **one)  # fmt: skip
    ct_series(nas / "utf8", patient_id="CS-192", patient_name="MÜLLER^Zoë",
              study_uid="2.25.602", charset="ISO_IR 192", **one)  # fmt: skip
    ct_series(nas / "jis", patient_id="CS-087", patient_name="Sato^Hanako=佐藤^花子=さとう^はなこ",
              study_uid="2.25.603", charset="\\ISO 2022 IR 87", **one)  # fmt: skip
    ct_series(nas / "plain", patient_id="CS-006", patient_name="MULLINS^MARY",
              study_uid="2.25.604", **one)  # fmt: skip
    for name in PYDICOM_CHARSETS:
        charset_sample(name, nas / "pydicom" / name)
    for number, (study_uid, name) in enumerate(IDENTITY_STUDIES.items()):
        ct_series(nas / "identity" / name.split("^")[0].lower(), patient_id="ID-77",
                  patient_name=name, study_uid=study_uid, images=2,
                  study_date=f"2024030{number + 1}")  # fmt: skip

    born = ct_series(nas / "identity" / "born", patient_id="ID-77", patient_name="SMITH^ANNA",
                     study_uid=REBORN_STUDY, images=1, study_date="20240401")  # fmt: skip
    for number, _ in enumerate(born, 1):
        path = nas / "identity" / "born" / f"IM{number:04d}.dcm"
        ds = dcmread(path)
        ds.PatientBirthDate = "19800202"
        ds.save_as(path)

    pacsync = cli(request.config, folder, bytecode_cache)
    succeeded(pacsync("archive", "add", "people", "dicom", nas))
    assert scan_counts(pacsync("archive", "scan", "people"))["indexed"] == 13
    realistic_ct(
        nas / "identity" / "misfiled.dcm", patient_id="ID-99", patient_name="WRONG^PATIENT",
        study_uid="2.25.501", series_uid="2.25.501.1", sop_uid=STRAY_UID, instance_number=99,
        rows=32, columns=32,
    )  # fmt: skip
    stray = pacsync("archive", "scan", "people")
    assert scan_counts(stray) == {
        "files seen": 14, "unchanged": 13, "new": 1, "changed": 0, "moved": 0, "deleted": 0,
        "indexed": 1, "invalid": 0, "unreadable": 0, "identity conflicts": 1,
    }  # fmt: skip
    listed, status, *found = together(
        pacsync,
        ("search", "--level", "instance", "--limit", "1000", "--json"),
        ("archive", "status", "people"),
        *(("search", name, "--json") for name in SEARCHED),
    )
    return People(nas, rows(listed), status, dict(zip(SEARCHED, found, strict=True)))


def test_names_in_every_character_set_are_decoded_and_found_with_accents_and_case_ignored(
    people: People,
) -> None:
    shown = {r["path"]: r["PatientName"] for r in people.instances}
    for name in PYDICOM_CHARSETS:
        assert shown[f"pydicom/{name}"] == str(dcmread(people.nas / "pydicom" / name).PatientName)
    assert shown["jis/IM0001.dcm"] == "Sato^Hanako=佐藤^花子=さとう^はなこ"
    assert shown["latin1/IM0001.dcm"] == "Müller^Hans"

    muller, japanese, yamada = (people.found[name] for name in SEARCHED)
    assert names(rows(muller)) == [("people", "MÜLLER^Zoë"), ("people", "Müller^Hans")]
    assert {r["SpecificCharacterSet"] for r in rows(muller)} == {"ISO_IR 100", "ISO_IR 192"}
    assert [(r["PatientID"], r["PatientName"]) for r in rows(japanese)] == [
        ("CS-087", "Sato^Hanako=佐藤^花子=さとう^はなこ")
    ]
    assert [r["PatientName"] for r in rows(yamada)] == ["Yamada^Tarou=山田^太郎=やまだ^たろう"]


def test_one_patient_id_under_two_names_is_a_conflict_and_never_shows_another_patient(
    people: People,
) -> None:
    text = succeeded(people.status)
    lines = [line for line in text.splitlines() if "identity conflict" in line]
    about_patient = [line for line in lines if "(patient)" in line]
    assert len(about_patient) == 2, text
    assert all("'ID-77'" in line for line in about_patient), text
    assert any("SMYTHE^ANNE" in line and "SMITH^ANNA" in line for line in about_patient), text
    assert any("19800202" in line and "birth date" in line for line in about_patient), text
    misfiled = [line for line in lines if "(study)" in line]
    assert len(misfiled) == 1, text
    assert "'ID-99'" in misfiled[0]
    assert "identity/misfiled.dcm" in misfiled[0]

    patient = [r for r in people.instances if r["PatientID"] == "ID-77"]
    assert {r["StudyInstanceUID"]: (r["PatientName"], r["PatientBirthDate"]) for r in patient} == {
        **{uid: (name, "19700101") for uid, name in IDENTITY_STUDIES.items()},
        REBORN_STUDY: ("SMITH^ANNA", "19800202"),
    }
    assert [r["NumberOfStudyRelatedInstances"] for r in patient].count(2) == 4
    in_study = [r for r in people.instances if r["StudyInstanceUID"] == "2.25.501"]
    assert sorted(r["SOPInstanceUID"] for r in in_study) == ["2.25.501.1.1", "2.25.501.1.2"]
    assert {(r["PatientID"], r["PatientName"]) for r in in_study} == {("ID-77", "SMITH^ANNA")}
    assert STRAY_UID not in {r["SOPInstanceUID"] for r in people.instances}
    assert "WRONG^PATIENT" not in {r["PatientName"] for r in people.instances}


# -- a root that vanishes -----------------------------------------------------------------------


def test_a_vanished_root_goes_offline_keeps_its_entries_and_comes_back(
    pacsync: Any, tmp_path: Path
) -> None:
    nas = tmp_path / "mnt" / "nas"
    ct_series(nas / "one", patient_id="VAN-1", patient_name="GONE^GINA", study_uid="2.25.701")
    ct_series(nas / "two", patient_id="VAN-2", patient_name="GONE^GUS", study_uid="2.25.702",
              images=2)  # fmt: skip
    succeeded(pacsync("archive", "add", "nas", "dicom", nas))
    assert scan_counts(pacsync("archive", "scan", "nas"))["indexed"] == 5

    away = tmp_path / "unmounted"
    nas.rename(away)
    missing = pacsync("archive", "scan", "nas")
    assert missing.returncode != 0, output(missing)
    assert "PACS-402" in missing.stdout, output(missing)
    assert "missing" in missing.stdout, output(missing)
    nas.mkdir()  # an unmounted share leaves its mount point behind, empty
    empty = pacsync("archive", "scan", "nas")
    assert empty.returncode != 0, output(empty)
    assert "PACS-402" in empty.stdout, output(empty)
    assert scan_counts(empty)["deleted"] == 0

    listed, found = together(
        pacsync, ("archive", "list"), ("search", "gone^*", "--level", "instance", "--json")
    )
    row = archive_table(listed)["nas"]
    assert row["status"].startswith("offline"), row
    assert (row["patients"], row["studies"], row["instances"]) == ("2", "2", "5")
    assert len(rows(found)) == 5

    nas.rmdir()
    away.rename(nas)
    back = pacsync("archive", "scan", "nas")
    assert back.returncode == 0, output(back)
    assert scan_counts(back) | {"files seen": 0} == {
        "files seen": 0, "unchanged": 5, "new": 0, "changed": 0, "moved": 0, "deleted": 0,
        "indexed": 0, "invalid": 0, "unreadable": 0, "identity conflicts": 0,
    }  # fmt: skip
    row = archive_table(pacsync("archive", "list"))["nas"]
    assert (row["status"], row["patients"], row["studies"], row["instances"]) == (
        "online", "2", "2", "5",
    )  # fmt: skip

"""The Modality Worklist served by the pacsync SCP, queried by DCMTK ``findscu -W``
as a modality would: procedures scheduled through the service and the CLI, matched
by station, date range, modality, patient and accession number; cancelled ones gone."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

import availability
from pacsync import bootstrap
from pacsync.bootstrap import dicom_scp
from pacsync.bootstrap import worklist as scheduling
from pacsync.config import Settings
from pacsync.connectors.dicom.scp import Scp
from pacsync.db.study_events import StudyEvents

pytestmark = pytest.mark.integration

AE = "PACSYNC"
MODALITY = "CTMODALITY"
DAY = dt.datetime(2026, 11, 24)


@dataclass
class Listening:
    settings: Settings
    store: bootstrap.Store
    scp: Scp

    def findscu(self, folder: Path, *keys: str, aet: str = MODALITY) -> list[Dataset]:
        """The worklist items findscu -W received (extracted to files, read back)."""
        folder.mkdir(parents=True, exist_ok=True)
        args = ["findscu", "-W", "-X", "-od", str(folder), "-aet", aet, "-aec", AE,
                "127.0.0.1", str(self.scp.port)]  # fmt: skip
        for key in keys:
            args += ["-k", key]
        done = subprocess.run(args, env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True,
                              text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
        return [dcmread(path) for path in sorted(folder.glob("rsp*.dcm"))]


@pytest.fixture(scope="module")
def listening(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listening]:
    if shutil.which("findscu") is None:
        availability.unavailable("DCMTK findscu is missing (scripts/services installs it)")
    home = tmp_path_factory.mktemp("worklist-home")
    settings = Settings(home=home, database_url=None)
    store = bootstrap.store(settings)
    store.connections.put("ct", "dicom", f"dicom://{MODALITY}@127.0.0.1:104")
    store.connections.put("mr", "dicom", "dicom://MRMODALITY@127.0.0.1:104")
    for n, (station, modality, hour, name, pid, study) in enumerate([
        (MODALITY, "CT", 8, "DOE^JOHN", "P100", "2.25.7001"),
        (MODALITY, "CT", 14, "Müller^Jürgen", "P200", "2.25.7002"),
        ("MRMODALITY", "MR", 9, "DOE^JANE", "P101", None),
    ], 1):  # fmt: skip
        scheduling.schedule(store, {
            "accession_number": f"ACC{n}", "patient_id": pid, "patient_name": name,
            "modality": modality, "station_ae": station, "start": DAY.replace(hour=hour),
            "study_uid": study, "requested_procedure_description": f"{modality} HEAD",
            "patient_birth_date": "19700101", "patient_sex": "M",
        }, source="test")  # fmt: skip
    scheduling.schedule(store, {
        "accession_number": "ACC9", "patient_id": "P100", "patient_name": "DOE^JOHN",
        "modality": "CT", "station_ae": MODALITY, "start": DAY + dt.timedelta(days=1, hours=8),
    }, source="test")  # fmt: skip
    scp = dicom_scp.scp(settings, store, port=0)
    scp.start()
    try:
        yield Listening(settings, store, scp)
    finally:
        scp.stop()
        store.engine.dispose()


STEP = "ScheduledProcedureStepSequence[0]"
RETURN_KEYS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
    "StudyInstanceUID", "RequestedProcedureDescription", "RequestedProcedureID",
    f"{STEP}.ScheduledStationAETitle", f"{STEP}.ScheduledProcedureStepStartDate",
    f"{STEP}.ScheduledProcedureStepStartTime", f"{STEP}.Modality",
    f"{STEP}.ScheduledProcedureStepID",
)  # fmt: skip


def asked(**matching: str) -> list[str]:
    """findscu -k arguments: every return key, with the given matching values."""
    keys = []
    for key in RETURN_KEYS:
        name = key.rsplit(".", 1)[-1]
        keys.append(f"{key}={matching.pop(name, '')}")
    return keys + [f"{k}={v}" for k, v in matching.items()]


def accessions(found: list[Dataset]) -> list[str]:
    return sorted(str(ds.AccessionNumber) for ds in found)


def test_a_modality_gets_its_station_and_day(listening: Listening, tmp_path: Path) -> None:
    keys = asked(ScheduledStationAETitle=MODALITY, ScheduledProcedureStepStartDate="20261124")
    found = listening.findscu(tmp_path, *keys)
    assert accessions(found) == ["ACC1", "ACC2"]
    first = next(ds for ds in found if ds.AccessionNumber == "ACC1")
    assert str(first.PatientName) == "DOE^JOHN"
    assert (first.PatientID, first.PatientBirthDate, first.PatientSex) == ("P100", "19700101", "M")
    assert first.StudyInstanceUID == "2.25.7001"
    assert first.RequestedProcedureDescription == "CT HEAD"
    assert first.RequestedProcedureID == "ACC1"
    step = first.ScheduledProcedureStepSequence[0]
    assert step.ScheduledStationAETitle == MODALITY
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
        "20261124", "080000")  # fmt: skip
    assert step.Modality == "CT"
    assert step.ScheduledProcedureStepID == "ACC1"
    second = next(ds for ds in found if ds.AccessionNumber == "ACC2")
    assert second.SpecificCharacterSet == "ISO_IR 192"
    assert str(second.PatientName) == "Müller^Jürgen"


def test_a_date_range_spans_days(listening: Listening, tmp_path: Path) -> None:
    days = "20261124-20261125"
    keys = asked(ScheduledStationAETitle=MODALITY, ScheduledProcedureStepStartDate=days)
    found = listening.findscu(tmp_path, *keys)
    assert accessions(found) == ["ACC1", "ACC2", "ACC9"]
    later = listening.findscu(tmp_path / "later",
                              *asked(ScheduledProcedureStepStartDate="20261125-"))  # fmt: skip
    assert accessions(later) == ["ACC9"]


def test_matching_by_modality_name_id_and_accession(listening: Listening, tmp_path: Path) -> None:
    assert accessions(listening.findscu(tmp_path / "mr", *asked(Modality="MR"))) == ["ACC3"]
    by_name = listening.findscu(tmp_path / "name", *asked(PatientName="doe^j*"))
    assert accessions(by_name) == ["ACC1", "ACC3", "ACC9"]
    by_id = listening.findscu(tmp_path / "id", *asked(PatientID="P10?"))
    assert accessions(by_id) == ["ACC1", "ACC3", "ACC9"]
    by_accession = listening.findscu(tmp_path / "acc", *asked(AccessionNumber="ACC2"))
    assert accessions(by_accession) == ["ACC2"]
    nothing = listening.findscu(tmp_path / "none", *asked(Modality="US"))
    assert nothing == []


def test_procedures_added_and_cancelled_by_the_cli(
    listening: Listening, tmp_path: Path, pacsync: Any
) -> None:
    env = {"PACSYNC_HOME": str(listening.settings.home)}
    added = pacsync("worklist", "add", "--accession", "CLI1", "--patient-id", "P300",
                    "--patient-name", "ROE^RICK", "--modality", "CT", "--station", MODALITY,
                    "--start", "2026-11-26T10:15", "--study", "2.25.7003", env=env)  # fmt: skip
    assert added.returncode == 0, added.stderr
    procedure_id = added.stdout.split()[1]
    day = asked(ScheduledProcedureStepStartDate="20261126")
    found = listening.findscu(tmp_path / "added", *day)
    assert accessions(found) == ["CLI1"]
    assert found[0].ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == "101500"
    listed = pacsync("worklist", "list", "--date", "2026-11-26", env=env)
    assert "CLI1" in listed.stdout
    cancelled = pacsync("worklist", "cancel", procedure_id, env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    assert listening.findscu(tmp_path / "cancelled", *day) == []
    again = pacsync("worklist", "cancel", procedure_id, env=env)
    assert again.returncode == 2
    assert "PACS-107" in again.stderr
    timeline = StudyEvents(listening.store.engine).timeline("2.25.7003")
    assert [(e.event.value, e.source, e.detail["accession"]) for e in timeline] == [
        ("scheduled", "worklist", "CLI1")
    ]


def test_an_unknown_calling_ae_gets_no_worklist(listening: Listening, tmp_path: Path) -> None:
    args = ["findscu", "-W", "-aet", "INTRUDER", "-aec", AE, "127.0.0.1",
            str(listening.scp.port), "-k", "AccessionNumber="]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "Calling AE Title Not Recognized" in done.stdout + done.stderr


def test_a_malformed_date_range_is_a_failure_status(listening: Listening, tmp_path: Path) -> None:
    args = ["findscu", "-v", "-W", "-aet", MODALITY, "-aec", AE, "127.0.0.1",
            str(listening.scp.port), "-k", "AccessionNumber=",
            "-k", f"{STEP}.ScheduledProcedureStepStartDate=20261399-x"]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    said = done.stdout + done.stderr
    assert "Received Final Find Response (Failed: UnableToProcess)" in said, said
    assert "Pending" not in said  # nothing answered
    still = listening.findscu(tmp_path, *asked(AccessionNumber="ACC1"))
    assert accessions(still) == ["ACC1"]

"""The pacsync SCP with DCMTK's tools as its peers: echoscu, storescu, findscu,
movescu (to a DCMTK storescp) and getscu against an SCP running in this process on
a free port, with a store and an inbox of its own.  The DCMTK tools run with
``TCP_NODELAY=1`` (DCMTK leaves Nagle's algorithm on otherwise)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file

import availability
from imaging_data import realistic_ct
from pacsync import bootstrap
from pacsync.bootstrap import dicom_scp
from pacsync.config import Settings
from pacsync.connectors.dicom.inbox import INCOMING
from pacsync.connectors.dicom.scp import Scp
from pacsync.imaging.search import Query

pytestmark = pytest.mark.integration

Unavailable = Callable[[str], NoReturn]
TOOLS = ("echoscu", "storescu", "findscu", "movescu", "getscu", "storescp")
AE = "PACSYNC"
SENDER = "STORESCU"
MOVE_DESTINATION = "MOVEDEST"
STUDY = "1.2.826.0.1.3680043.10.1001.1"
# pydicom's files and the storescu option that proposes their transfer syntax
SAMPLES = {
    "CT_small.dcm": "-R",
    "SC_rgb_jpeg_dcmtk.dcm": "-xy",  # JPEG baseline
    "JPEG2000.dcm": "-xw",  # JPEG 2000 (lossy)
    "MR_small_jp2klossless.dcm": "-xv",  # JPEG 2000 lossless
}


@pytest.fixture(scope="module")
def unavailable() -> Unavailable:
    """``unavailable(reason)``: fail under CI, skip elsewhere (tests/availability.py)."""
    return availability.unavailable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dcmtk(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TCP_NODELAY": "1"}
    return subprocess.run(
        [str(a) for a in args], env=env, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def said(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@dataclass
class Node:
    """The running SCP, its store and its peers' addresses."""

    settings: Settings
    store: bootstrap.Store
    scp: Scp
    received: Path  # where the move destination (storescp) writes

    @property
    def port(self) -> str:
        return str(self.scp.port)

    @property
    def inbox(self) -> Path:
        return self.scp.inbox.root

    def search(self, level: str = "study", **match: str) -> list[dict[str, Any]]:
        return self.store.archive_search.search(Query.build(level, match, limit=1000))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, unavailable: Unavailable) -> Iterator[Node]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        unavailable(f"DCMTK tools missing: {', '.join(missing)} (scripts/services installs them)")
    home = tmp_path_factory.mktemp("scp-home")
    settings = Settings(home=home, database_url=None)
    store = bootstrap.store(settings)
    destination_port = free_port()
    store.connections.put("modality", "dicom", f"dicom://{SENDER}@127.0.0.1:104")
    store.connections.put("workstation", "dicom",
                          f"dicom://{MOVE_DESTINATION}@127.0.0.1:{destination_port}")  # fmt: skip
    received = tmp_path_factory.mktemp("storescp")
    destination = subprocess.Popen(
        ["storescp", "-aet", MOVE_DESTINATION, "+xa", "-od", str(received), str(destination_port)],
        env={**os.environ, "TCP_NODELAY": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    scp = dicom_scp.scp(settings, store, port=0)
    scp.start()
    try:
        yield Node(settings, store, scp, received)
    finally:
        scp.stop()
        destination.terminate()
        destination.wait(10)
        store.engine.dispose()


def storescu(
    node: Node, *files: Path, aet: str = SENDER, propose: str = "-R"
) -> subprocess.CompletedProcess[str]:
    return dcmtk("storescu", propose, "-aet", aet, "-aec", AE, "127.0.0.1", node.port, *files)


def ct_study(folder: Path, count: int, *, name: str = "DOE^JOHN", patient: str = "P1",
             study: str = STUDY, date: str = "20240105") -> list[Path]:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(1, count + 1):
        path = folder / f"ct{n:04d}.dcm"
        realistic_ct(path, patient_id=patient, patient_name=name, study_uid=study,
                     series_uid=f"{study}.1", sop_uid=f"{study}.1.{n}", instance_number=n,
                     study_date=date, rows=64, columns=64)  # fmt: skip
        paths.append(path)
    return paths


def stored_file(node: Node, source: Path, sop_uid: str) -> Path:
    found = list(node.inbox.glob(f"*/*/{sop_uid}.dcm"))
    assert len(found) == 1, found
    return found[0]


# -- Verification -------------------------------------------------------------------------------


def test_echo_from_a_configured_peer_succeeds(node: Node) -> None:
    done = dcmtk("echoscu", "-aet", SENDER, "-aec", AE, "127.0.0.1", node.port)
    assert done.returncode == 0, said(done)


def test_an_unknown_calling_ae_is_rejected_with_reason_3(node: Node) -> None:
    done = dcmtk("echoscu", "-aet", "INTRUDER", "-aec", AE, "127.0.0.1", node.port)
    assert done.returncode != 0, said(done)
    text = said(done)
    assert "Association Rejected" in text, text
    assert "Rejected Permanent" in text, text
    assert "Service User" in text, text
    assert "Calling AE Title Not Recognized" in text, text


def test_a_wrong_called_ae_is_rejected_with_reason_7(node: Node) -> None:
    done = dcmtk("echoscu", "-aet", SENDER, "-aec", "SOMEONE", "127.0.0.1", node.port)
    assert done.returncode != 0, said(done)
    assert "Called AE Title Not Recognized" in said(done), said(done)


# -- Storage ------------------------------------------------------------------------------------


def test_stored_files_keep_their_dataset_bytes_and_are_searchable_at_once(
    node: Node, tmp_path: Path, pacsync: Any
) -> None:
    files = ct_study(tmp_path / "ct", 5)
    done = storescu(node, *files)
    assert done.returncode == 0, said(done)
    samples = [Path(str(get_testdata_file(name))) for name in SAMPLES]
    for sample, propose in zip(samples, SAMPLES.values(), strict=True):
        done = storescu(node, sample, propose=propose)
        assert done.returncode == 0, said(done)
    for path, sop in [*((f, f"{STUDY}.1.{n}") for n, f in enumerate(files, 1)),
                      *((s, _sop_of(s)) for s in samples)]:  # fmt: skip
        stored = stored_file(node, path, sop)
        # storescu itself may re-encode lengths (sequences, items): the datasets and
        # the pixel data bytes are compared; the inbox unit tests check byte identity
        sent, kept = dcmread(path), dcmread(stored)
        for ds in (sent, kept):
            ds.pop(0xFFFCFFFC, None)  # storescu drops the trailing padding
            ds.pop(0x7FE00010, None)  # and pads odd-length fragments
        assert kept == sent, path
        assert kept.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
    assert not any((node.inbox / INCOMING).iterdir())
    result = pacsync.run("search", "DOE^J*", "--json",
                         env={"PACSYNC_HOME": str(node.settings.home)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    studies = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [(s["archive"], s["StudyInstanceUID"]) for s in studies] == [("inbox", STUDY)]
    assert studies[0]["NumberOfStudyRelatedInstances"] == 5
    j2k = node.search("instance", SOPInstanceUID=_sop_of(samples[2]))
    assert j2k[0]["TransferSyntaxUID"] == "1.2.840.10008.1.2.4.91"


def _sop_of(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)


def test_a_resend_of_the_same_bytes_is_a_no_op_and_other_bytes_replace(
    node: Node, tmp_path: Path
) -> None:
    study = "1.2.826.0.1.3680043.10.1001.2"
    (first,) = ct_study(tmp_path / "a", 1, study=study)
    assert storescu(node, first).returncode == 0
    stored = stored_file(node, first, f"{study}.1.1")
    before = stored.stat()
    assert storescu(node, first).returncode == 0
    assert stored.stat().st_ino == before.st_ino  # untouched
    assert stored.stat().st_mtime_ns == before.st_mtime_ns
    changed = tmp_path / "b.dcm"
    realistic_ct(changed, patient_id="P1", patient_name="DOE^JOHN", study_uid=study,
                 series_uid=f"{study}.1", sop_uid=f"{study}.1.1", instance_number=7,
                 rows=64, columns=64)  # fmt: skip
    assert storescu(node, changed).returncode == 0
    assert dcmread(stored_file(node, changed, f"{study}.1.1")).InstanceNumber == 7
    (row,) = node.search("instance", StudyInstanceUID=study)
    assert row["InstanceNumber"] == 7


def test_an_unsupported_sop_class_is_refused_and_nothing_is_stored(
    node: Node, tmp_path: Path
) -> None:
    path = tmp_path / "odd.dcm"
    ds = dcmread(ct_study(tmp_path / "c", 1, study="1.2.826.0.1.3680043.10.1001.3")[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.826.0.1.3680043.10.1001.99"
    ds.save_as(path)
    done = storescu(node, path)
    assert done.returncode != 0, said(done)
    assert not list(node.inbox.glob("1.2.826.0.1.3680043.10.1001.3/**/*.dcm"))


# -- Query/Retrieve -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def studies(node: Node, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Three studies of two patients on two dates, stored through the SCP."""
    folder = tmp_path_factory.mktemp("qr")
    made = {
        "1.2.826.0.1.3680043.10.2001.1": ("DOE^JANE", "Q1", "20230310"),
        "1.2.826.0.1.3680043.10.2001.2": ("DOE^JANE", "Q1", "20230420"),
        "1.2.826.0.1.3680043.10.2001.3": ("ROE^RICHARD", "Q2", "20230315"),
    }
    files = []
    for uid, (name, patient, date) in made.items():
        files += ct_study(folder / uid, 3, name=name, patient=patient, study=uid, date=date)
    done = storescu(node, *files)
    assert done.returncode == 0, said(done)
    return {uid: name for uid, (name, _, _) in made.items()}


def findscu(node: Node, folder: Path, *keys: str) -> list[Any]:
    """The identifiers findscu received (extracted to files, read back)."""
    folder.mkdir(parents=True, exist_ok=True)
    args = [a for key in keys for a in ("-k", key)]
    done = dcmtk("findscu", "-S", "-X", "-od", folder, "-aet", SENDER, "-aec", AE,
                 *args, "127.0.0.1", node.port)  # fmt: skip
    assert done.returncode == 0, said(done)
    return [dcmread(p) for p in sorted(folder.glob("rsp*.dcm"))]


def test_findscu_at_study_level_with_a_name_wild_card_and_a_date_range(
    node: Node, studies: dict[str, str], tmp_path: Path
) -> None:
    found = findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", "PatientName=DOE^JA*",
                    "StudyDate=20230301-20230331", "StudyInstanceUID",
                    "NumberOfStudyRelatedInstances", "PatientID", "StudyDescription",
                    "InstitutionName")  # fmt: skip
    assert [str(ds.StudyInstanceUID) for ds in found] == ["1.2.826.0.1.3680043.10.2001.1"]
    (ds,) = found
    assert str(ds.PatientID) == "Q1"
    assert int(ds.NumberOfStudyRelatedInstances) == 3
    assert "InstitutionName" in ds
    assert not ds.InstitutionName  # not indexed: returned empty


def test_findscu_at_series_and_image_level(
    node: Node, studies: dict[str, str], tmp_path: Path
) -> None:
    study = "1.2.826.0.1.3680043.10.2001.3"
    series = findscu(node, tmp_path / "series", "QueryRetrieveLevel=SERIES",
                     f"StudyInstanceUID={study}", "SeriesInstanceUID", "Modality")  # fmt: skip
    assert [(str(s.SeriesInstanceUID), s.Modality) for s in series] == [(f"{study}.1", "CT")]
    images = findscu(node, tmp_path / "images", "QueryRetrieveLevel=IMAGE",
                     f"StudyInstanceUID={study}", f"SeriesInstanceUID={study}.1",
                     "SOPInstanceUID", "InstanceNumber")  # fmt: skip
    assert [str(i.SOPInstanceUID) for i in images] == [f"{study}.1.{n}" for n in (1, 2, 3)]


def test_findscu_at_patient_level(node: Node, studies: dict[str, str], tmp_path: Path) -> None:
    found = findscu(node, tmp_path, "QueryRetrieveLevel=PATIENT", "PatientName=*E^*",
                    "PatientID=Q*")  # fmt: skip
    assert sorted(str(ds.PatientID) for ds in found) == ["Q1", "Q2"]


def test_movescu_sends_a_study_to_the_destination(node: Node, studies: dict[str, str]) -> None:
    study = "1.2.826.0.1.3680043.10.2001.2"
    done = dcmtk("movescu", "-S", "-aet", SENDER, "-aec", AE, "-aem", MOVE_DESTINATION,
                 "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
                 "127.0.0.1", node.port)  # fmt: skip
    assert done.returncode == 0, said(done)
    arrived = {str(dcmread(p).SOPInstanceUID) for p in node.received.iterdir()}
    assert {f"{study}.1.{n}" for n in (1, 2, 3)} <= arrived


def test_movescu_to_an_unknown_destination_fails(node: Node, studies: dict[str, str]) -> None:
    done = dcmtk("movescu", "-S", "-v", "-aet", SENDER, "-aec", AE, "-aem", "NOBODY",
                 "-k", "QueryRetrieveLevel=STUDY",
                 "-k", "StudyInstanceUID=1.2.826.0.1.3680043.10.2001.2",
                 "127.0.0.1", node.port)  # fmt: skip
    text = said(done)
    assert "MoveDestinationUnknown" in text, text


def test_getscu_retrieves_a_series_on_the_same_association(
    node: Node, studies: dict[str, str], tmp_path: Path
) -> None:
    study = "1.2.826.0.1.3680043.10.2001.3"
    done = dcmtk("getscu", "-S", "-od", tmp_path, "-aet", SENDER, "-aec", AE,
                 "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={study}",
                 "-k", f"SeriesInstanceUID={study}.1", "127.0.0.1", node.port)  # fmt: skip
    assert done.returncode == 0, said(done)
    got = sorted(str(dcmread(p).SOPInstanceUID) for p in tmp_path.iterdir())
    assert got == [f"{study}.1.{n}" for n in (1, 2, 3)]


# -- the command --------------------------------------------------------------------------------


def test_dicom_listen_serves_until_sigterm(pacsync: Any, tmp_path: Path) -> None:
    home = tmp_path / "listen-home"
    store = bootstrap.store(Settings(home=home, database_url=None))
    store.connections.put("modality", "dicom", f"dicom://{SENDER}@127.0.0.1:104")
    store.engine.dispose()
    port = str(free_port())
    env = {"PACSYNC_HOME": str(home)}
    process = pacsync.start("dicom-listen", "--ae", "LISTENER", "--port", port, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            done = dcmtk("echoscu", "-aet", SENDER, "-aec", "LISTENER", "127.0.0.1", port)
            if done.returncode == 0 or time.monotonic() > deadline or process.poll() is not None:
                break
            time.sleep(0.3)
        assert done.returncode == 0, said(done)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "listening on 127.0.0.1:" in out, out
    assert "STORESCU@127.0.0.1" in out
    assert (home / "inbox").is_dir()

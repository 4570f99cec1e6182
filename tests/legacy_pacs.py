"""A legacy PACS store for tests and benchmarks: a Firebird database in the default
legacy layout (:mod:`pacsync.domain.legacy_mapping`) and the lossless JPEG 2000 files
it lists, made from real pixel data (pydicom's bundled test images).

Importing this module does nothing; ``build_legacy_store`` writes a store and says
what it wrote (the header a catalog should read for every image, and its pixels),
``drop_legacy_store`` removes it.  The Firebird server must be able to write where
the database goes: ``server_directory()`` makes such a directory.

The server and the SYSDBA password can be pointed elsewhere with
``PACSYNC_TEST_FIREBIRD_HOST``, ``PACSYNC_TEST_FIREBIRD_PORT`` and
``PACSYNC_TEST_FIREBIRD_PASSWORD``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from firebird.driver import Connection, connect, create_database
from openjpeg.utils import encode_array
from pydicom import dcmread
from pydicom.data import get_testdata_file

from pacsync.domain.imaging import InstanceHeader
from pacsync.domain.legacy_mapping import specific_character_set

FIREBIRD_HOST = os.environ.get("PACSYNC_TEST_FIREBIRD_HOST", "127.0.0.1")
FIREBIRD_PORT = int(os.environ.get("PACSYNC_TEST_FIREBIRD_PORT", "3050"))
PASSWORD_FILE = Path("/etc/firebird/3.0/SYSDBA.password")
USER = "SYSDBA"
JPEG2000_LOSSLESS = "1.2.840.10008.1.2.4.90"
CT_IMAGE, MR_IMAGE = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4"
ROOT = "1.2.826.0.1.3680043.10.1138"  # UIDs of generated test data

SCHEMA = (
    """CREATE TABLE PATIENTS (
        PAT_KEY INTEGER NOT NULL PRIMARY KEY, PAT_ID VARCHAR(64) NOT NULL,
        PAT_NAME VARCHAR(64), BIRTH_DATE DATE, SEX CHAR(1), ISSUER VARCHAR(64))""",
    """CREATE TABLE STUDIES (
        STUDY_UID VARCHAR(64) NOT NULL PRIMARY KEY,
        PAT_KEY INTEGER NOT NULL REFERENCES PATIENTS,
        STUDY_DATE VARCHAR(10), STUDY_TIME CHAR(8), ACCESSION VARCHAR(16),
        DESCRIPTION VARCHAR(64), REFERRING VARCHAR(64), STUDY_NO VARCHAR(16))""",
    """CREATE TABLE SERIES (
        SERIES_UID VARCHAR(64) NOT NULL PRIMARY KEY,
        STUDY_UID VARCHAR(64) NOT NULL REFERENCES STUDIES,
        MODALITY CHAR(4), SERIES_NO INTEGER, BODY_PART VARCHAR(16), DESCRIPTION VARCHAR(64))""",
    """CREATE TABLE IMAGES (
        SOP_UID VARCHAR(64) NOT NULL PRIMARY KEY,
        SERIES_UID VARCHAR(64) NOT NULL REFERENCES SERIES,
        SOP_CLASS VARCHAR(64), INSTANCE_NO INTEGER, FILE_PATH VARCHAR(255) NOT NULL,
        "ROWS" INTEGER, COLS INTEGER, FRAMES INTEGER)""",
)

# (patient ID, issuer, name, sex): an accented name, an empty issuer, and one patient
# ID issued twice; further patients are generated
_PATIENTS = [
    ("P0001", "HOSP_A", "Müller^Jürgen", "M"),
    ("P0002", "", "DOE^JANE", "F"),
    ("SHARED7", "HOSP_A", "SMITH^ANNA", "F"),
    ("SHARED7", "HOSP_B", "JONES^PETER", "M"),
]
_MODALITIES = [("CT", CT_IMAGE, "HEAD"), ("MR", MR_IMAGE, "KNEE"), ("OT", None, "CHEST")]


def sysdba_password() -> str | None:
    """The SYSDBA password: ``PACSYNC_TEST_FIREBIRD_PASSWORD``, else the Debian
    package's password file; None when neither can be read."""
    if password := os.environ.get("PACSYNC_TEST_FIREBIRD_PASSWORD"):
        return password
    try:
        text = PASSWORD_FILE.read_text()
    except OSError:
        return None
    match = re.search(r'^ISC_PASSWORD\s*=\s*"?([^"\n]*)"?', text, re.MULTILINE)
    return match.group(1) if match else None


def server_dsn(path: Path | str) -> str:
    """The connection string of a database file on the test server."""
    return f"{FIREBIRD_HOST}/{FIREBIRD_PORT}:{path}"


def server_directory() -> Path:
    """A new directory the Firebird server (another OS user) can create databases in."""
    directory = Path(tempfile.mkdtemp(prefix="pacsync-fb-"))
    directory.chmod(0o777)
    return directory


@dataclass(frozen=True)
class StoredImage:
    """What the store holds of one image: the header a catalog should read, the
    file's path relative to the image root, and the pixels its codestream encodes."""

    header: InstanceHeader
    relative_path: str
    pixels: np.ndarray = field(compare=False, repr=False)


@dataclass(frozen=True)
class LegacyStore:
    dsn: str
    database: Path
    images: Path
    password: str = field(repr=False)
    stored: dict[str, StoredImage]  # by SOP Instance UID
    charset: str

    @property
    def image_count(self) -> int:
        return len(self.stored)


def build_legacy_store(
    dsn_path: Path,
    images: Path,
    *,
    password: str,
    patients: int = 5,
    studies_per_patient: int = 2,
    images_per_study: int = 3,
    charset: str = "UTF8",
    user: str = USER,
) -> LegacyStore:
    """Create the database at ``dsn_path`` (on the server) with the four legacy tables
    and ``patients × studies_per_patient × images_per_study`` images (one series per
    study), and write their .j2k and .jp2 files under ``images``.  ``charset`` is the
    database's character set (``WIN1252`` for a database of the 2000s): a catalog reads
    the expected headers through a connection in that character set."""
    dsn = server_dsn(dsn_path)
    stored: dict[str, StoredImage] = {}
    character_set = specific_character_set(charset)
    with create_database(dsn, user=user, password=password, charset=charset) as con:
        for statement in SCHEMA:
            con.execute_immediate(statement)
        con.commit()
        cur = con.cursor()
        for p in range(patients):
            patient = _patient(p)
            cur.execute("INSERT INTO PATIENTS VALUES (?, ?, ?, ?, ?, ?)", patient.row())
            for s in range(studies_per_patient):
                study = _study(p, s)
                cur.execute(
                    "INSERT INTO STUDIES VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (study["uid"], p + 1, study["stored_date"], study["stored_time"],
                     study["accession"], study["description"], study["referring"],
                     study["number"]),
                )  # fmt: skip
                modality, sop_class, body_part = _MODALITIES[(p + s) % len(_MODALITIES)]
                series_uid = f"{study['uid']}.1"
                cur.execute(
                    "INSERT INTO SERIES VALUES (?, ?, ?, ?, ?, ?)",
                    (series_uid, study["uid"], modality, 1, body_part, f"{modality} series"),
                )
                for i in range(images_per_study):
                    n = len(stored)
                    key = n % (len(_sources()) * _SHIFTS)
                    array = _image(key)
                    sop_uid = f"{series_uid}.{i + 1}"
                    suffix = ".jp2" if n % 3 == 2 else ".j2k"
                    folder = f"{dt.date(2019, 1, 1) + dt.timedelta(days=p * 7 + s):%Y%m%d}"
                    relative = f"{folder}/{patient.patient_id}/IMG{n + 1:04d}{suffix}"
                    stored_path = relative.replace("/", "\\") if n % 4 == 1 else relative
                    path = images / relative
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(_encoded(key, jp2=suffix == ".jp2"))
                    rows, cols = array.shape[:2]
                    cur.execute(
                        "INSERT INTO IMAGES VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (sop_uid, series_uid, sop_class, i + 1, stored_path, rows, cols, 1),
                    )
                    header = InstanceHeader(
                        sop_instance_uid=sop_uid,
                        sop_class_uid=sop_class,
                        transfer_syntax_uid=JPEG2000_LOSSLESS,
                        specific_character_set=character_set,
                        study_instance_uid=study["uid"],
                        series_instance_uid=series_uid,
                        patient_name=patient.name,
                        patient_id=patient.patient_id,
                        issuer_of_patient_id=patient.issuer or None,
                        patient_birth_date=f"{patient.birth_date:%Y%m%d}",
                        patient_sex=patient.sex,
                        study_date=study["date"],
                        study_time=study["time"],
                        accession_number=study["accession"],
                        study_description=study["description"],
                        referring_physician_name=study["referring"],
                        study_id=study["number"],
                        modality=modality,
                        series_number=1,
                        series_description=f"{modality} series",
                        body_part_examined=body_part,
                        instance_number=i + 1,
                        number_of_frames=1,
                        rows=rows,
                        columns=cols,
                    )
                    stored[sop_uid] = StoredImage(header, relative, array)
        con.commit()
    return LegacyStore(dsn, dsn_path, images, password, stored, charset)


def drop_legacy_store(store: LegacyStore, *, user: str = USER) -> None:
    """Drop the store's database (its image files are the caller's to remove)."""
    con: Connection = connect(store.dsn, user=user, password=store.password)
    con.drop_database()


def remove_server_directory(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


@dataclass(frozen=True)
class _Patient:
    patient_id: str
    issuer: str
    name: str
    sex: str
    birth_date: dt.date
    key: int

    def row(self) -> tuple[object, ...]:
        return (self.key, self.patient_id, self.name, self.birth_date, self.sex, self.issuer)


def _patient(p: int) -> _Patient:
    if p < len(_PATIENTS):
        patient_id, issuer, name, sex = _PATIENTS[p]
    else:
        patient_id, issuer, name, sex = f"P{p + 1:04d}", "HOSP_A", f"PATIENT^NUMBER{p}", "O"
    return _Patient(patient_id, issuer, name, sex, dt.date(1950 + p, 1 + p % 12, 1 + p % 28), p + 1)


def _study(p: int, s: int) -> dict[str, str]:
    day = dt.date(2019, 1, 1) + dt.timedelta(days=p * 7 + s)
    # dates stored as legacy systems did: ISO text for some studies, DICOM text for others
    stored_date = f"{day:%Y-%m-%d}" if s % 2 == 0 else f"{day:%Y%m%d}"
    return {
        "uid": f"{ROOT}.{p + 1}.{s + 1}",
        "date": f"{day:%Y%m%d}",
        "stored_date": stored_date,
        "time": f"{8 + s % 12:02d}{(15 + p) % 60:02d}30",
        "stored_time": f"{8 + s % 12:02d}:{(15 + p) % 60:02d}:30",
        "accession": f"A{p + 1:03d}{s + 1:02d}",
        "description": f"Study {s + 1} of patient {p + 1}",
        "referring": "WHO^REFERRED",
        "number": str(s + 1),
    }


@cache
def _sources() -> tuple[np.ndarray, ...]:
    """Real pixel data: CT (signed 16 bit), MR (signed 16 bit), RGB (8 bit)."""
    names = ("CT_small.dcm", "MR_small.dcm", "examples_rgb_color.dcm")
    arrays = []
    for name in names:
        path = get_testdata_file(name)
        assert path is not None, f"pydicom test file {name} is missing"
        arrays.append(dcmread(path).pixel_array)
    return tuple(arrays)


_SHIFTS = 64  # distinct shifts of each source: large stores reuse arrays and encodings


@cache
def _image(n: int) -> np.ndarray:
    """The pixels of image ``n``: the sources in turn, each shifted a little further."""
    sources = _sources()
    shift = (n // len(sources)) % _SHIFTS
    return np.ascontiguousarray(np.roll(sources[n % len(sources)], shift, axis=1))


@cache
def _encoded(n: int, *, jp2: bool) -> bytes:
    array = _image(n)
    return bytes(
        encode_array(
            array,
            bits_stored=16 if array.dtype.itemsize == 2 else 8,
            photometric_interpretation=1 if array.ndim == 3 else 2,
            codec_format=1 if jp2 else 0,
        )
    )

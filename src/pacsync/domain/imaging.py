"""Imaging values: what the archive index keeps of one DICOM instance, and the rules
that decide which patient an instance belongs to.

Attribute names are the DICOM keywords in snake case; values are the decoded
strings as the header holds them (dates ``YYYYMMDD``, names ``FAMILY^GIVEN``),
``None`` where the element is absent or empty."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass, fields

# (group, element) of every attribute an InstanceHeader holds, by field name
TAGS: dict[str, int] = {
    "specific_character_set": 0x00080005,
    "sop_class_uid": 0x00080016,
    "sop_instance_uid": 0x00080018,
    "study_date": 0x00080020,
    "series_date": 0x00080021,
    "study_time": 0x00080030,
    "series_time": 0x00080031,
    "accession_number": 0x00080050,
    "modality": 0x00080060,
    "referring_physician_name": 0x00080090,
    "study_description": 0x00081030,
    "series_description": 0x0008103E,
    "patient_name": 0x00100010,
    "patient_id": 0x00100020,
    "issuer_of_patient_id": 0x00100021,
    "patient_birth_date": 0x00100030,
    "patient_sex": 0x00100040,
    "body_part_examined": 0x00180015,
    "study_instance_uid": 0x0020000D,
    "series_instance_uid": 0x0020000E,
    "study_id": 0x00200010,
    "series_number": 0x00200011,
    "instance_number": 0x00200013,
    "number_of_frames": 0x00280008,
    "rows": 0x00280010,
    "columns": 0x00280011,
}
LAST_TAG = max(TAGS.values())  # a reader may stop at the first element after this one


@dataclass(frozen=True, slots=True)
class InstanceHeader:
    """The indexed attributes of one instance (one file, or one legacy image)."""

    sop_instance_uid: str
    sop_class_uid: str | None = None
    transfer_syntax_uid: str | None = None
    specific_character_set: str | None = None
    study_instance_uid: str | None = None
    series_instance_uid: str | None = None
    patient_name: str | None = None
    patient_id: str | None = None
    issuer_of_patient_id: str | None = None
    patient_birth_date: str | None = None
    patient_sex: str | None = None
    study_date: str | None = None
    study_time: str | None = None
    accession_number: str | None = None
    study_description: str | None = None
    referring_physician_name: str | None = None
    study_id: str | None = None
    modality: str | None = None
    series_number: int | None = None
    series_description: str | None = None
    body_part_examined: str | None = None
    series_date: str | None = None
    series_time: str | None = None
    instance_number: int | None = None
    number_of_frames: int | None = None
    rows: int | None = None
    columns: int | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


INTEGER_FIELDS = frozenset(
    {"series_number", "instance_number", "number_of_frames", "rows", "columns"}
)


# letters Unicode does not decompose into a base letter and an accent
_LETTERS = str.maketrans(
    {"Ø": "O", "ø": "o", "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h",
     "Æ": "AE", "æ": "ae", "Œ": "OE", "œ": "oe", "Þ": "TH", "þ": "th", "ı": "i"}
)  # fmt: skip


def fold(text: str | None) -> str:
    """A name as search compares it: accents dropped, case folded, ``^`` and runs of
    spaces kept as they are (``Müller^Jürgen`` → ``muller^jurgen``, ``Østergård`` →
    ``ostergard``)."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return plain.casefold()


@dataclass(frozen=True, slots=True)
class PatientKey:
    """Who an instance belongs to: never the name alone.

    A patient is the same patient only within one archive and one issuer of patient
    IDs; an empty issuer means the archive's own numbering."""

    archive: str
    issuer: str
    patient_id: str

    @classmethod
    def of(cls, archive: str, header: InstanceHeader) -> PatientKey:
        return cls(archive, header.issuer_of_patient_id or "", header.patient_id or "")


@dataclass(frozen=True, slots=True)
class Demographics:
    name: str
    birth_date: str

    @classmethod
    def of(cls, header: InstanceHeader) -> Demographics:
        return cls(header.patient_name or "", dicom_date(header.patient_birth_date) or "")


def identity_conflict(known: Demographics, found: Demographics) -> str | None:
    """Why ``found`` cannot be the patient already known under the same key, or None.

    Names compare folded (case and accents), so a re-keyed ``DOE^JOHN`` is the same
    person as ``Doe^John``; a different name or birth date is a conflict for review."""
    reasons = []
    if fold(known.name) != fold(found.name):
        reasons.append(f"name {known.name!r} ≠ {found.name!r}")
    if known.birth_date != found.birth_date:
        reasons.append(f"birth date {known.birth_date!r} ≠ {found.birth_date!r}")
    return "; ".join(reasons) or None


def fingerprint(header: InstanceHeader) -> str:
    """A digest of every indexed attribute: a legacy row whose values changed is
    re-indexed even when its image file did not."""
    text = "\x1f".join("" if v is None else str(v) for v in header.as_dict().values())
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def dicom_date(value: str | None) -> str | None:
    """A date as DICOM DA (``YYYYMMDD``) from the old ACR-NEMA ``YYYY.MM.DD`` form or an
    ISO date; anything else as it is."""
    if value is None:
        return None
    digits = value.strip().replace(".", "").replace("-", "")
    return digits if len(digits) == 8 and digits.isdigit() else value


def dicom_time(value: str | None) -> str | None:
    """A time as DICOM TM (``HHMMSS.FFFFFF``) from the old ``HH:MM:SS`` form."""
    if value is None:
        return None
    return value.strip().replace(":", "")

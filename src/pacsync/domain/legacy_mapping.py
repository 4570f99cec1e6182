"""Where a legacy PACS database keeps its patients, studies, series and images.

A :class:`LegacyMapping` names, level by level, the table, the columns that join it to
the level above, and the column holding each indexed attribute (the attribute names
are those of :class:`pacsync.domain.imaging.InstanceHeader`; ``null`` means the
legacy database does not have it).  The caller loads it from YAML; every part left
out keeps its default, and the defaults describe this layout::

    PATIENTS(PAT_KEY, PAT_ID, PAT_NAME, BIRTH_DATE, SEX, ISSUER)
    STUDIES(STUDY_UID, PAT_KEY, STUDY_DATE, STUDY_TIME, ACCESSION, DESCRIPTION,
            REFERRING, STUDY_NO)
    SERIES(SERIES_UID, STUDY_UID, MODALITY, SERIES_NO, BODY_PART, DESCRIPTION)
    IMAGES(SOP_UID, SERIES_UID, SOP_CLASS, INSTANCE_NO, FILE_PATH, ROWS, COLS, FRAMES)

    STUDIES.PAT_KEY → PATIENTS.PAT_KEY, SERIES.STUDY_UID → STUDIES.STUDY_UID,
    IMAGES.SERIES_UID → SERIES.SERIES_UID

Patients are joined by a key of the database's own (``PAT_KEY``), not by the
patient ID: the same patient ID may be issued twice by different issuers.  A layout
without such a key maps ``key``/``parent`` to ``PAT_ID`` (or to several columns).

A misspelt key in the file is an error that lists the valid keys; whether the tables
and columns exist is for the catalog to check against the database.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

#: DICOM Specific Character Set (0008,0005) of text read through a Firebird connection
#: character set.  Text arrives decoded; the term says how it was written.
CHARACTER_SETS: dict[str, str | None] = {
    "UTF8": "ISO_IR 192",
    "UNICODE_FSS": "ISO_IR 192",
    "ISO8859_1": "ISO_IR 100",
    "WIN1252": "ISO_IR 100",
    "ISO8859_2": "ISO_IR 101",
    "ISO8859_5": "ISO_IR 144",
    "ISO8859_7": "ISO_IR 126",
    "ISO8859_8": "ISO_IR 138",
    "ISO8859_9": "ISO_IR 148",
    "ASCII": None,
}


def specific_character_set(charset: str) -> str | None:
    """The DICOM term for a Firebird connection character set (``UTF8`` → ``ISO_IR 192``,
    ``ISO8859_1``/``WIN1252`` → ``ISO_IR 100``).  Any other character set gives
    ``ISO_IR 192``: the text is Unicode once read, and UTF-8 holds all of it."""
    return CHARACTER_SETS.get(charset.strip().upper(), "ISO_IR 192")


class _Level(BaseModel):
    """One table of the legacy layout: its name, its join columns, its attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: ClassVar[str]
    #: fields that are not attribute columns
    structural: ClassVar[frozenset[str]] = frozenset({"table", "key", "parent", "path_prefix"})

    table: str

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                valid = ", ".join(cls.model_fields)
                raise ValueError(
                    f"unknown key(s) {', '.join(unknown)} in {cls.level}; valid keys: {valid}"
                )
        return data

    @field_validator("key", "parent", mode="before", check_fields=False)
    @classmethod
    def _columns(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("*", mode="after")
    @classmethod
    def _not_blank(cls, value: Any) -> Any:
        names = value if isinstance(value, tuple) else (value,)
        for name in names:
            if isinstance(name, str) and not name.strip():
                raise ValueError("a table or column name cannot be empty")
        return value

    def attributes(self) -> dict[str, str]:
        """InstanceHeader attribute → column, for the attributes this table holds."""
        return {
            name: column
            for name in type(self).model_fields
            if name not in self.structural and (column := getattr(self, name)) is not None
        }


class PatientsTable(_Level):
    level = "patients"

    table: str = "PATIENTS"
    key: tuple[str, ...] = ("PAT_KEY",)
    patient_id: str = "PAT_ID"
    patient_name: str | None = "PAT_NAME"
    patient_birth_date: str | None = "BIRTH_DATE"
    patient_sex: str | None = "SEX"
    issuer_of_patient_id: str | None = "ISSUER"


class StudiesTable(_Level):
    level = "studies"

    table: str = "STUDIES"
    key: tuple[str, ...] = ("STUDY_UID",)
    parent: tuple[str, ...] = ("PAT_KEY",)
    study_instance_uid: str = "STUDY_UID"
    study_date: str | None = "STUDY_DATE"
    study_time: str | None = "STUDY_TIME"
    accession_number: str | None = "ACCESSION"
    study_description: str | None = "DESCRIPTION"
    referring_physician_name: str | None = "REFERRING"
    study_id: str | None = "STUDY_NO"


class SeriesTable(_Level):
    level = "series"

    table: str = "SERIES"
    key: tuple[str, ...] = ("SERIES_UID",)
    parent: tuple[str, ...] = ("STUDY_UID",)
    series_instance_uid: str = "SERIES_UID"
    modality: str | None = "MODALITY"
    series_number: str | None = "SERIES_NO"
    body_part_examined: str | None = "BODY_PART"
    series_description: str | None = "DESCRIPTION"


class ImagesTable(_Level):
    """``file_path`` holds the image file relative to the archive's image root;
    ``path_prefix``, when set, is removed from the front of stored paths that are
    absolute (``Y:\\PACS\\``).  Backslashes count as separators."""

    level = "images"
    structural = frozenset({"table", "key", "parent", "path_prefix", "file_path"})

    table: str = "IMAGES"
    parent: tuple[str, ...] = ("SERIES_UID",)
    file_path: str = "FILE_PATH"
    path_prefix: str | None = None
    sop_instance_uid: str = "SOP_UID"
    sop_class_uid: str | None = "SOP_CLASS"
    instance_number: str | None = "INSTANCE_NO"
    rows: str | None = "ROWS"
    columns: str | None = "COLS"
    number_of_frames: str | None = "FRAMES"

    def relative_path(self, stored: str) -> str:
        """A stored file path as a path relative to the image root, ``/``-separated."""
        path = stored.strip().replace("\\", "/")
        if self.path_prefix:
            prefix = self.path_prefix.replace("\\", "/").rstrip("/") + "/"
            if path.casefold().startswith(prefix.casefold()):
                path = path[len(prefix) :]
        return path.lstrip("/")


class LegacyMapping(BaseModel):
    """The four tables of a legacy PACS database and how they join."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patients: PatientsTable = PatientsTable()
    studies: StudiesTable = StudiesTable()
    series: SeriesTable = SeriesTable()
    images: ImagesTable = ImagesTable()

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in cls.model_fields)
            if unknown:
                raise ValueError(
                    f"unknown key(s) {', '.join(unknown)}; valid keys: "
                    + ", ".join(cls.model_fields)
                )
        return data

    @model_validator(mode="after")
    def _joins(self) -> LegacyMapping:
        for child, parent in self.joins():
            if len(child.parent) != len(parent.key):
                raise ValueError(
                    f"{child.level}.parent has {len(child.parent)} column(s) but "
                    f"{parent.level}.key has {len(parent.key)}: they are joined column by column"
                )
        return self

    def joins(
        self,
    ) -> list[
        tuple[ImagesTable | SeriesTable | StudiesTable, SeriesTable | StudiesTable | PatientsTable]
    ]:
        """(child, parent) pairs from the images up: ``child.parent`` = ``parent.key``."""
        return [
            (self.images, self.series),
            (self.series, self.studies),
            (self.studies, self.patients),
        ]

    def levels(self) -> tuple[ImagesTable, SeriesTable, StudiesTable, PatientsTable]:
        return (self.images, self.series, self.studies, self.patients)

    def columns_by_table(self) -> dict[str, list[str]]:
        """Every column the mapping reads, by table as written in the mapping."""
        used: dict[str, list[str]] = {}
        for level in self.levels():
            names = list(getattr(level, "key", ())) + list(getattr(level, "parent", ()))
            names += list(level.attributes().values())
            if isinstance(level, ImagesTable):
                names.append(level.file_path)
            columns = used.setdefault(level.table, [])
            columns.extend(n for n in names if n not in columns)
        return used

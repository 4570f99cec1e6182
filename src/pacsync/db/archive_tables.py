"""Tables of the imaging archive index: configured roots, the files found in them,
and the patient → study → series → instance hierarchy built from their headers.

Every index row names its archive: the same patient ID in two archives (or two
issuers) is two patients, never merged (see :mod:`pacsync.domain.imaging`)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from pacsync.db.tables import metadata

UID = 64  # the DICOM UI value length
ARCHIVE = 100

archives = Table(
    "archives",
    metadata,
    Column("name", String(ARCHIVE), primary_key=True),
    Column("kind", String(20), nullable=False),  # dicom, firebird-j2k
    Column("path", Text, nullable=False),  # the DICOM root, or the legacy image root
    Column("options", JSON, nullable=False),  # dsn, user, mapping, charset, watch, ...
    Column("secret", Text),  # the legacy database password, sealed
    Column("status", String(20), nullable=False, server_default="new"),
    Column("status_reason", Text),
    Column("rescan_minutes", Integer, nullable=False, server_default="15"),
    Column("created_at", DateTime, nullable=False),
    Column("last_scan_at", DateTime),
    Column("last_scan_job", String(36)),
    Column("last_scan", JSON),  # the counts of the last finished scan
)

archive_files = Table(
    "archive_files",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("archive", String(ARCHIVE), nullable=False),
    Column("path", Text, nullable=False),  # relative to the root, '/'-separated
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    Column("content_hash", String(32)),  # xxh3-128, computed where stat is ambiguous
    Column("state", String(12), nullable=False),  # indexed, invalid, unreadable
    Column("reason", Text),
    Column("sop_instance_uid", String(UID)),
    Column("indexed_at", DateTime, nullable=False),
    UniqueConstraint("archive", "path", name="uq_archive_files_path"),
    Index("ix_archive_files_state", "archive", "state"),
)

image_patients = Table(
    "image_patients",
    metadata,
    Column("archive", String(ARCHIVE), primary_key=True),
    Column("issuer", String(64), primary_key=True),  # '' = the archive's own numbering
    Column("patient_id", String(64), primary_key=True),
    Column("patient_name", String(324)),
    Column("name_folded", String(324), nullable=False),
    Column("patient_birth_date", String(8)),
    Column("patient_sex", String(16)),
    Column("study_count", Integer, nullable=False, server_default="0"),
    Index("ix_image_patients_id", "patient_id", postgresql_ops={"patient_id": "text_pattern_ops"}),
    Index(
        "ix_image_patients_name", "name_folded", postgresql_ops={"name_folded": "text_pattern_ops"}
    ),
)

image_studies = Table(
    "image_studies",
    metadata,
    Column("archive", String(ARCHIVE), primary_key=True),
    Column("study_uid", String(UID), primary_key=True),
    Column("issuer", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("patient_name", String(324)),
    Column("name_folded", String(324), nullable=False),
    Column("patient_birth_date", String(8)),
    Column("patient_sex", String(16)),
    Column("study_date", String(8)),
    Column("study_time", String(16)),
    Column("accession_number", String(16)),
    Column("study_description", String(64)),
    Column("referring_physician_name", String(324)),
    Column("study_id", String(16)),
    Column("modalities", String(200), nullable=False, server_default=""),  # '\'-joined
    Column("series_count", Integer, nullable=False, server_default="0"),
    Column("instance_count", Integer, nullable=False, server_default="0"),
    Column("character_set", String(64)),
    Column("updated_at", DateTime, nullable=False),
    Index(
        "ix_image_studies_patient", "patient_id", postgresql_ops={"patient_id": "text_pattern_ops"}
    ),
    Index(
        "ix_image_studies_name", "name_folded", postgresql_ops={"name_folded": "text_pattern_ops"}
    ),
    Index("ix_image_studies_date", "study_date"),
    Index(
        "ix_image_studies_accession",
        "accession_number",
        postgresql_ops={"accession_number": "text_pattern_ops"},
    ),
    Index("ix_image_studies_uid", "study_uid"),
)

image_series = Table(
    "image_series",
    metadata,
    Column("archive", String(ARCHIVE), primary_key=True),
    Column("series_uid", String(UID), primary_key=True),
    Column("study_uid", String(UID), nullable=False),
    Column("modality", String(16)),
    Column("series_number", Integer),
    Column("series_description", String(64)),
    Column("body_part_examined", String(16)),
    Column("series_date", String(8)),
    Column("series_time", String(16)),
    Column("instance_count", Integer, nullable=False, server_default="0"),
    Index("ix_image_series_study", "archive", "study_uid"),
    Index("ix_image_series_uid", "series_uid"),
)

image_instances = Table(
    "image_instances",
    metadata,
    Column("archive", String(ARCHIVE), primary_key=True),
    Column("sop_instance_uid", String(UID), primary_key=True),
    Column("file_id", Integer, nullable=False),
    Column("study_uid", String(UID), nullable=False),
    Column("series_uid", String(UID), nullable=False),
    Column("sop_class_uid", String(UID)),
    Column("transfer_syntax_uid", String(UID)),
    Column("instance_number", Integer),
    Column("number_of_frames", Integer),
    Column("rows", Integer),
    Column("columns", Integer),
    # an instance whose patient differs from its study's is held back for review:
    # never served under the other patient
    Column("quarantined", Boolean, nullable=False, server_default="0"),
    Index("ix_image_instances_series", "archive", "series_uid"),
    Index("ix_image_instances_file", "file_id"),
    Index("ix_image_instances_uid", "sop_instance_uid"),
)

identity_conflicts = Table(
    "identity_conflicts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("archive", String(ARCHIVE), nullable=False),
    Column("issuer", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("known_name", String(324)),
    Column("known_birth_date", String(8)),
    Column("found_name", String(324)),
    Column("found_birth_date", String(8)),
    Column("study_uid", String(UID)),
    Column("sop_instance_uid", String(UID)),
    Column("path", Text),
    Column("reason", Text, nullable=False),
    Column("scope", String(10), nullable=False),  # patient (flagged) or study (quarantined)
    Column("status", String(20), nullable=False, server_default="open"),
    Column("detected_at", DateTime, nullable=False),
    Column("resolved_at", DateTime),
    Column("resolved_by", String(200)),
    Column("resolution", Text),  # what the reviewer found and did
    Index("ix_identity_conflicts_status", "status"),
)

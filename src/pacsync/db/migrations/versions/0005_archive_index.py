"""The imaging archive index: archives (configured roots), the files found in them,
patients, studies, series and instances from their headers, and identity conflicts.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archive_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("archive", sa.String(length=100), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mtime_ns", sa.BigInteger(), nullable=False),
        sa.Column("inode", sa.BigInteger(), nullable=False),
        sa.Column("content_hash", sa.String(length=32), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("indexed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("archive", "path", name="uq_archive_files_path"),
    )
    with op.batch_alter_table("archive_files", schema=None) as batch_op:
        batch_op.create_index("ix_archive_files_state", ["archive", "state"], unique=False)

    op.create_table(
        "archives",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="new", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("rescan_minutes", sa.Integer(), server_default="15", nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_scan_at", sa.DateTime(), nullable=True),
        sa.Column("last_scan_job", sa.String(length=36), nullable=True),
        sa.Column("last_scan", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "identity_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("archive", sa.String(length=100), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("known_name", sa.String(length=324), nullable=True),
        sa.Column("known_birth_date", sa.String(length=8), nullable=True),
        sa.Column("found_name", sa.String(length=324), nullable=True),
        sa.Column("found_birth_date", sa.String(length=8), nullable=True),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="open", nullable=False),
        sa.Column("detected_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("identity_conflicts", schema=None) as batch_op:
        batch_op.create_index("ix_identity_conflicts_status", ["status"], unique=False)

    op.create_table(
        "image_instances",
        sa.Column("archive", sa.String(length=100), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=True),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=True),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("number_of_frames", sa.Integer(), nullable=True),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("quarantined", sa.Boolean(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("archive", "sop_instance_uid"),
    )
    with op.batch_alter_table("image_instances", schema=None) as batch_op:
        batch_op.create_index("ix_image_instances_file", ["file_id"], unique=False)
        batch_op.create_index("ix_image_instances_series", ["archive", "series_uid"], unique=False)
        batch_op.create_index("ix_image_instances_uid", ["sop_instance_uid"], unique=False)

    op.create_table(
        "image_patients",
        sa.Column("archive", sa.String(length=100), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=324), nullable=True),
        sa.Column("name_folded", sa.String(length=324), nullable=False),
        sa.Column("patient_birth_date", sa.String(length=8), nullable=True),
        sa.Column("patient_sex", sa.String(length=16), nullable=True),
        sa.Column("study_count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("archive", "issuer", "patient_id"),
    )
    with op.batch_alter_table("image_patients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_image_patients_id",
            ["patient_id"],
            unique=False,
            postgresql_ops={"patient_id": "text_pattern_ops"},
        )
        batch_op.create_index(
            "ix_image_patients_name",
            ["name_folded"],
            unique=False,
            postgresql_ops={"name_folded": "text_pattern_ops"},
        )

    op.create_table(
        "image_series",
        sa.Column("archive", sa.String(length=100), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(length=64), nullable=True),
        sa.Column("body_part_examined", sa.String(length=16), nullable=True),
        sa.Column("instance_count", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("archive", "series_uid"),
    )
    with op.batch_alter_table("image_series", schema=None) as batch_op:
        batch_op.create_index("ix_image_series_study", ["archive", "study_uid"], unique=False)
        batch_op.create_index("ix_image_series_uid", ["series_uid"], unique=False)

    op.create_table(
        "image_studies",
        sa.Column("archive", sa.String(length=100), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=324), nullable=True),
        sa.Column("name_folded", sa.String(length=324), nullable=False),
        sa.Column("patient_birth_date", sa.String(length=8), nullable=True),
        sa.Column("patient_sex", sa.String(length=16), nullable=True),
        sa.Column("study_date", sa.String(length=8), nullable=True),
        sa.Column("study_time", sa.String(length=16), nullable=True),
        sa.Column("accession_number", sa.String(length=16), nullable=True),
        sa.Column("study_description", sa.String(length=64), nullable=True),
        sa.Column("referring_physician_name", sa.String(length=324), nullable=True),
        sa.Column("study_id", sa.String(length=16), nullable=True),
        sa.Column("modalities", sa.String(length=200), server_default="", nullable=False),
        sa.Column("series_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("instance_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("character_set", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("archive", "study_uid"),
    )
    with op.batch_alter_table("image_studies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_image_studies_accession",
            ["accession_number"],
            unique=False,
            postgresql_ops={"accession_number": "text_pattern_ops"},
        )
        batch_op.create_index("ix_image_studies_date", ["study_date"], unique=False)
        batch_op.create_index(
            "ix_image_studies_name",
            ["name_folded"],
            unique=False,
            postgresql_ops={"name_folded": "text_pattern_ops"},
        )
        batch_op.create_index(
            "ix_image_studies_patient",
            ["patient_id"],
            unique=False,
            postgresql_ops={"patient_id": "text_pattern_ops"},
        )
        batch_op.create_index("ix_image_studies_uid", ["study_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("image_studies", schema=None) as batch_op:
        batch_op.drop_index("ix_image_studies_uid")
        batch_op.drop_index("ix_image_studies_patient")
        batch_op.drop_index("ix_image_studies_name")
        batch_op.drop_index("ix_image_studies_date")
        batch_op.drop_index("ix_image_studies_accession")

    op.drop_table("image_studies")
    with op.batch_alter_table("image_series", schema=None) as batch_op:
        batch_op.drop_index("ix_image_series_uid")
        batch_op.drop_index("ix_image_series_study")

    op.drop_table("image_series")
    with op.batch_alter_table("image_patients", schema=None) as batch_op:
        batch_op.drop_index("ix_image_patients_name")
        batch_op.drop_index("ix_image_patients_id")

    op.drop_table("image_patients")
    with op.batch_alter_table("image_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_image_instances_uid")
        batch_op.drop_index("ix_image_instances_series")
        batch_op.drop_index("ix_image_instances_file")

    op.drop_table("image_instances")
    with op.batch_alter_table("identity_conflicts", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_conflicts_status")

    op.drop_table("identity_conflicts")
    op.drop_table("archives")
    with op.batch_alter_table("archive_files", schema=None) as batch_op:
        batch_op.drop_index("ix_archive_files_state")

    op.drop_table("archive_files")

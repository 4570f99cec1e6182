"""The Modality Worklist: scheduled_procedures.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEDULED = sa.text("status = 'scheduled'")


def upgrade() -> None:
    op.create_table(
        "scheduled_procedures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("accession_number", sa.String(length=16), nullable=False),
        sa.Column("step_id", sa.String(length=16), nullable=False),
        sa.Column("requested_procedure_id", sa.String(length=16), nullable=False),
        sa.Column("requested_procedure_description", sa.String(length=64), nullable=False),
        sa.Column("step_description", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("patient_name", sa.String(length=194), nullable=False),
        sa.Column("patient_birth_date", sa.String(length=8), nullable=False),
        sa.Column("patient_sex", sa.String(length=1), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("station_ae", sa.String(length=16), nullable=False),
        sa.Column("station_name", sa.String(length=16), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("referring_physician", sa.String(length=194), nullable=False),
        sa.Column("performing_physician", sa.String(length=194), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("scheduled_procedures", schema=None) as batch_op:
        batch_op.create_index("ix_scheduled_procedures_start", ["status", "start_at"], unique=False)
        batch_op.create_index(
            "uq_scheduled_procedures_step",
            ["accession_number", "step_id"],
            unique=True,
            sqlite_where=SCHEDULED,
            postgresql_where=SCHEDULED,
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduled_procedures", schema=None) as batch_op:
        batch_op.drop_index("uq_scheduled_procedures_step")
        batch_op.drop_index("ix_scheduled_procedures_start")

    op.drop_table("scheduled_procedures")

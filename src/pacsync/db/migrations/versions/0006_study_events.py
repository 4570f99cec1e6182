"""The study workflow timeline: study_events.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "study_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=True),
        sa.Column("instances", sa.Integer(), nullable=True),
        sa.Column("accumulated", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "study_uid", "event", "source", "accumulated", name="uq_study_events_once"
        ),
    )
    with op.batch_alter_table("study_events", schema=None) as batch_op:
        batch_op.create_index("ix_study_events_study", ["study_uid", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("study_events", schema=None) as batch_op:
        batch_op.drop_index("ix_study_events_study")

    op.drop_table("study_events")

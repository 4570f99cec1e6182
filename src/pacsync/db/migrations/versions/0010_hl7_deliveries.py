"""Messages on their way to MLLP routes: hl7_deliveries.

Revision ID: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hl7_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("route", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("route", "message_id", name="uq_hl7_deliveries_once"),
    )
    with op.batch_alter_table("hl7_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_hl7_deliveries_route", ["route", "state", "message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("hl7_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_hl7_deliveries_route")

    op.drop_table("hl7_deliveries")

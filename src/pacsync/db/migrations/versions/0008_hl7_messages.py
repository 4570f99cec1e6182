"""The HL7 v2 message journal: hl7_messages.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# spelled as each dialect renders ``accepted == true()``: SQLite matches an upsert's
# conflict target to a partial index by its expression
SQLITE_ACCEPTED = sa.text("accepted = 1")
PG_ACCEPTED = sa.text("accepted = true")


def upgrade() -> None:
    op.create_table(
        "hl7_messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("feed", sa.String(length=100), nullable=False),
        sa.Column("sender", sa.String(length=400), nullable=False),
        sa.Column("control_id", sa.String(length=199), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("version", sa.String(length=20), nullable=False),
        sa.Column("peer", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("encoding", sa.String(length=40), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("patient_id", sa.String(length=100), nullable=True),
        sa.Column("processed_at", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hl7_messages", schema=None) as batch_op:
        batch_op.create_index(
            "uq_hl7_messages_control",
            ["sender", "control_id"],
            unique=True,
            sqlite_where=SQLITE_ACCEPTED,
            postgresql_where=PG_ACCEPTED,
        )
        batch_op.create_index("ix_hl7_messages_state", ["state", "feed", "id"], unique=False)
        batch_op.create_index("ix_hl7_messages_kind", ["kind", "id"], unique=False)
        batch_op.create_index("ix_hl7_messages_patient", ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("hl7_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_hl7_messages_patient")
        batch_op.drop_index("ix_hl7_messages_kind")
        batch_op.drop_index("ix_hl7_messages_state")
        batch_op.drop_index("uq_hl7_messages_control")

    op.drop_table("hl7_messages")

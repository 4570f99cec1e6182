"""The durable job layer: worker heart-beats, circuit breakers, the queue and request
of each job, and dead letters of whole jobs beside those of records.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("executor_id", sa.String(length=100), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("taken_over_by", sa.String(length=100), nullable=True),
        sa.Column("taken_over_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("executor_id"),
    )
    op.create_table(
        "circuit_breakers",
        sa.Column("connection", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=True),
        sa.Column("probe_started_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("connection"),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("queue", sa.String(length=40), server_default="sync-jobs", nullable=False)
        )
        batch.add_column(sa.Column("request", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("executor_id", sa.String(length=100), nullable=True))
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=20), server_default="record", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("executor_id")
        batch.drop_column("attempts")
        batch.drop_column("request")
        batch.drop_column("queue")
    op.drop_table("circuit_breakers")
    op.drop_table("workers")

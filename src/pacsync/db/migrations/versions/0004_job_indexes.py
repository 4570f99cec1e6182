"""Indexes for the job pages the API serves under load: jobs of a status newest
first, and the newest job of each pipeline.

Revision ID: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_status_created_at", "jobs", ["status", "created_at"])
    op.create_index("ix_jobs_pipeline_created_at", "jobs", ["pipeline", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_pipeline_created_at", table_name="jobs")
    op.drop_index("ix_jobs_status_created_at", table_name="jobs")

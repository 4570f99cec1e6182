"""Viewer links as issued, so they can be revoked: viewer_links.

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "viewer_links",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("issued_to", sa.String(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("viewer_links", schema=None) as batch_op:
        batch_op.create_index("ix_viewer_links_study", ["study_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("viewer_links", schema=None) as batch_op:
        batch_op.drop_index("ix_viewer_links_study")

    op.drop_table("viewer_links")

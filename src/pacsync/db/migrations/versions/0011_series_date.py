"""Series date and time in the archive index (QIDO-RS and C-FIND at series level,
asked for by viewers that sort and label series by them).

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image_series") as table:
        table.add_column(sa.Column("series_date", sa.String(length=8), nullable=True))
        table.add_column(sa.Column("series_time", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image_series") as table:
        table.drop_column("series_time")
        table.drop_column("series_date")

"""The initial store: jobs, job errors, checkpoints, record state, dead letters,
daily statistics and the audit log.

Revision ID: 0001
"""

from __future__ import annotations

from alembic import op

from pacsync.db import tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_INITIAL = (
    "jobs",
    "job_errors",
    "checkpoints",
    "record_states",
    "dead_letters",
    "daily_statistics",
    "audit_log",
)


def upgrade() -> None:
    bind = op.get_bind()
    for name in _INITIAL:
        tables.metadata.tables[name].create(bind, checkfirst=True)


def downgrade() -> None:
    bind = op.get_bind()
    for name in reversed(_INITIAL):
        tables.metadata.tables[name].drop(bind, checkfirst=True)

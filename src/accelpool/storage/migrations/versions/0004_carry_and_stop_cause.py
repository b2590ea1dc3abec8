"""per-job KRW carry persisted (jobs.carry_krw); why a run ended (job_events.cause)

The carry is a job's exact amount metered but not yet billed (under 1 KRW, ``core.ledger``), kept as an exact
fraction "numerator/denominator"; with it in the database a scheduler restart loses nothing. ``cause`` is the
typed stop cause of a job's history line (``core.lifecycle.StopCause``), NULL for lines that end no run.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("carry_krw", sa.String(length=80), nullable=True))
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cause", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_column("cause")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("carry_krw")

"""queue view and measured restart cost: the queue_view table (the latest round's fair order, positions and
estimated start ranges, one row); jobs.attempt_started and jobs.restart_measured

Revision ID: 0008_queue_view_restart_cost
Revises: 0007_dashboard_search_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_queue_view_restart_cost"
down_revision = "0007_dashboard_search_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attempt_started", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("restart_measured", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("restart_measured")
        batch_op.drop_column("attempt_started")
    op.drop_table("queue_view")

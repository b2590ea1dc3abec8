"""queue order and grant holds: jobs.priority and jobs.grant_id with indexes; jobs.position dropped

Queue positions are no longer stored (every round rewrote them for the whole queue, holding the write lock
for as long as the submissions waited); they are derived on read from the queue order (priority high
first, submit time, id), which ``ix_jobs_queue`` serves. ``ix_jobs_grant_hold`` makes the sum of a grant's
holds an index-only scan instead of a JSON extraction over every active job.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("grant_id", sa.String(length=64), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("spec", sa.JSON()),
        sa.column("priority", sa.Integer()),
        sa.column("grant_id", sa.String()),
    )
    op.execute(
        jobs.update().values(
            priority=sa.func.coalesce(sa.cast(jobs.c.spec["priority"].as_string(), sa.Integer), 0),
            grant_id=jobs.c.spec["grant"].as_string(),
        )
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("position")
        batch_op.create_index("ix_jobs_queue", ["state", "priority", "submit_time", "id"], unique=False)
        batch_op.create_index("ix_jobs_grant_hold", ["grant_id", "active", "reserved_krw"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        # room in each page for updated row versions: a round's reason updates become HOT (no index writes)
        op.execute("ALTER TABLE jobs SET (fillfactor = 70)")


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_grant_hold")
        batch_op.drop_index("ix_jobs_queue")
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=True))
        batch_op.drop_column("grant_id")
        batch_op.drop_column("priority")

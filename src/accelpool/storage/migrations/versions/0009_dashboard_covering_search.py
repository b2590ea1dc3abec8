"""dashboard covering search: the jobs indexes a member's and a program manager's searches use also carry
the columns their filters, text search and sorts read (state, submit_time, name, id), so a filtered or
name-sorted list of their jobs is read from the index alone

Revision ID: 0009_dashboard_covering_search
Revises: 0008_queue_view_restart_cost
"""

from __future__ import annotations

from alembic import op

revision = "0009_dashboard_covering_search"
down_revision = "0008_queue_view_restart_cost"
branch_labels = None
depends_on = None

_TENANT = ["tenant", "seq", "state", "submit_time", "name", "id"]
_GRANT = ["grant_id", "tenant", "state", "submit_time", "seq", "name", "id"]


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_tenant_seq")
        batch_op.create_index("ix_jobs_tenant_seq", _TENANT, unique=False)
        batch_op.drop_index("ix_jobs_grant_seq")
        batch_op.create_index("ix_jobs_grant_seq", _GRANT, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_grant_seq")
        batch_op.create_index(
            "ix_jobs_grant_seq", ["grant_id", "tenant", "state", "submit_time", "seq"], unique=False
        )
        batch_op.drop_index("ix_jobs_tenant_seq")
        batch_op.create_index("ix_jobs_tenant_seq", ["tenant", "seq"], unique=False)

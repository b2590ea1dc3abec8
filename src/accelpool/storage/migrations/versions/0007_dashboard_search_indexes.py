"""dashboard search indexes: jobs by (grant_id, tenant, state, submit_time, seq) and (state, seq); charges' (tenant, end) index
also carries the columns the dashboard's charts sum (an index-only read of the last days' charges)

Revision ID: 0007_dashboard_search_indexes
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007_dashboard_search_indexes"
down_revision = "0006"
branch_labels = None
depends_on = None

_CHARGES_COVER = ["tenant", "end", "program", "accelerator", "amount_krw", "device_seconds", "start"]


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jobs_grant_seq", ["grant_id", "tenant", "state", "submit_time", "seq"], unique=False
        )
        batch_op.create_index("ix_jobs_state_seq", ["state", "seq"], unique=False)
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.drop_index("ix_charges_tenant_end")
        batch_op.create_index("ix_charges_tenant_end", _CHARGES_COVER, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("charges", schema=None) as batch_op:
        batch_op.drop_index("ix_charges_tenant_end")
        batch_op.create_index("ix_charges_tenant_end", ["tenant", "end"], unique=False)
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_state_seq")
        batch_op.drop_index("ix_jobs_grant_seq")

"""index ``ix_jobs_tenant_active`` (tenant, active): a submission counts its tenant's active jobs against the
pool's cap on active jobs per tenant (``core.errors.active_refusal``); without it the count read every job
the tenant ever had (``ix_jobs_tenant_seq`` leads with the tenant, then seq).

Revision ID: 0017_jobs_tenant_active
Revises: 0016_job_id_text_index
"""

from __future__ import annotations

from alembic import op

revision = "0017_jobs_tenant_active"
down_revision = "0016_job_id_text_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_tenant_active", "jobs", ["tenant", "active"])


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_active", table_name="jobs")

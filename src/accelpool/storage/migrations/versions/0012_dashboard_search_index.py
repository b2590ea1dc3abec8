"""dashboard search index: jobs.accepts (the types a job accepts, "|a100|h100|"; a copy of the spec's
``allowed`` for the type filter, which read every job's JSON spec) and ``ix_jobs_search``, a narrow copy
of the columns the job search filters on, in ``seq`` order: an admin's text search and type filter scan
this index instead of the table's wide rows, and a typed deep page number skips index entries, not rows

Revision ID: 0012_dashboard_search_index
Revises: 0011_site_down_by_hand
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0012_dashboard_search_index"
down_revision = "0011_site_down_by_hand"
branch_labels = None
depends_on = None

_SEARCH = ["seq", "tenant", "state", "submit_time", "grant_id", "accepts", "name", "id"]
_BATCH = 5_000


def _accepts(spec: object) -> str:
    if isinstance(spec, str):
        spec = json.loads(spec)
    allowed = spec.get("allowed") if isinstance(spec, dict) else None
    return "|" + "|".join(sorted(str(t) for t in allowed or ())) + "|"


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accepts", sa.Text(), nullable=True))
    bind = op.get_bind()
    jobs = sa.table(
        "jobs",
        sa.column("seq", sa.BigInteger()),
        sa.column("spec", sa.JSON()),
        sa.column("accepts", sa.Text()),
    )
    last = -1
    while True:  # in batches by seq: the spec is parsed here, the same way on SQLite and PostgreSQL
        rows = bind.execute(
            sa.select(jobs.c.seq, jobs.c.spec).where(jobs.c.seq > last).order_by(jobs.c.seq).limit(_BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            jobs.update().where(jobs.c.seq == sa.bindparam("_seq")).values(accepts=sa.bindparam("_acc")),
            [{"_seq": r.seq, "_acc": _accepts(r.spec)} for r in rows],
        )
        last = rows[-1].seq
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_search", _SEARCH, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_search")
        batch_op.drop_column("accepts")

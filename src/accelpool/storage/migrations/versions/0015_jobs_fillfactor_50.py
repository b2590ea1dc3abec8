"""jobs fillfactor 50 on PostgreSQL (was 70, migration 0002): a round after a burst of submissions rewrites
the wait reason of nearly every queued row (8,811 of 10,000 in bench/bench_round.py's first step). An
update is HOT (no new entry in any of the table's twelve indexes) only when the new row version fits on its
page; at 70 only about a third of a page's rows found room, the others went to other pages with an entry
in every index. At 50 each row finds room for one new version: that UPDATE took 0.55-0.65 s instead of
1.5-2.1 s at load average 12-16 (docs/control-plane.md). Pages already written keep their fill until rewritten
(new rows and updates use the new setting). SQLite has no such setting.

Revision ID: 0015_jobs_fillfactor_50
Revises: 0014_job_text_deferred
"""

from __future__ import annotations

from alembic import op

revision = "0015_jobs_fillfactor_50"
down_revision = "0014_job_text_deferred"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE jobs SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE jobs SET (fillfactor = 70)")

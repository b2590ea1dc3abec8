"""job change version: jobs.ver, bumped by a trigger on every insert and update of a job row, so the
scheduler's snapshot reads only the rows written since its last round (``SqlStore.snapshot``) instead of
every active job.

SQLite (one writer at a time, commits in order): ver = MAX(ver) + 1 at each write, so a reader that saw
every row up to MAX(ver) reads ``ver > that`` next time. Existing rows get ver = seq.

PostgreSQL (transactions commit out of order: a counter taken by a transaction that commits after a later
one would be missed): ver = the writing transaction's id (``txid_current()``, 64 bits, never wraps). A
reader notes the oldest transaction still in flight (``txid_snapshot_xmin(txid_current_snapshot())``)
before it reads; every write it did not see carries an id at least that, so next time it reads
``ver >= that`` (rows it saw already come again in that small window and are recognised unchanged).
Existing rows keep ver = 0 (a reader starts with a full read).

Revision ID: 0014_job_change_version
Revises: 0013_job_text_index
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_job_change_version"
down_revision = "0013_job_text_index"
branch_labels = None
depends_on = None

_SQLITE_UP = [
    "UPDATE jobs SET ver = seq",
    # the insert's own row holds ver = 0 (the column default) until this sets it
    "CREATE TRIGGER jobs_ver_ai AFTER INSERT ON jobs BEGIN "
    "UPDATE jobs SET ver = (SELECT MAX(ver) FROM jobs) + 1 WHERE seq = new.seq; END",
    # WHEN: the trigger's own UPDATE (and any write that sets ver itself) does not bump again
    "CREATE TRIGGER jobs_ver_au AFTER UPDATE ON jobs WHEN new.ver = old.ver BEGIN "
    "UPDATE jobs SET ver = (SELECT MAX(ver) FROM jobs) + 1 WHERE seq = new.seq; END",
]
_PG_UP = [
    "CREATE OR REPLACE FUNCTION accelpool_jobs_ver() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.ver := txid_current(); RETURN NEW; END $$",
    "CREATE TRIGGER jobs_ver BEFORE INSERT OR UPDATE ON jobs FOR EACH ROW EXECUTE PROCEDURE accelpool_jobs_ver()",
]


def upgrade() -> None:
    op.add_column("jobs", sa.Column("ver", sa.BigInteger(), nullable=False, server_default="0"))
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for sql in _SQLITE_UP:
            bind.exec_driver_sql(sql)
    elif bind.dialect.name == "postgresql":
        for sql in _PG_UP:
            bind.exec_driver_sql(sql)
    op.create_index("ix_jobs_ver", "jobs", ["ver"])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS jobs_ver_ai")
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS jobs_ver_au")
    elif bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS jobs_ver ON jobs")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS accelpool_jobs_ver()")
    op.drop_index("ix_jobs_ver", table_name="jobs")
    if bind.dialect.name == "sqlite":  # in place (SQLite >= 3.35): a batch copy would drop 0013's triggers
        bind.exec_driver_sql("ALTER TABLE jobs DROP COLUMN ver")
    else:
        op.drop_column("jobs", "ver")

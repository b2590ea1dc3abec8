"""job id text index on an expression (PostgreSQL): 0013's trigram GIN index ``ix_jobs_id_trgm`` was on the
column ``jobs.id`` itself, and pg_trgm's operator class answers ``=`` as well as ``LIKE``, so the planner
could take it for the scheduler's look-ups by id (``id IN (...)`` of a burst without statistics, a join
of ``jobs.id`` with a JSON record set: 1,189 starts in one UPDATE took 18.7 s; docs/control-plane.md).
It is replaced by ``ix_jobs_id_text_trgm`` on the expression ``(id || '')``, which only the dashboard's
search writes (``storage/dashboard.py: JOB_ID_TEXT``): a look-up of ``jobs.id`` cannot match it, and the
unique B-tree serves those. Where pg_trgm is not there (0013 went on without it) no trigram index is made
and a warning names the statement to run by hand once the extension is created. SQLite: no change (its
FTS5 table ``jobs_text`` is searched through MATCH, never for ``=``).

Revision ID: 0016_job_id_text_index
Revises: 0015_jobs_fillfactor_50
"""

from __future__ import annotations

import logging

from alembic import op

revision = "0016_job_id_text_index"
down_revision = "0015_jobs_fillfactor_50"
branch_labels = None
depends_on = None

log = logging.getLogger("accelpool.storage.migrate")

_NEW = "CREATE INDEX IF NOT EXISTS ix_jobs_id_text_trgm ON jobs USING gin ((id || '') gin_trgm_ops)"
_OLD = "CREATE INDEX IF NOT EXISTS ix_jobs_id_trgm ON jobs USING gin (id gin_trgm_ops)"


def _swap(drop: str, create: str) -> bool:
    """PostgreSQL: drop the index ``drop``, then run ``create`` where pg_trgm is there; whether it ran."""
    bind = op.get_bind()
    bind.exec_driver_sql(f"DROP INDEX IF EXISTS {drop}")
    if not bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").first():
        return False
    bind.exec_driver_sql(create)
    return True


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql" and not _swap("ix_jobs_id_trgm", _NEW):
        log.warning(
            "pg_trgm is not installed; the job search by id reads the table. Once the extension is "
            "created (CREATE EXTENSION pg_trgm), create this index on jobs.id, not 0013's on the bare "
            "column (the scheduler's look-ups by id must not use it): %s",
            _NEW,
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _swap("ix_jobs_id_text_trgm", _OLD)

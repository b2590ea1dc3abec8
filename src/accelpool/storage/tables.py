"""SQLAlchemy Core tables. Rows never leave ``accelpool.storage``: repositories turn them into domain values.

Units: times are seconds on the pool's clock (Unix time for the live service), money integer KRW
(BigInteger), capacity in devices. JSON columns hold small immutable structures (quotas, rules, job specs,
placements) that are always read and written whole.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# Auto-increment 64-bit keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
SeqKey = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("weight", Float, nullable=False, default=1.0),
    Column("quota", JSON, nullable=False, default=dict),
    Column("public", Boolean, nullable=False, default=False),
)

programs = Table(
    "programs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False, default=""),
    Column("budget_krw", BigInteger, nullable=False),
    Column("start", Float, nullable=False, default=0.0),
    Column("end", Float, nullable=True),
    Column("public", Boolean, nullable=False, default=True),
    Column("rules", JSON, nullable=False, default=dict),
)

grants = Table(
    "grants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("program", String(64), ForeignKey("programs.id"), nullable=False),
    Column("tenant", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("amount_krw", BigInteger, nullable=False),
    Column("spent_krw", BigInteger, nullable=False, default=0),
    Column("start", Float, nullable=False, default=0.0),
    Column("end", Float, nullable=True),
    Index("ix_grants_tenant", "tenant"),
    Index("ix_grants_program", "program"),
)

prices = Table(
    "prices",
    metadata,
    Column("accelerator", String(64), primary_key=True),
    Column("krw_per_device_hour", BigInteger, nullable=False),
)

nodes = Table(
    "nodes",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("accelerator", String(64), nullable=False),
    Column("devices", Integer, nullable=False),
    Column("zone", String(64), nullable=False, default="default"),
    Column("labels", JSON, nullable=False, default=list),
    Column("down", Boolean, nullable=False, default=False),
    Column("down_cause", String(16), nullable=True),  # "drained" (an operator) or "lost" (the executor)
    Column("site", String(64), nullable=False, default="default", server_default="default"),
)

sites = Table(
    "sites",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("operator", String(200), nullable=False, default=""),
    Column("region", String(64), nullable=False, default=""),
    Column("data_classes", JSON, nullable=False, default=list),
    Column("executor", String(32), nullable=False, default="local"),
    Column("connection", JSON, nullable=False, default=dict),
    Column("prices", JSON, nullable=False, default=dict),  # {type: KRW per device-hour} at this site
    Column("down", Boolean, nullable=False, default=False),
    # an operator's hand (who, when in unix seconds, why): while down_by is set the site stays down
    Column("down_by", String(200), nullable=True),
    Column("down_at", Float, nullable=True),
    Column("down_reason", String(500), nullable=True),
)

jobs = Table(
    "jobs",
    metadata,
    Column("seq", SeqKey, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("tenant", String(64), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("spec", JSON, nullable=False),  # the core Job's fields
    Column("run", JSON, nullable=False),  # RunSpec fields
    Column("throughput", JSON, nullable=False),  # {type: steps/s}
    Column("state", String(16), nullable=False),
    Column("active", Boolean, nullable=False),  # not terminal
    Column("placement", JSON, nullable=True),
    Column("steps_done", Float, nullable=False, default=0.0),
    Column("seconds_on", JSON, nullable=False, default=dict),
    Column("metered_until", Float, nullable=True),
    Column("carry_krw", String(80), nullable=True),  # exact KRW metered, not yet billed: "n/d" (core.ledger)
    Column("attempt_started", Float, nullable=True),  # STARTED of the current run, until its first progress
    Column("restart_measured", Float, nullable=True),  # s from STARTED to the first progress (last attempt)
    Column("reason", Text, nullable=False, default=""),
    Column("submit_time", Float, nullable=False),
    Column("start_time", Float, nullable=True),
    Column("end_time", Float, nullable=True),
    Column("preemptions", Integer, nullable=False, default=0),
    Column("attempts", Integer, nullable=False, default=0),
    Column("reserved_krw", BigInteger, nullable=False, default=0),  # budget held by this job while active
    Column("idempotency_key", String(200), nullable=True),
    # copies of two spec fields, for indexes: the queue order (positions are derived from it on read, never
    # stored) and a grant's holds (an index-only sum)
    Column("priority", Integer, nullable=False, default=0, server_default="0"),
    Column("grant_id", String(64), nullable=True),
    # the types the job accepts ("|a100|h100|", "||" for any), a copy of spec.allowed for the dashboard's
    # type filter (codec.accepts_text)
    Column("accepts", Text, nullable=True),
    UniqueConstraint("tenant", "idempotency_key", name="uq_jobs_idempotency"),
    Index("ix_jobs_active", "active", "seq"),
    # a tenant's jobs newest first; the other columns let the dashboard's searches of them read the index alone
    Index("ix_jobs_tenant_seq", "tenant", "seq", "state", "submit_time", "name", "id"),
    Index("ix_jobs_queue", "state", "priority", "submit_time", "id"),
    # a tenant's active jobs, counted at each submission against the pool's cap (core.errors.active_refusal)
    Index("ix_jobs_tenant_active", "tenant", "active"),
    Index("ix_jobs_grant_hold", "grant_id", "active", "reserved_krw"),
    # the dashboard's job search: a program manager's jobs and a program filter (by grant, with the columns
    # other filters test, so the index alone answers them) and a state filter, newest first
    Index("ix_jobs_grant_seq", "grant_id", "tenant", "state", "submit_time", "seq", "name", "id"),
    Index("ix_jobs_state_seq", "state", "seq"),
    # the columns the dashboard's job search filters on, in seq order: an admin's text search and type
    # filter and a typed deep page read this narrow index, not the table's wide rows
    Index("ix_jobs_search", "seq", "tenant", "state", "submit_time", "grant_id", "accepts", "name", "id"),
)

job_events = Table(
    "job_events",
    metadata,
    Column("seq", SeqKey, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("time", Float, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("cause", String(16), nullable=True),  # core.lifecycle.StopCause of a line that ends a run
    Index("ix_job_events_job", "job", "seq"),
)

charges = Table(
    "charges",
    metadata,
    Column("seq", SeqKey, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("grant", String(64), nullable=True),
    Column("program", String(64), nullable=True),
    Column("accelerator", String(64), nullable=False),
    Column("device_seconds", Float, nullable=False),
    Column("amount_krw", BigInteger, nullable=False),
    Column("start", Float, nullable=False),
    Column("end", Float, nullable=False),
    Column("site", String(64), nullable=False, default="default", server_default="default"),
    # recent charges per tenant; the other columns let the dashboard's sums read the index alone
    Index(
        "ix_charges_tenant_end",
        "tenant",
        "end",
        "program",
        "accelerator",
        "amount_krw",
        "device_seconds",
        "start",
    ),
    Index("ix_charges_job", "job"),
)

# The latest round's queue (core.reasons.QueueView), one row: positions in the pool and the tenant and
# estimated start ranges of every queued job, in fair order. Rewritten when it changes (one row, not one
# per job: a job ahead starting moves every position behind it); reads take their job's entry.
queue_view = Table(
    "queue_view",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("at", Float, nullable=False),  # the round's time
    Column("version", BigInteger, nullable=False),  # +1 per write (readers keep the parsed data per version)
    # JSON text {"of": n, "jobs": {id: [pos, tenant pos, tenant count, earliest, latest]}}, serialized
    # before the write transaction begins (it holds SQLite's write lock only for the row write)
    Column("data", Text, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "hash", String(64), nullable=False, unique=True
    ),  # sha256 of the secret; the secret is never stored
    Column("name", String(200), nullable=False, default=""),
    Column("role", String(32), nullable=False),  # admin | program-manager | member
    Column("tenant", String(64), nullable=True),
    Column("program", String(64), nullable=True),
    Column("created", Float, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("expires", Float, nullable=True),  # epoch seconds; NULL: never
)

# Dashboard sign-ins: the browser holds a random session secret (HttpOnly cookie), never the API token;
# the row names the token it was opened with, so revoking that token ends its sessions too.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("hash", String(64), primary_key=True),  # sha256 of the session secret; the secret is not stored
    Column("token", String(32), nullable=False),
    Column("created", Float, nullable=False),
    Column("expires", Float, nullable=False),
    Index("ix_ui_sessions_token", "token"),
)


# Schema objects the migrations make outside this metadata (0013: the job text index): SQLite's FTS5
# table ``jobs_text``, its shadow tables and its mark ``jobs_text_mark`` (0014), PostgreSQL's GIN trigram
# indexes (on jobs.name; on jobs.id until 0016, on the expression ``(id || '')`` since). Alembic's
# comparison skips them (``include_name``), since SQLAlchemy cannot describe them.
TEXT_INDEX_TABLES = ("jobs_text",)
TEXT_INDEX_INDEXES = ("ix_jobs_name_trgm", "ix_jobs_id_trgm", "ix_jobs_id_text_trgm")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """False for the job text index's objects (``TEXT_INDEX_*``), True for everything else."""
    if type_ == "table" and name is not None:
        return not any(name == t or name.startswith(t + "_") for t in TEXT_INDEX_TABLES)
    if type_ == "index":
        return name not in TEXT_INDEX_INDEXES
    return True

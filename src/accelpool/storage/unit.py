"""The shared unit of work of the SQL store's aggregates: engines, one transaction per public method
(``write()``, ``read()``), row locks, the cached reference data, and the row <-> domain converters.

SqlStore is assembled from one class per aggregate, each over this base: jobs (storage/jobs.py: state and
money writes; storage/submissions.py: queueing), money (storage/money.py: prices, programs, grants), nodes
(storage/nodes.py), sites (storage/sites.py), identity (storage/identity.py: tenants; tokens are in storage/queries.py), and the
scheduler's port (storage/sql.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from accelpool.core.errors import AlreadyExists
from accelpool.core.rounds import JobStatus
from accelpool.core.types import AcceleratorType, Grant, Job, JobState, Node, Program, Site, Tenant
from accelpool.storage import codec, migrate
from accelpool.storage import tables as T
from accelpool.storage.engine import json_deserializer, make_engines
from accelpool.storage.views import NodeView

# Reference data older than this is read again even without a write through this store (another process,
# e.g. an operator's script, may have written to the database).
# e.g. an operator's script, may have written to the database).
REFERENCE_MAX_AGE = 1.0


@dataclass(frozen=True)
class Reference:
    """Slow-changing rows the API reads on every submission, read together in one transaction and cached:
    programs, grants (their ``spent_krw`` is as of ``loaded``; money checks that matter are repeated under
    the grant's row lock), nodes and prices."""

    programs: dict[str, Program]
    grants_by_tenant: dict[str, list[Grant]]
    nodes: list[NodeView]
    prices: dict[str, int]
    tenants: frozenset[str]
    loaded: float
    public_tenants: frozenset[str] = frozenset()
    sites: tuple[Site, ...] = ()


class UnitOfWork:
    """``url``: a SQLAlchemy URL (``sqlite+pysqlite:///path`` or ``postgresql+psycopg://...``).

    ``upgrade=True`` brings the schema to the newest revision; ``False`` refuses (SchemaError) unless it
    already is there."""

    def __init__(
        self, url: str, accelerators: Mapping[str, AcceleratorType] | None = None, *, upgrade: bool = True
    ) -> None:
        self.url = url
        self.engine, self.read_engine = make_engines(url)
        self._pg = self.engine.dialect.name == "postgresql"
        if upgrade:
            migrate.upgrade(self.engine)
        elif migrate.check(self.engine) != migrate.head():
            raise migrate.SchemaError(
                f"database schema is at {migrate.current(self.engine)}, accelpool needs {migrate.head()}: "
                "start the server without --no-upgrade to migrate it"
            )
        self.accelerators: dict[str, AcceleratorType] = dict(accelerators or {})
        self._jobs: dict[str, Job] = {}  # immutable specs, parsed once
        self._waits: dict[str, str] = {}  # a queued job's reason as stored (read by snapshot, then written)
        self._skipped: frozenset[str] = frozenset()  # starts the last decision did not record (cancelled)
        self._last_ref: Any = None  # the last snapshot's tenants, programs, throughput (SqlStore.snapshot)
        self._last_status: dict[str, Any] = {}  # job id -> (stored values, JobStatus) of the last snapshot
        self._analyzed_rows = (
            0  # active jobs the last ANALYZE of the jobs table saw (SqlStore._fresh_statistics)
        )
        self._queue_written: Any = None  # the queue view last written (skip rewriting an unchanged one)
        self._queue_read: tuple[int, dict[str, Any]] | None = None  # (version, data) last read
        self._lock = threading.Lock()
        self._ref: Reference | None = None
        self._ref_version = 0  # bumped by every write that changes reference data
        self._ref_refreshing = False  # a read-behind of the reference data is under way (reference())
        self._batcher: Any = None

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.read_engine.begin() as conn:
            yield conn

    def invalidate(self) -> None:
        """Forget cached reference data (called by every write that changes it)."""
        with self._lock:
            self._ref_version += 1
            self._ref = None

    @property
    def write_version(self) -> int:
        """Changes whenever cached reference data (or a token) was changed through this store."""
        return self._ref_version

    def reference(self, max_age: float = REFERENCE_MAX_AGE, *, read_behind: bool = False) -> Reference:
        """Programs, grants, up nodes and prices, cached until a write through this store changes them
        or ``max_age`` seconds pass. One read transaction when it must be read again. ``read_behind``
        (the API's event loop): a copy that is only old (no write through this store dropped it) is
        still answered, up to 3 x ``max_age``, while a thread reads the new one."""
        ref = self._ref
        now = time.monotonic()
        if ref is not None and now - ref.loaded < max_age:
            return ref
        if read_behind and ref is not None and now - ref.loaded < 3 * max_age:
            with self._lock:
                start, self._ref_refreshing = not self._ref_refreshing, True
            if start:
                threading.Thread(target=self._read_behind, name="accelpool-reference", daemon=True).start()
            return ref
        return self._read_reference()

    def _read_behind(self) -> None:
        try:
            self._read_reference()
        except Exception:  # the next caller reads it again (synchronously once the copy is too old)
            logging.getLogger("accelpool.storage").exception("reading the reference data failed")
        finally:
            self._ref_refreshing = False

    def _read_reference(self) -> Reference:
        now = time.monotonic()
        version = self._ref_version
        with self.read() as c:
            programs = {r.id: codec.program_from_row(r) for r in c.execute(select(T.programs))}
            by_tenant: dict[str, list[Grant]] = {}
            for r in c.execute(select(T.grants).order_by(T.grants.c.id)):
                by_tenant.setdefault(r.tenant, []).append(codec.grant_from_row(r))
            nodes = [
                NodeView(
                    r.name, r.accelerator, int(r.devices), r.zone, bool(r.down), list(r.labels or []), r.site
                )
                for r in c.execute(select(T.nodes).order_by(T.nodes.c.name))
            ]
            prices = {r.accelerator: int(r.krw_per_device_hour) for r in c.execute(select(T.prices))}
            trows = c.execute(select(T.tenants.c.id, T.tenants.c.public)).all()
            sites = tuple(codec.site_from_row(r) for r in c.execute(select(T.sites).order_by(T.sites.c.id)))
        tenants = frozenset(r[0] for r in trows)
        public = frozenset(r[0] for r in trows if r[1])
        ref = Reference(programs, by_tenant, nodes, prices, tenants, now, public, sites)
        with self._lock:
            if self._ref_version == version:  # no write happened while we read
                self._ref = ref
        return ref

    def _lock_row(self, c: Connection, table: Any, key: Any, value: str) -> Any:
        """The row, locked for the rest of the transaction (PostgreSQL: FOR UPDATE; SQLite: the write
        transaction began IMMEDIATE, so it already holds the database's write lock)."""
        q = select(table).where(key == value)
        return c.execute(q.with_for_update() if self._pg else q).first()

    def _insert_new(self, table: Any, key: Any, value: str, row: dict[str, Any], what: str) -> None:
        """Insert a row whose key must not exist yet; Conflict (field = the key's name) when it does."""
        conflict = AlreadyExists(f"{what} '{value}' already exists", key.name)
        try:
            with self.write() as c:
                if c.execute(select(key).where(key == value)).first() is not None:
                    raise conflict
                c.execute(insert(table).values({key.name: value, **row}))
        except IntegrityError as exc:
            raise conflict from exc
        self.invalidate()

    def _job(self, job_id: str, spec: dict[str, Any] | str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            if isinstance(spec, str):
                job = codec.job_from_dict(json_deserializer(spec), owned=True)
            else:
                job = codec.job_from_dict(spec)
            self._jobs[job_id] = job
        return job

    def _status(self, r: Any) -> JobStatus:
        return JobStatus(
            job=self._job(r.id, r.spec),
            state=JobState(r.state),
            placement=codec.placement_from_dict(r.id, r.placement),
            steps_done=float(r.steps_done),
            seconds_on=dict(r.seconds_on or {}),
            metered_until=r.metered_until,
            carry=codec.carry_from_str(r.carry_krw),
            attempt_started=r.attempt_started,
            restart_measured=r.restart_measured,
        )

    @staticmethod
    def _node(r: Any) -> Node:
        return Node(
            r.name, r.accelerator, int(r.devices), r.zone, tuple(tuple(kv) for kv in r.labels or ()), r.site
        )


def _node_row(n: Node) -> dict[str, Any]:
    return {
        "accelerator": n.accelerator,
        "devices": n.devices,
        "zone": n.zone,
        "labels": [list(kv) for kv in n.labels],
        "site": n.site,
    }


def _tenant_row(t: Tenant) -> dict[str, Any]:
    return {"name": t.name, "weight": t.weight, "quota": dict(t.quota), "public": t.public}


def _program_row(p: Program) -> dict[str, Any]:
    return {
        "name": p.name,
        "budget_krw": int(p.budget_krw),
        "start": p.start,
        "end": p.end,
        "public": p.public,
        "rules": codec.rules_to_dict(p.rules),
    }

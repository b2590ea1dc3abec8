"""SqlStore: the SchedulerStore port (and the set-up calls MemoryStore has) on SQLAlchemy Core.

Same behaviour as ``MemoryStore``, checked by tests/contracts/test_store_contract.py on SQLite and
PostgreSQL. Every public method is one transaction. Money moves only inside a transaction that holds the
grant row (``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so a grant is never
overspent, whatever runs concurrently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from accelpool.core.errors import AlreadyExists, Conflict, InsufficientFunds, MissingReference
from accelpool.core.lifecycle import Command, SchedulerEvent, apply_event
from accelpool.core.rounds import Decision, JobStatus, Placement, Snapshot
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import (
    AcceleratorType,
    Charge,
    Grant,
    Job,
    JobState,
    Node,
    Program,
    Tenant,
)
from accelpool.ports import ExecutorEvent, RunSpec
from accelpool.storage import codec, migrate
from accelpool.storage import tables as T
from accelpool.storage.engine import json_deserializer, json_serializer, make_engines
from accelpool.storage.jobs import JobWrites
from accelpool.storage.queries import Queries
from accelpool.storage.views import NodeView

# Reference data older than this is read again even without a write through this store (another process,
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


@dataclass(frozen=True)
class Submission:
    """One job to queue (the arguments of ``SqlStore.submit``)."""

    job: Job
    throughput: Mapping[str, float]
    run: RunSpec | None = None
    name: str = ""
    idempotency_key: str | None = None
    reserve_krw: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# PostgreSQL: bulk updates as one UPDATE ... FROM unnest(arrays) (one round trip instead of one per row).
_PG_STARTS = text(
    "UPDATE jobs SET placement = CAST(u.pl AS json), metered_until = NULL, carry_krw = NULL, "
    "state = 'running', reason = u.why, attempts = jobs.attempts + 1 "
    "FROM unnest(CAST(:ids AS text[]), CAST(:pls AS text[]), CAST(:whys AS text[])) AS u(id, pl, why) "
    "WHERE jobs.id = u.id"
)
_PG_WAITS = text(
    "UPDATE jobs SET reason = u.r "
    "FROM unnest(CAST(:ids AS text[]), CAST(:rs AS text[])) AS u(id, r) "
    "WHERE jobs.id = u.id AND jobs.state = 'queued'"
)

# Wait reasons are written after the round's transaction, on SQLite in transactions of at most this many rows,
# so a submission waiting for the write lock waits for one short chunk, never for the whole queue. (PostgreSQL
# locks rows, not the database: there they are one statement, as one commit there costs a WAL flush.)
WAIT_CHUNK = 500


class SqlStore(JobWrites, Queries):
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
        self._lock = threading.Lock()
        self._ref: Reference | None = None
        self._ref_version = 0  # bumped by every write that changes reference data
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

    # -- cached reference data ------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget cached reference data (called by every write that changes it)."""
        with self._lock:
            self._ref_version += 1
            self._ref = None

    @property
    def write_version(self) -> int:
        """Changes whenever cached reference data (or a token) was changed through this store."""
        return self._ref_version

    def reference(self, max_age: float = REFERENCE_MAX_AGE) -> Reference:
        """Programs, grants, up nodes and prices, cached until a write through this store changes them
        or ``max_age`` seconds pass. One read transaction when it must be read again."""
        ref = self._ref
        now = time.monotonic()
        if ref is not None and now - ref.loaded < max_age:
            return ref
        version = self._ref_version
        with self.read() as c:
            programs = {r.id: self._program(r) for r in c.execute(select(T.programs))}
            by_tenant: dict[str, list[Grant]] = {}
            for r in c.execute(select(T.grants).order_by(T.grants.c.id)):
                by_tenant.setdefault(r.tenant, []).append(self._grant(r))
            nodes = [
                NodeView(r.name, r.accelerator, int(r.devices), r.zone, bool(r.down), list(r.labels or []))
                for r in c.execute(select(T.nodes).order_by(T.nodes.c.name))
            ]
            prices = {r.accelerator: int(r.krw_per_device_hour) for r in c.execute(select(T.prices))}
            trows = c.execute(select(T.tenants.c.id, T.tenants.c.public)).all()
        tenants = frozenset(r[0] for r in trows)
        public = frozenset(r[0] for r in trows if r[1])
        ref = Reference(programs, by_tenant, nodes, prices, tenants, now, public)
        with self._lock:
            if self._ref_version == version:  # no write happened while we read
                self._ref = ref
        return ref

    # -- set-up (operators, tenants) ------------------------------------------------------------------

    def add_nodes(self, nodes: Iterable[Node]) -> None:
        with self.write() as c:
            for n in nodes:
                row = _node_row(n)
                if c.execute(update(T.nodes).where(T.nodes.c.name == n.name).values(**row)).rowcount == 0:
                    c.execute(insert(T.nodes).values(name=n.name, down=False, **row))
        self.invalidate()

    def set_node_down(self, name: str, down: bool = True) -> None:
        with self.write() as c:
            c.execute(update(T.nodes).where(T.nodes.c.name == name).values(down=down))
        self.invalidate()

    def set_prices(self, prices: Mapping[str, int]) -> None:
        with self.write() as c:
            for acc, krw in prices.items():
                q = update(T.prices).where(T.prices.c.accelerator == acc).values(krw_per_device_hour=int(krw))
                if c.execute(q).rowcount == 0:
                    c.execute(insert(T.prices).values(accelerator=acc, krw_per_device_hour=int(krw)))
        self.invalidate()

    def add_tenant(self, tenant: Tenant) -> None:
        row = _tenant_row(tenant)
        with self.write() as c:
            if c.execute(update(T.tenants).where(T.tenants.c.id == tenant.id).values(**row)).rowcount == 0:
                c.execute(insert(T.tenants).values(id=tenant.id, **row))
        self.invalidate()

    def add_program(self, program: Program) -> None:
        row = _program_row(program)
        with self.write() as c:
            if c.execute(update(T.programs).where(T.programs.c.id == program.id).values(**row)).rowcount == 0:
                c.execute(insert(T.programs).values(id=program.id, **row))
        self.invalidate()

    def add_grant(self, grant: Grant) -> None:
        """Create or replace a grant. Creates the tenant row if it does not exist yet."""
        with self.write() as c:
            if c.execute(select(T.tenants.c.id).where(T.tenants.c.id == grant.tenant)).first() is None:
                c.execute(
                    insert(T.tenants).values(
                        id=grant.tenant, name=grant.tenant, weight=1.0, quota={}, public=False
                    )
                )
            row = {
                "program": grant.program,
                "tenant": grant.tenant,
                "amount_krw": int(grant.amount_krw),
                "spent_krw": int(grant.spent_krw),
                "start": grant.start,
                "end": grant.end,
            }
            if c.execute(update(T.grants).where(T.grants.c.id == grant.id).values(**row)).rowcount == 0:
                c.execute(insert(T.grants).values(id=grant.id, **row))
        self.invalidate()

    # -- create / update (the API): create refuses an existing id, updates keep what is already in use ----

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

    def create_tenant(self, tenant: Tenant) -> None:
        """Insert a tenant; Conflict (field ``id``) when the id exists."""
        self._insert_new(T.tenants, T.tenants.c.id, tenant.id, _tenant_row(tenant), "tenant")

    def update_tenant(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        weight: float | None = None,
        quota: Mapping[str, int] | None = None,
        public: bool | None = None,
    ) -> Tenant | None:
        """Change the fields given; None when there is no such tenant."""
        row: dict[str, Any] = {}
        if name is not None:
            row["name"] = name
        if weight is not None:
            row["weight"] = weight
        if quota is not None:
            row["quota"] = dict(quota)
        if public is not None:
            row["public"] = public
        with self.write() as c:
            if row:
                c.execute(update(T.tenants).where(T.tenants.c.id == tenant_id).values(**row))
            r = c.execute(select(T.tenants).where(T.tenants.c.id == tenant_id)).first()
        self.invalidate()
        return None if r is None else self._tenant(r)

    def create_program(self, program: Program) -> None:
        """Insert a program; Conflict (field ``id``) when the id exists (its budget, rules and dates are
        never reset by a second create)."""
        self._insert_new(T.programs, T.programs.c.id, program.id, _program_row(program), "program")

    def _granted(self, c: Connection, program: str, but: str | None = None) -> int:
        q = select(func.coalesce(func.sum(T.grants.c.amount_krw), 0)).where(T.grants.c.program == program)
        if but is not None:
            q = q.where(T.grants.c.id != but)
        return int(c.execute(q).scalar_one())

    def update_program(
        self,
        program_id: str,
        *,
        name: str | None = None,
        budget_krw: int | None = None,
        end: float | None = None,
        rules: Any = None,
    ) -> Program | None:
        """Change the fields given, under the program row's lock. A budget below what the program has
        already granted is refused (Conflict, field ``budget_krw``); an end at or before the start too
        (field ``end``). None when there is no such program."""
        with self.write() as c:
            r = self._lock_row(c, T.programs, T.programs.c.id, program_id)
            if r is None:
                return None
            row: dict[str, Any] = {}
            if name is not None:
                row["name"] = name
            if budget_krw is not None:
                granted = self._granted(c, program_id)
                if budget_krw < granted:
                    raise Conflict(
                        f"program '{program_id}' has already granted {granted} KRW; the budget cannot go "
                        "below that",
                        "budget_krw",
                    )
                row["budget_krw"] = int(budget_krw)
            if end is not None:
                if end <= float(r.start):
                    raise Conflict("the program must end after it starts", "end")
                row["end"] = end
            if rules is not None:
                row["rules"] = codec.rules_to_dict(rules)
            if row:
                c.execute(update(T.programs).where(T.programs.c.id == program_id).values(**row))
            r = c.execute(select(T.programs).where(T.programs.c.id == program_id)).first()
        self.invalidate()
        return self._program(r)

    def create_grant(self, grant: Grant) -> Grant:
        """Insert a grant (spent 0) from its program's budget. The budget check and the insert are one
        transaction under the program row's lock, so concurrent grants cannot together over-grant it.
        Conflict: the id exists (field ``id``), or the budget has too little left (``amount_krw``).
        NotFound-like Conflict (field ``program``) when the program does not exist."""
        try:
            with self.write() as c:
                p = self._lock_row(c, T.programs, T.programs.c.id, grant.program)
                if p is None:
                    raise MissingReference(f"no program '{grant.program}'", "program")
                if c.execute(select(T.grants.c.id).where(T.grants.c.id == grant.id)).first() is not None:
                    raise AlreadyExists(f"grant '{grant.id}' already exists", "id")
                if c.execute(select(T.tenants.c.id).where(T.tenants.c.id == grant.tenant)).first() is None:
                    raise MissingReference(f"no tenant '{grant.tenant}'", "tenant")
                left = int(p.budget_krw) - self._granted(c, grant.program)
                if grant.amount_krw > left:
                    raise InsufficientFunds(
                        f"program '{grant.program}' has {left} KRW left to grant", "amount_krw"
                    )
                c.execute(
                    insert(T.grants).values(
                        id=grant.id,
                        program=grant.program,
                        tenant=grant.tenant,
                        amount_krw=int(grant.amount_krw),
                        spent_krw=0,
                        start=grant.start,
                        end=grant.end,
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"grant '{grant.id}' already exists", "id") from exc
        self.invalidate()
        return Grant(grant.id, grant.program, grant.tenant, int(grant.amount_krw), 0, grant.start, grant.end)

    def update_grant(
        self, grant_id: str, *, amount_krw: int | None = None, end: float | None = None
    ) -> Grant | None:
        """Change a grant's amount and/or end, never its program, tenant or spent amount. Under the locks of
        its program row and its own row: the amount stays within the program's budget (beside its other
        grants) and never below what is spent and held by active jobs. None when there is no such grant."""
        with self.write() as c:
            g0 = c.execute(select(T.grants.c.program).where(T.grants.c.id == grant_id)).first()
            if g0 is None:
                return None
            p = self._lock_row(c, T.programs, T.programs.c.id, g0.program)
            g = self._lock_row(c, T.grants, T.grants.c.id, grant_id)
            row: dict[str, Any] = {}
            if amount_krw is not None:
                used = int(g.spent_krw) + int(
                    c.execute(
                        select(func.coalesce(func.sum(T.jobs.c.reserved_krw), 0)).where(
                            T.jobs.c.grant_id == grant_id, T.jobs.c.active.is_(True)
                        )
                    ).scalar_one()
                )
                if amount_krw < used:
                    raise Conflict(
                        f"grant '{grant_id}' has {used} KRW spent or held; the amount cannot go below that",
                        "amount_krw",
                    )
                left = int(p.budget_krw) - self._granted(c, g.program, but=grant_id)
                if amount_krw > left:
                    raise Conflict(
                        f"program '{g.program}' has {left} KRW left to grant to this grant", "amount_krw"
                    )
                row["amount_krw"] = int(amount_krw)
            if end is not None:
                if end <= float(g.start):
                    raise Conflict("the grant must end after it starts", "end")
                row["end"] = end
            if row:
                c.execute(update(T.grants).where(T.grants.c.id == grant_id).values(**row))
            r = c.execute(select(T.grants).where(T.grants.c.id == grant_id)).first()
        self.invalidate()
        return self._grant(r)

    def create_node(self, node: Node) -> None:
        """Insert a node; Conflict (field ``name``) when one of that name exists (its devices and zone are
        never changed by a second add: running jobs may hold them)."""
        self._insert_new(T.nodes, T.nodes.c.name, node.name, {**_node_row(node), "down": False}, "node")

    def update_node(
        self, name: str, *, devices: int | None = None, zone: str | None = None, down: bool | None = None
    ) -> NodeView | None:
        """Change a node's device count (never below the devices running jobs hold on it), its zone (only
        while no job runs on it) or its down flag. None when there is no such node."""
        with self.write() as c:
            r = self._lock_row(c, T.nodes, T.nodes.c.name, name)
            if r is None:
                return None
            row: dict[str, Any] = {}
            if devices is not None or (zone is not None and zone != r.zone):
                used = 0
                for (pl,) in c.execute(
                    select(T.jobs.c.placement).where(
                        T.jobs.c.active.is_(True), T.jobs.c.state == JobState.RUNNING.value
                    )
                ):
                    for node, devs in (pl or {}).get("devices", []):
                        if node == name:
                            used = max(used, *(int(d) + 1 for d in devs)) if devs else used
                if devices is not None:
                    if devices < used:
                        raise Conflict(
                            f"node '{name}' has devices up to index {used - 1} in use by running jobs; "
                            "drain it first (nodes drain) and shrink it once they are gone",
                            "devices",
                        )
                    row["devices"] = devices
                if zone is not None and zone != r.zone:
                    if used:
                        raise Conflict(f"node '{name}' runs jobs; drain it before changing its zone", "zone")
                    row["zone"] = zone
            if down is not None:
                row["down"] = down
            if row:
                c.execute(update(T.nodes).where(T.nodes.c.name == name).values(**row))
            r = c.execute(select(T.nodes).where(T.nodes.c.name == name)).one()
        self.invalidate()
        return NodeView(r.name, r.accelerator, int(r.devices), r.zone, bool(r.down), list(r.labels or []))

    def submit(
        self,
        job: Job,
        throughput: Mapping[str, float],
        run: RunSpec | None = None,
        *,
        name: str = "",
        idempotency_key: str | None = None,
        reserve_krw: int = 0,
    ) -> tuple[str, bool]:
        """Queue ``job``. Returns (job id, created). With an idempotency key already used by the tenant,
        returns the earlier job and False. ``reserve_krw`` is held on the job's grant while it is active;
        InsufficientFunds when the grant cannot cover it (checked under the grant's row lock), MissingReference
        when the grant does not exist, AlreadyExists when the id does."""
        out = self.submit_many([Submission(job, throughput, run, name, idempotency_key, int(reserve_krw))])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def submit_many(self, items: Sequence[Submission]) -> list[tuple[str, bool] | Conflict]:
        """Queue several jobs in ONE write transaction (group commit: one fsync for the lot). Each item gets
        what ``submit`` would have returned, or the Conflict it would have raised; a refused item does not
        affect the others. Holds are checked under the grants' row locks, items in order, so jobs in one
        batch cannot together over-commit a grant either."""
        if not items:
            return []
        try:
            with self.write() as c:
                out = self._submit_many(c, items)
        except IntegrityError:
            # a race on an idempotency key or a duplicate id: settle the items one at a time
            if len(items) == 1:
                return [self._submit_conflict(items[0])]
            return [r for it in items for r in self.submit_many([it])]
        for it, r in zip(items, out, strict=True):
            if r == (it.job.id, True):
                self._jobs[it.job.id] = it.job
        return out

    def batcher(self) -> Any:
        """The store's group-commit writer (``storage.batcher.SubmitBatcher``), started on first use."""
        with self._lock:
            if self._batcher is None:
                from accelpool.storage.batcher import SubmitBatcher

                self._batcher = SubmitBatcher(self)
            return self._batcher

    def _submit_conflict(self, it: Submission) -> tuple[str, bool] | Conflict:
        if it.idempotency_key is not None:
            with self.read() as c:
                found = c.execute(
                    select(T.jobs.c.id).where(
                        T.jobs.c.tenant == it.job.tenant, T.jobs.c.idempotency_key == it.idempotency_key
                    )
                ).first()
            if found is not None:
                return str(found[0]), False
        return AlreadyExists(f"job {it.job.id} already exists")

    def _submit_many(self, c: Connection, items: Sequence[Submission]) -> list[tuple[str, bool] | Conflict]:
        out: list[tuple[str, bool] | Conflict | None] = [None] * len(items)
        seen: dict[tuple[str, str], str] = {}
        keys = sorted({it.idempotency_key for it in items if it.idempotency_key is not None})
        if keys:
            for r in c.execute(
                select(T.jobs.c.id, T.jobs.c.tenant, T.jobs.c.idempotency_key).where(
                    T.jobs.c.idempotency_key.in_(keys)
                )
            ):
                seen[(r.tenant, r.idempotency_key)] = str(r.id)
        left: dict[str, int] = {}
        held = sorted({it.job.grant for it in items if it.reserve_krw > 0 and it.job.grant is not None})
        if held:
            grants = {
                r.id: r
                for r in c.execute(
                    select(T.grants).where(T.grants.c.id.in_(held)).order_by(T.grants.c.id).with_for_update()
                )
            }
            holds: dict[str, Any] = dict(
                c.execute(
                    select(T.jobs.c.grant_id, func.sum(T.jobs.c.reserved_krw))
                    .where(
                        T.jobs.c.grant_id.in_(held),
                        T.jobs.c.active.is_(True),
                        T.jobs.c.reserved_krw > 0,
                    )
                    .group_by(T.jobs.c.grant_id)
                ).all()
            )
            for g in held:
                if g in grants:
                    r = grants[g]
                    left[g] = int(r.amount_krw) - int(r.spent_krw) - int(holds.get(g) or 0)
        rows, events = [], []
        for i, it in enumerate(items):
            job = it.job
            if it.idempotency_key is not None:
                k = (job.tenant, it.idempotency_key)
                if k in seen:
                    out[i] = (seen[k], False)
                    continue
            if it.reserve_krw > 0 and job.grant is not None:
                if job.grant not in left:
                    out[i] = MissingReference(f"grant {job.grant} does not exist", "grant")
                    continue
                if it.reserve_krw > left[job.grant]:
                    out[i] = InsufficientFunds(
                        f"grant {job.grant} has {left[job.grant]} KRW not yet held by other "
                        f"jobs; this job needs {it.reserve_krw}"
                    )
                    continue
                left[job.grant] -= it.reserve_krw
            if it.idempotency_key is not None:
                seen[(job.tenant, it.idempotency_key)] = job.id
            rows.append(self.job_row(it))
            events.append({"job": job.id, "time": job.submit_time, "state": "queued", "reason": "submitted"})
            out[i] = (job.id, True)
        if rows:
            c.execute(insert(T.jobs), rows)
            c.execute(insert(T.job_events), events)
        return [r for r in out if r is not None]

    @staticmethod
    def job_row(it: Submission) -> dict[str, Any]:
        """The jobs row a submission inserts (also what the API answers from, without reading it back)."""
        job = it.job
        return {
            "id": job.id,
            "tenant": job.tenant,
            "name": it.name or job.id,
            "spec": codec.job_to_dict(job),
            "run": codec.run_to_dict(it.run or RunSpec()),
            "throughput": {k: float(v) for k, v in it.throughput.items()},
            "state": JobState.QUEUED.value,
            "active": True,
            "placement": None,
            "steps_done": 0.0,
            "seconds_on": {},
            "metered_until": None,
            "reason": "submitted",
            "submit_time": job.submit_time,
            "preemptions": 0,
            "attempts": 0,
            "reserved_krw": int(it.reserve_krw),
            "idempotency_key": it.idempotency_key,
            "priority": int(job.priority),
            "grant_id": job.grant,
        }

    def cancel(self, job_id: str, now: float, reason: str = "cancelled by user") -> bool:
        """Cancel a job that is not finished; True when it was running (its process must be stopped). A
        running job is billed up to the cancel (``core.lifecycle``), decided on its locked row."""
        with self.write() as c:
            locked = self._lock_jobs(c, [job_id])
            before = locked.jobs.get(job_id)
            if before is None:
                raise KeyError(job_id)
            out = apply_event(
                before, SchedulerEvent(job_id, Command.CANCEL, now, reason), locked.price_of(before)
            )
            charged = self._persist(c, before, out, locked)
        if charged:
            self.invalidate()
        return out.status.state is JobState.CANCELLED and before.state is JobState.RUNNING

    def measure(self, job_id: str, accelerator: str, steps_per_second: float) -> None:
        """A measured throughput replaces the estimate for that job and type."""
        with self.write() as c:
            r = c.execute(select(T.jobs.c.throughput).where(T.jobs.c.id == job_id)).first()
            if r is None:
                raise KeyError(job_id)
            tp = dict(r.throughput)
            tp[accelerator] = float(steps_per_second)
            c.execute(update(T.jobs).where(T.jobs.c.id == job_id).values(throughput=tp))

    # -- SchedulerStore port --------------------------------------------------------------------------

    def snapshot(self, now: float, round_seconds: float) -> Snapshot:
        with self.read() as c:
            node_rows = c.execute(select(T.nodes).order_by(T.nodes.c.name)).all()
            job_rows = c.execute(
                select(
                    T.jobs.c.id,
                    cast(T.jobs.c.spec, Text).label("spec"),  # parsed only for jobs not yet cached
                    T.jobs.c.state,
                    T.jobs.c.placement,
                    T.jobs.c.steps_done,
                    T.jobs.c.seconds_on,
                    T.jobs.c.metered_until,
                    T.jobs.c.carry_krw,
                    T.jobs.c.throughput,
                    T.jobs.c.reason,
                )
                .where(T.jobs.c.active.is_(True))
                .order_by(T.jobs.c.seq)
            ).all()
            tenants = tuple(self._tenant(r) for r in c.execute(select(T.tenants).order_by(T.tenants.c.id)))
            programs = tuple(
                self._program(r) for r in c.execute(select(T.programs).order_by(T.programs.c.id))
            )
            grants = tuple(self._grant(r) for r in c.execute(select(T.grants).order_by(T.grants.c.id)))
            prices = {r.accelerator: int(r.krw_per_device_hour) for r in c.execute(select(T.prices))}
        nodes = tuple(self._node(r) for r in node_rows if not r.down)
        statuses = tuple(self._status(r) for r in job_rows)
        queued = JobState.QUEUED.value
        self._waits = {r.id: r.reason for r in job_rows if r.state == queued}  # what is stored now
        types = sorted({r.accelerator for r in node_rows})
        return Snapshot(
            now=now,
            nodes=nodes,
            jobs=statuses,
            throughput=ThroughputMatrix.from_rows({r.id: r.throughput for r in job_rows}, types),
            accelerators=self.accelerators,
            tenants=tenants,
            programs=programs,
            grants=grants,
            prices_krw_per_hour=prices,
            round_seconds=round_seconds,
        )

    def record_decision(self, decision: Decision) -> list[Charge]:
        """Preemptions and starts in one transaction; then the wait reasons that changed, in short
        transactions of ``WAIT_CHUNK`` rows. Queue positions are not stored: reads derive them from the
        queue order (``Queries.queue_positions``), which is the order the decision ranked them in."""
        now = decision.now
        queued = JobState.QUEUED.value
        with self.write() as c:
            booked = self._apply_events(
                c, [SchedulerEvent(j, Command.PREEMPT, now, reason) for j, reason in decision.preempt]
            )
            if decision.start:  # one batched UPDATE and one batched INSERT for every start
                # only jobs still queued (one cancelled through the API since the snapshot stays cancelled;
                # the scheduler stops its work when it polls the states)
                want = [p.job for p in decision.start]
                still: set[str] = set()
                for k in range(0, len(want), WAIT_CHUNK):
                    q = select(T.jobs.c.id).where(T.jobs.c.id.in_(want[k : k + WAIT_CHUNK]))
                    q = q.where(T.jobs.c.state == queued)
                    still.update(r[0] for r in c.execute(q.with_for_update() if self._pg else q))
                starts: list[dict[str, Any]] = [
                    {"jid": p.job, "pl": codec.placement_to_dict(p), "why": _placed(p, now)}
                    for p in decision.start
                    if p.job in still
                ]
                if starts and self._pg:  # one statement, one round trip, whatever the number of starts
                    c.execute(
                        _PG_STARTS,
                        {
                            "ids": [s["jid"] for s in starts],
                            "pls": [json_serializer(s["pl"]) for s in starts],
                            "whys": [s["why"] for s in starts],
                        },
                    )
                elif starts:
                    c.execute(
                        update(T.jobs)
                        .where(T.jobs.c.id == bindparam("jid"))
                        .values(
                            placement=bindparam("pl"),
                            metered_until=None,  # billed from the executor's STARTED event
                            carry_krw=None,
                            state=JobState.RUNNING.value,
                            reason=bindparam("why"),
                            attempts=T.jobs.c.attempts + 1,
                        ),
                        starts,
                    )
                if starts:
                    c.execute(
                        insert(T.job_events),
                        [
                            {
                                "job": s["jid"],
                                "time": now,
                                "state": JobState.RUNNING.value,
                                "reason": s["why"],
                            }
                            for s in starts
                        ],
                    )
                for s in starts:
                    self._waits.pop(s["jid"], None)
        # wait reasons: only rows whose reason changed, only while still queued, in short transactions
        waits = self._waits
        changed: list[tuple[str, str]] = []
        details = decision.details
        for job_id, why in decision.waiting.items():
            reason = details.get(job_id) or str.__str__(why)  # in words (core.reasons), or the code
            if waits.get(job_id) != reason:
                changed.append((job_id, reason))
        step = (len(changed) or 1) if self._pg else WAIT_CHUNK  # PostgreSQL: row locks only, one statement
        for k in range(0, len(changed), step):
            chunk = changed[k : k + step]
            with self.write() as c:
                if self._pg:
                    c.execute(_PG_WAITS, {"ids": [j for j, _ in chunk], "rs": [r for _, r in chunk]})
                else:
                    c.execute(
                        update(T.jobs)
                        .where(T.jobs.c.id == bindparam("jid"), T.jobs.c.state == queued)
                        .values(reason=bindparam("r")),
                        [{"jid": j, "r": r} for j, r in chunk],
                    )
            for j, r in chunk:
                waits[j] = r
        if booked:
            self.invalidate()  # grants' spent_krw changed
        return booked

    def record_events(self, events: Sequence[ExecutorEvent]) -> list[Charge]:
        if not events:
            return []
        with self.write() as c:
            booked = self._apply_events(c, events)
        if booked:
            self.invalidate()  # grants' spent_krw changed
        return booked

    def record_charges(self, charges: Sequence[Charge]) -> list[Charge]:
        if not charges:
            return []
        with self.write() as c:
            booked = self._book_slices(c, charges)
        self.invalidate()  # grants' spent_krw changed
        return booked

    def running(self) -> list[JobStatus]:
        with self.read() as c:
            rows = c.execute(
                select(
                    T.jobs.c.id,
                    T.jobs.c.spec,
                    T.jobs.c.state,
                    T.jobs.c.placement,
                    T.jobs.c.steps_done,
                    T.jobs.c.seconds_on,
                    T.jobs.c.metered_until,
                    T.jobs.c.carry_krw,
                )
                .where(T.jobs.c.active.is_(True), T.jobs.c.state == JobState.RUNNING.value)
                .order_by(T.jobs.c.seq)
            ).all()
        return [self._status(r) for r in rows]

    # -- the scheduler process's cheap polls (split control plane: API and scheduler share the database) --

    def job_states(self, job_ids: Iterable[str]) -> dict[str, str]:
        """{job id: state} for the ids given that exist (e.g. the executor's active jobs: a job the API
        cancelled reads ``cancelled`` here while its process still runs)."""
        ids = sorted(set(job_ids))
        if not ids:
            return {}
        out: dict[str, str] = {}
        with self.read() as c:
            for k in range(0, len(ids), 500):
                q = select(T.jobs.c.id, T.jobs.c.state).where(T.jobs.c.id.in_(ids[k : k + 500]))
                out.update({r.id: r.state for r in c.execute(q)})
        return out

    def last_job_seq(self) -> int:
        """The newest job's sequence number (0 when none): it grows with every submission, so the
        scheduler notices new work with one index look-up."""
        with self.read() as c:
            return int(c.execute(select(func.max(T.jobs.c.seq))).scalar() or 0)

    def run_spec(self, job_id: str) -> RunSpec:
        with self.read() as c:
            r = c.execute(select(T.jobs.c.run).where(T.jobs.c.id == job_id)).first()
        if r is None:
            raise KeyError(job_id)
        return codec.run_from_dict(r.run)

    def prices(self) -> Mapping[str, int]:
        with self.read() as c:
            return {r.accelerator: int(r.krw_per_device_hour) for r in c.execute(select(T.prices))}

    def grant_balances(self) -> Mapping[str, int]:
        with self.read() as c:
            return {
                r.id: int(r.amount_krw) - int(r.spent_krw)
                for r in c.execute(select(T.grants.c.id, T.grants.c.amount_krw, T.grants.c.spent_krw))
            }

    # -- internals ------------------------------------------------------------------------------------

    def _job(self, job_id: str, spec: dict[str, Any] | str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            d = json_deserializer(spec) if isinstance(spec, str) else spec
            job = self._jobs[job_id] = codec.job_from_dict(d)
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
        )

    @staticmethod
    def _node(r: Any) -> Node:
        return Node(r.name, r.accelerator, int(r.devices), r.zone, tuple(tuple(kv) for kv in r.labels or ()))

    @staticmethod
    def _tenant(r: Any) -> Tenant:
        return Tenant(r.id, r.name, float(r.weight), dict(r.quota or {}), bool(r.public))

    @staticmethod
    def _program(r: Any) -> Program:
        return Program(
            r.id,
            r.name,
            int(r.budget_krw),
            float(r.start),
            r.end,
            bool(r.public),
            codec.rules_from_dict(r.rules or {}),
        )

    @staticmethod
    def _grant(r: Any) -> Grant:
        return Grant(r.id, r.program, r.tenant, int(r.amount_krw), int(r.spent_krw), float(r.start), r.end)


def _node_row(n: Node) -> dict[str, Any]:
    return {
        "accelerator": n.accelerator,
        "devices": n.devices,
        "zone": n.zone,
        "labels": [list(kv) for kv in n.labels],
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


def _placed(p: Placement, now: float) -> str:
    """The reason a placed job shows (the core's words for a PLACE)."""
    out = apply_event(
        JobStatus(Job(p.job), JobState.QUEUED), SchedulerEvent(p.job, Command.PLACE, now, placement=p)
    )
    return out.reason or ""

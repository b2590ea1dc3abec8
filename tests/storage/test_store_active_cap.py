"""The pool's cap on a tenant's active jobs (core.errors.active_refusal), counted under the submission's
write, on SQLite and PostgreSQL: concurrent batches of one tenant never pass it together, a refused item
does not refuse the others, an idempotent retry is answered, and another tenant is not counted."""

from __future__ import annotations

import threading

from accelpool.core.errors import TooManyJobs
from accelpool.core.types import Job, JobState, Tenant
from accelpool.storage.submissions import Submission


def _sub(i: int, tenant: str = "t1", key: str | None = None) -> Submission:
    return Submission(Job(f"{tenant}-j{i}", tenant=tenant), {"h100": 1.0}, idempotency_key=key)


def test_concurrent_submissions_never_pass_a_tenants_cap(sql_store) -> None:
    store = sql_store
    for t in ("t1", "t2"):
        store.add_tenant(Tenant(t))
    store.max_active_jobs = 5
    results: list[object] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def worker(w: int) -> None:
        barrier.wait()
        out = store.submit_many([_sub(10 * w + k) for k in range(3)])
        with lock:
            results.extend(out)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, TooManyJobs)]
    assert len(made) == 5 and len(refused) == 7
    assert refused[0].field == "tenant" and "has 5 active jobs" in refused[0].message
    # another tenant is not counted; an idempotent retry of a job that exists is answered, not refused
    assert store.submit_many([_sub(1, "t2")]) == [("t2-j1", True)]
    store.max_active_jobs = None
    store.submit_many([_sub(99, key="k")])
    store.max_active_jobs = 6
    assert store.submit_many([_sub(100, key="k")]) == [("t1-j99", False)]
    # a job that ends frees its place
    assert isinstance(store.submit_many([_sub(101)])[0], TooManyJobs)
    store.cancel(made[0][0], 0.0)
    assert store.get_job(made[0][0]).state == JobState.CANCELLED.value
    assert store.submit_many([_sub(101)]) == [("t1-j101", True)]

"""A job that is not preemptible is started once: without a node loss, a restart of the control plane, a
cancel or a failure, no round ever starts it a second time (issue 10: hostile-suite short jobs ran 2-3
times). Random pools, mixes of gangs, short and long jobs, tenants and priorities, across lease
boundaries, with the live defaults; grants pay the whole max_run_time of each job."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.core.types import Grant, Job, JobKind, Node, Program
from accelpool.executors.fake import FakeExecutor
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import Reconciler
from accelpool.storage.memory import MemoryStore

JOB = st.tuples(
    st.sampled_from([1, 1, 2, 4, 8]),  # devices
    st.sampled_from([3.0, 5.0, 20.0, 100.0, 700.0, 2000.0]),  # seconds of work
    st.integers(0, 3),  # tenant
    st.integers(-1, 1),  # priority
    st.booleans(),  # inference
    st.floats(0.0, 900.0),  # submitted at
    st.booleans(),  # with a max_run_time
)


@settings(max_examples=20, deadline=None)
@given(
    jobs=st.lists(JOB, min_size=1, max_size=25),
    policy=st.sampled_from(["max-min-fairness", "fair-share", "fifo", "finish-time-fairness"]),
    nodes=st.integers(1, 3),
)
def test_a_non_preemptible_job_is_started_once(jobs, policy, nodes) -> None:
    clock = VirtualClock()
    store = MemoryStore()
    store.add_nodes([Node(f"h-{i}", "h100", 8) for i in range(nodes)])
    store.set_prices({"h100": 1000})
    store.add_program(Program("p", "program", budget_krw=10**9))
    for t in range(4):
        store.add_grant(Grant(f"g{t}", "p", f"t{t}", amount_krw=10**7))
    ex = FakeExecutor(clock)
    rec = Reconciler(store, ex, clock, get_policy(policy), round_seconds=3.0, config=RoundConfig())
    pending = sorted(enumerate(jobs), key=lambda kv: kv[1][5])
    end = 2400.0
    while clock.now() < end:
        while pending and pending[0][1][5] <= clock.now():
            k, (scale, work, tenant, prio, infer, at, bounded) = pending.pop(0)
            job = Job(
                f"j{k}",
                tenant=f"t{tenant}",
                scale=scale,
                priority=prio,
                kind=JobKind.INFERENCE if infer else JobKind.TRAINING,
                total_steps=work,
                submit_time=at,
                grant=f"g{tenant}",
                max_run_seconds=4000.0 if bounded else None,
            )
            store.submit(job, {"h100": 1.0})
        rec.step()
        clock.sleep_until(clock.now() + 3.0)
    launched = Counter(launch.job.id for launch in ex.launches)
    assert [j for j, n in launched.items() if n > 1] == []
    assert all(r.preemptions == 0 for r in store.jobs.values())

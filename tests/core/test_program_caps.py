"""A program's per-tenant cap binds only the jobs the tenant charges to that program's grants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from accelpool.core.allocation import check_feasible
from accelpool.core.policies import POLICIES
from accelpool.core.problem import build_problem
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Grant, Job, Program, ProgramRules

CAPPED = Program("A", "capped", budget_krw=10**9, rules=ProgramRules(tenant_caps={"h100": 2}))
OPEN = Program("B", "uncapped", budget_krw=10**9)
GRANTS = (Grant("ga", "A", "lab", 10**8), Grant("gb", "B", "lab", 10**8), Grant("ga2", "A", "lab", 10**8))


def problem(jobs: list[Job]):
    tput = ThroughputMatrix.from_rows({j.id: {"h100": 1.0} for j in jobs}, ("h100",))
    return build_problem(jobs, {"h100": 8}, tput, programs=(CAPPED, OPEN), grants=GRANTS)


def test_cap_of_program_a_does_not_limit_jobs_charged_to_program_b() -> None:
    jobs = [Job(f"b{k}", tenant="lab", grant="gb", submit_time=k) for k in range(4)]
    jobs += [Job(f"a{k}", tenant="lab", grant="ga", submit_time=10 + k) for k in range(4)]
    p = problem(jobs)
    assert p.cap_index.tolist() == [-1] * 4 + [0] * 4
    assert p.cap_limit.tolist() == [[2.0]]
    for name in POLICIES:
        alloc = POLICIES[name](p)
        assert check_feasible(p, alloc) == []
        used = alloc.x.sum(axis=1)
        assert used[:4].sum() > 2 + 1e-6 or name == "min-cost"  # B's jobs are not held to A's cap
        assert used[4:].sum() <= 2 + 1e-6  # A's jobs share A's cap (2 devices)


def test_grants_of_one_program_share_the_cap() -> None:
    jobs = [Job("x", tenant="lab", grant="ga"), Job("y", tenant="lab", grant="ga2", submit_time=1)]
    jobs.append(Job("z", tenant="lab", grant="ga", submit_time=2))
    p = problem(jobs)
    assert len(set(p.cap_index.tolist())) == 1
    alloc = POLICIES["fifo"](p)
    assert alloc.x.sum() <= 2 + 1e-9
    assert check_feasible(p, alloc) == []


@settings(max_examples=40, deadline=None)
@given(
    charged=st.lists(st.sampled_from(["ga", "gb", "ga2", None]), min_size=1, max_size=10),
    tenants=st.lists(st.sampled_from(["lab", "other"]), min_size=10, max_size=10),
    policy=st.sampled_from(sorted(POLICIES)),
)
def test_each_tenant_holds_at_most_the_cap_under_a_capped_program(
    charged: list[str | None], tenants: list[str], policy: str
) -> None:
    grants = GRANTS + (Grant("oa", "A", "other", 10**8),)
    jobs = []
    for k, g in enumerate(charged):
        tenant = tenants[k]
        if g is not None and tenant == "other":
            g = "oa" if g.startswith("ga") else None
        jobs.append(Job(f"j{k}", tenant=tenant, grant=g, submit_time=float(k)))
    tput = ThroughputMatrix.from_rows({j.id: {"h100": 1.0 + k} for k, j in enumerate(jobs)}, ("h100",))
    p = build_problem(jobs, {"h100": 8}, tput, programs=(CAPPED, OPEN), grants=grants)
    alloc = POLICIES[policy](p)
    assert check_feasible(p, alloc) == []
    under_a = {t: 0.0 for t in ("lab", "other")}
    outside = 0.0
    for k, j in enumerate(jobs):
        if j.grant in ("ga", "ga2", "oa"):
            under_a[j.tenant] += float(alloc.x[k].sum())
        else:
            outside += float(alloc.x[k].sum())
    assert all(v <= 2 + 1e-6 for v in under_a.values())
    # uncapped work is limited by capacity only: with enough of it, the pool is not left idle by A's cap
    n_out = sum(1 for j in jobs if j.grant not in ("ga", "ga2", "oa"))
    if policy in ("fifo", "fair-share", "max-min-fairness", "max-throughput"):
        assert outside >= min(n_out, 8 - sum(under_a.values())) - 1e-6

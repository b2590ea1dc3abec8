"""The round's work-conserving steps (back-fill, move-up, core/backfill.py) hold every program rule and
pay a faster type only as the job's ``faster_type`` allows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.backfill import LENT, rule_clause
from accelpool.core.policies import POLICIES
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import JobStatus, Placement, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Grant, Job, JobState, Node, Program, ProgramRules, Tenant, WaitReason
from accelpool.web.reasons import untranslated

CAPPED = Program("A", "capped", budget_krw=10**9, rules=ProgramRules(tenant_caps={"h100": 2}))
GA = (Grant("ga", "A", "lab", 10**8),)


def snap(jobs, rows, nodes, **kw) -> Snapshot:
    types = tuple(sorted({t for r in rows.values() for t in r}))
    tput = ThroughputMatrix.from_rows(rows, types)
    statuses = tuple(JobStatus(j, JobState.QUEUED) for j in jobs)
    return Snapshot(3600.0, tuple(nodes), statuses, tput, round_seconds=360.0, **kw)


def placed(d) -> dict[str, str]:
    return {p.job: p.accelerator for p in d.placements()}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_round_never_places_more_than_a_tenant_cap(policy):
    # 4 one-device jobs of "lab" under a cap of 2 h100 on 8 free h100: the time-sharing policies give each
    # half of a device; the round used to start all four (4 devices held against a cap of 2)
    jobs = [Job(f"a{k}", tenant="lab", grant="ga", submit_time=k) for k in range(4)]
    s = snap(
        jobs, {j.id: {"h100": 1.0} for j in jobs}, [Node("h-0", "h100", 8)], programs=(CAPPED,), grants=GA
    )
    for config in (RoundConfig(), RoundConfig.per_round()):
        d = decide(s, POLICIES[policy], config=config)
        assert len(d.placements()) == 2
        assert set(d.waiting.values()) == {WaitReason.QUOTA}  # "its tenant's quota or cap ... is in use"
    tick = decide(dataclasses.replace(s, lease_boundary=False), POLICIES[policy])
    assert len(tick.placements()) == 2  # a tick's back-fill holds it too


def test_move_up_never_breaks_a_cap_on_the_faster_type():
    # cap 1 on the fast type a: one job there, the other stays on b (it used to move up to a as well)
    capped = Program("A", "capped", budget_krw=10**9, rules=ProgramRules(tenant_caps={"a": 1}))
    jobs = [Job(f"a{k}", tenant="lab", grant="ga", submit_time=k, faster_type="any") for k in range(2)]
    rows = {j.id: {"a": 2.0, "b": 1.0} for j in jobs}
    s = snap(jobs, rows, [Node("a-0", "a", 4), Node("b-0", "b", 4)], programs=(capped,), grants=GA)
    for policy in ("max-min-fairness", "max-throughput", "finish-time-fairness"):
        assert sorted(placed(decide(s, POLICIES[policy])).values()) == ["a", "b"]


def test_the_back_fill_keeps_the_public_reserve():
    # half of the 4 h100 are kept for the public program's job (public demand 2): private jobs of another
    # program, first in fair order (the public job's priority is lower), are back-filled on 2 devices at
    # most (they used to take all 4, and the public job waited)
    public = Program("P", "public", budget_krw=10**9, rules=ProgramRules(public_share={"*": 0.5}))
    grants = (Grant("gp", "P", "gov", 10**8), Grant("gb", "B", "lab", 10**8))
    other = Program("B", "private", budget_krw=10**9)
    jobs = [Job("pub", tenant="gov", grant="gp", public=True, scale=2, priority=-1)]
    jobs += [Job(f"q{k}", tenant="lab", grant="gb", submit_time=k) for k in range(4)]
    rows = {j.id: {"h100": 1.0} for j in jobs}
    s = snap(jobs, rows, [Node("h-0", "h100", 4)], programs=(public, other), grants=grants)

    def nothing(problem: AllocationProblem) -> Allocation:
        return Allocation(problem.job_ids, problem.types, np.zeros((problem.n_jobs, problem.n_types)), "none")

    d = decide(s, nothing)
    private = [j for j in placed(d) if j.startswith("q")]
    assert len(private) == 2 and "pub" in placed(d)
    assert {d.waiting[f"q{k}"] for k in range(2, 4)} == {WaitReason.RULE}
    text = d.details["q2"]
    assert text.endswith("the free h100 devices are kept for public-program jobs (public reserve)")
    assert untranslated(text) == []


def only_b(problem: AllocationProblem) -> Allocation:
    x = np.zeros((problem.n_jobs, problem.n_types))
    x[problem.job_ids.index("up"), problem.types.index("b")] = 1.0
    return Allocation(problem.job_ids, problem.types, x, "fixed")


def priced(faster: str, price_a: int, grant_krw: int = 10**8, *, prices: bool = True):
    # "up" runs twice as fast on a; b costs 1,000 KRW per device-hour
    jobs = [Job("up", tenant="lab", grant="g", faster_type=faster)]
    grants = (Grant("g", "P", "lab", grant_krw),)
    program = Program("P", "p", budget_krw=10**9)
    pay = {"a": price_a, "b": 1000} if prices else {}
    return snap(
        jobs,
        {"up": {"a": 2.0, "b": 1.0}},
        [Node("a-0", "a", 1), Node("b-0", "b", 1)],
        programs=(program,),
        grants=grants,
        prices_krw_per_hour=pay,
        tenants=(Tenant("lab"),),
    )


@pytest.mark.parametrize(
    ("faster", "price_a", "want"),
    [
        ("cost-neutral", 3000, "b"),  # a: 1,500 KRW per step-hour unit against 1,000 on b: dearer, stays
        ("cost-neutral", 2000, "a"),  # the same KRW per step: it moves
        ("cost-neutral", 1500, "a"),  # cheaper per step
        ("any", 3000, "a"),
        ("never", 1500, "b"),  # even cheaper: the tenant said never
    ],
)
def test_move_up_pays_a_faster_type_only_as_the_job_allows(faster, price_a, want):
    assert placed(decide(priced(faster, price_a), only_b)) == {"up": want}


def test_without_prices_the_default_moves_up_as_before():
    assert placed(decide(priced("cost-neutral", 0, prices=False), only_b)) == {"up": "a"}
    assert placed(decide(priced("never", 0, prices=False), only_b)) == {"up": "b"}


def test_move_up_checks_the_grant_at_the_faster_types_price():
    # the grant pays a lease (360 s) on b (100 KRW) but not on a (300 KRW): with "any" it stays on b
    assert placed(decide(priced("any", 3000, grant_krw=200), only_b)) == {"up": "b"}


def nothing_for_up(problem: AllocationProblem) -> Allocation:
    return Allocation(problem.job_ids, problem.types, np.zeros((problem.n_jobs, problem.n_types)), "none")


@pytest.mark.parametrize(("faster", "want"), [("cost-neutral", {}), ("any", {"up": "a"}), ("never", {})])
def test_the_back_fill_puts_a_job_on_a_dearer_faster_type_only_as_it_allows(faster, want):
    # only a is free (b is held by a running job); the policy gave "up" nothing: its reference is its
    # cheapest type per step, b (1,000 against 1,500 on a)
    s = priced(faster, 3000)
    blocker = JobStatus(
        Job("hold", tenant="lab"),
        JobState.RUNNING,
        placement=Placement("hold", "b", (("b-0", (0,)),)),
    )
    tput = ThroughputMatrix.from_rows({"up": {"a": 2.0, "b": 1.0}, "hold": {"b": 1.0}}, ("a", "b"))
    s = dataclasses.replace(s, jobs=(*s.jobs, blocker), throughput=tput, lease_boundary=False)
    d = decide(s, nothing_for_up)
    got = placed(d)
    got.pop("hold", None)
    assert got == want
    if not want:  # what the tenant reads: why it waits while a faster type idles (in Korean too)
        clause = {
            "cost-neutral": "a has free devices but costs more per step than its faster_type (cost-neutral) allows",
            "never": "a has free devices, faster than the type chosen for it, but its faster_type is never",
        }[faster]
        assert d.details["up"].endswith(clause) and untranslated(d.details["up"]) == []


def test_a_bad_faster_type_is_refused():
    with pytest.raises(ValueError, match="faster_type"):
        Job("x", faster_type="sometimes")


@pytest.mark.parametrize("policy", ["fair-share", "max-min-fairness", "finish-time-fairness"])
def test_a_round_keeps_a_tenants_quota_for_it(policy):
    # Q is guaranteed 2 of the 4 h100 and has 2 jobs; O's 4 jobs have a higher priority field and each
    # got half a device from the policy: they used to take all 4 (Q waited for "priority")
    jobs = [Job(f"q{k}", tenant="Q", submit_time=k) for k in range(2)]
    jobs += [Job(f"o{k}", tenant="O", priority=5, submit_time=k) for k in range(4)]
    tenants = (Tenant("Q", quota={"h100": 2}), Tenant("O"))
    s = snap(jobs, {j.id: {"h100": 1.0} for j in jobs}, [Node("h-0", "h100", 4)], tenants=tenants)
    d = decide(s, POLICIES[policy])
    assert sorted(placed(d)) == ["o0", "o1", "q0", "q1"]
    assert d.waiting == {"o2": WaitReason.QUOTA, "o3": WaitReason.QUOTA}
    text = d.details["o2"]  # O has no quota of its own: the words say whose quota it is
    assert (
        text == "quota: needs 1 x h100; the free h100 devices are guaranteed to other tenants (their quota)"
    )
    assert untranslated(text) == []


def test_a_job_held_for_another_tenants_quota_says_so():
    # fifo holds o0 (first in the queue, 2 devices) at zero: of the 2 h100, P's quota keeps one for p0.
    # The words were "its tenant's quota or cap on h100 is in use", and O has no quota at all
    jobs = [Job("o0", tenant="O", scale=2, submit_time=0), Job("p0", tenant="P", submit_time=1)]
    tenants = (Tenant("P", quota={"h100": 2}), Tenant("O"))
    s = snap(jobs, {j.id: {"h100": 1.0} for j in jobs}, [Node("h-0", "h100", 2)], tenants=tenants)
    d = decide(s, POLICIES["fifo"])
    assert d.allocation.held == {"o0": WaitReason.QUOTA} and placed(d) == {"p0": "h100"}
    text = d.details["o0"]
    assert (
        text
        == "quota: needs 2 x h100; the h100 devices it could use are guaranteed to other tenants (their quota)"
    )
    assert untranslated(text) == []


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_quota_owner_with_demand_gets_its_quota_under_every_policy(policy: str) -> None:
    # P and O are each guaranteed 1 of the 2 h100; P asks for 3, O for 1. min-cost's LP gives jobs without
    # a deadline nothing, and its spare-capacity fill lent O's idle reservation to P: P held both devices
    # and o0 waited for "capacity" (fill_spare now fills reservations before it lends them)
    jobs = [Job(f"p{k}", tenant="P", submit_time=k) for k in range(3)] + [
        Job("o0", tenant="O", submit_time=3)
    ]
    tenants = (Tenant("P", quota={"h100": 1}), Tenant("O", quota={"h100": 1}))
    s = snap(jobs, {j.id: {"h100": 1.0} for j in jobs}, [Node("h-0", "h100", 2)], tenants=tenants)
    got = placed(decide(s, POLICIES[policy]))
    assert "o0" in got and len(got) == 2, got


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_job_waiting_for_its_grant_keeps_the_budget_words(policy: str) -> None:
    # c's grant cannot pay for b200 (where it runs fastest) and lab's cap under A keeps it off h100: the
    # budget words say what the tenant can act on (the money left); the cap clause replaced them
    capped = Program("A", "capped", budget_krw=10**9, rules=ProgramRules(tenant_caps={"h100": 2}))
    grants = (Grant("ga", "A", "lab", 10**8), Grant("gc", "A", "lab", 5000))
    jobs = [Job(f"a{k}", tenant="lab", grant="ga", submit_time=k) for k in range(2)]
    jobs.append(Job("c", tenant="lab", grant="gc", submit_time=5, faster_type="any"))
    rows = {j.id: {"h100": 1.0, "b200": 0.5} for j in jobs[:2]}
    rows["c"] = {"h100": 1.0, "b200": 3.0}
    s = snap(
        jobs,
        rows,
        [Node("h-0", "h100", 8), Node("b-0", "b200", 8)],
        programs=(capped,),
        grants=grants,
        prices_krw_per_hour={"h100": 10**4, "b200": 10**6},
    )
    d = decide(dataclasses.replace(s, lease_boundary=False), POLICIES[policy])
    if policy == "fifo":  # fifo starts c on h100 (a0, a1 took b200, in queue order): nothing to say
        assert "c" not in d.waiting
        return
    assert d.waiting["c"] is WaitReason.BUDGET
    assert d.details["c"].startswith("budget: needs 1 x b200; grant gc has 5000 KRW left"), d.details["c"]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_job_kept_out_by_its_own_cap_names_the_cap(policy):
    # the four jobs of the first test: two wait for lab's cap under program A, held by the policy or refused
    # by the back-fill; the words named "quota or cap" (lab has no quota)
    jobs = [Job(f"a{k}", tenant="lab", grant="ga", submit_time=k) for k in range(4)]
    s = snap(
        jobs, {j.id: {"h100": 1.0} for j in jobs}, [Node("h-0", "h100", 8)], programs=(CAPPED,), grants=GA
    )
    d = decide(s, POLICIES[policy])
    assert len(d.waiting) == 2
    for jid in d.waiting:
        assert d.details[jid] == "quota: needs 1 x h100; its tenant's cap on h100 under its program is in use"
        assert untranslated(d.details[jid]) == []


def test_every_rule_clause_reads_in_korean():
    for free in (True, False):
        for kind in ("lent", "reserve", "cap", "quota"):
            clause = rule_clause("h100", kind, free).lstrip(LENT)
            assert untranslated(f"quota: needs 2 x h100; {clause}") == [], clause


@settings(max_examples=40, deadline=None)
@given(
    tenants=st.lists(st.sampled_from(["lab", "gov", "uni"]), min_size=1, max_size=9),
    scales=st.lists(st.integers(1, 3), min_size=9, max_size=9),
    cap=st.integers(1, 4),
    share=st.sampled_from([0.0, 0.25, 0.5]),
    policy=st.sampled_from(sorted(POLICIES)),
    per_round=st.booleans(),
)
def test_no_round_places_past_a_cap_or_the_public_reserve(tenants, scales, cap, share, policy, per_round):
    # every job charged to program A (a cap of ``cap`` per tenant on each type); "gov" jobs are public and
    # a public share of the devices is kept for them; two types, the fast one dearer
    rules = ProgramRules(tenant_caps={"*": cap}, public_share={"*": share} if share else {})
    program = Program("A", "a", budget_krw=10**12, rules=rules)
    grants = tuple(Grant(f"g-{t}", "A", t, 10**10) for t in ("lab", "gov", "uni"))
    jobs = [
        Job(
            f"j{k}",
            tenant=t,
            grant=f"g-{t}",
            scale=scales[k],
            public=t == "gov",
            submit_time=float(k),
            faster_type="any",
        )
        for k, t in enumerate(tenants)
    ]
    rows = {j.id: {"a": 2.0, "b": 1.0} for j in jobs}
    s = snap(
        jobs,
        rows,
        [Node("a-0", "a", 4), Node("b-0", "b", 4)],
        programs=(program,),
        grants=grants,
        prices_krw_per_hour={"a": 3000, "b": 1000},
    )
    d = decide(s, POLICIES[policy], config=RoundConfig.per_round() if per_round else RoundConfig())
    by_job = {j.id: j for j in jobs}
    held: dict[tuple[str, str], int] = {}
    private: dict[str, int] = {}
    public_demand = sum(j.scale for j in jobs if j.public)
    for p in d.placements():
        j = by_job[p.job]
        held[j.tenant, p.accelerator] = held.get((j.tenant, p.accelerator), 0) + j.scale
        if not j.public:
            private[p.accelerator] = private.get(p.accelerator, 0) + j.scale
    assert all(n <= cap for n in held.values()), held
    for t, n in private.items():
        reserve = min(int(share * 4), public_demand)
        assert n <= 4 - reserve, (t, n, reserve)

"""Sites in the policies' problem (core.sites.site_columns): a column per (site, type) where a type is held at
several sites, with that site's devices, price and the jobs it may take; the allocation summed back per type
and placement following the sites the policy chose."""

from __future__ import annotations

import numpy as np
import pytest

from accelpool.core.allocation import Allocation, AllocationProblem, check_feasible
from accelpool.core.policies import POLICIES, RULES_OVER_SITES
from accelpool.core.policies._rules import build_rows
from accelpool.core.problem import build_problem
from accelpool.core.rounds import JobStatus, Snapshot, decide
from accelpool.core.sites import site_columns, site_table, site_view, sites_allowing
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node, Site, Tenant
from accelpool.runtime.reconciler import ReusingPolicy

CHEAP = Site("cheap", data_classes=frozenset({"public", "financial"}), prices={"h100": 1000})
DEAR = Site("dear", data_classes=frozenset({"public"}), prices={"h100": 9000, "a100": 2000})
NODES = (
    Node("c0", "h100", 8, site="cheap"),
    Node("d0", "h100", 8, site="dear"),
    Node("d1", "a100", 8, site="dear"),
)


def _jobs() -> list[Job]:
    return [
        Job("pub", scale=8, submit_time=0.0),
        Job("fin", scale=8, data_class="financial", submit_time=1.0),
    ]


def _views(jobs, nodes=NODES, tenants=(), rules_span=False):
    sites = site_table((CHEAP, DEAR))
    cap: dict[str, int] = {}
    for n in nodes:
        cap[n.accelerator] = cap.get(n.accelerator, 0) + n.devices
    tput = ThroughputMatrix.from_rows({j.id: {"h100": 1.0, "a100": 0.5} for j in jobs}, ("h100", "a100"))
    prices = {"h100": 3000, "a100": 2500}
    problem = build_problem(jobs, cap, tput, tenants=tenants, prices_krw_per_hour=prices)
    allowed, _ = sites_allowing(jobs, sites)
    typed = site_view(problem, allowed, nodes, sites, prices)
    return typed, site_columns(typed, allowed, nodes, sites, prices, rules_span=rules_span)


def test_a_type_at_two_sites_becomes_one_column_per_site_with_its_devices_price_and_jobs() -> None:
    typed, wide = _views(_jobs())
    assert wide is not None
    p = wide.problem
    assert p.types == ("a100", "h100@cheap", "h100@dear")  # cheapest site first; a100 is at one site only
    assert p.capacity.tolist() == [8, 8, 8] and typed.capacity.tolist() == [8, 16]
    assert p.price_krw_per_hour.tolist() == [2000, 1000, 9000]  # each site's own price, for every job
    assert p.allowed.tolist() == [[True, True, True], [False, True, False]]  # fin: certified at cheap only


def test_one_site_or_types_at_one_site_each_leave_the_problem_as_it_was() -> None:
    one = (Node("c0", "h100", 8, site="cheap"), Node("c1", "h100", 8, site="cheap"))
    assert _views(_jobs(), one)[1] is None
    apart = (Node("c0", "h100", 8, site="cheap"), Node("d1", "a100", 8, site="dear"))
    assert _views(_jobs(), apart)[1] is None


def test_a_type_a_program_rule_binds_keeps_one_column_for_a_policy_that_reads_one_column_per_row() -> None:
    tenants = (Tenant("t", "t", quota={"h100": 4}),)
    jobs = [Job("pub", scale=8, tenant="t"), Job("fin", scale=8, data_class="financial", tenant="t")]
    _, wide = _views(jobs, tenants=tenants)
    assert wide is None  # rules_span=False: the quota's type is not split by site
    assert set(RULES_OVER_SITES) == set(POLICIES.values())  # every shipped policy reads rows over sites


def test_a_rule_bound_type_is_split_by_site_with_one_rule_row_over_its_sites() -> None:
    tenants = (Tenant("t", "t", quota={"h100": 4}),)
    jobs = [Job("pub", scale=8, tenant="t"), Job("fin", scale=8, data_class="financial", tenant="t")]
    typed, wide = _views(jobs, tenants=tenants, rules_span=True)
    assert wide is not None
    p = wide.problem
    assert p.types == ("a100", "h100@cheap", "h100@dear")
    assert p.price_krw_per_hour.tolist() == [2000, 1000, 9000]  # each site's own price
    assert p.capacity.tolist() == [8, 8, 8]
    assert p.column_group.tolist() == [0, 1, 1]
    rows = build_rows(p, p.usable())
    assert [k for k in rows.kind] == ["capacity"] * 3 + ["quota"]  # one quota row, not one per site
    assert rows.span is not None and rows.span[3].tolist() == [False, True, True]
    assert rows.pool_bound.tolist() == [16 - 4]  # the pool of the type over both sites


# A hand-made problem: h100 at two sites (8 devices each, 1,000 and 9,000 KRW/h) as one column group, and
# every program rule binding the type summed over the sites. Tenant a: 3 jobs of 4 devices (not public);
# tenant b: 2 public jobs of 4 devices, only allowed at the dear site.
def _grouped(rule: str) -> AllocationProblem:
    n = 5
    tenant = np.array([0, 0, 0, 1, 1])
    allowed = np.ones((n, 2), dtype=bool)
    allowed[3:, 0] = False
    extra: dict[str, object] = {}
    if rule == "reserve":
        extra = {
            "public": np.array([False, False, False, True, True]),
            "public_reserve": np.array([8.0, 8.0]),
        }
    elif rule == "tenant-cap":
        extra = {"tenant_cap": np.array([[4.0, 4.0], [np.inf, np.inf]])}
    elif rule == "program-cap":
        extra = {"cap_index": np.array([0, 0, 0, -1, -1]), "cap_limit": np.array([[4.0, 4.0]])}
    elif rule == "quota":
        extra = {"quota": np.array([[0.0, 0.0], [8.0, 8.0]])}
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=("h100@cheap", "h100@dear"),
        capacity=np.array([8.0, 8.0]),
        scale=np.full(n, 4.0),
        weight=np.ones(n),
        throughput=np.ones((n, 2)),
        allowed=allowed,
        tenant_ids=("a", "b"),
        tenant_index=tenant,
        price_krw_per_hour=np.array([1000, 9000]),
        submit_time=np.arange(n, dtype=np.float64),
        column_group=np.array([0, 0]),
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("rule", ["reserve", "tenant-cap", "program-cap"])
@pytest.mark.parametrize("name", sorted(n for n, p in POLICIES.items() if p in RULES_OVER_SITES))
def test_rule_rows_over_a_type_s_sites_bind_the_sum_over_its_sites(name: str, rule: str) -> None:
    problem = _grouped(rule)
    alloc = POLICIES[name](problem)
    assert check_feasible(problem, alloc) == []
    a_devices = float((alloc.x[:3] * 4.0).sum())  # tenant a over both sites
    limit = {"reserve": 8.0, "tenant-cap": 4.0, "program-cap": 4.0}[rule]
    assert a_devices <= limit + 1e-6, (alloc.x, a_devices)
    # each site's capacity on its own, and b's jobs only at the dear site
    assert ((alloc.x * 4.0).sum(axis=0) <= 8.0 + 1e-6).all()
    assert alloc.x[3:, 0].max() == 0.0
    if name == "max-throughput":  # the LP uses what the rule leaves: a up to its limit, b the dear site
        assert a_devices == pytest.approx(limit) and float((alloc.x[3:] * 4.0).sum()) == pytest.approx(8.0)


def test_a_quota_over_a_type_s_sites_reserves_the_sum_over_its_sites() -> None:
    """b's quota of 8 h100 (of 16 over two sites) is met at the dear site, the only one b may use; a borrows
    the rest of the pool, the cheap site's 8; the quota's pool is the type's, not one site's."""
    problem = _grouped("quota")
    alloc = POLICIES["max-throughput"](problem)
    assert check_feasible(problem, alloc) == []
    dev = alloc.x * 4.0
    assert dev[3:, 1].sum() == pytest.approx(8.0) and dev[:3, 0].sum() == pytest.approx(8.0)


def test_check_feasible_reads_a_rule_summed_over_a_type_s_sites() -> None:
    problem = _grouped("tenant-cap")
    x = np.zeros((5, 2))
    x[0, 0] = x[1, 1] = 1.0  # tenant a: 4 devices at each site, 8 > its cap of 4 over the type
    assert check_feasible(problem, Allocation(problem.job_ids, problem.types, x, "hand")) == [
        "a tenant cap is exceeded"
    ]
    x[1, 1] = 0.0
    assert check_feasible(problem, Allocation(problem.job_ids, problem.types, x, "hand")) == []


@pytest.mark.parametrize("policy_name", ["max-throughput", "max-min-fairness", "finish-time-fairness"])
@pytest.mark.parametrize("rules_span", [True, False])
def test_a_quota_bound_type_at_two_sites_places_each_gang_at_a_site_that_holds_it(
    rules_span: bool, policy_name: str
) -> None:
    """A quota binds h100 (two sites, 8 each). The financial gang may only run at the cheap site. Pooled
    (one column for the type: what the water-filling policies still see) the policy counted 16 devices
    for two 8-gangs and the older public job took the cheap site; with a column per site under the
    quota's row over both, both run, each at the site the policy chose."""
    policy = POLICIES[policy_name]
    name = policy_name if rules_span else "pooled"
    tenants = (Tenant("t", "t", quota={"h100": 4}), Tenant("u", "u"))
    jobs = [
        Job("pub", scale=8, submit_time=0.0, tenant="u"),
        Job("fin", scale=8, data_class="financial", submit_time=1.0, tenant="t"),
    ]
    snap = Snapshot(
        100.0,
        NODES[:2],
        tuple(JobStatus(j, JobState.QUEUED) for j in jobs),
        ThroughputMatrix.from_rows({j.id: {"h100": 1.0} for j in jobs}, ("h100",)),
        tenants=tenants,
        sites=(CHEAP, DEAR),
        prices_krw_per_hour={"h100": 3000},
        round_seconds=60.0,
    )
    if rules_span:
        # as the policy itself and as the live service and the simulator call it (wrapped: ReusingPolicy)
        for called in (policy, ReusingPolicy(policy)):
            d = decide(snap, called)
            assert {p.job: p.site for p in d.start} == {"fin": "cheap", "pub": "dear"}, (called, d.start)
    else:  # the same policy outside RULES_OVER_SITES sees one h100 column: the financial gang waits
        d = decide(snap, lambda p: policy(p))
        assert {p.job: p.site for p in d.start} == {"pub": "cheap"}, (name, d.start, d.waiting)


@pytest.mark.parametrize("name", ["max-min-fairness", "max-throughput", "finish-time-fairness"])
def test_two_gangs_that_need_different_sites_both_start(name: str) -> None:
    """Pooled per type the policy counted 16 h100 for two 8-gangs; the older public job took the cheap
    site and the financial job, certified only there, waited. With a column per site both run."""
    jobs = _jobs()
    snap = Snapshot(
        100.0,
        NODES[:2],
        tuple(JobStatus(j, JobState.QUEUED) for j in jobs),
        ThroughputMatrix.from_rows({j.id: {"h100": 1.0} for j in jobs}, ("h100",)),
        sites=(CHEAP, DEAR),
        prices_krw_per_hour={"h100": 3000},
        round_seconds=60.0,
    )
    d = decide(snap, POLICIES[name])
    assert {p.job: p.site for p in d.start} == {"fin": "cheap", "pub": "dear"}, (d.start, d.waiting)


def test_the_allocation_summed_per_type_is_feasible_for_the_typed_problem() -> None:
    typed, wide = _views(_jobs())
    assert wide is not None
    for policy in POLICIES.values():
        alloc, prefer = wide.collapse(policy(wide.problem), typed.types)
        assert check_feasible(typed, alloc) == [], policy
        assert all(site in ("cheap", "dear") for site in prefer.values())
        assert alloc.x[1, 0] == 0.0  # fin never on a100 (held only at dear)

"""Sites in the policies' problem (core.sites.site_columns): a column per (site, type) where a type is held at
several sites, with that site's devices, price and the jobs it may take; the allocation summed back per type
and placement following the sites the policy chose."""

from __future__ import annotations

import pytest

from accelpool.core.allocation import check_feasible
from accelpool.core.policies import POLICIES
from accelpool.core.problem import build_problem
from accelpool.core.rounds import JobStatus, Snapshot, decide
from accelpool.core.sites import site_columns, site_table, site_view, sites_allowing
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node, Site, Tenant

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


def _views(jobs, nodes=NODES, tenants=()):
    sites = site_table((CHEAP, DEAR))
    cap: dict[str, int] = {}
    for n in nodes:
        cap[n.accelerator] = cap.get(n.accelerator, 0) + n.devices
    tput = ThroughputMatrix.from_rows({j.id: {"h100": 1.0, "a100": 0.5} for j in jobs}, ("h100", "a100"))
    prices = {"h100": 3000, "a100": 2500}
    problem = build_problem(jobs, cap, tput, tenants=tenants, prices_krw_per_hour=prices)
    allowed, _ = sites_allowing(jobs, sites)
    typed = site_view(problem, allowed, nodes, sites, prices)
    return typed, site_columns(typed, allowed, nodes, sites, prices)


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


def test_a_type_a_program_rule_binds_keeps_one_column_across_its_sites() -> None:
    tenants = (Tenant("t", "t", quota={"h100": 4}),)
    jobs = [Job("pub", scale=8, tenant="t"), Job("fin", scale=8, data_class="financial", tenant="t")]
    _, wide = _views(jobs, tenants=tenants)
    assert wide is None  # the quota is a row over all h100: not split by site


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

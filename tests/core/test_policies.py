"""Policies: feasibility, rules, Pareto efficiency, determinism, agreement with a plain LP."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import problem_of

from accelpool.core.allocation import AllocationProblem, check_feasible
from accelpool.core.errors import InputError
from accelpool.core.policies import POLICIES, get_policy
from accelpool.core.policies._seam import build_rows, usable_mask
from accelpool.core.policies.max_min_fairness import exact_level, max_min_fairness, stage_level
from accelpool.core.types import WaitReason

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


make = problem_of  # (tput, cap, scale=None, *, allowed=None, **fields): tests/helpers.py


@st.composite
def problems(draw, rules: bool = False):
    n = draw(st.integers(1, 12))
    t = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    tput = rng.uniform(0.1, 10, (n, t)) * (rng.uniform(size=(n, t)) < 0.85)
    tput[:, 0] = np.maximum(tput[:, 0], 0.05)
    cap = rng.integers(1, 12, t).astype(float)
    scale = rng.choice([1, 2, 4], n).astype(float)
    kw = {"weight": rng.uniform(0.5, 2.0, n)}
    if rules:
        g = int(rng.integers(1, 4))
        kw.update(
            tenant_ids=tuple(f"g{i}" for i in range(g)),
            tenant_index=rng.integers(0, g, n),
            tenant_weight=np.ones(g),
            quota=rng.integers(0, 4, (g, t)).astype(float),
            tenant_cap=np.where(rng.uniform(size=(g, t)) < 0.5, rng.integers(1, 8, (g, t)), np.inf),
            cap_index=rng.integers(-1, 2, n),  # two (tenant, program) cap groups, some jobs in none
            cap_limit=np.where(rng.uniform(size=(2, t)) < 0.6, rng.integers(1, 8, (2, t)), np.inf),
            public=rng.uniform(size=n) < 0.3,
            public_reserve=np.floor(cap * 0.3),
            price_krw_per_hour=rng.integers(0, 5000, t),
            budget_krw=np.where(rng.uniform(size=n) < 0.3, rng.integers(0, 20000, n), -1),
            remaining_steps=rng.uniform(100, 10000, n),
            time_to_deadline=np.where(rng.uniform(size=n) < 0.5, rng.uniform(60, 3600, n), np.inf),
        )
    return make(tput, cap, scale, **kw)


@pytest.mark.parametrize("name", list(POLICIES))
@SETTINGS
@given(problem=problems(rules=True))
def test_every_policy_is_feasible_under_rules_and_deterministic(name, problem):
    policy = get_policy(name)
    alloc = policy(problem)
    assert check_feasible(problem, alloc) == []
    usable = usable_mask(problem)
    assert not np.any((alloc.x > 1e-9) & ~usable), "runs where not usable (rule or budget)"
    # quotas: tenants' use beyond their reservation fits the shared pool
    rows = build_rows(problem, usable)
    use = np.array(
        [
            (alloc.x[rows.member[r], rows.type_of[r]] * problem.scale[rows.member[r]]).sum()
            for r in range(rows.n_rows)
        ]
    )
    over = np.maximum(use - rows.bound, 0)
    unused = np.maximum(rows.bound - use, 0)  # reserved by an owner who does not use it: lendable
    for r in range(rows.n_rows):
        if rows.pool_of[r] < 0:
            assert use[r] <= rows.bound[r] + 1e-6
    for q in range(len(rows.pool_bound)):
        in_q = rows.pool_of == q
        assert over[in_q].sum() <= rows.pool_bound[q] + unused[in_q].sum() + 1e-6
    again = policy(problem)
    assert np.array_equal(alloc.x, again.x)
    for j, jid in enumerate(problem.job_ids):
        if alloc.x[j].sum() <= 1e-9:
            assert jid in alloc.held


def min_normalized(problem, alloc):
    """The issue's objective: min over runnable jobs of eff_j / (w_j * max_t tput[j, t]) (usable types)."""
    usable = usable_mask(problem)
    best = np.where(usable, problem.throughput, 0).max(axis=1)
    eff = (alloc.x * problem.throughput).sum(axis=1)
    run = best > 0
    return float((eff[run] / (problem.weight[run] * best[run])).min()) if run.any() else 0.0


def test_objective_is_min_normalized_throughput_not_the_per_device_level():
    # one 4-device job alone on 4 devices: normalized throughput 1, per-device level 4
    p = make([[2.0]], [4], [4])
    alloc = max_min_fairness(p)
    assert alloc.objective == pytest.approx(1.0)
    assert stage_level(p, alloc.x) == pytest.approx(4.0)


@SETTINGS
@given(problem=problems())
def test_max_min_matches_plain_lp_and_is_pareto_efficient(problem):
    alloc = max_min_fairness(problem)
    assert check_feasible(problem, alloc) == []
    assert stage_level(problem, alloc.x) == pytest.approx(exact_level(problem), rel=1e-6, abs=1e-9)
    assert alloc.objective == pytest.approx(min_normalized(problem, alloc), abs=1e-12)
    assert alloc.objective <= 1 / problem.weight.min() + 1e-9
    used = (alloc.x * problem.scale[:, None]).sum(axis=0)
    spare = problem.capacity - used
    slack = alloc.x.sum(axis=1) < 1 - 1e-6
    usable = usable_mask(problem)
    for t in range(problem.n_types):
        wanting = usable[:, t] & slack & (problem.scale <= spare[t] + 1e-9)
        assert spare[t] < 1e-6 or not wanting.any(), f"type {t} idles while a job could use it"


def test_large_problem_uses_column_generation_and_matches_exact_level():
    rng = np.random.default_rng(7)
    n, t = 1500, 6
    tput = rng.uniform(0.1, 10, (n, t))
    p = make(tput, np.full(t, 300.0), rng.choice([1, 2, 4], n))
    alloc = max_min_fairness(p)
    assert check_feasible(p, alloc) == []
    assert stage_level(p, alloc.x) == pytest.approx(exact_level(p), rel=1e-6)


def test_gavel_example_fast_job_gets_the_v100():
    # job 0 is 10x faster on v100 than on k80; job 1 is equally fast on both: one device each
    p = make([[10.0, 1.0], [1.0, 1.0]], [1, 1])
    alloc = max_min_fairness(p)
    assert alloc.x[0, 0] == pytest.approx(1.0)
    assert alloc.x[1, 1] == pytest.approx(1.0)
    agnostic = get_policy("fair-share")(p)
    assert check_feasible(p, agnostic) == []


def test_water_filling_raises_jobs_beyond_the_bottleneck():
    # j0 and j1 share t0 (1 device); j2 alone on t1 (4 devices) should get its whole time
    p = make([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [1, 4])
    alloc = max_min_fairness(p)
    assert alloc.objective == pytest.approx(0.5)
    assert alloc.x[2, 1] == pytest.approx(1.0)


def test_domestic_only_and_caps_and_reserve_hold():
    tput = np.array([[5.0, 1.0], [5.0, 1.0], [5.0, 1.0]])
    allowed = np.array([[False, True], [True, True], [True, True]])  # j0 domestic-only (t1 domestic)
    p = make(
        tput,
        [8, 8],
        [4, 4, 4],
        allowed=allowed,
        tenant_ids=("a",),
        tenant_index=np.zeros(3, int),
        tenant_weight=np.ones(1),
        tenant_cap=np.array([[4.0, 8.0]]),
        public=np.array([True, False, False]),
        public_reserve=np.array([0.0, 4.0]),
    )
    for name in POLICIES:
        alloc = get_policy(name)(p)
        assert check_feasible(p, alloc) == [], name
        assert alloc.x[0, 0] == 0.0
        assert (alloc.x[:, 0] * 4).sum() <= 4 + 1e-6


def test_quota_reclaims_from_borrowers():
    # tenant a has quota 4 of 8 devices; b alone would take all 8, but a's job wants 4
    tput = np.ones((3, 1))
    p = make(
        tput,
        [8],
        [4, 4, 4],
        tenant_ids=("a", "b"),
        tenant_index=np.array([0, 1, 1]),
        tenant_weight=np.ones(2),
        quota=np.array([[4.0], [0.0]]),
    )
    for name in ("fifo", "max-min-fairness", "max-throughput"):
        alloc = get_policy(name)(p)
        assert alloc.x[0, 0] == pytest.approx(1.0), name


def test_min_cost_meets_deadline_cheaply_and_holds_unpaid_jobs():
    tput = np.array([[2.0, 1.0], [2.0, 1.0]])
    p = make(
        tput,
        [4, 4],
        price_krw_per_hour=np.array([6000, 1000]),
        remaining_steps=np.array([360.0, 360.0]),
        time_to_deadline=np.array([360.0, 360.0]),
        budget_krw=np.array([-1, 0]),
    )
    alloc = get_policy("min-cost")(p)
    assert alloc.x[0, 1] == pytest.approx(1.0)  # 1 step/s on the cheap type suffices
    assert alloc.x[1].sum() == 0.0
    assert alloc.held["j1"] == WaitReason.BUDGET


def test_fifo_is_priority_then_submit_order():
    p = make(
        np.ones((3, 1)), [2], [2, 2, 2], priority=np.array([0, 5, 0]), submit_time=np.array([1.0, 9.0, 0.0])
    )
    alloc = get_policy("fifo")(p)
    assert alloc.x[:, 0].tolist() == [0.0, 1.0, 0.0]
    assert alloc.held["j0"] == WaitReason.CAPACITY


def test_fifo_keeps_running_jobs_where_they_run():
    """A running job keeps its type (keep_type), even when a job ahead of it in the queue waits."""
    p = make(
        np.ones((3, 2)),
        [2, 2],
        [2, 2, 2],
        submit_time=np.array([0.0, 5.0, 9.0]),
        keep_type=np.array([-1, 1, 0]),
    )
    alloc = get_policy("fifo")(p)
    assert alloc.x.tolist() == [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    assert alloc.held["j0"] == WaitReason.CAPACITY


def test_fifo_head_of_line_blocks_later_jobs():
    """Without estimated ends (no total steps) no back-fill on the head's type: a later 1-device job waits
    though 1 device is free."""
    p = make(
        np.ones((3, 1)),
        [3],
        [2, 2, 1],
        submit_time=np.array([0.0, 1.0, 2.0]),
        keep_type=np.array([0, -1, -1]),
    )
    alloc = get_policy("fifo")(p)
    assert alloc.x[:, 0].tolist() == [1.0, 0.0, 0.0]
    assert alloc.held["j1"] == WaitReason.CAPACITY
    assert alloc.held["j2"] == WaitReason.CAPACITY


def test_fifo_job_kept_out_by_its_tenant_cap_does_not_block():
    """A job its own tenant's cap keeps out (devices free) is passed over; the next job starts."""
    p = make(
        np.ones((3, 1)),
        [4],
        [2, 2, 2],
        submit_time=np.array([0.0, 1.0, 2.0]),
        tenant_ids=("a", "b"),
        tenant_index=np.array([0, 0, 1]),
        tenant_weight=np.ones(2),
        tenant_cap=np.array([[2.0], [4.0]]),
        keep_type=np.array([0, -1, -1]),
    )
    alloc = get_policy("fifo")(p)
    assert alloc.x[:, 0].tolist() == [1.0, 0.0, 1.0]


def test_fifo_stops_a_running_job_only_for_a_rule():
    """A running borrower of tenant a's idle quota is reclaimed when a's job comes back (an operator rule)."""
    p = make(
        np.ones((2, 1)),
        [4],
        [4, 4],
        submit_time=np.array([5.0, 0.0]),
        tenant_ids=("a", "b"),
        tenant_index=np.array([0, 1]),
        tenant_weight=np.ones(2),
        quota=np.array([[4.0], [0.0]]),
        keep_type=np.array([-1, 0]),
    )
    alloc = get_policy("fifo")(p)
    assert alloc.x[:, 0].tolist() == [1.0, 0.0]


def test_unknown_policy_suggests():
    with pytest.raises(InputError, match="did you mean 'fair-share'"):
        get_policy("fairshare")


def test_empty_problem():
    p = make(np.zeros((0, 2)), [1, 1])
    for name in POLICIES:
        assert get_policy(name)(p).x.shape == (0, 2)


@st.composite
def quota_problems(draw):
    """Tenants with quotas (often oversubscribed), no caps or reserve: only capacity and quotas bind."""
    n = draw(st.integers(2, 12))
    t = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    tput = rng.uniform(0.1, 10, (n, t)) * (rng.uniform(size=(n, t)) < 0.8)
    tput[:, 0] = np.maximum(tput[:, 0], 0.05)
    g = int(rng.integers(2, 4))
    cap = rng.integers(1, 12, t).astype(float)
    return make(
        tput,
        cap,
        rng.choice([1, 2, 4], n).astype(float),
        weight=rng.uniform(0.5, 2.0, n),
        tenant_ids=tuple(f"g{i}" for i in range(g)),
        tenant_index=rng.integers(0, g, n),
        tenant_weight=np.ones(g),
        quota=rng.integers(0, 10, (g, t)).astype(float),
    )


@pytest.mark.parametrize(
    "name", ["fifo", "fair-share", "max-min-fairness", "finish-time-fairness", "max-throughput"]
)
@SETTINGS
@given(problem=quota_problems())
def test_quotas_are_work_conserving(name, problem):
    """No type idles while a job that may use it has time to spare, even with quotas reserved."""
    alloc = get_policy(name)(problem)
    assert check_feasible(problem, alloc) == []
    usable = usable_mask(problem)
    spare = problem.capacity - (alloc.x * problem.scale[:, None]).sum(axis=0)
    if name == "fifo":
        # whole jobs, head-of-line blocking: a waiting job that fits an idle type it may use waits in
        # the queue behind a job that waits for devices (or is that job, kept by a quota from the type
        # with free devices): held for capacity
        waiting = alloc.x.sum(axis=1) == 0
        fits = (usable & (problem.scale[:, None] <= spare[None, :] + 1e-9)).any(axis=1)
        order = np.lexsort((np.arange(problem.n_jobs), problem.submit_time, -problem.priority)).tolist()
        for j in order:
            if waiting[j] and fits[j]:
                assert alloc.held[problem.job_ids[j]] is WaitReason.CAPACITY
        return
    slack = alloc.x.sum(axis=1) < 1 - 1e-6
    for t in range(problem.n_types):
        assert spare[t] < 1e-6 or not (usable[:, t] & slack).any(), f"type {t} idles under quotas"


def test_idle_reservation_is_lent():
    # tenant a reserves all 4 devices of t0 but its job is 10x faster on t1 and goes there;
    # tenant b's job may only use t0 and must get it instead of a's idle reservation
    # (fifo and fair-share ignore speed and may put a on t0 themselves; its second pass is covered by the property test)
    tput = np.array([[1.0, 10.0], [1.0, 0.0]])
    p = make(
        tput,
        [4, 4],
        [4, 4],
        tenant_ids=("a", "b"),
        tenant_index=np.array([0, 1]),
        tenant_weight=np.ones(2),
        quota=np.array([[4.0, 0.0], [0.0, 0.0]]),
    )
    for name in ("max-min-fairness", "max-throughput", "finish-time-fairness"):
        alloc = get_policy(name)(p)
        assert alloc.x[1, 0] == pytest.approx(1.0), name


def test_uncontended_round_skips_the_lp_and_gives_everyone_its_best_type():
    tput = np.array([[1.0, 3.0], [2.0, 1.0], [5.0, 4.0]])
    p = make(tput, [10, 10])
    for name in ("max-min-fairness", "finish-time-fairness", "max-throughput"):
        alloc = get_policy(name)(p)
        assert alloc.x.tolist() == [[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]], name


def test_max_min_levels_count_devices():
    """A 2-device job is entitled to the same device-time as a 1-device job (levels per device, as Gavel and
    fair-share): on 2 devices the 1-device job runs all the time, the 2-device job half of it."""
    p = make([[1.0], [1.0]], [2.0], scale=[1.0, 2.0])
    x = max_min_fairness(p).x
    assert x[0, 0] == pytest.approx(1.0, abs=1e-6)
    assert x[1, 0] == pytest.approx(0.5, abs=1e-6)


def _contended(n: int, seed: int) -> AllocationProblem:
    """n jobs with per-job speeds on 4 types, capacity at half the devices asked for (nothing merges)."""
    rng = np.random.default_rng(seed)
    scale = rng.choice([1.0, 2.0, 4.0], n)
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=("a", "b", "c", "d"),
        capacity=np.full(4, float(np.round(scale.sum() / 8))),
        scale=scale,
        weight=rng.choice([1.0, 2.0], n),
        throughput=rng.uniform(0.2, 4.0, (n, 4)),
        allowed=rng.uniform(size=(n, 4)) < 0.8,
    )


def test_max_min_warm_start_keeps_the_level_and_a_wrong_one_is_ignored():
    from dataclasses import replace

    problem = _contended(1200, 3)
    cold = max_min_fairness(problem)
    n_rows = build_rows(problem, usable_mask(problem)).n_rows
    assert len(cold.warm_start) == 1 + n_rows and max(cold.warm_start[1:]) > 0
    exact = exact_level(problem)
    for start in (cold.warm_start, (0.1, *([1.0] * n_rows)), (1.0, 2.0)):  # its own, a poor one, wrong size
        warm = max_min_fairness(replace(problem, warm_start=start))
        assert not check_feasible(problem, warm)
        assert stage_level(problem, warm.x) == pytest.approx(exact, rel=1e-6)


def test_fair_share_splits_over_types_by_capacity_only_when_they_are_full():
    """Speed-blind: with every device wanted, each job gets each type's capacity share (the average device);
    with devices to spare, no type is preferred for its size (two jobs on 6 + 2 devices: half each)."""
    tput = [[1.0, 5.0]]
    spare = make(tput * 2, [6, 2])
    x = get_policy("fair-share")(spare).x
    assert x == pytest.approx(np.full((2, 2), 0.5))
    full = make(tput * 8, [6, 2])
    x = get_policy("fair-share")(full).x
    assert x == pytest.approx(np.tile([0.75, 0.25], (8, 1)))
    assert check_feasible(full, get_policy("fair-share")(full)) == []


@pytest.mark.parametrize("family", ["random", "restricted", "generational"])
def test_level_tolerance_keeps_the_stage_level_and_a_feasible_pareto_allocation(family):
    """``eps`` (the default LEVEL_TOLERANCE, and 0) only lets ceiling-search probes decide at
    ceiling (1 - eps): the stage-1 level stays the exact LP's, the allocation fits and is filled."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from problems import family_problem

    problem = family_problem(family, 1000, 8, 5)
    exact = exact_level(problem)
    usable = usable_mask(problem)
    for eps in (0.0, 0.005):
        alloc = max_min_fairness(problem, eps=eps)
        assert check_feasible(problem, alloc) == []
        assert stage_level(problem, alloc.x) == pytest.approx(exact, rel=1e-6)
        spare = problem.capacity - (alloc.x * problem.scale[:, None]).sum(axis=0)
        slack = alloc.x.sum(axis=1) < 1 - 1e-6
        for t in range(problem.n_types):
            wanting = usable[:, t] & slack & (problem.scale <= spare[t] + 1e-9)
            assert spare[t] < 1e-6 or not wanting.any(), f"type {t} idles while a job could use it"

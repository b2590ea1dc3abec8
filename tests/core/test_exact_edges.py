"""Two exactness edges of max-min-fairness (a review of the twelfth session; docs/allocate.md, "Where
issue 13's targets stand"): a warm-started stage 1 that ended at L = 0 (_wf_stage._wrong at L = 0: every
plan costs 0 there, so an idle->v segment was never found wrong), and a pool of ~1e-6 devices left by the
floor scaling of oversubscribed quotas (_rules.build_rows), on which the fast path froze jobs at L ~ 5e-8
that the plain LP gives 0.35. The problems are the review's random rule problems, seeds 5016 and 1185."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from accelpool.core.allocation import AllocationProblem
from accelpool.core.policies import _waterfill
from accelpool.core.policies._seam import build_rows, usable_mask
from accelpool.core.policies.max_min_fairness import (
    _level_coefficients,
    exact_level,
    max_min_fairness,
    max_min_fairness_plain,
    stage_level,
)


def _rule_problem(seed: int) -> AllocationProblem:
    """A random problem with every rule kind: tenant caps (some 0), cap groups, quotas, public jobs."""
    rng = np.random.default_rng(seed)
    n, tt, n_ten = int(rng.integers(20, 201)), int(rng.integers(2, 6)), int(rng.integers(3, 13))
    tput = rng.uniform(0.1, 10, (n, tt)) * rng.uniform(0.3, 1, (1, tt))
    allowed = rng.uniform(size=(n, tt)) < rng.uniform(0.4, 1.0)
    allowed[np.arange(n), rng.integers(0, tt, n)] = True
    mode = int(rng.integers(0, 3))
    weight = [np.ones(n), rng.choice([1.0, 2.0], n), rng.uniform(0.5, 2, n)][mode]
    scale = rng.integers(1, 5, n).astype(float)
    frac = rng.uniform(0.2, 0.9)
    share = rng.uniform(0.5, 1.5, tt)
    cap = np.maximum(4.0, np.round(scale.sum() * frac * share / share.sum()))
    tenant_index = rng.integers(0, n_ten, n)
    quota = np.zeros((n_ten, tt))
    if rng.uniform() < 0.6:
        for g in rng.choice(n_ten, int(rng.integers(1, n_ten + 1)), replace=False):
            t = rng.integers(0, tt)
            quota[g, t] = np.floor(cap[t] * rng.uniform(0.05, 0.4))
    tenant_cap = np.full((n_ten, tt), np.inf)
    for g in range(n_ten):
        if rng.uniform() < 0.6:
            for t in rng.choice(tt, int(rng.integers(1, tt + 1)), replace=False):
                tenant_cap[g, t] = max(
                    float(rng.choice([0, 1, 4])), np.floor(cap[t] * rng.uniform(0.01, 0.3))
                )
    k_caps = int(rng.integers(0, 2 * n_ten + 1))
    cap_limit = np.zeros((k_caps, tt))
    for k in range(k_caps):
        some = rng.uniform(size=tt) < 0.7
        cap_limit[k] = np.where(
            some, np.maximum(rng.choice([0, 1, 2, 4]), np.floor(cap * rng.uniform(0.005, 0.2))), np.inf
        )
    cap_index = np.full(n, -1, dtype=np.int64)
    if k_caps:
        mode = rng.integers(0, 3)
        for j in range(n):
            if rng.uniform() < 0.5:
                if mode == 0:
                    ks = [k for k in range(k_caps) if k % n_ten == tenant_index[j]]
                    if ks:
                        cap_index[j] = rng.choice(ks)
                else:
                    cap_index[j] = rng.integers(0, k_caps)
    public = rng.uniform(size=n) < rng.choice([0.0, 0.1, 0.5, 0.85])
    reserve = np.floor(cap * rng.choice([0.0, 0.15, 0.4])) if rng.uniform() < 0.7 else np.zeros(tt)
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=tuple(f"t{k}" for k in range(tt)),
        capacity=cap,
        scale=scale,
        weight=weight,
        throughput=tput,
        allowed=allowed,
        tenant_ids=tuple(f"g{g}" for g in range(n_ten)),
        tenant_index=tenant_index,
        quota=quota,
        tenant_cap=tenant_cap,
        cap_index=cap_index,
        cap_limit=cap_limit,
        public=public,
        public_reserve=reserve,
    )


def test_warm_started_stage_one_does_not_end_at_zero() -> None:
    """Seed 5016: warm-started from its own allocation, stage 1 ended at L = 0 (exact: 0.3876): a job
    fixed on an idle->v segment that pays for a tenant cap of 0 was never found wrong at L = 0."""
    problem = _rule_problem(5016)
    exact = exact_level(problem)
    assert exact > 0.3
    first = max_min_fairness(problem)
    assert abs(stage_level(problem, first.x) - exact) <= 1e-7 * exact
    for warm in (replace(problem, warm_start=first.warm_start), replace(problem, warm_hint=first.warm_hint)):
        again = max_min_fairness(warm)
        assert abs(stage_level(problem, again.x) - exact) <= 1e-7 * exact


def test_oversubscribed_quotas_leave_no_pool() -> None:
    """Quotas over the capacity are scaled to sum to it, each at most its quota, and the pool is exactly 0
    (it was ~1e-6 devices after flooring)."""
    problem = _rule_problem(1185)
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    over = 0
    for q, bound in enumerate(rows.pool_bound.tolist()):
        mine = np.nonzero(rows.pool_of == q)[0]
        t = int(rows.type_of[mine[0]])
        reserved = rows.bound[mine]
        assert (reserved >= 0).all() and bound >= 0
        assert reserved.sum() + bound <= problem.capacity[t] * (1 + 1e-12)
        if problem.quota[:, t].sum() > problem.capacity[t]:
            over += 1
            assert bound == 0.0
            assert abs(reserved.sum() - problem.capacity[t]) <= 1e-9 * problem.capacity[t]
    assert over > 0


def test_fast_path_matches_plain_under_oversubscribed_quotas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seed 1185: the fast path froze stages at L ~ 5e-8 on the round-off pool and the plain LP did not:
    with the shipped stage limit their levels differed by up to 1.8; with every stage run, job 117 got 0
    from the fast path and 0.346 from the plain LP. Now every job's level agrees, both ways."""
    problem = _rule_problem(1185)
    a = _level_coefficients(problem, usable_mask(problem))
    for stages in (_waterfill.MAX_STAGES, 10**6):
        monkeypatch.setattr(_waterfill, "MAX_STAGES", stages)
        fast = (a * max_min_fairness(problem, eps=0.0).x).sum(axis=1)
        plain = (a * max_min_fairness_plain(problem).x).sum(axis=1)
        assert np.abs(fast - plain).max() <= 1e-7 * plain.max()
    assert plain[117] > 0.3

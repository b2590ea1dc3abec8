"""Two exactness edges of max-min-fairness (a review of the twelfth session; docs/allocate.md, "Where
issue 13's targets stand"): a warm-started stage 1 that ended at L = 0 (_wf_stage._wrong at L = 0: every
plan costs 0 there, so an idle->v segment was never found wrong), and a pool of ~1e-6 devices left by the
floor scaling of oversubscribed quotas (_rules.build_rows), on which the fast path froze jobs at L ~ 5e-8
that the plain LP gives 0.35. The problems are the review's random rule problems (bench/problems.py random_rules), seeds 5016 and 1185."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from accelpool.core.policies import _waterfill
from accelpool.core.policies._seam import build_rows, usable_mask
from accelpool.core.policies.max_min_fairness import (
    _level_coefficients,
    exact_level,
    max_min_fairness,
    max_min_fairness_plain,
    stage_level,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from problems import random_rules  # noqa: E402


def test_warm_started_stage_one_does_not_end_at_zero() -> None:
    """Seed 5016: warm-started from its own allocation, stage 1 ended at L = 0 (exact: 0.3876): a job
    fixed on an idle->v segment that pays for a tenant cap of 0 was never found wrong at L = 0."""
    problem = random_rules(5016)
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
    problem = random_rules(1185)
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
    problem = random_rules(1185)
    a = _level_coefficients(problem, usable_mask(problem))
    for stages in (_waterfill.MAX_STAGES, 10**6):
        monkeypatch.setattr(_waterfill, "MAX_STAGES", stages)
        fast = (a * max_min_fairness(problem, eps=0.0).x).sum(axis=1)
        plain = (a * max_min_fairness_plain(problem).x).sum(axis=1)
        assert np.abs(fast - plain).max() <= 1e-7 * plain.max()
    assert plain[117] > 0.3

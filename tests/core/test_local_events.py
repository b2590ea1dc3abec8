"""Tenant-local rows (_wf_local): events of the parts' own water-fillings applied as stages.

The ``ruled`` family of bench/problems.py (tenant caps, program caps, quotas, a public reserve) at 400 jobs
x 8 types: the fast path, with the events applied, against the full water-filling (plain HiGHS, no stage
limit: the exact lexicographic max-min) at every job.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.allocation import AllocationProblem, check_feasible  # noqa: E402
from accelpool.core.policies import _waterfill, _wf_local  # noqa: E402
from accelpool.core.policies._seam import build_rows, usable_mask  # noqa: E402
from accelpool.core.policies._wf_stage import _Stage  # noqa: E402
from accelpool.core.policies.max_min_fairness import (  # noqa: E402
    _level_coefficients,
    max_min_fairness,
    max_min_fairness_plain,
)
from problems import FAMILIES, family_problem, random_rules  # noqa: E402


def levels(problem: AllocationProblem, x: np.ndarray) -> np.ndarray:
    a = _level_coefficients(problem, usable_mask(problem))
    return np.sort((a * x).sum(axis=1))


def full(problem: AllocationProblem, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        alloc = max_min_fairness_plain(problem)
    assert check_feasible(problem, alloc) == []
    return levels(problem, alloc.x)


def stage_of(problem: AllocationProblem) -> _Stage:
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    return _Stage(_level_coefficients(problem, usable), problem.scale.astype(float), rows, rows.member)


def test_parts_are_the_tenants_with_local_rows():
    """Caps and program caps join a tenant's jobs; capacity, reserve and quotas (pooled) join nothing."""
    problem = family_problem("ruled", 400, 8, 1)
    split = _wf_local.parts(stage_of(problem))
    assert split is not None
    groups, alone = split
    tenants = [np.unique(problem.tenant_index[g]) for g, _ in groups]
    assert all(len(t) == 1 for t in tenants)
    assert len(groups) == 14  # eight capped tenants, six with a program cap
    assert len(alone) + sum(len(g) for g, _ in groups) == problem.n_jobs
    for family in FAMILIES:  # one row per type: nothing local
        assert _wf_local.parts(stage_of(family_problem(family, 200, 8, 1))) is None


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("share", [_wf_local.LOCAL_ACTIVE, 0.0])
def test_local_events_give_the_full_waterfilling(seed, share, monkeypatch):
    """The events proven by allocations and probes are exact stages: the whole allocation is the full
    water-filling at every job (share 0: the events searched at every stage, not only while a quarter
    of the jobs rise)."""
    problem = family_problem("ruled", 400, 8, seed)
    exact = full(problem, monkeypatch)
    applied: list[float] = []
    skip = _wf_local.skip_local

    def spy(*args, **kwargs):
        out = skip(*args, **kwargs)
        if out is not None:
            applied.append(out[0])
        return out

    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        m.setattr(_waterfill, "skip_local", spy)
        m.setattr(_wf_local, "LOCAL_ACTIVE", share)
        alloc = max_min_fairness(problem, eps=0.0)
    assert applied, "no local event was applied"
    assert check_feasible(problem, alloc) == []
    assert levels(problem, alloc.x) == pytest.approx(exact, rel=1e-4)


def lex_below(u: np.ndarray, v: np.ndarray) -> bool:
    """Whether the sorted level vector u is lexicographically below v (beyond 1e-6 relative)."""
    su, sv = np.sort(u), np.sort(v)
    d = np.nonzero(np.abs(su - sv) > 1e-6 * np.maximum(np.abs(sv), 1e-6))[0]
    return len(d) > 0 and bool(su[d[0]] < sv[d[0]])


@pytest.mark.parametrize("seed", [6074, 6089])
def test_stages_without_local_events_still_search_the_ceilings(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the shipped stage limit, a stage before which no local event was applied runs the ceiling
    search: with the searches left to the events alone, every such stage freed one ceiling, the
    water-filling ran out of MAX_STAGES and ended below the same problem without the split (the review's
    seeds 6074 and 6089: 0.31 and 0.25 below the full water-filling)."""
    p = random_rules(seed)
    usable = usable_mask(p)
    rows = build_rows(p, usable)
    a = _level_coefficients(p, usable)
    _, split = _waterfill.max_min_waterfill(a, p.scale, rows, usable, eps=0.005)
    with monkeypatch.context() as m:
        m.setattr(_waterfill, "parts", lambda stage: None)
        _, whole = _waterfill.max_min_waterfill(a, p.scale, rows, usable, eps=0.005)
    assert not lex_below(split, whole)


def test_exact_search_reuses_only_a_settled_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """eps = 0: a ceiling-search probe below the top of the bracket is not solved to its stage's optimum
    (only the top one is settled); reusing it as the next stage froze every rising job at a level that
    was not the optimum (the review's seed 2003 with the sampled start from 30 groups: 0.26 below)."""
    p = random_rules(2003)
    usable = usable_mask(p)
    rows = build_rows(p, usable)
    a = _level_coefficients(p, usable)
    monkeypatch.setattr(_waterfill, "MAX_STAGES", 10**6)
    monkeypatch.setattr(_waterfill, "SAMPLE_ABOVE", 30)
    _, fast = _waterfill.max_min_waterfill(a, p.scale, rows, usable, eps=0.0)
    _, plain = _waterfill.max_min_waterfill(a, p.scale, rows, usable, whole_lp=True)
    assert np.allclose(np.sort(fast), np.sort(plain), rtol=1e-6, atol=1e-9)

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

from accelpool.core.allocation import Allocation, AllocationProblem, check_feasible  # noqa: E402
from accelpool.core.policies import _waterfill, _wf_local  # noqa: E402
from accelpool.core.policies._seam import Rows, build_rows, usable_mask  # noqa: E402
from accelpool.core.policies._wf_stage import _Stage  # noqa: E402
from accelpool.core.policies.max_min_fairness import (  # noqa: E402
    _level_coefficients,
    max_min_fairness,
)
from problems import FAMILIES, family_problem, random_rules  # noqa: E402


def stage_of(problem: AllocationProblem) -> _Stage:
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    return _Stage(_level_coefficients(problem, usable), problem.scale.astype(float), rows, rows.member)


def test_parts_are_the_tenants_with_local_rows():
    """Caps and program caps join a tenant's jobs; capacity, reserve and quotas (pooled) join nothing."""
    problem = family_problem("ruled", 400, 8, 1)
    split = _wf_local.parts(stage_of(problem))
    assert split is not None
    groups, alone, _ = split
    tenants = [np.unique(problem.tenant_index[g]) for g, _ in groups]
    assert all(len(t) == 1 for t in tenants)
    assert len(groups) == 14  # eight capped tenants, six with a program cap
    assert len(alone) + sum(len(g) for g, _ in groups) == problem.n_jobs
    for family in FAMILIES:  # one row per type: nothing local
        assert _wf_local.parts(stage_of(family_problem(family, 200, 8, 1))) is None


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("share", [_wf_local.LOCAL_ACTIVE, 0.0])
def test_local_events_give_the_full_waterfilling(seed, share, monkeypatch):
    """The events proven by allocations and probes are exact stages: the water-filling's levels (eps 0,
    no stage limit, before fill_spare) are the plain water-filling's (whole HiGHS LPs) at every job to
    1e-7, and the allocations keep every row (share 0: the events searched at every stage, not only
    while a quarter of the jobs rise)."""
    problem = family_problem("ruled", 400, 8, seed)
    usable = usable_mask(problem)
    rows = build_rows(problem, usable)
    a = _level_coefficients(problem, usable)
    applied: list[float] = []
    skip = _wf_local.skip_local

    def spy(*args, **kwargs):
        out = skip(*args, **kwargs)
        if out is not None:
            applied.append(out[0])
        return out

    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        _, plain = _waterfill.max_min_waterfill(a, problem.scale, rows, usable, whole_lp=True)
        m.setattr(_waterfill, "skip_local", spy)
        m.setattr(_wf_local, "LOCAL_ACTIVE", share)
        x, fast = _waterfill.max_min_waterfill(a, problem.scale, rows, usable, eps=0.0)
        alloc = max_min_fairness(problem, eps=0.0)
    assert applied, "no local event was applied"
    assert check_feasible(problem, Allocation(problem.job_ids, problem.types, x, "test")) == []
    assert check_feasible(problem, alloc) == []
    assert np.allclose(fast, plain, rtol=1e-7, atol=1e-9), np.abs(fast - plain).max()


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


_EXACT: dict[int, np.ndarray] = {}
EXACT_SEEDS = range(24)


def _exact_parts(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[AllocationProblem, np.ndarray, Rows, np.ndarray, np.ndarray]:
    """random_rules(seed), its rows and coefficients, and its plain water-filling's levels (whole HiGHS
    LPs, no stage limit), computed once per seed."""
    p = random_rules(seed)
    usable = usable_mask(p)
    rows = build_rows(p, usable)
    a = _level_coefficients(p, usable)
    if seed not in _EXACT:
        with monkeypatch.context() as m:
            m.setattr(_waterfill, "MAX_STAGES", 10**6)
            _, _EXACT[seed] = _waterfill.max_min_waterfill(a, p.scale, rows, usable, whole_lp=True)
    return p, a, rows, usable, _EXACT[seed]


@pytest.mark.parametrize("limits", ["shipped", "cut", "small_part", "grown"])
def test_local_events_are_exact_on_random_rules(limits: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The claim is exactness: with eps 0 and no stage limit, the fast water-filling's levels (the local
    events applied as stages) are the plain water-filling's at every job to 1e-7, before any fill_spare,
    and its x keeps every row (check_feasible), over random_rules seeds 0-23. ``cut``: every part's
    local water-filling stops after 2 LPs (LOCAL_STAGES: its rising jobs bound the events searched);
    ``small_part``: rows do not split when a part holds more than 20 groups (LOCAL_PART), so larger
    problems fall back to the stages alone; ``grown``: every probe's master is grown (PROBE_WHOLE 0), the
    jobs of the local rows its start overloads entering at once (_wf_local._entering). Each way is seen at
    work: events applied, a part cut off, a part ending by the all-at-ceiling shortcut, a problem not
    split (the jobs entering a grown probe's master: test_entering_jobs_are_those_of_overloaded_local_rows)."""
    seen = {"applied": 0, "cut": 0, "ceiling": 0, "unsplit": 0, "entered": 0}
    fill, at_ceiling, parts = _wf_local._local_fill, _wf_local._fits_at_ceiling, _wf_local.parts
    skip, entering = _wf_local.skip_local, _wf_local._entering

    def entering_spy(*args, **kwargs):
        enter = entering(*args, **kwargs)

        def counted(amb, u, v, guess):
            out = enter(amb, u, v, guess)
            seen["entered"] += int((out & ~amb).sum())
            return out

        return counted

    def fill_spy(*args, **kwargs):
        out = fill(*args, **kwargs)
        seen["cut"] += out is not None and np.isfinite(out[3])
        return out

    def ceiling_spy(*args, **kwargs):
        out = at_ceiling(*args, **kwargs)
        seen["ceiling"] += out
        return out

    def parts_spy(stage):
        out = parts(stage)
        seen["unsplit"] += out is None
        return out

    def skip_spy(*args, **kwargs):
        out = skip(*args, **kwargs)
        seen["applied"] += out is not None
        return out

    for seed in EXACT_SEEDS:
        p, a, rows, usable, plain = _exact_parts(seed, monkeypatch)
        with monkeypatch.context() as m:
            m.setattr(_waterfill, "MAX_STAGES", 10**6)
            m.setattr(_wf_local, "_local_fill", fill_spy)
            m.setattr(_wf_local, "_fits_at_ceiling", ceiling_spy)
            m.setattr(_waterfill, "parts", parts_spy)
            m.setattr(_waterfill, "skip_local", skip_spy)
            if limits == "cut":
                m.setattr(_wf_local, "LOCAL_STAGES", 2)
            if limits == "small_part":
                m.setattr(_wf_local, "LOCAL_PART", 20)
            if limits == "grown":
                m.setattr(_wf_local, "PROBE_WHOLE", 0)
                m.setattr(_wf_local, "_entering", entering_spy)
            x, fast = _waterfill.max_min_waterfill(a, p.scale, rows, usable, eps=0.0)
        assert check_feasible(p, Allocation(p.job_ids, p.types, x, "test")) == [], seed
        assert np.allclose(fast, plain, rtol=1e-7, atol=1e-9), (seed, np.abs(fast - plain).max())
    assert seen["applied"] > 0 and seen["ceiling"] > 0, seen
    if limits == "cut":
        assert seen["cut"] > 0, seen
    if limits == "small_part":
        assert seen["unsplit"] > 0, seen  # some problems split, some not
    if limits == "grown":  # these small problems' probes start within their local rows
        assert seen["entered"] == 0, seen


def test_entering_jobs_are_those_of_overloaded_local_rows() -> None:
    """A grown probe's start (_wf_local._entering): the jobs of every local row that the fixed jobs' plans
    (every rising job all the time on its best type, at its ceiling) overload, counted row by row; the
    ambiguous jobs count nothing, and no other row (capacity, reserve, quotas) brings its jobs."""
    problem = family_problem("ruled", 400, 8, 1)
    stage = stage_of(problem)
    split = _wf_local.parts(stage)
    assert split is not None
    ng, tt = stage.a.shape
    local = np.zeros(stage.rows.n_rows, dtype=bool)
    for _, rws in split[0]:
        local[rws] = True
    active = np.ones(ng, dtype=bool)
    ell = np.zeros(ng)
    amb = np.zeros(ng, dtype=bool)
    amb[::7] = True
    u = np.zeros(ng, dtype=np.int64)
    v = stage.best.copy()
    guess = float(stage.ceiling.max())
    got = _wf_local._entering(stage, active, ell, local)(amb, u, v, guess)
    want = np.zeros(ng, dtype=bool)
    overloaded = 0
    for r in np.nonzero(local)[0]:
        use = 0.0
        for j in np.nonzero(stage.member[r] & ~amb)[0]:
            if stage.best[j] in np.nonzero(stage.onehot[r])[0]:
                use += stage.size[j] * min(guess / stage.a[j, stage.best[j]], 1.0)
        if use > stage.rows.bound[r] * (1 + 1e-9) + 1e-9:
            want |= stage.member[r]
            overloaded += 1
    assert 0 < overloaded < int(local.sum())
    assert np.array_equal(got, want)


@pytest.mark.parametrize("seed", [16, 77, 118, 125, 249])
def test_a_warm_part_lp_that_stops_short_is_solved_again(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A review: the warm primal re-solve of a part's LP stopped at Unknown (dual infeasible) on these
    seeds, and the part's local water-filling gave up (no events applied for the whole split); solved again
    from scratch by dual simplex, every part's water-filling ends."""
    p = random_rules(seed)
    usable = usable_mask(p)
    rows = build_rows(p, usable)
    a = _level_coefficients(p, usable)
    fill, got = _wf_local._local_fill, []

    def fill_spy(*args, **kwargs):
        out = fill(*args, **kwargs)
        got.append(out)
        return out

    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        m.setattr(_wf_local, "_local_fill", fill_spy)
        _waterfill.max_min_waterfill(a, p.scale, rows, usable, eps=0.0)
    assert got and all(out is not None for out in got), seed

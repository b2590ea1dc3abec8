"""max-min-fairness at every level, not only stage 1: the fast allocation's sorted per-device levels
against the *full* water-filling (plain HiGHS, no stage limit: the exact lexicographic max-min).

Small capacity-bound problems of bench/problems.py (400 jobs x 8 types) whose full water-filling has
more than 12 distinct levels (scarce: 18, pinned: 14). bench/bench_policies.py's ``all/full`` column
is the same check at benchmark sizes (docs/allocate.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.allocation import AllocationProblem, check_feasible  # noqa: E402
from accelpool.core.policies import (  # noqa: E402
    _waterfill,
    _wf_balance,
    _wf_ceilings,
    _wf_local,
    _wf_master,
    _wf_stage,
)
from accelpool.core.policies._seam import usable_mask  # noqa: E402
from accelpool.core.policies.max_min_fairness import (  # noqa: E402
    _level_coefficients,
    max_min_fairness,
    max_min_fairness_plain,
)
from problems import family_problem  # noqa: E402

CASES = [("scarce", 400, 2), ("pinned", 400, 2)]


def levels(problem: AllocationProblem, x: np.ndarray) -> np.ndarray:
    a = _level_coefficients(problem, usable_mask(problem))
    return np.sort((a * x).sum(axis=1))


def full(problem: AllocationProblem, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        alloc = max_min_fairness_plain(problem)
    assert check_feasible(problem, alloc) == []
    return levels(problem, alloc.x)


@pytest.mark.parametrize(("family", "n", "seed"), CASES)
def test_fast_path_without_the_stage_limit_is_the_full_waterfilling(family, n, seed, monkeypatch):
    """The fast path's machinery (column generation, ceiling searches, eps) is exact at every level."""
    problem = family_problem(family, n, 8, seed)
    exact = full(problem, monkeypatch)
    assert len(np.unique(exact.round(6))) > _waterfill.MAX_STAGES
    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        alloc = max_min_fairness(problem)
    assert check_feasible(problem, alloc) == []
    assert levels(problem, alloc.x) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize(("family", "n", "seed"), CASES)
def test_shipped_allocation_is_the_full_waterfilling(family, n, seed, monkeypatch):
    """The shipped allocation (MAX_STAGES as shipped) matches the full water-filling at every job. Before
    _waterfill._prune (issue 13, seventh session) the jobs still rising after the 12th stage kept the
    12th level and only the spare-capacity fill raised them: 10-12% below their exact level on these
    two, up to 63% at 2,000 jobs. Now each stage closes the types a rising job pays for at the stage's
    optimal prices, the jobs held by their free types become ceilings, and the ceiling searches pin them
    in bulk, so these water-fillings end within the limit."""
    problem = family_problem(family, n, 8, seed)
    exact = full(problem, monkeypatch)
    alloc = max_min_fairness(problem)
    assert check_feasible(problem, alloc) == []
    assert levels(problem, alloc.x) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize(("family", "n", "seed"), CASES)
def test_work_budget_stops_where_it_stands(family, n, seed, monkeypatch):
    """With the work budget spent after stage 1 the water-filling stops as after MAX_STAGES: feasible,
    the stage-1 level exact, nobody below it (the fill only raises)."""
    problem = family_problem(family, n, 8, seed)
    with monkeypatch.context() as m:
        m.setattr(_waterfill, "WORK_FLOOR", 0)
        m.setattr(_waterfill, "WORK_PER_GROUP", 0.0)
        alloc = max_min_fairness(problem)
    assert check_feasible(problem, alloc) == []
    exact = full(problem, monkeypatch)
    ours = levels(problem, alloc.x)
    assert ours[0] == pytest.approx(exact[0], rel=1e-6)
    assert ours.min() >= exact[0] * (1 - 1e-6)


@pytest.mark.parametrize(("family", "n", "seed"), CASES)
def test_balanced_restarts_keep_every_level(family, n, seed, monkeypatch):
    """Balanced restarts (_wf_balance._balance; shipped above 4,000 rising jobs, on masters about to grow
    by a tenth of them) forced on at 400 jobs for any growth, on a sample of 200: they only choose the masters' fixed plans, so the fast path without the stage
    limit still is the full water-filling at every level."""
    problem = family_problem(family, n, 8, seed)
    exact = full(problem, monkeypatch)
    calls = []
    balance = _wf_balance._balance

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return balance(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        m.setattr(_wf_stage, "BALANCE_ABOVE", 0)
        m.setattr(_wf_balance, "BALANCE_SAMPLE", 200)
        m.setattr(_wf_stage, "BALANCE_WRONG", 0.0)
        m.setattr(_wf_balance, "_balance", counted)
        alloc = max_min_fairness(problem)
    assert calls, "no master grew enough to restart"
    assert check_feasible(problem, alloc) == []
    assert levels(problem, alloc.x) == pytest.approx(exact, rel=1e-4)


@pytest.mark.parametrize("floor", [300, 500, 800])
def test_work_budget_keeps_the_highest_level_reached(floor, monkeypatch):
    """Stopped by the work budget partway (scarce, 400 jobs), every job keeps at least the highest level
    any stage or ceiling-search probe reached (capped by its own exact level): a probe that missed its
    ceiling still placed every job at its level. Before _Stage.fallback the stop kept the last stage's
    allocation: with a floor of 500 jobs, 125 jobs ended below a probe's 0.975."""
    problem = family_problem("scarce", 400, 8, 2)
    a = _level_coefficients(problem, usable_mask(problem))
    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        exact = (a * max_min_fairness_plain(problem).x).sum(axis=1)
    reached = []
    probes = []
    stage = _waterfill._stage

    def recorded(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = stage(*args, **kwargs)
        reached.append(result[0])
        return result

    def probe(*args, **kwargs):  # type: ignore[no-untyped-def]
        result = recorded(*args, **kwargs)
        probes.append(result[0])
        return result

    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        m.setattr(_waterfill, "WORK_FLOOR", floor)
        m.setattr(_waterfill, "WORK_PER_GROUP", 0.0)
        m.setattr(_waterfill, "_stage", recorded)
        m.setattr(_wf_ceilings, "_stage", probe)  # the ceiling searches' probes (each module imports _stage)
        m.setattr(_wf_local, "_stage", probe)
        alloc = max_min_fairness(problem)
    assert check_feasible(problem, alloc) == []
    ours = (a * alloc.x).sum(axis=1)
    assert ours.min() >= exact.min() * (1 - 1e-6)
    if floor >= 500:  # the budget stops after some probes (at 300, before any)
        assert probes  # their levels are among those reached: the fallback keeps a probe's allocation
    assert (ours >= np.minimum(max(reached), exact) * (1 - 1e-4)).all()


def test_a_large_master_counts_more_in_the_work_budget(monkeypatch):
    """A master solve counts its jobs times max(1, (columns / MASTER_COLUMNS) ** 2) (_wf_master.work_of):
    one large master costs the budget about what it costs in CPU. With MASTER_COLUMNS small, a master
    that its jobs alone would have let run is refused once its count would overdraw the budget, and that
    stop is as safe as any: feasible, the stage-1 level exact, nobody below it."""
    mc = _wf_master.MASTER_COLUMNS
    assert _wf_master.work_of(10, 100) == 10 and _wf_master.work_of(10, mc) == 10
    assert _wf_master.work_of(10, 2 * mc) == 40
    problem = family_problem("scarce", 400, 8, 2)
    exact = full(problem, monkeypatch)
    solved: list[tuple[int, int, float, float]] = []  # jobs, columns, work before and after, of each solve
    refused: list[tuple[int, int, float, float]] = []  # jobs, columns, work before, limit
    solve = _wf_master.Master.solve

    def counted(self, amb, u, v):  # type: ignore[no-untyped-def]
        before = self.stage.work
        try:
            out = solve(self, amb, u, v)
        except _wf_stage.OutOfWork:
            refused.append((len(self.jobs), len(self.pair_j), before, self.stage.work_limit))
            raise
        if self.stage.work > before:
            solved.append((len(self.jobs), len(self.pair_j), before, self.stage.work))
        return out

    with monkeypatch.context() as m:
        m.setattr(_waterfill, "MAX_STAGES", 10**6)
        m.setattr(_waterfill, "WORK_FLOOR", 3_000)
        m.setattr(_waterfill, "WORK_PER_GROUP", 0.0)
        m.setattr(_wf_master, "MASTER_COLUMNS", 200)
        m.setattr(_wf_master.Master, "solve", counted)
        alloc = max_min_fairness(problem)
    weight = [max(1.0, (cols / 200) ** 2) for _, cols, _, _ in solved]
    assert max(weight) > 1, "no master had more columns than MASTER_COLUMNS"
    assert [a - b for _, _, b, a in solved] == pytest.approx(
        [j * w for (j, *_), w in zip(solved, weight, strict=True)]
    )
    assert refused, "the budget never stopped a master"
    jobs, cols, before, limit = refused[0]
    assert before + jobs <= limit < before + jobs * (cols / 200) ** 2  # its jobs alone fit; its count did not
    assert check_feasible(problem, alloc) == []
    ours = levels(problem, alloc.x)
    assert ours[0] == pytest.approx(exact[0], rel=1e-6)
    assert ours.min() >= exact[0] * (1 - 1e-6)

"""max-min-fairness's warm hint across rounds (AllocationProblem.warm_hint, policies/_waterfill.py Hint):
every stage's and ceiling probe's prices of one round are where the next round's masters start, and a
search's bracket is narrowed by them (weak duality: a proof at any prices). A start or a proof only: the
stage-1 level stays the exact LP's and the allocation feasible, also when jobs and rows changed between
the rounds, and when the hint is nonsense (prices, inf or NaN among them, levels, rows named by others)."""

from __future__ import annotations

import sys
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from accelpool.core.allocation import AllocationProblem, WarmHint, check_feasible  # noqa: E402
from accelpool.core.policies._seam import build_rows, usable_mask  # noqa: E402
from accelpool.core.policies._wf_warm import hint_stages, row_keys  # noqa: E402
from accelpool.core.policies.max_min_fairness import exact_level, max_min_fairness, stage_level  # noqa: E402
from problems import family_problem  # noqa: E402


def _take(
    problem: AllocationProblem, idx: np.ndarray, ids: tuple[str, ...] | None = None
) -> AllocationProblem:
    """The problem with only the jobs ``idx`` (every per-job field taken), renamed ``ids`` if given."""
    n = problem.n_jobs
    out: dict[str, object] = {}
    for f in fields(problem):
        v = getattr(problem, f.name)
        if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == n and f.name not in ("capacity",):
            out[f.name] = v[idx]
    out["job_ids"] = ids if ids is not None else tuple(problem.job_ids[i] for i in idx.tolist())
    return replace(problem, **out)  # type: ignore[arg-type]


def _join(a: AllocationProblem, b: AllocationProblem) -> AllocationProblem:
    """a's pool and rules with b's jobs appended (b built on the same tenants and cap groups)."""
    out: dict[str, object] = {}
    for f in fields(a):
        v, w = getattr(a, f.name), getattr(b, f.name)
        if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == a.n_jobs and f.name != "capacity":
            out[f.name] = np.concatenate([v, w])
    out["job_ids"] = a.job_ids + b.job_ids
    return replace(a, **out)  # type: ignore[arg-type]


def _next_round(
    problem: AllocationProblem, seed: int, gone: float, new: int, rules: int
) -> AllocationProblem:
    """The next round's problem: a fraction ``gone`` of the jobs finished, ``new`` jobs arrived (another
    draw of the family on the same tenants), and rows changed (``rules`` & 1: a tenant's caps lifted, a
    row gone; & 2: every job of tenant 0 gone, its quota rows with them; & 4: a new cap on tenant 1)."""
    rng = np.random.default_rng(seed)
    keep = np.nonzero(rng.uniform(size=problem.n_jobs) >= gone)[0]
    if rules & 2:
        keep = keep[problem.tenant_index[keep] != 0]
    out = _take(problem, keep)
    if new:
        more = family_problem("ruled", new, problem.n_types, seed + 1000)
        out = _join(out, _take(more, np.arange(new), tuple(f"new{i}" for i in range(new))))
    cap = out.tenant_cap.copy()
    if rules & 1:
        cap[5] = np.inf
    if rules & 4:
        cap[1, 0] = max(4.0, float(np.floor(out.capacity[0] * 0.03)))
    return replace(out, tenant_cap=cap)


def _warm(problem: AllocationProblem, before) -> object:
    return max_min_fairness(replace(problem, warm_start=before.warm_start, warm_hint=before.warm_hint))


def test_the_hint_names_every_stage_and_an_unchanged_round_keeps_its_level():
    problem = family_problem("ruled", 600, 8, 0)
    cold = max_min_fairness(problem)
    hint = cold.warm_hint
    assert isinstance(hint, WarmHint) and hint.stages and len(set(hint.rows)) == len(hint.rows)
    assert any(solved for _, _, solved in hint.stages)
    assert all(len(p) == len(hint.rows) for _, p, _ in hint.stages)
    warm = _warm(problem, cold)
    assert not check_feasible(problem, warm)
    assert stage_level(problem, warm.x) == pytest.approx(exact_level(problem), rel=1e-6)
    assert warm.warm_hint is not None


@pytest.mark.parametrize("rules", [0, 1, 2, 4, 7])
def test_a_changed_round_keeps_the_exact_stage_one_level_and_stays_feasible(rules):
    problem = family_problem("ruled", 600, 8, 1)
    cold = max_min_fairness(problem)
    after = _next_round(problem, 1, 0.1, 80, rules)
    warm = _warm(after, cold)
    assert not check_feasible(after, warm)
    assert stage_level(after, warm.x) == pytest.approx(exact_level(after), rel=1e-6)


def test_a_nonsense_hint_is_only_a_poor_start():
    problem = family_problem("ruled", 500, 8, 2)
    cold = max_min_fairness(problem)
    assert cold.warm_hint is not None
    rng = np.random.default_rng(0)
    stages = tuple(
        (float(rng.uniform(0.1, 5.0)), rng.uniform(0.0, 3.0, len(p)), bool(k % 2))
        for k, (_, p, _) in enumerate(cold.warm_hint.stages)
    )
    wrong_rows = WarmHint(
        tuple(("capacity", ("nowhere",), "", k) for k in range(5)), ((1.0, np.ones(5), True),)
    )
    h = cold.warm_hint
    reordered = WarmHint(tuple(reversed(h.rows)), tuple((lv, p[::-1], s) for lv, p, s in stages))
    got = {}
    for name, hint in (
        ("nonsense", WarmHint(h.rows, stages)),
        ("rows", wrong_rows),
        ("reordered", reordered),
    ):
        warm = got[name] = max_min_fairness(replace(problem, warm_hint=hint))
        assert not check_feasible(problem, warm)
        assert stage_level(problem, warm.x) == pytest.approx(exact_level(problem), rel=1e-6)
    # rows are matched by key, not by position: the reversed hint is the same start, the same allocation
    assert np.array_equal(got["reordered"].x, got["nonsense"].x)
    keys = row_keys(problem, build_rows(problem, usable_mask(problem)))
    for (la, pa, sa), (lb, pb, sb) in zip(
        hint_stages(reordered, keys), hint_stages(WarmHint(h.rows, stages), keys), strict=True
    ):
        assert (la, sa) == (lb, sb) and np.array_equal(pa, pb)
    inf = tuple((lv, np.where(np.arange(len(p)) % 3 == 0, np.inf, -p), s) for lv, p, s in stages)
    for _, p, _ in hint_stages(WarmHint(h.rows, inf), keys):  # nonsense prices are no start at all
        assert np.isfinite(p).all() and (p >= 0).all()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 30),
    gone=st.floats(0.0, 0.4),
    new=st.integers(0, 100),
    rules=st.integers(0, 7),
)
def test_any_churn_between_rounds_keeps_the_level_and_feasibility(seed, gone, new, rules):
    problem = family_problem("ruled", 400, 6, seed)
    before = max_min_fairness(problem)
    after = _next_round(problem, seed, gone, new, rules)
    warm = _warm(after, before)
    assert not check_feasible(after, warm)
    assert stage_level(after, warm.x) == pytest.approx(exact_level(after), rel=1e-6)
    again = _warm(after, warm)  # a third round on the same problem, from the changed round's hint
    assert not check_feasible(after, again)
    assert stage_level(after, again.x) == pytest.approx(exact_level(after), rel=1e-6)


def test_decide_hands_each_lease_boundary_the_last_boundarys_hint() -> None:
    """core.rounds: the DecideCache keeps the last lease boundary's Allocation.warm_hint (and warm_start)
    and the next boundary's problem carries it; the first boundary has none."""
    from accelpool.core.policies import get_policy
    from accelpool.core.rounds import DecideCache, JobStatus, Snapshot, decide
    from accelpool.core.throughput import ThroughputMatrix
    from accelpool.core.types import Job, JobState, Node

    policy = get_policy("max-min-fairness")
    seen: list[AllocationProblem] = []
    made = []

    def spy(problem: AllocationProblem):  # type: ignore[no-untyped-def]
        seen.append(problem)
        made.append(policy(problem))
        return made[-1]

    rng = np.random.default_rng(3)
    jobs = [Job(f"j{i}", tenant=f"t{i % 3}", submit_time=float(i)) for i in range(12)]
    speeds = {j.id: {"h100": float(rng.uniform(1, 4)), "a100": float(rng.uniform(0.5, 3))} for j in jobs}
    nodes = (Node("n0", "h100", 2), Node("n1", "a100", 2))

    def round_(now: float, cache: DecideCache) -> None:
        statuses = tuple(JobStatus(j, JobState.QUEUED) for j in jobs)
        snap = Snapshot(
            now, nodes, statuses, ThroughputMatrix.from_rows(speeds, ("h100", "a100")), round_seconds=360.0
        )
        decide(snap, spy, cache)

    cache = DecideCache()
    round_(10.0, cache)
    round_(370.0, cache)
    assert seen[0].warm_hint is None and seen[0].warm_start == ()
    assert made[0].warm_hint is not None and made[0].warm_start  # contended: the water-filling ran
    assert seen[1].warm_hint is made[0].warm_hint
    assert seen[1].warm_start == made[0].warm_start


@pytest.mark.parametrize(("n", "seed"), [(300, 1), (400, 2)])
def test_the_hint_saves_master_solves_on_an_unchanged_round(
    n: int, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hint is used: the same problem again, warm from its own allocation, takes fewer master solves
    with the hint than with only warm_start (the old carry-over), at the same stage-1 level (ruled 300 x 8
    seed 1: 108 -> 96 solves; 400 x 8 seed 2: 78 -> 73; with the hint ignored, the same counts)."""
    from accelpool.core.policies import _wf_master

    problem = family_problem("ruled", n, 8, seed)
    solve = _wf_master.Master.solve
    held: list[int] = []

    def counted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        held.append(1)
        return solve(self, *args, **kwargs)

    first = max_min_fairness(problem)
    assert first.warm_hint is not None
    monkeypatch.setattr(_wf_master.Master, "solve", counted)
    old = max_min_fairness(replace(problem, warm_start=first.warm_start))
    solves_old = len(held)
    held.clear()
    new = _warm(problem, first)
    assert stage_level(problem, new.x) == pytest.approx(stage_level(problem, old.x), rel=1e-9)
    assert len(held) < solves_old

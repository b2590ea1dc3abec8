"""max-min-fairness with keep_type: the same levels, running jobs kept on the types they hold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import problem_of

from accelpool.core.allocation import check_feasible
from accelpool.core.policies.max_min_fairness import max_min_fairness


def make(tput, cap, keep=None, scale=None):
    """tests/helpers.py's problem, with the type each job keeps (-1: none; None: no job keeps one)."""
    if keep is None:
        return problem_of(tput, cap, scale)
    return problem_of(tput, cap, scale, keep_type=np.asarray(keep, dtype=np.int64))


def levels(p, x):
    return ((p.throughput / p.throughput.max(axis=1, keepdims=True)) * x).sum(axis=1)


def test_running_jobs_stay_on_their_type():
    # three equal jobs, two equal devices: each gets 2/3 of a device, on either type
    tput = np.ones((3, 2))
    for keep in ([1, 0, -1], [0, 1, 1], [1, 1, 0]):
        p = make(tput, [1.0, 1.0], keep)
        x = max_min_fairness(p).x
        np.testing.assert_allclose(levels(p, x), 2 / 3, atol=1e-6)
        held = [x[j, k] for j, k in enumerate(keep) if k >= 0]
        # as much of each running job's time on its own type as the capacity allows
        on_type = {k: sum(x[j, k] for j, kk in enumerate(keep) if kk == k) for k in set(keep) if k >= 0}
        for k, total in on_type.items():
            assert total == pytest.approx(min(1.0, 2 / 3 * keep.count(k)), abs=1e-6)
        assert all(h > 0 for h in held)


def test_keep_type_shape_is_checked():
    with pytest.raises(ValueError, match="keep_type"):
        make(np.ones((2, 2)), [1.0, 1.0], [0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31))
def test_same_levels_with_or_without_keep(seed):
    rng = np.random.default_rng(seed)
    n, t = int(rng.integers(2, 14)), int(rng.integers(1, 4))
    tput = rng.uniform(0.1, 10, (n, t)) * (rng.uniform(size=(n, t)) < 0.85)
    tput[:, 0] = np.maximum(tput[:, 0], 0.05)
    cap = rng.integers(1, 6, t).astype(float)
    scale = rng.choice([1, 2], n).astype(float)
    keep = np.where(rng.uniform(size=n) < 0.5, rng.integers(0, t, n), -1)
    keep = np.where((keep >= 0) & (tput[np.arange(n), np.maximum(keep, 0)] > 0), keep, -1)
    plain = make(tput, cap, None, scale)
    kept = make(tput, cap, keep, scale)
    x0 = max_min_fairness(plain).x
    alloc = max_min_fairness(kept)
    x1 = alloc.x
    assert not check_feasible(kept, alloc)
    a = levels(plain, x0)
    b = levels(kept, x1)
    assert np.all(b >= a * (1 - 1e-6) - 1e-9)
    held = keep >= 0
    assert (x1[held, keep[held]] * scale[held]).sum() >= (x0[held, keep[held]] * scale[held]).sum() - 1e-6

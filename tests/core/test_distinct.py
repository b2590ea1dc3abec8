"""_waterfill._distinct merges the jobs exactly as ``np.unique(key, axis=0, ...)`` did (the same groups, in
the same order, the same first job of each), on random keys with many duplicates, signed zeros and up to
140 rows (more than two packed words)."""

from __future__ import annotations

import numpy as np
import pytest

from accelpool.core.policies._waterfill import _distinct


@pytest.mark.parametrize("seed", range(16))
def test_distinct_is_numpys_unique(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, tt, n_rows = int(rng.integers(1, 3000)), int(rng.integers(1, 6)), int(rng.integers(1, 140))
    a = rng.choice([0.0, -0.0, 0.5, 1.0, 2.0, 1e-300], size=(n, tt))
    scale = rng.choice([1.0, 2.0, 8.0], size=n)
    member = rng.random((n_rows, n)) < rng.random((n_rows, 1))
    key = np.concatenate([a, scale[:, None], member.T.astype(np.float64)], axis=1)
    _, first, inverse, counts = np.unique(
        key, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    got = _distinct(a, scale, member)
    for want, mine in zip((first, inverse.reshape(-1), counts), got, strict=True):
        assert np.array_equal(want, mine)

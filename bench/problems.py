"""Problem families for the allocation benchmarks and the CI guard (tests/core/test_policy_speed_guard.py).

Every family has distinct rows (per-job random speeds: nothing merges), scales 1/2/4/8 devices, and the
pool sized at a fraction of the devices asked for (25-75%), split unevenly over the types:

- ``random``: every type allowed, weight 0.5-2 (every job its own ceiling), capacity 25-75% of demand;
- ``restricted``: about 80% of the types allowed per job, weight 1 or 2, capacity at 50% of demand;
- ``sparse``: 1-3 allowed types per job, weight 1, 2 or 4, capacity at 25% of demand;
- ``generational``: speeds rise with the type's generation by a per-job exponent (how much a model
  gains from newer hardware) with +-20% noise, 90% of types allowed, weight 1 or 2, capacity at 75%.
"""

from __future__ import annotations

import numpy as np

from accelpool.core.allocation import AllocationProblem

FAMILIES = ("random", "restricted", "sparse", "generational")


def family_problem(name: str, n: int, types: int = 8, seed: int = 0) -> AllocationProblem:
    """One problem of family ``name`` with ``n`` jobs and ``types`` accelerator types."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 10.0, (n, types)) * rng.uniform(0.3, 1.0, (1, types))
    if name == "random":
        tput, allowed = base, np.ones((n, types), dtype=bool)
        weight, frac = rng.uniform(0.5, 2.0, n), float(rng.uniform(0.25, 0.75))
    elif name == "restricted":
        tput, allowed = base, rng.uniform(size=(n, types)) < 0.8
        allowed[np.arange(n), rng.integers(0, types, n)] = True
        weight, frac = rng.choice([1.0, 2.0], n), 0.5
    elif name == "sparse":
        tput, allowed = base, np.zeros((n, types), dtype=bool)
        for _ in range(3):
            allowed[np.arange(n), rng.integers(0, types, n)] = True
        weight, frac = rng.choice([1.0, 2.0, 4.0], n), 0.25
    elif name == "generational":
        gen = np.linspace(1.0, 4.0, types)
        tput = gen[None, :] ** rng.uniform(0.3, 1.2, (n, 1)) * rng.uniform(0.8, 1.2, (n, types))
        allowed = rng.uniform(size=(n, types)) < 0.9
        allowed[:, 0] = True
        weight, frac = rng.choice([1.0, 2.0], n), 0.75
    else:
        raise ValueError(f"unknown family {name!r}; one of {', '.join(FAMILIES)}")
    scale = rng.choice([1, 2, 4, 8], n).astype(float)
    share = rng.uniform(0.5, 1.5, types)
    cap = np.maximum(8.0, np.round(scale.sum() * frac * share / share.sum()))
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=tuple(f"t{k}" for k in range(types)),
        capacity=cap,
        scale=scale,
        weight=weight,
        throughput=tput,
        allowed=allowed,
    )

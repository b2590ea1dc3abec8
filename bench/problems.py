"""Problem families for the allocation benchmarks and the CI guard (tests/core/test_policy_speed_guard.py).

Every family has distinct rows (per-job random speeds: nothing merges), scales 1/2/4/8 devices, and the
pool sized at a fraction of the devices asked for (25-75%), split unevenly over the types:

- ``random``: every type allowed, weight 0.5-2 (every job its own ceiling), capacity 25-75% of demand;
- ``restricted``: about 80% of the types allowed per job, weight 1 or 2, capacity at 50% of demand;
- ``sparse``: 1-3 allowed types per job, weight 1, 2 or 4, capacity at 25% of demand;
- ``generational``: speeds rise with the type's generation by a per-job exponent (how much a model
  gains from newer hardware) with +-20% noise, 90% of types allowed, weight 1 or 2, capacity at 75%.

On every problem of those four the stage-1 level is the smallest job ceiling (a job of 1 device with
the largest weight, all the time on its best type: ceiling scale_j / w_j, 0.25-0.5), not capacity: the
exact LP's stage 1 says nothing about how the rows are shared. The *capacity-bound* families below
exist for that (issue 13): no job's own ceiling binds at stage 1, the rows do. Each keeps every job's
ceiling at 1 or more (a job's weight is never above its devices) and the pool at 25-35% of demand with
some types scarce (their share of the pool cut to 15-20%), so the rows hold stage 1 well under every
ceiling (``CAPACITY_BOUND``; the exact stage-1 level over the smallest ceiling, bench_policies'
``s1/ceil``, under 0.95: tests/core/test_problem_families.py asserts it on seeds 0-2 at 1,000 jobs).
Their water-fillings have several levels (1-35 distinct at 1,000 jobs, seeds 0-2), not one:

- ``scarce``: weight 1-4 (40/30/20/10%), scale from {1, 2, 4, 8} at or above the weight; two camps of
  types (GPUs, NPUs): 60% of the jobs run on the first camp only, 25% on the second only, 15% on both,
  about 70% of a camp's types allowed; 3 of 8 types scarce;
- ``gang``: gang jobs of 4 or 8 devices, weight 1-4 (uniform); 10% tied to one scarce type (a special
  interconnect), the rest allowed on about 70% of the types; 2 of 8 types scarce;
- ``pinned``: 1-2 allowed types per job (jobs built for one type or two), weight and scale as
  ``scarce``; 2 of 8 types scarce.

A family with program rules (bench/bench_round.py --rules measures the same kind of pool in a whole
``Reconciler.step``). The families above have one row per type; a pool run for public programs has many
more (core/policies/_rules.py): a public reserve per type, per-tenant caps, per-program caps, quotas with
borrowing, and they bind:

- ``ruled``: the ``restricted`` jobs (about 80% of the types allowed, weight 1 or 2, capacity at 50% of
  demand) spread over 20 tenants; 10% of the jobs public, 15% of every type kept for them (public
  reserve); five tenants hold quotas (a quarter of one type each, one of them on two types); eight
  tenants are capped at 4% of each of two types (a public program's per-tenant cap); six tenants run
  half their jobs under a startup program capped at 2% of every type (a program cap). 8 types: 8
  capacity, 8 reserve, 16 tenant-cap, 48 program-cap rows and a quota row per tenant on every type
  someone holds a quota on (80-120).

Seeds: 0 is the tuning seed (profiles; the capacity-bound families were shaped looking at seeds 0-2 at
1,000 jobs for their structure alone, nothing in the core was tuned on them), 1 and 2 are held out
(bench/bench_policies.py's default).
"""

from __future__ import annotations

import numpy as np

from accelpool.core.allocation import AllocationProblem

CEILING_BOUND = ("random", "restricted", "sparse", "generational")
CAPACITY_BOUND = ("scarce", "gang", "pinned")
FAMILIES = CEILING_BOUND + CAPACITY_BOUND
"""The families bench_policies runs by default (issue 13's 14 held-out problems: seven families, seeds 1, 2)."""
RULED = ("ruled",)
"""Named only (``--families ruled``): its figures stand apart from the seven's (docs/allocate.md)."""
ALL = FAMILIES + RULED


def family_problem(name: str, n: int, types: int = 8, seed: int = 0) -> AllocationProblem:
    """One problem of family ``name`` with ``n`` jobs and ``types`` accelerator types."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.1, 10.0, (n, types)) * rng.uniform(0.3, 1.0, (1, types))
    if name in CAPACITY_BOUND:
        return _capacity_bound(name, n, types, rng, base)
    if name == "ruled":
        return _ruled(family_problem("restricted", n, types, seed), rng)
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
        raise ValueError(f"unknown family {name!r}; one of {', '.join(ALL)}")
    scale = rng.choice([1, 2, 4, 8], n).astype(float)
    share = rng.uniform(0.5, 1.5, types)
    cap = np.maximum(8.0, np.round(scale.sum() * frac * share / share.sum()))
    return _problem(n, types, cap, scale, weight, tput, allowed)


def _capacity_bound(
    name: str, n: int, types: int, rng: np.random.Generator, tput: np.ndarray
) -> AllocationProblem:
    """The capacity-bound families (module docstring): every ceiling scale_j / w_j >= 1."""
    weight = rng.choice([1.0, 2.0, 3.0, 4.0], n, p=[0.4, 0.3, 0.2, 0.1])
    scarce = rng.choice(types, max(1, 3 * types // 8 if name == "scarce" else types // 4), replace=False)
    # the smallest of {1, 2, 4, 8} at or above the weight, doubled at random (never past 8)
    scale = np.minimum(8.0, 2.0 ** np.ceil(np.log2(weight)) * 2.0 ** rng.integers(0, 4, n))
    if name == "scarce":
        # two camps of types (GPUs, then NPUs): 60% of jobs run on the first only, 25% on the second
        # only, 15% on both; about 70% of a camp's types allowed
        camp = rng.choice([0, 1, 2], n, p=[0.6, 0.25, 0.15])
        first = np.arange(types) < (types + 1) // 2
        in_camp = np.where(
            (camp == 0)[:, None], first[None, :], np.where((camp == 1)[:, None], ~first[None, :], True)
        )
        allowed = in_camp & (rng.uniform(size=(n, types)) < 0.7)
        pick = np.where(
            camp == 1, rng.integers((types + 1) // 2, types, n), rng.integers(0, (types + 1) // 2, n)
        )
        cut = 0.15
    elif name == "gang":
        # gang jobs of 4 or 8 devices; 10% tied to one of the scarce types (a special interconnect),
        # the rest allowed on about 70% of the types
        scale = rng.choice([4.0, 8.0], n)
        weight = rng.choice([1.0, 2.0, 3.0, 4.0], n)
        tied = rng.uniform(size=n) < 0.1
        allowed = (rng.uniform(size=(n, types)) < 0.7) & ~tied[:, None]
        pick = np.where(tied, rng.choice(scarce, n), rng.integers(0, types, n))
        cut = 0.2
    else:  # pinned
        allowed, cut = np.zeros((n, types), dtype=bool), 0.2
        allowed[np.arange(n), rng.integers(0, types, n)] = True
        pick = rng.integers(0, types, n)
    allowed[np.arange(n), pick] = True
    frac = float(rng.uniform(0.25, 0.35))
    share = rng.uniform(0.5, 1.5, types)
    share[scarce] *= cut
    cap = np.maximum(8.0, np.round(scale.sum() * frac * share / share.sum()))
    return _problem(n, types, cap, scale, weight, tput, allowed)


def _ruled(plain: AllocationProblem, rng: np.random.Generator) -> AllocationProblem:
    """The ``ruled`` family (module docstring): ``plain``'s jobs and pool under program rules."""
    n, tt = plain.n_jobs, plain.n_types
    tenants = 20
    cap = plain.capacity
    tenant_index = rng.integers(0, tenants, n)
    quota = np.zeros((tenants, tt))
    held = rng.choice(tt, 6, replace=tt < 6)  # five tenants' types, and a second one for tenant 4
    for g in range(5):
        quota[g, held[g]] += np.floor(cap[held[g]] * 0.25)
    second = held[5] if held[5] != held[4] else (held[4] + 1) % tt
    quota[4, second] += np.floor(cap[second] * 0.25)
    tenant_cap = np.full((tenants, tt), np.inf)
    for g in range(5, 13):
        for t in rng.choice(tt, 2, replace=False):
            tenant_cap[g, t] = max(8.0, np.floor(cap[t] * 0.04))
    startup = np.arange(13, 19)
    cap_limit = np.tile(np.maximum(8.0, np.floor(cap * 0.02)), (len(startup), 1))
    cap_index = np.full(n, -1, dtype=np.int64)
    for k, g in enumerate(startup.tolist()):
        mine = (tenant_index == g) & (rng.uniform(size=n) < 0.5)
        cap_index[mine] = k
    return AllocationProblem(
        job_ids=plain.job_ids,
        types=plain.types,
        capacity=cap,
        scale=plain.scale,
        weight=plain.weight,
        throughput=plain.throughput,
        allowed=plain.allowed,
        tenant_ids=tuple(f"tenant{g}" for g in range(tenants)),
        tenant_index=tenant_index,
        quota=quota,
        tenant_cap=tenant_cap,
        cap_index=cap_index,
        cap_limit=cap_limit,
        public=rng.uniform(size=n) < 0.1,
        public_reserve=np.floor(cap * 0.15),
    )


def _problem(
    n: int,
    types: int,
    cap: np.ndarray,
    scale: np.ndarray,
    weight: np.ndarray,
    tput: np.ndarray,
    allowed: np.ndarray,
) -> AllocationProblem:
    return AllocationProblem(
        job_ids=tuple(f"j{i}" for i in range(n)),
        types=tuple(f"t{k}" for k in range(types)),
        capacity=cap,
        scale=scale,
        weight=weight,
        throughput=tput,
        allowed=allowed,
    )


def ceiling_gap(problem: AllocationProblem, level: float) -> float:
    """``level`` (a stage-1 level) over the smallest job ceiling scale_j / w_j (weights and scales > 0,
    every job runnable, per-device levels): 1 when stage 1 is held by a job's own ceiling, below 1 when
    capacity holds it."""
    return float(level / (problem.scale / problem.weight).min())


def random_rules(seed: int) -> AllocationProblem:
    """A small random problem under rules (20-200 jobs, 2-5 types, 3-12 tenants; tenant caps, program caps
    tied to a tenant or across tenants, quotas, a public reserve, public jobs, weights, scales 1-4): the
    twelfth session's review generator, used by tests/core (exactness under rules, against plain HiGHS)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 201))
    tt = int(rng.integers(2, 6))
    T = int(rng.integers(3, 13))
    tput = rng.uniform(0.1, 10, (n, tt)) * rng.uniform(0.3, 1, (1, tt))
    allowed = rng.uniform(size=(n, tt)) < rng.uniform(0.4, 1.0)
    allowed[np.arange(n), rng.integers(0, tt, n)] = True
    wmode = rng.integers(0, 3)
    weight = [np.ones(n), rng.choice([1.0, 2.0], n), rng.uniform(0.5, 2, n)][wmode]
    scale = rng.integers(1, 5, n).astype(float)
    frac = rng.uniform(0.2, 0.9)
    share = rng.uniform(0.5, 1.5, tt)
    cap = np.maximum(4.0, np.round(scale.sum() * frac * share / share.sum()))
    tenant_index = rng.integers(0, T, n)
    quota = np.zeros((T, tt))
    if rng.uniform() < 0.6:
        for g in rng.choice(T, int(rng.integers(1, T + 1)), replace=False):
            t = rng.integers(0, tt)
            quota[g, t] = np.floor(cap[t] * rng.uniform(0.05, 0.4))
    tenant_cap = np.full((T, tt), np.inf)
    for g in range(T):
        if rng.uniform() < 0.6:
            for t in rng.choice(tt, int(rng.integers(1, tt + 1)), replace=False):
                tenant_cap[g, t] = max(
                    float(rng.choice([0, 1, 4])), np.floor(cap[t] * rng.uniform(0.01, 0.3))
                )
    K = int(rng.integers(0, 2 * T + 1))
    cap_limit = np.zeros((K, tt))
    for k in range(K):
        cap_limit[k] = np.where(
            rng.uniform(size=tt) < 0.7,
            np.maximum(rng.choice([0, 1, 2, 4]), np.floor(cap * rng.uniform(0.005, 0.2))),
            np.inf,
        )
    cap_index = np.full(n, -1, dtype=np.int64)
    if K:
        mode = rng.integers(0, 3)
        for j in range(n):
            if rng.uniform() < 0.5:
                if mode == 0:  # cap group tied to tenant (k % T == tenant)
                    ks = [k for k in range(K) if k % T == tenant_index[j]]
                    if ks:
                        cap_index[j] = rng.choice(ks)
                else:  # any group (crosses tenants)
                    cap_index[j] = rng.integers(0, K)
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
        tenant_ids=tuple(f"g{g}" for g in range(T)),
        tenant_index=tenant_index,
        quota=quota,
        tenant_cap=tenant_cap,
        cap_index=cap_index,
        cap_limit=cap_limit,
        public=public,
        public_reserve=reserve,
    )

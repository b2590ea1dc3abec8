"""Stand-in policies for tests of the rounds, the reconciler, the stores and the simulator."""

from __future__ import annotations

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem


def greedy_fastest(problem: AllocationProblem) -> Allocation:
    """Each job, in order, gets all of its time on its fastest usable type that still has room."""
    x = np.zeros((problem.n_jobs, problem.n_types))
    free = problem.capacity.copy()
    usable = problem.usable()
    for j in range(problem.n_jobs):
        for t in np.argsort(-problem.throughput[j], kind="stable"):
            if usable[j, t] and free[t] >= problem.scale[j]:
                x[j, t] = 1.0
                free[t] -= problem.scale[j]
                break
    return Allocation(problem.job_ids, problem.types, x, "greedy")


def equal_time(problem: AllocationProblem) -> Allocation:
    """Agnostic time-sharing: every usable pair gets an equal slice of each type's capacity."""
    usable = problem.usable()
    x = np.zeros((problem.n_jobs, problem.n_types))
    for t in range(problem.n_types):
        demand = (usable[:, t] * problem.scale).sum()
        if demand > 0:
            x[usable[:, t], t] = min(1.0, problem.capacity[t] / demand)
    row = x.sum(axis=1, keepdims=True)
    x = np.where(row > 1, x / np.maximum(row, 1e-12), x)
    return Allocation(problem.job_ids, problem.types, x, "equal")

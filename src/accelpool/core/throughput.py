"""ThroughputMatrix: how fast each job runs on each accelerator type (steps/s, whole job at its scale).

A missing entry may be filled by an estimator (a pure function supplied by the caller, e.g. the planner's
roofline model); filled entries are marked as estimated so that measurements can replace them later.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Estimator = Callable[[str, str], float | None]
"""(job id, accelerator type) -> estimated steps/s, or None when it cannot be estimated."""

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class ThroughputMatrix:
    """``values[i, t]``: steps/s of ``jobs[i]`` on ``types[t]``; 0 where it cannot run or is unknown."""

    jobs: tuple[str, ...]
    types: tuple[str, ...]
    values: FloatArray
    estimated: BoolArray

    def __post_init__(self) -> None:
        shape = (len(self.jobs), len(self.types))
        if self.values.shape != shape or self.estimated.shape != shape:
            raise ValueError(f"throughput matrix shape {self.values.shape} does not match {shape}")
        if not np.all(np.isfinite(self.values)) or np.any(self.values < 0):
            raise ValueError("throughputs must be finite and >= 0 steps/s")
        self.values.setflags(write=False)
        self.estimated.setflags(write=False)

    @staticmethod
    def from_rows(
        rows: Mapping[str, Mapping[str, float]],
        types: Sequence[str],
        estimator: Estimator | None = None,
    ) -> ThroughputMatrix:
        """Build from ``{job: {type: steps/s}}``; gaps go to ``estimator`` and are marked estimated."""
        jobs = tuple(rows)
        tindex = {t: k for k, t in enumerate(types)}
        values = np.zeros((len(jobs), len(types)))
        estimated = np.zeros((len(jobs), len(types)), dtype=bool)
        for i, job in enumerate(jobs):
            for t, v in rows[job].items():
                if t in tindex:
                    values[i, tindex[t]] = float(v)
            if estimator is None:
                continue
            for t, k in tindex.items():
                if t not in rows[job]:
                    guess = estimator(job, t)
                    if guess is not None and guess > 0:
                        values[i, k] = guess
                        estimated[i, k] = True
        return ThroughputMatrix(jobs, tuple(types), values, estimated)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Row of each job."""
        return {j: i for i, j in enumerate(self.jobs)}

    def row(self, job: str) -> dict[str, float]:
        i = self.jobs.index(job)
        return {t: float(self.values[i, k]) for k, t in enumerate(self.types) if self.values[i, k] > 0}

    def with_measurement(self, job: str, accelerator: str, steps_per_second: float) -> ThroughputMatrix:
        """A copy where one measured figure replaces the entry (and clears its estimated mark)."""
        i, k = self.jobs.index(job), self.types.index(accelerator)
        values, estimated = self.values.copy(), self.estimated.copy()
        values[i, k], estimated[i, k] = steps_per_second, False
        return ThroughputMatrix(self.jobs, self.types, values, estimated)

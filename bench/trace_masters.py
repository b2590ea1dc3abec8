"""Every master solve of max-min-fairness on one bench/problems.py family problem, one JSON line each: its
jobs and columns, CPU seconds, HiGHS's interior-point, simplex and crossover iterations, the work budget
spent and its limit, whether it was optimal; then a total. The per-column costs and the large masters of
docs/allocate.md's "Twenty-sixth session" come from these lines.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/trace_masters.py FAMILY N SEED

A master the budget refuses prints {"jobs": ..., "refused": true}; one proven infeasible before HiGHS runs
(_wf_overload) shows its iterations as -1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accelpool.core.policies import _wf_master, _wf_stage  # noqa: E402
from accelpool.core.policies.max_min_fairness import max_min_fairness  # noqa: E402
from problems import family_problem  # noqa: E402


def main() -> None:
    family, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    lines: list[dict[str, Any]] = []
    inner = _wf_master.Master.solve

    def traced(self: _wf_master.Master, amb: Any, u: Any, v: Any) -> Any:
        c0, runs = time.process_time(), self.h is not None and self.solved_once
        try:
            out = inner(self, amb, u, v)
        except _wf_stage.OutOfWork:
            lines.append({"jobs": int(len(self.jobs)), "columns": int(len(self.pair_j)), "refused": True})
            print(json.dumps(lines[-1]), flush=True)
            raise
        assert self.h is not None
        info = self.h.getInfo()
        lines.append(
            {
                "jobs": int(len(self.jobs)),
                "columns": int(len(self.pair_j)),
                "cpu": round(time.process_time() - c0, 3),
                "ipm": int(info.ipm_iteration_count),
                "simplex": int(info.simplex_iteration_count),
                "crossover": int(info.crossover_iteration_count),
                "warm": bool(runs),
                "work": float(self.stage.work),
                "limit": float(self.stage.work_limit),
                "optimal": bool(out[0]),
            }
        )
        print(json.dumps(lines[-1]), flush=True)
        return out

    _wf_master.Master.solve = traced  # type: ignore[method-assign]
    problem = family_problem(family, n, seed=seed)
    c0 = time.process_time()
    max_min_fairness(problem)
    solved = [x for x in lines if "cpu" in x]
    print(
        f"total {family} {n} x 8 seed {seed}: {time.process_time() - c0:.2f} s CPU, {len(solved)} master "
        f"solves, {sum(x['cpu'] for x in solved):.2f} s CPU in them"
    )


if __name__ == "__main__":
    main()

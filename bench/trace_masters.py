"""Every master solve of max-min-fairness on one bench/problems.py family problem, one JSON line each: its
jobs and columns, CPU seconds, HiGHS's interior-point, simplex and crossover iterations, the work budget
spent and its limit, whether it was optimal; then a total. The per-column costs and the large masters of
docs/allocate.md's "Twenty-sixth session" come from these lines.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python bench/trace_masters.py FAMILY N SEED

A master the budget refuses prints {"jobs": ..., "refused": true}; one proven infeasible before HiGHS runs
(_wf_overload) shows its iterations as -1.

    ... trace_masters.py FAMILY N SEED --mps DIR [--mps-over SECONDS] [--try]

``--mps DIR``: every master solve that took more than ``--mps-over`` CPU seconds (default 0.1) is also
written to DIR as an MPS file (the model as it was solved: the warm basis is not in it), its line naming it;
``--try`` then solves each file again from scratch by HiGHS's interior point method, dual simplex and primal
simplex (5 s limit each) and prints CPU seconds, status and iterations (docs/allocate.md, "Twenty-seventh
session")."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from accelpool.core.policies import _wf_master, _wf_stage  # noqa: E402
from accelpool.core.policies.max_min_fairness import max_min_fairness  # noqa: E402
from problems import family_problem  # noqa: E402

SOLVERS: dict[str, dict[str, str | int]] = {
    "ipm": {"solver": "ipm"},
    "dual": {"solver": "simplex"},
    "primal": {"solver": "simplex", "simplex_strategy": 4},
}
"""From scratch, for ``--try``: HiGHS's interior point method (with crossover), dual and primal simplex."""


def try_solvers(path: str) -> dict[str, str]:
    """Each of SOLVERS on the MPS file at ``path``, from scratch: 'CPU s status ipm/simplex/crossover'."""
    import highspy._core as _highs

    out = {}
    for name, opts in SOLVERS.items():
        h = _highs._Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
        h.setOptionValue("time_limit", 5.0)
        h.readModel(path)
        for k, v in opts.items():
            h.setOptionValue(k, v)
        c0 = time.process_time()
        h.run()
        i = h.getInfo()
        status = str(h.getModelStatus()).rsplit(".", 1)[-1].removeprefix("k")
        out[name] = (
            f"{time.process_time() - c0:.3f} s {status} "
            f"{i.ipm_iteration_count}/{i.simplex_iteration_count}/{i.crossover_iteration_count}"
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("family")
    ap.add_argument("n", type=int)
    ap.add_argument("seed", type=int)
    ap.add_argument("--mps", type=Path, help="write the costlier masters here as MPS files")
    ap.add_argument("--mps-over", type=float, default=0.1, help="CPU seconds a master took to be written")
    ap.add_argument(
        "--try", dest="try_", action="store_true", help="solve each written file by three solvers"
    )
    a = ap.parse_args()
    family, n, seed = a.family, a.n, a.seed
    if a.mps is not None:
        a.mps.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
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
        if a.mps is not None and lines[-1]["cpu"] > a.mps_over:
            path = str(a.mps / f"{family}-{n}-{seed}-{len(lines)}.mps")
            self.h.writeModel(path)
            lines[-1]["mps"] = path
            written.append(path)
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
        + (f" (the total includes writing {len(written)} MPS files)" if written else "")
    )
    if a.try_:
        for path in written:
            print(json.dumps({"mps": path, **try_solvers(path)}), flush=True)


if __name__ == "__main__":
    main()

"""`accelpool allocate PROBLEM.json`: what-if allocation of one problem by one policy.

Reads PROBLEM.json (format: accelpool.spec.problem_json and docs/allocate.md), runs the policy and
prints a table, or with ``--json``: ``{"policy", "allocation": {job: {type: fraction}},
"effective_throughput": {job: steps/s}, "objective", "solve_seconds", "held": {job: reason}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accelpool.cli.render import console, emit_json
from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.errors import InputError
from accelpool.core.policies import DEFAULT_POLICY, POLICIES, get_policy
from accelpool.spec.problem_json import parse_problem_text


def allocation_json(problem: AllocationProblem, alloc: Allocation) -> dict[str, Any]:
    eff = alloc.effective_throughput(problem.throughput)
    return {
        "policy": alloc.policy,
        "allocation": {j: {t: round(v, 6) for t, v in row.items()} for j, row in alloc.as_dict().items()},
        "effective_throughput": {j: round(float(e), 6) for j, e in zip(problem.job_ids, eff, strict=True)},
        "objective": alloc.objective,
        "solve_seconds": alloc.solve_seconds,
        "held": {j: r.value for j, r in alloc.held.items()},
    }


def allocation_table(problem: AllocationProblem, alloc: Allocation) -> Table:
    eff = alloc.effective_throughput(problem.throughput)
    table = Table(
        title=f"{alloc.policy}: objective {alloc.objective:.6g}, solved in {alloc.solve_seconds * 1000:.1f} ms",
        caption="share = fraction of wall time on the type; steps/s = effective throughput",
    )
    table.add_column("job")
    table.add_column("tenant")
    table.add_column("scale", justify="right")
    for t in problem.types:
        table.add_column(t, justify="right")
    table.add_column("steps/s", justify="right")
    table.add_column("waiting")
    for j, jid in enumerate(problem.job_ids):
        shares = [f"{alloc.x[j, k]:.3f}" if alloc.x[j, k] > 1e-9 else "-" for k in range(problem.n_types)]
        reason = alloc.held.get(jid)
        table.add_row(
            jid,
            problem.tenant_ids[problem.tenant_index[j]],
            str(int(problem.scale[j])),
            *shares,
            f"{eff[j]:.4g}",
            reason.value if reason else "",
        )
    return table


def register(app: typer.Typer) -> None:
    @app.command("allocate")
    def allocate_cmd(
        problem_file: Annotated[Path, typer.Argument(help="PROBLEM.json (see docs/allocate.md)")],
        policy: Annotated[
            str, typer.Option("--policy", "-p", help=f"One of: {', '.join(POLICIES)}")
        ] = DEFAULT_POLICY,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    ) -> None:
        """Allocate accelerator time to the jobs of PROBLEM.json with one policy (what-if analysis)."""
        chosen = get_policy(policy)
        try:
            text = problem_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the problem file: {exc}", file=str(problem_file))
        problem = parse_problem_text(text, str(problem_file))
        alloc = chosen(problem)
        if as_json:
            emit_json(allocation_json(problem, alloc))
        else:
            console.print(allocation_table(problem, alloc))

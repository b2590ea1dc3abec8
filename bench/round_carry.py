"""What the carry-over between lease boundaries is worth: bench_round's steps under program rules (10,000
jobs x 2,000 devices, SQLite, 100 jobs end and 100 arrive between steps) with max-min-fairness's warm hint
as shipped (``hint``), with only the older carry-over (``nohint``: ``Allocation.warm_start``, a level and
stage 1's prices) and with nothing carried (``cold``), one mode after the other in one process.

    python bench/round_carry.py [hint] [nohint] [cold]

Each mode wraps the policy bench_round runs and drops what it should not carry from the allocation the
policy returns; everything else is bench_round.run (docs/control-plane.md).
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_round  # noqa: E402
from accelpool.core.allocation import Allocation, AllocationProblem  # noqa: E402
from accelpool.service.server import get_policy  # noqa: E402
from accelpool.storage.engine import sqlite_url  # noqa: E402

MODES = ("hint", "nohint", "cold")


def carrying(mode: str):  # type: ignore[no-untyped-def]
    policy = get_policy("max-min-fairness")

    def decide(problem: AllocationProblem) -> Allocation:
        alloc = policy(problem)
        if mode == "nohint":
            return replace(alloc, warm_hint=None)
        if mode == "cold":
            return replace(alloc, warm_hint=None, warm_start=())
        return alloc

    return lambda name: decide


def main() -> None:
    modes = sys.argv[1:] or list(MODES)
    for mode in modes:
        if mode not in MODES:
            raise SystemExit(f"error: mode {mode!r}: one of {', '.join(MODES)}")
    for mode in modes:
        setattr(bench_round, "get_policy", carrying(mode))  # noqa: B010 (the policy bench_round runs)
        with tempfile.TemporaryDirectory() as d:
            print(f"== {mode}", flush=True)
            bench_round.run(
                sqlite_url(Path(d) / "round.sqlite"),
                mode,
                10_000,
                2_000,
                "max-min-fairness",
                4,
                0,
                True,
                churned=100,
            )


if __name__ == "__main__":
    main()

"""RoundConfig: every setting that changes what a round decides, passed in (the core has no switches).

The live control plane builds one from its options (one per pool), the simulator records the one it ran
with next to its results, and tests pass their own. Defaults are the live service's.

    lease_seconds      how long an allocation holds (s). Preemption happens only at a lease boundary;
                       between boundaries a round (a "tick") only back-fills idle devices and reacts to
                       exits, cancels and node loss. ``None``: every round is a boundary (per-round
                       re-decision, as Gavel's simulator does).
    min_run_seconds    the operator's minimum run time (s) of a preemptible job before it may be preempted;
                       ``None``: two leases (on Gavel's Philly traces with a 60 s restart overhead, two leases
                       beat one on completion time, preemptions and device-hours lost: docs/scheduling.md).
                       A program may ask for more (``ProgramRules.min_run_seconds``).
    restart_seconds    what one restart costs a job (s of its devices: start-up, reload, lost work since
                       its last checkpoint; default 60 s). A preemptible job is preempted only when the
                       claimant's expected gain over the next lease exceeds it (see ``core.rounds``).
    ranking            how waiting (job, type) pairs are ranked at a boundary: "job" (the job's whole time
                       share over the share of its age it has run), "ratio" (Gavel's per-type x / received)
                       or "deficit" (seconds owed on the type).
    keep_bonus         a running job's rank on the type it holds is multiplied by 1 + keep_bonus; with
                       ranking "job", priorities are also compared in bands of that factor (core/ranking.py).
    arrival_credit     leases (rounds, per-round) of run time a job counts as having received when it
                       arrives, in the ranking only: a job that never ran ranks by what it is owed, not
                       infinitely high. 0.5: Gavel starts every job with half a round (core/rounds.py).
    per_device_levels  max-min fairness levels count devices (s_j x normalized speed); False: per job.
    fairness           "tenant": hierarchical shares program -> tenant -> job (splitting work into more
                       jobs gains a tenant nothing); "job": every job is its own party (Gavel's per-job
                       fairness, for comparisons with the literature).
    move_up            after the policy's pairs and the back-fill, a chosen job moves to a type where it
                       runs faster if devices of it would otherwise idle (under leases only a job that
                       starts now: a running job's move is a restart; never for the speed-blind policies,
                       fifo and fair-share), under every program rule and only as the job's faster_type
                       allows (a dearer type per step: not by default); see core/backfill.py.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Ranking = Literal["job", "ratio", "deficit"]
Fairness = Literal["tenant", "job"]

LIVE_LEASE_SECONDS = 360.0
"""The live default lease: Gavel's round length (6 minutes)."""


@dataclass(frozen=True)
class RoundConfig:
    lease_seconds: float | None = LIVE_LEASE_SECONDS
    min_run_seconds: float | None = None
    restart_seconds: float = 60.0
    ranking: Ranking = "job"
    keep_bonus: float = 0.25
    arrival_credit: float = 0.5
    per_device_levels: bool = True
    fairness: Fairness = "tenant"
    move_up: bool = True

    def __post_init__(self) -> None:
        if self.lease_seconds is not None and not (
            math.isfinite(self.lease_seconds) and self.lease_seconds > 0
        ):
            raise ValueError(f"lease_seconds must be > 0 seconds or None, got {self.lease_seconds}")
        for name in ("min_run_seconds", "restart_seconds", "keep_bonus", "arrival_credit"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v}")
        if self.ranking not in ("job", "ratio", "deficit"):
            raise ValueError(f"ranking must be 'job', 'ratio' or 'deficit', got {self.ranking!r}")
        if self.fairness not in ("tenant", "job"):
            raise ValueError(f"fairness must be 'tenant' or 'job', got {self.fairness!r}")

    @staticmethod
    def per_round() -> RoundConfig:
        """Today's simulator semantics (Gavel's): every round re-decides and may preempt any preemptible
        job, with no minimum run time, no restart cost and per-job fairness."""
        return RoundConfig(lease_seconds=None, min_run_seconds=0.0, restart_seconds=0.0, fairness="job")

    def lease_or(self, round_seconds: float) -> float:
        """The lease length (s); with per-round re-decision, the round."""
        return self.lease_seconds if self.lease_seconds is not None else round_seconds

    def min_run(self) -> float:
        """The operator's minimum run time of a preemptible job (s)."""
        if self.min_run_seconds is not None:
            return self.min_run_seconds
        return 2.0 * self.lease_seconds if self.lease_seconds is not None else 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

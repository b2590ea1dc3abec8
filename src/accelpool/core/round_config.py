"""RoundConfig: every setting that changes what a round decides, passed in (the core has no switches).

The live control plane builds one from its options (one per pool), the simulator records the one it ran
with next to its results, and tests pass their own. Defaults are the live service's.

    ranking            how waiting (job, type) pairs are ranked: "job" (the job's whole time
                       share over the share of its age it has run), "ratio" (Gavel's per-type x / received)
                       or "deficit" (seconds owed on the type).
    keep_bonus         a running job's rank on the type it holds is multiplied by 1 + keep_bonus.
    per_device_levels  max-min fairness levels count devices (s_j x normalized speed); False: per job.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

Ranking = Literal["job", "ratio", "deficit"]


@dataclass(frozen=True)
class RoundConfig:
    ranking: Ranking = "job"
    keep_bonus: float = 0.25
    per_device_levels: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.keep_bonus) and self.keep_bonus >= 0):
            raise ValueError(f"keep_bonus must be a finite number >= 0, got {self.keep_bonus}")
        if self.ranking not in ("job", "ratio", "deficit"):
            raise ValueError(f"ranking must be 'job', 'ratio' or 'deficit', got {self.ranking!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

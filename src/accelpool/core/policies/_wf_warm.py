"""A max-min water-filling's warm hint across rounds (max_min_waterfill_warm's ``hint`` and ``record``):
one round's stages and ceiling-search probes, as (level, row prices, stage or probe), for the next
round's masters to start from and its searches to narrow by. Split from _waterfill.py (the driver); also the
rows' keys and the mapping of a hint's prices onto the next round's rows (max_min_fairness). Nothing here
certifies anything: every stage still ends on its own master's duals, and a probe is refused only by a
proof (weak duality at the hinted prices, _wf_dual._over_budget).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from accelpool.core.allocation import AllocationProblem, FloatArray, WarmHint
from accelpool.core.policies._rules import Rows

Hint = tuple[float, FloatArray, bool]
"""One entry of a warm hint (max_min_waterfill_warm): a level, row prices, and whether a stage (in the
order solved; its level) or a ceiling-search probe (its target ceiling; its last prices, those of the fit
or of a refusal's proof) gave them.

With a hint, a ceiling search also stops taking a refused probe's prices as the next probe's guide (cold,
it does): on bench_round --rules --churn 100 the next probe from them grew to 6,821 jobs until out of
work (4.3 s CPU; from the stage's scarcity prices: 3 solves), as it did cold on the unchanged problem
(5,419 jobs, 5.6 s)."""


class WarmRecord:
    """What one water-filling leaves for the next round's: its stages and probes (Hint, in the order
    solved)."""

    def __init__(self) -> None:
        self.entries: list[Hint] = []


def _after(hint: Sequence[Hint]) -> list[tuple[float, FloatArray]]:
    """The hint's stages after its first, each as (the level of the stage before it, its prices)."""
    stages = [(h[0], h[1]) for h in hint if h[2]]
    return [(stages[k - 1][0], stages[k][1]) for k in range(1, len(stages))]


def _next_hinted(
    after: list[tuple[float, FloatArray]], level: float, price: FloatArray | None
) -> FloatArray | None:
    """Where the stage after one at ``level`` starts: the prices of the hint's first unused stage that
    followed a stage at the same level (the same place in the same water-filling; used entries are
    removed from ``after``), else ``price`` (the stage before's, as without a hint). Matched by level, not
    by position: between rounds with other jobs the stages shift, and another stage's prices were a poor
    start (bench_round --rules --churn 100: a master grown to 5,488 jobs, 4.5 s)."""
    for k, (before, p) in enumerate(after):
        if abs(before - level) <= 1e-9 * max(level, 1e-12) and p.any():
            del after[: k + 1]
            return p
    return price


def _hinted(hint: Sequence[Hint], level: float) -> FloatArray | None:
    """Where a probe at ``level`` starts: the prices of the hint's probe at the same level (the last
    round's search asked the same question; a refusal's prices usually refuse again at once), not all 0
    (None: none; the probe starts as without a hint, but from no refused probe's prices)."""
    same = [h[1] for h in hint if not h[2] and abs(h[0] - level) <= 1e-9 * level and h[1].any()]
    return same[-1] if same else None


def row_keys(problem: AllocationProblem, rows: Rows) -> tuple[Hashable, ...]:
    """A key per row that names it across rounds: its kind, the types it counts, the tenant of its
    first member (caps and quotas are per tenant), and an ordinal among rows with the same key (a
    tenant's own cap before its program caps). A key that names another row only costs a poorer start."""
    seen: dict[Hashable, int] = {}
    out: list[Hashable] = []
    cover = rows.cover(problem.n_types)
    for r, kind in enumerate(rows.kind):
        types = tuple(problem.types[c] for c in np.nonzero(cover[r])[0].tolist())
        tenant = ""
        if kind in ("cap", "quota"):
            first = np.argmax(rows.member[r])
            tenant = problem.tenant_ids[int(problem.tenant_index[first])] if rows.member[r, first] else ""
        key = (kind, types, tenant)
        n = seen.get(key, 0)
        seen[key] = n + 1
        out.append((*key, n))
    return tuple(out)


def hint_stages(hint: WarmHint | None, keys: tuple[Hashable, ...]) -> list[Hint]:
    """The hint's stages with their prices on this problem's rows (a row gone since dropped, a new row at
    price 0, a non-finite or negative price 0); none when no row is shared."""
    if hint is None or not hint.stages:
        return []
    where = {k: i for i, k in enumerate(hint.rows)}
    old = np.array([where.get(k, -1) for k in keys], dtype=np.int64)
    if not (old >= 0).any():
        return []
    have = old >= 0
    out = []
    for level, price, solved in hint.stages:
        p = np.zeros(len(keys))
        p[have] = price[old[have]]
        p[~np.isfinite(p) | (p < 0.0)] = 0.0  # a nonsense price (inf, NaN, negative): no start at all
        out.append((level, p, solved))
    return out


def warm_hint(keys: tuple[Hashable, ...], record: WarmRecord) -> WarmHint:
    """The hint a next round starts from: the rows' keys, the stages and probes (prices only: the first
    stage's plans, once recorded too, went unused after 80b8b63 and were dropped, an n x types copy per
    lease boundary)."""
    return WarmHint(keys, tuple(record.entries))

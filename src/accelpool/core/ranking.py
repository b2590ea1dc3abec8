"""The ranking of one round's (job, type) pairs: which pair gets devices first (core/placement.py places them).

``_pair_order`` ranks the pairs the policy gave a share (x > 0): the job's own priority field first, then
Gavel's priority (its share over the time it received, per type or per job: ``RoundConfig.ranking``),
the keep bonus for a running job on its type; ``_seconds_on`` keeps the seconds run per type between
rounds in the round's DecideCache. The rules are described in core/rounds.py's docstring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.round_config import RoundConfig
from accelpool.core.round_types import JobStatus, Snapshot
from accelpool.core.types import JobState

if TYPE_CHECKING:
    from accelpool.core.rounds import DecideCache


def _pair_order(
    snapshot: Snapshot,
    statuses: list[JobStatus],
    alloc: Allocation,
    usable: np.ndarray,
    config: RoundConfig,
    threshold: float | np.ndarray = 1.0,
    problem: AllocationProblem | None = None,
    cache: DecideCache | None = None,
) -> list[tuple[int, int]]:
    """(job index, type index) pairs with x > 0, highest Gavel priority first. ``threshold``: per job, the
    factor a restart costs it on the type it runs on (``core.rounds._pinned``). ``problem``: the round's
    problem (its submit times and priorities are the jobs'), ``cache``: keeps the seconds run per type."""
    now = snapshot.now
    types = alloc.types
    n = len(statuses)
    if n == 0:
        return []
    floor = snapshot.round_seconds
    submit = problem.submit_time if problem is not None else np.array([s.job.submit_time for s in statuses])
    ages = np.maximum(now - submit, floor)
    received = _seconds_on(statuses, types, problem, cache) / ages[:, None]
    # the arrival credit: seconds a job counts as having run when it arrives (core/rounds.py)
    credit = config.arrival_credit * config.lease_or(floor) / ages
    tindex = {t: k for k, t in enumerate(types)}
    running = JobState.RUNNING
    running_on = np.array(
        [
            tindex.get(s.placement.accelerator, -1) if s.placement is not None and s.state is running else -1
            for s in statuses
        ]
    )
    x = alloc.x
    # the job's own priority field before any ratio: a job is never displaced for one of lower priority
    priority = (
        problem.priority
        if problem is not None
        else np.array([s.job.priority for s in statuses], dtype=np.int64)
    )
    # a running job's rank on its type: the keep bonus times its restart threshold
    keep = (1.0 + config.keep_bonus) * np.broadcast_to(np.asarray(threshold, dtype=float), (n,))
    if config.ranking == "job":
        return _job_pair_order(
            x,
            usable,
            received,
            running_on,
            keep,
            stay=config.lease_seconds is not None,
            priority=priority,
            credit=credit,
        )
    if config.ranking == "deficit":
        prio = (x - received) * ages[:, None]
    else:
        received = received + credit[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            prio = np.where(received > 0, x / np.maximum(received, 1e-12), np.inf)
    on_type = running_on[:, None] == np.arange(len(types))[None, :]
    if (keep != 1.0).any():
        prio = np.where(on_type & (prio > 0), prio * keep[:, None], prio)
    prio = np.where((x > 1e-9) & usable, prio, -np.inf)
    rows, cols = np.nonzero(np.isfinite(prio) | (prio == np.inf))
    in_place = running_on[rows] == cols
    keys = np.lexsort(
        (cols, rows, -x[rows, cols], ~in_place, -np.minimum(prio[rows, cols], 1e300), -priority[rows])
    )
    return list(zip(rows[keys].tolist(), cols[keys].tolist(), strict=True))


def _seconds_on(
    statuses: list[JobStatus],
    types: tuple[str, ...],
    problem: AllocationProblem | None,
    cache: DecideCache | None,
) -> np.ndarray:
    """Seconds each job has run on each type (a new array). With a cache, the rows are kept while the
    problem's job tuple is the same object and only the rows of jobs whose ``seconds_on`` mapping is
    another object are read again (a status's mapping is never changed in place: ``core.ledger`` and
    ``core.lifecycle`` make a new one), so a round where few jobs ran reads few rows."""
    ids = problem.job_ids if problem is not None else None
    spent = [s.seconds_on for s in statuses]
    last = cache.seconds_on if cache is not None else None
    if ids is not None and last is not None and last[0] is ids and last[1] == types:
        seen, rows = last[2], last[3]
        for i, (d, e) in enumerate(zip(spent, seen, strict=True)):
            if d is not e:
                rows[i] = [d.get(t, 0.0) for t in types] if d else 0.0
    else:
        rows = np.zeros((len(statuses), len(types)))
        for k, t in enumerate(types):
            rows[:, k] = [d.get(t, 0.0) if d else 0.0 for d in spent]
    if cache is not None and ids is not None:
        cache.seconds_on = (ids, types, spent, rows)
    return rows.copy()


def _job_pair_order(
    x: np.ndarray,
    usable: np.ndarray,
    received: np.ndarray,
    running_on: np.ndarray,
    keep: np.ndarray,
    *,
    stay: bool = False,
    priority: np.ndarray | None = None,
    credit: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """The job ratio across jobs; within a job, the per-type ratio (see _pair_order's callers' docs).

    A job's pairs share its priority sum_t x / sum_t received (times the keep bonus when it runs on one
    of its types); among them the type with the highest x[j,t] / received[j,t] (keep bonus on the type it
    runs on) is tried first: Gavel's rotation over a job's types, so a job given several types gets each
    in proportion (a speed-blind share is the average device). Ties between jobs: the one running on one
    of its types, then the larger share, then the index. Computed on the pairs with x > 0 only.

    ``stay`` (under leases): a running job given a share of the type it runs on tries that type first.
    A change of type is a restart like any preemption; rotating running jobs between types at every
    lease boundary raised preemptions by half on Gavel's 11cb48 (first 1,000 jobs, 0 s restarts: 1,810
    -> 2,757 per round) and cost average JCT. A job that waits still starts on its type with the highest
    ratio, so the shares over types are followed as jobs restart.

    ``priority``: the jobs' own priority fields, compared before anything else (as in the back-fill's
    fair order, core.reasons.fair_order): a job is never displaced at a boundary for one of lower
    priority, and the "priority" wait reason means just that."""
    rows, cols = np.nonzero((x > 1e-9) & usable)
    if len(rows) == 0:
        return []
    n = x.shape[0]
    total = received.sum(axis=1) if credit is None else received.sum(axis=1) + credit
    ratio = np.divide(x.sum(axis=1), total, out=np.full(n, np.inf), where=total > 0)
    in_place = running_on[rows] == cols
    job_in_place = np.zeros(n, dtype=bool)
    job_in_place[rows[in_place]] = True
    job_prio = ratio * np.where(job_in_place, keep, 1.0)
    xv = x[rows, cols]
    rec = received[rows, cols]
    own = np.divide(xv, rec, out=np.full(len(rows), np.inf), where=rec > 0)
    own = np.where(in_place, np.inf if stay else own * keep[rows], own)
    job_x = np.zeros(n)
    np.maximum.at(job_x, rows, xv)
    sort_keys = [
        cols,
        -xv,
        ~in_place,
        -np.minimum(own, 1e300),
        rows,
        -job_x[rows],
        ~job_in_place[rows],
        -np.minimum(job_prio[rows], 1e300),
    ]
    if priority is not None and len(priority) and priority.min() != priority.max():
        sort_keys.append(-priority[rows])  # the first key; left out when every job has one priority
    keys = np.lexsort(sort_keys)
    return list(zip(rows[keys].tolist(), cols[keys].tolist(), strict=True))

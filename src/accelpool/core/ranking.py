"""The ranking of one round's (job, type) pairs: which pair gets devices first (core/placement.py places them).

``_pair_order`` ranks the pairs the policy gave a share (x > 0): the job's own priority field first, then
Gavel's priority (its share over the time it received, per type or per job: ``RoundConfig.ranking``),
the keep bonus for a running job on its type; ``_seconds_on`` keeps the seconds run per type between
rounds in the round's DecideCache. The rules are described in core/rounds.py's docstring.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, overload

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.round_config import RoundConfig
from accelpool.core.round_types import JobStatus, Snapshot, changed_since
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
) -> Sequence[tuple[int, int]]:
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
    seconds, running_on = _job_rows(statuses, types, problem, cache)
    received = seconds / ages[:, None]
    # the arrival credit: seconds a job counts as having run when it arrives (core/rounds.py)
    credit = config.arrival_credit * config.lease_or(floor) / ages
    x = alloc.x
    # the job's own priority field before any ratio: a job is never displaced for one of lower priority
    priority = (
        problem.priority
        if problem is not None
        else np.array([s.job.priority for s in statuses], dtype=np.int64)
    )
    # a running job's rank on its type: the keep bonus times its restart threshold
    factor = np.asarray(threshold, dtype=float)
    keep = (1.0 + config.keep_bonus) * (factor if factor.shape == (n,) else np.broadcast_to(factor, (n,)))
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
            cache=cache,
            band=1.0 + config.keep_bonus,
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


def _job_rows(
    statuses: list[JobStatus],
    types: tuple[str, ...],
    problem: AllocationProblem | None,
    cache: DecideCache | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds each job has run on each type, and the index of the type each runs on (-1: none). Callers
    only read them. With a cache, both are kept while the problem's job tuple is the same object, and only
    the rows of jobs whose status is another object are read again (a JobStatus is frozen and its
    ``seconds_on`` mapping is never changed in place: ``core.ledger`` and ``core.lifecycle`` make new
    ones), so a round where few jobs changed reads few rows."""
    ids = problem.job_ids if problem is not None else None
    last = cache.seconds_on if cache is not None else None
    tindex = {t: k for k, t in enumerate(types)}
    running = JobState.RUNNING
    if ids is not None and last is not None and last[1] == types and last[0] is not ids and len(last[0]):
        # another job set (jobs arrived or left): the rows of jobs whose status is the very same object
        # are taken from the last round's arrays; only the others are read
        prev = {j: k for k, j in enumerate(last[0])}
        old = last[2]
        take = [prev.get(j, -1) for j in ids]
        seen: Sequence[JobStatus | None] = [old[k] if k >= 0 else None for k in take]
        pick = np.array(take, dtype=np.int64)
        rows, on = last[3][pick], last[4][pick]  # rows of new jobs (-1) are read below
        last = (ids, types, seen, rows, on)
    if ids is not None and last is not None and last[0] is ids and last[1] == types:
        seen, rows, on = last[2], last[3], last[4]
        changed = cache.changed(statuses, seen) if cache is not None else changed_since(statuses, seen)
        if changed:  # written in one assignment per array (the changed rows, in order)
            zero = [0.0] * len(types)
            got = [statuses[i] for i in changed]
            rows[changed] = [[d.get(t, 0.0) for t in types] if (d := s.seconds_on) else zero for s in got]
            on[changed] = [
                tindex.get(p.accelerator, -1) if (p := s.placement) is not None and s.state is running else -1
                for s in got
            ]
    else:
        rows = np.zeros((len(statuses), len(types)))
        spent = [s.seconds_on for s in statuses]
        for k, t in enumerate(types):
            rows[:, k] = [d.get(t, 0.0) if d else 0.0 for d in spent]
        on = np.array(
            [
                tindex.get(p.accelerator, -1) if (p := s.placement) is not None and s.state is running else -1
                for s in statuses
            ],
            dtype=np.int64,
        )
    if cache is not None and ids is not None:
        # the round's list itself (never changed once built): the next round's changed_since is shared
        cache.seconds_on = (ids, types, statuses, rows, on)
    return rows, on


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
    cache: DecideCache | None = None,
    band: float = 1.0,
) -> Sequence[tuple[int, int]]:
    """The job ratio across jobs; within a job, the per-type ratio (see _pair_order's callers' docs).

    A job's pairs share its priority sum_t x / sum_t received (times the keep bonus when it runs on one
    of its types); among them the type with the highest x[j,t] / received[j,t] (keep bonus on the type it
    runs on) is tried first: Gavel's rotation over a job's types, so a job given several types gets each
    in proportion (a speed-blind share is the average device). Ties between jobs: the one running on one
    of its types, then the larger share, then the index. Computed on the pairs with x > 0 only.

    In passes: every job's first type in that order, then every job's second type, and so on (within
    one priority field). A job whose first type has no room for it takes another type only after every
    job has been tried on its own first type, as in Gavel, where a job reaches a type only in that type's
    turn: otherwise a high-ranked gang that misses its first type took at once the type a lower-ranked job
    was given first. On the tuning trace (b436b2, 36:36:36, per-round) it cut the aware policy's average
    completion time 1.4% and the agnostic fair-share's preemptions 12% at equal JCT
    (docs/simulator.md, "Fifth session").

    ``stay`` (under leases): a running job given a share of the type it runs on tries that type first.
    A change of type is a restart like any preemption; rotating running jobs between types at every
    lease boundary raised preemptions by half on Gavel's 11cb48 (first 1,000 jobs, 0 s restarts: 1,810
    -> 2,757 per round) and cost average JCT. A job that waits still starts on its type with the highest
    ratio, so the shares over types are followed as jobs restart.

    ``priority``: the jobs' own priority fields, compared before anything else (as in the back-fill's
    fair order, core.reasons.fair_order): a job is never displaced at a boundary for one of lower
    priority, and the "priority" wait reason means just that.

    ``band`` (1 + the keep bonus): job priorities are compared in bands of that factor (the priority
    rounded down to a power of ``band``); within a band the ties above decide (running first, larger
    share, then the job's index: its place in the problem, submit order). The keep bonus says a running
    job gives way only to one that lags clearly more; the band says the same between waiting jobs, so
    jobs of nearly equal lag keep one order from round to round instead of rotating at every small
    difference: a job that started keeps its turn among its equals and finishes, as in Gavel, where
    near-equal priorities are ordered by the same small differences of share after each reset and the
    same jobs run first (docs/simulator.md, "Ninth session"). 1: no bands.
    """
    pairs = _alloc_pairs(x, usable, priority, cache)
    rows, cols, xsum, xv, neg_job_x, neg_priority, index, group, dense = pairs
    if len(rows) == 0:
        return []
    n, tt = x.shape
    total = received.sum(axis=1) if credit is None else received.sum(axis=1) + credit
    ratio = np.divide(xsum, total, out=np.full(n, np.inf), where=total > 0)
    in_place = running_on[rows] == cols
    job_in_place = np.zeros(n, dtype=bool)
    job_in_place[rows[in_place]] = True
    job_prio = ratio * np.where(job_in_place, keep, 1.0)
    if band > 1.0:  # bands of factor ``band``: the order within one is the ties' (running, share, index)
        ok = np.isfinite(job_prio) & (job_prio > 0)
        level = np.floor(np.log(np.where(ok, job_prio, 1.0)) / np.log(band))
        job_prio = np.where(ok, np.power(band, level), job_prio)
    # The order is that of one sort of the pairs by (the job's priority field, its banded ratio, running
    # on one of its types, its largest share, its index; then within the job: the per-type ratio, on the
    # type it runs on, the share, the type), taken in passes (every job's first type, then its second
    # ...) within each priority field. Worked out as each job's rank (a sort of the jobs) and each pair's
    # place within its job (``choice``), then one sort by (priority field, choice, job rank).
    job_keys = [index, neg_job_x, ~job_in_place, -np.minimum(job_prio, 1e300)]
    if neg_priority is not None:
        job_keys.append(neg_priority)  # the first key; left out when every job has one priority
    by_rank = np.lexsort(job_keys)
    rank = np.empty(n, dtype=np.int64)
    rank[by_rank] = index
    if dense is None:  # one pair per job: the pairs in the order of their jobs
        return _Order(rows, cols, np.argsort(rank[rows], kind="stable"))
    rec = received[rows, cols]
    own = np.divide(xv, rec, out=np.full(len(rows), np.inf), where=rec > 0)
    own = np.where(in_place, np.inf if stay else own * keep[rows], own)
    own_key = -np.minimum(own, 1e300)
    if dense[1] is not None:
        # within each job with two pairs or more (its row of ``tt`` columns), how many of its pairs come
        # before each of its pairs; the others' one pair is their first
        jobs, at, local = dense[3]
        key = np.zeros(dense[2].shape[:2])
        if at is None:
            key[rows, cols] = own_key
            on = running_on[:, None] == dense[0]
        else:
            key[local, cols[at]] = own_key[at]
            on = running_on[jobs][:, None] == dense[0]
        a, b = key[:, :, None], key[:, None, :]
        on_a, on_b = on[:, :, None], on[:, None, :]
        first = (a < b) | (a == b) & ((on_a > on_b) | (on_a == on_b) & dense[1])
        counts = (first & dense[2]).sum(axis=1)
        if at is None:
            choice = counts[rows, cols]
        else:
            choice = np.zeros(len(rows), dtype=np.int64)
            choice[at] = counts[local, cols[at]]
    else:  # many columns: the pairs sorted within each job
        within = np.lexsort((cols, -xv, ~in_place, own_key, rows))
        r = rows[within]
        at = np.arange(len(r))
        starts = np.ones(len(r), dtype=bool)
        starts[1:] = r[1:] != r[:-1]
        choice = np.empty(len(r), dtype=np.int64)
        choice[within] = at - np.maximum.accumulate(np.where(starts, at, 0))
    order = choice * n + rank[rows]
    if group is not None:
        order += group[rows] * (n * tt)
    return _Order(rows, cols, np.argsort(order, kind="stable"))


_Pairs = tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray | None,
    np.ndarray,
    np.ndarray | None,
    tuple[
        np.ndarray,
        np.ndarray | None,
        np.ndarray,
        tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None],
    ]
    | None,
]
_DENSE_TYPES = 8  # up to this many columns, a pair's place within its job is counted on (job, type, type)


def _alloc_pairs(
    x: np.ndarray, usable: np.ndarray, priority: np.ndarray | None, cache: DecideCache | None
) -> _Pairs:
    """What the pair order reads of the allocation alone, kept in ``cache`` while x, usable and the
    priorities are the very same arrays (the reused allocation and the problem cache's arrays); callers
    only read it: the pairs (rows, cols) with x > 0 on a usable type, each job's whole share, the pairs'
    shares, minus each job's largest share (per job), minus the jobs' priority fields (None when every job
    has one priority), the job indices, each job's priority group (0: the highest; None with one
    priority), and what places a pair within its job (None when no job has two pairs): the columns
    (1, tt), then for at most ``_DENSE_TYPES`` columns (else None), over the m jobs with two pairs or
    more, whether pair (j, a) comes before (j, b) by share, then column, when their ratios and running
    are equal (m, tt, tt), whether (j, a) is a pair (m, tt, 1), and (those jobs, their pairs, each such
    pair's job among them), all None when m is every job."""
    last = cache.pairs if cache is not None else None
    if last is not None and last[0] is x and last[1] is usable and last[2] is priority:
        return last[3]
    mask = (x > 1e-9) & usable
    rows, cols = np.nonzero(mask)
    n, tt = x.shape
    xv = x[rows, cols]
    job_x = np.zeros(n)
    np.maximum.at(job_x, rows, xv)
    one = priority is None or not len(priority) or priority.min() == priority.max()
    neg_priority = None if one else -priority  # type: ignore[operator]
    group = None if neg_priority is None else np.unique(neg_priority, return_inverse=True)[1].reshape(-1)
    dense = None
    count = np.bincount(rows, minlength=n)
    if len(rows) and count.max() > 1:  # some job has two pairs or more
        before = None
        # the jobs with two pairs or more, their pairs and each such pair's job among them (None: every
        # job has two pairs or more)
        multi: tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None] = (None, None, None)
        jobs = np.flatnonzero(count > 1)
        sub = mask
        if len(jobs) < n:
            at = np.flatnonzero(count[rows] > 1)
            local = np.zeros(n, dtype=np.int64)
            local[jobs] = np.arange(len(jobs))
            multi = (jobs, at, local[rows[at]])
            sub = mask[jobs]
        if tt <= _DENSE_TYPES:
            neg_x = np.where(sub, -(x if multi[0] is None else x[jobs]), 0.0)
            a, b = neg_x[:, :, None], neg_x[:, None, :]
            by_type = np.arange(tt)[:, None] < np.arange(tt)[None, :]
            before = (a < b) | (a == b) & by_type[None, :, :]
        dense = (np.arange(tt)[None, :], before, sub[:, :, None], multi)
    pairs: _Pairs = (rows, cols, x.sum(axis=1), xv, -job_x, neg_priority, np.arange(n), group, dense)
    if cache is not None:
        cache.pairs = (x, usable, priority, pairs)
    return pairs


class _Order(Sequence[tuple[int, int]]):
    """The pairs ``(rows[k], cols[k])`` for k in ``keys``, as a sequence of (job, type) tuples made when
    read: placement reads the order only until no type has a device free, usually a short prefix."""

    __slots__ = ("_cols", "_keys", "_rows")

    def __init__(self, rows: np.ndarray, cols: np.ndarray, keys: np.ndarray) -> None:
        self._rows, self._cols, self._keys = rows, cols, keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rows, cols, keys = self._rows, self._cols, self._keys
        step = 64
        for lo in range(0, len(keys), step):
            part = keys[lo : lo + step]
            yield from zip(rows[part].tolist(), cols[part].tolist(), strict=True)

    @overload
    def __getitem__(self, i: int) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[int, int]]: ...
    def __getitem__(self, i: int | slice) -> tuple[int, int] | list[tuple[int, int]]:
        if isinstance(i, slice):
            return list(self)[i]
        k = self._keys[i]
        return int(self._rows[k]), int(self._cols[k])

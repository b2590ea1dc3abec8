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
from accelpool.core.round_types import JobStatus, Snapshot, at_rows, changed_since, rows_in
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
    types = alloc.types
    n = len(statuses)
    if n == 0:
        return []
    floor = snapshot.round_seconds
    ages, received, running_on = _received(snapshot, statuses, types, problem, cache)
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


class FirstPairs:
    """Whether, in ``_pair_order``'s order (ranking "job", one priority field: ``_Passes``), each job's
    first pair is still the type it runs on (``on``: its column), i.e. the first pass puts every job on
    its type, for one allocation and usable set (``core.quiet``, every round it could be quiet).

    A job's pairs are ordered as ``_job_pair_order`` orders them: own ratio x / received, highest first
    (clipped at 1e300), the type it runs on first among equals; the ranking across jobs is not needed.
    The keep factor on the type a job runs on is taken at its least, 1 + keep_bonus (a restart threshold
    is at least 1), so the answer is True only when the full order's first pass keeps every job. Always
    False for the other rankings and for several priority fields."""

    __slots__ = ("_cur", "_keep", "_on", "_other", "_ok", "_types")

    def __init__(
        self, on: np.ndarray, alloc: Allocation, usable: np.ndarray, config: RoundConfig, priority: np.ndarray
    ) -> None:
        n = len(on)
        pairs = (alloc.x > 1e-9) & usable
        rows = np.arange(n)
        self._ok = config.ranking == "job" and not (len(priority) and priority.min() != priority.max())
        self._on = (rows, on)
        self._types = alloc.types
        self._cur = alloc.x[rows, on]  # each job's share on the type it runs on
        pairs[rows, on] = False
        self._other = pairs, np.where(pairs, alloc.x, 0.0)  # its other pairs and their shares
        # ``stay`` (under leases): a running job tries the type it runs on first, whatever its ratio
        self._keep = None if config.lease_seconds is not None else 1.0 + config.keep_bonus

    def __call__(
        self, snapshot: Snapshot, statuses: list[JobStatus], problem: AllocationProblem, cache: DecideCache
    ) -> bool:
        if not self._ok or len(statuses) != len(self._cur):
            return False
        if self._keep is None or not len(self._cur):
            return self._ok
        received = _received(snapshot, statuses, self._types, problem, cache)[1]
        other, x_other = self._other
        r_on = received[self._on]
        with np.errstate(divide="ignore", invalid="ignore"):
            # x / received on the type it runs on (inf where it received nothing), times the keep factor
            cur = np.where(r_on > 0, self._cur / r_on, np.inf) * self._keep
            # another pair comes first when its ratio is higher (inf where the job received nothing there)
            ahead = other & ((received <= 0) | (x_other / received > cur[:, None]))
        return not (ahead.any(axis=1) & (cur < 1e300)).any()


def _received(
    snapshot: Snapshot,
    statuses: list[JobStatus],
    types: tuple[str, ...],
    problem: AllocationProblem | None,
    cache: DecideCache | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each job's age (s since it was submitted, at least a round), the share of it it ran on each type,
    and the type it runs on (-1: none): what the pair order ranks by (``_pair_order``, ``FirstPairs``)."""
    submit = problem.submit_time if problem is not None else np.array([s.job.submit_time for s in statuses])
    ages = np.maximum(snapshot.now - submit, snapshot.round_seconds)
    seconds, running_on = _job_rows(statuses, types, problem, cache)
    return ages, seconds / ages[:, None], running_on


def _inf(n: int) -> np.ndarray:
    """``np.full(n, np.inf)`` without its Python wrapper (called every round)."""
    out = np.empty(n)
    out.fill(np.inf)
    return out


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
        moved = cache.problems.moved if cache is not None else None
        # the problem cache's carry when it made this job tuple from last round's (-1: new rows)
        take = (
            moved[2]
            if moved is not None and moved[0] is last[0] and moved[1] is ids
            else rows_in(last[0], ids)
        )
        # a new job's stand-in (the last row's status, another job's) is never its status: read below
        seen: Sequence[JobStatus | None] = at_rows(last[2], take)
        pick = np.array(take, dtype=np.int64)
        rows, on = last[3][pick], last[4][pick]  # rows of new jobs (-1) are read below
        last = (ids, types, seen, rows, on)
    if ids is not None and last is not None and last[0] is ids and last[1] == types:
        seen, rows, on = last[2], last[3], last[4]
        changed = cache.changed(statuses, seen) if cache is not None else changed_since(statuses, seen)
        if changed:  # written in one assignment per array (the changed rows, in order)
            got = [statuses[i] for i in changed]
            # one flat list made into an array (numpy reads a flat list of floats far faster than a list
            # of rows): the same values
            flat: list[float] = []
            zero = [0.0] * len(types)
            for s in got:
                d = s.seconds_on
                flat.extend([d.get(t, 0.0) for t in types] if d else zero)
            rows[changed] = np.array(flat, dtype=np.float64).reshape(len(got), len(types))
            on[changed] = np.array(
                [
                    tindex.get(p.accelerator, -1)
                    if (p := s.placement) is not None and s.state is running
                    else -1
                    for s in got
                ],
                dtype=np.int64,
            )
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
    got = _alloc_pairs(x, usable, priority, cache)
    rows, cols, xsum, xv, neg_xv, neg_job_x, neg_priority = got[:7]
    if len(rows) == 0:
        return []
    n = x.shape[0]
    in_place = running_on[rows] == cols
    job_in_place = np.zeros(n, dtype=bool)
    job_in_place[rows[in_place]] = True
    jobs = got[10]
    if len(jobs) * FEW_JOBS_WITH_PAIRS < n:
        # few jobs have pairs (fifo: the running ones, with hundreds waiting): their keys alone, the same
        # element-wise floats; the other jobs' entries are never read (every read is at rows or jobs)
        total = np.add.reduce(received[jobs], axis=1)
        if credit is not None:
            total = total + credit[jobs]
        ratio = np.divide(xsum[jobs], total, out=_inf(len(jobs)), where=total > 0)
        job_prio = np.zeros(n)
        job_prio[jobs] = _banded(ratio * np.where(job_in_place[jobs], keep[jobs], 1.0), band)
    else:
        # np.add.reduce is what ndarray.sum calls (without its Python wrapper); _inf is np.full(n, inf)
        total = np.add.reduce(received, axis=1)
        if credit is not None:
            total = total + credit
        ratio = np.divide(xsum, total, out=_inf(n), where=total > 0)
        job_prio = _banded(ratio * np.where(job_in_place, keep, 1.0), band)
    if neg_priority is None and len(rows) == len(got[10]):
        # one priority field, and every job with pairs has one (max-min-fairness gives most jobs one type):
        # one pass, the jobs in job order, each with its pair (no pair to order within a job)
        return _Passes.single(got, job_in_place, job_prio)
    rec = received[rows, cols]
    own = np.divide(xv, rec, out=_inf(len(rows)), where=rec > 0)
    own = np.where(in_place, np.inf if stay else own * keep[rows], own)
    if neg_priority is None:  # one priority field: the passes built from a sort of the jobs (_Passes)
        return _passes(got, in_place, own, job_in_place, job_prio)
    sort_keys = [
        cols,
        neg_xv,
        ~in_place,
        -np.minimum(own, 1e300),
        rows,
        neg_job_x,
        ~job_in_place[rows],
        -np.minimum(job_prio[rows], 1e300),
        neg_priority,  # the first key
    ]
    keys = np.lexsort(sort_keys)
    # passes: every job's first type, then every job's second type, ... (a job's pairs are contiguous)
    r = rows[keys]
    at = np.arange(len(r))
    starts = np.ones(len(r), dtype=bool)
    starts[1:] = r[1:] != r[:-1]
    choice = at - np.maximum.accumulate(np.where(starts, at, 0))
    if choice.any():
        keys = keys[np.lexsort([at, choice, neg_priority[keys]])]
    return list(zip(rows[keys].tolist(), cols[keys].tolist(), strict=True))


FEW_JOBS_WITH_PAIRS = 4
"""``_job_pair_order`` computes the job keys on the jobs with pairs alone when they are fewer than one in
this many of the problem's jobs (a test sets it to compare both ways)."""


def _banded(job_prio: np.ndarray, band: float) -> np.ndarray:
    """Job priorities in bands of factor ``band`` (rounded down to a power of it; 1: as they are): the order
    within a band is the ties' (running, share, index)."""
    if band > 1.0:
        ok = np.isfinite(job_prio) & (job_prio > 0)
        level = np.floor(np.log(np.where(ok, job_prio, 1.0)) / np.log(band))
        job_prio = np.where(ok, np.power(band, level), job_prio)
    return job_prio


def _passes(
    got: _Pairs, in_place: np.ndarray, own: np.ndarray, job_in_place: np.ndarray, job_prio: np.ndarray
) -> _Passes:
    """The pair order of ``_job_pair_order`` when every job has one priority field, as its passes.

    The one sort of the pairs by (job keys, row, own ratio, running there, share, type) and the sort of
    the passes over it give: pass p is the p-th pair of every job with more than p pairs, in the order of
    the jobs. So the jobs are sorted alone (by job priority, running on one of their types, largest
    share; a stable sort: then by index), and each job's pairs alone (by own ratio, then running there,
    then the pair's place among its job's pairs by (share, type), fixed with the allocation): with the
    row as the first key each job's pairs keep their block of the pairs (``start``), so the p-th pair of
    job j is at ``start[j] + p`` of that sort."""
    rows, cols, _, _, _, _, _, start, count, xt_rank, jobs, neg_job_x, of_job = got
    # each pair's place within its job: own ratio (highest first), running there first, then (share, type)
    # (a fixed rank, below the number of pairs)
    neg_own = -np.minimum(own, 1e300)
    then = np.where(in_place, 0, len(rows)) + xt_rank
    # the jobs that have pairs: job priority (highest first), running on one of its types, largest share
    key = np.lexsort((neg_job_x, ~job_in_place[jobs], -np.minimum(job_prio[jobs], 1e300)))
    return _Passes(jobs, key, (start, count, of_job), (rows, cols, neg_own, then))


class _Passes(Sequence[tuple[int, int]]):
    """The pair order as passes over the jobs in order (``_passes``), each pass built when reached: a round
    places the jobs of the first pass it reaches until no type has a device free, so the later passes are
    usually never built. The first pass takes each job's first pair by two reductions over the jobs'
    blocks of pairs; the later ones sort each job's pairs (by row, then the two keys)."""

    __slots__ = ("_blocks", "_jobs", "_key", "_list", "_one", "_pairs", "_within")

    def __init__(
        self,
        jobs: np.ndarray,
        key: np.ndarray,
        blocks: tuple[np.ndarray, np.ndarray, np.ndarray],
        pairs: tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None],
        one: bool = False,
    ) -> None:
        self._jobs, self._key, self._blocks, self._pairs = jobs, key, blocks, pairs
        self._one = one  # every job has one pair (pair k is job k's): one pass
        self._within: np.ndarray | None = None
        self._list: list[tuple[int, int]] | None = None

    @classmethod
    def single(cls, got: _Pairs, job_in_place: np.ndarray, job_prio: np.ndarray) -> _Passes:
        """The passes when every job with pairs has exactly one: the jobs sorted as in ``_passes`` (job
        priority, running on its type, largest share; stable), each with its one pair. The pairs are in
        job order (np.nonzero of x), so pair k is the one of ``jobs[k]``."""
        rows, cols, start, count, jobs, neg_job_x = got[0], got[1], got[7], got[8], got[10], got[11]
        key = np.lexsort((neg_job_x, ~job_in_place[jobs], -np.minimum(job_prio[jobs], 1e300)))
        return cls(jobs, key, (start, count, jobs), (rows, cols, None, None), one=True)

    def _pass(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """Pass ``p``: its jobs and their types, in order (empty arrays past the last pass)."""
        start, count, of_job = self._blocks
        rows, cols, neg_own, then = self._pairs
        if self._one:  # each job's only pair is its first; no second pass
            key = self._key
            return (self._jobs[key], cols[key]) if p == 0 else (key[:0], key[:0])
        assert neg_own is not None and then is not None
        jobs = self._jobs[self._key]
        if p == 0:  # each job's first pair: the least neg_own of its block, then the least ``then``
            at = start[self._jobs]
            low = np.minimum.reduceat(neg_own, at)
            tied = np.where(neg_own == low[of_job], then, len(rows) * 2)
            first = (tied == np.minimum.reduceat(tied, at)[of_job]).nonzero()[0]  # one per job, in job order
            return jobs, cols[first[self._key]]
        if self._within is None:
            self._within = np.lexsort((then, neg_own, rows))  # each job's pairs keep their block
        jobs = jobs[count[jobs] > p]
        return jobs, cols[self._within[start[jobs] + p]]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The pairs, pass by pass; a pass's pairs made into tuples a slice at a time (32, then 64, ...),
        as a round usually stops reading within the first slice of the first pass."""
        if self._list is not None:
            yield from self._list
            return
        p = 0
        while True:
            jobs, cols = self._pass(p)
            n = len(jobs)
            if not n:
                return
            a, step = 0, 32
            while a < n:
                yield from zip(jobs[a : a + step].tolist(), cols[a : a + step].tolist(), strict=True)
                a += step
                step *= 2
            p += 1

    def __len__(self) -> int:
        return len(self._pairs[0])

    def __bool__(self) -> bool:
        return len(self._pairs[0]) > 0

    @overload
    def __getitem__(self, i: int) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[int, int]]: ...
    def __getitem__(self, i: int | slice) -> tuple[int, int] | list[tuple[int, int]]:
        if self._list is None:
            self._list = list(iter(self))
        return self._list[i]

    def __eq__(self, other: object) -> bool:
        return list(self) == (list(other) if isinstance(other, _Passes) else other)

    __hash__ = None  # type: ignore[assignment]


_Pairs = tuple[
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray | None,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
]


def _alloc_pairs(
    x: np.ndarray, usable: np.ndarray, priority: np.ndarray | None, cache: DecideCache | None
) -> _Pairs:
    """What the pair order reads of the allocation alone: the pairs (rows, cols) with x > 0 on a usable
    type, each job's whole share, the pairs' shares, minus them, minus each pair's job's largest share,
    minus the pairs' priority fields (None when every job has one priority); for ``_passes``: where each
    job's pairs start among the pairs, how many it has, each pair's place among its job's pairs by (share,
    highest first; type), the jobs with pairs, minus their largest shares and each pair's job's place
    among them. Kept in ``cache`` while x,
    usable and the priorities are the very same arrays (the reused allocation and the problem cache's
    arrays); callers only read them."""
    last = cache.pairs if cache is not None else None
    if last is not None and last[0] is x and last[1] is usable and last[2] is priority:
        return last[3]
    rows, cols = np.nonzero((x > 1e-9) & usable)
    n = x.shape[0]
    xv = x[rows, cols]
    job_x = np.zeros(n)
    np.maximum.at(job_x, rows, xv)
    one = priority is None or not len(priority) or priority.min() == priority.max()
    count = np.bincount(rows, minlength=n)
    jobs = np.flatnonzero(count)
    start = np.concatenate(([0], np.cumsum(count)[:-1])) if n else np.zeros(0, dtype=np.int64)
    by_share = np.lexsort((cols, -xv, rows))  # each job's pairs in a block, largest share first
    xt_rank = np.empty(len(rows), dtype=np.int64)
    xt_rank[by_share] = np.arange(len(rows)) - start[rows[by_share]]
    pairs: _Pairs = (
        rows,
        cols,
        x.sum(axis=1),
        xv,
        -xv,
        -job_x[rows],
        None if one else -priority[rows],  # type: ignore[index]
        start,
        count,
        xt_rank,
        jobs,
        -job_x[jobs],
        np.repeat(np.arange(len(jobs)), count[jobs]),
    )
    if cache is not None:
        cache.pairs = (x, usable, priority, pairs)
    return pairs

"""The pair order built as passes over the sorted jobs (core.ranking._Passes) is the one sort of the pairs.

``_job_pair_order`` documents its order as one sort of the (job, type) pairs by (priority field, job
priority, running on one of its types, largest share, index, own ratio, running there, share, type), then
a stable sort by pass (a job's first type, second type, ...). With one priority field it builds that order
from a sort of the jobs and each job's first pair, and sorts a job's other pairs only when a reader goes
past the first pass. These tests compare it with the one sort, written out below, on random inputs with
many ties (equal shares, equal received times, jobs that never ran).
"""

from __future__ import annotations

from itertools import islice

import numpy as np
import pytest

from accelpool.core.ranking import _alloc_pairs, _job_pair_order, _Passes


def one_sort(
    x: np.ndarray,
    usable: np.ndarray,
    received: np.ndarray,
    running_on: np.ndarray,
    keep: np.ndarray,
    stay: bool,
    credit: np.ndarray | None,
    band: float,
) -> list[tuple[int, int]]:
    """The order as documented: one lexsort of the pairs, then the passes (every job has one priority)."""
    rows, cols = np.nonzero((x > 1e-9) & usable)
    if len(rows) == 0:
        return []
    n = x.shape[0]
    xv = x[rows, cols]
    job_x = np.zeros(n)
    np.maximum.at(job_x, rows, xv)
    total = received.sum(axis=1) + (0.0 if credit is None else credit)
    ratio = np.divide(x.sum(axis=1), total, out=np.full(n, np.inf), where=total > 0)
    in_place = running_on[rows] == cols
    job_in_place = np.zeros(n, dtype=bool)
    job_in_place[rows[in_place]] = True
    job_prio = ratio * np.where(job_in_place, keep, 1.0)
    if band > 1.0:
        ok = np.isfinite(job_prio) & (job_prio > 0)
        level = np.floor(np.log(np.where(ok, job_prio, 1.0)) / np.log(band))
        job_prio = np.where(ok, np.power(band, level), job_prio)
    rec = received[rows, cols]
    own = np.divide(xv, rec, out=np.full(len(rows), np.inf), where=rec > 0)
    own = np.where(in_place, np.inf if stay else own * keep[rows], own)
    keys = np.lexsort(
        [
            cols,
            -xv,
            ~in_place,
            -np.minimum(own, 1e300),
            rows,
            -job_x[rows],
            ~job_in_place[rows],
            -np.minimum(job_prio[rows], 1e300),
        ]
    )
    first_of_job: dict[int, int] = {}
    place = []
    for k in keys.tolist():
        r = int(rows[k])
        place.append(first_of_job.setdefault(r, len(place)))
    choice = [i - p for i, p in enumerate(place)]
    at = sorted(range(len(keys)), key=lambda i: (choice[i], i))
    return [(int(rows[keys[i]]), int(cols[keys[i]])) for i in at]


def random_case(rng: np.random.Generator) -> tuple[tuple[np.ndarray, ...], dict[str, object]]:
    n, tt = int(rng.integers(1, 30)), int(rng.integers(1, 6))
    x = rng.choice([0.0, 0.1, 0.2, 0.25, 0.5, 1.0], size=(n, tt)) * (rng.random((n, tt)) < 0.7)
    usable = rng.random((n, tt)) < 0.85
    received = rng.choice([0.0, 0.05, 0.1, 0.2], size=(n, tt)) * (rng.random((n, tt)) < 0.5)
    running_on = rng.integers(-1, tt, size=n)
    keep = rng.choice([1.0, 1.25, 1.5], size=n)
    credit = None if rng.random() < 0.3 else rng.choice([0.0, 0.01, 0.1], size=n)
    kw: dict[str, object] = {
        "stay": bool(rng.random() < 0.3),
        "credit": credit,
        "band": float(rng.choice([1.0, 1.25])),
    }
    return (x, usable, received, running_on, keep), kw


def _same_order(got, want, rng) -> None:  # type: ignore[no-untyped-def]
    """``got`` reads as ``want`` in full, by len and bool; a reader that stops early sees its beginning;
    indexing (which builds the whole order) gives its last pair."""
    assert list(got) == want
    assert len(got) == len(want) and bool(got) == bool(want)
    stop = int(rng.integers(0, len(want) + 1))
    assert list(islice(iter(got), stop)) == want[:stop]
    if want:
        assert got[len(want) - 1] == want[-1]


@pytest.mark.parametrize("seed", range(4))
def test_passes_equal_the_one_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(500):
        args, kw = random_case(rng)
        want = one_sort(*args, **kw)  # type: ignore[arg-type]
        priority = np.full(args[0].shape[0], int(rng.integers(0, 3)), dtype=np.int64)
        got = _job_pair_order(*args, priority=priority, **kw)  # type: ignore[arg-type]
        _same_order(got, want, rng)


@pytest.mark.parametrize("seed", range(2))
def test_one_pair_per_job_is_the_one_sort(seed: int) -> None:
    """Every job given at most one type (max-min-fairness's usual allocation): the one-pass shortcut
    (``_Passes.single``) gives the documented order, read in full, partly and indexed."""
    rng = np.random.default_rng(100 + seed)
    singles = 0
    for _ in range(500):
        (x, usable, received, running_on, keep), kw = random_case(rng)
        n, tt = x.shape
        pick = rng.integers(0, tt, size=n)
        one = np.zeros_like(x)
        one[np.arange(n), pick] = x[np.arange(n), pick]  # at most one share per job, many ties
        args = (one, usable, received, running_on, keep)
        want = one_sort(*args, **kw)  # type: ignore[arg-type]
        priority = np.full(n, int(rng.integers(0, 3)), dtype=np.int64)
        got = _job_pair_order(*args, priority=priority, **kw)  # type: ignore[arg-type]
        singles += isinstance(got, _Passes) and got._one
        _same_order(got, want, rng)
    assert singles > 300  # the shortcut was taken (not only empty orders)


def test_the_first_pass_is_all_a_placement_reads_before_the_second() -> None:
    # three jobs on two types; job 0 never ran (infinite priority), jobs 1 and 2 ran on type 0
    x = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    usable = np.ones((3, 2), dtype=bool)
    received = np.array([[0.0, 0.0], [0.2, 0.0], [0.1, 0.0]])
    running_on = np.array([-1, 0, -1])
    keep = np.full(3, 1.25)
    got = _job_pair_order(x, usable, received, running_on, keep, priority=np.zeros(3, dtype=np.int64))
    assert isinstance(got, _Passes)
    # job 0 first (never ran); job 2 (share 1 over 0.1) before job 1 (share 1 over 0.2, x 1.25: 6.25
    # against 10); job 1 tries the type it never ran on first (its own ratio there is infinite: Gavel's
    # rotation); job 0's first type is the lower column (equal ratios, equal shares)
    first = list(islice(iter(got), 3))
    assert first == [(0, 0), (2, 0), (1, 1)]
    assert got._within is None  # the second pass is not built until a reader reaches it
    assert list(got) == [(0, 0), (2, 0), (1, 1), (0, 1), (1, 0)]
    assert got._within is not None


def test_the_cached_pairs_are_kept_with_the_allocation() -> None:
    class Cache:
        pairs = None

    x = np.array([[0.5, 0.5], [1.0, 0.0]])
    usable = np.ones((2, 2), dtype=bool)
    cache = Cache()
    a = _alloc_pairs(x, usable, None, cache)  # type: ignore[arg-type]
    assert _alloc_pairs(x, usable, None, cache) is a  # type: ignore[arg-type]
    start, count, xt_rank, jobs = a[7], a[8], a[9], a[10]
    assert start.tolist() == [0, 2] and count.tolist() == [2, 1] and jobs.tolist() == [0, 1]
    assert xt_rank.tolist() == [0, 1, 0]  # equal shares: by type


def test_positions_find_matches_the_mapping_without_building_it() -> None:
    """core.reasons.Positions.find (what a job leaving the memory store's waiting board keeps, instead of a
    reference to the round's whole mapping) answers as ``get`` does, and leaves the dict unbuilt."""
    from accelpool.core.reasons import Positions, position_of

    ids = tuple(f"j{k}" for k in range(50))
    lazy = Positions(ids)
    for key in (*ids, "absent"):
        assert position_of(lazy, key) == dict(zip(ids, range(1, 51), strict=True)).get(key)
    assert lazy._data is None  # searched, not built
    assert lazy["j7"] == 8 and lazy.find("j7") == 8 and lazy.find("nope") is None  # built: the dict answers
    assert position_of({"a": 3}, "a") == 3 and position_of({}, "a") is None


@pytest.mark.parametrize("seed", range(3))
def test_few_jobs_with_pairs_give_the_same_order(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Most jobs given nothing (fifo: the running jobs have x = 1, hundreds wait with x = 0): the job keys
    computed on the jobs with pairs alone give the order of the whole computation and of the one sort,
    with one priority field and with several."""
    import accelpool.core.ranking as ranking

    rng = np.random.default_rng(200 + seed)
    subset = 0
    for _ in range(300):
        (x, usable, received, running_on, keep), kw = random_case(rng)
        n = x.shape[0]
        x = x * (rng.random(n) < 0.15)[:, None]  # most rows empty
        args = (x, usable, received, running_on, keep)
        priority = rng.integers(0, 2 if rng.random() < 0.5 else 1, size=n).astype(np.int64)
        monkeypatch.setattr(ranking, "FEW_JOBS_WITH_PAIRS", 4)
        got = list(_job_pair_order(*args, priority=priority, **kw))  # type: ignore[arg-type]
        monkeypatch.setattr(ranking, "FEW_JOBS_WITH_PAIRS", 0)  # never the subset: the whole computation
        whole = list(_job_pair_order(*args, priority=priority, **kw))  # type: ignore[arg-type]
        assert got == whole
        if priority.min() == priority.max():
            assert got == one_sort(*args, **kw)  # type: ignore[arg-type]
        jobs = np.flatnonzero(((x > 1e-9) & usable).any(axis=1))
        subset += bool(len(jobs)) and len(jobs) * 4 < n
    assert subset > 50  # the subset path was taken

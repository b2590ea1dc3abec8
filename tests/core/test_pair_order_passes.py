"""The job ranking's pair order (core.ranking._job_pair_order) equals its definition: one sort of the pairs
by the job's priority field, banded ratio, running on one of its types, largest share and index, then by
the per-type ratio, running there, share and type, taken in passes (every job's first type, then every
job's second type ...) within each priority field. The ranking works it out as job ranks and places
within jobs (a count over (job, type, type) up to 8 types, a sort of the pairs above); both must give the
order of the definition, also with priorities, ties, jobs that never ran and many types."""

from __future__ import annotations

import numpy as np
import pytest

from accelpool.core.ranking import _job_pair_order
from accelpool.core.rounds import DecideCache


def _by_definition(x, usable, received, running_on, keep, stay, priority, credit, band):  # type: ignore[no-untyped-def]
    rows, cols = np.nonzero((x > 1e-9) & usable)
    if len(rows) == 0:
        return []
    n = x.shape[0]
    xv = x[rows, cols]
    job_x = np.zeros(n)
    np.maximum.at(job_x, rows, xv)
    total = received.sum(axis=1) + credit
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
        (
            cols,
            -xv,
            ~in_place,
            -np.minimum(own, 1e300),
            rows,
            -job_x[rows],
            ~job_in_place[rows],
            -np.minimum(job_prio[rows], 1e300),
            -priority[rows],
        )
    )
    r = rows[keys]
    at = np.arange(len(r))
    starts = np.ones(len(r), dtype=bool)
    starts[1:] = r[1:] != r[:-1]
    choice = at - np.maximum.accumulate(np.where(starts, at, 0))
    keys = keys[np.lexsort((at, choice, -priority[rows][keys]))]
    return list(zip(rows[keys].tolist(), cols[keys].tolist(), strict=True))


@pytest.mark.parametrize("tt", [1, 2, 3, 5, 8, 9, 12])
def test_pair_order_is_the_one_sort_in_passes(tt: int) -> None:
    rng = np.random.default_rng(tt)
    for case in range(150):
        n = int(rng.integers(1, 40))
        # coarse values so that ties (equal shares, equal ratios, equal bands) are common
        x = rng.integers(0, 4, size=(n, tt)) / 4.0
        usable = rng.random((n, tt)) < 0.85
        if case % 7 == 0:  # every job has a share of every type (as fair-share gives)
            x, usable = x + 0.25, np.ones((n, tt), dtype=bool)
        seconds = rng.integers(0, 3, size=(n, tt)) * 360.0
        age = rng.integers(1, 5, size=n) * 360.0
        received = seconds / age[:, None]
        running_on = np.where(rng.random(n) < 0.4, rng.integers(0, tt, size=n), -1)
        keep = np.where(rng.random(n) < 0.2, 1.5, 1.25)
        credit = (0.5 * 360.0 / age) if case % 3 else np.zeros(n)
        priority = rng.integers(0, 3, size=n) if case % 2 else np.zeros(n, dtype=np.int64)
        band = 1.25 if case % 4 else 1.0
        stay = case % 5 == 0
        want = _by_definition(x, usable, received, running_on, keep, stay, priority, credit, band)
        cache = DecideCache()
        for _ in range(2):  # the second call reads what the first kept in the cache
            got = _job_pair_order(
                x,
                usable,
                received,
                running_on,
                keep,
                stay=stay,
                priority=priority,
                credit=credit,
                cache=cache,
                band=band,
            )
            assert list(got) == want, (tt, case)
            assert [got[i] for i in range(len(got))] == want

"""How soon a SQLite write transaction begins once the write lock it waited for is free.

    python bench/bench_sqlite_lock.py [--seconds 3] [--holds 10,30,60]

A second process (the scheduler's stand-in) holds the database's write lock for ``hold`` ms, then
pauses 20 ms, over and over; this process (the API's group-commit writer's stand-in) begins a
``SqlStore.write()`` transaction every 13 ms. For each write that had to wait, it prints how long after the
other process's commit it began: the time a submission batch loses behind a scheduler round's write
beyond the write itself. Before ``storage/engine.py: _begin_write`` this was SQLite's busy handler (sleeps
of 1, 2, 5, ... 100 ms); run it with ``PYTHONPATH=<older tree>/src`` to compare.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from typing import Any

from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore


def _holder(url: str, hold: float, seconds: float, ready: Any, out: Any) -> None:
    store = SqlStore(url)
    released = []
    ready.set()
    stop_at = time.time() + seconds
    while time.time() < stop_at:
        with store.write() as c:
            c.exec_driver_sql("SELECT 1")
            time.sleep(hold)
        released.append(time.perf_counter())  # CLOCK_MONOTONIC: comparable across processes
        time.sleep(0.02)
    store.close()
    out.put(released)


def measure(url: str, hold: float, seconds: float) -> list[float]:
    """ms from the other process's commit to the start of each write of this process that waited."""
    store = SqlStore(url)
    ctx = mp.get_context("spawn")
    out, ready = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=_holder, args=(url, hold, seconds, ready, out))
    p.start()
    ready.wait(timeout=120)
    stop_at = time.time() + seconds
    writes = []
    while time.time() < stop_at - 0.2:
        time.sleep(0.013)
        t0 = time.perf_counter()
        with store.write():
            writes.append((t0, time.perf_counter()))
    released = out.get(timeout=60)
    p.join()
    store.close()
    late = []
    for t0, t1 in writes:
        during = [r for r in released if t0 < r <= t1]
        if during:
            late.append((t1 - during[-1]) * 1000)
    return sorted(late)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--holds", default="10,30,60", help="ms the other process holds the lock each time")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        url = sqlite_url(os.path.join(d, "lock.sqlite"))
        SqlStore(url).close()  # migrated once
        for hold in (float(h) / 1000 for h in a.holds.split(",")):
            late = measure(url, hold, a.seconds)
            if not late:
                print(f"hold {hold * 1000:.0f} ms: no write waited")
                continue
            print(
                f"hold {hold * 1000:.0f} ms: {len(late)} writes waited; began after the release: median "
                f"{statistics.median(late):.2f} ms, max {late[-1]:.2f} ms (load average {os.getloadavg()[0]:.1f})"
            )


if __name__ == "__main__":
    main()

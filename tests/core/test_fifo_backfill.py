"""fifo's EASY back-fill: a job behind a blocked head starts only where it cannot delay the head's
reserved start (the running jobs' estimated ends: steps left / speed)."""

from __future__ import annotations

import numpy as np
from tests.helpers import problem_of

from accelpool.core.policies import get_policy
from accelpool.core.types import WaitReason


def _queue(cap, scale, steps, *, tput=None, keep=None):
    """Jobs j0.. in submit order; j0 runs (keep_type 0) unless ``keep`` says otherwise."""
    n = len(scale)
    tput = np.ones((n, len(cap))) if tput is None else np.asarray(tput, dtype=float)
    keep = [0] + [-1] * (n - 1) if keep is None else keep
    return problem_of(
        tput,
        cap,
        scale,
        submit_time=np.arange(n, dtype=float),
        keep_type=np.array(keep, dtype=np.int64),
        remaining_steps=np.array(steps, dtype=float),
    )


def test_a_job_that_would_delay_the_head_does_not_start():
    # 3 devices: j0 holds 2 until t=1000; head j1 needs all 3 then; j2 (1 device) would run to t=5000
    alloc = get_policy("fifo")(_queue([3], [2, 3, 1], [1000, 100, 5000]))
    assert alloc.x[:, 0].tolist() == [1.0, 0.0, 0.0]
    assert alloc.held["j1"] == WaitReason.CAPACITY
    assert alloc.held["j2"] == WaitReason.CAPACITY


def test_a_job_that_ends_before_the_heads_reservation_starts():
    # the same queue, but j2 ends at t=500, before j0 frees the head's devices at t=1000
    alloc = get_policy("fifo")(_queue([3], [2, 3, 1], [1000, 100, 500]))
    assert alloc.x[:, 0].tolist() == [1.0, 0.0, 1.0]
    assert alloc.held["j1"] == WaitReason.CAPACITY


def test_a_long_job_starts_within_the_devices_the_head_leaves_over():
    # 4 devices: j0 holds 2 until t=1000; head j1 needs 3 then, leaving 1 over: the first long 1-device
    # job takes that one, the second would delay the head and waits
    alloc = get_policy("fifo")(_queue([4], [2, 3, 1, 1], [1000, 100, 9000, 9000]))
    assert alloc.x[:, 0].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert alloc.held["j3"] == WaitReason.CAPACITY


def test_the_reservation_uses_the_speed_on_the_type():
    # j2 has 600 steps: 600 s at speed 1 would end before t=1000; at speed 0.5 (1200 s) it would not
    fast = get_policy("fifo")(_queue([3], [2, 3, 1], [1000, 100, 600]))
    slow = get_policy("fifo")(_queue([3], [2, 3, 1], [1000, 100, 600], tput=[[1.0], [1.0], [0.5]]))
    assert fast.x[2, 0] == 1.0
    assert slow.x[2, 0] == 0.0


def test_a_job_on_a_type_the_head_is_not_reserved_on_starts():
    # head j1 may run on t0 only; j2 (long, unknown length) may run on t1 and starts there
    tput = [[1.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
    p = _queue([3, 1], [2, 3, 1], [1000, 100, np.inf], tput=tput)
    alloc = get_policy("fifo")(p)
    assert alloc.x.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]


def test_without_estimates_the_heads_types_are_left_to_the_head():
    # j0's end is unknown (no total steps): no reservation; j2 may not take the head's type t0 (1 free)
    tput = [[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [1.0, 0.0]]
    p = _queue([3, 1], [2, 3, 1, 1], [np.inf, 100, 10, 10], tput=tput)
    alloc = get_policy("fifo")(p)
    assert alloc.x.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    assert alloc.held["j3"] == WaitReason.CAPACITY

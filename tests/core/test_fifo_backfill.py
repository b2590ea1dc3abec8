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


def _capped(scale, steps, tenant, cap_t, keep, cap=8):
    """Jobs j0.. in submit order on one type of ``cap`` devices; tenant 0 ("T") has a cap of ``cap_t``."""
    n = len(scale)
    return problem_of(
        np.ones((n, 1)),
        [cap],
        scale,
        submit_time=np.arange(n, dtype=float),
        keep_type=np.array(keep, dtype=np.int64),
        remaining_steps=np.array(steps, dtype=float),
        tenant_ids=("T", "U"),
        tenant_index=np.array(tenant, dtype=np.int64),
        tenant_cap=np.array([[float(cap_t)], [np.inf]]),
    )


def test_a_back_filled_job_does_not_take_the_heads_room_under_its_tenant_cap():
    # 8 devices; T may hold 4. U's j0 (4 devices) ends at t=50, U's j1 (2) at t=1000: 2 free. T's head j2
    # needs 4: the devices are free at t=50, and T's cap admits 4. T's j3 (2 devices, to t=2000) fits the
    # 2 devices the head leaves over at t=50, but it would hold 2 of T's 4 under the cap then: the head
    # could not start until t=2000. It waits (it used to start: the reservation counted devices only).
    alloc = get_policy("fifo")(_capped([4, 2, 4, 2], [50, 1000, 100, 2000], [1, 1, 0, 0], 4, [0, 0, -1, -1]))
    assert alloc.x[:, 0].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert alloc.held["j3"] == WaitReason.CAPACITY
    # a U job of the same size and length is not held to T's cap: it starts in those 2 devices
    alloc = get_policy("fifo")(_capped([4, 2, 4, 2], [50, 1000, 100, 2000], [1, 1, 0, 1], 4, [0, 0, -1, -1]))
    assert alloc.x[:, 0].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_the_reservation_waits_for_the_heads_rule_room():
    # 5 devices; T holds 3 of its cap of 4 (j0, to t=1000); U's j1 (1 device) ends at t=50; 1 device free.
    # T's head j2 needs 2: devices are free at t=50, but the cap admits it only when j0 ends, at t=1000.
    # U's j3 (1 device, to t=500) ends before that and starts (it used to wait: the reservation said
    # t=50, with no device left over)
    alloc = get_policy("fifo")(
        _capped([3, 1, 2, 1], [1000, 50, 100, 500], [0, 1, 0, 1], 4, [0, 0, -1, -1], cap=5)
    )
    assert alloc.x[:, 0].tolist() == [1.0, 1.0, 0.0, 1.0]

"""A job the executor cannot start for a reason of its own (``ExecutorFault``: an earlier run's wrapper still
alive, its state dir not makeable) is requeued, not failed, and held out of the rounds for a while, the
hold doubling with each fault in a row: it used to be placed, fail and be requeued every round, its devices
idle for each of those rounds while another job waited for them."""

from __future__ import annotations

import pytest
from tests.helpers import greedy_fastest

from accelpool.core.types import Job, JobState, Node
from accelpool.executors.fake import FakeExecutor
from accelpool.ports import ExecutorFault, Launch, RunSpec
from accelpool.runtime.clock import VirtualClock
from accelpool.runtime.reconciler import FAULT_HOLD, Reconciler
from accelpool.storage.memory import MemoryStore
from accelpool.storage.sql import SqlStore


class Stuck(FakeExecutor):
    """Refuses to start job ``stuck`` the first ``faults`` times, as the local executor does while an
    earlier run's wrapper is alive."""

    def __init__(self, clock: VirtualClock, faults: int) -> None:
        super().__init__(clock)
        self.faults, self.tries = faults, 0

    def start(self, launch: Launch) -> None:
        if launch.job.id == "stuck":
            self.tries += 1
            if self.tries <= self.faults:
                raise ExecutorFault("an earlier run of job stuck is still alive (wrapper pid 4242)")
        super().start(launch)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_job_the_executor_cannot_start_is_held_and_its_devices_go_to_others(kind, tmp_path) -> None:
    store = MemoryStore() if kind == "memory" else SqlStore(f"sqlite:///{tmp_path / 's.sqlite'}")
    store.add_nodes([Node("n1", "h100", 1)])
    clock = VirtualClock()
    ex = Stuck(clock, faults=2)
    rec = Reconciler(store, ex, clock, greedy_fastest, round_seconds=10.0)
    store.submit(Job("stuck", scale=1), {"h100": 1.0}, RunSpec("train"))
    rec.step()  # t=0: placed; the executor refuses: requeued and held 30 s
    assert ex.tries == 1 and ex.active() == set()
    if kind == "sqlite":
        view = store.get_job("stuck")
        assert JobState(view.state) is JobState.QUEUED
        why = [e.reason for e in store.job_events("stuck") if "still alive" in e.reason]
        assert why and "tried again in 30 s" in why[0], why
    store.submit(Job("other", scale=1, total_steps=20.0), {"h100": 1.0}, RunSpec("train"))
    clock.advance(10.0)
    rec.step()  # t=10: the held job is left out; the other one gets the device
    assert ex.tries == 1 and ex.active() == {"other"}
    clock.advance(10.0)
    rec.step()  # t=20: the other job ends (20 steps at 1 step/s); the stuck one is still held
    clock.advance(10.0)
    rec.step()  # t=30: its hold is over: tried again, refused again, held 60 s
    assert ex.tries == 2
    for _ in range(5):  # t=40..80: held
        clock.advance(10.0)
        rec.step()
        assert ex.tries == 2
    clock.advance(10.0)
    rec.step()  # t=90: tried a third time, and it starts
    assert ex.tries == 3 and ex.active() == {"stuck"}
    assert FAULT_HOLD == (30.0, 3600.0)
    if kind == "sqlite":
        store.close()

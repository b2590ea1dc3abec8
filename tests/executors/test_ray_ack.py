"""RayExecutor.ack releases the actors and placement group of each ended job it kept, and one whose release
fails (Ray's control store not answering) stays kept and is released at a later ack, instead of the rest of
the list being skipped and its placement group held for good (a review). Ray itself is a stand-in here: the
executor's real runs are in test_ray_executor.py."""

from __future__ import annotations

from typing import Any

from accelpool.executors.ray import RayExecutor
from accelpool.executors.ray_runner import _Rank, _RayJob
from accelpool.ports import EventKind, ExecutorEvent


class FlakyRay:
    """Ray's kill and placement-group removal, failing for the first ``failures`` kills."""

    def __init__(self, failures: int) -> None:
        self.failures, self.killed, self.removed = failures, [], []
        self.util = self

    def kill(self, actor: Any, no_restart: bool = True) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("GCS not answering")
        self.killed.append(actor)

    def remove_placement_group(self, pg: Any) -> None:
        self.removed.append(pg)


def test_a_failed_release_is_kept_and_tried_again_and_does_not_stop_the_others() -> None:
    ex = object.__new__(RayExecutor)
    ray = FlakyRay(failures=1)
    ex._ray = ray
    ex._ended = {j: _RayJob(j, 1, f"pg-{j}", [_Rank(f"actor-{j}", "node")], 5.0, 0.0) for j in ("a", "b")}
    ex.ack([ExecutorEvent(j, EventKind.EXITED, 1.0, exit_code=0) for j in ("a", "b")])
    assert ray.removed == ["pg-b"] and list(ex._ended) == ["a"]  # a's failed, b's went
    ex.ack([])  # any later ack tries the kept one again
    assert ray.removed == ["pg-b", "pg-a"] and ex._ended == {}

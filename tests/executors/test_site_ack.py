"""``SiteExecutors.ack`` sends each recorded end to the executor that reported it. An end the default
executor reported before any site was registered (the service drove it alone; the round's record failed and
the reconciler kept the events) reaches the default executor too: it was never acked before (a review), so
the executor kept the job's state until a restart reported the end again."""

from __future__ import annotations

from collections.abc import Sequence

from accelpool.core.round_types import Placement
from accelpool.core.types import DEFAULT_SITE, Job
from accelpool.executors.sites import SiteExecutors
from accelpool.ports import EventKind, ExecutorEvent, Launch, RunSpec
from accelpool.runtime.clock import VirtualClock


class Recording:
    """An executor that reports the events it is given and remembers what it is acked."""

    def __init__(self) -> None:
        self.pending: list[ExecutorEvent] = []
        self.acked: list[ExecutorEvent] = []

    def start(self, launch: Launch) -> None:
        pass

    def stop(self, job_id: str, reason: str) -> None:
        pass

    def poll(self) -> list[ExecutorEvent]:
        out, self.pending = self.pending, []
        return out

    def ack(self, events: Sequence[ExecutorEvent]) -> None:
        self.acked.extend(events)

    def active(self) -> set[str]:
        return set()

    def logs(self, job_id: str) -> str:
        return ""

    def close(self) -> None:
        pass


def end(job: str, t: float = 1.0) -> ExecutorEvent:
    return ExecutorEvent(job, EventKind.EXITED, t, exit_code=0)


def test_an_end_polled_before_any_site_is_acked_to_the_default_executor() -> None:
    default, hpc = Recording(), Recording()
    default.pending = [end("early")]
    kept = default.poll()  # the service drove the default executor alone; the record failed
    sites = SiteExecutors({DEFAULT_SITE: default, "hpc": hpc}, VirtualClock(0.0))
    try:
        hpc.pending = [end("there"), ExecutorEvent("there", EventKind.PROGRESS, 1.0, steps=5.0)]
        polled = sites.poll()
        sites.ack([*kept, *polled])
        assert default.acked == kept
        assert hpc.acked == [end("there")]  # its end, not its progress, nor the default's end
    finally:
        sites.close()


def test_an_end_made_by_the_router_itself_is_acked_to_no_executor() -> None:
    default = Recording()
    clock = VirtualClock(0.0)
    sites = SiteExecutors({DEFAULT_SITE: default}, clock)
    try:
        job = Job("lost-site", scale=1, submit_time=0.0)
        sites.start(Launch(job, Placement(job.id, "h100", (("n0", (0,)),), site="gone"), RunSpec(), 1.0))
        polled = sites.poll()
        assert [(e.job, e.kind) for e in polled] == [("lost-site", EventKind.LOST)]
        assert "site-lost" in polled[0].reason
        sites.ack(polled)
        assert default.acked == []
    finally:
        sites.close()

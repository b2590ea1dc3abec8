"""FakeExecutor: runs no process; a job progresses at its expected throughput on the clock it is given.

It is the simulator's executor and the live reconciler's test double, so both make the same decisions on
the same input. A job started at time s on throughput r (steps/s) with restart overhead o (seconds) has
done ``steps_done + r * max(0, now - s - o)`` steps at ``now`` (o applies when a job is resumed or moved,
i.e. ``launch.attempt > 1``; a first start pays none, as in published simulators), and exits with code 0 at the exact moment
it reaches ``total_steps`` (jobs without total_steps run until stopped). ``fail_at`` lets tests inject
failures; ``lose(job)`` simulates a node loss.

Every attempt's first progress report is dated when its work resumes (``started + o``, o = the restart
overhead, on every attempt): the store measures a job's restart cost from it (STARTED to first progress,
``core.lifecycle``), so the preemption gate sees what a restart costs in the simulation.

By default every ``poll`` reports each running job's progress, as a live executor does. The simulator
passes ``progress_events=False`` when no job has a deadline: then progress is reported only when it matters
to the store (a stop, a loss, an exit), which saves one event per running job per round; steps done while
a job keeps running are not read by any policy without deadlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from accelpool.ports import Clock, EventKind, ExecutorEvent, ExecutorFault, Launch, StopCause


@dataclass
class _Run:
    launch: Launch
    started: float
    steps_at_start: float
    stopping: str | None = None
    end: float | None = None
    reported: bool = False  # its first progress report (when its work resumed) was sent


class FakeExecutor:
    def __init__(
        self, clock: Clock, restart_overhead_seconds: float = 0.0, *, progress_events: bool = True
    ) -> None:
        self.clock = clock
        self.progress_events = progress_events
        self.restart_overhead = float(restart_overhead_seconds)
        self._runs: dict[str, _Run] = {}
        self._events: list[ExecutorEvent] = []
        self.fail_at: dict[str, float] = {}
        self.launches: list[Launch] = []
        self.stops: list[tuple[str, str]] = []
        self._checkpoint: dict[str, float] = {}

    def start(self, launch: Launch) -> None:
        job = launch.job.id
        if job in self._runs:
            raise ExecutorFault(f"job {job} is already running here")
        now = self.clock.now()
        # resume from the job's own checkpoint (what it reached when stopped), as a real job would
        steps = max(launch.steps_done, self._checkpoint.pop(job, 0.0))
        run = self._runs[job] = _Run(launch, now, steps)
        run.end = self._finish_time(run)
        self.launches.append(launch)
        self._events.append(ExecutorEvent(job, EventKind.STARTED, now))

    def _overhead(self, run: _Run) -> float:
        return self.restart_overhead if run.launch.attempt > 1 else 0.0

    def _steps(self, run: _Run, at: float) -> float:
        busy = max(0.0, at - run.started - self._overhead(run))
        return run.steps_at_start + run.launch.steps_per_second * busy

    def _finish_time(self, run: _Run) -> float | None:
        total = run.launch.job.total_steps
        rate = run.launch.steps_per_second
        if total is None or rate <= 0:
            return None
        left = max(0.0, total - run.steps_at_start)
        return run.started + self._overhead(run) + left / rate

    def stop(self, job_id: str, reason: str) -> None:
        run = self._runs.pop(job_id, None)
        self.stops.append((job_id, reason))
        if run is None:
            return
        now = self.clock.now()
        steps = self._checkpoint[job_id] = self._steps(run, now)
        self._events.append(ExecutorEvent(job_id, EventKind.PROGRESS, now, steps=steps))
        self._events.append(
            ExecutorEvent(
                job_id,
                EventKind.EXITED,
                now,
                exit_code=-15,
                reason=f"stopped: {reason}",
                cause=StopCause.REQUESTED,
            )
        )

    def lose(self, job_id: str, reason: str = "node-lost", cause: StopCause = StopCause.NODE_LOST) -> None:
        run = self._runs.pop(job_id, None)
        if run is not None:
            now = self.clock.now()
            steps = self._checkpoint[job_id] = self._steps(run, now)
            self._events.append(ExecutorEvent(job_id, EventKind.PROGRESS, now, steps=steps))
            self._events.append(ExecutorEvent(job_id, EventKind.LOST, now, reason=reason, cause=cause))

    def poll(self) -> list[ExecutorEvent]:
        now = self.clock.now()
        out = self._events
        self._events = []
        fail_at = self.fail_at
        progress = self.progress_events
        for job_id in sorted(self._runs):
            run = self._runs[job_id]
            end = run.end
            fail = fail_at.get(job_id) if fail_at else None
            if fail is not None and fail <= now and (end is None or fail < end):
                out.append(ExecutorEvent(job_id, EventKind.PROGRESS, fail, steps=self._steps(run, fail)))
                out.append(ExecutorEvent(job_id, EventKind.EXITED, fail, exit_code=1, reason="failed"))
                del self._runs[job_id]
            elif end is not None and end <= now:
                out.append(ExecutorEvent(job_id, EventKind.PROGRESS, end, steps=run.launch.job.total_steps))
                out.append(ExecutorEvent(job_id, EventKind.EXITED, end, exit_code=0))
                del self._runs[job_id]
            else:
                resumed = run.started + self.restart_overhead
                if not run.reported and resumed <= now:
                    run.reported = True
                    steps = self._steps(run, resumed)
                    out.append(ExecutorEvent(job_id, EventKind.PROGRESS, resumed, steps=steps))
                if progress:
                    out.append(ExecutorEvent(job_id, EventKind.PROGRESS, now, steps=self._steps(run, now)))
        out.sort(key=lambda e: e.time)
        return out

    def ack(self, events: Sequence[ExecutorEvent]) -> None:
        """Nothing to forget: the fake keeps no state past poll() (it does not outlive its process)."""

    def active(self) -> set[str]:
        return set(self._runs)

    def logs(self, job_id: str) -> str:
        return ""

    def close(self) -> None:
        self._runs.clear()

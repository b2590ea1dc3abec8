"""One contract for the Executor port, run against FakeExecutor, LocalExecutor, RayExecutor and
SlurmExecutor.

Each adapter comes with a small harness that knows how to make a job that succeeds, fails or runs until
stopped, and how to let time pass (advance the virtual clock, or sleep). The assertions are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from accelpool.core.rounds import Placement
from accelpool.core.types import Job
from accelpool.executors.fake import FakeExecutor
from accelpool.executors.local import LocalExecutor
from accelpool.ports import EventKind, Executor, ExecutorEvent, ExecutorFault, Launch, RunSpec, StopCause
from accelpool.runtime.clock import VirtualClock

MB = 1024 * 1024
REAL_WALL_S = 120.0  # how long a real engine may take to meet a condition (met in 1-2 s when quiet)


@dataclass
class Harness:
    executor: Executor
    launch: Callable[[str, str], Launch]  # (job id, "ok" | "fail" | "long") -> Launch
    tick: Callable[[], None]
    timeout_ticks: int = 300
    # Real engines: the wall-clock time a condition may take (a loaded CI machine can keep a Slurm stop
    # in COMPLETING for tens of seconds); None for the fake one, whose ticks are virtual seconds.
    wall_s: float | None = None
    diagnose: Callable[[], str] = lambda: ""
    # A new executor over the same state (a control-plane restart), for the executors whose state outlives
    # them (the ``durable`` fixture)
    reopen: Callable[[], Executor] | None = None
    events: list[ExecutorEvent] = field(default_factory=list)
    polls: list[list[ExecutorEvent]] = field(default_factory=list)

    def poll(self) -> list[ExecutorEvent]:
        got = self.executor.poll()
        self.events += got
        self.polls.append(got)
        return got

    def until(self, pred: Callable[[], bool]) -> None:
        end = None if self.wall_s is None else time.monotonic() + self.wall_s
        ticks = 0
        while (ticks < self.timeout_ticks) if end is None else (time.monotonic() < end):
            self.poll()
            if pred():
                return
            self.tick()
            ticks += 1
        raise AssertionError(f"condition not met; events: {self.events}\n{self.diagnose()}")

    def end_of(self, job: str) -> ExecutorEvent:
        self.until(
            lambda: any(e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST) for e in self.events)
        )
        return next(e for e in self.events if e.job == job and e.kind in (EventKind.EXITED, EventKind.LOST))


def _real_launch(placement: Callable[[str], Placement]) -> Callable[[str, str], Launch]:
    commands = {
        "ok": "echo hello-$ACCELPOOL_JOB_ID; exit 0",
        "fail": "echo failing; exit 3",
        "long": "sleep 60",
    }

    def make(job_id: str, kind: str) -> Launch:
        run = RunSpec(command=commands[kind], grace_seconds=1.0)
        return Launch(Job(job_id, scale=1), placement(job_id), run, steps_per_second=1.0)

    return make


def fake_harness() -> Harness:
    clock = VirtualClock()
    ex = FakeExecutor(clock)

    def make(job_id: str, kind: str) -> Launch:
        total = None if kind == "long" else 10.0
        if kind == "fail":
            ex.fail_at[job_id] = clock.now() + 2.0
        job = Job(job_id, scale=1, total_steps=total)
        return Launch(
            job, Placement(job_id, "h100", (("n0", (0,)),)), RunSpec(command="x"), steps_per_second=1.0
        )

    return Harness(ex, make, lambda: clock.advance(1.0))


def local_harness(tmp_path) -> Harness:
    ex = LocalExecutor(tmp_path / "state")
    return Harness(
        ex,
        _real_launch(lambda j: Placement(j, "h100", (("n0", (0,)),))),
        lambda: time.sleep(0.05),
        wall_s=REAL_WALL_S,
        reopen=lambda: LocalExecutor(tmp_path / "state"),
    )


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[object]:
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 80 * MB, "include_dashboard": False},
    )
    cluster.add_node(
        num_cpus=1,
        num_gpus=8,
        resources={"accelerator_type:H100": 8},
        object_store_memory=80 * MB,
        labels={"accelpool.io/node": "h100-0"},
    )
    ray.init(address=cluster.address, namespace="accelpool-contract", log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def slurm_harness(tmp_path, slurm_conf: str) -> Harness:
    from accelpool.executors.slurm import SlurmExecutor

    def make() -> SlurmExecutor:
        return SlurmExecutor(tmp_path / "slurm", slurm_conf=slurm_conf, instance=f"contract-{tmp_path.name}")

    ex = make()
    return Harness(
        ex,
        _real_launch(lambda j: Placement(j, "h100", (("s-gpu-0", (0,)),))),
        lambda: time.sleep(0.1),
        wall_s=REAL_WALL_S,
        diagnose=lambda: _slurm_diagnosis(ex, slurm_conf),
        reopen=make,
    )


def _slurm_diagnosis(ex, slurm_conf: str) -> str:
    """What Slurm says when a condition is not met: the executor's last error, the jobs Slurm still
    remembers, the nodes, and the end of the controller's and the node daemon's logs."""
    import os
    import subprocess
    from pathlib import Path

    env = {**os.environ, "SLURM_CONF": slurm_conf}
    out = [f"last Slurm error: {ex.last_error!r}"]
    for cmd in (["squeue", "-t", "all", "-l"], ["sinfo", "-N", "-l"]):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=10)
            out.append(f"$ {' '.join(cmd)}\n{p.stdout}{p.stderr}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            out.append(f"$ {' '.join(cmd)}: {exc}")
    for name in ("slurmctld.log", "slurmd-s-gpu-0.log"):
        log = Path(slurm_conf).parent / "log" / name
        if log.exists():
            out.append(f"--- {log} (end)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))
    return "\n".join(out)


@pytest.fixture(
    params=[
        "fake",
        "local",
        pytest.param("ray", marks=pytest.mark.ray),
        pytest.param("slurm", marks=pytest.mark.slurm),
    ]
)
def harness(request, tmp_path) -> Iterator[Harness]:
    yield from _harness(request, tmp_path, request.param)


@pytest.fixture(
    params=[
        "local",
        pytest.param("ray", marks=pytest.mark.ray),
        pytest.param("slurm", marks=pytest.mark.slurm),
    ]
)
def durable(request, tmp_path) -> Iterator[Harness]:
    """The executors whose state outlives them, so a restarted one reports an unacked end again (the fake
    keeps none; Ray keeps an ended job's actors until the end is acked: docs/executors.md)."""
    yield from _harness(request, tmp_path, request.param)


def _harness(request, tmp_path, kind: str) -> Iterator[Harness]:
    if kind == "fake":
        yield fake_harness()
        return
    if kind == "local":
        h = local_harness(tmp_path)
    elif kind == "slurm":
        h = slurm_harness(tmp_path, request.getfixturevalue("slurm_conf"))
    else:
        request.getfixturevalue("ray_cluster")
        from accelpool.executors.ray import RayExecutor

        def make_ray() -> RayExecutor:
            return RayExecutor(
                namespace="accelpool-contract", log_dir=tmp_path / "logs", remote_dir=str(tmp_path / "remote")
            )

        h = Harness(
            make_ray(),
            _real_launch(lambda j: Placement(j, "h100", (("h100-0", (0,)),))),
            lambda: time.sleep(0.1),
            wall_s=REAL_WALL_S,
            reopen=make_ray,
        )
    try:
        yield h
    finally:
        for job in list(h.executor.active()):
            h.executor.stop(job, "test teardown")
        h.until(lambda: not h.executor.active())
        h.executor.ack(list(h.events))  # as the reconciler does once recorded: the next test's starts clean
        h.executor.close()


def test_started_job_is_active_and_reported_started(harness: Harness) -> None:
    harness.executor.start(harness.launch("a", "long"))
    assert "a" in harness.executor.active()
    harness.until(lambda: any(e.job == "a" and e.kind == EventKind.STARTED for e in harness.events))
    assert "a" in harness.executor.active()


def test_starting_a_running_job_twice_is_refused(harness: Harness) -> None:
    harness.executor.start(harness.launch("a", "long"))
    # the executor's own state, not the job's fault: the reconciler requeues the job (held), never fails it
    with pytest.raises(ExecutorFault, match="already running"):
        harness.executor.start(harness.launch("a", "long"))


def test_a_job_being_stopped_can_be_started_again_at_once(harness: Harness) -> None:
    """The reconciler stops and starts a job in one round when the scheduler moves it (or preempts it and
    places it again): the stopped attempt is reported as stopped, then the new attempt runs to its end."""
    harness.executor.start(harness.launch("mv", "long"))
    harness.until(lambda: any(e.job == "mv" and e.kind == EventKind.STARTED for e in harness.events))
    harness.executor.stop("mv", "moved")
    harness.executor.start(harness.launch("mv", "ok"))
    assert "mv" in harness.executor.active()
    harness.until(
        lambda: any(e.job == "mv" and e.kind == EventKind.EXITED and e.exit_code == 0 for e in harness.events)
    )
    ends = [e for e in harness.events if e.job == "mv" and e.kind in (EventKind.EXITED, EventKind.LOST)]
    assert [e.kind for e in ends] == [EventKind.EXITED, EventKind.EXITED]
    assert ends[0].reason.startswith("stopped: moved") and ends[1].exit_code == 0
    assert ends[0].stop_cause() is StopCause.REQUESTED and ends[1].stop_cause() is StopCause.COMPLETED
    starts = [e for e in harness.events if e.job == "mv" and e.kind == EventKind.STARTED]
    assert len(starts) == 2 and starts[1].time >= ends[0].time
    harness.until(lambda: "mv" not in harness.executor.active())


def test_successful_job_exits_with_code_zero_and_leaves_active(harness: Harness) -> None:
    harness.executor.start(harness.launch("ok", "ok"))
    end = harness.end_of("ok")
    assert end.kind == EventKind.EXITED and end.exit_code == 0
    assert "ok" not in harness.executor.active()


def test_failing_job_exits_with_nonzero_code(harness: Harness) -> None:
    harness.executor.start(harness.launch("bad", "fail"))
    end = harness.end_of("bad")
    assert end.kind == EventKind.EXITED and end.exit_code not in (0, None)
    assert not end.reason.startswith("stopped") and end.stop_cause() is StopCause.FAILED


def test_stopped_job_exits_nonzero_with_reason_and_leaves_active(harness: Harness) -> None:
    harness.executor.start(harness.launch("s", "long"))
    harness.until(lambda: any(e.job == "s" and e.kind == EventKind.STARTED for e in harness.events))
    harness.executor.stop("s", "preempted")
    end = harness.end_of("s")
    assert end.kind == EventKind.EXITED and end.exit_code not in (0, None)
    assert end.reason.startswith("stopped: preempted") and end.stop_cause() is StopCause.REQUESTED
    assert "s" not in harness.executor.active()


def test_stopping_an_unknown_job_is_a_no_op(harness: Harness) -> None:
    harness.executor.stop("nope", "cancelled")
    assert harness.poll() == [] or all(e.job != "nope" for e in harness.events)


def test_events_are_in_time_order_and_end_once(harness: Harness) -> None:
    for j in ("e1", "e2"):
        harness.executor.start(harness.launch(j, "ok"))
    harness.end_of("e1")
    harness.end_of("e2")
    for _ in range(3):
        harness.poll()
        harness.tick()
    # the port's promise (ports.Executor.poll): each poll's events in time order, and each job's own
    # events in the order they happened; across jobs a later poll may bring an earlier end (a wrapper
    # records its exit time, then exits; the end is seen when it is gone), reported at its real time
    for got in harness.polls:
        times = [e.time for e in got]
        assert times == sorted(times)
    for j in ("e1", "e2"):
        mine = [e.time for e in harness.events if e.job == j]
        assert mine == sorted(mine)
    ends = [e for e in harness.events if e.kind in (EventKind.EXITED, EventKind.LOST)]
    assert sorted(e.job for e in ends) == ["e1", "e2"]


def test_logs_are_text_and_empty_for_unknown_jobs(harness: Harness) -> None:
    assert harness.executor.logs("unknown") == ""
    harness.executor.start(harness.launch("l", "ok"))
    harness.end_of("l")
    assert isinstance(harness.executor.logs("l"), str)


def test_executors_satisfy_the_port(harness: Harness) -> None:
    assert isinstance(harness.executor, Executor)


def test_ack_of_unknown_or_repeated_events_is_harmless(harness: Harness) -> None:
    harness.executor.ack([ExecutorEvent("nope", EventKind.EXITED, 0.0, exit_code=0)])
    harness.executor.start(harness.launch("k", "ok"))
    end = harness.end_of("k")
    harness.executor.ack(harness.events)
    harness.executor.ack([end])
    assert "k" not in harness.executor.active()


def test_an_end_not_acked_is_reported_again_by_a_restarted_executor(durable: Harness) -> None:
    """The guarantee behind the reconciler's ack: an end poll() reported but the store did not record (the
    round failed, or the control plane was killed) is reported again after a restart; once acked, never."""
    harness = durable
    assert harness.reopen is not None
    harness.executor.start(harness.launch("r", "ok"))
    first = harness.end_of("r")
    harness.executor.close()  # the round's record failed; the control plane stops
    harness.executor = harness.reopen()
    harness.events.clear()
    assert "r" in harness.executor.active()
    again = harness.end_of("r")
    assert (again.kind, again.exit_code, again.stop_cause()) == (first.kind, 0, StopCause.COMPLETED)
    assert again.time == pytest.approx(first.time, abs=2.0)  # when it really ended, not the restart
    harness.executor.ack(harness.events)  # recorded now
    harness.executor.close()
    harness.executor = harness.reopen()
    harness.events.clear()
    assert "r" not in harness.executor.active()
    for _ in range(3):
        harness.poll()
        harness.tick()
    assert not [e for e in harness.events if e.job == "r" and e.kind in (EventKind.EXITED, EventKind.LOST)]

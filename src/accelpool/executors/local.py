"""LocalExecutor: jobs run as real subprocesses on this machine, with their devices in the environment.

Construct it once per control plane::

    LocalExecutor(
        state_dir,                 # str | Path. Per-job state (pid + start time, stop deadline, progress,
                                   # exit code) under state_dir/jobs/<job>/ and logs under
                                   # state_dir/logs/<job>.log. Reuse the SAME directory after a restart:
                                   # jobs still running are found there and adopted, not started twice.
        catalog=None,              # Mapping[str, AcceleratorType]; gives each type's visible_devices_env.
                                   # Default: the bundled catalogue. Unknown types fall back to
                                   # CUDA_VISIBLE_DEVICES.
        clock=None,                # Clock for event times (seconds). Default: SystemClock(). Pass the
                                   # reconciler's clock so metering and events agree.
        extra_env=None,            # Mapping[str, str] or Callable[[Launch], Mapping[str, str]]: added to
                                   # every job's environment after the ACCELPOOL_* variables, e.g. the API
                                   # URL and a per-job token for SDK progress reporting.
        shell="/bin/sh",           # runs RunSpec.command as ``shell -c command``.
        sandbox=None,              # SandboxConfig (executors/sandbox.py): every job runs in a bubblewrap
                                   # sandbox; default SandboxConfig(). The constructor raises SandboxError
                                   # when bwrap is missing, unless the config allows unsandboxed jobs.
    )

Every rank runs inside the job sandbox (see executors/sandbox.py and docs/security.md): the host read-only,
the executor's state and logs (and the service's data dir) invisible, its own pid namespace (every process
of the job dies with it), only its own device nodes, an allow-listed environment, a non-root uid, rlimits,
a bounded log, and max_run_time enforced by the wrapper. The job's private writable directory is
``state_dir/jobs/<job>/work`` (its HOME; the progress file lives there).

A job gets one process per node share of its placement (rank 0..n-1; a single-node job has one), each
under its own wrapper process (own session), with:

    <type's visible_devices_env>   device indices on that rank's node, e.g. CUDA_VISIBLE_DEVICES=0,1,2,3,
                                   FURIOSA_DEVICES=..., RBLN_DEVICES=...
    ACCELPOOL_JOB_ID               the job id
    ACCELPOOL_ACCELERATOR          the catalogue type id (h100, rngd, ...)
    ACCELPOOL_DEVICES              the whole placement: "node-a:0,1,2,3;node-b:0,1,2,3"
    ACCELPOOL_NODE                 this rank's node; ACCELPOOL_NODE_RANK, ACCELPOOL_NUM_NODES
    ACCELPOOL_CHECKPOINT_DIR       RunSpec.checkpoint_dir ("" if none)
    ACCELPOOL_ATTEMPT              1 for the first start, 2 after a preemption, ...
    ACCELPOOL_STEPS_DONE           steps already done (resume from here)
    ACCELPOOL_EXPECTED_STEPS_PER_SECOND
    ACCELPOOL_PROGRESS_FILE        a file the job may overwrite with its CUMULATIVE step count (a number);
                                   poll() reports changes as PROGRESS events. (The SDK may instead report
                                   progress over HTTP with variables from ``extra_env``.)
plus RunSpec.env (which wins over everything except the ACCELPOOL_* and device variables), PATH (in the
sandbox: the service's, less the entries the job cannot use; sandbox_paths.job_path), LANG, LC_ALL, TZ, HOME (the
work dir) and TMPDIR; nothing else of the service's environment.

Each rank runs under the sandbox wrapper (``sandbox_wrapper.WRAPPER``), which records the command's exit code and
exit time in the job's state dir, so an exit that happens while the control plane is down is still
reported after a restart, with the time it really happened.

``stop(job, reason)`` sends SIGTERM to every rank's wrapper, which passes it to every process of its
sandbox, and returns at once; a background reaper thread sends SIGKILL when ``RunSpec.grace_seconds`` have
passed (the deadline is persisted, so a restarted executor still enforces it). A stopped job is reported EXITED with exit_code -15 (-9 if it had to
be killed) and reason ``stopped: <reason>``; it is never reported as a success.

``active()`` is the set of jobs started (or adopted) whose end has not yet been reported by ``poll()``;
a job that finished while the control plane was down therefore stays active until the next poll reports
its real exit. A recorded process that is gone without an exit record is reported LOST.

An end reported by ``poll()`` keeps the job's ``state.json`` until ``ack()`` (the store has recorded it):
a new executor over the same state_dir (a restart, also after ``close()``) adopts the job again and reports
its end again, so a round whose record failed, or a kill between poll and record, loses no exit. Acked,
the state file becomes ``state.done.json``.

``start`` makes the jobs and logs dirs again if they were removed; an OSError on them, or an earlier run of
the job whose wrapper is still alive in the job's dir, raises ``ExecutorFault`` (the job is requeued, not
failed; its dir is left alone).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from accelpool.core.types import AcceleratorType
from accelpool.executors import sandbox as sb
from accelpool.executors.env import ExtraEnv, catalog_and_clock, devices_str, job_env, visible_devices_env
from accelpool.executors.procs import (
    _in_time_order,
    _proc_start_time,
    _signal_group,
    host_trouble,
    live_wrapper,
    own_io,
    read_progress_file,
)
from accelpool.executors.sandbox_image import remove_container
from accelpool.executors.sandbox_wrapper import WRAPPER
from accelpool.ports import Clock, EventKind, ExecutorEvent, ExecutorFault, Launch, StopCause

log = logging.getLogger(__name__)


def _safe(job_id: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", job_id)
    if s == job_id and s not in (".", ".."):
        return s
    return f"{s}-{hashlib.sha1(job_id.encode()).hexdigest()[:10]}"


@dataclass
class _Rank:
    node: str
    pid: int
    start_time: str
    proc: subprocess.Popen[bytes] | None = None
    code: int | None = None  # exit code once known
    exit_time: float | None = None  # wall time the wrapper recorded for the exit
    exit_reason: str = ""  # the wrapper's reason, e.g. "max_run_time exceeded (3 s)"


@dataclass
class _Job:
    job_id: str
    dir: Path
    ranks: list[_Rank]
    attempt: int
    grace: float
    stop_reason: str | None = None
    kill_at: float | None = None  # time.monotonic()-independent: wall time (time.time())
    killed: bool = False
    last_steps: float | None = None
    extra: dict[str, object] = field(default_factory=dict)
    pending: Launch | None = None  # the next attempt, started once this one has ended
    ended_before_stop: bool = False  # stop() came after every rank had exited: report the real exit
    started: float | None = None  # when it started (the clock's time): reported again when adopted

    def state(self) -> dict[str, object]:
        return {
            "job": self.job_id,
            "attempt": self.attempt,
            "grace": self.grace,
            "ranks": [{"node": r.node, "pid": r.pid, "start_time": r.start_time} for r in self.ranks],
            "stop_reason": self.stop_reason,
            "kill_at": self.kill_at,
            "killed": self.killed,
            "started": self.started,
        }


class LocalExecutor:
    """Runs jobs as local subprocesses; see the module docstring for the constructor and environment."""

    def __init__(
        self,
        state_dir: str | Path,
        catalog: Mapping[str, AcceleratorType] | None = None,
        clock: Clock | None = None,
        extra_env: ExtraEnv | None = None,
        shell: str = "/bin/sh",
        sandbox: sb.SandboxConfig | None = None,
        reaper_interval_seconds: float = 0.05,
    ) -> None:
        catalog, clock = catalog_and_clock(catalog, clock)
        self.catalog = catalog
        self.clock = clock
        self.extra_env = extra_env
        self.shell = shell
        self.state_dir = Path(state_dir)
        self.jobs_dir = self.state_dir / "jobs"
        self.log_dir = self.state_dir / "logs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cfg = sandbox if sandbox is not None else sb.SandboxConfig()
        protect = [self.jobs_dir, self.log_dir]
        if os.path.realpath(cfg.dev_root) != "/dev":
            protect.append(Path(cfg.dev_root))  # stand-in device files: only through the job's binds
        self.sandbox = cfg.with_protect(*protect)
        problem = sb.check(self.sandbox)
        if problem is not None:
            raise sb.SandboxError(problem)
        if not sb.sandboxed(self.sandbox):
            log.warning(
                "jobs run WITHOUT a sandbox (allowed by the operator): every job can read the "
                "service's files and signal its processes"
            )
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._events: list[ExecutorEvent] = []
        self._unacked: dict[str, _Job] = {}  # ended jobs poll() reported; their state kept until ack()
        self._closed = threading.Event()
        self._interval = reaper_interval_seconds
        self._adopt()
        self._reaper = threading.Thread(target=self._reap_loop, name="accelpool-local-reaper", daemon=True)
        self._reaper.start()

    # -- the port ---------------------------------------------------------------------------------------

    def start(self, launch: Launch) -> None:
        job_id = launch.job.id
        with self._lock:
            old = self._jobs.get(job_id)
            if old is not None:
                if old.stop_reason is None and not old.ended_before_stop:
                    # the executor's state, not the job's fault (a round that failed before it stopped a
                    # preempted run): requeued and held, not failed (a review)
                    raise ExecutorFault(f"job {job_id} is already running here")
                # Being stopped (e.g. preempted and placed again in one round, or moved): start the new
                # attempt once poll() has seen the old one end and reported it.
                old.pending = launch
                return
            self._launch(launch)

    def _launch(self, launch: Launch) -> None:
        job_id = launch.job.id
        with self._lock:
            jdir = self.jobs_dir / _safe(job_id)
            pid = live_wrapper(jdir)
            if pid is not None:  # e.g. a second scheduler on this state dir: never delete a live run's files
                raise ExecutorFault(f"an earlier run of job {job_id} is still alive (wrapper pid {pid})")
            self._unacked.pop(job_id, None)
            log_path = self.log_path(job_id)
            with own_io("prepare its state and log directories"):
                if jdir.exists():
                    shutil.rmtree(jdir)
                self.log_dir.mkdir(parents=True, exist_ok=True)  # made again if removed while we run
                jdir.mkdir(parents=True)
                (jdir / "work").mkdir()
                with open(log_path, "ab") as log:
                    head = f"=== accelpool: attempt {launch.attempt} on {devices_str(launch.placement)} ===\n"
                    log.write(head.encode())
            shares = list(launch.placement.devices) or [("local", ())]
            ranks: list[_Rank] = []
            try:
                for rank, (node, devices) in enumerate(shares):
                    env = self._env(launch, node, devices, rank, len(shares), jdir)
                    ranks.append(self._spawn(launch, env, jdir, rank, devices, log_path, node))
                job = _Job(job_id, jdir, ranks, launch.attempt, float(launch.run.grace_seconds))
                job.started = self.clock.now()
                with own_io("write the job's state"):  # (a full disk: a review's job was failed, and
                    self._save(job)  # its next start refused) opens the wrappers' gate: now adoptable
            except Exception:  # the gated wrappers never ran the command, and the job is not kept
                for r in ranks:
                    _signal_group(r.pid, signal.SIGKILL)
                raise
            self._jobs[job_id] = job
            self._events.append(ExecutorEvent(job_id, EventKind.STARTED, job.started))

    def stop(self, job_id: str, reason: str) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.pending is not None:
                # a stop while the next attempt waits for this one to end (a move, then a cancel): the
                # next attempt is dropped, not launched for a job that is over (a review)
                job.pending = None
            if job is None or job.stop_reason is not None or job.ended_before_stop:
                return
            codes = [self._rank_code(job, i, r) for i, r in enumerate(job.ranks)]
            if all(isinstance(c, int) for c in codes):
                job.ended_before_stop = True  # nothing left to stop: poll() reports how it really ended
                return
            job.stop_reason = reason
            self._terminate(job)

    def _terminate(self, job: _Job) -> None:
        """SIGTERM to every live process group of the job; SIGKILL after the grace period (reaper)."""
        if job.kill_at is None:
            job.kill_at = time.time() + max(0.0, job.grace)
        for r in job.ranks:
            if r.code is None:
                try:  # the wrapper passes it on to every process of its sandbox
                    os.kill(r.pid, signal.SIGTERM)
                except (
                    ProcessLookupError,
                    PermissionError,
                ):  # gone already (or its pid reused): nothing to stop
                    pass
        self._save(job, best_effort=True)  # after the signal: a state dir gone must not keep it running

    def poll(self) -> list[ExecutorEvent]:
        with self._lock:
            self._enforce_deadlines()
            now = self.clock.now()
            out = self._events
            self._events = []
            relaunch: list[Launch] = []
            for job_id in sorted(self._jobs):
                job = self._jobs[job_id]
                steps = self._read_progress(job)
                if steps is not None and steps != job.last_steps:
                    job.last_steps = steps
                    out.append(ExecutorEvent(job_id, EventKind.PROGRESS, now, steps=steps))
                ended = self._check_ranks(job)
                if ended is not None:
                    del self._jobs[job_id]
                    if job.pending is not None:
                        ended = self._before_relaunch(job, ended, relaunch)
                    else:
                        self._unacked[job_id] = job
                    out.append(ended)
            for launch in relaunch:
                try:
                    self._launch(launch)
                except Exception as exc:  # could not start it: the store requeues it
                    log.exception("restarting job %s failed", launch.job.id)
                    self._events.append(
                        ExecutorEvent(
                            launch.job.id,
                            EventKind.LOST,
                            self.clock.now(),
                            reason=f"lost: start failed ({type(exc).__name__})",
                        )
                    )
                out += self._events  # its STARTED (or LOST), after the old attempt's end
                self._events = []
            return _in_time_order(out)

    def _before_relaunch(self, job: _Job, ended: ExecutorEvent, relaunch: list[Launch]) -> ExecutorEvent:
        """The old attempt of a job that was started again has ended: the new attempt starts now, unless
        the old one had really finished (exited on its own before the stop), which is reported as it is."""
        assert job.pending is not None
        if ended.kind == EventKind.EXITED and job.stop_reason is None:
            log.info("job %s ended on its own before its restart; not starting it again", job.job_id)
            self._unacked[job.job_id] = job  # a real end: kept until the store has it
            return ended
        self._forget(job)
        relaunch.append(job.pending)
        if ended.kind == EventKind.LOST:  # the store must not requeue it: its new attempt is recorded
            return ExecutorEvent(
                job.job_id,
                EventKind.EXITED,
                ended.time,
                exit_code=-signal.SIGKILL,
                reason=f"stopped: {job.stop_reason} ({ended.reason})",
                cause=StopCause.REQUESTED,
            )
        return ended

    def ack(self, events: Sequence[ExecutorEvent]) -> None:
        """The store has recorded ``events``: forget the ended jobs among them (state.json -> state.done.json)."""
        with self._lock:
            for e in events:
                if e.kind in (EventKind.EXITED, EventKind.LOST) and (done := self._unacked.pop(e.job, None)):
                    self._forget(done)

    def active(self) -> set[str]:
        with self._lock:
            return set(self._jobs)

    def logs(self, job_id: str) -> str:
        """The job's output (every attempt), at most ``log_max_bytes`` per rank and attempt: the head, a
        marker, and the tail (of a running rank: its tail as of the last second)."""
        return sb.read_log(str(self.log_path(job_id)))

    def close(self) -> None:
        """Stop the reaper thread. Jobs keep running (a new executor on the same state_dir adopts them);
        a pending SIGKILL deadline is enforced by that new executor, and ends not acked are reported again."""
        self._closed.set()
        self._reaper.join(timeout=2.0)

    # -- extras -----------------------------------------------------------------------------------------

    def log_path(self, job_id: str) -> Path:
        return self.log_dir / f"{_safe(job_id)}.log"

    def pids(self, job_id: str) -> list[int]:
        """Process ids of the job's ranks (for tests and operators)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return [] if job is None else [r.pid for r in job.ranks]

    # -- internals --------------------------------------------------------------------------------------

    def _env(
        self, launch: Launch, node: str, devices: tuple[int, ...], rank: int, n: int, jdir: Path
    ) -> dict[str, str]:
        return job_env(
            launch,
            node=node,
            rank=rank,
            num_nodes=n,
            catalog=self.catalog,
            base={},
            devices=devices,
            progress_file=str(jdir / "work" / sb.PROGRESS_FILE),  # plan() gives the in-sandbox path
            extra_env=self.extra_env,
        )

    def _spawn(
        self,
        launch: Launch,
        env: dict[str, str],
        jdir: Path,
        rank: int,
        devices: tuple[int, ...],
        log_path: Path,
        node: str,
    ) -> _Rank:
        visible = visible_devices_env(self.catalog, launch.placement.accelerator)
        plan = sb.plan(
            self.sandbox,
            command=launch.run.command,
            env=env,
            tenant=launch.job.tenant,
            work_dir=str(jdir / "work"),
            checkpoint_dir=launch.run.checkpoint_dir,
            workdir=launch.run.workdir,
            devices=sb.device_nodes(self.sandbox, visible, devices),
            shell=self.shell,
            log_path=str(log_path),
            exit_path=str(jdir / f"exit.{rank}"),
            max_run_seconds=launch.job.max_run_seconds,
            grace_seconds=float(launch.run.grace_seconds),
            gate=str(jdir / "state.json"),
            image=launch.run.image,
            limits=launch.run.limits,
            grant=launch.job.grant,
            name=f"{_safe(launch.job.id)}-a{launch.attempt}-r{rank}",
        )
        try:
            sb.prepare_dirs(plan)
        except OSError as exc:
            if host_trouble(exc):  # a full disk, not the job's paths: requeued and held, not failed
                raise ExecutorFault(f"the executor could not make the job's dirs ({exc.strerror})") from exc
            raise
        plan_file = jdir / f"plan.{rank}.json"
        with own_io("write the job's plan"):
            fd = os.open(plan_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(plan, f)
        argv = [sys.executable, "-I", "-S", "-c", WRAPPER, str(plan_file)]
        with own_io("open the job's log"), open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={"PATH": os.environ.get("PATH", sb.SAFE_PATH)},
                cwd=str(jdir),
                start_new_session=True,
                close_fds=True,
            )
        start_time = _proc_start_time(proc.pid) or "?"
        return _Rank(node, proc.pid, start_time, proc)

    def _save(self, job: _Job, best_effort: bool = False) -> None:
        """The job's state file (what a restarted executor adopts). ``best_effort``: an OSError (its dir
        removed, the disk full) is logged, not raised: a stop goes on without it."""
        try:
            tmp = job.dir / "state.json.tmp"
            tmp.write_text(json.dumps(job.state()))
            os.replace(tmp, job.dir / "state.json")
        except OSError:
            if not best_effort:
                raise
            log.exception("job %s: its state file could not be written", job.job_id)

    def _forget(self, job: _Job) -> None:
        try:
            os.replace(job.dir / "state.json", job.dir / "state.done.json")
        except OSError:  # no state file (never written, or forgotten already): nothing left to forget
            pass

    def _adopt(self) -> None:
        """Find jobs a previous executor on this state_dir started and that have not been reported."""
        for state_file in sorted(self.jobs_dir.glob("*/state.json")):
            try:
                data = json.loads(state_file.read_text())
                ranks = [_Rank(r["node"], int(r["pid"]), str(r["start_time"])) for r in data["ranks"]]
                job = _Job(
                    data["job"],
                    state_file.parent,
                    ranks,
                    int(data["attempt"]),
                    float(data["grace"]),
                    stop_reason=data.get("stop_reason"),
                    kill_at=data.get("kill_at"),
                    killed=bool(data.get("killed")),
                    started=None if data.get("started") is None else float(data["started"]),
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue
            self._jobs[job.job_id] = job
            if job.started is not None and job.stop_reason is None:
                # STARTED again, with its time: a control plane killed before it recorded the first one
                # would otherwise never bill the run (the store ignores it for a run already started).
                # Not for a run being stopped: the store ended it already, and may have placed the job
                # again (its next attempt waited in memory, lost with the old process): this run's start
                # would bill the new placement from before it (a review: 23 KRW for 5 s of work)
                self._events.append(ExecutorEvent(job.job_id, EventKind.STARTED, job.started))

    def _rank_code(self, job: _Job, i: int, r: _Rank) -> int | None | str:
        """The rank's exit code, None while it runs, "lost" if it vanished without a record."""
        if r.code is not None:
            return r.code
        exit_file = job.dir / f"exit.{i}"
        if r.proc is not None:
            rc = r.proc.poll()
            if rc is None:
                return None
            return self._read_exit(r, exit_file, rc if rc < 128 else -(rc - 128) if rc > 128 else rc)
        code = self._read_exit(r, exit_file, None)
        if code is not None:
            return code
        if _proc_start_time(r.pid) == r.start_time:
            return None
        code = self._read_exit(r, exit_file, None)  # it may have written the file just now
        if code is not None:
            return code
        return -signal.SIGKILL if job.killed else "lost"

    def _read_exit(self, r: _Rank, exit_file: Path, default: int | None) -> int | None:
        rec = sb.read_exit(str(exit_file))
        if rec is None:
            return default
        r.exit_time, r.exit_reason = rec[1], rec[2]
        return rec[0]

    def _check_ranks(self, job: _Job) -> ExecutorEvent | None:
        lost = False
        for i, r in enumerate(job.ranks):
            c = self._rank_code(job, i, r)
            if c is not None and r.code is None and r.exit_time is None:  # its wrapper died unrecorded
                remove_container(str(job.dir / f"plan.{i}.json"))
            if c == "lost":
                lost = True
                r.code = -signal.SIGKILL
            elif isinstance(c, int):
                r.code = c
        codes = [r.code for r in job.ranks]
        if any(c is None for c in codes):
            failed = [c for c in codes if c not in (None, 0)]
            if failed and job.stop_reason is None and "failed_code" not in job.extra:
                job.extra["failed_code"] = failed[0]  # one rank failed: stop the gang's other ranks
                self._terminate(job)
            return None
        now = self._end_time(job)
        if lost and job.stop_reason is None:
            return ExecutorEvent(
                job.job_id, EventKind.LOST, now, reason="lost: process vanished without exit code"
            )
        first_bad = next((c for c in codes if c != 0), 0)
        if job.stop_reason is not None:
            # killed by the reaper, or by the wrapper's own grace timer
            code = -signal.SIGKILL if job.killed or -signal.SIGKILL in codes else -signal.SIGTERM
            return ExecutorEvent(
                job.job_id,
                EventKind.EXITED,
                now,
                exit_code=code,
                reason=f"stopped: {job.stop_reason} (exit code {first_bad})",
                cause=StopCause.REQUESTED,
            )
        code = int(job.extra.get("failed_code", first_bad))  # type: ignore[call-overload]
        reason = "" if code == 0 else (f"killed by signal {-code}" if code < 0 else f"exit code {code}")
        limit = next((r.exit_reason for r in job.ranks if sb.is_limit_reason(r.exit_reason)), "")
        if limit:
            reason = limit
        return ExecutorEvent(job.job_id, EventKind.EXITED, now, exit_code=code, reason=reason)

    def _end_time(self, job: _Job) -> float:
        """When the job ended: the wrappers' recorded exit time (so an exit while the control plane was
        down is billed until it happened, not until the restart), on a wall clock; else now."""
        now = self.clock.now()
        times = [r.exit_time for r in job.ranks if r.exit_time is not None]
        if not times or len(times) != len(job.ranks) or abs(now - time.time()) > 5.0:
            return now  # not a wall clock (tests, simulations), or an end without a record
        return min(now, max(times))

    def _read_progress(self, job: _Job) -> float | None:
        return read_progress_file(str(job.dir / "work" / sb.PROGRESS_FILE))

    def _enforce_deadlines(self) -> None:
        now = time.time()
        for job in self._jobs.values():
            if job.kill_at is not None and not job.killed and now >= job.kill_at:
                alive = [r for i, r in enumerate(job.ranks) if self._rank_code(job, i, r) is None]
                if alive:
                    job.killed = True
                    for r in alive:
                        _signal_group(r.pid, signal.SIGKILL)
                    self._save(job, best_effort=True)

    def _reap_loop(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                with self._lock:
                    self._enforce_deadlines()
                    for job in self._jobs.values():  # reap exited children promptly (no zombies)
                        for r in job.ranks:
                            if r.proc is not None:
                                r.proc.poll()
            except Exception:  # the reaper must outlive any one failure (it enforces every grace period)
                log.exception("the local executor's reaper failed a pass; it goes on")

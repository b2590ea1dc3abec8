"""SlurmExecutor: accelpool decides, a Slurm cluster carries it out (sites run by Slurm).

Construct it once per control plane (per Slurm site)::

    SlurmExecutor(
        state_dir,                 # str | Path. Per-job state (Slurm job id, attempt, stop deadline) under
                                   # state_dir/jobs/, logs under state_dir/logs/<job>.log, progress files
                                   # under state_dir/progress/. Logs and progress files are written by the
                                   # job on the Slurm nodes: the directory must be on a file system the
                                   # nodes share with the control plane (as Slurm's own --output needs).
        catalog=None,              # Mapping[str, AcceleratorType]; default: the bundled catalogue.
        clock=None,                # Clock for event times; default SystemClock().
        extra_env=None,            # as LocalExecutor: Mapping or Callable[[Launch], Mapping].
        instance="accelpool",      # this control plane's id; every Slurm job it submits is tagged with it
                                   # (job name ``accelpool.<instance>.<job>``, comment
                                   # ``accelpool:<instance>:<attempt>:<job>``) and a restarted control
                                   # plane with the same instance adopts exactly those jobs.
        partition=None,            # Slurm partition to submit to and to take nodes from (None: default).
        slurm_conf=None,           # path of slurm.conf for the Slurm commands (None: their default).
        bin_dir=None,              # directory holding sbatch, squeue, sinfo, scancel, scontrol (None: PATH).
        type_aliases=None,         # Mapping[str, str]: GRES types -> catalogue ids, for types the
                                   # catalogue does not know by id or alias, e.g. {"ca22": "atom"}.
        shell="/bin/sh",           # runs RunSpec.command as ``shell -c command`` on each node.
        python="python3",          # the Python on the Slurm nodes that runs the small batch/rank wrapper.
        pending_timeout_seconds=120.0,  # a job Slurm keeps pending this long is cancelled and reported
                                   # LOST "lost: pending in Slurm ..." (requeued by the store).
        command_timeout_seconds=10.0,   # a Slurm command that takes longer counts as the controller
                                   # not answering (see ``reachable()``).
        zone="default",            # zone of the nodes it discovers.
        site="default",            # site of the nodes it discovers (core.types.Site id).
    )

Why the Slurm commands and not slurmrestd: docs/executors.md (measured; the commands answer in about 10 ms
and need only the munge key). Limits and images on Slurm: executors/slurm_batch.py. Modules: this one runs the commands and keeps the jobs' state; slurm_batch.py: what is submitted; slurm_parse.py:
what Slurm prints, read; slurm_state.py: each job's record, how an ended job is reported (also one Slurm purged).

Nodes: slurm_parse.py (one pool node per recognised GRES type of each usable Slurm node). Placements:
slurm_batch.py (one Slurm job per placement, ``--no-requeue``: accelpool requeues). STARTED is reported by
the poll that sees the job RUNNING in Slurm; exits carry its exit code, timed at Slurm's end time.

``stop`` sends SIGTERM to every rank (``scancel --signal=TERM``: the job steps, not the batch script, so
srun stays and the ranks keep their grace period to checkpoint) and, after ``RunSpec.grace_seconds``,
SIGKILL and a cancel, the cancel sent again until Slurm has ended the job (a failed scancel is never the
end of a stop); a stopped job is reported EXITED with exit_code -15 (-9 if killed) and
reason ``stopped: <reason>``. A node of the job DOWN or NOT_RESPONDING (or the job ending NODE_FAIL) ->
the job is cancelled and reported LOST ``node-lost: ...`` at once; a node DRAINING -> the job is stopped
with its grace period and then reported LOST ``node-lost: <node> drained`` (the store requeues both). A job
Slurm no longer lists (purged after ``MinJobAge``) -> the end its batch script recorded on the shared state
dir, else LOST. ``reachable()`` is False while the Slurm controller does not answer; jobs
stay active then (the site layer decides when the site is down).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from accelpool.core.types import DEFAULT_SITE, AcceleratorType, Node
from accelpool.executors import sandbox as sb
from accelpool.executors.env import ExtraEnv, catalog_and_clock, devices_str
from accelpool.executors.procs import read_progress_file
from accelpool.executors.slurm_batch import (
    batch_script,
    exit_record,
    launch_payload,
    ram_constrained,
    rank_deadline,
    refused,
    sandbox_ranks,
    sbatch_args,
    slurm_limits,
)
from accelpool.executors.slurm_parse import (
    ENDED,
    Row,
    attempt_of,
    bad_state,
    parse_sinfo,
    parse_squeue,
    pool_nodes,
    resolve_type,
    split_gres,
)
from accelpool.executors.slurm_state import SlurmJob, end_of, forget_job, load_jobs, recorded_end, save_job
from accelpool.executors.slurm_state import slurm_available as slurm_available  # re-exported
from accelpool.ports import Clock, EventKind, ExecutorEvent, ExecutorFault, Launch, StopCause

log = logging.getLogger(__name__)

RECANCEL_SECONDS = 10.0
"""How long a cancelled job may stay in Slurm (KillWait is 30 s by default; ours is 5) before the cancel is
sent again."""


class SlurmError(RuntimeError):
    """A Slurm command failed or did not answer in time."""


def _safe(job_id: str) -> str:
    return quote(job_id, safe="")


class SlurmExecutor:
    """Runs jobs as Slurm jobs; see the module docstring for the constructor, nodes, faults and choices."""

    def __init__(
        self,
        state_dir: str | Path,
        catalog: Mapping[str, AcceleratorType] | None = None,
        clock: Clock | None = None,
        extra_env: ExtraEnv | None = None,
        *,
        instance: str = "accelpool",
        partition: str | None = None,
        slurm_conf: str | None = None,
        bin_dir: str | None = None,
        type_aliases: Mapping[str, str] | None = None,
        shell: str = "/bin/sh",
        python: str = "python3",
        pending_timeout_seconds: float = 120.0,
        command_timeout_seconds: float = 10.0,
        zone: str = "default",
        site: str = DEFAULT_SITE,
        sandbox: sb.SandboxConfig | None = None,
    ) -> None:
        catalog, clock = catalog_and_clock(catalog, clock)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", instance):
            raise ValueError(f"instance {instance!r}: use letters, digits, '_', '.', '-'")
        self.catalog = catalog
        self.clock = clock
        self.extra_env = extra_env
        self.instance = instance
        self.partition = partition
        self.type_aliases = {k.lower(): v for k, v in (type_aliases or {}).items()}
        self.shell = shell
        self.python = python
        self.pending_timeout = pending_timeout_seconds
        self.command_timeout = command_timeout_seconds
        self.zone = zone
        self.site = site
        self._env = dict(os.environ)
        if slurm_conf:
            self._env["SLURM_CONF"] = str(slurm_conf)
        self.bin_dir = bin_dir
        self.state_dir = Path(state_dir)
        self.jobs_dir = self.state_dir / "jobs"
        self.log_dir = self.state_dir / "logs"
        self.progress_dir = self.state_dir / "progress"
        for d in (self.jobs_dir, self.log_dir, self.progress_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.sandbox = sandbox.with_protect(self.state_dir) if sandbox is not None else None
        self._lock = threading.RLock()
        self._jobs: dict[str, SlurmJob] = {}
        self._pending: dict[str, Launch] = {}  # next attempt of a job being stopped
        self._unacked: list[str] = []  # ended jobs poll() reported; their records kept until ack()
        self._recancel_at: dict[str, float] = {}  # when to cancel a killed job again if it is still there
        self._events: list[ExecutorEvent] = []
        self._last_time = float("-inf")
        self._pool: dict[str, tuple[str, str, str]] = {}  # pool node -> (slurm node, gres name, gres type)
        self._node_state: dict[str, str] = {}  # slurm node -> state flags
        self._unrecognized: dict[str, str] = {}
        self.last_ok: float | None = None  # clock time of the last Slurm command that answered
        self.last_error: str = ""
        self._tag = f"accelpool:{instance}:"
        self._ram: bool | None = None  # Slurm confines jobs' memory itself (asked once, when needed)
        try:
            self._refresh_nodes()
        except SlurmError as exc:
            log.warning("Slurm does not answer at start-up: %s", exc)
        self._adopt()

    # -- Slurm commands ---------------------------------------------------------------------------------

    def _cmd(self, args: Sequence[str], *, input_text: str | None = None) -> str:
        try:
            argv = list(args)
            if self.bin_dir:
                argv[0] = os.path.join(self.bin_dir, argv[0])
            p = subprocess.run(
                argv,
                input=input_text,
                capture_output=True,
                text=True,
                env=self._env,
                timeout=self.command_timeout,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.last_error = f"{args[0]}: {type(exc).__name__}: {exc}"
            raise SlurmError(self.last_error) from exc
        if p.returncode != 0:
            self.last_error = f"{' '.join(args[:2])}: exit {p.returncode}: {p.stderr.strip()[:300]}"
            raise SlurmError(self.last_error)
        self.last_ok = self.clock.now()
        return p.stdout

    def reachable(self) -> bool:
        """Whether the Slurm controller answers now (one cheap command)."""
        try:
            self._cmd(["sinfo", "-h", "-o", "%P"])
            return True
        except SlurmError:
            return False

    # -- NodeSource ---------------------------------------------------------------------------------------

    def nodes(self) -> list[Node]:
        """Up Slurm nodes with recognised GRES, as pool nodes (refreshed on every call; raises SlurmError
        when the controller does not answer, so a caller never mistakes silence for an empty site)."""
        return self._refresh_nodes()

    def unrecognized(self) -> dict[str, str]:
        """Slurm nodes with GRES whose type is unknown: node name -> reason."""
        return dict(self._unrecognized)

    def _refresh_nodes(self) -> list[Node]:
        args = ["sinfo", "-h", "-N", "-O", "NodeList:|,StateComplete:|,Gres:|,Partition:|"]
        if self.partition:
            args += ["-p", self.partition]
        text = self._cmd(args)
        states, gres_of = parse_sinfo(text)
        out, pool, unknown = pool_nodes(states, gres_of, self._resolve, zone=self.zone, site=self.site)
        with self._lock:
            self._pool.update(pool)
            self._node_state = states
            for name, why in unknown.items():
                if self._unrecognized.get(name) != why:
                    log.warning("Slurm node %s left out of the pool: %s", name, why)
            self._unrecognized = unknown
        return out

    _split_gres = staticmethod(split_gres)
    _bad = staticmethod(bad_state)

    def _resolve(self, name: str) -> str | None:
        return resolve_type(name, self.type_aliases, self.catalog)

    # -- the Executor port -----------------------------------------------------------------------------

    def start(self, launch: Launch) -> None:
        job_id = launch.job.id
        with self._lock:
            old = self._jobs.get(job_id)
            if old is not None:
                if old.stop_reason is None and old.lost_reason is None:
                    raise ExecutorFault(f"job {job_id} is already running here")
                self._pending[job_id] = launch  # started once the old attempt has ended
                return
            try:
                self._submit(launch)
            except SlurmError as exc:
                if refused(str(exc)):  # what it asks cannot run here: the job fails with the reason
                    raise RuntimeError(f"Slurm refuses the job as asked: {exc}") from None
                log.warning("submitting job %s to Slurm failed: %s", job_id, exc)
                self._emit(ExecutorEvent(job_id, EventKind.LOST, self.clock.now(), reason=f"lost: {exc}"))

    def _placement_nodes(self, launch: Launch) -> list[tuple[str, str, str, tuple[int, ...]]]:
        """(slurm node, gres name, gres type, devices) per node share of the placement."""
        shares = list(launch.placement.devices)
        missing = [n for n, _ in shares if n not in self._pool]
        if missing:
            self._refresh_nodes()
            missing = [n for n, _ in shares if n not in self._pool]
        if missing:
            raise SlurmError(f"node-lost: {', '.join(missing)} not in Slurm")
        return [(*self._pool[n], tuple(ds)) for n, ds in shares]

    def _submit(self, launch: Launch) -> None:
        job_id = launch.job.id
        if job_id in self._unacked:  # a new attempt's record replaces the old end's (an ack must not drop it)
            self._unacked.remove(job_id)
        limits = slurm_limits(launch, self.sandbox, self.site)  # SandboxError (the job fails) if refused
        shares = self._placement_nodes(launch)
        safe = _safe(job_id)
        progress = self.progress_dir / safe
        for stale in (progress, Path(exit_record(str(progress)))):  # an earlier attempt's
            stale.unlink(missing_ok=True)
        if launch.run.checkpoint_dir and self.sandbox is None:  # sandboxed: sandbox_ranks creates it
            os.makedirs(launch.run.checkpoint_dir, exist_ok=True)
        payload = launch_payload(
            launch,
            shares,
            catalog=self.catalog,
            extra_env=self.extra_env,
            progress_file=str(progress),
            shell=self.shell,
            python=self.python,
        )
        if self.sandbox is not None:
            sandbox_ranks(self.sandbox, launch, payload, str(progress) + ".d", self.shell, self._ram_ok())
        script = batch_script(payload, self.python)
        log_path = self.log_path(job_id)
        with open(log_path, "a") as f:
            f.write(
                f"=== accelpool: attempt {launch.attempt} on {devices_str(launch.placement)} (Slurm) ===\n"
            )
        common = [
            f"--job-name=accelpool.{self.instance}.{safe}",
            f"--comment={self._tag}{launch.attempt}:{safe}",
            f"--output={log_path}",
            "--open-mode=append",
            "--no-requeue",
            "--export=ALL",
            "--ntasks-per-node=1",
            *limits,
        ]
        if launch.run.workdir:
            common.append(f"--chdir={launch.run.workdir}")
        if self.partition:
            common.append(f"--partition={self.partition}")
        args = sbatch_args(shares, common)
        out = self._cmd(args, input_text=script).strip()
        slurm_id = out.split(";")[0].strip()
        grace, nodes = float(launch.run.grace_seconds), [s[0] for s in shares]
        job = SlurmJob(job_id, slurm_id, launch.attempt, grace, nodes, time.time())
        self._jobs[job_id] = job
        self._save(job)

    def _ram_ok(self) -> bool:
        if self._ram is None:
            self._ram = ram_constrained(self._cmd(["scontrol", "show", "config"]))
        return self._ram

    def stop(self, job_id: str, reason: str) -> None:
        with self._lock:
            # a next attempt waiting for this one to end is dropped too: stopped means not running at all
            self._pending.pop(job_id, None)
            job = self._jobs.get(job_id)
            if job is None or job.stop_reason is not None:
                return
            job.stop_reason = reason
            self._terminate(job)

    def _terminate(self, job: SlurmJob) -> None:
        if job.kill_at is None:
            job.kill_at = time.time() + max(0.0, job.grace)
        self._save(job)
        try:
            if job.started:
                self._cmd(["scancel", "--signal=TERM", job.slurm_id])  # the steps, not the batch script
            else:  # not running yet: nothing to signal, cancel it
                self._cmd(["scancel", job.slurm_id])
        except SlurmError as exc:
            log.warning("scancel of job %s (Slurm %s) failed: %s", job.job_id, job.slurm_id, exc)

    def poll(self) -> list[ExecutorEvent]:
        with self._lock:
            out, self._events = self._events, []
            if not self._jobs:
                return out
            try:
                rows = self._query()
                self._refresh_nodes()
            except SlurmError as exc:
                log.warning("Slurm does not answer: %s", exc)
                return out
            now_wall = time.time()
            relaunch: list[Launch] = []
            for job_id in sorted(self._jobs):
                job = self._jobs[job_id]
                row = rows.get(job.slurm_id)
                ended = self._observe(job, row, now_wall, out)
                if ended is not None:
                    del self._jobs[job_id]
                    self._recancel_at.pop(job_id, None)
                    out.append(ended)
                    pending = self._pending.pop(job_id, None)
                    self._unacked.append(job_id)
                    if pending is not None and not (
                        ended.kind == EventKind.EXITED and job.stop_reason is None
                    ):
                        relaunch.append(pending)
                        if ended.kind == EventKind.LOST:  # its new attempt is recorded: not a requeue
                            out[-1] = ExecutorEvent(
                                job_id,
                                EventKind.EXITED,
                                ended.time,
                                exit_code=-9,
                                reason=f"stopped: {ended.reason}",
                                cause=StopCause.REQUESTED,
                            )
            self._enforce_deadlines(now_wall)
            for launch in relaunch:
                self._forget(launch.job.id)
                try:
                    self._submit(launch)
                except SlurmError as exc:
                    out.append(self._ev(launch.job.id, EventKind.LOST, reason=f"lost: start failed ({exc})"))
            out += self._events
            self._events = []
            return out

    def _observe(
        self, job: SlurmJob, row: Row | None, now_wall: float, out: list[ExecutorEvent]
    ) -> ExecutorEvent | None:
        row = row or recorded_end(job, exit_record(str(self.progress_dir / _safe(job.job_id))))  # purged
        if row is None:
            return self._ev(
                job.job_id, EventKind.LOST, reason=f"lost: Slurm no longer knows job {job.slurm_id}"
            )
        state = row.state.split()[0] if row.state else ""
        ran = state in ("RUNNING", "COMPLETING", "SUSPENDED", "STOPPED") or (
            state in ENDED and row.nodes not in ("", "(null)", "None")
        )
        if ran and not job.started:
            job.started = True
            self._save(job)
            out.append(self._ev(job.job_id, EventKind.STARTED, at=row.start))
        steps = self._read_progress(job.job_id)
        if steps is not None and steps != job.last_steps:
            job.last_steps = steps
            out.append(self._ev(job.job_id, EventKind.PROGRESS, steps=steps))
        bad = [n for n in job.nodes if self._bad(self._node_state.get(n, "DOWN"))]
        if state in ENDED:
            return self._ended(job, row, state)
        if bad and job.lost_reason is None and job.stop_reason is None:
            st = self._node_state.get(bad[0], "gone")
            job.lost_reason = f"node-lost: {bad[0]} is {st.lower()}"
            if "DRAIN" in st.upper() and not self._bad(st.upper().replace("DRAIN", "")):
                job.lost_reason = f"node-lost: {bad[0]} drained"
                self._terminate(job)  # with the job's grace period
            else:
                try:
                    self._cmd(["scancel", job.slurm_id])
                except SlurmError as exc:  # the job is requeued anyway; Slurm ends it with its node
                    log.warning("job %s: scancel of Slurm job %s failed: %s", job.job_id, job.slurm_id, exc)
                return self._ev(job.job_id, EventKind.LOST, reason=job.lost_reason)
        if state == "PENDING" and job.stop_reason is None and now_wall - job.submitted > self.pending_timeout:
            try:
                self._cmd(["scancel", job.slurm_id])
            except SlurmError as exc:  # requeued either way; the warning lets an operator end it by hand
                log.warning(
                    "job %s: scancel of pending Slurm job %s failed: %s", job.job_id, job.slurm_id, exc
                )
            why = row.reason or "no reason given"
            return self._ev(
                job.job_id,
                EventKind.LOST,
                reason=f"lost: pending in Slurm for more than {self.pending_timeout:g} s ({why})",
            )
        return None

    def _ended(self, job: SlurmJob, row: Row, state: str) -> ExecutorEvent:
        deadline = rank_deadline(f"{self.progress_dir / _safe(job.job_id)}.d")  # the rank's max_run_time
        kind, code, reason, cause = end_of(job, row, state, self._node_state, deadline)
        return self._ev(job.job_id, kind, code=code, reason=reason, at=row.end, cause=cause)

    def _query(self) -> dict[str, Row]:
        """Our jobs as Slurm sees them now (all states Slurm still remembers)."""
        text = self._cmd(
            [
                "squeue",
                "-h",
                "-t",
                "all",
                "-O",
                "JobID:|,State:|,exit_code:|,StartTime:|,EndTime:|,NodeList:|,Reason:|,Comment:|",
            ]
        )
        return parse_squeue(text, self._tag)

    def _enforce_deadlines(self, now_wall: float) -> None:
        """Kill every stopped job whose grace period is over, and keep at it until Slurm has ended it.

        The SIGKILL to the batch script and the steps can fail without anything being wrong (a job Slurm
        calls RUNNING whose batch step is not up yet has nothing to signal), so the cancel that follows is
        sent whatever the signal did. A cancel that fails (the controller timed out) is sent again at the
        next poll, and a job Slurm still runs ``RECANCEL_SECONDS`` after its cancel is cancelled again:
        a stop is never given up after one lost command."""
        for job in self._jobs.values():
            if job.kill_at is None or now_wall < job.kill_at:
                continue
            if job.killed and now_wall < self._recancel_at.get(job.job_id, 0.0):
                continue
            if not job.killed:
                try:
                    self._cmd(["scancel", "--signal=KILL", "--full", job.slurm_id])
                except SlurmError as exc:  # nothing to signal yet, or a timeout: the cancel below ends it
                    log.info("SIGKILL to job %s (Slurm %s) failed: %s", job.job_id, job.slurm_id, exc)
            try:
                self._cmd(["scancel", job.slurm_id])
            except SlurmError as exc:
                log.warning(
                    "cancelling job %s (Slurm %s) failed, retrying: %s", job.job_id, job.slurm_id, exc
                )
                continue
            self._recancel_at[job.job_id] = now_wall + RECANCEL_SECONDS
            if not job.killed:
                job.killed = True
                self._save(job)

    def active(self) -> set[str]:
        with self._lock:
            return set(self._jobs)

    def logs(self, job_id: str) -> str:
        try:
            return self.log_path(job_id).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        """Nothing to release: jobs keep running in Slurm; a new executor with the same instance adopts
        them (and reports again the ends not acked)."""

    def ack(self, events: Sequence[ExecutorEvent]) -> None:
        """The store has recorded ``events``: forget the records of the ended jobs among them."""
        with self._lock:
            for e in events:
                if e.kind in (EventKind.EXITED, EventKind.LOST) and e.job in self._unacked:
                    self._unacked.remove(e.job)
                    self._forget(e.job)

    # -- extras -----------------------------------------------------------------------------------------

    def log_path(self, job_id: str) -> Path:
        return self.log_dir / f"{_safe(job_id)}.log"

    def slurm_id(self, job_id: str) -> str | None:
        """The Slurm job id of a running job (for tests and operators)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.slurm_id

    # -- internals --------------------------------------------------------------------------------------

    def _emit(self, ev: ExecutorEvent) -> None:
        self._events.append(ev)

    def _ev(
        self,
        job: str,
        kind: EventKind,
        *,
        reason: str = "",
        code: int | None = None,
        steps: float | None = None,
        at: float | None = None,
        cause: StopCause | None = None,
    ) -> ExecutorEvent:
        """An event at the clock's now, or at Slurm's wall time ``at`` mapped onto the clock; never before
        the previous event (events stay in time order)."""
        now = self.clock.now()
        t = now if at is None else min(now, now - max(0.0, time.time() - at))
        t = max(t, self._last_time)
        self._last_time = t
        return ExecutorEvent(job, kind, t, steps=steps, exit_code=code, reason=reason, cause=cause)

    def _read_progress(self, job_id: str) -> float | None:  # sandboxed: in the job's own work dir
        return read_progress_file(
            f"{self.progress_dir / _safe(job_id)}{'.d/.progress' if self.sandbox else ''}"
        )

    def _save(self, job: SlurmJob) -> None:
        save_job(self.jobs_dir, job)

    def _forget(self, job_id: str) -> None:
        forget_job(self.jobs_dir, job_id)
        rank_deadline(f"{self.progress_dir / _safe(job_id)}.d", clear=True)

    def _adopt(self) -> None:
        """Jobs a previous control plane with this instance id submitted: from the state files, and from
        Slurm's tags (a job submitted just before a crash, before its state file was written)."""
        for job in load_jobs(self.jobs_dir):
            self._jobs[job.job_id] = job
        try:
            rows = self._query()
        except SlurmError as exc:
            log.warning("cannot list Slurm jobs to adopt: %s", exc)
            return
        known = {j.slurm_id for j in self._jobs.values()}
        for row in rows.values():
            if row.slurm_id in known or row.state.split()[0] in ENDED:
                continue
            tagged = attempt_of(row.comment, self._tag)
            if tagged is None:
                continue
            att, job_id = tagged
            old = self._jobs.get(job_id)
            if old is not None and old.attempt >= att:
                continue
            nodes = self._hostnames(row.nodes)
            job = SlurmJob(job_id, row.slurm_id, att, 30.0, nodes, time.time(), started=False)
            self._jobs[job_id] = job
            self._save(job)
            log.info("adopted Slurm job %s (accelpool job %s, attempt %d)", row.slurm_id, job_id, att)

    def _hostnames(self, nodelist: str) -> list[str]:
        if not nodelist or nodelist in ("(null)", "None"):
            return []
        try:
            return self._cmd(["scontrol", "show", "hostnames", nodelist]).split()
        except SlurmError:
            return [nodelist]

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

Why the Slurm commands and not slurmrestd (measured on Debian 12, Slurm 22.05.8; see docs/executors.md):
``sbatch``/``squeue``/``sinfo``/``scancel`` answer in about 10 ms each, have a stable parsable output
(``--parsable``, ``squeue -O`` with separators) and need nothing beyond the munge key every Slurm client
has; slurmrestd refuses to run as root or as SlurmUser ("slurmrestd should not be run as the root user"),
so it needs its own service account plus JWT keys or a local socket, and its OpenAPI plugin versions change
with every Slurm release.

Nodes (``nodes()``, the NodeSource port): every Slurm node of the partition that is up (not DOWN, DRAIN,
FAIL or NOT_RESPONDING), one pool node per recognised GRES type on it. ``Gres=gpu:h100:4`` gives a node of 4
``h100``; NPUs are GRES of another name (``npu:rngd:4``, ``rbln:atom:4``, ...), the GRES *type* being
matched against catalogue ids and aliases and ``type_aliases``. The pool node is named like the Slurm node
(``<node>+<type>`` when one Slurm node holds several recognised types). GRES without a type, or of a type
the catalogue does not know, are listed in ``unrecognized()`` and left out (never guessed).

A placement becomes one Slurm job pinned to its nodes (``--nodelist``) with ``--gres=<name>:<type>:<n>``
per node, one task per node (rank), ``--no-requeue`` (accelpool, not Slurm, requeues); a placement whose
nodes hold different device counts becomes a heterogeneous job (one component per node). The batch script
is a small Python wrapper that runs ``srun --kill-on-bad-exit=1`` (one rank failing ends the gang); each
rank sets the same ACCELPOOL_* variables as the other executors (executors/env.py) and the type's
visible-devices variable (CUDA_VISIBLE_DEVICES, FURIOSA_DEVICES, RBLN_DEVICES, ...) to the device indices
*Slurm* allocated on its node (from CUDA_VISIBLE_DEVICES for ``gpu`` GRES, else from
``scontrol -d show job``): Slurm, not accelpool, picks the indices on a node. STARTED is reported by the poll
that sees the job RUNNING in Slurm; exits carry the job's exit code (negative: killed by that signal) and
are timed at Slurm's end time (so a job that ended while accelpool was down is metered to its real end).

``stop`` sends SIGTERM to every rank (``scancel --signal=TERM``: the job steps, not the batch script, so
srun stays and the ranks keep their grace period to checkpoint) and, after
``RunSpec.grace_seconds``, SIGKILL; a stopped job is reported EXITED with exit_code -15 (-9 if killed) and
reason ``stopped: <reason>``. A node of the job DOWN or NOT_RESPONDING (or the job ending NODE_FAIL) ->
the job is cancelled and reported LOST ``node-lost: ...`` at once; a node DRAINING -> the job is stopped
with its grace period and then reported LOST ``node-lost: <node> drained`` (the store requeues both). A job
Slurm no longer knows -> LOST. ``reachable()`` is False while the Slurm controller does not answer; jobs
stay active then (the site layer decides when the site is down).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, unquote

from accelpool.core.types import DEFAULT_SITE, AcceleratorType, Node
from accelpool.executors.env import ExtraEnv, devices_str, job_env, visible_devices_env
from accelpool.ports import Clock, EventKind, ExecutorEvent, Launch, StopCause

log = logging.getLogger(__name__)

# Node states (sinfo/scontrol flags) that take a node out of the pool.
_BAD_NODE = ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING", "NO_RESPOND", "POWERED_DOWN", "INVAL", "FUTURE")
_ENDED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "OUT_OF_MEMORY",
    "BOOT_FAIL",
    "DEADLINE",
    "SPECIAL_EXIT",
    "REVOKED",
}

# The batch script's body (after the payload line): run one rank per node with srun. Exec keeps srun's exit
# code as the job's.
_BATCH = r"""
import os, sys
argv = ["srun", "--kill-on-bad-exit=1", "--unbuffered"]
if P["het"] > 1:
    argv.append("--het-group=0-%d" % (P["het"] - 1))
else:
    argv += ["--ntasks-per-node=1", "--ntasks=%d" % P["nodes"]]
os.environ["ACCELPOOL_SLURM_PAYLOAD"] = PAYLOAD
os.execvp("srun", argv + [P["python"], "-c", P["rank"]])
"""

# One rank: find this node's environment in the payload and the devices Slurm gave it, then run the command.
_RANK = r"""
import base64, json, os, re, subprocess, sys
P = json.loads(base64.b64decode(os.environ.pop("ACCELPOOL_SLURM_PAYLOAD")))
me = os.environ.get("SLURMD_NODENAME", "")
ranks = P["ranks"]
r = ranks.get(me)
if r is None:
    sys.stderr.write("accelpool: node %s is not in this job's placement %s\n" % (me, sorted(ranks)))
    sys.exit(97)
env = dict(os.environ)
env.update(r["env"])
def expand(s):
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += range(int(a), int(b) + 1)
        elif part:
            out.append(int(part))
    return out
idx = None
if P["gres"] == "gpu":
    v = os.environ.get("SLURM_STEP_GPUS") or os.environ.get("SLURM_JOB_GPUS") or os.environ.get("CUDA_VISIBLE_DEVICES")
    if v:
        idx = v
if idx is None:
    jid = os.environ.get("SLURM_JOB_ID", "")
    try:
        text = subprocess.run(["scontrol", "-d", "-o", "show", "job", jid], capture_output=True, text=True, timeout=30).stdout
        for m in re.finditer(r"Nodes=(\S+) CPU_IDs=\S+ Mem=\S+ GRES=(\S+)", text):
            hosts = subprocess.run(["scontrol", "show", "hostnames", m.group(1)], capture_output=True, text=True, timeout=30).stdout.split()
            if me in hosts:
                g = re.search(r"\(IDX:([0-9,\-]+)\)", m.group(2))
                if g:
                    idx = ",".join(str(i) for i in expand(g.group(1)))
    except Exception as exc:
        sys.stderr.write("accelpool: could not read the devices Slurm allocated: %r\n" % (exc,))
if idx is not None:
    env[P["visible"]] = idx
    env["ACCELPOOL_SLURM_DEVICES"] = idx
os.execvpe(P["shell"], [P["shell"], "-c", P["command"]], env)
"""


class SlurmError(RuntimeError):
    """A Slurm command failed or did not answer in time."""


@dataclass
class _SJob:
    job_id: str
    slurm_id: str
    attempt: int
    grace: float
    nodes: list[str]  # Slurm node names of the placement
    submitted: float  # wall time (time.time())
    started: bool = False
    stop_reason: str | None = None
    kill_at: float | None = None  # wall time
    killed: bool = False
    lost_reason: str | None = None  # a node of the job went bad: report LOST when Slurm has ended it
    last_steps: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> _SJob:
        d = json.loads(text)
        return cls(**d)


@dataclass(frozen=True)
class _Row:
    slurm_id: str
    state: str
    exit_status: int | None
    start: float | None
    end: float | None
    nodes: str
    comment: str
    reason: str


def _safe(job_id: str) -> str:
    return quote(job_id, safe="")


def _epoch(text: str) -> float | None:
    if not text or text in ("N/A", "Unknown", "None", "(null)"):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _decode_status(status: int | None) -> int | None:
    """Slurm's raw wait status -> exit code (negative: killed by that signal)."""
    if status is None:
        return None
    if status & 0x7F:
        return -(status & 0x7F)
    return (status >> 8) & 0xFF


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
    ) -> None:
        if catalog is None:
            from accelpool.catalog import bundled_catalog

            catalog = bundled_catalog()
        if clock is None:
            from accelpool.runtime.clock import SystemClock

            clock = SystemClock()
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
        self._lock = threading.RLock()
        self._jobs: dict[str, _SJob] = {}
        self._pending: dict[str, Launch] = {}  # next attempt of a job being stopped
        self._unacked: list[str] = []  # ended jobs reported by the last poll(); forgotten by the next
        self._events: list[ExecutorEvent] = []
        self._last_time = float("-inf")
        self._pool: dict[str, tuple[str, str, str]] = {}  # pool node -> (slurm node, gres name, gres type)
        self._node_state: dict[str, str] = {}  # slurm node -> state flags
        self._unrecognized: dict[str, str] = {}
        self.last_ok: float | None = None  # clock time of the last Slurm command that answered
        self.last_error: str = ""
        self._tag = f"accelpool:{instance}:"
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
        states: dict[str, str] = {}
        gres_of: dict[str, str] = {}
        for line in text.splitlines():
            parts = line.split("|")
            if len(parts) < 3:
                continue
            name, state, gres = parts[0].strip(), parts[1].strip().upper(), parts[2].strip()
            states[name] = state  # a node in several partitions appears once per partition
            gres_of[name] = gres
        pool: dict[str, tuple[str, str, str]] = {}
        out: list[Node] = []
        unknown: dict[str, str] = {}
        for name in sorted(states):
            found: list[tuple[str, str, str, int]] = []
            for entry in self._split_gres(gres_of[name]):
                gname, gtype, count = entry
                if gname not in ("gpu", "npu") and not gtype:
                    continue  # not an accelerator (e.g. a licence or a NIC GRES)
                acc = self._resolve(gtype) if gtype else None
                if acc is None:
                    unknown[name] = (
                        f"GRES {gname} has no type (write Gres={gname}:<type>:N)"
                        if not gtype
                        else f"GRES type {gtype} is not in the catalogue"
                    )
                    continue
                found.append((acc, gname, gtype, count))
            for acc, gname, gtype, count in found:
                pname = name if len(found) == 1 else f"{name}+{acc}"
                pool[pname] = (name, gname, gtype)
                if count > 0 and not self._bad(states[name]):
                    labels = (("slurm.node", name), ("slurm.gres", f"{gname}:{gtype}"))
                    out.append(Node(pname, acc, count, zone=self.zone, labels=labels, site=self.site))
        with self._lock:
            self._pool.update(pool)
            self._node_state = states
            for name, why in unknown.items():
                if self._unrecognized.get(name) != why:
                    log.warning("Slurm node %s left out of the pool: %s", name, why)
            self._unrecognized = unknown
        return out

    @staticmethod
    def _split_gres(text: str) -> list[tuple[str, str, int]]:
        """``gpu:h100:4(S:0),npu:rngd:2`` -> [("gpu", "h100", 4), ("npu", "rngd", 2)]."""
        out: list[tuple[str, str, int]] = []
        if not text or text == "(null)":
            return out
        for entry in re.split(r",(?![^()]*\))", text):
            entry = re.sub(r"\(.*\)$", "", entry.strip())
            parts = entry.split(":")
            if len(parts) == 3:
                name, typ, count = parts
            elif len(parts) == 2:
                name, typ, count = parts[0], "", parts[1]
            else:
                continue
            try:
                out.append((name, typ, int(count)))
            except ValueError:
                continue
        return out

    @staticmethod
    def _bad(state: str) -> bool:
        s = state.upper().replace("+", " ").replace("*", " NOT_RESPONDING")
        return any(b in s for b in _BAD_NODE)

    def _resolve(self, name: str) -> str | None:
        alias = self.type_aliases.get(name.lower())
        if alias is not None:
            return alias if alias in self.catalog else None
        resolve = getattr(self.catalog, "resolve", None)
        for cand in (name, name.replace("_", "-")):
            if resolve is not None:
                try:
                    return str(resolve(cand))
                except Exception:
                    continue
            elif cand in self.catalog:
                return cand
        return None

    # -- the Executor port -----------------------------------------------------------------------------

    def start(self, launch: Launch) -> None:
        job_id = launch.job.id
        with self._lock:
            old = self._jobs.get(job_id)
            if old is not None:
                if old.stop_reason is None and old.lost_reason is None:
                    raise RuntimeError(f"job {job_id} is already running")
                self._pending[job_id] = launch  # started once the old attempt has ended
                return
            try:
                self._submit(launch)
            except SlurmError as exc:
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
        shares = self._placement_nodes(launch)
        safe = _safe(job_id)
        progress = self.progress_dir / safe
        progress.unlink(missing_ok=True)
        if launch.run.checkpoint_dir:
            os.makedirs(launch.run.checkpoint_dir, exist_ok=True)
        ranks: dict[str, dict[str, object]] = {}
        for rank, (node, _g, _t, devices) in enumerate(shares):
            pool_name = launch.placement.devices[rank][0]
            env = job_env(
                launch,
                node=pool_name,
                rank=rank,
                num_nodes=len(shares),
                catalog=self.catalog,
                base={},
                devices=None,
                progress_file=str(progress),
                extra_env=self.extra_env,
            )
            env["ACCELPOOL_SLURM_NODE"] = node
            ranks[node] = {"env": env, "devices": list(devices)}
        counts = {len(ds) for *_x, ds in shares}
        gname, gtype = shares[0][1], shares[0][2]
        payload = {
            "ranks": ranks,
            "gres": gname,
            "visible": visible_devices_env(self.catalog, launch.placement.accelerator),
            "shell": self.shell,
            "command": launch.run.command,
            "python": self.python,
            "rank": _RANK,
            "nodes": len(shares),
            "het": 1 if len(counts) == 1 else len(shares),
        }
        blob = base64.b64encode(json.dumps(payload).encode()).decode()
        script = (
            f"#!/usr/bin/env {self.python}\n"
            f"import base64, json\nPAYLOAD = {blob!r}\nP = json.loads(base64.b64decode(PAYLOAD))\n{_BATCH}"
        )
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
        ]
        if launch.run.workdir:
            common.append(f"--chdir={launch.run.workdir}")
        if self.partition:
            common.append(f"--partition={self.partition}")
        args = ["sbatch", "--parsable"]
        if len(counts) == 1:
            n = len(shares[0][3])
            args += common + [
                f"--nodes={len(shares)}",
                f"--ntasks={len(shares)}",
                f"--nodelist={','.join(s[0] for s in shares)}",
            ]
            if n > 0:
                args.append(f"--gres={gname}:{gtype}:{n}")
        else:  # different device counts per node: one heterogeneous component per node
            for i, (node, g, t, ds) in enumerate(shares):
                if i:
                    args.append(":")
                args += [
                    *common,
                    "--nodes=1",
                    "--ntasks=1",
                    f"--nodelist={node}",
                    f"--gres={g}:{t}:{len(ds)}",
                ]
        out = self._cmd(args, input_text=script).strip()
        slurm_id = out.split(";")[0].strip()
        job = _SJob(
            job_id,
            slurm_id,
            launch.attempt,
            float(launch.run.grace_seconds),
            [s[0] for s in shares],
            time.time(),
        )
        self._jobs[job_id] = job
        self._save(job)

    def stop(self, job_id: str, reason: str) -> None:
        with self._lock:
            # a next attempt waiting for this one to end is dropped too: stopped means not running at all
            self._pending.pop(job_id, None)
            job = self._jobs.get(job_id)
            if job is None or job.stop_reason is not None:
                return
            job.stop_reason = reason
            self._terminate(job)

    def _terminate(self, job: _SJob) -> None:
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
            for done in self._unacked:
                self._forget(done)
            self._unacked.clear()
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
                if launch.job.id in self._unacked:
                    self._unacked.remove(launch.job.id)
                try:
                    self._submit(launch)
                except SlurmError as exc:
                    out.append(self._ev(launch.job.id, EventKind.LOST, reason=f"lost: start failed ({exc})"))
            out += self._events
            self._events = []
            return out

    def _observe(
        self, job: _SJob, row: _Row | None, now_wall: float, out: list[ExecutorEvent]
    ) -> ExecutorEvent | None:
        if row is None:
            return self._ev(
                job.job_id, EventKind.LOST, reason=f"lost: Slurm no longer knows job {job.slurm_id}"
            )
        state = row.state.split()[0] if row.state else ""
        ran = state in ("RUNNING", "COMPLETING", "SUSPENDED", "STOPPED") or (
            state in _ENDED and row.nodes not in ("", "(null)", "None")
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
        if state in _ENDED:
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
                except SlurmError:
                    pass
                return self._ev(job.job_id, EventKind.LOST, reason=job.lost_reason)
        if state == "PENDING" and job.stop_reason is None and now_wall - job.submitted > self.pending_timeout:
            try:
                self._cmd(["scancel", job.slurm_id])
            except SlurmError:
                pass
            why = row.reason or "no reason given"
            return self._ev(
                job.job_id,
                EventKind.LOST,
                reason=f"lost: pending in Slurm for more than {self.pending_timeout:g} s ({why})",
            )
        return None

    def _ended(self, job: _SJob, row: _Row, state: str) -> ExecutorEvent:
        at = row.end
        if job.lost_reason is not None:
            return self._ev(job.job_id, EventKind.LOST, reason=job.lost_reason, at=at)
        if state in ("NODE_FAIL", "BOOT_FAIL"):
            bad = [n for n in job.nodes if self._bad(self._node_state.get(n, "DOWN"))] or job.nodes
            return self._ev(
                job.job_id,
                EventKind.LOST,
                reason=f"node-lost: {', '.join(bad)} (Slurm ended it {state})",
                at=at,
                cause=StopCause.NODE_LOST,
            )
        code = _decode_status(row.exit_status)
        if job.stop_reason is not None:
            forced = -9 if job.killed else -15
            return self._ev(
                job.job_id,
                EventKind.EXITED,
                code=forced,
                reason=f"stopped: {job.stop_reason} (Slurm {state}, exit code {code})",
                at=at,
                cause=StopCause.REQUESTED,
            )
        if code is None:
            code = 0 if state == "COMPLETED" else 1
        if state != "COMPLETED" and code == 0:
            code = 1  # ended badly (TIMEOUT, CANCELLED by someone else, ...) but no code: never a success
        reason = "" if code == 0 else (f"killed by signal {-code}" if code < 0 else f"exit code {code}")
        if state not in ("COMPLETED", "FAILED"):
            reason = f"{reason} (Slurm {state})".strip()
        return self._ev(job.job_id, EventKind.EXITED, code=code, reason=reason, at=at)

    def _query(self) -> dict[str, _Row]:
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
        rows: dict[str, _Row] = {}
        for line in text.splitlines():
            parts = line.split("|")
            if len(parts) < 8 or not parts[7].startswith(self._tag):
                continue
            try:
                status: int | None = int(parts[2])
            except ValueError:
                status = None
            rows[parts[0].strip()] = _Row(
                parts[0].strip(),
                parts[1].strip(),
                status,
                _epoch(parts[3].strip()),
                _epoch(parts[4].strip()),
                parts[5].strip(),
                parts[7].strip(),
                parts[6].strip(),
            )
        return rows

    def _enforce_deadlines(self, now_wall: float) -> None:
        for job in self._jobs.values():
            if job.kill_at is not None and not job.killed and now_wall >= job.kill_at:
                job.killed = True
                self._save(job)
                try:
                    self._cmd(["scancel", "--signal=KILL", "--full", job.slurm_id])
                    self._cmd(["scancel", job.slurm_id])
                except SlurmError as exc:
                    log.warning("killing job %s (Slurm %s) failed: %s", job.job_id, job.slurm_id, exc)

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
        them."""
        with self._lock:
            for done in self._unacked:
                self._forget(done)
            self._unacked.clear()

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

    def _read_progress(self, job_id: str) -> float | None:
        try:
            text = (self.progress_dir / _safe(job_id)).read_text().strip()
            return float(text) if text else None
        except (OSError, ValueError):
            return None

    def _save(self, job: _SJob) -> None:
        path = self.jobs_dir / f"{_safe(job.job_id)}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(job.to_json())
        os.replace(tmp, path)

    def _forget(self, job_id: str) -> None:
        path = self.jobs_dir / f"{_safe(job_id)}.json"
        try:
            os.replace(path, path.with_suffix(".done"))
        except OSError:
            pass

    def _adopt(self) -> None:
        """Jobs a previous control plane with this instance id submitted: from the state files, and from
        Slurm's tags (a job submitted just before a crash, before its state file was written)."""
        for f in sorted(self.jobs_dir.glob("*.json")):
            try:
                job = _SJob.from_json(f.read_text())
            except (OSError, ValueError, TypeError):
                continue
            self._jobs[job.job_id] = job
        try:
            rows = self._query()
        except SlurmError as exc:
            log.warning("cannot list Slurm jobs to adopt: %s", exc)
            return
        known = {j.slurm_id for j in self._jobs.values()}
        for row in rows.values():
            if row.slurm_id in known or row.state.split()[0] in _ENDED:
                continue
            rest = row.comment[len(self._tag) :]
            attempt, _, safe = rest.partition(":")
            job_id = unquote(safe)
            try:
                att = int(attempt)
            except ValueError:
                continue
            old = self._jobs.get(job_id)
            if old is not None and old.attempt >= att:
                continue
            nodes = self._hostnames(row.nodes)
            job = _SJob(job_id, row.slurm_id, att, 30.0, nodes, time.time(), started=False)
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


def slurm_available(slurm_conf: str | None = None) -> bool:
    """Whether Slurm's commands are installed and its controller answers (for tests and the CLI)."""
    if shutil.which("sinfo") is None:
        return False
    env = dict(os.environ)
    if slurm_conf:
        env["SLURM_CONF"] = slurm_conf
    try:
        p = subprocess.run(["sinfo", "-h", "-o", "%P"], env=env, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return p.returncode == 0

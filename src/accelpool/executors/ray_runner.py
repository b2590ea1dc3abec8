"""The RayExecutor's per-rank actor (``JobRunner``) and the control plane's records of the ranks: it runs on a Ray node, starts the rank's command under
the sandbox wrapper, reports its status (exit code, exit time, the wrapper's reason, progress) and stops it.

The class is defined inside ``_runner_class()`` so that Ray ships it by value: Ray nodes need no accelpool.
The sandbox module and the wrapper program reach the actor as source text in its ``info``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from accelpool.ports import Launch

log = logging.getLogger(__name__)


def _runner_class() -> type:
    """The actor class, defined in a function so that Ray ships it by value (Ray nodes need no accelpool)."""

    class JobRunner:
        def __init__(self, info: dict[str, Any]) -> None:
            import sys
            import types

            self._info = dict(info)
            # the sandbox module and its helpers, shipped as source (standard library only): Ray nodes need
            # no accelpool; sandbox.py finds each helper by its name here (sandbox._shipped)
            for name in ("sandbox_image", "sandbox_paths", "sandbox_env"):
                helper = types.ModuleType(f"accelpool_job_{name}")
                sys.modules[f"accelpool_job_{name}"] = helper
                key = f"{name.removeprefix('sandbox_')}_src"
                exec(compile(self._info.pop(key), f"accelpool/executors/{name}.py", "exec"), helper.__dict__)
            src = self._info.pop("sandbox_src")
            mod = types.ModuleType("accelpool_job_sandbox")
            sys.modules["accelpool_job_sandbox"] = mod
            exec(compile(src, "accelpool/executors/sandbox.py", "exec"), mod.__dict__)
            self._sb: Any = mod
            self._parent_w: int | None = None
            self._proc: Any = None
            self._pid: int | None = None
            self._code: int | None = None
            self._kill_at: float | None = None
            self._killed = False

        def info(self) -> dict[str, Any]:
            return dict(self._info, pid=self._pid, kill_at=self._kill_at)

        def start(self, run: dict[str, Any], env: dict[str, str], config: dict[str, Any]) -> dict[str, Any]:
            """Start the rank's command in its sandbox (executors/sandbox.py) under the wrapper. The wrapper
            gets the read end of a pipe whose write end only this actor holds: when the actor dies (killed,
            or its node lost), the wrapper sees EOF and kills the sandbox with every process in it."""
            import json
            import subprocess
            import sys
            import time

            import ray

            if self._proc is not None:
                return self.info()
            cfg = self._sb.SandboxConfig.from_dict(config)
            ids = ray.get_runtime_context().get_accelerator_ids().get(self._info["resource"] or "", [])
            full = dict(env)
            visible = ",".join(str(i) for i in ids) if ids else self._info["indices"]
            full[self._info["visible_env"]] = visible
            d = self._info["remote_dir"]
            work = os.path.join(d, "work")
            os.makedirs(work, exist_ok=True)
            full["ACCELPOOL_PROGRESS_FILE"] = os.path.join(work, self._sb.PROGRESS_FILE)
            rank = self._info["rank"]
            try:
                plan = self._sb.plan(
                    cfg,
                    command=run["command"],
                    env=full,
                    tenant=run["tenant"],
                    work_dir=work,
                    checkpoint_dir=run.get("checkpoint_dir"),
                    workdir=run.get("workdir"),
                    devices=self._sb.device_nodes(
                        cfg, self._info["visible_env"], [int(i) for i in visible.split(",") if i]
                    ),
                    log_path=os.path.join(d, f"log.{rank}"),
                    exit_path=os.path.join(d, f"exit.{rank}"),
                    max_run_seconds=run.get("max_run_seconds"),
                    grace_seconds=float(run.get("grace_seconds", 30.0)),
                    image=run.get("image"),
                    limits=run.get("limits") or {},
                    grant=run.get("grant"),
                    name=f"{run.get('name', 'job')}-r{rank}",
                )
            except self._sb.SandboxError as exc:
                self._info["error"] = str(exc)
                return self.info()
            self._sb.prepare_dirs(plan)
            parent_r, self._parent_w = os.pipe()
            plan["parent_fd"] = parent_r
            plan_file = os.path.join(d, f"plan.{rank}.json")
            self._plan_file = plan_file
            fd = os.open(plan_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(plan, f)
            with open(os.path.join(d, f"wrapper.{rank}"), "ab") as out:
                self._proc = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-c", self._info["wrapper_src"], plan_file],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env={"PATH": os.environ.get("PATH", self._sb.SAFE_PATH)},
                    cwd=d,
                    start_new_session=True,
                    pass_fds=(parent_r,),
                )
            os.close(parent_r)
            self._pid = self._proc.pid
            self._info["started_wall"] = time.time()  # wall clock: reported again when adopted
            self._info["visible"] = visible
            self._info["node_id"] = ray.get_runtime_context().get_node_id()
            return self.info()

        def status(self) -> dict[str, Any]:
            import signal
            import sys
            import time

            exit_time = None
            reason = ""
            if self._proc is not None and self._code is None:
                rc = self._proc.poll()
                if rc is not None:
                    rec = self._sb.read_exit(
                        os.path.join(self._info["remote_dir"], f"exit.{self._info['rank']}")
                    )
                    if rec is not None:
                        self._code, self._exit_time, self._reason = rec
                    else:  # the wrapper itself was killed (SIGKILL, not the stop path): it could not
                        # remove an image job's container, which podman runs apart from it: remove it here
                        self._code = rc if rc < 128 else -(rc - 128)
                        self._exit_time = time.time()
                        sys.modules["accelpool_job_sandbox_image"].remove_container(self._plan_file)
            if self._code is None and self._kill_at is not None and time.time() >= self._kill_at:
                self._killed = True
                try:
                    os.killpg(self._pid, signal.SIGKILL)  # type: ignore[arg-type]
                except ProcessLookupError:
                    pass
            exit_time, reason = getattr(self, "_exit_time", None), getattr(self, "_reason", "")
            steps = None
            path = os.path.join(self._info["remote_dir"], "work", self._sb.PROGRESS_FILE)
            try:  # the job owns the file: no links, no FIFOs, a bounded read
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                try:
                    import stat as _stat

                    if _stat.S_ISREG(os.fstat(fd).st_mode):
                        v = float(os.read(fd, 64).decode("ascii", errors="replace").strip())
                        steps = v if v >= 0 and v != float("inf") else None
                finally:
                    os.close(fd)
            except (OSError, ValueError):  # no readable progress file yet: no steps to report
                pass
            return {
                "running": self._proc is not None and self._code is None,
                "code": self._code,
                "steps": steps,
                "killed": self._killed,
                "started": self._proc is not None,
                "exit_time": exit_time,
                "reason": reason,
                "error": self._info.get("error", ""),
            }

        def terminate(self, grace: float) -> None:
            import signal
            import threading
            import time

            if self._kill_at is None:
                self._kill_at = time.time() + grace
                timer = threading.Timer(grace, self._force)
                timer.daemon = True
                timer.start()
            if self._pid is not None and self._code is None:
                try:  # the wrapper passes it to every process of the sandbox
                    os.kill(self._pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

        def _force(self) -> None:
            import signal

            if self._proc is not None and self._proc.poll() is None:
                self._killed = True
                try:
                    os.killpg(self._pid, signal.SIGKILL)  # type: ignore[arg-type]
                except ProcessLookupError:
                    pass

        def logs(self) -> str:
            return str(self._sb.read_log(os.path.join(self._info["remote_dir"], f"log.{self._info['rank']}")))

    return JobRunner


# The control plane's records of a job's ranks (executors/ray.py).


@dataclass
class _Rank:
    actor: Any
    node_id: str
    start_ref: Any = None
    status_ref: Any = None
    started: bool = False
    code: int | None = None
    killed: bool = False
    steps: float | None = None
    exit_time: float | None = None  # wall time the rank's wrapper recorded
    reason: str = ""  # the wrapper's reason (e.g. max_run_time exceeded)


@dataclass
class _RayJob:
    job_id: str
    attempt: int
    pg: Any
    ranks: list[_Rank]
    grace: float
    deadline: float  # wall time the placement group must be ready by
    started: bool = False
    stop_reason: str | None = None
    force_at: float | None = None
    last_steps: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    pending: Launch | None = None  # the next attempt, started once this one has ended


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", s)


def release(ray: Any, job: _RayJob, gone: tuple[type[BaseException], ...]) -> None:
    """Kill the job's actors and remove its placement group; ``gone``: the errors that say either is gone
    already. Killing a rank's actor kills its sandbox too (the wrapper sees its actor's pipe close): on a
    node loss this ends the ranks on the surviving nodes, not only the wrappers."""
    for r in job.ranks:
        try:
            ray.kill(r.actor, no_restart=True)
        except gone as exc:
            log.info("job %s: actor already gone (%s)", job.job_id, type(exc).__name__)
    if job.pg is not None:
        try:
            ray.util.remove_placement_group(job.pg)
        except gone as exc:
            log.info("job %s: placement group already gone (%s)", job.job_id, type(exc).__name__)

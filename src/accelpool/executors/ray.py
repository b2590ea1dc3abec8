"""RayExecutor: accelpool decides, Ray carries it out on many machines.

Construct it once per control plane::

    RayExecutor(
        address=None,              # Ray address ("auto", "10.0.0.1:6379", "ray://..."); None: an already
                                   # initialised Ray, else ray.init() (starts a local Ray).
        namespace="accelpool",     # Ray namespace of the detached actors and placement groups; a
                                   # restarted control plane must use the same one to adopt its work.
        catalog=None,              # Mapping[str, AcceleratorType]; default: the bundled catalogue.
        clock=None,                # Clock for event times; default SystemClock().
        type_aliases=None,         # Mapping[str, str]: Ray accelerator names -> catalogue ids, for names the
                                   # catalogue does not know, e.g. {"RBLN-CA22": "atom"}.
        placement_timeout_seconds=60.0,  # a placement group not ready by then is removed and the job
                                   # reported LOST with reason "placement-timeout: ..." (requeued).
        log_dir=None,              # where logs of finished jobs are kept on the control-plane machine.
        extra_env=None,            # as LocalExecutor: Mapping or Callable[[Launch], Mapping].
        remote_dir="/tmp/accelpool-ray",  # per-job log/progress files on the Ray nodes.
        node_death_wait_seconds=60.0,  # a rank's actor died on a node Ray still calls alive: wait this
                                   # long for the node to be declared dead ("node-lost") before
                                   # reporting "lost: ray actor died".
    )

Nodes (``nodes()``, the NodeSource port): see executors/ray_nodes.py.

A placement becomes a detached, named placement group (one bundle per node share, each bundle pinned to its
node with the ``ray.io/node-id`` label selector; STRICT_PACK for one node, STRICT_SPREAD otherwise) and one
detached, named actor per bundle (``accelpool/<job>/a<attempt>-<tag>/r<rank>``, a fresh tag per start) that runs the command as a
subprocess in its own process group, with the type's visible-devices variable set to the device ids Ray
assigned to the actor, and the same ACCELPOOL_* variables as the LocalExecutor. ``start`` does not wait:
STARTED is reported by the poll that sees every rank's process running.

Faults: a placement group not ready within the timeout -> LOST ``placement-timeout``; a node of the job dead
(or removed) -> LOST ``node-lost`` (the store requeues it; it resumes from its checkpoint dir); a rank's
actor dead on a live node -> LOST ``lost: ray actor died``. ``stop`` asks every rank to SIGTERM its process
group and SIGKILL after ``grace_seconds``; if the actors do not answer, they are killed 5 s later. The
placement group is removed when the job ends; for a job that exited on its own, once its end is acked
(``ack``: a control plane killed before the store's record adopts the actors again and reports the end).
After a control-plane restart, a new RayExecutor in the same namespace adopts the named actors' jobs.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from accelpool.core.types import AcceleratorType
from accelpool.executors import sandbox as sb
from accelpool.executors import sandbox_env as sb_env
from accelpool.executors import sandbox_image as sb_image
from accelpool.executors import sandbox_paths as sb_paths
from accelpool.executors.env import ExtraEnv, catalog_and_clock, job_env, visible_devices_env
from accelpool.executors.procs import _in_time_order
from accelpool.executors.ray_nodes import RayNodes, reach
from accelpool.executors.ray_runner import _Rank, _RayJob, _runner_class, _safe, release
from accelpool.executors.sandbox_wrapper import WRAPPER
from accelpool.ports import Clock, EventKind, ExecutorEvent, ExecutorFault, Launch, StopCause

try:
    from ray.exceptions import RayError
except ImportError:  # Ray not installed: the executor cannot be constructed anyway

    class RayError(Exception):  # type: ignore[no-redef]
        pass


log = logging.getLogger(__name__)
PREFIX = "accelpool/"
NODE_ID_LABEL = "ray.io/node-id"


class RayExecutor(RayNodes):
    """Runs jobs on a Ray cluster; see the module docstring for the constructor and behaviour."""

    def __init__(
        self,
        address: str | None = None,
        namespace: str = "accelpool",
        catalog: Mapping[str, AcceleratorType] | None = None,
        clock: Clock | None = None,
        type_aliases: Mapping[str, str] | None = None,
        placement_timeout_seconds: float = 60.0,
        log_dir: str | Path | None = None,
        extra_env: ExtraEnv | None = None,
        remote_dir: str = "/tmp/accelpool-ray",
        node_death_wait_seconds: float = 60.0,
        sandbox: sb.SandboxConfig | None = None,
    ) -> None:
        import inspect

        import ray

        catalog, clock = catalog_and_clock(catalog, clock)
        self._ray = ray
        self.catalog = catalog
        self.clock = clock
        self.namespace = namespace
        self.type_aliases = {k.lower(): v for k, v in (type_aliases or {}).items()}
        self.placement_timeout = float(placement_timeout_seconds)
        self.extra_env = extra_env
        self.remote_dir = remote_dir
        self.node_death_wait = float(node_death_wait_seconds)
        self.log_dir = Path(log_dir) if log_dir is not None else Path(remote_dir) / "control-plane-logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # every job's files on a node live under remote_dir: no job sees them (each binds its own work dir)
        cfg = sandbox if sandbox is not None else sb.SandboxConfig()
        self.sandbox = cfg.with_protect(remote_dir, self.log_dir)
        self._sandbox_dict = self.sandbox.to_dict()
        self._sandbox_src = inspect.getsource(sb)
        self._image_src = inspect.getsource(sb_image)
        self._paths_src = inspect.getsource(sb_paths)
        self._env_src = inspect.getsource(sb_env)
        self._owns_ray = False
        if not ray.is_initialized():
            reach(address)  # a wrong address fails in ms or seconds, not after Ray's 20 s and more
            ray.init(address=address, namespace=namespace, log_to_driver=False, include_dashboard=False)
            self._owns_ray = True
        self._runner: Any = ray.remote(_runner_class())
        self._jobs: dict[str, _RayJob] = {}
        self._ended: dict[str, _RayJob] = {}  # exited on their own, reported, not yet acked: actors kept
        self._events: list[ExecutorEvent] = []
        self._node_ids: dict[str, str] = {}  # accelpool node name -> Ray node id
        self._alive: set[str] = set()  # Ray node ids
        self._unrecognized: dict[str, str] = {}
        self._refresh_nodes()
        self._adopt()

    # -- the Executor port -----------------------------------------------------------------------------

    def start(self, launch: Launch) -> None:
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        job_id = launch.job.id
        ended = self._ended.pop(job_id, None)
        if ended is not None:  # its last run's end was never acked: its placement group still holds devices
            release(self._ray, ended, (RayError, ValueError))
        old = self._jobs.get(job_id)
        if old is not None:
            if old.stop_reason is None:
                raise ExecutorFault(f"job {job_id} is already running here")
            old.pending = launch  # being stopped (preempted and placed again, or moved): start it after
            return
        p = launch.placement
        t = self.catalog.get(p.accelerator)
        resource = t.ray_resource if t is not None else None
        if resource is None:
            self._events.append(
                self._ev(job_id, EventKind.LOST, f"lost: type {p.accelerator} has no Ray resource")
            )
            return
        if any(n not in self._node_ids for n in p.nodes):
            self._refresh_nodes()
        missing = [n for n in p.nodes if self._node_ids.get(n) not in self._alive]
        if missing:
            self._events.append(
                self._ev(
                    job_id,
                    EventKind.LOST,
                    f"node-lost: {', '.join(missing)} not in Ray",
                    cause=StopCause.NODE_LOST,
                )
            )
            return
        node_ids = [self._node_ids[n] for n in p.nodes]
        # a tag per start: a restarted control plane counts attempts from 1 again, and a killed actor's
        # name is released only some time after ray.kill()
        base = f"{PREFIX}{job_id}/a{launch.attempt}-{secrets.token_hex(4)}"
        pg = placement_group(
            [{resource: float(len(d))} for _, d in p.devices],
            strategy="STRICT_PACK" if len(p.devices) == 1 else "STRICT_SPREAD",
            name=f"{base}/pg",
            lifetime="detached",
            bundle_label_selector=[{NODE_ID_LABEL: nid} for nid in node_ids],
        )
        remote_base = f"{self.remote_dir}/{_safe(job_id)}-{base.rsplit('/', 1)[1]}"
        run = {
            "command": launch.run.command,
            "tenant": launch.job.tenant,
            "workdir": launch.run.workdir,
            "checkpoint_dir": launch.run.checkpoint_dir,
            "grace_seconds": float(launch.run.grace_seconds),
            "max_run_seconds": launch.job.max_run_seconds,
            "image": launch.run.image,
            "limits": dict(launch.run.limits),
            "grant": launch.job.grant,
            "name": f"{_safe(job_id)}-{base.rsplit('/', 1)[1]}",
        }
        ranks = []
        for rank, ((node, devs), nid) in enumerate(zip(p.devices, node_ids, strict=True)):
            info = {
                "job": job_id,
                "attempt": launch.attempt,
                "rank": rank,
                "ranks": len(p.devices),
                "node": node,
                "node_id": nid,
                "pg": f"{base}/pg",
                "grace": float(launch.run.grace_seconds),
                "resource": resource,
                "visible_env": visible_devices_env(self.catalog, p.accelerator),
                "indices": ",".join(str(d) for d in devs),
                "remote_dir": f"{remote_base}/r{rank}",
                "sandbox_src": self._sandbox_src,
                "wrapper_src": WRAPPER,
                "image_src": self._image_src,
                "paths_src": self._paths_src,
                "env_src": self._env_src,
            }
            res = (
                {"num_gpus": float(len(devs))}
                if resource == "GPU"
                else {"resources": {resource: float(len(devs))}}
            )
            actor = self._runner.options(
                name=f"{base}/r{rank}",
                namespace=self.namespace,
                lifetime="detached",
                num_cpus=0,
                max_restarts=0,
                scheduling_strategy=PlacementGroupSchedulingStrategy(pg, rank),
                **res,
            ).remote(info)
            env = self._env(launch, node, rank, len(p.devices))
            r = _Rank(actor, nid)
            r.start_ref = actor.start.remote(run, env, self._sandbox_dict)
            ranks.append(r)
        self._jobs[job_id] = _RayJob(
            job_id,
            launch.attempt,
            pg,
            ranks,
            float(launch.run.grace_seconds),
            deadline=time.time() + self.placement_timeout,
        )

    def stop(self, job_id: str, reason: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.stop_reason is not None:
            return
        job.stop_reason = reason
        if not job.started:
            self._finish(
                job,
                self._ev(
                    job_id,
                    EventKind.EXITED,
                    f"stopped: {reason} (before it started)",
                    -15,
                    StopCause.REQUESTED,
                ),
            )
            return
        job.force_at = time.time() + job.grace + 5.0
        for r in job.ranks:
            r.actor.terminate.remote(job.grace)

    def poll(self) -> list[ExecutorEvent]:
        self._refresh_nodes()
        now_wall = time.time()
        for job in list(self._jobs.values()):
            lost_nodes = [r.node_id for r in job.ranks if r.node_id not in self._alive]
            if lost_nodes:
                self._finish(
                    job, self._ev(job.job_id, EventKind.LOST, "node-lost", cause=StopCause.NODE_LOST)
                )
            elif not job.started:
                self._check_started(job, now_wall)
        self._collect_status()
        out, self._events = self._events, []
        return _in_time_order(out)  # each job's own events kept in the order they happened

    def ack(self, events: Sequence[ExecutorEvent]) -> None:
        """The store has these ends: remove the actors and placement groups of the jobs that exited on
        their own, which poll() kept so that a control plane killed before the store's record finds them
        again (adopted, they report the same exit: the job is not requeued and run again)."""
        done = {e.job for e in events if e.kind is EventKind.EXITED or e.kind is EventKind.LOST}
        for job_id in [j for j, job in self._ended.items() if j in done or job.extra.get("unreleased")]:
            job = self._ended.pop(job_id)
            try:
                release(self._ray, job, (RayError, ValueError))
            except Exception:  # Ray's control store not answering: kept, tried again at every ack
                log.exception("job %s: releasing its actors and placement group failed", job_id)
                job.extra["unreleased"] = True
                self._ended[job_id] = job

    def active(self) -> set[str]:
        return set(self._jobs)

    def logs(self, job_id: str) -> str:
        job = self._jobs.get(job_id)
        if job is not None:
            return self._fetch_logs(job)
        try:
            return (self.log_dir / f"{_safe(job_id)}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        """Forget the handles; the detached actors and placement groups keep running (adopted later)."""
        self._jobs.clear()
        self._ended.clear()
        if self._owns_ray:
            self._ray.shutdown()

    # -- internals --------------------------------------------------------------------------------------

    def _ev(
        self,
        job: str,
        kind: EventKind,
        reason: str = "",
        code: int | None = None,
        cause: StopCause | None = None,
    ) -> ExecutorEvent:
        return ExecutorEvent(job, kind, self.clock.now(), exit_code=code, reason=reason, cause=cause)

    def _env(self, launch: Launch, node: str, rank: int, n: int) -> dict[str, str]:
        # the actor adds the visible-devices variable (the ids Ray assigned) and the progress file
        return job_env(
            launch, node=node, rank=rank, num_nodes=n, catalog=self.catalog, extra_env=self.extra_env
        )

    def _check_started(self, job: _RayJob, now_wall: float) -> None:
        pending = [r for r in job.ranks if not r.started]
        refs = [r.start_ref for r in pending]
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        for r in pending:
            if r.start_ref in ready:
                try:
                    info = self._ray.get(r.start_ref)
                except RayError as exc:  # the actor died before it started the process
                    self._finish(
                        job,
                        self._ev(job.job_id, EventKind.LOST, f"lost: ray actor died ({type(exc).__name__})"),
                    )
                    return
                if info.get("error"):  # the sandbox refused it (a path, or no bwrap on that node)
                    self._finish(
                        job, self._ev(job.job_id, EventKind.EXITED, f"could not start: {info['error']}", 126)
                    )
                    return
                r.started = True
        if all(r.started for r in job.ranks):
            job.started = True
            ev = self._ev(job.job_id, EventKind.STARTED)
            job.extra["started_at"] = ev.time
            self._events.append(ev)
        elif now_wall >= job.deadline:
            self._finish(
                job,
                self._ev(
                    job.job_id,
                    EventKind.LOST,
                    f"placement-timeout: placement group not ready within {self.placement_timeout:g} s",
                ),
            )

    def _collect_status(self) -> None:
        for job in self._jobs.values():
            if job.started:
                for r in job.ranks:
                    if r.status_ref is None and r.code is None:
                        r.status_ref = r.actor.status.remote()
        refs = [r.status_ref for j in self._jobs.values() for r in j.ranks if r.status_ref is not None]
        if not refs:
            return
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=2.0)
        ready_set = set(ready)
        for job in list(self._jobs.values()):
            died = False
            for r in job.ranks:
                if r.status_ref is None or r.status_ref not in ready_set:
                    continue
                ref, r.status_ref = r.status_ref, None
                try:
                    st = self._ray.get(ref)
                except RayError as exc:
                    log.info("job %s: rank actor unreachable (%s)", job.job_id, type(exc).__name__)
                    died = True
                    continue
                r.steps = st["steps"] if st["steps"] is not None else r.steps
                r.killed = r.killed or st["killed"]
                if st["code"] is not None:
                    r.code = int(st["code"])
                    r.exit_time = st.get("exit_time")
                    r.reason = st.get("reason") or ""
            self._after_status(job, died)

    def _after_status(self, job: _RayJob, died: bool) -> None:
        steps = [r.steps for r in job.ranks if r.steps is not None]
        if steps and max(steps) != job.last_steps:
            job.last_steps = max(steps)
            self._events.append(
                ExecutorEvent(job.job_id, EventKind.PROGRESS, self.clock.now(), steps=job.last_steps)
            )
        if died:
            if any(r.node_id not in self._alive for r in job.ranks) or self._node_dead(job):
                self._finish(
                    job, self._ev(job.job_id, EventKind.LOST, "node-lost", cause=StopCause.NODE_LOST)
                )
            elif job.stop_reason is not None:
                self._finish(
                    job,
                    self._ev(
                        job.job_id, EventKind.EXITED, f"stopped: {job.stop_reason}", -9, StopCause.REQUESTED
                    ),
                )
            else:
                # Ray notices a dead node some seconds after its actors die: wait before calling it an
                # actor failure, so that a node loss is reported as such.
                since = job.extra.setdefault("died_at", time.time())
                if time.time() - since >= self.node_death_wait:
                    self._finish(job, self._ev(job.job_id, EventKind.LOST, "lost: ray actor died"))
            return
        codes = [r.code for r in job.ranks]
        if all(c is not None for c in codes):
            bad = next((c for c in codes if c != 0), 0)
            if job.stop_reason is not None:
                code = -9 if any(r.killed for r in job.ranks) else -15
                ev = self._ev(
                    job.job_id,
                    EventKind.EXITED,
                    f"stopped: {job.stop_reason} (exit code {bad})",
                    code,
                    StopCause.REQUESTED,
                )
            else:
                code = int(job.extra.get("failed_code", bad) or 0)
                reason = (
                    "" if code == 0 else (f"killed by signal {-code}" if code < 0 else f"exit code {code}")
                )
                limit = next((r.reason for r in job.ranks if sb.is_limit_reason(r.reason)), "")
                ev = self._ev(job.job_id, EventKind.EXITED, limit or reason, code)
            # An adopted job (the control plane was down when it ended) ends at its ranks' recorded exit
            # time, so it is billed until then, not until the restart. A job this executor saw start keeps
            # the time its end is seen (within a poll): its STARTED was also reported when seen, and a short
            # job's recorded exit can precede that (its charge was lost in the Ray end-to-end test).
            times = [r.exit_time for r in job.ranks if r.exit_time is not None]
            now = ev.time
            if "started_at" not in job.extra and len(times) == len(job.ranks) and abs(now - time.time()) < 5:
                ev = replace(ev, time=min(now, max(times)))
            self._finish(job, ev)
            return
        failed = [c for c in codes if c not in (None, 0)]
        if failed and job.stop_reason is None and "failed_code" not in job.extra:
            job.extra["failed_code"] = failed[0]  # one rank failed: stop the others, report the failure
            job.force_at = time.time() + job.grace + 5.0
            for r in job.ranks:
                if r.code is None:
                    r.actor.terminate.remote(job.grace)
        if job.force_at is not None and time.time() >= job.force_at:
            self._finish(
                job,
                self._ev(
                    job.job_id,
                    EventKind.EXITED,
                    f"stopped: {job.stop_reason} (forced)",
                    -9,
                    StopCause.REQUESTED,
                ),
            )

    def _node_dead(self, job: _RayJob) -> bool:
        self._refresh_nodes()
        return any(r.node_id not in self._alive for r in job.ranks)

    def _fetch_logs(self, job: _RayJob, timeout: float = 5.0) -> str:
        refs = [r.actor.logs.remote() for r in job.ranks]
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=timeout)
        parts = []
        for i, ref in enumerate(refs):
            text = ""
            if ref in ready:
                try:
                    text = self._ray.get(ref)
                except RayError as exc:
                    log.info("job %s: logs of rank %d unreadable (%s)", job.job_id, i, type(exc).__name__)
                    text = ""
            parts.append(
                text if len(refs) == 1 else "".join(f"[rank {i}] {ln}\n" for ln in text.splitlines())
            )
        return "".join(parts)

    def _finish(self, job: _RayJob, event: ExecutorEvent) -> None:
        """Report ``event``, keep the logs, kill the actors and remove the placement group: at once, but
        for a job that exited on its own (every rank has its code) with no next attempt waiting, whose actors
        stay until the end is acked (``ack``)."""
        alive = [r for r in job.ranks if r.node_id in self._alive and r.started]
        text = (
            self._fetch_logs(_RayJob(job.job_id, job.attempt, job.pg, alive, 0, 0), timeout=2.0)
            if alive
            else ""
        )
        path = self.log_dir / f"{_safe(job.job_id)}.log"
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"=== accelpool: attempt {job.attempt}: {event.kind.value} {event.reason} ===\n{text}")
        if event.kind is EventKind.EXITED and event.cause is None and job.pending is None:
            self._jobs.pop(job.job_id, None)
            self._ended[job.job_id] = job
            self._events.append(event)
            return
        release(self._ray, job, (RayError, ValueError))
        self._jobs.pop(job.job_id, None)
        pending, job.pending = job.pending, None
        if pending is None:
            self._events.append(event)
            return
        if event.kind == EventKind.EXITED and job.stop_reason is None:
            self._events.append(event)  # it really ended (failed) before its restart: report that
            return
        if event.kind == EventKind.LOST:  # not requeued by the store: its new attempt is recorded
            event = ExecutorEvent(
                job.job_id,
                EventKind.EXITED,
                event.time,
                exit_code=-9,
                reason=f"stopped: {job.stop_reason} ({event.reason})",
                cause=StopCause.REQUESTED,
            )
        self._events.append(event)
        try:
            self.start(pending)
        except Exception as exc:  # any failure to start the next attempt: logged, reported LOST (requeued)
            log.exception("restarting job %s failed", job.job_id)
            self._events.append(
                self._ev(job.job_id, EventKind.LOST, f"lost: start failed ({type(exc).__name__})")
            )

    def _adopt(self) -> None:
        """Find this namespace's named runner actors (detached, so they outlived the old control plane)."""
        from ray.util.placement_group import get_placement_group

        names = [
            a["name"]
            for a in self._ray.util.list_named_actors(all_namespaces=True)
            if a.get("namespace") == self.namespace and a["name"].startswith(PREFIX)
        ]
        groups: dict[tuple[str, int, str], list[tuple[int, Any]]] = {}
        for name in names:
            m = re.match(rf"^{re.escape(PREFIX)}(.*)/a(\d+)(-[0-9a-f]+)?/r(\d+)$", name)
            if m is None:
                continue
            try:
                actor = self._ray.get_actor(name, namespace=self.namespace)
            except ValueError:
                continue
            key = (m.group(1), int(m.group(2)), m.group(3) or "")
            groups.setdefault(key, []).append((int(m.group(4)), actor))
        for (job_id, attempt, _tag), found in sorted(groups.items()):
            found.sort(key=lambda x: x[0])
            try:
                infos = self._ray.get([a.info.remote() for _, a in found], timeout=10)
            except RayError as exc:
                log.warning("Ray job %s attempt %d: its actors do not answer (%s)", job_id, attempt, exc)
                infos = None
            if infos is None or job_id in self._jobs:
                continue
            try:
                pg = get_placement_group(infos[0]["pg"])
            except (RayError, ValueError) as exc:
                log.info("Ray job %s: no placement group (%s)", job_id, exc)
                pg = None
            ranks = [_Rank(a, info["node_id"]) for (_, a), info in zip(found, infos, strict=True)]
            job = _RayJob(
                job_id,
                attempt,
                pg,
                ranks,
                float(infos[0]["grace"]),
                deadline=time.time() + self.placement_timeout,
            )
            if len(found) != int(infos[0]["ranks"]) or any(info["pid"] is None for info in infos):
                # half-created when the old control plane went away: clean up; the store requeues it
                self._finish(job, self._ev(job_id, EventKind.LOST, "lost: incomplete after restart"))
                self._events.pop()
                continue
            for r in ranks:
                r.started = True
            job.started = True
            if any(info.get("kill_at") for info in infos):
                job.stop_reason = "stopped before restart"
                job.force_at = time.time() + job.grace + 5.0
            self._jobs[job_id] = job
            starts = [info.get("started_wall") for info in infos]
            if all(t is not None for t in starts) and abs(self.clock.now() - time.time()) < 5:
                # STARTED again, at the gang's start: a control plane killed before it recorded the first
                # one would otherwise never bill the run (the store ignores it for a run already started)
                self._events.append(ExecutorEvent(job_id, EventKind.STARTED, max(float(t) for t in starts)))
            log.info("adopted Ray job %s (attempt %d, %d ranks)", job_id, attempt, len(ranks))

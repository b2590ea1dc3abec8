"""`accelpool up`: the API, the scheduling rounds and the executor.

By default ``accelpool up`` is a supervisor (``service.supervisor``) running two processes that share only
the database: the API (uvicorn serving ``create_app``, see ``startup.api_app``) and the scheduler (``Service``
with ``api=False``: the reconciler loop and the executor). ``--single-process`` runs both in one process
(the scheduler as a thread), as a debugging aid and for tests.

    scheduler loop:   take the scheduler lock and only then build the executors (Service.__init__:
                      building one adopts its work), sync nodes, recover() once, then every round: stop
                      work of jobs the store says are over (cancelled through the API), sync the pool's
                      nodes from the executor (when it is a NodeSource, e.g. Ray), Reconciler.step()
                      (observe, meter, decide, record, act), audit (store vs executor). Between rounds it
                      polls every ``poll_seconds``: cancelled jobs are stopped at once, log requests are
                      answered, and a new submission (the jobs table's sequence grew) brings the next
                      round forward to WAKE_INTERVAL after the last one.

Executors: ``local`` (subprocesses; state under <data-dir>/executor), ``ray`` (a Ray cluster at
``ray_address``; nodes and devices discovered from it), ``fake`` (no processes; tests).

Everything accepted is committed before the API answers 201, and the executor keeps its own state (the
local executor under the data directory, the Ray executor in detached named actors), so after ``kill -9``
a restart finds every job and adopts still-running work (the reconciler's recover() requeues any the
executor lost and stops any the store does not know). While running, the audit requeues (reason
``lost: not running in the executor``) a job the store calls running that the executor has not had for two
rounds in a row, so no inconsistency can leave a job "running" forever. One scheduler at a time per data
directory: it holds an exclusive lock on ``<data-dir>/scheduler.lock`` while it runs, taken before it builds
any executor (building one adopts the work it finds), so a scheduler that waited for the lock adopts the work
as the previous one left it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import threading
import time
from typing import IO, Any

from fastapi import FastAPI
from prometheus_client import Gauge

from accelpool.api.app import WAKE_INTERVAL, Hooks, Metrics, create_app
from accelpool.api.auth import JobTokens
from accelpool.api.limits import Limits
from accelpool.catalog import bundled_catalog
from accelpool.core.round_config import RoundConfig
from accelpool.core.types import Node
from accelpool.executors.sites import SiteExecutors
from accelpool.ports import EventKind, Executor, ExecutorEvent, Launch, NodeSource, StopCause
from accelpool.runtime.clock import SystemClock
from accelpool.runtime.reconciler import Reconciler, RoundReport
from accelpool.service import channel
from accelpool.service.options import (
    DEFAULT_PORT,
    Options,
    default_data_dir,
    get_policy,
    make_data_dir,
    sandbox_config,
)
from accelpool.service.sites import ExecutorFactory, SiteWiring
from accelpool.service.startup import DEMO_EXAMPLES_PENDING, api_app, bootstrap, wait_healthy
from accelpool.storage.sql import SqlStore

# Options and the start-up helpers moved to service/options.py and service/startup.py; importers of
# ``accelpool.service.server`` still find them here.
__all__ = [
    "DEFAULT_PORT",
    "DEMO_EXAMPLES_PENDING",
    "Options",
    "Service",
    "api_app",
    "bootstrap",
    "default_data_dir",
    "get_policy",
    "sandbox_config",
    "wait_healthy",
]

log = logging.getLogger("accelpool.service")
_OVER = ("cancelled", "succeeded", "failed")


class Service:
    """The scheduler (reconciler loop + executor) and, with ``api=True``, the API app in the same process
    (``serve()``: ``--single-process``). The split control plane's scheduler process runs it with
    ``api=False`` (``run_scheduler()``).

    Without ``executor`` it builds its own (and the registered sites') and first takes ``scheduler.lock``,
    waiting while another scheduler holds it; the lock is held until ``stop()``. An ``executor`` passed in
    was built, and has adopted its work, before the lock (tests): ``start_loop`` takes the lock then."""

    def __init__(
        self,
        opts: Options,
        executor: Executor | None = None,
        clock: SystemClock | None = None,
        *,
        api: bool = True,
    ) -> None:
        self.opts = opts
        make_data_dir(opts.data_dir)
        self.catalog = bundled_catalog()
        self.store = SqlStore(opts.url, self.catalog, upgrade=opts.upgrade)
        self.clock = clock or SystemClock()
        self.sites: SiteWiring | None = None  # the registered sites' executors (service/sites.py)
        self._lock_file: IO[str] | None = None
        if executor is None:
            # Building an executor adopts the work it finds (local: the job state dirs; Ray: the named
            # actors; Slurm: its job records), so it is built only once this process holds the lock: a
            # scheduler that waited for another one's lock sees the work as that one left it.
            self._take_lock()
            try:
                executor = self._make_executor()
            except BaseException:
                self._release_lock()
                raise
        self.executor: Executor = executor
        self.metrics = Metrics()
        self._stops: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._halt = threading.Event()
        self._kick = threading.Event()  # run a round now (in one process: a submission, a node change)
        self.rounds = 0
        self.reconciler = Reconciler(
            self.store,
            self.executor,
            self.clock,
            get_policy(opts.policy),
            round_seconds=opts.round_seconds,
            on_round=self._on_round,
            checkpoint_root=None if opts.checkpoint_root is None else str(opts.checkpoint_root),
            config=RoundConfig(
                lease_seconds=opts.lease_seconds,
                min_run_seconds=opts.min_run_seconds,
                restart_seconds=opts.restart_seconds,
            ),
        )
        self._next_due: float | None = None  # time.monotonic() when the next round is due
        hooks = Hooks(
            wake=self._kick_round,
            stop_job=self._request_stop,
            logs=self._logs,
            now=self.clock.now,
            next_round=self._next_round,
        )
        self.app: FastAPI | None = (
            create_app(
                self.store,
                hooks=hooks,
                catalog=self.catalog,
                metrics=self.metrics,
                limits=Limits(max_active_jobs=opts.max_active_jobs),
            )
            if api
            else None
        )
        if self.app is not None:
            self.app.state.job_tokens = JobTokens.for_data_dir(opts.data_dir)
        self._thread: threading.Thread | None = None
        self.messages: list[str] = []
        self.unrecognized: dict[str, str] = {}  # NodeSource nodes left out of the pool: name -> reason
        self._missing: set[str] = set()  # running in the store, not in the executor, at the last audit
        self._stray: set[str] = set()  # running in the executor, not in the store, at the last audit
        self._demo_tried = False  # example jobs of a demo on a NodeSource: tried since start
        self._unrecognized_gauge = Gauge(
            "accelpool_unrecognized_nodes",
            "Nodes with accelerators of a type accelpool does not know",
            registry=self.metrics.registry,
        )

    def _make_executor(self) -> Executor:
        """The service's own executor (``--executor``: the ``default`` site), and the wiring that adds the
        registered sites' executors (service/sites.py)."""
        url = f"http://{self.opts.host}:{self.opts.port}"
        job_tokens = JobTokens.for_data_dir(self.opts.data_dir)

        def extra(launch: Launch) -> dict[str, str]:
            # The attempt as the store counts it (the reconciler's own count restarts at 1 with the
            # scheduler), and a token that can only read this job and report its progress, valid while this
            # attempt runs.
            v = self.store.get_job(launch.job.id)
            attempt = v.attempts if v is not None and v.attempts > 0 else launch.attempt
            return {
                "ACCELPOOL_URL": url,
                "ACCELPOOL_ATTEMPT": str(attempt),
                "ACCELPOOL_TOKEN": job_tokens.issue(launch.job.id, attempt),
            }

        opts = self.opts
        factory = ExecutorFactory(
            opts.data_dir,
            catalog=self.catalog,
            clock=self.clock,
            extra_env=extra,
            sandbox=lambda: sandbox_config(opts),
            instance=opts.instance,
        )
        kind = opts.executor
        if kind not in ("local", "ray", "slurm", "fake"):
            raise ValueError(f"unknown executor '{kind}' (local, ray, slurm or fake)")
        state = {"local": "executor", "slurm": "slurm", "ray": "ray-logs", "fake": "fake"}[kind]
        connection = {
            "local": {},
            "fake": {},
            "ray": {
                "namespace": opts.ray_namespace,
                **({"address": opts.ray_address} if opts.ray_address else {}),
            },
            "slurm": {
                k: v for k, v in (("slurm_conf", opts.slurm_conf), ("partition", opts.slurm_partition)) if v
            },
        }[kind]
        default = factory(kind, opts.data_dir / state, connection)
        self.sites = SiteWiring(
            self.store,
            self.clock,
            default,
            factory.for_site,
            down_after_seconds=opts.site_down_seconds,
        )
        return self.sites.refresh() or default

    def refresh_sites(self) -> None:
        """Follow the sites table (before every round): a registered site is driven from the next round."""
        if self.sites is None:
            return
        ex = self.sites.refresh()
        if ex is not None and ex is not self.executor:
            log.info("scheduler: driving %d site(s) through the site executors", len(ex.executors))
            self.executor = ex
            self.reconciler.executor = ex
            if isinstance(ex, SiteExecutors):
                ex.settle({s.job.id: s.placement.site for s in self.store.running() if s.placement})

    # -- the pool's nodes from the executor (NodeSource) ----------------------------------------------

    def sync_nodes(self) -> None:
        """Make the store's node table follow the executor's NodeSource (if it is one): nodes that appear
        join (or come back up), changed ones are updated, nodes that are gone are marked down (their
        devices leave the pool until they return; jobs on them come back from the executor as LOST
        ``node-lost`` and are requeued). Nodes of unknown accelerator types are reported, never added."""
        if isinstance(self.executor, SiteExecutors):
            # the nodes of the sites that discover theirs (Slurm, Ray), each site that answers now
            by_site = self.executor.nodes_by_site()
            found = {n.name: n for nodes in by_site.values() for n in nodes}
            known = {n.name: n for n in self.store.list_nodes() if n.site in by_site}
        elif isinstance(self.executor, NodeSource):
            found = {n.name: n for n in self.executor.nodes()}
            known = {n.name: n for n in self.store.list_nodes()}
        else:
            return
        changed = [n for name, n in found.items() if name not in known or _node_differs(n, known[name])]
        if changed:
            self.store.add_nodes(changed)
        for name, n in found.items():
            if name not in known:
                log.info("node %s joined the pool: %d x %s", name, n.devices, n.accelerator)
            elif known[name].down:
                self.store.set_node_down(name, False)
                log.info("node %s is back: %d x %s", name, n.devices, n.accelerator)
        for name, v in known.items():
            if name not in found and not v.down:
                self.store.set_node_down(name, True, cause="lost")
                log.warning("node %s left the pool (not alive in the executor); its devices are down", name)
        unknown = dict(getattr(self.executor, "unrecognized", dict)())
        if unknown != self.unrecognized:
            for name, why in sorted(unknown.items()):
                if self.unrecognized.get(name) != why:
                    log.warning(
                        "node %s is not in the pool: %s (set a type alias or a node label)", name, why
                    )
            self.unrecognized = unknown
            self._unrecognized_gauge.set(len(unknown))
            path = self.opts.data_dir / "unrecognized-nodes.json"
            path.write_text(json.dumps(unknown, indent=2, sort_keys=True) + "\n")
        if changed or not self._demo_tried:
            self._demo_tried = True
            self._submit_demo_examples()

    def _submit_demo_examples(self) -> None:
        """With --demo on an executor that finds its nodes (Ray): submit the example jobs the found pool
        can run, once (the bootstrap left a marker in the data dir)."""
        marker = self.opts.data_dir / DEMO_EXAMPLES_PENDING
        if not self.opts.demo or not marker.exists():
            return
        from accelpool.service import demo

        skipped: list[str] = []
        ids = demo.example_jobs(self.store, skipped=skipped)
        for why in skipped:
            log.info("demo: example left out: %s", why)
        if ids:
            log.info("demo: %d example jobs submitted for tenant '%s'", len(ids), demo.TENANTS[0])
            marker.unlink(missing_ok=True)

    def _logs(self, job_id: str) -> str:
        return self.executor.logs(job_id)

    def audit(self) -> list[str]:
        """Requeue jobs the store says run but the executor has not had at two audits in a row (a round
        apart); returns their ids. Stop work the executor runs for jobs the store does not call running,
        also at two audits in a row (a round that failed between its record and its act left a preempted
        job running, unbilled: a review). recover() does both once at start-up, without waiting."""
        active = self.executor.active()
        running = {s.job.id for s in self.store.running()}
        unrecorded = self.reconciler.unrecorded_jobs
        stray = active - running - unrecorded
        for job_id in sorted(stray & self._stray):  # a stop already under way is not started again
            log.warning("stopping job %s: running in the executor but not in the store", job_id)
            try:
                self.executor.stop(job_id, "not running in the store")
            except Exception:
                log.exception("job %s: stop failed", job_id)
        self._stray = stray
        # a job whose end the executor reported but a failed round did not record is not missing
        missing = running - active - unrecorded
        lost = sorted(missing & self._missing)
        self._missing = missing - set(lost)
        if lost:
            now = self.clock.now()
            log.warning("requeueing %d job(s) the executor does not run: %s", len(lost), ", ".join(lost))
            why = "lost: not running in the executor"
            self.store.record_events(
                [ExecutorEvent(j, EventKind.LOST, now, reason=why, cause=StopCause.LOST) for j in lost]
            )
        return lost

    # -- start-up -------------------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """First start: an admin token (written 0600 to the data dir); with --demo the demo world."""
        self.messages += bootstrap(self.store, self.opts, isinstance(self.executor, NodeSource))
        self.sync_nodes()

    def start_loop(self) -> None:
        self._take_lock()
        if isinstance(self.executor, SiteExecutors):  # a run left at another site than the store's: stop it
            self.executor.settle({s.job.id: s.placement.site for s in self.store.running() if s.placement})
        self.sync_nodes()
        lost = self.reconciler.recover()
        if lost:
            msg = f"recovered: requeued {len(lost)} job(s) that were not running any more"
            self.messages.append(msg)
            log.info(msg)
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def _take_lock(self) -> None:
        """One scheduler per data directory: a second one (e.g. the survivor of a killed supervisor) would
        start jobs the first one also starts. Waits until the holder has exited. Taken before the Service
        builds its executor (``__init__``); with an executor passed in, by ``start_loop``."""
        if self._lock_file is not None:
            return
        f = open(self.opts.data_dir / "scheduler.lock", "a+")  # noqa: SIM115 - held while the loop runs
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("another scheduler holds %s; waiting for it to exit", f.name)
            fcntl.flock(f, fcntl.LOCK_EX)
        self._lock_file = f

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # releases the scheduler lock
            self._lock_file = None

    # -- the loop -------------------------------------------------------------------------------------

    def _loop(self) -> None:
        last_seq = self._last_seq()
        while not self._halt.is_set():
            start = self._next_due = time.monotonic()  # a round runs now (late while it lasts)
            self._kick.clear()
            seq = self._last_seq()
            try:
                self._drain_stops()
                self.stop_finished()
                self.refresh_sites()
                self.sync_nodes()
                t0 = time.perf_counter()
                self.reconciler.step()
                took = time.perf_counter() - t0
                self.metrics.round_seconds.observe(took)
                self.audit()
                self._status(took)
            except Exception:  # a failed round must not end the service; the next round retries
                log.exception("scheduling round failed")
            last_seq = self._between_rounds(start, max(last_seq, seq))

    def _between_rounds(self, start: float, last_seq: int) -> int:
        """Poll until the next round is due: stop cancelled jobs, answer log requests; a submission brings
        the round forward to WAKE_INTERVAL after the last one's start. Returns the newest job seq seen."""
        due = self._next_due = start + self.opts.round_seconds
        while not self._halt.is_set():
            t = time.monotonic()
            if t >= due or self._kick.is_set():
                break
            self._kick.wait(max(0.0, min(due - t, self.opts.poll_seconds)))
            if self._halt.is_set() or self._kick.is_set():
                break
            try:
                self._drain_stops()
                self.stop_finished()
                channel.serve_log_requests(self.opts.data_dir, self.executor.logs)
                seq = self.store.last_job_seq()
            except Exception:
                log.exception("scheduler poll failed")
                continue
            if seq > last_seq:
                due = min(due, start + WAKE_INTERVAL)
        return last_seq

    def _last_seq(self) -> int:
        try:
            return self.store.last_job_seq()
        except Exception:
            log.exception("reading the newest job failed")
            return 0

    def stop_finished(self) -> list[str]:
        """Stop work the executor still runs for jobs the store says are over (cancelled through the API,
        in this process or in the API process); returns their ids. Stopping twice is harmless."""
        active = self.executor.active()
        if not active:
            return []
        states = self.store.job_states(active)
        over = sorted(j for j, st in states.items() if st in _OVER)
        for job in over:
            why = "cancelled" if states[job] == "cancelled" else f"{states[job]} in the store"
            self.executor.stop(job, why)
        return over

    def _drain_stops(self) -> None:
        while True:
            try:
                job = self._stops.get_nowait()
            except queue.Empty:
                return
            if job in self.executor.active():
                self.executor.stop(job, "cancelled")

    def _request_stop(self, job_id: str) -> None:
        self._stops.put(job_id)
        self._kick.set()

    def _kick_round(self) -> None:
        self._kick.set()

    def _next_round(self) -> float | None:
        """Seconds until the next round is due (0 while one runs or a submission has woken the loop)."""
        if self._kick.is_set():
            return 0.0
        due = self._next_due
        return None if due is None else due - time.monotonic()

    def _on_round(self, report: RoundReport) -> None:
        self.rounds += 1
        self.metrics.rounds.inc()

    def _status(self, seconds: float) -> None:
        channel.write_status(
            self.opts.data_dir,
            {
                "pid": os.getpid(),
                "rounds": self.rounds,
                "last_round_seconds": round(seconds, 6),
                "last_round_at": time.time(),
                "unrecognized_nodes": len(self.unrecognized),
            },
        )

    def stop(self) -> None:
        self._halt.set()
        self._kick.set()
        self.clock.wake()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.executor.close()
        self.store.close()
        self._release_lock()

    def serve(self) -> None:
        """``--single-process``: run until interrupted, the loop thread plus uvicorn in this thread."""
        import uvicorn

        assert self.app is not None
        self.start_loop()
        config = uvicorn.Config(
            self.app, host=self.opts.host, port=self.opts.port, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        try:
            server.run()
        finally:
            self.stop()

    def run_scheduler(self) -> None:
        """The scheduler process: the loop until SIGTERM/SIGINT, then a clean stop (running jobs keep
        running; the next scheduler adopts them)."""
        import signal

        def halt(signum: int, frame: Any) -> None:
            log.info("scheduler: signal %d, stopping", signum)
            self._halt.set()
            self._kick.set()

        signal.signal(signal.SIGTERM, halt)
        signal.signal(signal.SIGINT, halt)
        self.start_loop()
        while not self._halt.is_set():
            self._halt.wait(1.0)
        self.stop()


def _node_differs(a: Node, b: Any) -> bool:
    return (a.accelerator, a.devices, a.zone, a.site, [list(kv) for kv in a.labels]) != (
        b.accelerator,
        b.devices,
        b.zone,
        getattr(b, "site", a.site),
        [list(kv) for kv in b.labels],
    )

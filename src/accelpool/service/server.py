"""`accelpool up`: one process serving the API, running the scheduling rounds and driving an executor.

    thread "reconciler":  sync nodes, recover() once, then every round (or at once when woken by a
                          submission): stop cancelled jobs' processes, sync the pool's nodes from the
                          executor (when it is a NodeSource, e.g. Ray), Reconciler.step() (observe, meter,
                          decide, record, act), audit (store vs executor), sleep until the next round.
    main thread:          uvicorn serving create_app(store).

Executors: ``local`` (subprocesses; state under <data-dir>/executor), ``ray`` (a Ray cluster at
``ray_address``; nodes and devices discovered from it), ``fake`` (no processes; tests).

Everything accepted is committed before the API answers 201, and the executor keeps its own state (the
local executor under the data directory, the Ray executor in detached named actors), so after ``kill -9``
a restart finds every job and adopts still-running work (the reconciler's recover() requeues any the
executor lost and stops any the store does not know). While running, the audit requeues (reason
``lost: not running in the executor``) a job the store calls running that the executor has not had for two
rounds in a row, so no inconsistency can leave a job "running" forever.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import Gauge

from accelpool.api.app import Hooks, Metrics, create_app
from accelpool.catalog import bundled_catalog
from accelpool.core.allocation import Policy
from accelpool.core.types import Node
from accelpool.ports import EventKind, Executor, ExecutorEvent, Launch, NodeSource
from accelpool.runtime.clock import SystemClock
from accelpool.runtime.reconciler import Reconciler, RoundReport
from accelpool.storage.engine import sqlite_url
from accelpool.storage.sql import SqlStore

log = logging.getLogger("accelpool.service")
DEFAULT_PORT = 8470


def default_data_dir() -> Path:
    return Path(os.environ.get("ACCELPOOL_HOME", Path.home() / ".accelpool"))


def get_policy(name: str) -> Policy:
    """A policy from the registry (``accelpool.core.policies.get_policy``), with a direct fallback."""
    from accelpool.core import policies

    getter = getattr(policies, "get_policy", None)
    if getter is not None:
        return getter(name)  # type: ignore[no-any-return]
    if name in ("max-min-fairness", "max_min_fairness"):
        from accelpool.core.policies.max_min_fairness import max_min_fairness

        return max_min_fairness
    raise ValueError(f"unknown policy '{name}'")


@dataclass
class Options:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    demo: bool = False
    round_seconds: float = 3.0
    policy: str = "max-min-fairness"
    executor: str = "local"  # local | ray | fake
    ray_address: str | None = None  # ray: "auto", "HOST:6379", "ray://HOST:10001"; None: ray.init() default
    ray_namespace: str = "accelpool"  # ray: must stay the same across restarts to adopt running work
    upgrade: bool = True

    @property
    def url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir / "accelpool.sqlite")


class Service:
    def __init__(
        self, opts: Options, executor: Executor | None = None, clock: SystemClock | None = None
    ) -> None:
        self.opts = opts
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = bundled_catalog()
        self.store = SqlStore(opts.url, self.catalog, upgrade=opts.upgrade)
        self.clock = clock or SystemClock()
        self.executor = executor or self._make_executor()
        self.metrics = Metrics()
        self._stops: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._halt = threading.Event()
        self.reconciler = Reconciler(
            self.store,
            self.executor,
            self.clock,
            get_policy(opts.policy),
            round_seconds=opts.round_seconds,
            on_round=self._on_round,
        )
        hooks = Hooks(
            wake=self.clock.wake, stop_job=self._request_stop, logs=self.executor.logs, now=self.clock.now
        )
        self.app = create_app(self.store, hooks=hooks, catalog=self.catalog, metrics=self.metrics)
        self._thread: threading.Thread | None = None
        self.messages: list[str] = []
        self.unrecognized: dict[str, str] = {}  # NodeSource nodes left out of the pool: name -> reason
        self._missing: set[str] = set()  # running in the store, not in the executor, at the last audit
        self._unrecognized_gauge = Gauge(
            "accelpool_unrecognized_nodes",
            "Nodes with accelerators of a type accelpool does not know",
            registry=self.metrics.registry,
        )

    def _make_executor(self) -> Executor:
        if self.opts.executor == "fake":
            from accelpool.executors.fake import FakeExecutor

            return FakeExecutor(self.clock)
        url = f"http://{self.opts.host}:{self.opts.port}"

        def extra(launch: Launch) -> dict[str, str]:
            return {"ACCELPOOL_URL": url}

        if self.opts.executor == "ray":
            from accelpool.executors.ray import RayExecutor

            return RayExecutor(
                address=self.opts.ray_address,
                namespace=self.opts.ray_namespace,
                catalog=self.catalog,
                clock=self.clock,
                log_dir=self.opts.data_dir / "ray-logs",
                extra_env=extra,
            )
        if self.opts.executor != "local":
            raise ValueError(f"unknown executor '{self.opts.executor}' (local, ray or fake)")
        from accelpool.executors.local import LocalExecutor

        return LocalExecutor(
            self.opts.data_dir / "executor", catalog=self.catalog, clock=self.clock, extra_env=extra
        )

    # -- the pool's nodes from the executor (NodeSource) ----------------------------------------------

    def sync_nodes(self) -> None:
        """Make the store's node table follow the executor's NodeSource (if it is one): nodes that appear
        join (or come back up), changed ones are updated, nodes that are gone are marked down (their
        devices leave the pool until they return; jobs on them come back from the executor as LOST
        ``node-lost`` and are requeued). Nodes of unknown accelerator types are reported, never added."""
        if not isinstance(self.executor, NodeSource):
            return
        found = {n.name: n for n in self.executor.nodes()}
        known = {n.name: n for n in self.store.list_nodes()}
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
                self.store.set_node_down(name, True)
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

    def audit(self) -> list[str]:
        """Requeue jobs the store says run but the executor has not had at two audits in a row (a round
        apart); returns their ids. recover() does the same once at start-up, without waiting."""
        active = self.executor.active()
        missing = {s.job.id for s in self.store.running()} - active
        lost = sorted(missing & self._missing)
        self._missing = missing - set(lost)
        if lost:
            now = self.clock.now()
            log.warning("requeueing %d job(s) the executor does not run: %s", len(lost), ", ".join(lost))
            self.store.record_charges(self.reconciler._meter_running(now, only=set(lost)))
            self.store.record_events(
                [
                    ExecutorEvent(j, EventKind.LOST, now, reason="lost: not running in the executor")
                    for j in lost
                ]
            )
        return lost

    # -- start-up -------------------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """First start: an admin token (written 0600 to the data dir); with --demo the demo world."""
        d = self.opts.data_dir
        token_file = d / "admin-token"
        if not self.store.has_admin_token() or not token_file.exists():
            _, secret = self.store.create_token("admin", name="first admin")
            _write_secret(token_file, secret)
            self.messages.append(f"admin token created: {token_file} (keep it secret; shown once)")
        client: dict[str, Any] = {
            "url": f"http://{self.opts.host}:{self.opts.port}",
            "token_file": str(token_file),
        }
        if self.opts.demo:
            from accelpool.service import demo

            if isinstance(self.executor, NodeSource):  # the pool is what the executor finds (Ray)
                secrets = demo.seed(self.store, nodes=None, price_types=sorted(self.catalog))
            else:
                secrets = demo.seed(self.store)
            for tenant, secret in secrets.items():
                _write_secret(d / f"token-{tenant}", secret)
            if secrets:
                ids = demo.example_jobs(self.store)
                pool = (
                    "nodes from the executor"
                    if isinstance(self.executor, NodeSource)
                    else f"pool of {len(demo.DEMO_NODES)} nodes"
                )
                self.messages.append(
                    f"demo: {pool}, program '{demo.PROGRAM}', "
                    f"{len(ids)} example jobs submitted for tenant '{demo.TENANTS[0]}'"
                )
            client["tenant"] = demo.TENANTS[0]
        (d / "client.json").write_text(json.dumps(client, indent=2))
        self.sync_nodes()

    def start_loop(self) -> None:
        self.sync_nodes()
        lost = self.reconciler.recover()
        if lost:
            self.messages.append(f"recovered: requeued {len(lost)} job(s) that were not running any more")
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._halt.is_set():
            start = self.clock.now()
            try:
                self._drain_stops()
                self.sync_nodes()
                self.reconciler.step()
                self.audit()
            except Exception:  # a failed round must not end the service; the next round retries
                log.exception("scheduling round failed")
            if self._halt.is_set():
                break
            self.clock.sleep_until(start + self.opts.round_seconds)

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
        self.clock.wake()

    def _on_round(self, report: RoundReport) -> None:
        self.metrics.rounds.inc()

    def stop(self) -> None:
        self._halt.set()
        self.clock.wake()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.executor.close()
        self.store.close()

    def serve(self) -> None:
        """Run until interrupted: the loop thread plus uvicorn in this thread."""
        import uvicorn

        self.start_loop()
        config = uvicorn.Config(
            self.app, host=self.opts.host, port=self.opts.port, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        try:
            server.run()
        finally:
            self.stop()


def _node_differs(a: Node, b: Any) -> bool:
    return (a.accelerator, a.devices, a.zone, [list(kv) for kv in a.labels]) != (
        b.accelerator,
        b.devices,
        b.zone,
        [list(kv) for kv in b.labels],
    )


def _write_secret(path: Path, secret: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)


def wait_healthy(url: str, timeout: float = 30.0) -> bool:
    import httpx

    end = time.time() + timeout
    while time.time() < end:
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False

"""`accelpool up`: one process serving the API, running the scheduling rounds and driving an executor.

    thread "reconciler":  recover() once, then every round (or at once when woken by a submission):
                          stop cancelled jobs' processes, Reconciler.step() (observe, meter, decide,
                          record, act), sleep until the next round.
    main thread:          uvicorn serving create_app(store).

Everything accepted is committed before the API answers 201, and the executor keeps its own state under
the data directory, so after ``kill -9`` a restart finds every job and adopts still-running processes
(the reconciler's recover() requeues any the executor lost and stops any the store does not know).
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

from accelpool.api.app import Hooks, Metrics, create_app
from accelpool.catalog import bundled_catalog
from accelpool.core.allocation import Policy
from accelpool.ports import Executor, Launch
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
    executor: str = "local"  # local | fake
    upgrade: bool = True

    @property
    def url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir / "accelpool.sqlite")


class Service:
    def __init__(self, opts: Options, executor: Executor | None = None, clock: SystemClock | None = None) -> None:
        self.opts = opts
        opts.data_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = bundled_catalog()
        self.store = SqlStore(opts.url, self.catalog, upgrade=opts.upgrade)
        self.clock = clock or SystemClock()
        self.executor = executor or self._make_executor()
        self.metrics = Metrics()
        self._stops: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._halt = threading.Event()
        self.reconciler = Reconciler(self.store, self.executor, self.clock, get_policy(opts.policy),
                                     round_seconds=opts.round_seconds, on_round=self._on_round)
        hooks = Hooks(wake=self.clock.wake, stop_job=self._request_stop, logs=self.executor.logs, now=self.clock.now)
        self.app = create_app(self.store, hooks=hooks, catalog=self.catalog, metrics=self.metrics)
        self._thread: threading.Thread | None = None
        self.messages: list[str] = []

    def _make_executor(self) -> Executor:
        if self.opts.executor == "fake":
            from accelpool.executors.fake import FakeExecutor

            return FakeExecutor(self.clock)
        from accelpool.executors.local import LocalExecutor

        url = f"http://{self.opts.host}:{self.opts.port}"

        def extra(launch: Launch) -> dict[str, str]:
            return {"ACCELPOOL_URL": url}

        return LocalExecutor(self.opts.data_dir / "executor", catalog=self.catalog, clock=self.clock,
                             extra_env=extra)

    # -- start-up -------------------------------------------------------------------------------------

    def bootstrap(self) -> None:
        """First start: an admin token (written 0600 to the data dir); with --demo the demo world."""
        d = self.opts.data_dir
        token_file = d / "admin-token"
        if not self.store.has_admin_token() or not token_file.exists():
            _, secret = self.store.create_token("admin", name="first admin")
            _write_secret(token_file, secret)
            self.messages.append(f"admin token created: {token_file} (keep it secret; shown once)")
        client: dict[str, Any] = {"url": f"http://{self.opts.host}:{self.opts.port}", "token_file": str(token_file)}
        if self.opts.demo:
            from accelpool.service import demo

            secrets = demo.seed(self.store)
            for tenant, secret in secrets.items():
                _write_secret(d / f"token-{tenant}", secret)
            if secrets:
                ids = demo.example_jobs(self.store)
                self.messages.append(f"demo: pool of {len(demo.DEMO_NODES)} nodes, program '{demo.PROGRAM}', "
                                     f"{len(ids)} example jobs submitted for tenant '{demo.TENANTS[0]}'")
            client["tenant"] = demo.TENANTS[0]
        (d / "client.json").write_text(json.dumps(client, indent=2))

    def start_loop(self) -> None:
        lost = self.reconciler.recover()
        if lost:
            self.messages.append(f"recovered: requeued {len(lost)} job(s) that were not running any more")
        self._thread = threading.Thread(target=self._loop, name="reconciler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._halt.is_set():
            start = self.clock.now()
            self._drain_stops()
            try:
                self.reconciler.step()
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
        config = uvicorn.Config(self.app, host=self.opts.host, port=self.opts.port, log_level="warning",
                                access_log=False)
        server = uvicorn.Server(config)
        try:
            server.run()
        finally:
            self.stop()


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

"""Two schedulers on one data dir (local executor, SQLite): the second waits for ``scheduler.lock`` and
adopts the work the first leaves running as it is when the lock is taken, not as it was when the second
was constructed. Before, B built its executor (which adopted the job state dirs it found) before it took
the lock: a job A started meanwhile was missing from B's executor, so B's recover() requeued it ("lost: not
running after restart") and started it again on the same device while A's process ran on, untracked and
unbilled."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from accelpool.catalog import bundled_catalog
from accelpool.core.types import Site
from accelpool.executors.sites import SiteExecutors
from accelpool.service.options import Options
from accelpool.service.server import Service
from accelpool.service.sites import ExecutorFactory
from accelpool.storage.sql import SqlStore

PRICE = 3_600_000  # KRW per device-hour: 1,000 KRW per device-second


class _Waiting(logging.Handler):
    """Set once a scheduler logs that it waits for the lock."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "another scheduler holds" in record.getMessage():
            self.seen.set()


@pytest.fixture
def waiting() -> Iterator[_Waiting]:
    handler = _Waiting()
    logger = logging.getLogger("accelpool.service")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _until(what: str, check: Callable[[], object], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)


def _pids(data: Path, job: str) -> set[int]:
    """The pids of the job's ranks in its state dir (the one running attempt's, or the last ended one's)."""
    out: set[int] = set()
    for f in (data / "executor" / "jobs" / job).glob("state*.json"):
        out |= {int(r["pid"]) for r in json.loads(f.read_text())["ranks"]}
    return out


def _setup(a: Service, admin: dict[str, str]) -> str:
    """A tenant with a grant, one h100 node; a job that runs 10 minutes. Returns its id."""
    assert a.app is not None
    with TestClient(a.app, headers=admin) as c:
        for path, body in (
            ("/api/v1/tenants", {"id": "t"}),
            ("/api/v1/programs", {"id": "p", "budget_krw": 10**12}),
            ("/api/v1/grants", {"program": "p", "tenant": "t", "amount_krw": 10**10}),
            ("/api/v1/nodes", {"name": "n0", "accelerator": "h100", "devices": 1}),
        ):
            assert c.post(path, json=body).status_code == 201, path
        assert c.put("/api/v1/prices", json={"h100": PRICE}).status_code == 200
        r = c.post(
            "/api/v1/jobs?tenant=t",
            json={"name": "long", "command": "sleep 600", "resources": {"type": "h100", "count": 1}},
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


@pytest.mark.timeout(120)
def test_a_waiting_scheduler_adopts_a_job_started_while_it_waited(tmp_path: Path, waiting: _Waiting) -> None:
    data = tmp_path / "data"
    opts = Options(
        data_dir=data, executor="local", round_seconds=0.2, poll_seconds=0.05, allow_unsandboxed=True
    )
    a = Service(opts)
    a.bootstrap()
    admin = {"Authorization": "Bearer " + (data / "admin-token").read_text().strip()}
    pids: set[int] = set()
    job = ""
    b: list[Service] = []
    b_ready = threading.Event()

    def second() -> None:  # `accelpool up` B on the same data dir: waits for A's lock
        b.append(Service(opts, api=False))
        b[0].start_loop()
        b_ready.set()

    t = threading.Thread(target=second, name="scheduler-b", daemon=True)
    try:
        a.start_loop()
        t.start()
        assert waiting.seen.wait(30), "B never waited for the scheduler lock"
        # A starts a job after B was constructed (B is blocked on the lock, its executor built or not)
        job = _setup(a, admin)
        _until("A to start the job", lambda: job in a.executor.active())
        _until("A to record its start", lambda: getattr(a.store.get_job(job), "start_time", None))
        pids = _pids(data, job)
        assert len(pids) == 1
        started = time.time()
        a.stop()  # a clean stop (SIGTERM): the job keeps running, for the next scheduler to adopt
        assert b_ready.wait(30), "B never took the lock after A stopped"
        s = b[0]
        assert job in s.executor.active(), "B did not adopt the job A left running"
        rounds = s.rounds
        _until("B's rounds", lambda: s.rounds >= rounds + 5)
        v = s.store.get_job(job)
        assert v is not None and v.state == "running" and v.attempts == 1, v
        events = s.store.job_events(job)
        assert not [e for e in events if "lost" in e.reason], events
        assert _pids(data, job) == pids, "the job was started a second time"
        for pid in pids:
            os.kill(pid, 0)  # A's process runs on, adopted
        # billed (once): up to now at one device's price, from before A stopped
        assert v.charged_krw is not None, v
        assert 0 < v.charged_krw <= (time.time() - started + 5.0) * PRICE / 3600, v.charged_krw
    finally:
        if not b_ready.is_set():
            a.stop()
            t.join(30)
        for s in b:
            s.stop()
        for pid in pids | (_pids(data, job) if job else set()):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:  # gone already
                pass


def test_every_executor_built_at_start_up_is_built_under_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service's own executor and each registered site's (Slurm and Ray executors adopt their work
    when built, as the local one does): none is built before this process holds ``scheduler.lock``."""
    opts = Options(data_dir=tmp_path, executor="fake")
    store = SqlStore(opts.url, bundled_catalog())
    store.add_sites([Site("cloud", executor="fake")])
    store.close()
    built: list[tuple[str, bool]] = []
    make = ExecutorFactory.__call__

    def spy(self: ExecutorFactory, kind: str, *args: object, **kw: object) -> object:
        with open(tmp_path / "scheduler.lock", "a+") as f:  # another open file: conflicts with a holder
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = False
            except BlockingIOError:
                held = True
        built.append((kind, held))
        return make(self, kind, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ExecutorFactory, "__call__", spy)
    service = Service(opts, api=False)
    try:
        assert isinstance(service.executor, SiteExecutors)
        assert built == [("fake", True), ("fake", True)], built
    finally:
        service.stop()
    with open(tmp_path / "scheduler.lock", "a+") as f:  # stop() released it
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)

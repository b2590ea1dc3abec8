"""`accelpool up` (the default, split control plane): a supervisor and two child processes.

    supervisor   migrates the schema, creates the first admin token (and with --demo the demo world),
                 then starts and watches the children. SIGINT/SIGTERM: forwarded (as SIGTERM) to both,
                 which stop cleanly (SIGKILL after ``STOP_GRACE`` s). A child that dies on its own is logged
                 (exit code or signal) and restarted, after a delay that doubles with each quick death
                 (``BACKOFF_MIN`` .. ``BACKOFF_MAX`` s; back to the minimum once a child ran ``STABLE`` s).
    api          ``python -m accelpool.service.supervisor api OPTIONS_JSON``: uvicorn serving the REST API.
                 It never runs a round, so scheduling CPU never stalls a request (the GIL is not shared).
    scheduler    ``python -m accelpool.service.supervisor scheduler OPTIONS_JSON``: the reconciler loop and
                 the executor (``Service(api=False).run_scheduler()``).

The children share only the database. The API records cancels in the store; the scheduler polls (every
``poll_seconds``) the states of the jobs its executor runs and stops those that are over, and the jobs
table's newest sequence number to notice submissions. Each child dies with the supervisor (Linux
``PR_SET_PDEATHSIG``, plus a parent watch), so ``kill -9`` of the supervisor alone leaves no orphan serving
or scheduling; the scheduler lock (``<data-dir>/scheduler.lock``) makes sure two schedulers never overlap.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from accelpool.service.options import Options

log = logging.getLogger("accelpool.supervisor")

STOP_GRACE = 20.0
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0
STABLE = 30.0
ROLES = ("api", "scheduler")


@dataclass
class _Child:
    role: str
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = BACKOFF_MIN
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.children = {role: _Child(role) for role in ROLES}
        self._stopping = threading.Event()

    def _spawn(self, child: _Child) -> None:
        cmd = [sys.executable, "-m", "accelpool.service.supervisor", child.role, self.opts.to_json()]
        child.proc = subprocess.Popen(cmd, env={**os.environ, "ACCELPOOL_SUPERVISOR_PID": str(os.getpid())})
        child.started = time.monotonic()
        child.restart_at = None
        log.info("started %s process (pid %d)", child.role, child.proc.pid)

    def run(self) -> int:
        """Start the children and watch them until SIGINT/SIGTERM; returns the exit status."""

        def on_signal(signum: int, frame: object) -> None:
            self._stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        for child in self.children.values():
            self._spawn(child)
        while not self._stopping.is_set():
            self._watch()
            self._stopping.wait(0.2)
        self.stop()
        return 0

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self.children.values():
            if child.proc is None:
                if child.restart_at is not None and now >= child.restart_at:
                    self._spawn(child)
                continue
            code = child.proc.poll()
            if code is None:
                if now - child.started > STABLE:
                    child.backoff = BACKOFF_MIN
                continue
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            ran = now - child.started
            delay = child.backoff if ran < STABLE else BACKOFF_MIN
            child.backoff = min(BACKOFF_MAX, delay * 2)
            child.restarts += 1
            child.proc = None
            child.restart_at = now + delay
            log.warning(
                "%s process %s after %.1f s; restarting it in %.1f s (restart %d)",
                child.role,
                how,
                ran,
                delay,
                child.restarts,
            )

    def stop(self) -> None:
        """SIGTERM to both children, SIGKILL to what is left after STOP_GRACE seconds."""
        procs = [c.proc for c in self.children.values() if c.proc is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + STOP_GRACE
        for p in procs:
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("pid %d did not stop in %.0f s; killing it", p.pid, STOP_GRACE)
                p.kill()
                p.wait(timeout=10)
        log.info("stopped")


def _die_with_parent() -> None:
    """Get SIGTERM when the supervisor dies (Linux), and watch for it anyway (other systems, races)."""
    parent = int(os.environ.get("ACCELPOOL_SUPERVISOR_PID", "0"))
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # not Linux: the parent check below still ends an orphan
            pass
    if parent and os.getppid() != parent:  # it died before prctl
        os.kill(os.getpid(), signal.SIGTERM)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if parent and os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


SCHEDULER_NICE = 10
"""How much lower the scheduler process runs than the API (a Unix nice increment)."""


GC_THRESHOLDS = (20_000, 20, 50)
"""The children's collector thresholds (Python's default: 700, 10, 10)."""


def settle_gc() -> None:
    """For a child process once it is set up: long-lived objects (app, service, caches) leave the
    collector's view (``gc.freeze``) and young-generation collections run less often, so a request rarely
    pays for a full collection (API: p99 110 -> 30-35 ms) and a scheduling round spends less of its CPU
    collecting (bench/bench_round.py calls this too, to time the step as the scheduler process runs it)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def child_main(role: str, options_json: str) -> None:
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s {role} %(name)s %(levelname)s %(message)s", stream=sys.stderr
    )
    opts = Options.from_json(options_json)
    _die_with_parent()
    if role == "api":
        import uvicorn

        from accelpool.service.startup import api_app

        app, store = api_app(opts)
        settle_gc()
        try:
            uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning", access_log=False)
        finally:
            store.close()
    elif role == "scheduler":
        from accelpool.service.server import Service

        # Rounds are CPU-heavy batch work; answering tenants is latency-bound. Let the OS favour the API.
        with contextlib.suppress(OSError):
            os.nice(SCHEDULER_NICE)

        opts.upgrade = False  # the supervisor migrated the schema before starting us
        service = Service(opts, api=False)
        settle_gc()  # a round allocates ~10^5-10^6 objects: with the default thresholds full collections
        service.run_scheduler()  # took ~30% of a step's CPU (bench/bench_round.py, docs/control-plane.md)
    else:
        raise SystemExit(f"unknown role {role!r} (api or scheduler)")


if __name__ == "__main__":
    child_main(sys.argv[1], sys.argv[2])

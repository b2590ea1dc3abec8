"""SiteExecutors: one Executor port over several sites, each driven by its own executor (federation).

    SiteExecutors(
        {"cloud-a": LocalExecutor(...), "hpc": SlurmExecutor(...)},   # site id -> that site's executor
        clock=None,                     # Clock for the health timer and event times; default SystemClock().
        down_after_seconds=10.0,        # a site whose controller has not answered for this long is down
        probe_interval_seconds=1.0,     # how often each site's reachable() is called (in a thread)
        on_site_health=None,            # Callable[[site, down: bool], None]: the store's set_site_down,
                                        # so the next snapshot leaves the site's nodes and jobs out
    )

A launch goes to the executor of its placement's site (``Placement.site``; the core never puts a gang on
two sites). A site's health is its executor's ``reachable()`` (executors without one, e.g. the local one,
are always reachable), probed every ``probe_interval_seconds`` by a background thread (a dead Slurm
controller takes its clients about 4 s to give up; the rounds must not wait for that). A site whose last
probe failed is not polled. When a site has not answered for ``down_after_seconds``:

- it is marked down (``on_site_health(site, True)``): the core places nothing there any more;
- each job it ran is reported LOST ``site-lost: <site> not answering for N s``: the store requeues it and
  the next round places it on another site allowed for it (or it waits, with the reason in words);
- its executor is not polled while it is down (its jobs may still run there, out of sight).

When the site answers again it is marked up, and every job that was running there when it went down and is
still running there is **stopped** (its job was requeued; it may already run elsewhere): work is never
doubled. The events of those stale runs (their progress, their end) are dropped, so a stale run that
happens to succeed cannot mark the job done while its new attempt runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from accelpool.ports import Clock, EventKind, Executor, ExecutorEvent, Launch

log = logging.getLogger(__name__)


class SiteExecutors:
    """Routes each job to its site's executor; tracks site health (see the module docstring)."""

    def __init__(
        self,
        executors: Mapping[str, Executor],
        clock: Clock | None = None,
        *,
        down_after_seconds: float = 10.0,
        on_site_health: Callable[[str, bool], None] | None = None,
        probe_interval_seconds: float = 1.0,
    ) -> None:
        if clock is None:
            from accelpool.runtime.clock import SystemClock

            clock = SystemClock()
        self.executors = dict(executors)
        self.clock = clock
        self.down_after = float(down_after_seconds)
        self.on_site_health = on_site_health
        self.down: set[str] = set()
        self._site_of: dict[str, str] = {}
        self._stale: dict[str, set[str]] = {s: set() for s in self.executors}  # runs to stop on return
        self._relaunched: set[str] = set()  # started again at the site of their stale run (runs after it)
        self._events: list[ExecutorEvent] = []
        for site, ex in self.executors.items():  # adopted work (after a control-plane restart)
            for job in ex.active():
                self._site_of[job] = site
        self._probe_interval = float(probe_interval_seconds)
        self._answers: dict[str, bool] = {s: True for s in self.executors}
        self._failing_since: dict[str, float] = {}  # monotonic time of the first failed probe in a row
        self._closed = threading.Event()
        self._probers = [
            threading.Thread(target=self._probe_loop, args=(s, ex), name=f"accelpool-site-{s}", daemon=True)
            for s, ex in self.executors.items()
            if getattr(ex, "reachable", None) is not None
        ]
        for t in self._probers:
            t.start()

    def _probe_loop(self, site: str, ex: Executor) -> None:
        probe = getattr(ex, "reachable")  # noqa: B009
        while not self._closed.is_set():
            try:
                ok = bool(probe())
            except Exception:
                ok = False
            if ok:
                self._failing_since.pop(site, None)
            else:
                self._failing_since.setdefault(site, time.monotonic())
            self._answers[site] = ok
            self._closed.wait(self._probe_interval)

    # -- the port ---------------------------------------------------------------------------------------

    def start(self, launch: Launch) -> None:
        site = launch.placement.site
        ex = self.executors.get(site)
        if ex is None or site in self.down:
            why = f"site-lost: no executor for site {site}" if ex is None else f"site-lost: {site} is down"
            self._events.append(ExecutorEvent(launch.job.id, EventKind.LOST, self.clock.now(), reason=why))
            return
        old = self._site_of.get(launch.job.id)
        if old is not None and old != site and launch.job.id in self.executors[old].active():
            # moved between sites in one round: the old run is being stopped there; start here at once
            self._stale[old].add(launch.job.id)
        if launch.job.id in self._stale[site]:
            self._relaunched.add(launch.job.id)  # its executor starts it once the stale run has ended
        ex.start(launch)
        self._site_of[launch.job.id] = site

    def stop(self, job_id: str, reason: str) -> None:
        site = self._site_of.get(job_id)
        if site is None:
            return
        if site in self.down:
            self._stale[site].add(job_id)  # stopped when the site answers again
            return
        self.executors[site].stop(job_id, reason)

    def poll(self) -> list[ExecutorEvent]:
        out: list[ExecutorEvent] = []
        now = self.clock.now()
        for site, ex in self.executors.items():
            if not self._healthy(site, ex, now):
                continue
            try:
                events = ex.poll()
            except Exception as exc:  # an executor that fails to poll counts as not answering
                log.warning("site %s: poll failed: %s", site, exc)
                self._answers[site] = False  # until the next probe answers
                self._failing_since.setdefault(site, time.monotonic())
                continue
            stale = self._stale[site]
            for e in events:
                if e.job in stale:
                    if e.kind in (EventKind.EXITED, EventKind.LOST):
                        stale.discard(e.job)  # the stale run has ended; a new attempt here is reported
                        self._relaunched.discard(e.job)
                    continue
                out.append(e)
        # A site found down in this poll reports its jobs LOST in this same poll (the store requeues them
        # before the round that no longer sees the site's nodes decides).
        out, self._events = self._events + out, []
        out.sort(key=lambda e: e.time)
        return out

    def active(self) -> set[str]:
        jobs: set[str] = set()
        for site, ex in self.executors.items():
            if site in self.down:
                continue
            jobs |= ex.active() - (self._stale[site] - self._relaunched)
        return jobs

    def logs(self, job_id: str) -> str:
        site = self._site_of.get(job_id)
        if site is not None:
            return self.executors[site].logs(job_id)
        for ex in self.executors.values():
            text = ex.logs(job_id)
            if text:
                return text
        return ""

    def close(self) -> None:
        self._closed.set()
        for t in self._probers:
            t.join(timeout=15.0)
        for ex in self.executors.values():
            ex.close()

    # -- sites ------------------------------------------------------------------------------------------

    def site_of(self, job_id: str) -> str | None:
        return self._site_of.get(job_id)

    def _healthy(self, site: str, ex: Executor, now: float) -> bool:
        """Check the site's controller; mark it down after ``down_after`` seconds of silence, up when it
        answers again. True when its executor may be polled now."""
        if self._answers.get(site, True):
            if site in self.down:
                self._site_returns(site, ex)
            return True
        since = self._failing_since.get(site)
        silent = 0.0 if since is None else time.monotonic() - since
        if site not in self.down and silent >= self.down_after:
            self._site_down(site, ex, now, silent)
        return False

    def _site_down(self, site: str, ex: Executor, now: float, silent: float) -> None:
        self.down.add(site)
        jobs = sorted(j for j, s in self._site_of.items() if s == site and j not in self._stale[site])
        log.warning(
            "site %s is down (not answering for %.0f s); requeueing %d job(s)", site, silent, len(jobs)
        )
        if self.on_site_health is not None:
            self.on_site_health(site, True)
        for j in jobs:
            self._stale[site].add(j)
            self._events.append(
                ExecutorEvent(
                    j, EventKind.LOST, now, reason=f"site-lost: {site} not answering for {silent:.0f} s"
                )
            )

    def _site_returns(self, site: str, ex: Executor) -> None:
        self.down.discard(site)
        still = sorted(ex.active() & self._stale[site])
        log.warning(
            "site %s answers again; stopping %d run(s) requeued elsewhere: %s", site, len(still), still
        )
        for j in still:
            ex.stop(j, f"site {site} came back; the job was requeued")
        self._stale[site] &= set(still)
        if self.on_site_health is not None:
            self.on_site_health(site, False)

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
probe failed, or that no probe has answered yet, is not polled. When a site has not answered for ``down_after_seconds``:

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace

from accelpool.core.types import DEFAULT_SITE, Node
from accelpool.ports import Clock, EventKind, Executor, ExecutorEvent, Launch, NodeSource

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
        initially_down: Iterable[str] = (),
    ) -> None:
        if clock is None:
            from accelpool.runtime.clock import SystemClock

            clock = SystemClock()
        self.executors: dict[str, Executor] = {}
        self.clock = clock
        self.down_after = float(down_after_seconds)
        self.on_site_health = on_site_health
        self.down: set[str] = set()
        self._site_of: dict[str, str] = {}
        self._stale: dict[str, set[str]] = {}  # per site: runs to stop there (on its return, or now)
        self._relaunched: set[str] = set()  # started again at the site of their stale run (runs after it)
        self._events: list[ExecutorEvent] = []
        # ends poll() reported, not yet acked -> their site (None: made here, e.g. site-lost; no executor's)
        self._ends: dict[ExecutorEvent, str | None] = {}
        self._probe_interval = float(probe_interval_seconds)
        self._answers: dict[str, bool] = {}
        self._failing_since: dict[str, float] = {}  # monotonic time of the first failed probe in a row
        self._closed = threading.Event()
        self._probers: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._stale_on_return: set[str] = set()  # down at start-up: every run there is stale
        down = set(initially_down)
        for site, ex in executors.items():
            self.add_site(site, ex, down=site in down)

    def add_site(self, site: str, ex: Executor, *, down: bool = False) -> None:
        """Drive ``site`` with ``ex`` from now on (a site registered while the service runs). Its work
        (adopted after a control-plane restart) is known at once. ``down``: the site was down when the
        control plane stopped: its jobs were requeued, so every run it still has is stale and is stopped
        when it answers (then it is marked up)."""
        if site in self.executors:
            raise ValueError(f"site {site} already has an executor")
        self.executors[site] = ex
        self._stale[site] = set()
        probed = getattr(ex, "reachable", None) is not None
        # a probed site is polled (and its nodes discovered) only once a probe has answered: a new site whose
        # controller cannot be reached held every round for the commands' timeouts (an operator's test: a
        # Slurm site with a wrong slurm.conf stopped scheduling for the whole pool for 30-45 s)
        self._answers[site] = not probed
        active = ex.active() if not down else set()
        for job in active:  # adopted work (after a control-plane restart)
            self._site_of.setdefault(job, site)
        if down:
            self.down.add(site)
            self._failing_since.setdefault(site, time.monotonic())
            self._stale_on_return.add(site)
        if probed:
            halt = threading.Event()
            t = threading.Thread(
                target=self._probe_loop, args=(site, ex, halt), name=f"accelpool-site-{site}", daemon=True
            )
            self._probers[site] = (t, halt)
            t.start()

    def remove_site(self, site: str) -> Executor | None:
        """Stop driving ``site`` (its connection changed: the caller adds it again with a new executor).
        Refused (ValueError) while it runs work; returns the old executor, closed."""
        ex = self.executors.get(site)
        if ex is None:
            return None
        if site not in self.down and ex.active():
            raise ValueError(f"site {site} still runs {len(ex.active())} job(s)")
        prober = self._probers.pop(site, None)
        if prober is not None:
            prober[1].set()
            prober[0].join(timeout=15.0)
        del self.executors[site]
        self._stale.pop(site, None)
        self._answers.pop(site, None)
        self._failing_since.pop(site, None)
        self.down.discard(site)
        self._stale_on_return.discard(site)
        for job in [j for j, s in self._site_of.items() if s == site]:
            del self._site_of[job]
        ex.close()
        return ex

    def _probe_loop(self, site: str, ex: Executor, halt: threading.Event) -> None:
        probe = getattr(ex, "reachable")  # noqa: B009
        while not self._closed.is_set() and not halt.is_set():
            try:
                ok = bool(probe())
            except Exception as exc:  # a probe that fails counts as not answering
                log.debug("site %s: probe failed: %s", site, exc)
                ok = False
            if ok:
                self._failing_since.pop(site, None)
            else:
                self._failing_since.setdefault(site, time.monotonic())
            self._answers[site] = ok
            halt.wait(self._probe_interval)

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
            dropped: list[ExecutorEvent] = []
            for e in events:
                if e.job in stale:
                    if e.kind in (EventKind.EXITED, EventKind.LOST):
                        stale.discard(e.job)  # the stale run has ended; a new attempt here is reported
                        self._relaunched.discard(e.job)
                        dropped.append(e)
                    continue
                out.append(e)
                if e.kind in (EventKind.EXITED, EventKind.LOST):
                    self._ends[e] = site
            if dropped:  # never recorded: the site's executor may forget them now
                ex.ack(dropped)
            ended = [e.job for e in events if e.kind in (EventKind.EXITED, EventKind.LOST)]
            if ended:
                still = ex.active()
                for job in ended:  # forget where ended jobs ran (the map would grow with every job)
                    if job not in still and job not in stale and self._site_of.get(job) == site:
                        del self._site_of[job]
        # A site found down in this poll reports its jobs LOST in this same poll (the store requeues them
        # before the round that no longer sees the site's nodes decides).
        for e in self._events:
            self._ends[e] = None
        out, self._events = self._events + out, []
        out.sort(key=lambda e: e.time)
        return out

    def ack(self, events: Sequence[ExecutorEvent]) -> None:
        """The store has recorded ``events``: each end goes to the executor of the site that reported it. An
        end not polled here was polled from the default executor before any site was registered (the
        service then drove it alone, and the reconciler kept the events its failed round did not record)."""
        by_site: dict[str, list[ExecutorEvent]] = {}
        for e in events:
            if e.kind not in (EventKind.EXITED, EventKind.LOST):
                continue
            site = self._ends.pop(e, None) if e in self._ends else DEFAULT_SITE
            if site is not None:
                by_site.setdefault(site, []).append(e)
        for site, ended in by_site.items():
            ex = self.executors.get(site)
            if ex is not None:
                ex.ack(ended)

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
        for t, halt in self._probers.values():
            halt.set()
            t.join(timeout=15.0)
        for ex in self.executors.values():
            ex.close()

    # -- sites ------------------------------------------------------------------------------------------

    def settle(self, running_at: Mapping[str, str]) -> list[tuple[str, str]]:
        """After a control-plane restart, with ``running_at`` = job -> the site the store has it running
        at: a run at any other site (left there by a site failure or a move before the restart) is stopped
        and its events dropped, so a job never runs twice. Returns the (job, site) pairs stopped."""
        stopped: list[tuple[str, str]] = []
        for site, ex in self.executors.items():
            if site in self.down:
                continue
            for job in sorted(ex.active()):
                where = running_at.get(job)
                if where is not None and where != site:
                    self._stale[site].add(job)
                    ex.stop(job, f"the job runs at site {where}")
                    stopped.append((job, site))
        for job, site in running_at.items():
            at = self.executors.get(site)
            if at is not None and site not in self.down and job in at.active():
                self._site_of[job] = site
        if stopped:
            log.warning(
                "stopping %d stale run(s) of jobs that run at another site: %s", len(stopped), stopped
            )
        return stopped

    def nodes_by_site(self) -> dict[str, list[Node]]:
        """The nodes of each site whose executor discovers them (a NodeSource: Slurm, Ray) and that is up
        and answers now, each node tagged with its site. A site whose discovery fails is left out (its
        nodes are neither added nor taken out; the health check decides when it is down)."""
        out: dict[str, list[Node]] = {}
        for site, ex in list(self.executors.items()):
            if site in self.down or not self._answers.get(site, True) or not isinstance(ex, NodeSource):
                continue
            try:
                found = ex.nodes()
            except Exception as exc:
                log.warning("site %s: node discovery failed: %s", site, exc)
                continue
            out[site] = [n if n.site == site else replace(n, site=site) for n in found]
        return out

    def unrecognized(self) -> dict[str, str]:
        """Nodes left out of the pool (unknown accelerator types), of every site: node -> reason."""
        out: dict[str, str] = {}
        for ex in self.executors.values():
            get = getattr(ex, "unrecognized", None)
            if get is not None:
                out.update(get())
        return out

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
        if site in self._stale_on_return:  # down when the control plane started: all its runs are stale
            self._stale_on_return.discard(site)
            self._stale[site] |= ex.active()
        still = sorted(ex.active() & self._stale[site])
        log.warning(
            "site %s answers again; stopping %d run(s) requeued elsewhere: %s", site, len(still), still
        )
        for j in still:
            ex.stop(j, f"site {site} came back; the job was requeued")
        self._stale[site] &= set(still)
        if self.on_site_health is not None:
            self.on_site_health(site, False)

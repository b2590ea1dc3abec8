"""`accelpool up` drives every registered site: the scheduler's executors come from the sites table.

With no site registered the scheduler runs its one executor (``--executor``) as before. Once the sites
table holds a site (``accelpool sites add``, ``POST /api/v1/sites``), the scheduler's executor becomes a
``SiteExecutors`` (executors/sites.py): the implicit site ``default`` (nodes registered without a site) is
the service's own executor, and every registered site gets an executor of its ``executor`` kind, built from
its ``connection`` (strings):

    local   state_dir      where its job state and logs live (default <data-dir>/sites/<id>/executor)
    slurm   slurm_conf     slurm.conf for the Slurm commands (default: theirs)
            partition      partition to submit to and take nodes from (default: Slurm's default)
            bin_dir        directory of sbatch, squeue, sinfo, scancel, scontrol (default: PATH)
            state_dir      job state, logs, progress files (default <data-dir>/sites/<id>/slurm; must be
                           on a file system the Slurm nodes share)
            instance       tag of this control plane's Slurm jobs at the site (default <--instance>.<id>)
    ray     address, namespace   the Ray cluster (one Ray cluster per scheduler process: Ray's client is
                           process-wide; a second Ray site is refused at registration, 409, and a Ray
                           site while the service's own executor is Ray is marked down with the cause)
    fake    (none)         no processes (tests)

A site registered with the id ``default`` is driven by the service's own executor, whatever its fields say.
Sites whose executor discovers its nodes (Slurm, Ray) bring their nodes into the pool, tagged with the site;
the nodes of a local site are registered by hand (``accelpool nodes add NAME TYPE N --site ID``).

The table is read again before every round (``refresh``): a site added while the service runs is driven
from the next round (a Slurm site once its executor is built, in a thread of its own: BUILT_APART); a site whose ``executor`` or ``connection`` changed gets a new executor once its old one
runs nothing (its jobs are left to end or to be preempted; the change waits, logged). A site whose executor
cannot be built (bad connection) is marked down with the cause logged, so nothing is placed there.

Health: each site's controller is probed every second (executors/sites.py); a site silent for
``down_after_seconds`` is marked down and its jobs requeued elsewhere; when it answers again it is marked up
and the runs it still has of requeued jobs are stopped. A site that was down when the scheduler stopped
starts down: when it answers, every run it still has is stopped (its jobs were requeued at the time), then
it is marked up. A site taken out by hand (``PUT /sites/{id} {"down": true, "reason": ...}``, ``accelpool
sites set ID --down``) records who, when and why and stays down until an operator brings it up
(``{"down": false}``, ``--up``), whatever its controller answers and across scheduler restarts: the health
check's "it answers again" never clears an operator's hand (the store refuses it). A site brought up by
hand while its controller is silent is marked down again by the health check at the next refresh.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from accelpool.core.sites import connection_problem
from accelpool.core.types import DEFAULT_SITE, Site
from accelpool.executors.sites import SiteExecutors
from accelpool.ports import Clock, Executor

log = logging.getLogger("accelpool.service.sites")


class ExecutorFactory:
    """Builds one executor of a kind (``local``, ``ray``, ``slurm``, ``fake``) with the service's settings:
    its catalogue, clock, job environment (``extra_env``), sandbox and instance tag."""

    def __init__(
        self,
        data_dir: Path,
        *,
        catalog: Any,
        clock: Clock,
        extra_env: Callable[[Any], Mapping[str, str]] | None = None,
        sandbox: Callable[[], Any] | None = None,
        instance: str = "accelpool",
    ) -> None:
        self.data_dir = data_dir
        self.catalog = catalog
        self.clock = clock
        self.extra_env = extra_env
        self.sandbox = sandbox  # called when a local or Ray executor is built (it may raise InputError)
        self.instance = instance
        self.ray_site: str | None = None  # the one site this process drives with Ray (Ray is process-wide)

    def __call__(
        self, kind: str, state_dir: Path, connection: Mapping[str, str], site: str = DEFAULT_SITE
    ) -> Executor:
        problem = connection_problem(kind, connection)
        if problem is not None:
            raise ValueError(problem)
        if kind == "fake":
            from accelpool.executors.fake import FakeExecutor

            return FakeExecutor(self.clock)
        sandbox = self.sandbox() if self.sandbox is not None else None
        if kind == "ray":
            from accelpool.executors.ray import RayExecutor

            if self.ray_site not in (None, site):
                raise ValueError(
                    f"site {site}: this scheduler drives a Ray cluster already (site {self.ray_site}), and "
                    "Ray's client is process-wide: one Ray cluster per scheduler process"
                )
            ray_ex = RayExecutor(
                address=connection.get("address"),
                namespace=connection.get("namespace", "accelpool"),
                catalog=self.catalog,
                clock=self.clock,
                log_dir=state_dir,
                extra_env=self.extra_env,
                sandbox=sandbox,
            )
            self.ray_site = site
            return ray_ex
        if kind == "slurm":
            from accelpool.executors.slurm import SlurmExecutor

            # Slurm runs the job on its nodes under its own process tracking and cgroups; each rank's step
            # execs the job sandbox (bwrap, docs/security.md), which the nodes need installed.
            instance = connection.get("instance") or (
                self.instance if site == DEFAULT_SITE else f"{self.instance}.{site}"
            )
            return SlurmExecutor(
                connection.get("state_dir") or state_dir,
                catalog=self.catalog,
                clock=self.clock,
                extra_env=self.extra_env,
                instance=instance,
                partition=connection.get("partition") or None,
                slurm_conf=connection.get("slurm_conf") or None,
                bin_dir=connection.get("bin_dir") or None,
                site=site,
                sandbox=sandbox,
            )
        from accelpool.executors.local import LocalExecutor

        return LocalExecutor(
            connection.get("state_dir") or state_dir,
            catalog=self.catalog,
            clock=self.clock,
            extra_env=self.extra_env,
            sandbox=sandbox,
        )

    def for_site(self, site: Site) -> Executor:
        # its presence tells the API process that a job's logs may be at another site (service/channel.py)
        (self.data_dir / "sites").mkdir(parents=True, exist_ok=True)
        sub = {"local": "executor", "slurm": "slurm", "ray": "ray-logs", "fake": "fake"}.get(
            site.executor, "x"
        )
        return self(site.executor, self.data_dir / "sites" / site.id / sub, site.connection, site.id)


BUILT_APART = frozenset({"slurm"})
"""Executor kinds built in a thread of their own when their site joins while the service runs: a Slurm
executor asks its controller for the nodes and the jobs it had (``sinfo``, ``squeue``, 10 s timeouts each);
a site with a wrong ``slurm.conf`` held the round, and with it every site's scheduling, for ~20 s (an
operator's test). At start-up every site is built before the first round, as before (its work is adopted
then). Ray is not: its client is process-wide and is set up in the scheduler's own thread."""

_BUILDING = object()


def _fingerprint(site: Site) -> tuple[str, tuple[tuple[str, str], ...]]:
    return site.executor, tuple(sorted(site.connection.items()))


class SiteWiring:
    """Keeps the scheduler's executors in step with the sites table (see the module docstring).

    ``store``: has ``sites()`` and ``set_site_down(site, down)``; ``default``: the service's own executor
    (the ``default`` site); ``make``: Site -> its executor (``ExecutorFactory.for_site``)."""

    def __init__(
        self,
        store: Any,
        clock: Clock,
        default: Executor,
        make: Callable[[Site], Executor],
        *,
        down_after_seconds: float = 10.0,
        probe_interval_seconds: float = 1.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.default = default
        self.make = make
        self.down_after = down_after_seconds
        self.probe_interval = probe_interval_seconds
        self.executor: SiteExecutors | None = None
        self._driven: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {}  # site -> its fingerprint
        self._failed: dict[str, tuple[tuple[str, tuple[tuple[str, str], ...]], str]] = {}  # site -> why
        self._waiting: set[str] = set()  # sites whose change waits for their work to end (logged once)
        self._building: dict[str, tuple[Any, threading.Thread, dict[str, Any]]] = {}  # site -> its build
        self._started = False  # the first refresh (start-up) builds every site before the first round

    def refresh(self) -> SiteExecutors | None:
        """Read the sites table; build, add or replace site executors. Returns the SiteExecutors once any
        site is registered (the same object every time), else None (the service keeps its one executor)."""
        sites = [s for s in self.store.sites() if s.id != DEFAULT_SITE]
        starting, self._started = not self._started, True
        if not sites and self.executor is None:
            return None
        if self.executor is None:
            down = {s.id for s in sites if s.down}
            built = {}
            for s in sites:
                if not starting and s.executor in BUILT_APART:
                    self._build_apart(s, _fingerprint(s))  # the first site that joins at run time
                    continue
                ex = self._build(s)
                if ex is not None:
                    built[s.id] = ex
            self.executor = SiteExecutors(
                {DEFAULT_SITE: self.default, **built},
                self.clock,
                down_after_seconds=self.down_after,
                probe_interval_seconds=self.probe_interval,
                on_site_health=self.store.set_site_down,
                initially_down=down,
            )
            if built:
                log.info("driving sites: %s", ", ".join(f"{s} ({self._driven[s][0]})" for s in sorted(built)))
            return self.executor
        ex_all = self.executor
        apart = {s.id: _fingerprint(s) for s in sites if s.executor in BUILT_APART}
        for gone in [k for k, b in self._building.items() if apart.get(k) != b[0] and not b[1].is_alive()]:
            del self._building[gone]  # a finished build of a site since removed or changed: never used
        for s in sites:
            if s.id in ex_all.down and not s.down:  # brought up by hand while its controller is silent
                self.store.set_site_down(s.id, True)
            fp = _fingerprint(s)
            if self._driven.get(s.id) == fp:
                continue
            if s.id in self._failed and self._failed[s.id][0] == fp:
                continue  # still the connection that failed: wait for a change
            if s.id in ex_all.executors:
                try:
                    ex_all.remove_site(s.id)
                except ValueError as exc:
                    if s.id not in self._waiting:
                        self._waiting.add(s.id)
                        log.warning("site %s changed; the new connection waits: %s", s.id, exc)
                    continue
                self._waiting.discard(s.id)
                self._driven.pop(s.id, None)
                log.info("site %s changed: driving it with its new connection", s.id)
            was_failed = s.id in self._failed  # marked down by us: comes back up when it answers
            if s.executor in BUILT_APART:
                ready = self._build_apart(s, fp)
                if ready is _BUILDING:
                    continue
                ex = ready
            else:
                ex = self._build(s)
            if ex is not None:
                ex_all.add_site(s.id, ex, down=s.down and was_failed)
                log.info("site %s joined: %s executor", s.id, s.executor)
        return ex_all

    def _build_apart(self, site: Site, fp: tuple[str, tuple[tuple[str, str], ...]]) -> Any:
        """A site executor built in a thread of its own (``BUILT_APART``): _BUILDING until it is done, then
        as ``_build`` (the executor, or None after marking the site down). Started again when the site
        changed while it was built."""
        pending = self._building.get(site.id)
        if pending is None or pending[0] != fp:
            box: dict[str, Any] = {}

            def make() -> None:
                try:
                    box["ex"] = self.make(site)
                except Exception as exc:  # reported by the round that collects it
                    box["exc"] = exc

            t = threading.Thread(target=make, name=f"accelpool-build-{site.id}", daemon=True)
            self._building[site.id] = (fp, t, box)
            t.start()
            return _BUILDING
        if pending[1].is_alive():
            return _BUILDING
        del self._building[site.id]
        box = pending[2]
        failed = box.get("exc")
        if "ex" not in box and failed is None:  # the thread died without an answer: never built in the round
            failed = RuntimeError("its executor's build ended without an executor")
        return self._build(site, made=box.get("ex"), failed=failed)

    def _build(
        self, site: Site, *, made: Executor | None = None, failed: Exception | None = None
    ) -> Executor | None:
        fp = _fingerprint(site)
        try:
            if failed is not None:
                raise failed
            ex = made if made is not None else self.make(site)
        except Exception as exc:  # a bad connection must not stop the scheduler
            why = f"{type(exc).__name__}: {exc}"
            self._failed[site.id] = (fp, why)
            log.error(
                "site %s: cannot build its %s executor (%s); marking it down", site.id, site.executor, why
            )
            if not site.down:
                self.store.set_site_down(site.id, True)
            return None
        self._failed.pop(site.id, None)
        self._driven[site.id] = fp
        return ex

    def failures(self) -> dict[str, str]:
        """Sites whose executor could not be built: site -> cause."""
        return {s: why for s, (_, why) in self._failed.items()}

"""Admission: a validated JobSpec becomes a core Job, or is refused with the reason a job could never run.

Refused (422 with the field, or 409 for money/rules):
  - a type the catalogue does not know, or none of the allowed types is in the pool     (resources)
  - more devices than any allowed type has in the pool (in the job's zone, at one allowed site)
                                                                                      (resources.count)
  - no registered site certified for its data class, in its sites/regions     (constraints.data_class)
  - a site it names that is not registered at all                                   (constraints.sites)
  - a zone no node is in                                                             (constraints.zone)
  - a domestic-only job and none of its types is a Korean NPU           (constraints.domestic_only), or
    a public inference job under a program whose rule keeps public services on Korean NPUs    (public)
  - no grant for the tenant (from the named program), or the grant is used up/ended      (grant / program)
  - no program named, the tenant holds live grants from several programs, and its earlier jobs went to
    none or several of them (409, program; where they went to one, the job goes to that one)
  - a program rule forbids it: per-tenant cap below the count, contract longer than allowed (409, rule)
  - a max run time whose cost the grant cannot hold besides its other active jobs          (409, budget)
  - a relative ``workdir`` or ``checkpoint_dir``: the service would resolve it against its own working
    directory, which the tenant neither sees nor chooses (``accelpool submit`` sends a job file's relative
    paths made absolute against the file)                                          (422, workdir)
  - ``public: true`` from a tenant that is not a public-service tenant (the tenant's ``public`` flag, set
    by an admin): the public-use reserve is for public services only                      (403, public)
  - ``kind: training``/``finetuning`` when every allowed type is inference-only
    (``training_capable: false`` in the catalogue, e.g. rngd, warboy)                       (422, resources)
    When some allowed types can train, the inference-only ones are dropped from the job's types and the
    201 answer says so in ``notes``.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace

from accelpool.api.errors import ApiError
from accelpool.core.periods import cut_short, ended, last_pay, pays
from accelpool.core.problem import needs_domestic
from accelpool.core.reasons import duration_words
from accelpool.core.sites import allowed_sites, nowhere_reason, site_table
from accelpool.core.types import DEFAULT_SITE, AcceleratorType, Grant, Job, JobKind, Program
from accelpool.ports import RunSpec
from accelpool.spec.job import JobSpec
from accelpool.storage.sql import SqlStore
from accelpool.storage.unit import Reference


@dataclass(frozen=True)
class Admitted:
    job: Job
    throughput: dict[str, float]
    run: RunSpec
    reserve_krw: int
    notes: tuple[str, ...] = ()


# Job ids are not secrets (others' jobs answer 404 whatever the id): 48 random bits from a generator seeded
# once from the OS, without a getrandom() system call per submission. A clash is refused by the unique key.
_ids = random.Random(secrets.randbits(128))


def new_job_id() -> str:
    return f"j-{_ids.getrandbits(48):012x}"


def relative_speed(acc: AcceleratorType | None) -> float:
    """Estimated steps/s before anything is measured: dense BF16 TFLOPS / 100 (INT8 TOPS / 200 for
    inference-only NPUs), 1.0 when the catalogue has no figure. Measurements replace it."""
    if acc is None:
        return 1.0
    if acc.bf16_tflops_dense:
        return round(acc.bf16_tflops_dense / 100.0, 4)
    if acc.int8_tops_dense:
        return round(acc.int8_tops_dense / 200.0, 4)
    return 1.0


class NeedsHistory(Exception):
    """``admit`` needs to know which of ``grants`` the tenant's jobs were charged to (a store read, which
    ``admit`` does not do itself: it runs on the event loop). Ask ``SqlStore.grants_used`` and call again
    with ``used``; ``admit_now`` does both."""

    def __init__(self, grants: tuple[str, ...]) -> None:
        super().__init__(f"which of {', '.join(grants)} were charged")
        self.grants = grants


def _grant_for(
    ref: Reference, spec: JobSpec, tenant: str, now: float, used: frozenset[str] | None
) -> tuple[Grant, Program | None]:
    grants = ref.grants_by_tenant.get(tenant, [])
    if spec.grant is not None:
        found = [g for g in grants if g.id == spec.grant]
        if not found:
            raise ApiError(422, f"tenant '{tenant}' has no grant '{spec.grant}'", "grant")
        candidates, fld = found, "grant"
    else:
        candidates = [g for g in grants if spec.program is None or g.program == spec.program]
        fld = "program"
        if not candidates:
            what = f"from program '{spec.program}'" if spec.program else "from any program"
            raise ApiError(409, f"tenant '{tenant}' has no grant {what}; a job needs a grant to run", fld)

    def over(g: Grant) -> str | None:  # its period or its program's has ended: never again
        return ended(g, ref.programs.get(g.program), now)

    live = [g for g in candidates if over(g) is None and g.remaining_krw > 0]
    if not live:
        gone = [w for g in candidates if (w := over(g)) is not None]
        if len(candidates) == 1 and gone:
            raise ApiError(409, f"{gone[0]}, so this job could never run", fld)
        raise ApiError(409, "the grant is used up or expired, so this job could never run", fld)
    programs = sorted({g.program for g in live})
    if spec.grant is None and spec.program is None and len(programs) > 1:
        # Where the tenant holds live grants from several programs, a job that names none goes to the one
        # program the tenant's earlier jobs went to, or is refused. Any program's manager may grant to any
        # tenant: a larger grant chosen by default had its manager see (and hold back, by its program's
        # caps) jobs the tenant never meant to charge to it, and refusing every unnamed job let any manager
        # stop a tenant's scripts with a 1 KRW grant.
        mine = [g.id for g in grants if g.program in programs]
        if used is None:
            raise NeedsHistory(tuple(sorted(mine)))
        went = sorted({g.program for g in grants if g.id in used and g.program in programs})
        if len(went) == 1:
            live = [g for g in live if g.program == went[0]]
        else:
            held = "; ".join(
                f"'{p}' ({', '.join(sorted(g.id for g in live if g.program == p))})" for p in programs
            )
            so_far = (
                "none of them has paid for its jobs yet"
                if not went
                else f"its jobs have gone to {len(went)} of them ({', '.join(went)})"
            )
            raise ApiError(
                409,
                f"tenant '{tenant}' holds grants from {len(programs)} programs: {held}, and {so_far}; name "
                f"the one that pays for this job (program: {programs[0]}, or grant: <id>)",
                "program",
            )
    run = spec.max_run_seconds()
    if run is not None and not (spec.preemptible and spec.kind != JobKind.INFERENCE.value):
        # a job that may not be stopped starts only when its whole run fits in its grant's period (and its
        # program's), from when the grant can first pay (core.periods.cut_short; the scheduler blocks one
        # that waited until it no longer fits)
        def short(g: Grant) -> str | None:
            program = ref.programs.get(g.program)
            end = last_pay(g, program)
            first = max(now, g.start, program.start if program is not None else now)
            return None if end is None else cut_short(run, end, first)

        cut = {g.id: short(g) for g in live}
        whole = [g for g in live if cut[g.id] is None]
        if not whole:
            why = "; ".join(dict.fromkeys(str(w) for w in cut.values()))
            inference = spec.kind == JobKind.INFERENCE.value
            kind = "an inference job" if inference else "a job that is not preemptible"
            fixes = "shorten max_run_time" + ("" if inference else ", make it preemptible")
            raise ApiError(
                409,
                f"{why}, before this job's max_run_time ({duration_words(run)}) would end; {kind} may not be "
                f"stopped, so it starts only when its whole run fits in its grant's period: {fixes}, or use a "
                "grant that runs longer",
                "max_run_time",
            )
        live = whole
    # a grant that pays now before one that starts later (the job would wait for it), then the fullest
    grant = max(live, key=lambda g: (pays(g, ref.programs.get(g.program), now), g.remaining_krw, g.id))
    return grant, ref.programs.get(grant.program)


def admit_now(
    store: SqlStore, spec: JobSpec, tenant: str, now: float, catalog: Mapping[str, AcceleratorType]
) -> Admitted:
    """``admit`` for a caller that may wait on the store (not the event loop)."""
    try:
        return admit(store, spec, tenant, now, catalog)
    except NeedsHistory as need:
        return admit(store, spec, tenant, now, catalog, used=store.grants_used(tenant, need.grants))


def admit(
    store: SqlStore,
    spec: JobSpec,
    tenant: str,
    now: float,
    catalog: Mapping[str, AcceleratorType],
    used: frozenset[str] | None = None,
) -> Admitted:
    """No I/O beyond the store's cached reference data (programs, grants, nodes, prices): the money checks
    that must be exact are repeated under the grant's row lock when the job is written. A copy that is
    only old is read again behind (in a thread), so no submission waits on the event loop for the read.

    ``used``: which of the tenant's grants its jobs were charged to, needed only where a job names no
    program and the tenant holds live grants from several: without it, ``NeedsHistory`` is raised."""
    for fld in ("workdir", "checkpoint_dir"):
        path = getattr(spec, fld)
        if path is not None and not path.startswith("/"):
            raise ApiError(
                422,
                f"must be an absolute path (it is '{path}'); a relative one would be read against the "
                "service's working directory. `accelpool submit` makes a job file's relative paths "
                "absolute against the file",
                fld,
            )
    ref = store.reference(read_behind=True)
    if spec.public and tenant not in ref.public_tenants:
        raise ApiError(
            403,
            f"tenant '{tenant}' is not a public-service tenant, so its jobs may not use the public-use "
            "reserve (an admin marks public tenants)",
            "public",
        )
    grant, program = _grant_for(ref, spec, tenant, now, used)
    wanted = spec.allowed_types()
    for i, t in enumerate(wanted):
        if t not in catalog:
            fld = "resources.type" if len(wanted) == 1 else f"resources.{i}"
            raise ApiError(422, f"unknown accelerator type '{t}'", fld)
    nodes = [n for n in ref.nodes if not n.down]
    zone = spec.constraints.zone
    largest_any: dict[str, int] = {}
    for n in nodes:
        largest_any[n.accelerator] = largest_any.get(n.accelerator, 0) + n.devices
    kind = JobKind(spec.kind)
    job = Job(
        id=new_job_id(),
        tenant=tenant,
        kind=kind,
        scale=spec.count(),
        allowed=frozenset(wanted),
        domestic_only=spec.constraints.domestic_only,
        min_memory_gb=spec.min_memory_gb(),
        zone=zone,
        priority=spec.priority,
        grant=grant.id,
        public=spec.public,
        total_steps=spec.steps,
        submit_time=now,
        max_run_seconds=spec.max_run_seconds(),
        job_type=spec.name,
        preemptible=spec.preemptible,
        restart_seconds=spec.restart_seconds,
        data_class=spec.constraints.data_class,
        sites=frozenset(spec.constraints.sites or ()),
        regions=frozenset(spec.constraints.regions or ()),
        with_image=spec.image is not None,
        faster_type=spec.faster_type,
    )
    # Sites: refuse a job no registered site could ever take (a site that is down now may come back).
    site_rows = site_table(replace(s, down=False) for s in getattr(ref, "sites", ()))
    if not allowed_sites(job, site_rows):
        unknown = sorted(job.sites - site_rows.keys())
        if unknown and not (job.sites & site_rows.keys()):  # a typo, not a certification
            raise ApiError(
                422,
                f"no site {', '.join(repr(u) for u in unknown)} (sites: {', '.join(sorted(site_rows))})",
                "constraints.sites",
            )
        raise ApiError(422, f"no site may run it: {nowhere_reason(job, site_rows)}", "constraints.data_class")
    if zone is not None and not any(n.zone == zone for n in nodes):
        zones = sorted({n.zone for n in nodes})
        raise ApiError(422, f"no node is in zone '{zone}' (zones: {', '.join(zones)})", "constraints.zone")
    # a gang runs at one site: the capacity that counts is the largest of one allowed site (in the zone)
    ok_sites = allowed_sites(job, site_rows)
    per_site: dict[tuple[str, str], int] = {}
    for n in nodes:
        site = getattr(n, "site", DEFAULT_SITE)
        if site in ok_sites and (zone is None or n.zone == zone):
            per_site[n.accelerator, site] = per_site.get((n.accelerator, site), 0) + n.devices
    cap: dict[str, int] = {}
    for (t, _site), k in per_site.items():
        cap[t] = max(cap.get(t, 0), k)
    types = [t for t in (wanted or sorted(catalog)) if t in largest_any]
    if not types:
        raise ApiError(
            422,
            f"none of {wanted or 'the types'} is in the pool (pool has {sorted(largest_any)})",
            "resources",
        )
    if needs_domestic(job, program):
        asked = types
        types = [t for t in types if t in catalog and catalog[t].domestic]
        if not types:
            which = (
                f"none of the types it asks for ({', '.join(asked)}) is a Korean NPU"
                if wanted
                else "no Korean NPU type is in the pool"
            )
            if job.domestic_only:
                raise ApiError(422, f"domestic_only: {which}", "constraints.domestic_only")
            assert program is not None
            raise ApiError(
                422,
                f"a public inference job of program '{program.id}' runs only on Korean NPUs (its rule "
                f"public_services_domestic_only): {which}",
                "public",
            )
    if job.min_memory_gb is not None:
        types = [t for t in types if t in catalog and (catalog[t].memory_gb or 0) >= job.min_memory_gb]
        if not types:
            raise ApiError(
                422, f"no type in the pool has at least {job.min_memory_gb} GB", "resources.min_memory_gb"
            )
    notes: list[str] = []
    if kind in (JobKind.TRAINING, JobKind.FINETUNING):
        trainable = [t for t in types if t not in catalog or catalog[t].training_capable]
        if not trainable:
            raise ApiError(
                422,
                f"a {kind.value} job needs a training-capable type; {', '.join(types)} "
                f"{'is' if len(types) == 1 else 'are'} inference-only",
                "resources",
            )
        dropped = [t for t in types if t not in trainable]
        if dropped and wanted:
            notes.append(f"inference-only types dropped from this {kind.value} job: {', '.join(dropped)}")
            job = replace(job, allowed=frozenset(t for t in wanted if t not in dropped))
        types = trainable
    fits = [t for t in types if cap.get(t, 0) >= job.scale]
    if not fits:
        most = max((cap.get(t, 0) for t in types), default=0)
        where = f" in zone '{zone}'" if zone else ""
        raise ApiError(
            422,
            f"asks for {job.scale} devices; the most any allowed type has{where} is {most}",
            "resources.count",
        )
    if program is not None:
        rules = program.rules
        capped = [t for t in fits if (c := rules.cap_for(t)) is None or c >= job.scale]
        if not capped:
            raise ApiError(
                409,
                f"program '{program.id}' caps each tenant below {job.scale} devices of {', '.join(fits)}",
                "resources.count",
            )
        fits = capped
        limit = program.rules.max_contract_seconds
        if limit is not None and job.max_run_seconds is not None and job.max_run_seconds > limit:
            raise ApiError(409, f"longer than program '{program.id}' allows ({limit:.0f} s)", "max_run_time")
    prices = ref.prices
    reserve = 0
    if job.max_run_seconds is not None:
        reserve = min(
            math.ceil(job.scale * int(prices.get(t, 0)) * job.max_run_seconds / 3600.0) for t in fits
        )
        if reserve > grant.remaining_krw:
            raise ApiError(
                409,
                f"max_run_time would cost at least {reserve} KRW; grant '{grant.id}' has "
                f"{grant.remaining_krw} KRW left",
                "max_run_time",
            )
    throughput = {t: relative_speed(catalog.get(t)) for t in fits}
    run = RunSpec(
        command=spec.command,
        env=dict(spec.env),
        workdir=spec.workdir,
        checkpoint_dir=spec.checkpoint_dir,
        grace_seconds=spec.grace_seconds,
        image=spec.image,
        limits=spec.limits.as_dict(),
    )
    return Admitted(job, throughput, run, reserve, tuple(notes))

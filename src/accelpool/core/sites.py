"""Where a job may run: sites certified for its data class, in the sites and regions it names, and up.

The rule is written once here; placement (core/rounds.py), admission (api/) and the simulator use it.

    allowed(job) = { s in sites : not s.down
                                  and job.data_class in s.data_classes
                                  and (job.sites empty or s.id in job.sites)
                                  and (job.regions empty or s.region in job.regions)
                                  and (not job.with_image or s.executor runs images) }

Executors that run images (``IMAGE_EXECUTORS``): local, ray (podman on the node) and fake; a Slurm site
refuses them (docs/executors.md), so a job with an image is never placed there.

Nodes without a site are at the implicit site ``default``, certified for ``public`` data only (unless a
site of that id is registered): a pool that predates sites keeps running public jobs, and a job declaring
personal, financial or public-sector data runs nowhere until a certified site is registered.
Prices: a site's own price for a type wins over the pool's price for that type (``price_for``).

What the policy sees (``site_view``): the allocation problem is per type; sites narrow it before the policy
runs, so that a policy never gives a job time it could not use and a cost-aware policy sees what a type
really costs:

    reach[j,t]  = max over s in allowed(j) of devices of type t at s       (a gang runs at one site)
    allowed[j,t] &= reach[j,t] >= scale[j]
    price[t]    = min over up sites s holding type t of price_for(s, t)    (the cheapest place to run t)

Where a type is held at two or more sites, the policy solves ``site_columns``'s problem instead: one
column per (site, type), each with that site's devices, that site's price, and open only to the jobs that
site is allowed for and can hold whole; its allocation is summed back per type, and placement puts each
chosen job at the site the policy gave it (if that site still has room for the gang), else at the cheapest
allowed site with room. A type's program rules (public reserve, quota, tenant or program cap) are rows
over all of its site columns, so they bind the type summed over its sites; for the water-filling policies
(max-min-fairness, finish-time-fairness), whose stages read one column per row, a type such a rule binds
stays one column over its sites instead (``rules_span``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from accelpool.core.allocation import Allocation, AllocationProblem, BoolArray, IntArray
from accelpool.core.types import DATA_CLASSES, DEFAULT_SITE, Job, Node, Site

IMPLICIT_DEFAULT = Site(DEFAULT_SITE)

CONNECTION_KEYS: tuple[tuple[str, frozenset[str]], ...] = (
    ("local", frozenset({"state_dir"})),
    ("slurm", frozenset({"slurm_conf", "partition", "bin_dir", "state_dir", "instance"})),
    ("ray", frozenset({"address", "namespace"})),
    ("fake", frozenset()),
)
"""The ``Site.connection`` keys each executor kind understands (docs/sites.md; service/sites.py)."""


def connection_problem(executor: str, connection: Mapping[str, str]) -> str | None:
    """Why ``connection`` cannot drive an ``executor`` site, in words; None when it can."""
    keys = dict(CONNECTION_KEYS)
    if executor not in keys:
        return f"unknown executor '{executor}' (one of {', '.join(keys)})"
    unknown = sorted(set(connection) - keys[executor])
    if unknown:
        allowed = ", ".join(sorted(keys[executor])) or "none"
        return f"connection keys {', '.join(unknown)} mean nothing to a {executor} executor (keys: {allowed})"
    return None


def second_ray_site(site_id: str, executor: str, sites: Iterable[Site]) -> str | None:
    """Why ``site_id`` may not be driven by Ray, in words (None when it may): one scheduler process drives
    at most one Ray cluster, because Ray's client is process-wide (``ray.init`` connects the whole process
    to one cluster; a second executor would silently run its jobs on the first cluster)."""
    if executor != "ray":
        return None
    other = sorted(s.id for s in sites if s.executor == "ray" and s.id != site_id)
    if not other:
        return None
    return (
        f"site {other[0]} is driven by Ray already, and one scheduler drives one Ray cluster (Ray's client is "
        f"process-wide): register this cluster's nodes under site {other[0]}, or drive it with another "
        "executor (slurm, local)"
    )


def site_table(sites: Iterable[Site]) -> dict[str, Site]:
    """Sites by id, with the implicit ``default`` site (public data only) unless one is registered under that
    id: nodes registered before sites existed stay in the pool."""
    out = {s.id: s for s in sites}
    out.setdefault(DEFAULT_SITE, IMPLICIT_DEFAULT)
    return out


IMAGE_EXECUTORS = frozenset({"local", "ray", "fake"})
"""Executor kinds that run a job in its OCI image (podman); a Slurm site refuses such jobs."""


def allowed_sites(job: Job, sites: Mapping[str, Site]) -> frozenset[str]:
    """Ids of the sites ``job`` may run on now (see the module docstring)."""
    return frozenset(
        s.id
        for s in sites.values()
        if not s.down
        and job.data_class in s.data_classes
        and (not job.sites or s.id in job.sites)
        and (not job.regions or s.region in job.regions)
        and (not job.with_image or s.executor in IMAGE_EXECUTORS)
    )


def nowhere_reason(job: Job, sites: Mapping[str, Site]) -> str:
    """Why no site is allowed for ``job``, in words (call when ``allowed_sites`` is empty)."""
    if job.data_class not in DATA_CLASSES:
        return f"unknown data class '{job.data_class}' (one of {', '.join(DATA_CLASSES)})"
    certified = [s for s in sites.values() if job.data_class in s.data_classes]
    if not certified:
        return f"no site is certified for {job.data_class} data"
    named = [s for s in certified if not job.sites or s.id in job.sites]
    if not named:
        return (
            f"none of the sites it names ({', '.join(sorted(job.sites))}) is certified for {job.data_class} "
            f"data (certified: {', '.join(sorted(s.id for s in certified))})"
        )
    in_region = [s for s in named if not job.regions or s.region in job.regions]
    if not in_region:
        where = ", ".join(sorted(f"{s.id} ({s.region or 'no region'})" for s in named))
        return (
            f"no site certified for {job.data_class} data is in region {', '.join(sorted(job.regions))} "
            f"(certified: {where})"
        )
    if job.with_image and not any(s.executor in IMAGE_EXECUTORS for s in in_region):
        where = ", ".join(sorted(f"{s.id} ({s.executor})" for s in in_region))
        return f"it runs in an image, and no site it may use runs images (Slurm sites do not): {where}"
    ready = [s for s in in_region if not job.with_image or s.executor in IMAGE_EXECUTORS]
    return f"every site it may use is down: {', '.join(sorted(s.id for s in ready))}"


AT_DOWN_SITE = "at a site that is down"


def in_service(
    nodes: Iterable[Node], down: Mapping[str, str | None], sites: Iterable[Site]
) -> tuple[tuple[Node, ...], tuple[Node, ...], dict[str, str]]:
    """(nodes in service, nodes out of service, why each node out is out where known): a node is out while
    it is down (``down``: name -> its cause, "drained" or "lost", None when not said) or at a site that is
    down. Both stores build a snapshot's ``nodes``, ``nodes_down`` and ``down_causes`` with it."""
    gone = {s.id for s in sites if s.down}
    up: list[Node] = []
    out: list[Node] = []
    causes: dict[str, str] = {}
    for n in nodes:
        if n.name in down or n.site in gone:
            out.append(n)
            cause = down[n.name] if n.name in down else AT_DOWN_SITE
            if cause:
                causes[n.name] = cause
        else:
            up.append(n)
    return tuple(up), tuple(out), causes


def probed(site: Site, down: bool) -> Site | None:
    """The site once its controller's health says ``down`` (or up), None when that changes nothing: a site
    an operator took out (``held``) stays down whatever its health; only the operator brings it up."""
    if site.down == down or (site.held and not down):
        return None
    return dataclasses.replace(site, down=down)


def price_for(prices: Mapping[str, int], site: Site | None, accelerator: str) -> int:
    """KRW per device-hour of ``accelerator`` at ``site``: the site's own price, else the pool's."""
    if site is not None and accelerator in site.prices:
        return int(site.prices[accelerator])
    return int(prices.get(accelerator, 0))


def sites_allowing(
    jobs: Sequence[Job], sites: Mapping[str, Site]
) -> tuple[list[frozenset[str]], dict[str, str]]:
    """Each job's allowed sites (in order), and the reason in words for each job no site allows."""
    memo: dict[tuple[str, frozenset[str], frozenset[str], bool], frozenset[str]] = {}
    allowed: list[frozenset[str]] = []
    notes: dict[str, str] = {}
    for j in jobs:
        key = (j.data_class, j.sites, j.regions, j.with_image)
        a = memo.get(key)
        if a is None:
            a = memo[key] = allowed_sites(j, sites)
        allowed.append(a)
        if not a:
            notes[j.id] = nowhere_reason(j, sites)
    return allowed, notes


def _site_groups(allowed: Sequence[frozenset[str]]) -> tuple[dict[frozenset[str], int], IntArray]:
    """The distinct sets of allowed sites (set -> group number) and each job's group: per-site work is done
    once per group, not once per job."""
    keys: dict[frozenset[str], int] = {}
    index = np.array([keys.setdefault(a, len(keys)) for a in allowed], dtype=np.int64)
    return keys, index


def _one_site(nodes: Sequence[Node]) -> str | None:
    """The one site every node is at (``default`` for no nodes); None when nodes are at several sites.
    Checked first every round: a pool of one site (the simulator's, most pools) skips the per-site work."""
    if not nodes:
        return DEFAULT_SITE
    first = nodes[0].site
    for n in nodes:
        if n.site != first:
            return None
    return first


def one_plain_site(
    allowed: Sequence[frozenset[str]], nodes: Sequence[Node], sites: Mapping[str, Site]
) -> bool:
    """True when one site holds every node, it has no prices of its own and every job is allowed there:
    ``site_view`` then returns the problem as it is (it reads nothing else for this test)."""
    only = _one_site(nodes)
    if only is None or sites.get(only, IMPLICIT_DEFAULT).prices:
        return False
    return all(only in a for a in set(allowed))


def site_view(
    problem: AllocationProblem,
    allowed: Sequence[frozenset[str]],
    nodes: Iterable[Node],
    sites: Mapping[str, Site],
    prices: Mapping[str, int],
) -> AllocationProblem:
    """The allocation problem narrowed by the sites (see the module docstring): types a job cannot use at
    any one allowed site are taken out of its row, and each type costs its cheapest up site's price.
    Returns ``problem`` itself when sites change nothing (one site holding every node, no site prices,
    every job allowed there)."""
    seq: Sequence[Node] = nodes if isinstance(nodes, tuple | list) else list(nodes)
    nodes = seq
    if one_plain_site(allowed, seq, sites):  # the common pool of one site: nothing to narrow
        return problem
    types = problem.types
    tindex = {t: k for k, t in enumerate(types)}
    held: dict[str, np.ndarray] = {}  # site -> devices per type
    for n in nodes:
        k = tindex.get(n.accelerator)
        if k is None:
            continue
        row = held.get(n.site)
        if row is None:
            row = held[n.site] = np.zeros(len(types))
        row[k] += n.devices
    keys, index = _site_groups(allowed)
    where = list(held)
    if len(where) <= 1 and not any(sites.get(s, IMPLICIT_DEFAULT).prices for s in where):
        if all(set(where) <= a for a in keys):
            return problem
    reach = np.zeros((len(keys), len(types)))
    for a, i in keys.items():
        for s in a:
            row = held.get(s)
            if row is not None:
                np.maximum(reach[i], row, out=reach[i])
    fits = reach[index] >= problem.scale[:, None] if len(allowed) else np.zeros(problem.allowed.shape, bool)
    price = problem.price_krw_per_hour.copy()
    for k, t in enumerate(types):
        at = [price_for(prices, sites.get(s), t) for s, row in held.items() if row[k] > 0]
        if at:
            price[k] = min(at)
    return dataclasses.replace(problem, allowed=problem.allowed & fits, price_krw_per_hour=price)


@dataclass(frozen=True, eq=False)
class SiteColumns:
    """The policy's problem with a column per (site, type) where a type is held at several sites.

    ``problem``: its columns are ``column_type[c]`` (an index into the per-type problem's types) at site
    ``column_site[c]`` ("" for a column that pools all the sites of its type, see ``site_columns``)."""

    problem: AllocationProblem
    column_type: IntArray
    column_site: tuple[str, ...]

    def collapse(
        self, wide: Allocation, types: tuple[str, ...]
    ) -> tuple[Allocation, dict[tuple[int, str], str]]:
        """The per-type allocation (x[j,t] = sum over t's site columns) and, for each (job index, type) the
        policy gave time at a site, the site it gave the most (placement tries it first)."""
        n = wide.x.shape[0]
        x = np.zeros((n, len(types)))
        np.add.at(x.T, self.column_type, wide.x.T)
        prefer: dict[tuple[int, str], str] = {}
        best: dict[tuple[int, str], float] = {}
        rows, cols = np.nonzero(wide.x > 1e-9)
        for i, c in zip(rows.tolist(), cols.tolist(), strict=True):
            site = self.column_site[c]
            if site:
                key = (i, types[int(self.column_type[c])])
                if wide.x[i, c] > best.get(key, 0.0):
                    best[key], prefer[key] = float(wide.x[i, c]), site
        typed = dataclasses.replace(wide, types=types, x=x)
        return typed, prefer


def _rule_bound(problem: AllocationProblem) -> BoolArray:
    """Types a program rule binds (a public reserve, a quota, a tenant or program cap below the type's
    capacity): rows over all of a type's devices, so such a type stays one column across its sites."""
    cap = problem.capacity
    bound: BoolArray = problem.public_reserve > 0
    if problem.quota.size:
        bound = bound | (problem.quota > 0).any(axis=0)
    if problem.tenant_cap.size:
        bound = bound | (problem.tenant_cap < cap[None, :]).any(axis=0)
    if problem.cap_limit.size:
        bound = bound | (problem.cap_limit < cap[None, :]).any(axis=0)
    return bound


def site_columns(
    problem: AllocationProblem,
    allowed: Sequence[frozenset[str]],
    nodes: Iterable[Node],
    sites: Mapping[str, Site],
    prices: Mapping[str, int],
    *,
    rules_span: bool = False,
) -> SiteColumns | None:
    """The policy's view of the sites: ``problem`` (the per-type view of ``site_view``) with each type held
    at two or more sites split into one column per site, each with that site's devices (capacity), that
    site's price, and open to a job only where the site is allowed for it and holds its whole gang:

        cap[t@s]       = devices of type t at site s
        price[t@s]     = price_for(s, t)
        allowed[j,t@s] = allowed[j,t] and s in allowed(j) and cap[t@s] >= scale[j]

    so a policy never counts on devices of one site for a gang another site must hold, and each job sees
    the prices of the sites it may use. The columns of one type are one group (``column_group``): its
    program rules (public reserve, quota, tenant and program caps) are rows over the group's columns, so
    they bind the type summed over its sites, as before (core/policies/_rules.py).

    ``rules_span``: the policy's solver reads rows over several columns (``core.policies.RULES_OVER_SITES``).
    When False, a type a program rule binds (``_rule_bound``) keeps one column over its sites, at the
    cheapest site's price (no shipped policy asks for this now). A type at one site keeps one column. None when no
    column splits (one site, or every type at one site): the policy solves ``problem`` itself."""
    seq: Sequence[Node] = nodes if isinstance(nodes, tuple | list) else list(nodes)
    nodes = seq
    if _one_site(seq) is not None:
        return None
    tindex = {t: k for k, t in enumerate(problem.types)}
    held: dict[tuple[int, str], int] = {}
    for n in nodes:
        kn = tindex.get(n.accelerator)
        if kn is not None:
            held[kn, n.site] = held.get((kn, n.site), 0) + n.devices
    at: dict[int, list[str]] = {}
    for k, s in sorted(held):
        at.setdefault(k, []).append(s)
    split = [k for k, ss in at.items() if len(ss) > 1]
    if not split:
        return None
    if not rules_span:
        bound = _rule_bound(problem)
        split = [k for k in split if not bound[k]]
        if not split:
            return None
    names = problem.types
    col_type: list[int] = []
    col_site: list[str] = []
    for k in range(problem.n_types):
        # cheapest site first: a policy blind to prices, choosing among equal columns, takes the cheapest
        name = names[k]
        here = sorted(at[k], key=lambda s: (price_for(prices, sites.get(s), name), s)) if k in split else [""]
        for s in here:
            col_type.append(k)
            col_site.append(s)
    ct = np.array(col_type, dtype=np.int64)
    keys, index = _site_groups(allowed)
    site_ids = sorted({s for s in col_site if s})
    ok_site = np.array([[s in a for s in site_ids] for a in keys], dtype=bool).reshape(
        len(keys), len(site_ids)
    )
    capacity = problem.capacity[ct].copy()
    price = problem.price_krw_per_hour[ct].copy()
    allowed_wide = problem.allowed[:, ct].copy()
    for c, (k, s) in enumerate(zip(col_type, col_site, strict=True)):
        if not s:
            continue
        capacity[c] = held[k, s]
        price[c] = price_for(prices, sites.get(s), problem.types[k])
        opened = ok_site[index, site_ids.index(s)] if len(allowed) else np.zeros(0, dtype=bool)
        allowed_wide[:, c] &= opened & (problem.scale <= capacity[c])
    labels = tuple(f"{names[k]}@{s}" if s else names[k] for k, s in zip(col_type, col_site, strict=True))
    wide = dataclasses.replace(
        problem,
        types=labels,
        capacity=capacity,
        throughput=problem.throughput[:, ct],
        allowed=allowed_wide,
        quota=problem.quota[:, ct] if problem.quota.size else problem.quota,
        tenant_cap=problem.tenant_cap[:, ct],
        cap_limit=problem.cap_limit[:, ct],
        public_reserve=problem.public_reserve[ct],
        price_krw_per_hour=price,
        column_group=ct,
    )
    return SiteColumns(wide, ct, tuple(col_site))

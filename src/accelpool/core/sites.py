"""Where a job may run: sites certified for its data class, in the sites and regions it names, and up.

The rule is written once here; placement (core/rounds.py), admission (api/) and the simulator use it.

    allowed(job) = { s in sites : not s.down
                                  and job.data_class in s.data_classes
                                  and (job.sites empty or s.id in job.sites)
                                  and (job.regions empty or s.region in job.regions) }

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

Placement (core/rounds.py) then puts each chosen job at the cheapest allowed site with room for its gang,
at that site's price. The capacity of a type stays the sum over its sites (a per-site capacity row is not
in the policies' problem: two gangs allotted a type whose only allowed site holds one of them wait, one with
reason capacity).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from accelpool.core.allocation import AllocationProblem
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


def site_table(sites: Iterable[Site]) -> dict[str, Site]:
    """Sites by id, with the implicit ``default`` site (public data only) unless one is registered under that
    id: nodes registered before sites existed stay in the pool."""
    out = {s.id: s for s in sites}
    out.setdefault(DEFAULT_SITE, IMPLICIT_DEFAULT)
    return out


def allowed_sites(job: Job, sites: Mapping[str, Site]) -> frozenset[str]:
    """Ids of the sites ``job`` may run on now (see the module docstring)."""
    return frozenset(
        s.id
        for s in sites.values()
        if not s.down
        and job.data_class in s.data_classes
        and (not job.sites or s.id in job.sites)
        and (not job.regions or s.region in job.regions)
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
    return f"every site it may use is down: {', '.join(sorted(s.id for s in in_region))}"


def price_for(prices: Mapping[str, int], site: Site | None, accelerator: str) -> int:
    """KRW per device-hour of ``accelerator`` at ``site``: the site's own price, else the pool's."""
    if site is not None and accelerator in site.prices:
        return int(site.prices[accelerator])
    return int(prices.get(accelerator, 0))


def sites_allowing(jobs: Sequence[Job], sites: Mapping[str, Site]) -> tuple[list[frozenset[str]], dict[str, str]]:
    """Each job's allowed sites (in order), and the reason in words for each job no site allows."""
    memo: dict[tuple[str, frozenset[str], frozenset[str]], frozenset[str]] = {}
    allowed: list[frozenset[str]] = []
    notes: dict[str, str] = {}
    for j in jobs:
        key = (j.data_class, j.sites, j.regions)
        a = memo.get(key)
        if a is None:
            a = memo[key] = allowed_sites(j, sites)
        allowed.append(a)
        if not a:
            notes[j.id] = nowhere_reason(j, sites)
    return allowed, notes


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
    keys: dict[frozenset[str], int] = {}
    index = np.array([keys.setdefault(a, len(keys)) for a in allowed], dtype=np.int64)
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

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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from accelpool.core.types import DATA_CLASSES, DEFAULT_SITE, Job, Site

IMPLICIT_DEFAULT = Site(DEFAULT_SITE)

CONNECTION_KEYS: Mapping[str, frozenset[str]] = {
    "local": frozenset({"state_dir"}),
    "slurm": frozenset({"slurm_conf", "partition", "bin_dir", "state_dir", "instance"}),
    "ray": frozenset({"address", "namespace"}),
    "fake": frozenset(),
}
"""The ``Site.connection`` keys each executor kind understands (docs/sites.md; service/sites.py)."""


def connection_problem(executor: str, connection: Mapping[str, str]) -> str | None:
    """Why ``connection`` cannot drive an ``executor`` site, in words; None when it can."""
    if executor not in CONNECTION_KEYS:
        return f"unknown executor '{executor}' (one of {', '.join(CONNECTION_KEYS)})"
    unknown = sorted(set(connection) - CONNECTION_KEYS[executor])
    if unknown:
        allowed = ", ".join(sorted(CONNECTION_KEYS[executor])) or "none"
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

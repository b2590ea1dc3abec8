"""The sites aggregate: operators' clusters (register, change, mark down/up). Nodes name their site."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy import insert, select, update

from accelpool.core.sites import probed
from accelpool.core.types import Site
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.unit import UnitOfWork


def _site_row(s: Site) -> dict[str, Any]:
    return {
        "operator": s.operator,
        "region": s.region,
        "data_classes": sorted(s.data_classes),
        "executor": s.executor,
        "connection": dict(s.connection),
        "prices": {k: int(v) for k, v in s.prices.items()},
        "down": s.down,
        "down_by": s.down_by or None,
        "down_at": s.down_at,
        "down_reason": s.down_reason or None,
    }


class SiteWrites(UnitOfWork):
    def add_sites(self, sites: Iterable[Site]) -> None:
        """Create or replace sites."""
        with self.write() as c:
            for site in sites:
                row = _site_row(site)
                if c.execute(update(T.sites).where(T.sites.c.id == site.id).values(**row)).rowcount == 0:
                    c.execute(insert(T.sites).values(id=site.id, **row))
        self.invalidate()

    def create_site(self, site: Site) -> None:
        """Insert a site; Conflict (field ``id``) when one of that id exists."""
        self._insert_new(T.sites, T.sites.c.id, site.id, _site_row(site), "site")

    def update_site(self, site_id: str, **changes: Any) -> Site | None:
        """Change a site's fields (operator, region, data_classes, executor, connection, prices, down).
        None when there is no such site."""
        with self.write() as c:
            r = self._lock_row(c, T.sites, T.sites.c.id, site_id)
            if r is None:
                return None
            site = replace(codec.site_from_row(r), **changes)
            c.execute(update(T.sites).where(T.sites.c.id == site_id).values(**_site_row(site)))
        self.invalidate()
        return site

    def set_site_down(self, site_id: str, down: bool = True) -> None:
        """A site whose controller stops answering (or answers again): its nodes leave the pool until it
        returns. A site an operator took out (``down_by`` set) stays down: only the operator brings it up."""
        with self.write() as c:
            r = self._lock_row(c, T.sites, T.sites.c.id, site_id)
            after = (
                None if r is None else probed(codec.site_from_row(r), down)
            )  # core.sites.probed: held stays down
            if after is not None:
                c.execute(update(T.sites).where(T.sites.c.id == site_id).values(down=after.down))
        self.invalidate()

    def sites(self) -> list[Site]:
        with self.read() as c:
            return [codec.site_from_row(r) for r in c.execute(select(T.sites).order_by(T.sites.c.id))]

"""The identity aggregate: tenants (set-up, create, update). Tokens: storage/queries.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update

from accelpool.core.types import Tenant
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.unit import UnitOfWork, _tenant_row


class IdentityWrites(UnitOfWork):
    def add_tenant(self, tenant: Tenant) -> None:
        row = _tenant_row(tenant)
        with self.write() as c:
            if c.execute(update(T.tenants).where(T.tenants.c.id == tenant.id).values(**row)).rowcount == 0:
                c.execute(insert(T.tenants).values(id=tenant.id, **row))
        self.invalidate()

    def create_tenant(self, tenant: Tenant) -> None:
        """Insert a tenant; Conflict (field ``id``) when the id exists."""
        self._insert_new(T.tenants, T.tenants.c.id, tenant.id, _tenant_row(tenant), "tenant")

    def update_tenant(
        self,
        tenant_id: str,
        *,
        name: str | None = None,
        weight: float | None = None,
        quota: Mapping[str, int] | None = None,
        public: bool | None = None,
    ) -> Tenant | None:
        """Change the fields given; None when there is no such tenant."""
        row: dict[str, Any] = {}
        if name is not None:
            row["name"] = name
        if weight is not None:
            row["weight"] = weight
        if quota is not None:
            row["quota"] = dict(quota)
        if public is not None:
            row["public"] = public
        with self.write() as c:
            if row:
                c.execute(update(T.tenants).where(T.tenants.c.id == tenant_id).values(**row))
            r = c.execute(select(T.tenants).where(T.tenants.c.id == tenant_id)).first()
        self.invalidate()
        return None if r is None else codec.tenant_from_row(r)

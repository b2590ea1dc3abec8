"""The money aggregate's set-up and administration: prices, programs and grants (budgets checked under
the program's or grant's row lock). What jobs cost is booked by storage/jobs.py through core.ledger."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from accelpool.core import ledger
from accelpool.core.errors import AlreadyExists, MissingReference
from accelpool.core.types import Grant, Program
from accelpool.storage import codec
from accelpool.storage import tables as T
from accelpool.storage.unit import UnitOfWork, _program_row


class MoneyWrites(UnitOfWork):
    def set_prices(self, prices: Mapping[str, int]) -> None:
        with self.write() as c:
            for acc, krw in prices.items():
                q = update(T.prices).where(T.prices.c.accelerator == acc).values(krw_per_device_hour=int(krw))
                if c.execute(q).rowcount == 0:
                    c.execute(insert(T.prices).values(accelerator=acc, krw_per_device_hour=int(krw)))
        self.invalidate()

    def add_program(self, program: Program) -> None:
        row = _program_row(program)
        with self.write() as c:
            if c.execute(update(T.programs).where(T.programs.c.id == program.id).values(**row)).rowcount == 0:
                c.execute(insert(T.programs).values(id=program.id, **row))
        self.invalidate()

    def add_grant(self, grant: Grant) -> None:
        """Create or replace a grant. Creates the tenant row if it does not exist yet."""
        with self.write() as c:
            if c.execute(select(T.tenants.c.id).where(T.tenants.c.id == grant.tenant)).first() is None:
                c.execute(
                    insert(T.tenants).values(
                        id=grant.tenant, name=grant.tenant, weight=1.0, quota={}, public=False
                    )
                )
            row = {
                "program": grant.program,
                "tenant": grant.tenant,
                "amount_krw": int(grant.amount_krw),
                "spent_krw": int(grant.spent_krw),
                "start": grant.start,
                "end": grant.end,
            }
            if c.execute(update(T.grants).where(T.grants.c.id == grant.id).values(**row)).rowcount == 0:
                c.execute(insert(T.grants).values(id=grant.id, **row))
        self.invalidate()

    def create_program(self, program: Program) -> None:
        """Insert a program; Conflict (field ``id``) when the id exists (its budget, rules and dates are
        never reset by a second create)."""
        self._insert_new(T.programs, T.programs.c.id, program.id, _program_row(program), "program")

    def _granted(self, c: Connection, program: str, but: str | None = None) -> int:
        q = select(func.coalesce(func.sum(T.grants.c.amount_krw), 0)).where(T.grants.c.program == program)
        if but is not None:
            q = q.where(T.grants.c.id != but)
        return int(c.execute(q).scalar_one())

    def update_program(
        self,
        program_id: str,
        *,
        name: str | None = None,
        budget_krw: int | None = None,
        end: float | None = None,
        rules: Any = None,
        rules_from: Callable[[Any], Any] | None = None,
    ) -> Program | None:
        """Change the fields given, under the program row's lock. A budget below what the program has
        already granted is refused (Conflict, field ``budget_krw``); an end at or before the start too
        (field ``end``). ``rules_from``: the new rules made from the rules as they stand under the lock (a
        change that keeps some of them keeps today's values, not those of an earlier read; what it raises
        leaves the program as it was). None when there is no such program."""
        with self.write() as c:
            r = self._lock_row(c, T.programs, T.programs.c.id, program_id)
            if r is None:
                return None
            row: dict[str, Any] = {}
            if name is not None:
                row["name"] = name
            if budget_krw is not None:
                ledger.check_budget(program_id, budget_krw, self._granted(c, program_id))
                row["budget_krw"] = int(budget_krw)
            if end is not None:
                ledger.check_ends_after(float(r.start), end, "program")
                row["end"] = end
            if rules_from is not None:
                rules = rules_from(codec.program_from_row(r).rules)
            if rules is not None:
                row["rules"] = codec.rules_to_dict(rules)
            if row:
                c.execute(update(T.programs).where(T.programs.c.id == program_id).values(**row))
            r = c.execute(select(T.programs).where(T.programs.c.id == program_id)).first()
        self.invalidate()
        return codec.program_from_row(r)

    def create_grant(self, grant: Grant) -> Grant:
        """Insert a grant (spent 0) from its program's budget. The budget check and the insert are one
        transaction under the program row's lock, so concurrent grants cannot together over-grant it.
        Conflict: the id exists (field ``id``), or the budget has too little left (``amount_krw``).
        NotFound-like Conflict (field ``program``) when the program does not exist."""
        try:
            with self.write() as c:
                p = self._lock_row(c, T.programs, T.programs.c.id, grant.program)
                if p is None:
                    raise MissingReference(f"no program '{grant.program}'", "program")
                if c.execute(select(T.grants.c.id).where(T.grants.c.id == grant.id)).first() is not None:
                    raise AlreadyExists(f"grant '{grant.id}' already exists", "id")
                if c.execute(select(T.tenants.c.id).where(T.tenants.c.id == grant.tenant)).first() is None:
                    raise MissingReference(f"no tenant '{grant.tenant}'", "tenant")
                left = int(p.budget_krw) - self._granted(c, grant.program)
                ledger.check_grant_fits(grant.program, grant.amount_krw, left)
                c.execute(
                    insert(T.grants).values(
                        id=grant.id,
                        program=grant.program,
                        tenant=grant.tenant,
                        amount_krw=int(grant.amount_krw),
                        spent_krw=0,
                        start=grant.start,
                        end=grant.end,
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"grant '{grant.id}' already exists", "id") from exc
        self.invalidate()
        return Grant(grant.id, grant.program, grant.tenant, int(grant.amount_krw), 0, grant.start, grant.end)

    def update_grant(
        self, grant_id: str, *, amount_krw: int | None = None, end: float | None = None
    ) -> Grant | None:
        """Change a grant's amount and/or end, never its program, tenant or spent amount. Under the locks of
        its program row and its own row: the amount stays within the program's budget (beside its other
        grants) and never below what is spent and held by active jobs. None when there is no such grant."""
        with self.write() as c:
            g0 = c.execute(select(T.grants.c.program).where(T.grants.c.id == grant_id)).first()
            if g0 is None:
                return None
            p = self._lock_row(c, T.programs, T.programs.c.id, g0.program)
            g = self._lock_row(c, T.grants, T.grants.c.id, grant_id)
            row: dict[str, Any] = {}
            if amount_krw is not None:
                used = int(g.spent_krw) + int(
                    c.execute(
                        select(func.coalesce(func.sum(T.jobs.c.reserved_krw), 0)).where(
                            T.jobs.c.grant_id == grant_id, T.jobs.c.active.is_(True)
                        )
                    ).scalar_one()
                )
                ledger.check_grant_amount(grant_id, amount_krw, used)
                left = int(p.budget_krw) - self._granted(c, g.program, but=grant_id)
                ledger.check_grant_fits(g.program, amount_krw, left, change=True)
                row["amount_krw"] = int(amount_krw)
            if end is not None:
                ledger.check_ends_after(float(g.start), end, "grant")
                row["end"] = end
            if row:
                c.execute(update(T.grants).where(T.grants.c.id == grant_id).values(**row))
            r = c.execute(select(T.grants).where(T.grants.c.id == grant_id)).first()
        self.invalidate()
        return codec.grant_from_row(r)

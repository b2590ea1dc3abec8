"""SqlStore create/update (the API's paths): creates refuse an existing id, the program budget is never
over-granted, also by concurrent grants (threads), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from accelpool.core.errors import Conflict
from accelpool.core.types import Grant, Node, Program, ProgramRules, Tenant


@pytest.fixture
def store(sql_store):
    sql_store.add_tenant(Tenant("t1"))
    sql_store.add_program(Program("p", "p", 1_000))
    return sql_store


def test_concurrent_grants_never_over_grant_the_program(store):
    results: list[object] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(i):
        barrier.wait()
        try:
            store.create_grant(Grant(f"g{i}", "p", "t1", 300))
            r: object = "ok"
        except Conflict as exc:
            r = exc.field
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 3 and results.count("amount_krw") == 5
    assert store.granted_total("p") == 900


def test_concurrent_grant_amount_updates_never_over_grant(store):
    for i in range(4):
        store.create_grant(Grant(f"g{i}", "p", "t1", 100))
    errors = []
    barrier = threading.Barrier(4)

    def worker(i):
        barrier.wait()
        try:
            store.update_grant(f"g{i}", amount_krw=400)
        except Conflict:
            errors.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.granted_total("p") <= 1_000 and len(errors) == 2


def test_creates_refuse_existing_ids(store):
    store.create_grant(Grant("g", "p", "t1", 10))
    with pytest.raises(Conflict) as e:
        store.create_grant(Grant("g", "p", "t1", 10))
    assert e.value.field == "id"
    with pytest.raises(Conflict):
        store.create_program(Program("p", "p", 5))
    assert store.list_programs()[0].budget_krw == 1_000
    with pytest.raises(Conflict):
        store.create_tenant(Tenant("t1", "other"))
    store.create_node(Node("n", "h100", 8))
    with pytest.raises(Conflict):
        store.create_node(Node("n", "rngd", 1))
    assert store.list_nodes()[0].accelerator == "h100"
    with pytest.raises(Conflict) as e:
        store.update_program("p", budget_krw=9)
    assert e.value.field == "budget_krw"
    assert store.update_program("p", budget_krw=10).budget_krw == 10
    assert store.update_program("nope", budget_krw=10) is None
    assert store.update_grant("nope", amount_krw=1) is None


def test_rules_are_merged_with_the_rules_as_they_stand_under_the_lock(store):
    """PUT /programs/{id}/rules by a manager keeps the pool-wide rules it leaves out: read under the
    program row's lock (``rules_from``), so an admin's change made after the manager's request was read is
    kept, not undone; what ``rules_from`` raises leaves the program as it was."""
    store.update_program("p", rules=replace(ProgramRules(), weight=3.0))  # the admin's change
    seen = []

    def keep_weight(now: ProgramRules) -> ProgramRules:
        seen.append(now.weight)
        return replace(ProgramRules(), tenant_caps={"h100": 4}, weight=now.weight)

    p = store.update_program("p", rules_from=keep_weight)
    assert seen == [3.0] and p.rules.weight == 3.0 and p.rules.cap_for("h100") == 4

    def refuse(now: ProgramRules) -> ProgramRules:
        raise PermissionError("only an admin changes 'weight'")

    with pytest.raises(PermissionError):
        store.update_program("p", budget_krw=5_000, rules_from=refuse)
    after = next(x for x in store.list_programs() if x.id == "p")
    assert after.budget_krw == 1_000 and after.rules.cap_for("h100") == 4 and after.rules.weight == 3.0

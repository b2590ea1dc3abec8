"""What a round does with devices the policy's pairs leave free (core/placement.py calls both).

``back_fill``: waiting jobs the policy did not hold, in fair order, each on the fastest type it fits
(work-conserving).

``move_up_jobs`` (``fill_idle`` calls both): no device idles on a type while a job chosen this round runs slower on another type
and would fit there. Gavel fills its types one after another, the fastest first, with every job (those
its allocation gave no share of the type last), so a faster type is full before a slower one gets
anything; ours placed each job on the type of its pair and back-filled only waiting jobs, so a job given
a slow type stayed there while devices of a faster type idled. Measured on Gavel's physical-cluster trace
(8:16:24, max-min-fairness, per-round): 33 V100 and 42 P100 device-rounds idle while a job that fit
there ran on a slower type (Gavel: none); on b436b2 at 8:8:8, 6,332 V100 device-rounds
(docs/simulator.md, "Seventh session"). A job moves only to a type where it runs faster, in fair
order; a job pinned to its devices never moves, and a running job moves only where ``move_running``
(per-round re-decision: a move is a restart, which leases charge for; under leases only jobs that start
now move up). The devices a moved job leaves are back-filled again by the caller.

Both hand out devices through the caller's ``try_choose`` (core/placement.py), which holds every rule a
chosen pair holds: devices, zone, allowed sites, the grant's money at the new type's price and site, and
the program rule rows (``RuleRoom``: public reserve, tenant and program caps, quotas, the rows every
policy solves under, core/policies/_rules.py). A move or a back-fill is therefore never a way around a
rule: a faster type a rule keeps the job off refuses it like any other pair.

Cost (``Job.faster_type``, ``Cost``): a faster type is often dearer. A job moves up, or is back-filled,
on a type faster for it than its reference (the type the policy chose: its pair's type when moving up;
for the back-fill the type of its largest share, else its cheapest type per step, ties the slowest) only
as its spec allows: "cost-neutral" (default) where its KRW per step there is not higher,

    price(t2, site) / tput(t2)  <=  price(ref, site_ref) / tput(ref),

"any" wherever it fits, "never" not at all. Without prices (the simulator on Gavel's traces) or with one
price for every type, a faster type is never dearer per step, so the default decides as "any".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from accelpool.core.allocation import AllocationProblem
from accelpool.core.policies._greedy import Ledger
from accelpool.core.policies._rules import build_rows, lend_idle_quota, usable_mask
from accelpool.core.round_types import JobStatus
from accelpool.core.types import JobState, WaitReason

NO_LIMIT = float("inf")  # ``try_choose``'s ``dearest``: any price per device-hour
REFUSED = -1.0  # no price: the job may not go there


class RuleRoom:
    """The round's program rule rows (``build_rows``: public reserve, tenant and program caps, quotas;
    capacity is the caller's ``type_free``) as whole gangs are handed out: a job is chosen on a type only
    if every row it counts in there has room for its gang. Quota reservations bind up to what their owners
    use in the policy's allocation ``x`` (``lend_idle_quota``, as the policies' own fill): a quota its owner
    does not use is lent (at ticks, where ``x`` is 0, all of it) and reclaimed at a lease boundary."""

    def __init__(self, problem: AllocationProblem, x: np.ndarray) -> None:
        rows = lend_idle_quota(problem, build_rows(problem, usable_mask(problem)), x)
        self._ledger = Ledger(problem, rows)
        self._kind = rows.kind
        for r, kind in enumerate(rows.kind):
            if kind == "capacity":
                self._ledger.bound[r] = float("inf")
        self._held: dict[int, tuple[int, int]] = {}

    def refuses(self, i: int, k: int, scale: int) -> str | None:
        """None when job i's gang fits every rule row of type k; else the kind of row that keeps it out:
        "cap", "quota" (its tenant's quota and what the pool lends are in use), "lent" (its tenant has
        no quota there: the devices left are guaranteed to other tenants), "reserve" (public reserve)."""
        ledger = self._ledger
        if ledger.room(i, k) + 1e-9 >= scale:
            return None
        for r in ledger.rows_of(i, k):
            kind = self._kind[r]
            left = ledger.bound[r] - ledger.used[r]
            q = ledger.pool_of[r]
            if q >= 0:
                left = max(left, 0.0) + ledger.pool_bound[q] - ledger.pool_used[q]
                if left + 1e-9 < scale:
                    return "quota" if ledger.bound[r] > 0.0 else "lent"
            elif kind != "capacity" and left + 1e-9 < scale:
                return kind
        return "reserve"

    def take(self, i: int, k: int, scale: int) -> None:
        self._ledger.add(i, k, scale)
        self._held[i] = (k, scale)

    def give_back(self, i: int) -> None:
        k, scale = self._held.pop(i)
        self._ledger.add(i, k, -scale)


class Cost:
    """``Job.faster_type``: the most job i may pay per device-hour on a faster type (module docstring).
    ``price(i, k)``: its cheapest price per device-hour of type k at a site allowed for it; ``price_at(k,
    site)``: type k's price at a site."""

    def __init__(
        self,
        statuses: list[JobStatus],
        tput: np.ndarray,
        x: np.ndarray,
        price: Callable[[int, int], int],
        price_at: Callable[[int, str], int],
        priced: bool,
    ) -> None:
        self._statuses, self._tput, self._x, self._price = statuses, tput, x, price
        self.price_at = price_at
        self._priced = priced  # False: no type has a price, no faster type is dearer
        self._ref: dict[int, tuple[int, float]] = {}
        self.dear: dict[int, int] = {}  # job -> a faster type its faster_type kept it off (wait words)

    def note(self, i: int, k: int) -> None:
        """Job i was kept off type k by its faster_type."""
        self.dear.setdefault(i, k)

    def limits(self, rule: str) -> bool:
        """Whether a job whose ``faster_type`` is ``rule`` may be kept off some faster type."""
        return rule == "never" or (rule == "cost-neutral" and self._priced)

    def reference(self, i: int, usable: np.ndarray) -> tuple[int, float]:
        """Job i's reference for the back-fill: (type, price per device-hour)."""
        got = self._ref.get(i)
        if got is None:
            row = self._x[i] if i < self._x.shape[0] else np.zeros(0)
            if row.size and row.max() > 0.0:
                k = int(np.argmax(row))
            else:
                ks = np.nonzero(usable[i])[0].tolist()
                tput = self._tput[i]
                k = min(ks, key=lambda t: (self._price(i, t) / tput[t], tput[t])) if ks else 0
            got = self._ref[i] = (k, float(self._price(i, k)))
        return got

    def dearest(self, i: int, k: int, ref: int, ref_price: float) -> float:
        """The most job i may pay per device-hour on type k against its reference (NO_LIMIT, REFUSED)."""
        tput = self._tput
        if tput[i, k] <= tput[i, ref]:
            return NO_LIMIT  # not faster: the field does not speak of it
        rule = self._statuses[i].job.faster_type
        if rule == "any":
            return NO_LIMIT
        if rule == "never":
            return REFUSED
        if not self._priced:
            return NO_LIMIT
        return ref_price * float(tput[i, k]) / float(tput[i, ref]) * (1.0 + 1e-12)


def back_fill(
    by_rank: list[int],
    speed_order: list[list[int]],
    chosen: dict[int, int],
    statuses: list[JobStatus],
    usable: np.ndarray,
    held: Mapping[str, WaitReason],
    type_free: dict[str, int],
    try_choose: Callable[..., bool],
    reasons: dict[str, WaitReason],
    cost: Cost | None = None,
) -> None:
    """Waiting jobs the policy did not hold, in fair order (``by_rank``), each on the fastest type it fits
    (a type faster than its reference only as its ``faster_type`` allows, ``cost``)."""
    most = max(type_free.values(), default=0)
    for i in by_rank:
        if most <= 0:
            break
        s = statuses[i]
        if i in chosen or s.job.scale > most or s.job.id in held:
            continue
        if cost is None or not cost.limits(s.job.faster_type):
            for k in speed_order[i]:
                if usable[i, k] and try_choose(i, k):
                    reasons.pop(s.job.id, None)
                    most = max(type_free.values())
                    break
            continue
        ref = cost.reference(i, usable)
        for k in speed_order[i]:
            if not usable[i, k]:
                continue
            dearest = cost.dearest(i, k, *ref)
            if dearest == REFUSED:
                cost.note(i, k)
                continue
            if try_choose(i, k) if dearest == NO_LIMIT else try_choose(i, k, dearest=dearest):
                reasons.pop(s.job.id, None)
                most = max(type_free.values())
                break


Books = tuple[
    dict[int, int],  # chosen: job -> type index
    dict[str, int],  # type_free
    dict[tuple[str, str], int],  # site_free
    dict[int, str],  # chosen_site
    dict[int, dict[tuple[str, str | None], int]],  # taken: what each chosen job took per (type, zone)
    dict[tuple[str, str | None], int],  # zone_free
    dict[int, tuple[str, int]],  # spent: the KRW set aside on each chosen job's grant
    dict[str, int],  # grants: KRW left
    RuleRoom | None,  # the program rule rows (None: no rule binds)
]


def fill_idle(
    ranks: tuple[list[int], list[list[int]]],
    statuses: list[JobStatus],
    usable: np.ndarray,
    held: Mapping[str, WaitReason],
    try_choose: Callable[..., bool],
    reasons: dict[str, WaitReason],
    books: Books,
    types: tuple[str, ...],
    up: tuple[np.ndarray, set[int], bool] | None,
    cost: Cost | None = None,
) -> None:
    """Back-fill, then (``up``: throughputs, pinned jobs, whether running jobs may move) move up and
    back-fill what the moved jobs left. ``ranks``: the jobs in fair order and each job's types fastest
    first; ``books``: the bookkeeping ``try_choose`` (core/placement.py) keeps, given back here when a job
    moves; ``cost``: what each job's ``faster_type`` lets it pay on a faster type (None: anything)."""
    by_rank, speed_order = ranks
    chosen, type_free = books[0], books[1]
    back_fill(by_rank, speed_order, chosen, statuses, usable, held, type_free, try_choose, reasons, cost)
    if up is not None and max(type_free.values(), default=0) > 0:
        tput, pinned, move_running = up
        if move_up_jobs(
            by_rank, speed_order, statuses, tput, usable, types, pinned, move_running, try_choose, books, cost
        ):
            back_fill(
                by_rank, speed_order, chosen, statuses, usable, held, type_free, try_choose, reasons, cost
            )


def _release(i: int, statuses: list[JobStatus], types: tuple[str, ...], books: Books) -> None:
    """Give back what try_choose took for job i: its devices, zone room and grant money."""
    chosen, type_free, site_free, chosen_site, taken, zone_free, spent, grants, rules = books
    t, scale = types[chosen.pop(i)], statuses[i].job.scale
    if rules is not None:
        rules.give_back(i)
    type_free[t] += scale
    site_free[t, chosen_site[i]] += scale
    for key, n in taken.pop(i).items():
        zone_free[key] += n
    if i in spent:
        g, paid = spent.pop(i)
        grants[g] += paid


def move_up_jobs(
    by_rank: list[int],
    speed_order: list[list[int]],
    statuses: list[JobStatus],
    tput: np.ndarray,
    usable: np.ndarray,
    types: tuple[str, ...],
    pinned: set[int],
    move_running: bool,
    try_choose: Callable[..., bool],
    books: Books,
    cost: Cost | None = None,
) -> bool:
    """Move chosen jobs, in fair order, to the fastest type faster for them with room for the whole gang
    that their ``faster_type`` allows (``cost``); ``try_choose(i, k, force=True)`` puts a job back when the
    faster type refuses it (zone, site, grant, a rule row, its price). Returns whether a job moved."""
    chosen, type_free, chosen_site = books[0], books[1], books[3]
    running = JobState.RUNNING
    moved = False
    for i in by_rank:
        k = chosen.get(i)
        if k is None or i in pinned:
            continue
        s = statuses[i]
        if s.state is running and not move_running:
            continue
        if s.job.faster_type == "never":
            continue
        ref_price = -1.0
        for k2 in speed_order[i]:
            if tput[i, k2] <= tput[i, k]:
                break
            if not usable[i, k2] or type_free[types[k2]] < s.job.scale:
                continue
            dearest = NO_LIMIT
            if cost is not None and cost.limits(s.job.faster_type):
                if ref_price < 0.0:
                    ref_price = float(cost.price_at(k, chosen_site[i]))
                dearest = cost.dearest(i, k2, k, ref_price)
            _release(i, statuses, types, books)
            if try_choose(i, k2) if dearest == NO_LIMIT else try_choose(i, k2, dearest=dearest):
                moved = True
                break
            try_choose(i, k, force=True)  # it gets back what it gave up
        if max(type_free.values(), default=0) <= 0:
            break
    return moved


def held_by_rules(
    held: Mapping[str, WaitReason],
    reasons: Mapping[str, WaitReason],
    rules: RuleRoom,
    statuses: list[JobStatus],
    where: Mapping[str, int],
    room: tuple[list[list[int]], np.ndarray, tuple[str, ...], Mapping[str, int]],
    ruled: dict[str, tuple[str, str, bool]],
) -> None:
    """For each job the policy held for a rule ("quota" or "rule", core.policies._reasons) and still held
    for it, the rule row that keeps it out at the round's end into ``ruled`` (job -> (type, kind, free),
    ``wait_words``), so its words name whose rule it is: its tenant's cap or quota, other tenants' quotas,
    the public reserve. The policy's reason only says a full rule row counts the job (a tenant without a
    quota on a type still has a row there, bound 0, always full): "its tenant's quota or cap is in use"
    was the words for all of them. ``RuleRoom.refuses`` is asked on the job's usable types, fastest
    first, those with devices free for its gang (``room``: each job's types fastest first, usable, the
    type names, devices free per type) before the others; a row of the kind the code names (a cap or
    quota for "quota", the reserve for "rule") before another. None refuses (every row has room now):
    its words stay explain's."""
    order, usable, types, type_free = room
    for jid, why in held.items():
        if why not in (WaitReason.QUOTA, WaitReason.RULE) or reasons.get(jid) is not why or jid in ruled:
            continue
        i = where[jid]
        scale = statuses[i].job.scale
        ks = [k for k in order[i] if usable[i, k]]
        fits_code = ("reserve",) if why is WaitReason.RULE else ("cap", "quota", "lent")
        first: tuple[str, str, bool] | None = None
        for k in sorted(ks, key=lambda k: type_free[types[k]] < scale):  # stable: fastest first
            row = rules.refuses(i, k, scale)
            if row is None:
                continue
            got = (types[k], row, type_free[types[k]] >= scale)
            if row in fits_code:  # a row of the code's own kind: "quota: ...; kept for public-program
                first = got  # jobs" would contradict itself
                break
            first = first or got
        if first is not None:
            ruled[jid] = first


def wait_words(
    cost: Cost,
    ruled: Mapping[str, tuple[str, str, bool]],
    statuses: list[JobStatus],
    types: tuple[str, ...],
    idle: Mapping[int, int],
    waiting: Mapping[str, WaitReason],
) -> dict[str, str]:
    """A clause for each waiting job a faster type with free devices (``idle``: per type index, at the
    round's end) was refused for its ``faster_type``, or a program rule row kept out (``ruled``: job ->
    (type, the kind ``RuleRoom.refuses`` names, whether devices of the type were free for its gang)):
    its own tenant's cap or quota, other tenants' quotas ("lent"), the public reserve."""
    out: dict[str, str] = {}
    for i, k in cost.dear.items():
        job = statuses[i].job
        if job.id in waiting and idle.get(k, 0) >= job.scale:
            if job.faster_type == "never":
                out[job.id] = (
                    f"{types[k]} has free devices, faster than the type chosen for it, but its faster_type is never"
                )
            else:
                out[job.id] = (
                    f"{types[k]} has free devices but costs more per step than its faster_type ({job.faster_type}) allows"
                )
    for jid, (t, kind, free) in ruled.items():
        # a job that waits for its grant, its gang's placement or priority keeps those words: they name what
        # holds it (a rule that also refused it on another type would hide, say, the money left)
        if jid in waiting and jid not in out and waiting[jid] not in OWN_WORDS:
            out[jid] = rule_clause(t, kind, free)
    return out


OWN_WORDS = frozenset({WaitReason.BUDGET, WaitReason.GANG, WaitReason.PRIORITY, WaitReason.NOT_RUNNABLE})


LENT = "\0"  # a clause that replaces explain's after the need ("its tenant's quota or cap" would be wrong)


def rule_clause(t: str, kind: str, free: bool) -> str:
    """The words for a rule row of kind ``kind`` (``RuleRoom.refuses``) that keeps a job off type t;
    ``free``: devices of t were free for its gang (else the row is named without saying so). Each is
    marked LENT: it replaces explain's words after what the job needs (for a "quota" code those say "its
    tenant's quota or cap", which names neither the row nor the type)."""
    some = f"the free {t} devices" if free else f"the {t} devices it could use"
    if kind == "lent":
        return f"{LENT}{some} are guaranteed to other tenants (their quota)"
    if kind == "reserve":
        return f"{LENT}{some} are kept for public-program jobs (public reserve)"
    if kind == "cap":
        return f"{LENT}its tenant's cap on {t} under its program is in use"
    return f"{LENT}its tenant's quota on {t} is in use and too few unreserved {t} devices are left to lend"


def add_clauses(texts: dict[str, str], words: Mapping[str, str]) -> dict[str, str]:
    """``texts`` (core.reasons.explain) with each job's clause from ``wait_words`` appended (one marked
    LENT in place of explain's clauses after what the job needs)."""
    for jid, clause in words.items():
        if jid in texts:
            if clause.startswith(LENT):
                texts[jid] = f"{texts[jid].split('; ')[0]}; {clause[len(LENT) :]}"
            else:
                texts[jid] = f"{texts[jid]}; {clause}"
    return texts

"""The shared LP seam: program rules as resource rows (_rules.py), one HiGHS entry point (_lp.py), the greedy
ledger (_greedy.py), held reasons (_reasons.py). This module only re-exports them for the policies.

Every policy applies program rules through this module, so that they mean the same thing everywhere.

Notation (extends core/allocation.py):

    r in rows (R)      a resource row: one accelerator type t_r and a set of member jobs M_r
    s_j                scale[j], devices job j needs at once
    use_r = sum_{j in M_r} s_j * x[j, t_r]                                   (devices)

    every row r:       use_r - b_r <= bound_r                                (devices)
    every pool q:      sum_{r borrowing from q} b_r <= pool_bound_q          (devices), b_r >= 0
                       (b_r exists only for quota rows; other rows have no b_r)

Rows come from the problem:
    capacity       M = every job,               bound = cap[t]
    public reserve M = jobs that are not public,  bound = cap[t] - public_reserve[t]
    tenant cap     M = jobs of tenant g,          bound = tenant_cap[g, t]
    program cap    M = jobs of cap group c (a tenant's jobs under one program), bound = cap_limit[c, t]
    quota          M = jobs of tenant g,          bound = reserved[g, t], borrowing from pool t,
                   pool_bound_t = cap[t] - sum_g reserved[g, t]
    where reserved[g, t] = min(quota[g, t], demand[g, t]) (scaled down if quotas oversubscribe t) and
    demand[g, t] = devices tenant g's jobs could use on t. A tenant's idle quota (no demand) is lent to
    the pool; when its jobs come back, reserved grows and the borrowers shrink next round (reclaim).

Budgets: a job with a grant (budget_krw >= 0) may only use a type it can pay for over the whole horizon:
    price[t] * s_j * horizon_seconds / 3600 <= budget_krw[j]                 (KRW)
so no allocation of any policy can overspend a grant within one round.
"""

from __future__ import annotations

from accelpool.core.policies._greedy import Ledger as Ledger
from accelpool.core.policies._greedy import fill_spare as fill_spare
from accelpool.core.policies._greedy import uncontended as uncontended
from accelpool.core.policies._lp import LpModel as LpModel
from accelpool.core.policies._lp import LpResult as LpResult
from accelpool.core.policies._lp import lp_model as lp_model
from accelpool.core.policies._lp import solve_lp as solve_lp
from accelpool.core.policies._reasons import finish as finish
from accelpool.core.policies._reasons import held_reasons as held_reasons
from accelpool.core.policies._rules import EPS as EPS
from accelpool.core.policies._rules import Rows as Rows
from accelpool.core.policies._rules import budget_usable as budget_usable
from accelpool.core.policies._rules import build_rows as build_rows
from accelpool.core.policies._rules import lend_idle_quota as lend_idle_quota
from accelpool.core.policies._rules import normalized as normalized
from accelpool.core.policies._rules import usable_mask as usable_mask

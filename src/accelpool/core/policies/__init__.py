"""Allocation policies: each turns an AllocationProblem into an Allocation (one shared signature).

``POLICIES`` maps the names users type (``--policy``) to the functions; ``get_policy`` looks one up and
suggests the closest name for a typo. Program rules, budgets and held reasons live in ``_seam`` so that
every policy applies them the same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

from accelpool.core.allocation import Policy
from accelpool.core.errors import InputError
from accelpool.core.policies.fair_share import fair_share
from accelpool.core.policies.fifo import fifo
from accelpool.core.policies.finish_time_fairness import finish_time_fairness
from accelpool.core.policies.max_min_fairness import max_min_fairness
from accelpool.core.policies.max_throughput import max_throughput
from accelpool.core.policies.min_cost import min_cost

POLICIES: Mapping[str, Policy] = MappingProxyType(
    {
        "fifo": fifo,
        "fair-share": fair_share,
        "max-min-fairness": max_min_fairness,
        "finish-time-fairness": finish_time_fairness,
        "max-throughput": max_throughput,
        "min-cost": min_cost,
    }
)

DEFAULT_POLICY = "max-min-fairness"

RULES_OVER_SITES: frozenset[Policy] = frozenset(
    {fifo, fair_share, max_throughput, min_cost, max_min_fairness, finish_time_fairness}
)
"""Policies whose solvers read a program rule as one row over several columns (``_rules.Rows.span``): for
them ``core.sites.site_columns`` splits a type held at several sites into per-site columns even when a
public reserve, quota or cap binds it. Every shipped policy does (the water-filling stages read a row's
columns through ``_Stage.onehot``, built from ``Rows.cover``; docs/sites.md)."""

NON_PREEMPTIVE: frozenset[Policy] = frozenset({fifo})
"""Policies that never stop a running job for their own order (only an operator rule does: see
``fifo``). ``core.rounds`` passes them every running job's type (``AllocationProblem.keep_type``) at
every round, under leases or not, and calls them at ticks too, so that their start order holds between
lease boundaries (the tick's own back-fill follows the fair order)."""


SPEED_BLIND: frozenset[Policy] = frozenset({fifo, fair_share})
"""Policies that do not read speeds (the heterogeneity-agnostic baselines). ``core.rounds`` does not move
their jobs up to a faster type (``core.backfill.move_up_jobs``): a scheduler without a throughput model
has no faster type (on Gavel's 11cb48 at 36:36:36 it made fair-share 30% faster, 69,674 -> 48,724 s,
within 2.5% of the aware policy: no longer a speed-blind baseline; docs/simulator.md)."""


def get_policy(name: str) -> Policy:
    """The policy called ``name``; InputError naming the known ones (and the closest) otherwise."""
    found = POLICIES.get(name) or POLICIES.get(name.strip().lower().replace("_", "-"))
    if found is not None:
        return found
    close = difflib.get_close_matches(name.lower(), list(POLICIES), n=1, cutoff=0.4)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise InputError(
        f"unknown policy '{name}'{hint}; known: {', '.join(POLICIES)}", field="policy", value=name
    )


__all__ = ["DEFAULT_POLICY", "NON_PREEMPTIVE", "POLICIES", "RULES_OVER_SITES", "SPEED_BLIND", "get_policy"]

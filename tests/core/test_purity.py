"""The core keeps no hidden state: reusable work lives in a cache its caller owns."""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import types

import accelpool.core
from accelpool.core.policies import POLICIES
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import DecideCache, JobStatus, Placement, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node

MUTABLE = (list, dict, set, bytearray)


def core_modules() -> list[types.ModuleType]:
    out = [accelpool.core]
    for info in pkgutil.walk_packages(accelpool.core.__path__, "accelpool.core."):
        out.append(importlib.import_module(info.name))
    return out


def test_no_module_level_or_class_level_mutable_state_in_core() -> None:
    found = []
    for mod in core_modules():
        for name, value in vars(mod).items():
            if name.startswith("__"):
                continue
            if isinstance(value, MUTABLE):  # upper-case names too: no module-level switches or tables
                found.append(f"{mod.__name__}.{name}")
            if (
                inspect.isclass(value)
                and value.__module__ == mod.__name__
                and not issubclass(value, enum.Enum)
            ):
                for attr, v in vars(value).items():
                    if not attr.startswith("__") and isinstance(v, MUTABLE):
                        found.append(f"{mod.__name__}.{name}.{attr}")
            # caches that are instances of core classes held at module level
            if (
                type(value).__module__.startswith("accelpool.core")
                and "cache" in type(value).__name__.lower()
            ):
                found.append(f"{mod.__name__}.{name}")
    assert found == []


SETTLED = (str, int, float, bool, bytes, tuple, frozenset, type(None))


def _globals() -> dict[str, object]:
    """Every plain value at module level in the core (the values a hidden switch would be)."""
    out: dict[str, object] = {}
    for mod in core_modules():
        for name, value in vars(mod).items():
            if not name.startswith("__") and isinstance(value, SETTLED):
                out[f"{mod.__name__}.{name}"] = value
    return out


def test_no_core_module_global_is_a_switch_and_none_changes_while_deciding() -> None:
    """Every setting of a round comes in through RoundConfig: no case of module global (upper-case
    included) changes what the core decides, and deciding changes none of them."""
    before = _globals()
    for name, policy in POLICIES.items():
        for config in (RoundConfig(), RoundConfig(ranking="ratio", keep_bonus=0.0, per_device_levels=False)):
            cache = DecideCache()
            for snap in snapshots():
                decide(snap, policy, cache, config)
        assert _globals() == before, name
    switches = {k: v for k, v in before.items() if isinstance(v, bool) and not k.endswith(".TYPE_CHECKING")}
    assert switches == {}, f"boolean switches at module level in the core: {sorted(switches)}"


def test_round_config_changes_decisions_without_touching_modules() -> None:
    snap = snapshots()[-1]
    a = decide(snap, POLICIES["max-min-fairness"], None, RoundConfig())
    b = decide(snap, POLICIES["max-min-fairness"], None, RoundConfig(per_device_levels=False))
    assert a.allocation.x.shape == b.allocation.x.shape
    assert decide(snap, POLICIES["max-min-fairness"], None, RoundConfig()).placements() == a.placements()


def test_problem_cache_never_changes_a_frozen_problem() -> None:
    snaps = snapshots()
    cache = DecideCache()
    seen = []
    for snap in snaps + snaps:
        statuses = [s for s in snap.jobs if not s.state.terminal]
        problem = cache.problems.get(snap, statuses, RoundConfig(), 360.0)
        seen.append((problem, problem.remaining_steps.copy(), problem.budget_krw.copy()))
    for problem, steps, budget in seen:
        assert (problem.remaining_steps == steps).all() and (problem.budget_krw == budget).all()


def snapshots() -> list[Snapshot]:
    nodes = (Node("a0", "a", 4), Node("b0", "b", 4))
    jobs = [Job(f"j{k}", scale=1 + k % 3, submit_time=float(k)) for k in range(8)]
    tput = ThroughputMatrix.from_rows({j.id: {"a": 1.0 + j.scale, "b": 2.0} for j in jobs}, ("a", "b"))
    out = []
    placement: dict[str, Placement] = {}
    for r in range(4):
        statuses = tuple(
            JobStatus(j, JobState.RUNNING if j.id in placement else JobState.QUEUED, placement.get(j.id))
            for j in jobs
        )
        snap = Snapshot(100.0 * (r + 1), nodes, statuses, tput, round_seconds=100.0)
        out.append(snap)
        placement = {p.job: p for p in decide(snap, POLICIES["max-min-fairness"]).placements()}
    return out


def test_decisions_are_the_same_with_a_shared_cache_a_fresh_one_or_none() -> None:
    snaps = snapshots()
    shared = DecideCache()
    other = DecideCache()
    for snap in snaps:
        policy = POLICIES["max-min-fairness"]
        a = decide(snap, policy, shared)
        b = decide(snap, policy)
        decide(snapshots()[0], policy, other)  # another caller's cache does not interfere
        c = decide(snap, policy, other)
        assert a.placements() == b.placements() == c.placements()
        assert a.waiting == b.waiting == c.waiting and a.positions == b.positions == c.positions

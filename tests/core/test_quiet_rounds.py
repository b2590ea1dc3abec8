"""Quiet rounds (core.quiet): a round in which the jobs the last full decision placed all still run where
it put them, and nothing else changed that could stop or move one, is decided without placement (fifo:
without the policy too); the decision is the one the full path takes (the kept placements compared as a
set).

Checked three ways: for fifo over whole simulated runs, every round's decision against a full decision on
the same snapshot with a fresh cache (which has no quiet entry); for each preemptive policy, the same run
twice, with and without quiet entries, round by round; and by hand, each fact that must send a round back
to the full path (a node drained, a grant, a new job, a job that ended, another policy object)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from accelpool.core import quiet
from accelpool.core.policies import get_policy
from accelpool.core.ranking import FirstPairs
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import DecideCache, Decision, JobStatus, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Grant, Job, JobState, Node
from accelpool.runtime.reconciler import RoundReport
from accelpool.sim.engine import simulate
from accelpool.sim.gavel import read_gavel_trace
from accelpool.sim.synthetic import generate
from accelpool.sim.workload import Workload


def _same(got: Decision, want: Decision) -> None:
    assert got.now == want.now and got.boundary == want.boundary
    assert got.start == want.start
    assert sorted(got.keep, key=lambda p: p.job) == sorted(want.keep, key=lambda p: p.job)
    assert got.preempt == want.preempt
    assert dict(got.waiting) == dict(want.waiting)
    assert dict(got.positions) == dict(want.positions)
    assert got.allocation.job_ids == want.allocation.job_ids
    np.testing.assert_array_equal(got.allocation.x, want.allocation.x)
    assert dict(got.allocation.held) == dict(want.allocation.held)
    assert got.queue.ids == want.queue.ids


def _count_quiet(monkeypatch: pytest.MonkeyPatch, entry: type = quiet._Quiet) -> list[int]:
    """How many rounds were decided quiet (``quiet._Later`` for a preemptive policy: its answer also
    depends on the pair order's first pass when the allocation spreads a job over types)."""
    fired = [0]
    again = entry.again

    def counted(self, *a):  # type: ignore[no-untyped-def]
        got = again(self, *a)
        fired[0] += got is not None
        return got

    monkeypatch.setattr(entry, "again", counted)
    return fired


def _without_grants(w: Workload) -> Workload:
    jobs = tuple(dataclasses.replace(j, grant=None) for j in w.jobs)
    return dataclasses.replace(w, jobs=jobs, grants=(), programs=())


@pytest.mark.parametrize(
    "config",
    [RoundConfig.per_round(), RoundConfig(lease_seconds=1080.0, min_run_seconds=0.0)],
    ids=["per-round", "leases"],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_round_decides_as_the_full_path(
    monkeypatch: pytest.MonkeyPatch, config: RoundConfig, seed: int
) -> None:
    w = _without_grants(
        generate({"h100": 8, "rngd": 8}, n_jobs=50, seed=seed, mean_interarrival_seconds=3000.0)
    )
    fired = _count_quiet(monkeypatch)
    plain = get_policy("fifo")
    rounds_seen = [0]

    def check(r: RoundReport) -> None:
        rounds_seen[0] += 1
        _same(r.decision, decide(r.snapshot, plain, DecideCache(), config))

    res = simulate(w, plain, policy_name="fifo", round_seconds=360.0, config=config, on_round=check)
    assert not res.unfinished
    assert rounds_seen[0] == res.rounds
    assert 0 < fired[0] < res.rounds  # quiet rounds were decided that way, and not every round


def test_with_grants_no_round_is_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    # every job has a grant (it could be stopped when its money runs out): the full path every round
    w = generate({"h100": 8, "rngd": 8}, n_jobs=30, seed=4, mean_interarrival_seconds=3000.0, grant_scale=5.0)
    fired = _count_quiet(monkeypatch)
    plain = get_policy("fifo")
    config = RoundConfig.per_round()

    def check(r: RoundReport) -> None:
        _same(r.decision, decide(r.snapshot, plain, DecideCache(), config))

    simulate(w, plain, policy_name="fifo", round_seconds=360.0, config=config, on_round=check)
    assert fired[0] == 0


PREEMPTIVE = ["max-min-fairness", "fair-share", "finish-time-fairness", "max-throughput", "min-cost"]


def _decisions(w: Workload, name: str, config: RoundConfig) -> tuple[list[Decision], int]:
    got: list[Decision] = []
    res = simulate(
        w,
        get_policy(name),
        policy_name=name,
        round_seconds=360.0,
        config=config,
        on_round=lambda r: got.append(r.decision),
    )
    assert not res.unfinished
    return got, res.rounds


@pytest.mark.parametrize(
    "config",
    [RoundConfig.per_round(), RoundConfig(lease_seconds=1080.0, min_run_seconds=0.0)],
    ids=["per-round", "leases"],
)
@pytest.mark.parametrize("name", PREEMPTIVE)
def test_a_preemptive_policy_decides_every_round_as_without_quiet_rounds(
    monkeypatch: pytest.MonkeyPatch, name: str, config: RoundConfig
) -> None:
    # the same run twice, once with no quiet entry ever made: every round's decision is the same (the
    # allocation too: both runs reuse it the same way); at low load some rounds of max-min-fairness are quiet
    w = _without_grants(
        generate({"h100": 8, "rngd": 8, "a100": 4}, n_jobs=40, seed=5, mean_interarrival_seconds=2000.0)
    )
    fired = _count_quiet(monkeypatch, quiet._Later)
    fast, n = _decisions(w, name, config)
    with monkeypatch.context() as m:
        m.setattr(quiet._Quiet, "after", classmethod(lambda cls, *a, **k: None))
        full, n_full = _decisions(w, name, config)
    assert n == n_full == len(fast) == len(full)
    for got, want in zip(fast, full, strict=True):
        _same(got, want)
    if name in ("max-min-fairness", "fair-share"):  # fair-share spreads jobs over types (FirstPairs)
        assert 0 < fired[0] < n, (fired[0], n)


def test_a_preemptive_policy_with_grants_has_no_quiet_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    w = generate({"h100": 8, "rngd": 8}, n_jobs=20, seed=4, mean_interarrival_seconds=3000.0, grant_scale=5.0)
    fired = _count_quiet(monkeypatch)
    simulate(w, get_policy("max-min-fairness"), round_seconds=360.0, config=RoundConfig.per_round())
    assert fired[0] == 0


# -- by hand: what sends a round back to the full path -------------------------------------------------

NODES = (Node("n0", "fast", 4), Node("n1", "fast", 2))
JOBS = (Job("a", total_steps=1e6, scale=2), Job("b", total_steps=1e6, scale=2))
SPEEDS = ThroughputMatrix.from_rows({"a": {"fast": 1.0}, "b": {"fast": 1.0}}, ("fast",))
CONFIG = RoundConfig.per_round()


def _snap(now: float, statuses: list[JobStatus], **kw: object) -> Snapshot:
    facts: dict[str, object] = {"nodes": NODES, "throughput": SPEEDS, "round_seconds": 360.0}
    facts.update(kw)
    return Snapshot(now=now, jobs=tuple(statuses), **facts)  # type: ignore[arg-type]


def _running(d: Decision, steps: float, jobs: tuple[Job, ...] = JOBS) -> list[JobStatus]:
    where = {p.job: p for p in d.placements()}
    return [JobStatus(j, JobState.RUNNING, where[j.id], steps_done=steps, metered_until=0.0) for j in jobs]


def _two_placed() -> tuple[DecideCache, Decision]:
    cache = DecideCache()
    first = decide(
        _snap(0.0, [JobStatus(j, JobState.QUEUED) for j in JOBS]), get_policy("fifo"), cache, CONFIG
    )
    assert {p.job for p in first.start} == {"a", "b"} and not first.waiting
    return cache, first


def test_the_same_jobs_running_on_the_same_facts_is_quiet() -> None:
    cache, first = _two_placed()
    policy = get_policy("fifo")
    for k in range(1, 4):
        snap = _snap(360.0 * k, _running(first, 360.0 * k))
        got = decide(snap, policy, cache, CONFIG)
        assert got.allocation is first.allocation  # the quiet path: the last full decision's allocation
        assert got.now == 360.0 * k and not got.start and not got.preempt and not got.waiting
        assert [p.job for p in got.keep] == ["a", "b"]  # job order
        _same(got, decide(snap, policy, DecideCache(), CONFIG))


@pytest.mark.parametrize(
    "change",
    ["drained", "grant", "arrival", "ended", "moved", "other policy", "price"],
)
def test_a_change_that_could_stop_or_start_a_job_takes_the_full_path(change: str) -> None:
    cache, first = _two_placed()
    policy = get_policy("fifo")
    statuses = _running(first, 360.0)
    kw: dict[str, object] = {}
    if change == "drained":  # b's node left service: b is stopped
        node_of_b = next(p for p in first.start if p.job == "b").devices[0][0]
        kw = {"nodes": tuple(n for n in NODES if n.name != node_of_b)}
    elif change == "grant":  # a now bills a grant that cannot pay the next lease: a is stopped
        a = dataclasses.replace(JOBS[0], grant="g")
        statuses[0] = dataclasses.replace(statuses[0], job=a)
        kw = {"grants": (Grant("g", "p", "default", 0),), "prices_krw_per_hour": {"fast": 1_000}}
    elif change == "arrival":
        statuses.append(JobStatus(Job("c", total_steps=10.0, scale=2, submit_time=100.0), JobState.QUEUED))
        kw = {
            "throughput": ThroughputMatrix.from_rows(
                {"a": {"fast": 1.0}, "b": {"fast": 1.0}, "c": {"fast": 1.0}}, ("fast",)
            )
        }
    elif change == "ended":
        statuses[1] = dataclasses.replace(statuses[1], state=JobState.SUCCEEDED)
    elif change == "moved":  # a runs elsewhere than the last decision put it (e.g. restarted by hand)
        p = statuses[0].placement
        assert p is not None
        other = "n1" if p.devices[0][0] == "n0" else "n0"
        statuses[0] = dataclasses.replace(
            statuses[0], placement=dataclasses.replace(p, devices=((other, (0, 1)),))
        )
    elif change == "other policy":
        policy = get_policy("fair-share")
    elif change == "price":
        kw = {"prices_krw_per_hour": {"fast": 5_000}}
    snap = _snap(360.0, statuses, **kw)
    got = decide(snap, policy, cache, CONFIG)
    assert got.allocation is not first.allocation  # the full path decided
    _same(got, decide(snap, policy, DecideCache(), CONFIG))
    if change in ("drained", "grant"):
        assert [j for j, _ in got.preempt] == (["b"] if change == "drained" else ["a"])
    if change == "arrival":
        assert [p.job for p in got.start] == ["c"]


GAVEL_HEAD = Path(__file__).resolve().parents[1] / "fixtures" / "traces" / "gavel_b436b2_head60.trace"


@pytest.mark.parametrize("name", ["fair-share", "max-min-fairness"])
def test_a_spread_allocation_is_quiet_only_while_each_job_first_pair_is_its_type(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    # fair-share spreads each job's share over types: a round is quiet when the pair order's first pass
    # keeps every job on its type (core.ranking.FirstPairs), which moves with what each job received;
    # Gavel's head of b436b2 on 4:4:4 has such rounds, and rounds where a job's other type comes first
    w = read_gavel_trace(GAVEL_HEAD, {"v100": 4, "p100": 4, "k80": 4})
    w = dataclasses.replace(w, jobs=w.jobs[:30])
    said: list[bool] = []
    call = FirstPairs.__call__

    def told(self, *a):  # type: ignore[no-untyped-def]
        said.append(call(self, *a))
        return said[-1]

    monkeypatch.setattr(FirstPairs, "__call__", told)
    fired = _count_quiet(monkeypatch, quiet._Later)
    config = RoundConfig.per_round()
    fast, n = _decisions(w, name, config)
    with monkeypatch.context() as m:
        m.setattr(quiet._Quiet, "after", classmethod(lambda cls, *a, **k: None))
        full, n_full = _decisions(w, name, config)
    assert n == n_full
    for got, want in zip(fast, full, strict=True):
        _same(got, want)
    assert 0 < fired[0] < n
    if name == "fair-share":
        assert said.count(True) > 100 and said.count(False) > 10, (said.count(True), said.count(False))

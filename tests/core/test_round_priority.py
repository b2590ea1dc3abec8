"""Round ranking: a job's priority counts the time it ran on every type, back-fill included."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from accelpool.core.allocation import Allocation, AllocationProblem
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import JobStatus, Placement, Snapshot, decide
from accelpool.core.throughput import ThroughputMatrix
from accelpool.core.types import Job, JobState, Node


def half_each_on_a(problem: AllocationProblem) -> Allocation:
    x = np.zeros((problem.n_jobs, problem.n_types))
    x[:, problem.types.index("a")] = 0.5
    return Allocation(problem.job_ids, problem.types, x, "fixed")


def snapshot() -> Snapshot:
    # both jobs are 2,000 s old and queued; j1 ran 1,000 s on b (back-filled there), j2 500 s on a
    jobs = (
        JobStatus(Job("j1", submit_time=0.0), JobState.QUEUED, seconds_on={"b": 1000.0}),
        JobStatus(Job("j2", submit_time=0.0), JobState.QUEUED, seconds_on={"a": 500.0}),
    )
    tput = ThroughputMatrix.from_rows({"j1": {"a": 1.0, "b": 1.0}, "j2": {"a": 1.0, "b": 1.0}}, ("a", "b"))
    return Snapshot(2000.0, (Node("a-0", "a", 1), Node("b-0", "b", 1)), jobs, tput, round_seconds=360.0)


@pytest.mark.parametrize(("mode", "on_a"), [("job", "j2"), ("ratio", "j1")])
def test_back_filled_time_counts_towards_the_job(mode, on_a):
    d = decide(snapshot(), half_each_on_a, config=RoundConfig(ranking=mode))
    placed = {p.job: p.accelerator for p in d.placements()}
    # job ratio: j1 ran 50% of its age (ratio 1), j2 25% (ratio 2) -> j2 takes a, j1 is back-filled on b.
    # Gavel's per-type ratio sees j1 with nothing on a (infinite) and gives it a again.
    assert placed[on_a] == "a" and len(placed) == 2


def half_each_on_one_device(problem: AllocationProblem) -> Allocation:
    return Allocation(problem.job_ids, problem.types, np.full((problem.n_jobs, 1), 0.5), "fixed")


def old_runs_new_waits(new_age: float) -> Snapshot:
    # one device, per-round semantics; "old" (1 h old) runs on it and has run half its age, at its share x = 0.5
    # (ratio 1, times the keep bonus 1.25); "new" has never run and is owed 0.5 of its age
    now = 3600.0
    jobs = (
        JobStatus(
            Job("old", submit_time=0.0, preemptible=True),
            JobState.RUNNING,
            placement=Placement("old", "a", (("a-0", (0,)),)),
            seconds_on={"a": 1800.0},
        ),
        JobStatus(Job("new", submit_time=now - new_age, preemptible=True), JobState.QUEUED),
    )
    tput = ThroughputMatrix.from_rows({"old": {"a": 1.0}, "new": {"a": 1.0}}, ("a",))
    return Snapshot(now, (Node("a-0", "a", 1),), jobs, tput, round_seconds=360.0)


@pytest.mark.parametrize(
    ("credit", "new_age", "on_device"),
    [(0.5, 360.0, "old"), (0.5, 720.0, "new"), (0.0, 360.0, "new")],
)
def test_a_new_job_ranks_by_what_it_is_owed_after_an_arrival_credit(credit, new_age, on_device):
    # arrival credit: a job counts as having run half a round when it arrives (Gavel's start), so after one
    # round it ranks 0.5 / (180 / 360) = 1 < 1.25 and the old job stays; after two rounds 2 > 1.25 and it
    # takes the device. Without the credit (0) a job that never ran ranks infinitely high at once.
    config = dataclasses.replace(RoundConfig.per_round(), arrival_credit=credit)
    d = decide(old_runs_new_waits(new_age), half_each_on_one_device, config=config)
    assert [p.job for p in d.placements()] == [on_device]


SHARES = {"fixed": {"a": 1.0}, "hi": {"a": 0.5, "b": 0.1}, "lo": {"b": 0.5}}


def by_table(problem: AllocationProblem) -> Allocation:
    x = np.zeros((problem.n_jobs, problem.n_types))
    for i, j in enumerate(problem.job_ids):
        for t, v in SHARES[j].items():
            x[i, problem.types.index(t)] = v
    return Allocation(problem.job_ids, problem.types, x, "fixed")


def test_a_job_takes_its_second_type_only_after_every_job_tried_its_first():
    # a is held by a job that cannot be stopped; "hi" ranks first (job ratio ~5.7 against "lo"'s ~1.5)
    # and prefers a (0.5 / 100 s against 0.1 / 100 s on b); "lo" was given b only. In passes, "lo" gets b
    # (its first type) before "hi" falls back to b (its second): as in Gavel, where a job reaches a type
    # only in that type's turn. Tried job by job, "hi" took b and "lo" waited.
    now = 3600.0
    jobs = (
        JobStatus(
            Job("fixed", submit_time=0.0),
            JobState.RUNNING,
            placement=Placement("fixed", "a", (("a-0", (0,)),)),
            seconds_on={"a": 3600.0},
        ),
        JobStatus(
            Job("hi", submit_time=0.0, preemptible=True), JobState.QUEUED, seconds_on={"a": 100.0, "b": 100.0}
        ),
        JobStatus(Job("lo", submit_time=0.0, preemptible=True), JobState.QUEUED, seconds_on={"b": 1000.0}),
    )
    rows = {j: {"a": 1.0, "b": 1.0} for j in SHARES}
    tput = ThroughputMatrix.from_rows(rows, ("a", "b"))
    snap = Snapshot(now, (Node("a-0", "a", 1), Node("b-0", "b", 1)), jobs, tput, round_seconds=360.0)
    d = decide(snap, by_table, config=RoundConfig.per_round())
    assert {p.job: p.accelerator for p in d.placements()} == {"fixed": "a", "lo": "b"}


def only_b_for_up(problem: AllocationProblem) -> Allocation:
    x = np.zeros((problem.n_jobs, problem.n_types))
    x[problem.job_ids.index("up"), problem.types.index("b")] = 1.0
    return Allocation(problem.job_ids, problem.types, x, "fixed")


@pytest.mark.parametrize(
    ("config", "running", "want"),
    [
        (RoundConfig.per_round(), False, {"up": "a", "other": "b"}),
        (RoundConfig.per_round(), True, {"up": "a", "other": "b"}),
        (dataclasses.replace(RoundConfig.per_round(), move_up=False), False, {"up": "b"}),
        (RoundConfig(), False, {"up": "a", "other": "b"}),
        (RoundConfig(min_run_seconds=0.0), True, {"up": "b"}),
    ],
)
def test_a_chosen_job_moves_up_to_a_faster_type_that_would_idle(config, running, want):
    # "up" was given the slow type b only; a (twice as fast for it) would idle. Move-up puts it on a, as
    # Gavel's fill of its types, fastest first, with every job does, and the b device it leaves goes to
    # "other" (given nothing: back-fill, it can use b only). Under leases a running job does not move
    # (a move is a restart); a job that starts does. move_up=False: it stays on b and a idles.
    up = Job("up", submit_time=0.0, preemptible=True)
    p = Placement("up", "b", (("b-0", (0,)),))
    jobs = (
        JobStatus(up, JobState.RUNNING, placement=p, seconds_on={"b": 3600.0})
        if running
        else JobStatus(up, JobState.QUEUED),
        JobStatus(Job("other", submit_time=0.0, preemptible=True), JobState.QUEUED),
    )
    tput = ThroughputMatrix.from_rows({"up": {"a": 2.0, "b": 1.0}, "other": {"b": 1.0}}, ("a", "b"))
    snap = Snapshot(3600.0, (Node("a-0", "a", 1), Node("b-0", "b", 1)), jobs, tput, round_seconds=360.0)
    d = decide(snap, only_b_for_up, config=config)
    assert {q.job: q.accelerator for q in d.placements()} == want


@pytest.mark.parametrize(
    ("b_seconds", "keep_bonus", "on_device"),
    [(1000.0, 0.25, "a"), (1000.0, 0.0, "b"), (500.0, 0.25, "b")],
)
def test_waiting_jobs_of_nearly_equal_lag_keep_one_order(b_seconds, keep_bonus, on_device):
    # one device, two waiting jobs of equal share (0.5), both 1 h old; "a" ran 1,200 s (job ratio
    # 1,800 / (1,200 + 180) = 1.30), "b" 1,000 s (1.53). Priorities are compared in bands of 1 + the keep
    # bonus (1.25: both lie in [1.25, 1.5625)), so the tie order decides: equal shares, then the job's
    # place (submit order), "a". Without bands (keep bonus 0) "b", which lags a little more, goes first;
    # "b" lagging clearly more (500 s: 2.65, another band) goes first with bands too.
    now = 3600.0
    jobs = (
        JobStatus(Job("a", submit_time=0.0, preemptible=True), JobState.QUEUED, seconds_on={"x": 1200.0}),
        JobStatus(Job("b", submit_time=0.0, preemptible=True), JobState.QUEUED, seconds_on={"x": b_seconds}),
    )
    tput = ThroughputMatrix.from_rows({"a": {"x": 1.0}, "b": {"x": 1.0}}, ("x",))
    snap = Snapshot(now, (Node("x-0", "x", 1),), jobs, tput, round_seconds=360.0)
    config = dataclasses.replace(RoundConfig.per_round(), keep_bonus=keep_bonus)
    d = decide(snap, half_each_on_one_device, config=config)
    assert [p.job for p in d.placements()] == [on_device]

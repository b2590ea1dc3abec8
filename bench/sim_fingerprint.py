"""A fingerprint of what the simulator decides, to check that a speed change changes no behaviour.

    python bench/sim_fingerprint.py [--cases physical,b436b2-cut,11cb48-fifo] [--rounds 6000] [--full] [--out F.json]

For each case it runs ``simulate`` (Gavel's semantics, 360 s rounds, as ``bench_sim.py peer``; the
physical-cluster cases also under the live defaults with a 60 s restart overhead) and hashes every round's
decision (starts and keeps with their devices, the keeps as a set, sorted by job; preemptions with
reasons, each waiting job's reason code and queue position, the allocation), every job's final record
(state, times, events, reason in words, position, preemptions) and the timeline. It prints one line per case: the hash, rounds, average JCT of
the jobs that finished, preemptions, CPU seconds. Run it before and after a change (same commit of the
traces); the hashes must be equal. ``--out`` writes the lines as JSON for a later ``--check F.json``,
which compares the hash, the average JCT and the preemptions exactly (a file without the last two, from
before they were recorded, is compared on its hashes).

``--full`` adds the whole-trace cases (``b436b2-whole-*``: all of b436b2 at 8:8:8, Gavel's semantics,
max-min-fairness, fair-share and fifo; 26, 35 and ~30 s CPU on a quiet machine at 8bed2de): the 6,000-round cut misses a decision change that
shows only later (the warm hint's first-stage plans moved the aware average JCT 864,351 -> 873,075 s with
the cut's hash unchanged). ``--check F`` also runs every whole-trace case that F holds.

Needs ../shared/traces (this machine's shared folder); says so and stops when absent.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from accelpool.core.policies import get_policy
from accelpool.core.round_config import RoundConfig
from accelpool.core.rounds import Placement
from accelpool.runtime.reconciler import RoundReport
from accelpool.sim.engine import simulate
from accelpool.sim.gavel import read_gavel_trace
from accelpool.sim.metrics import compute
from accelpool.sim.workload import Workload

TRACES = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "gavel"


def _case_list(rounds: int, full: bool) -> dict[str, tuple[str, str, str, int | None, bool]]:
    """name -> (trace, cluster v100:p100:k80, policy, max_rounds, live semantics); ``full``: with the
    whole-trace cases (WHOLE)."""
    phys = "physical_cluster/max_min_fairness.trace"
    cases: dict[str, tuple[str, str, str, int | None, bool]] = {}
    for pol in ("max-min-fairness", "fair-share", "fifo", "finish-time-fairness"):
        cases[f"physical-{pol}"] = (phys, "8:16:24", pol, None, False)
    for pol in ("max-min-fairness", "fair-share", "fifo"):
        cases[f"physical-live-{pol}"] = (phys, "8:16:24", pol, None, True)
    for pol in ("max-min-fairness", "fair-share", "fifo"):
        cases[f"b436b2-cut-{pol}"] = ("philly_vc/b436b2.trace", "8:8:8", pol, rounds, False)
    cases["11cb48-fifo"] = ("philly_vc/11cb48.trace", "36:36:36", "fifo", None, False)
    if full:
        for pol in ("max-min-fairness", "fair-share", "fifo"):
            cases[f"{WHOLE}{pol}"] = ("philly_vc/b436b2.trace", "8:8:8", pol, None, False)
    return cases


WHOLE = "b436b2-whole-"


def _feed(h: Any, *parts: object) -> None:
    h.update(repr(parts).encode())


def _job_of(p: Placement) -> str:
    return p.job


def gavel_workload(trace: str, cluster: str) -> Workload:
    """A Gavel trace (relative to ../shared/traces/gavel) on a v100:p100:k80 cluster; stops with a word
    when the shared traces are absent. Also used by bench/live_jct.py."""
    path = TRACES / trace
    if not path.exists():
        print(f"traces not found at {path}: this script needs ../shared/traces")
        sys.exit(1)
    counts = [int(c) for c in cluster.split(":")]
    return read_gavel_trace(path, dict(zip(("v100", "p100", "k80"), counts, strict=True)))


def fingerprint(trace: str, cluster: str, policy: str, max_rounds: int | None, live: bool) -> dict[str, Any]:
    w = gavel_workload(trace, cluster)
    h = hashlib.sha256()

    def on_round(r: RoundReport) -> None:
        d = r.decision
        # the kept placements as a set: their order in Decision.keep carries no meaning
        _feed(h, d.now, d.boundary, d.start, sorted(d.keep, key=_job_of), d.preempt)
        _feed(h, sorted((j, str(c)) for j, c in d.waiting.items()), sorted(d.positions.items()))
        a = d.allocation
        _feed(h, a.job_ids, a.types, a.x.round(9).tobytes())
        _feed(
            h,
            [
                (c.job, c.accelerator, c.device_seconds, c.amount_krw, c.start, c.end, c.site)
                for c in r.charges
            ],
        )

    c0 = time.process_time()
    res = simulate(
        w,
        get_policy(policy),
        policy_name=policy,
        round_seconds=360.0,
        restart_overhead_seconds=60.0 if live else 0.0,
        config=RoundConfig() if live else RoundConfig.per_round(),
        max_rounds=max_rounds,
        on_round=on_round,
    )
    cpu = time.process_time() - c0
    for jid in sorted(res.records):
        rec = res.records[jid]
        _feed(
            h,
            jid,
            str(rec.status.state),
            rec.status.steps_done,
            rec.start_time,
            rec.end_time,
            rec.preemptions,
            rec.position,
            rec.reason,
            rec.events,
        )
    tl = res.timeline
    _feed(
        h,
        tl.time,
        tl.interval,
        tl.busy,
        tl.tenant_busy,
        tl.active,
        tl.grant_left,
        tl.preemptions,
        tl.busy_until,
    )
    _feed(h, res.rounds, res.unschedulable, res.unfinished, sorted(res.charges_krw.items()))
    m = compute(res)
    return {
        "hash": h.hexdigest()[:16],
        "rounds": res.rounds,
        "avg_jct_seconds": m["avg_jct_seconds"],
        "preemptions": m["preemptions"],
        "cpu_seconds": round(cpu, 2),
    }


def _differs(want: dict[str, Any], got: dict[str, Any]) -> str:
    """What differs between a recorded case and this run's ('' when the same); the JCT and preemptions
    only where the record has them."""
    keys = [k for k in ("hash", "avg_jct_seconds", "preemptions") if k in want]
    return ", ".join(f"{k} was {want[k]}" for k in keys if want[k] != got[k])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="", help="comma-separated name prefixes (default: all)")
    ap.add_argument("--rounds", type=int, default=6000, help="rounds of the b436b2 8:8:8 cut")
    ap.add_argument("--full", action="store_true", help="also the whole-trace cases (b436b2-whole-*)")
    ap.add_argument("--out", default=None)
    ap.add_argument(
        "--check",
        default=None,
        help="a file written by --out: compare (hash, JCT, preemptions) and exit 1 on a mismatch;"
        " runs the whole-trace cases it holds",
    )
    a = ap.parse_args()
    expect = json.loads(Path(a.check).read_text()) if a.check else {}
    cases = _case_list(a.rounds, a.full or any(n.startswith(WHOLE) for n in expect))
    want = [p for p in a.cases.split(",") if p]
    out: dict[str, Any] = {}
    bad = 0
    for name, spec in cases.items():
        if want and not any(name.startswith(p) for p in want):
            continue
        fp = fingerprint(*spec)
        out[name] = fp
        verdict = ""
        if name in expect:
            diff = _differs(expect[name], fp)
            bad += bool(diff)
            verdict = f"DIFFERENT ({diff})" if diff else "same"
        jct = fp["avg_jct_seconds"]
        print(
            f"{name:36s} {fp['hash']} rounds {fp['rounds']:>6} jct {'-' if jct is None else f'{jct:,.3f}':>13} s"
            f" preempt {fp['preemptions']:>6} cpu {fp['cpu_seconds']:7.2f} s {verdict}",
            flush=True,
        )
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

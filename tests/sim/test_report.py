"""The simulate report a decision-maker reads: human units, better-is-lower/higher, a winner with a reason,
metrics defined, comparisons over the same jobs, utilization at most 100%, tenant shares readable."""

from __future__ import annotations

import json
import re

from accelpool.cli.main import main
from accelpool.sim.report import human_duration


def test_human_durations():
    assert human_duration(45) == "45 s"
    assert human_duration(600) == "10 min"
    assert human_duration(5 * 3600) == "5.0 h"
    assert human_duration(3 * 86400) == "3.0 days"
    assert human_duration(None) == "-"


def test_synthetic_report_reads_well_and_utilization_stays_at_most_one(tmp_path):
    rep, js = tmp_path / "rep", tmp_path / "m.json"
    code = main(
        [
            "simulate",
            "--format",
            "synthetic",
            "--cluster",
            "h100=16,a100=16",
            "--jobs",
            "200",
            "--policy",
            "fifo,max-min-fairness",
            "--json",
            str(js),
            "--report",
            str(rep),
        ]
    )
    assert code == 0
    data = json.loads(js.read_text())
    for m in data.values():
        # jobs still run when the last finished one ends: the divisor is the time the rounds cover
        assert m["jobs_unfinished"] > 0
        assert 0 < m["utilization_total"] <= 1.0
        assert all(0 <= u <= 1.0 for u in m["utilization"].values()), m["utilization"]
    html = (rep / "index.html").read_text()
    assert '<meta name="viewport"' in html
    assert "lower is better" in html and "higher is better" in html
    assert "rho_max" not in html and "_seconds" not in html.split("<h2>Files")[0]
    assert re.search(r"does best here: on the \d+ jobs every policy finished", html)
    assert html.count('class="winner"') == 1 and 'class="best"' in html
    assert "What the metrics mean" in html and "Themis" in html
    assert re.search(r"\d+(\.\d)? (h|days|min)<", html)  # durations in human units
    assert "average completion time, same jobs" in html
    assert (rep / "tenant_shares.png").stat().st_size > 0  # several tenants here

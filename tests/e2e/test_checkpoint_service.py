"""End to end through the whole service (`accelpool up --demo`, local executor, sandboxed jobs): a
preemptible job submitted through the API runs, is preempted at a lease boundary for a job of another
tenant that is owed its share, checkpoints on SIGTERM into its default ACCELPOOL_CHECKPOINT_DIR
(<data dir>-checkpoints/<job id>) and, started again, resumes from that checkpoint and completes (issue 10,
the preemption contract; docs/scheduling.md)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from accelpool.service.process import ServerProcess

pytestmark = pytest.mark.e2e

# 40 steps of 0.25 s; on SIGTERM it saves the step it reached and exits 143 (128 + SIGTERM)
RESUMABLE = (
    'd="$ACCELPOOL_CHECKPOINT_DIR"; i=$(cat "$d/step" 2>/dev/null || echo 0); '
    'echo "attempt $ACCELPOOL_ATTEMPT resumes at step $i in $d"; '
    'trap \'echo $i > "$d/step"; echo "checkpointed at step $i"; exit 143\' TERM; '
    'while [ "$i" -lt 40 ]; do i=$((i+1)); echo "$i" > "$ACCELPOOL_PROGRESS_FILE"; sleep 0.25; done; '
    'echo "done at step $i"'
)
OVER = ("succeeded", "failed", "cancelled")


def _until(what: str, cond, seconds: float = 90.0) -> Any:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_preempted_job_resumes_from_its_default_checkpoint_dir(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(
        data, "--demo", "--round-seconds", "0.3", "--lease", "2", "--min-run", "0", "--restart-cost", "0"
    ).start()
    h = {"Authorization": "Bearer " + (data / "admin-token").read_text().strip()}
    try:
        with httpx.Client(base_url=server.url, headers=h, timeout=10) as c:

            def job(jid: str) -> dict[str, Any]:
                return c.get(f"/api/v1/jobs/{jid}").json()

            def logs(jid: str) -> str:
                return str(c.get(f"/api/v1/jobs/{jid}/logs").json()["logs"])

            # the demo's own example jobs first, so the 8 h100 are ours alone
            _until(
                "the demo's jobs to end",
                lambda: (
                    (items := c.get("/api/v1/jobs").json()["items"])
                    and all(j["state"] in OVER for j in items)
                ),
            )
            r = c.post(
                "/api/v1/jobs?tenant=demo-startup",
                json={
                    "name": "resumable",
                    "command": RESUMABLE,
                    "resources": {"type": "h100", "count": 8},
                    "preemptible": True,
                    "grace_seconds": 20,
                },
            )
            assert r.status_code == 201, r.text
            a = r.json()["id"]
            _until(
                "the job's first steps", lambda: "resumes at step 0" in logs(a) and job(a)["steps_done"] >= 3
            )
            r = c.post(
                "/api/v1/jobs?tenant=demo-lab",
                json={"name": "other", "command": "sleep 2", "resources": {"type": "h100", "count": 8}},
            )
            assert r.status_code == 201, r.text
            b = r.json()["id"]
            _until("both jobs to end", lambda: job(a)["state"] in OVER and job(b)["state"] in OVER, 120.0)
            ja, jb = job(a), job(b)
            assert ja["state"] == "succeeded" and jb["state"] == "succeeded", (ja, jb, logs(a))
            states = [e["state"] for e in c.get(f"/api/v1/jobs/{a}/events").json()["items"]]
            assert states.count("preempted") == 1 and states.count("running") == 2, states
            preempted = next(e for e in ja["events"] if e["state"] == "preempted")
            assert preempted["reason"] == "lease" and preempted["cause"] == "preempted", ja["events"]
            text = logs(a)
            ckpt = data.parent / "data-checkpoints" / a
            assert f"attempt 1 resumes at step 0 in {ckpt}" in text, text
            saved = int(text.split("checkpointed at step ")[1].split()[0])
            assert 3 <= saved < 40, text
            assert f"attempt 2 resumes at step {saved} in {ckpt}" in text, text  # not from scratch
            assert "done at step 40" in text and (ckpt / "step").read_text().strip() == str(saved)
            assert [e["state"] for e in jb["events"]].count("running") == 1  # the other job ran once
    finally:
        server.kill()

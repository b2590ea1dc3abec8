"""Crash consistency: kill -9 the server during submissions and during rounds; restart; nothing accepted is
lost, nothing is doubled, no job runs twice at once."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from accelpool.service.process import ServerProcess

pytestmark = pytest.mark.e2e


def _admin(data):
    return {"Authorization": "Bearer " + (data / "admin-token").read_text().strip()}


def test_kill_during_submissions_loses_and_doubles_nothing(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, "--demo", "--executor", "fake", "--round-seconds", "0.2").start()
    h = _admin(data)
    acked: dict[str, str] = {}
    stop = threading.Event()

    def client(n):
        with httpx.Client(base_url=server.url, headers=h, timeout=5) as c:
            for i in range(10_000):
                if stop.is_set():
                    return
                key = f"c{n}-{i}"
                try:
                    r = c.post(
                        "/api/v1/jobs?tenant=demo-startup",
                        json={"name": key, "command": "true"},
                        headers={"Idempotency-Key": key},
                    )
                except httpx.HTTPError:
                    return
                if r.status_code == 201:
                    acked[key] = r.json()["id"]

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 150:
        threading.Event().wait(0.05)
    server.kill()  # kill -9 while submissions are in flight
    stop.set()
    for t in threads:
        t.join()
    server.start()
    with httpx.Client(base_url=server.url, headers=h, timeout=10) as c:
        jobs, cursor = [], None
        while True:
            page = c.get(
                "/api/v1/jobs",
                params={"limit": 1000, **({"cursor": cursor} if cursor else {}), "tenant": "demo-startup"},
            ).json()
            jobs += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        by_name = {}
        for j in jobs:
            assert j["name"] not in by_name, "a submission was doubled"
            by_name[j["name"]] = j["id"]
        for key, job_id in acked.items():
            assert by_name.get(key) == job_id, f"acknowledged job {key} lost"
        # clients retry every key they sent: none is doubled
        key = next(iter(acked))
        r = c.post(  # the same request again (another body under the key is 409: tests/api/test_api.py)
            "/api/v1/jobs?tenant=demo-startup",
            json={"name": key, "command": "true"},
            headers={"Idempotency-Key": key},
        )
        assert r.status_code == 200 and r.json()["id"] == acked[key]
    server.kill()


# Each job holds a lock directory while it runs: a second copy running at the same time records DOUBLE.
_LOCKED = (
    'mkdir "{locks}/$ACCELPOOL_JOB_ID" 2>/dev/null || echo "$ACCELPOOL_JOB_ID" >> "{locks}/DOUBLE"; '
    'trap \'rmdir "{locks}/$ACCELPOOL_JOB_ID"; exit 143\' TERM; sleep 2; rmdir "{locks}/$ACCELPOOL_JOB_ID"'
)


def test_kill_during_rounds_no_job_runs_twice(tmp_path):
    """kill -9 twice while jobs run, are preempted and placed again; every job ends exactly once, never
    runs twice at once, and every start the executor made was recorded (no unrecorded or double start)."""
    data = tmp_path / "data"
    data.mkdir()
    locks = tmp_path / "locks"
    locks.mkdir()
    locks.chmod(0o777)  # jobs run sandboxed as an unprivileged uid: the operator grants them this volume
    cfg = tmp_path / "sandbox.json"
    cfg.write_text(json.dumps({"volumes": {"*": [[str(locks), "rw"]]}}))
    server = ServerProcess(data, "--demo", "--round-seconds", "0.2", "--sandbox-config", str(cfg)).start()
    h = _admin(data)
    try:
        with httpx.Client(base_url=server.url, headers=h, timeout=10) as c:
            for i in range(8):
                assert (
                    c.post(
                        "/api/v1/jobs?tenant=demo-startup",
                        json={
                            "name": f"s{i}",
                            "command": _LOCKED.format(locks=locks),
                            "resources": {"type": "h100", "count": 2},
                        },
                    ).status_code
                    == 201
                )
        for pause in (1.3, 0.9):
            threading.Event().wait(pause)
            server.kill()  # kill -9 while jobs run and rounds are being taken
            server.start()
        with httpx.Client(base_url=server.url, headers=h, timeout=10) as c:
            items: list[dict] = []
            for _ in range(240):
                items = c.get("/api/v1/jobs", params={"limit": 100}).json()["items"]
                if all(j["state"] in ("succeeded", "failed", "cancelled") for j in items):
                    break
                threading.Event().wait(0.5)
            assert len(items) == 8 + 4  # ours and the demo's: none lost
            assert all(j["state"] == "succeeded" for j in items), [
                (j["name"], j["state"], j["reason"]) for j in items
            ]
            for j in items:
                states = [e["state"] for e in c.get(f"/api/v1/jobs/{j['id']}/events").json()["items"]]
                assert states.count("succeeded") == 1
                assert states.count("running") == 1 + states.count("preempted"), states
                logs = c.get(f"/api/v1/jobs/{j['id']}/logs").json()["logs"]
                assert 1 <= logs.count("=== accelpool: attempt") <= states.count("running"), (states, logs)
        assert not (locks / "DOUBLE").exists(), (locks / "DOUBLE").read_text()
        log = (data.parent / f"server-{server.port}.log").read_text()
        assert "scheduling round failed" not in log, log
    finally:
        server.kill()

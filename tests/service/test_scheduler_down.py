"""While the scheduler is down (kill -9 of `accelpool up`, local executor), jobs keep running under their
wrappers: an exit in that time is billed only until the exit the wrapper recorded, not until the restart;
a job whose processes died with it runs again as the store's next attempt (ACCELPOOL_ATTEMPT continues);
no wrapper outlives its job (issue 12)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from accelpool.service.process import ServerProcess

PRICE = 3_600_000  # KRW per device-hour: 1,000 KRW per device-second, so a charge reads as seconds
ARGS = ("--executor", "local", "--round-seconds", "1")


def _setup(url: str, data: Path) -> dict[str, str]:
    admin = {"Authorization": "Bearer " + (data / "admin-token").read_text().strip()}
    with httpx.Client(base_url=url, headers=admin, timeout=30) as c:
        for path, body in (
            ("/api/v1/tenants", {"id": "t"}),
            ("/api/v1/programs", {"id": "p", "budget_krw": 10**12}),
            ("/api/v1/grants", {"program": "p", "tenant": "t", "amount_krw": 10**10}),
            ("/api/v1/nodes", {"name": "n0", "accelerator": "h100", "devices": 8}),
        ):
            assert c.post(path, json=body).status_code == 201, (path, c.post(path, json=body).text)
        assert c.put("/api/v1/prices", json={"h100": PRICE}).status_code == 200
        tok = c.post("/api/v1/tokens", json={"role": "member", "tenant": "t"}).json()["secret"]
    return {"Authorization": f"Bearer {tok}"}


def _submit(url: str, h: dict[str, str], name: str, command: str) -> str:
    body = {"name": name, "command": command, "resources": {"type": "h100", "count": 1}, "preemptible": False}
    r = httpx.post(url + "/api/v1/jobs", json=body, headers=h, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _job(url: str, h: dict[str, str], job: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/api/v1/jobs/{job}", headers=h, timeout=30).json())


def _wait(url: str, h: dict[str, str], job: str, states: set[str], timeout: float = 60.0) -> dict[str, Any]:
    end = time.time() + timeout
    while time.time() < end:
        v = _job(url, h, job)
        if v["state"] in states:
            return v
        time.sleep(0.2)
    raise AssertionError(f"{job} never reached {states}: {v}")


def _wrappers(data: Path, job: str) -> list[int]:
    """Live processes whose command line names the job's state dir (its wrappers)."""
    needle = str(data / "executor" / "jobs" / job).encode()
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _cpu_s(pid: int) -> float:
    f = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(300)
def test_exit_while_the_scheduler_is_down_is_billed_until_the_exit_and_attempts_continue(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, *ARGS).start()
    try:
        h = _setup(server.url, data)
        short = _submit(server.url, h, "short", "sleep 6")  # exits while the scheduler is down
        lost = _submit(server.url, h, "lost", 'echo "attempt=$ACCELPOOL_ATTEMPT"; sleep 600')
        _wait(server.url, h, short, {"running"})
        _wait(server.url, h, lost, {"running"})
        end = time.time() + 30  # its first attempt has printed (a kill before that lost the line)
        while (
            "attempt=1"
            not in httpx.get(f"{server.url}/api/v1/jobs/{lost}/logs", headers=h, timeout=30)
            .json()
            .get("logs", "")
            and time.time() < end
        ):
            time.sleep(0.2)
        wrappers = _wrappers(data, short)
        assert wrappers, "the short job's wrapper is not running"
        lost_state = json.loads((data / "executor" / "jobs" / lost / "state.json").read_text())
    finally:
        server.kill(signal.SIGKILL)  # the whole control plane, as kill -9
    down_at = time.time()
    for r in lost_state["ranks"]:  # the other job's processes die with the control plane: it is lost
        os.killpg(r["pid"], signal.SIGKILL)
    # the short job's wrappers stay (the job runs on, to be adopted) and wait without polling
    cpu0 = {p: _cpu_s(p) for p in wrappers}
    time.sleep(1.0)
    assert sum(_cpu_s(p) for p in wrappers) - sum(cpu0.values()) < 0.2
    time.sleep(9.0)  # the short job ends (6 s after it started) while nothing watches it
    assert _wrappers(data, short) == [], "a wrapper outlived its job"
    restart = time.time()
    server = ServerProcess(data, *ARGS).start()
    try:
        v = _wait(server.url, h, short, {"succeeded", "failed"})
        assert v["state"] == "succeeded", v
        seconds = v["charged_krw"] / (PRICE / 3600)
        # billed for the ~6 s it ran (plus at most a round's rounding), not until the restart (> 16 s)
        events = httpx.get(f"{server.url}/api/v1/jobs/{short}/events", headers=h, timeout=30).json()
        assert 5.0 <= seconds <= 8.0, json.dumps([seconds, restart, down_at, v, events])
        assert v["end_time"] < restart - 2.0, (v["end_time"], restart)
        # the lost job runs again as the store's attempt 2 (the new scheduler's own count would say 1)
        again = _wait(server.url, h, lost, {"running"})
        assert again["attempts"] == 2, again
        end = time.time() + 30
        while (
            "attempt=2"
            not in (
                logs := httpx.get(f"{server.url}/api/v1/jobs/{lost}/logs", headers=h, timeout=30)
                .json()
                .get("logs", "")
            )
            and time.time() < end
        ):
            time.sleep(0.3)
        assert "attempt=1" in logs and "attempt=2" in logs, logs
    finally:
        server.kill(signal.SIGKILL)
        for p in _wrappers(data, lost):
            try:
                os.killpg(p, signal.SIGKILL)
            except OSError:
                pass

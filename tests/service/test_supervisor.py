"""The split control plane: a supervisor running the API and the scheduler as two processes that share only
the database. Cancels reach the executor through the store; a child that dies is restarted; SIGTERM stops
everything cleanly."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from accelpool.service.process import ServerProcess

pytestmark = pytest.mark.e2e


def _admin(data: Path) -> dict[str, str]:
    return {"Authorization": "Bearer " + (data / "admin-token").read_text().strip()}


def _wait(pred, timeout: float = 30.0, every: float = 0.1):  # type: ignore[no-untyped-def]
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    return pred()


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(d.name))
    return out


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        return ""
    return cmd[3].decode() if len(cmd) > 3 and cmd[2] == b"accelpool.service.supervisor" else ""


def test_cancel_of_a_running_job_stops_it_promptly_and_charges_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, "--demo", "--round-seconds", "3").start()
    try:
        with httpx.Client(base_url=server.url, headers=_admin(data), timeout=10) as c:
            # the job is sandboxed (it cannot write the test's files): it says in its log that it got SIGTERM
            command = "trap 'echo got-term; exit 143' TERM; echo started; sleep 60 & wait"
            r = c.post(
                "/api/v1/jobs?tenant=demo-startup",
                json={"name": "long", "command": command, "resources": {"type": "a100", "count": 1}},
            )
            assert r.status_code == 201, r.text
            job = r.json()["id"]
            # a submission is noticed by the scheduler within about a second, not at the next round
            assert _wait(lambda: c.get(f"/api/v1/jobs/{job}").json()["state"] == "running", 15)
            assert _wait(lambda: "started" in c.get(f"/api/v1/jobs/{job}/logs").json()["logs"], 10)
            time.sleep(1.0)
            t0 = time.time()
            out = c.post(f"/api/v1/jobs/{job}/cancel").json()
            assert out["state"] == "cancelled"
            assert _wait(lambda: "got-term" in c.get(f"/api/v1/jobs/{job}/logs").json()["logs"], 5, 0.05), (
                "the job's process got no SIGTERM"
            )
            assert time.time() - t0 < 2.0
            # billed from the process's start to the cancel, once the scheduler has polled the start (the
            # next round at the latest)
            assert _wait(lambda: c.get(f"/api/v1/jobs/{job}").json()["charged_krw"] > 0, 10)
            shown = c.get(f"/api/v1/jobs/{job}").json()
            assert [e["state"] for e in shown["events"]] == ["queued", "running", "cancelled"]
            # a queued job is cancelled at once
            r = c.post(
                "/api/v1/jobs?tenant=demo-startup",
                json={"name": "big", "command": "true", "resources": {"type": "h100", "count": 8}},
            )
            q = r.json()["id"]
            assert c.post(f"/api/v1/jobs/{q}/cancel").json()["state"] == "cancelled"
    finally:
        server.kill()


def test_a_dead_child_is_restarted_and_sigterm_stops_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, "--executor", "fake", "--round-seconds", "0.2").start()
    assert server.proc is not None
    sup = server.proc.pid
    try:
        kids = _wait(lambda: {_role(p): p for p in _children(sup) if _role(p)}.keys() >= {"api", "scheduler"})
        assert kids
        roles = {_role(p): p for p in _children(sup)}
        st = _wait(lambda: (data / "run" / "scheduler.json").exists(), 10)
        assert st
        os.kill(roles["scheduler"], signal.SIGKILL)
        os.kill(roles["api"], signal.SIGKILL)
        again = _wait(
            lambda: (
                (r := {_role(p): p for p in _children(sup)}).get("scheduler")
                not in (None, roles["scheduler"])
                and r.get("api") not in (None, roles["api"])
                and _healthy(server.url)
            ),
            30,
            0.3,
        )
        assert again, "the children were not restarted"
        new_scheduler = {_role(p): p for p in _children(sup)}["scheduler"]
        assert _wait(
            lambda: json.loads((data / "run" / "scheduler.json").read_text())["pid"] == new_scheduler
        )
        metrics = httpx.get(server.url + "/metrics").text
        assert "accelpool_scheduler_rounds" in metrics
        server.kill(signal.SIGTERM)
        assert server.proc.returncode == 0
        assert not _children(sup)
        log = (data.parent / f"server-{server.port}.log").read_text()
        assert "scheduler process killed by signal 9" in log and "restarting it" in log, log
    finally:
        server.kill()

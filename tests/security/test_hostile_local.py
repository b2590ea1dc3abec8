"""Hostile jobs against `accelpool up` with the local executor: every attack in hostile.ATTACKS must fail."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.security.hostile import (
    ATTACKS,
    Ctx,
    assert_attack_failed,
    run_attacks,
    start_pool,
    start_victim,
    stop_victim,
)

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (scripts/setup.sh installs it)")
    server, ctx = start_pool(tmp_path_factory.mktemp("hostile"), "--round-seconds", "0.3")
    try:
        ctx.vars["executor"] = "local"
        start_victim(ctx, server)
        yield ctx
    finally:
        stop_victim(ctx)
        server.kill()


def test_at_least_25_attacks() -> None:
    assert len(ATTACKS) >= 25


def test_wave1_attacks_all_fail(pool: Ctx) -> None:
    failures = []
    results = list(run_attacks(pool, [a for a in ATTACKS if a.wave == 1]))
    for a, job, logs in results:
        try:
            assert_attack_failed(pool, a, job, logs)
        except AssertionError as exc:
            failures.append(f"{a.name}: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("name", [a.name for a in ATTACKS if a.wave == 2])
def test_wave2_exhaustion_attacks_fail(pool: Ctx, name: str) -> None:
    a = next(a for a in ATTACKS if a.name == name)
    ((_, job, logs),) = list(run_attacks(pool, [a]))
    assert_attack_failed(pool, a, job, logs)
    with httpx.Client(base_url=pool.url, timeout=10) as c:
        assert c.get("/healthz").status_code == 200


def test_job_token_reports_progress_and_reads_only_its_own_job(pool: Ctx, tmp_path: Path) -> None:
    """Positive control for the job token: the job can read itself and report progress with it."""
    from tests.security.hostile import Attack

    cmd = (
        "python3 -c \"import os,json,urllib.request as u; h={'Authorization':'Bearer '+os.environ['ACCELPOOL_TOKEN'],"
        "'Content-Type':'application/json'}; base=os.environ['ACCELPOOL_URL']+'/api/v1/jobs/'+os.environ['ACCELPOOL_JOB_ID'];"
        "print('self', u.urlopen(u.Request(base, headers=h)).status);"
        "print('progress', u.urlopen(u.Request(base+'/progress', data=json.dumps({'steps': 7}).encode(), headers=h, method='POST')).status)\""
    )
    a = Attack("job-token-positive", cmd.replace("{", "{{").replace("}", "}}"))
    ((_, job, logs),) = list(run_attacks(pool, [a]))
    assert job["state"] == "succeeded", (job["reason"], logs)
    assert "self 200" in logs and "progress 200" in logs, logs
    assert job["steps_done"] == 7


def test_the_demos_client_config_uses_the_member_token(pool: Ctx) -> None:
    """A newcomer who follows the README acts as a member of the demo tenant, not as the admin."""
    import json

    from accelpool.service import demo

    cfg = json.loads((pool.data / "client.json").read_text())
    token = Path(cfg["token_file"]).read_text().strip()
    assert cfg["tenant"] == demo.TENANTS[0], cfg
    assert token == (pool.data / f"token-{demo.TENANTS[0]}").read_text().strip() and token != pool.admin
    with httpx.Client(base_url=pool.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        who = c.get("/api/v1/whoami").json()
        assert who["role"] == "member" and who["tenant"] == demo.TENANTS[0], who
        assert len(c.get("/api/v1/tokens").json()["items"]) == 1  # its own token only

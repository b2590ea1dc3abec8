"""End to end: `accelpool up --demo` as a subprocess; submit a real job from YAML with the CLI; it runs to
completion with its devices in its environment; its charge shows in `accelpool usage`."""

from __future__ import annotations

import json
import signal
import time

import pytest

from accelpool.cli.main import main
from accelpool.service.process import ServerProcess

pytestmark = pytest.mark.e2e

JOB = """\
name: e2e-train
program: k-ai-compute
kind: training
resources:
  type: h100
  count: 2
command: echo "GPUS=$CUDA_VISIBLE_DEVICES JOB=$ACCELPOOL_JOB_ID"; sleep 2
max_run_time: 10m
"""


def cli(capsys, *args):
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr().out
    return code, out


def test_demo_submit_run_and_charge(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    server = ServerProcess(data, "--demo", "--round-seconds", "0.5").start()
    try:
        spec = tmp_path / "job.yaml"
        spec.write_text(JOB)
        d = ["--data-dir", str(data)]
        code, out = cli(capsys, "submit", str(spec), "--json", *d)
        assert code == 0, out
        job_id = json.loads(out)["id"]
        deadline = time.time() + 60
        state = ""
        while time.time() < deadline:
            code, out = cli(capsys, "show", job_id, "--json", *d)
            state = json.loads(out)["state"]
            if state in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.3)
        assert state == "succeeded", out
        code, out = cli(capsys, "logs", job_id, *d)
        assert f"JOB={job_id}" in out
        gpus = out.split("GPUS=")[1].split()[0]
        assert len(gpus.split(",")) == 2
        code, out = cli(capsys, "usage", "--json", "--by", "tenant", *d)
        rep = json.loads(out)
        assert rep["total_krw"] > 0 and rep["items"][0]["tenant"] == "demo-lab"
        shown = json.loads(cli(capsys, "show", job_id, "--json", *d)[1])
        assert shown["charged_krw"] > 0
        assert [e["state"] for e in shown["events"]] == ["queued", "running", "succeeded"]
        # the demo's own example jobs ran too
        jobs = json.loads(cli(capsys, "jobs", "--json", *d)[1])
        assert len(jobs) == 5
    finally:
        server.kill(signal.SIGTERM)

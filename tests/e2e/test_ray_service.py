"""`accelpool up --executor ray` against a real multi-node Ray cluster on this machine.

Cluster (ray.cluster_utils.Cluster, 1 CPU and an 80 MB object store per node): a head with 4 RBLN devices
of a type the catalogue does not know (reported, not pooled), two nodes of 4 emulated H100 (so a gang of 8
is placed 4+4) and one of 8 FuriosaAI RNGD. The server runs as a subprocess (the Ray driver); the test
talks to it through the SDK only, kills it with -9 while an NPU job runs and checks the job is adopted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from accelpool.sdk import Client  # noqa: E402
from accelpool.service.process import ServerProcess  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.e2e]
MB = 1024 * 1024


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "object_store_memory": 80 * MB,
            "include_dashboard": False,
            "resources": {"RBLN": 4, "accelerator_type:RBLN-CA99": 4},
        },
    )
    try:
        for name, kw in (
            ("h100-0", {"num_gpus": 4, "resources": {"accelerator_type:H100": 4}}),
            ("h100-1", {"num_gpus": 4, "resources": {"accelerator_type:H100": 4}}),
            ("rngd-0", {"resources": {"FURIOSA": 8, "accelerator_type:FURIOSA_RNGD": 8}}),
        ):
            c.add_node(num_cpus=1, object_store_memory=80 * MB, labels={"accelpool.io/node": name}, **kw)
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


def _wait(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_ray_service_runs_gang_and_npu_jobs_charges_them_and_adopts_after_kill(
    cluster: Cluster, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # shared like /tmp: a root service makes a job's dir only where the job's uid could
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    scratch.chmod(0o1777)
    args = (
        "--executor",
        "ray",
        "--ray-address",
        cluster.address,
        "--ray-namespace",
        "accelpool-e2e",
        "--round-seconds",
        "0.5",
    )
    server = ServerProcess(data, *args).start()
    try:
        admin = Client(server.url, (data / "admin-token").read_text().strip())
        # The scheduler process discovers the nodes from Ray after the API is up: wait for its first sync.
        _wait(lambda: len(admin.get("nodes")["items"]) == 3, 60, "nodes discovered from Ray")
        _wait(lambda: (data / "unrecognized-nodes.json").exists(), 30, "unknown types reported")
        nodes = {n["name"]: n for n in admin.get("nodes")["items"]}
        assert {k: (v["accelerator"], v["devices"], v["down"]) for k, v in nodes.items()} == {
            "h100-0": ("h100", 4, False),
            "h100-1": ("h100", 4, False),
            "rngd-0": ("rngd", 8, False),
        }
        unknown = json.loads((data / "unrecognized-nodes.json").read_text())
        assert len(unknown) == 1 and "RBLN-CA99" in next(iter(unknown.values()))
        _wait(lambda: "accelpool_unrecognized_nodes 1.0" in admin.http.get("/metrics").text, 30, "metrics")

        now = time.time()
        admin.put("prices", {"h100": 7000, "rngd": 2500})
        admin.post("tenants", {"id": "lab"})
        admin.post("programs", {"id": "p", "budget_krw": 10**9, "start": now - 3600})
        admin.post(
            "grants",
            {"id": "g-lab", "program": "p", "tenant": "lab", "amount_krw": 10**8, "start": now - 3600},
        )
        lab = Client(server.url, (data / "admin-token").read_text().strip(), tenant="lab")
        env = 'echo "rank=$ACCELPOOL_NODE_RANK node=$ACCELPOOL_NODE cuda=$CUDA_VISIBLE_DEVICES furiosa=$FURIOSA_DEVICES"'
        gang = lab.submit(
            {
                "name": "gang",
                "program": "p",
                "resources": {"type": "h100", "count": 8},
                "command": f"{env}; sleep 2",
            },
            tenant="lab",
        )["id"]
        npu = lab.submit(
            {
                "name": "npu",
                "program": "p",
                "kind": "inference",  # RNGD is an inference NPU
                "resources": {"type": "rngd", "count": 2},
                "checkpoint_dir": str(scratch / "ckpt"),
                "command": f'{env}; echo start >> "$ACCELPOOL_CHECKPOINT_DIR/starts"; sleep 6',
            },
            tenant="lab",
        )["id"]

        _wait(lambda: lab.job(npu)["state"] == "running" and "furiosa=" in lab.logs(npu), 90, "npu running")
        server.kill()  # kill -9 the control plane while the NPU job runs on Ray
        server.start()
        lab = Client(server.url, (data / "admin-token").read_text().strip(), tenant="lab")

        done = _wait(
            lambda: all(lab.job(j)["state"] in ("succeeded", "failed") for j in (gang, npu)),
            120,
            "both jobs to end",
        )
        assert done
        for j in (gang, npu):
            v = lab.job(j)
            assert v["state"] == "succeeded", v
        events = [e["state"] for e in admin.get(f"jobs/{npu}/events")["items"]]
        assert events.count("running") == 1 and "preempted" not in events, events  # adopted, not restarted
        assert (scratch / "ckpt" / "starts").read_text().count("start") == 1

        gang_logs = lab.logs(gang)
        ranks = sorted(ln for ln in gang_logs.splitlines() if "rank=" in ln)
        assert len(ranks) == 2 and "node=h100-0" in gang_logs and "node=h100-1" in gang_logs, gang_logs
        assert all(len(ln.split("cuda=")[1].split()[0].split(",")) == 4 for ln in ranks), ranks
        assert (
            "furiosa=" in lab.logs(npu) and len(lab.logs(npu).split("furiosa=")[1].split()[0].split(",")) == 2
        )

        usage = {r["accelerator"]: r for r in lab.usage(by=["accelerator"], tenant="lab")["items"]}
        assert usage["h100"]["krw"] > 0 and usage["rngd"]["krw"] > 0, usage
    finally:
        server.kill()

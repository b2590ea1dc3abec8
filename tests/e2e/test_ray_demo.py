"""`accelpool up --executor ray --demo` on first start against a real Ray cluster (issue 12): the start does
not crash although no node is known when the demo is seeded; the example jobs the found pool can run are
submitted once the scheduler has discovered the nodes, and they run to success."""

from __future__ import annotations

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
            "num_gpus": 4,
            "object_store_memory": 80 * MB,
            "include_dashboard": False,
            "resources": {"accelerator_type:H100": 4},
        },
    )
    try:
        c.wait_for_nodes()
        yield c
    finally:
        c.shutdown()


def test_ray_demo_first_start_submits_examples_after_node_discovery(cluster: Cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    args = (
        "--executor",
        "ray",
        "--ray-address",
        cluster.address,
        "--ray-namespace",
        "accelpool-demo",
        "--round-seconds",
        "0.5",
        "--demo",
    )
    server = ServerProcess(data, *args).start()
    try:
        admin = Client(server.url, (data / "admin-token").read_text().strip())
        deadline = time.time() + 120
        names: dict[str, str] = {}
        while time.time() < deadline:
            names = {j["name"]: j["state"] for j in admin.get("jobs")["items"]}
            if names and all(s in ("succeeded", "failed") for s in names.values()):
                break
            time.sleep(0.5)
        assert names == {"hello-h100": "succeeded", "any-48gb": "succeeded"}, names
        assert not (data / "demo-examples-pending").exists()
    finally:
        server.kill()

"""Hostile jobs against `accelpool up --executor ray` on a multi-node ray.cluster_utils cluster: every attack
in hostile.ATTACKS must fail there too (each rank runs in the same sandbox, launched by its Ray actor)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402
from tests.security.hostile import (  # noqa: E402
    ATTACKS,
    Ctx,
    assert_attack_failed,
    run_attacks,
    start_pool,
    start_victim,
    stop_victim,
)

pytestmark = [pytest.mark.ray, pytest.mark.e2e]
MB = 1024 * 1024


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (scripts/setup.sh installs it)")
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 80 * MB, "include_dashboard": False},
    )
    server = None
    try:
        for name, kw in (
            ("h100-0", {"num_gpus": 4, "resources": {"accelerator_type:H100": 4}}),
            ("rngd-0", {"resources": {"FURIOSA": 8, "accelerator_type:FURIOSA_RNGD": 8}}),
            ("rngd-1", {"resources": {"FURIOSA": 8, "accelerator_type:FURIOSA_RNGD": 8}}),
        ):
            c.add_node(num_cpus=1, object_store_memory=80 * MB, labels={"accelpool.io/node": name}, **kw)
        c.wait_for_nodes()
        args = ("--executor", "ray", "--ray-address", c.address, "--ray-namespace", "accelpool-hostile")
        server, ctx = start_pool(tmp_path_factory.mktemp("hostile-ray"), *args, "--round-seconds", "0.5")
        ctx.vars["executor"] = "ray"
        start_victim(ctx, server)
        yield ctx
    finally:
        if server is not None:
            stop_victim(ctx)
            server.kill()
        c.shutdown()


def test_attacks_all_fail_on_ray(pool: Ctx) -> None:
    failures = []
    batches = [[a for a in ATTACKS if a.wave == 1]] + [[a] for a in ATTACKS if a.wave == 2]
    for batch in batches:  # wave 2 (exhaustion) one at a time
        for a, job, logs in run_attacks(pool, batch):
            try:
                assert_attack_failed(pool, a, job, logs)
            except AssertionError as exc:
                failures.append(f"{a.name}: {exc}")
    assert not failures, "\n".join(failures)

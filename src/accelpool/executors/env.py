"""What a job's process sees: the environment every executor builds for one rank of a launch.

Layers, later ones win:

    base                  os.environ (LocalExecutor, inherit_env=True), a minimal PATH/HOME/LANG, or {}
                          (RayExecutor: the actor on the Ray node starts from its own environment)
    RunSpec.env           the job's own variables
    <visible devices>     the type's ``visible_devices_env`` (CUDA_VISIBLE_DEVICES, FURIOSA_DEVICES,
                          RBLN_DEVICES, ...) = this rank's device ids, when the executor knows them here
    ACCELPOOL_*           job id, type, placement, node/rank, checkpoint dir, attempt, resume point,
                          expected speed, and the progress file when the executor knows its path
    extra_env             the executor's ``extra_env`` (mapping, or callable on the Launch)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from accelpool.core.rounds import Placement
from accelpool.core.types import AcceleratorType
from accelpool.ports import Clock, Launch

ExtraEnv = Mapping[str, str] | Callable[[Launch], Mapping[str, str]]
DEFAULT_VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"
MINIMAL_KEYS = ("PATH", "HOME", "LANG")


def catalog_and_clock(
    catalog: Mapping[str, AcceleratorType] | None, clock: Clock | None
) -> tuple[Mapping[str, AcceleratorType], Clock]:
    """An executor's catalogue and clock: the ones passed in, else the bundled catalogue and the system clock."""
    if catalog is None:
        from accelpool.catalog import bundled_catalog

        catalog = bundled_catalog()
    if clock is None:
        from accelpool.runtime.clock import SystemClock

        clock = SystemClock()
    return catalog, clock


def visible_devices_env(catalog: Mapping[str, AcceleratorType], accelerator: str) -> str:
    """The variable the type's runtime reads for its visible devices (CUDA_VISIBLE_DEVICES if unknown)."""
    t = catalog.get(accelerator)
    return t.visible_devices_env if t is not None and t.visible_devices_env else DEFAULT_VISIBLE_ENV


def devices_str(placement: Placement) -> str:
    """The whole placement as ``node-a:0,1,2,3;node-b:0,1,2,3`` (ACCELPOOL_DEVICES)."""
    return ";".join(f"{n}:{','.join(str(d) for d in ds)}" for n, ds in placement.devices)


def base_env(inherit: bool) -> dict[str, str]:
    """os.environ, or only PATH, HOME and LANG from it."""
    if inherit:
        return dict(os.environ)
    return {k: os.environ[k] for k in MINIMAL_KEYS if k in os.environ}


def job_env(
    launch: Launch,
    *,
    node: str,
    rank: int,
    num_nodes: int,
    catalog: Mapping[str, AcceleratorType],
    base: Mapping[str, str] | None = None,
    devices: tuple[int, ...] | None = None,
    progress_file: str | None = None,
    extra_env: ExtraEnv | None = None,
) -> dict[str, str]:
    """The environment of rank ``rank`` (on ``node``) of ``launch``; see the module docstring for layers.

    ``devices=None`` leaves the visible-devices variable to the executor's remote side (Ray sets it to the
    ids Ray assigned); ``progress_file=None`` likewise for ACCELPOOL_PROGRESS_FILE."""
    env = dict(base or {})
    env.update(launch.run.env)
    acc = launch.placement.accelerator
    if devices is not None:
        env[visible_devices_env(catalog, acc)] = ",".join(str(d) for d in devices)
    env.update(
        {
            "ACCELPOOL_JOB_ID": launch.job.id,
            "ACCELPOOL_ACCELERATOR": acc,
            "ACCELPOOL_DEVICES": devices_str(launch.placement),
            "ACCELPOOL_NODE": node,
            "ACCELPOOL_NODE_RANK": str(rank),
            "ACCELPOOL_NUM_NODES": str(num_nodes),
            "ACCELPOOL_CHECKPOINT_DIR": launch.run.checkpoint_dir or "",
            "ACCELPOOL_ATTEMPT": str(launch.attempt),
            "ACCELPOOL_STEPS_DONE": repr(float(launch.steps_done)),
            "ACCELPOOL_EXPECTED_STEPS_PER_SECOND": repr(float(launch.steps_per_second)),
        }
    )
    if progress_file is not None:
        env["ACCELPOOL_PROGRESS_FILE"] = progress_file
    env.update(extra_env(launch) if callable(extra_env) else (extra_env or {}))
    return env

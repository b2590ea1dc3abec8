"""`accelpool up`'s options (one ``Options``, passed as JSON from the supervisor to its processes) and what
is derived from them alone: the data dir's default, the job sandbox's settings, the policy."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from accelpool.core.allocation import Policy
from accelpool.core.errors import InputError
from accelpool.executors.sandbox import SandboxConfig
from accelpool.storage.engine import sqlite_url

DEFAULT_PORT = 8470


def default_data_dir() -> Path:
    return Path(os.environ.get("ACCELPOOL_HOME", Path.home() / ".accelpool"))


def make_data_dir(path: Path) -> None:
    """The data dir, made (and kept) 0700: it holds the database (every job's command line and environment,
    the token hashes), the job-token key and the admin token. A review found it 0755 with the SQLite file
    0644: any user of the host could read them (jobs never could: the sandbox covers it)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


def sandbox_config(opts: Options) -> SandboxConfig:
    """The job sandbox's settings: the operator's file (``--sandbox-config``, JSON with SandboxConfig
    fields), ``--allow-unsandboxed``, and the data dir (database, tokens, executor state, logs) protected."""
    d: dict[str, Any] = {}
    if opts.sandbox_config:
        path = Path(opts.sandbox_config)
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read it: {exc}", field="--sandbox-config", value=str(path)) from None
        if not isinstance(d, dict):
            raise InputError("must be a JSON object", field="--sandbox-config", value=str(path))
    if opts.allow_unsandboxed:
        d["allow_unsandboxed"] = True
    try:
        cfg = SandboxConfig.from_dict(d)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), field="--sandbox-config", value=str(opts.sandbox_config)) from None
    protect: list[str] = [str(opts.data_dir)]
    if opts.url.startswith("sqlite"):
        db = opts.url.split("///", 1)[-1].split("?")[0]
        protect += [db, db + "-wal", db + "-shm"]
    cfg = cfg.with_protect(*protect)
    root = opts.checkpoint_root  # the jobs' default checkpoint dirs are made there (maybe under /root, /var)
    if root is not None:
        cfg = replace(cfg, job_roots=(*cfg.job_roots, os.path.realpath(root)))
    return cfg


def get_policy(name: str) -> Policy:
    """A policy from the registry (``accelpool.core.policies.get_policy``), with a direct fallback."""
    from accelpool.core import policies

    getter = getattr(policies, "get_policy", None)
    if getter is not None:
        return getter(name)  # type: ignore[no-any-return]
    if name in ("max-min-fairness", "max_min_fairness"):
        from accelpool.core.policies.max_min_fairness import max_min_fairness

        return max_min_fairness
    raise ValueError(f"unknown policy '{name}'")


@dataclass
class Options:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    demo: bool = False
    round_seconds: float = 3.0
    policy: str = "max-min-fairness"
    executor: str = "local"  # local | ray | slurm | fake
    ray_address: str | None = None  # ray: "auto", "HOST:6379", "ray://HOST:10001"; None: ray.init() default
    ray_namespace: str = "accelpool"  # ray: must stay the same across restarts to adopt running work
    upgrade: bool = True
    single_process: bool = False  # API and scheduler in one process (debugging, tests)
    poll_seconds: float = 0.25  # scheduler: how often it looks for cancels, submissions, log requests
    allow_unsandboxed: bool = False  # local/ray: run tenant jobs without the sandbox if bwrap is missing
    sandbox_config: str | None = None  # JSON file with SandboxConfig fields (volumes, tenant_ids, limits)
    lease_seconds: float = (
        360.0  # how long an allocation holds; preemption only at its end (docs/scheduling.md)
    )
    min_run_seconds: float | None = None  # a preemptible job's minimum run (None: two leases)
    restart_seconds: float = 60.0  # what one restart is assumed to cost a job (s)
    slurm_conf: str | None = None  # slurm: slurm.conf for the Slurm commands (None: their default)
    slurm_partition: str | None = None  # slurm: partition to submit to and take nodes from
    instance: str = "accelpool"  # slurm: tag of this control plane's Slurm jobs (keep it across restarts)
    site_down_seconds: float = 10.0  # sites: a site whose controller is silent this long is down
    checkpoint_dir: str | None = None  # root of the jobs' default checkpoint dirs (None: next to data_dir)
    max_active_jobs: int | None = 10_000  # API: a tenant's active jobs at most (None: no cap; 429 beyond)

    @property
    def checkpoint_root(self) -> Path | None:
        """Where jobs without a ``checkpoint_dir`` get one (``<root>/<job id>``, the same on every attempt):
        ``--checkpoint-root``, else next to the data dir, not inside it (the sandbox hides the data dir from
        jobs). Every executor that runs real processes (local, ray, slurm) gets one; for Ray and Slurm nodes
        it must be a path every node sees (shared storage, as the Slurm executor's state dir already is);
        the executor creates it (Slurm: the control plane, on the shared path; Ray: the rank's node). The
        fake executor runs nothing: none."""
        if self.checkpoint_dir is not None:
            return Path(self.checkpoint_dir)
        if self.executor == "fake":
            return None
        return self.data_dir.parent / f"{self.data_dir.name}-checkpoints"

    @property
    def url(self) -> str:
        return self.database_url or sqlite_url(self.data_dir / "accelpool.sqlite")

    def to_json(self) -> str:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["data_dir"] = str(self.data_dir)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Options:
        d = json.loads(text)
        d["data_dir"] = Path(d["data_dir"])
        return cls(**d)

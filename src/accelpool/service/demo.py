"""`accelpool up --demo`: an emulated pool of GPUs and Korean NPUs, a program with grants and a few short
example jobs that really run (shell and Python one-liners), so a new user sees the system within a minute.

Demo prices: the planner's defaults (catalog/prices.yaml, USD list price x exchange rate) where it has
one; Korean NPUs have no published price, so the demo uses a marked placeholder (DEMO_NPU_KRW).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import yaml

from accelpool.core.types import Grant, Node, Program, ProgramRules, Tenant
from accelpool.ports import RunSpec
from accelpool.storage.sql import SqlStore

DEMO_NODES = (
    Node("gpu-h100-0", "h100", 8, zone="seoul"),
    Node("gpu-a100-0", "a100", 4, zone="seoul"),
    Node("npu-rngd-0", "rngd", 8, zone="seoul"),
    Node("npu-atom-0", "rebel-quad", 4, zone="busan"),
    Node("npu-warboy-0", "warboy", 4, zone="busan"),
)
DEMO_NPU_KRW = {"rngd": 2500, "rebel-quad": 2000, "warboy": 800}  # placeholder: no published price exists
PROGRAM = "k-ai-compute"
TENANTS = ("demo-lab", "demo-startup")

EXAMPLE_JOBS: tuple[dict[str, Any], ...] = (
    {
        "name": "hello-h100",
        "resources": {"type": "h100", "count": 2},
        "kind": "training",
        "command": 'echo "devices: CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"; for i in 1 2 3 4 5; do '
        'echo step $i; echo $i > "$ACCELPOOL_PROGRESS_FILE"; sleep 2; done',
        "steps": 5,
    },
    {
        "name": "npu-inference",
        "resources": {"type": "rngd", "count": 1},
        "kind": "inference",
        "command": "python3 -c \"import os,time; print('FURIOSA_DEVICES=' + os.environ.get('FURIOSA_DEVICES', '')); "
        "time.sleep(6); print('served 100 requests')\"",
    },
    {
        "name": "any-48gb",
        "resources": {"count": 1, "min_memory_gb": 48},
        "kind": "batch",
        "command": "env | grep -E '_DEVICES|ACCELPOOL_ACCELERATOR' | sort; sleep 4",
    },
    {
        "name": "domestic-batch",
        "resources": {"count": 2},
        "constraints": {"domestic_only": True},
        "kind": "batch",
        "command": "echo on $ACCELPOOL_ACCELERATOR: $ACCELPOOL_DEVICES; sleep 8",
    },
)


def default_prices(accelerators: Iterable[str] | None = None) -> dict[str, int]:
    """KRW per device-hour from catalog/prices.yaml (derived from USD list prices), plus demo NPU prices,
    for ``accelerators`` (default: the demo pool's types; 1000 KRW where no price is known)."""
    out = dict(DEMO_NPU_KRW)
    try:
        text = resources.files("accelpool.catalog").joinpath("prices.yaml").read_text()
        data = yaml.safe_load(text) or {}
        rate = float((data.get("exchange_rate_krw_per_usd") or {}).get("value", 1400))
        for acc, entry in (data.get("prices") or {}).items():
            if isinstance(entry, dict) and entry.get("krw_per_device_hour") is not None:
                out[acc] = int(entry["krw_per_device_hour"])
            elif isinstance(entry, dict) and entry.get("usd_per_device_hour") is not None:
                out[acc] = int(math.floor(float(entry["usd_per_device_hour"]) * rate + 0.5))
    except (FileNotFoundError, ModuleNotFoundError, yaml.YAMLError, TypeError, ValueError):
        out.update({"h100": 7000, "a100": 4000})
    types = accelerators if accelerators is not None else (n.accelerator for n in DEMO_NODES)
    return {acc: out.get(acc, 1000) for acc in types}


def seed(
    store: SqlStore, nodes: Sequence[Node] | None = DEMO_NODES, price_types: Iterable[str] | None = None
) -> dict[str, str]:
    """Create the demo pool (``nodes``; None when an executor discovers them, e.g. Ray), prices (for
    ``price_types``, default the demo pool's), program, tenants, grants and member tokens (once). Returns
    {tenant: secret} for tokens created now (empty when the demo was already seeded)."""
    if any(p.id == PROGRAM for p in store.list_programs()):
        return {}
    now = time.time()
    if nodes:
        store.add_nodes(nodes)
    store.set_prices(default_prices(price_types))
    rules = ProgramRules(
        public_share={"*": 0.2},
        public_services_domestic_only=True,
        tenant_caps={"h100": 8},
        max_contract_seconds=180 * 86400.0,
    )
    store.add_program(
        Program(
            PROGRAM,
            "K-AI compute support (demo)",
            budget_krw=500_000_000,
            start=now - 86400,
            end=now + 365 * 86400,
            rules=rules,
        )
    )
    secrets: dict[str, str] = {}
    for i, t in enumerate(TENANTS):
        store.add_tenant(Tenant(t, t.replace("-", " ").title(), public=(i == 0)))
        store.add_grant(
            Grant(f"g-{t}", PROGRAM, t, amount_krw=50_000_000, start=now - 3600, end=now + 90 * 86400)
        )
        secrets[t] = store.create_token("member", name=f"{t} member", tenant=t)[1]
    store.create_token("program-manager", name="demo program manager", program=PROGRAM)
    return secrets


def example_jobs(store: SqlStore, tenant: str = TENANTS[0], skipped: list[str] | None = None) -> list[str]:
    """Submit the example jobs through the same admission as the API; returns their ids. An example the
    pool cannot run (no node of its type yet, e.g. before Ray's nodes are found) is left out and described
    in ``skipped``. Idempotent: each example has its own idempotency key, so a second call submits none
    twice."""
    from accelpool.api.admission import admit_now
    from accelpool.api.errors import ApiError
    from accelpool.catalog import bundled_catalog
    from accelpool.spec.job import parse_job_dict

    catalog = bundled_catalog()
    ids = []
    for body in EXAMPLE_JOBS:
        spec = parse_job_dict(dict(body))
        try:
            a = admit_now(store, spec, tenant, time.time(), catalog)
        except ApiError as exc:
            if skipped is not None:
                skipped.append(f"{spec.name}: {exc.reason}")
            continue
        job_id, _ = store.submit(
            a.job,
            a.throughput,
            a.run or RunSpec(),
            name=spec.name,
            idempotency_key=f"demo-{spec.name}",
            reserve_krw=a.reserve_krw,
        )
        ids.append(job_id)
    return ids

"""Starting `accelpool up`: the first start's admin token and demo world (``bootstrap``), the API process's
app (``api_app``: the store, no executor), and waiting for a started server to answer."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from accelpool.api.app import Hooks, Metrics, create_app
from accelpool.api.auth import JobTokens
from accelpool.api.limits import Limits
from accelpool.catalog import bundled_catalog
from accelpool.service import channel
from accelpool.service.options import Options
from accelpool.storage.sql import SqlStore

DEMO_EXAMPLES_PENDING = "demo-examples-pending"


def bootstrap(store: SqlStore, opts: Options, node_source: bool) -> list[str]:
    """First start: an admin token (written 0600 to the data dir); with --demo the demo world. Returns
    the messages to show. ``node_source``: the executor discovers the nodes (Ray), the demo adds none."""
    messages: list[str] = []
    d = opts.data_dir
    token_file = d / "admin-token"
    if not store.has_admin_token() or not token_file.exists():
        _, secret = store.create_token("admin", name="first admin")
        _write_secret(token_file, secret)
        messages.append(f"admin token created: {token_file} (keep it secret; shown once)")
    client: dict[str, Any] = {"url": f"http://{opts.host}:{opts.port}", "token_file": str(token_file)}
    if opts.demo:
        from accelpool.service import demo

        if node_source:  # the pool is what the executor finds (Ray)
            secrets = demo.seed(store, nodes=None, price_types=sorted(bundled_catalog()))
        else:
            secrets = demo.seed(store)
        for tenant, secret in secrets.items():
            _write_secret(d / f"token-{tenant}", secret)
        if secrets and node_source:
            # the pool is empty until the scheduler has found the executor's nodes: it submits the examples
            # then (Service.sync_nodes), so admission sees the real pool
            (d / DEMO_EXAMPLES_PENDING).write_text("the scheduler submits the demo's example jobs\n")
            messages.append(
                f"demo: nodes from the executor, program '{demo.PROGRAM}'; example jobs for tenant "
                f"'{demo.TENANTS[0]}' are submitted once the scheduler has found the nodes"
            )
        elif secrets:
            skipped: list[str] = []
            ids = demo.example_jobs(store, skipped=skipped)
            messages.append(
                f"demo: pool of {len(demo.DEMO_NODES)} nodes, program '{demo.PROGRAM}', "
                f"{len(ids)} example jobs submitted for tenant '{demo.TENANTS[0]}'"
            )
            messages += [f"demo: example left out: {why}" for why in skipped]
        client["tenant"] = demo.TENANTS[0]
        member = d / f"token-{demo.TENANTS[0]}"
        if member.exists():  # the demo's newcomer acts as a member of the demo tenant, not as the admin
            client["token_file"] = str(member)
    (d / "client.json").write_text(json.dumps(client, indent=2))
    return messages


def api_app(opts: Options) -> tuple[FastAPI, SqlStore]:
    """The API process's app: the store, no executor. Cancels are recorded in the store (the scheduler
    process stops the job's processes within ``poll_seconds``); submissions are noticed by the scheduler
    from the jobs table; logs are read from the executor's files (``channel.LogReader``)."""
    catalog = bundled_catalog()
    store = SqlStore(opts.url, catalog, upgrade=False)
    hooks = Hooks(
        logs=channel.LogReader(opts.data_dir, opts.executor),
        next_round=lambda: next_round_from_status(channel.read_status(opts.data_dir), opts.round_seconds),
    )
    metrics = Metrics()
    status = _SchedulerStatus(opts.data_dir)
    metrics.registry.register(status)
    app = create_app(
        store,
        hooks=hooks,
        catalog=catalog,
        metrics=metrics,
        limits=Limits(max_active_jobs=opts.max_active_jobs),
    )
    app.state.job_tokens = JobTokens.for_data_dir(opts.data_dir)
    return app, store


def next_round_from_status(st: dict[str, float], round_seconds: float) -> float | None:
    """Seconds until the scheduler process's next round is due, from its last status (the last round's
    end and duration): negative when overdue, None before its first round. It notices a submission
    within ``poll_seconds`` and may run the round sooner."""
    if "last_round_at" not in st:
        return None
    started = st["last_round_at"] - st.get("last_round_seconds", 0.0)
    return started + round_seconds - time.time()


class _SchedulerStatus:
    """/metrics of the API process: the scheduler process's last status (``run/scheduler.json``)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def collect(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        st = channel.read_status(self.data_dir)
        yield GaugeMetricFamily(
            "accelpool_scheduler_rounds",
            "Rounds run by the scheduler process since it started",
            st.get("rounds", 0),
        )
        yield GaugeMetricFamily(
            "accelpool_scheduler_last_round_seconds",
            "Duration of the last round (s)",
            st.get("last_round_seconds", 0),
        )
        age = time.time() - st["last_round_at"] if "last_round_at" in st else -1.0
        yield GaugeMetricFamily(
            "accelpool_scheduler_last_round_age_seconds", "Seconds since the last round ended (-1: none)", age
        )
        yield GaugeMetricFamily(
            "accelpool_unrecognized_nodes",
            "Nodes with accelerators of a type accelpool does not know",
            st.get("unrecognized_nodes", 0),
        )


def _write_secret(path: Path, secret: str) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)


def wait_healthy(url: str, timeout: float = 30.0) -> bool:
    import httpx

    end = time.time() + timeout
    while time.time() < end:
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:  # not listening yet: try again until the deadline
            pass
        time.sleep(0.1)
    return False

"""CLI commands: `accelpool up` (the control plane) and `accelpool schema` (JSON schemas for editors)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accelpool.cli.render import console, emit_json


def register(app: typer.Typer) -> None:
    @app.command("up")
    def up(
        data_dir: Annotated[
            Path | None, typer.Option(help="state, tokens and logs (default ~/.accelpool)")
        ] = None,
        database_url: Annotated[
            str | None,
            typer.Option(
                help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in the data dir)"
            ),
        ] = None,
        host: Annotated[str, typer.Option()] = "127.0.0.1",
        port: Annotated[int, typer.Option()] = 8470,
        demo: Annotated[
            bool, typer.Option("--demo", help="seed an emulated pool, a program, grants and example jobs")
        ] = False,
        round_seconds: Annotated[
            float, typer.Option(min=0.05, help="seconds between scheduling rounds")
        ] = 3.0,
        lease: Annotated[
            float,
            typer.Option(
                min=1.0,
                help="seconds an allocation holds: preemptible jobs are preempted only at a lease's end "
                "(docs/scheduling.md)",
            ),
        ] = 360.0,
        min_run: Annotated[
            float | None,
            typer.Option(
                min=0.0, help="a preemptible job's minimum run time in seconds (default: two leases)"
            ),
        ] = None,
        restart_cost: Annotated[
            float,
            typer.Option(
                min=0.0, help="seconds one restart is assumed to cost a job (preempt only if it pays)"
            ),
        ] = 60.0,
        policy: Annotated[str, typer.Option(help="scheduling policy")] = "max-min-fairness",
        executor: Annotated[
            str,
            typer.Option(
                help="local (subprocesses here), ray (a Ray cluster; nodes discovered from it), slurm (a "
                "Slurm cluster; nodes discovered from its GRES) or fake"
            ),
        ] = "local",
        ray_address: Annotated[
            str | None,
            typer.Option(help="--executor ray: the cluster, e.g. auto, HOST:6379 or ray://HOST:10001"),
        ] = None,
        ray_namespace: Annotated[
            str,
            typer.Option(help="--executor ray: namespace of accelpool's actors (keep it across restarts)"),
        ] = "accelpool",
        slurm_conf: Annotated[
            Path | None,
            typer.Option(help="--executor slurm: the cluster's slurm.conf (default: Slurm's own)"),
        ] = None,
        slurm_partition: Annotated[
            str | None, typer.Option(help="--executor slurm: partition to submit to and take nodes from")
        ] = None,
        site_down_seconds: Annotated[
            float,
            typer.Option(
                min=1.0,
                help="registered sites: a site whose controller does not answer this long (s) is marked "
                "down and its jobs are requeued elsewhere (docs/sites.md)",
            ),
        ] = 10.0,
        checkpoint_root: Annotated[
            Path | None,
            typer.Option(
                help="jobs without a checkpoint_dir get <this>/<job id> as ACCELPOOL_CHECKPOINT_DIR, the same "
                "on every attempt (default: <data dir>-checkpoints; with Ray or Slurm, a path every node "
                "sees)",
            ),
        ] = None,
        max_active_jobs: Annotated[
            int,
            typer.Option(
                min=0,
                help="the most active (queued or running) jobs one tenant may have; a submission beyond is "
                "refused with 429 (0: no cap)",
            ),
        ] = 10_000,
        no_upgrade: Annotated[
            bool, typer.Option("--no-upgrade", help="refuse to start instead of migrating the schema")
        ] = False,
        single_process: Annotated[
            bool,
            typer.Option(
                "--single-process",
                help="serve the API and run the rounds in one process (debugging; by default the API and "
                "the scheduler are two processes under a supervisor)",
            ),
        ] = False,
        allow_unsandboxed: Annotated[
            bool,
            typer.Option(
                "--allow-unsandboxed",
                help="run jobs without the sandbox when bubblewrap is missing (single-user machines only: "
                "every job can then read the service's files and tokens)",
            ),
        ] = False,
        sandbox_config: Annotated[
            Path | None,
            typer.Option(
                help="JSON file: job sandbox settings (volumes, tenant_ids, limits); docs/security.md"
            ),
        ] = None,
    ) -> None:
        """Serve the API, run the scheduling rounds and the executor (a supervisor and two processes)."""
        import logging

        from accelpool.core.errors import InputError
        from accelpool.service.server import Options, Service, bootstrap, default_data_dir

        if executor not in ("local", "ray", "slurm", "fake"):
            raise InputError("must be 'local', 'ray', 'slurm' or 'fake'", field="--executor", value=executor)
        if (slurm_conf is not None or slurm_partition is not None) and executor != "slurm":
            raise InputError("only with --executor slurm", field="--slurm-conf", value=str(slurm_conf))
        from accelpool.core.policies import get_policy

        try:
            get_policy(policy)
        except InputError as exc:
            raise InputError(exc.message, field="--policy", value=policy) from None
        if ray_address is not None and executor != "ray":
            raise InputError("only with --executor ray", field="--ray-address", value=ray_address)
        if checkpoint_root is not None:
            inside = (data_dir or default_data_dir()).resolve()
            if checkpoint_root.resolve() == inside or inside in checkpoint_root.resolve().parents:
                raise InputError(
                    "must be outside the data dir (the job sandbox hides the data dir from jobs)",
                    field="--checkpoint-root",
                    value=str(checkpoint_root),
                )
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)
        opts = Options(
            data_dir=data_dir or default_data_dir(),
            database_url=database_url,
            host=host,
            port=port,
            demo=demo,
            round_seconds=round_seconds,
            policy=policy,
            executor=executor,
            ray_address=ray_address,
            ray_namespace=ray_namespace,
            upgrade=not no_upgrade,
            single_process=single_process,
            allow_unsandboxed=allow_unsandboxed,
            sandbox_config=str(sandbox_config) if sandbox_config else None,
            lease_seconds=lease,
            min_run_seconds=min_run,
            restart_seconds=restart_cost,
            slurm_conf=str(slurm_conf) if slurm_conf else None,
            slurm_partition=slurm_partition,
            site_down_seconds=site_down_seconds,
            checkpoint_dir=str(checkpoint_root.resolve()) if checkpoint_root is not None else None,
            max_active_jobs=max_active_jobs or None,
        )
        if executor == "local":
            from accelpool.executors import sandbox as sb
            from accelpool.service.server import sandbox_config as make_sandbox

            problem = sb.check(make_sandbox(opts))
            if problem is not None:
                console.print(f"error: {problem}", highlight=False)
                raise typer.Exit(2)
            if not sb.sandboxed(make_sandbox(opts)):
                console.print("warning: jobs run WITHOUT a sandbox (--allow-unsandboxed)", highlight=False)
        service: Service | None = None
        if single_process:
            service = Service(opts)
            service.bootstrap()
            messages = service.messages
        else:
            from accelpool.catalog import bundled_catalog
            from accelpool.service.options import make_data_dir
            from accelpool.storage.sql import SqlStore

            make_data_dir(opts.data_dir)
            store = SqlStore(opts.url, bundled_catalog(), upgrade=opts.upgrade)
            try:
                messages = bootstrap(store, opts, node_source=executor in ("ray", "slurm"))
            finally:
                store.close()
        for m in messages:
            console.print(m, highlight=False)
        mode = "one process" if single_process else "API and scheduler processes"
        console.print(
            f"accelpool serving on http://{host}:{port}  ({mode}; data: {opts.data_dir}, "
            f"database: {opts.url.split('?')[0]})",
            highlight=False,
        )
        if service is not None:
            for name, why in sorted(service.unrecognized.items()):
                console.print(f"warning: node {name} is not in the pool: {why}", highlight=False)
        console.print(f"try: accelpool --help; accelpool jobs --data-dir {opts.data_dir}", highlight=False)
        if service is not None:
            service.serve()
            return
        from accelpool.service.supervisor import Supervisor

        raise typer.Exit(Supervisor(opts).run())

    @app.command("schema")
    def schema(
        what: Annotated[str, typer.Argument(help="job")] = "job",
        output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
    ) -> None:
        """Print the JSON schema of a spec (for editors' YAML validation)."""
        from accelpool.core.errors import InputError
        from accelpool.spec.job import job_schema

        if what != "job":
            raise InputError("known schemas: job", field="what", value=what)
        if output is not None:
            import json

            output.write_text(json.dumps(job_schema(), indent=2, sort_keys=True) + "\n")
            console.print(f"wrote {output}")
        else:
            emit_json(job_schema())

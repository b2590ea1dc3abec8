"""`accelpool catalog`: the accelerator types the pool knows, with their figures and sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accelpool.catalog import load_catalog
from accelpool.cli.render import console, emit_json


def _fmt(value: float | None, unit: str = "") -> str:
    return "unknown" if value is None else f"{value:g}{unit}"


def register(app: typer.Typer) -> None:
    @app.command("catalog")
    def catalog_cmd(
        extra: Annotated[list[Path] | None, typer.Option("--catalog", help="Operator YAML adding or overriding types")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    ) -> None:
        """List accelerator types: vendor, country, memory, bandwidth, dense peak compute, power."""
        cat = load_catalog(extra or [])
        if as_json:
            emit_json([{**t.__dict__, "domestic": t.domestic} for t in cat.values()])
            return
        table = Table(title="Accelerator catalogue (dense peak figures; unknown = no published source)")
        for col in ("id", "vendor", "country", "memory", "bandwidth", "BF16/FP16", "FP8", "INT8", "TDP", "training"):
            table.add_column(col)
        for t in cat.values():
            table.add_row(
                t.id, t.vendor, t.country + (" (domestic)" if t.domestic else ""), _fmt(t.memory_gb, " GB"),
                _fmt(t.memory_bw_gbps, " GB/s"), _fmt(t.bf16_tflops_dense, " TF"), _fmt(t.fp8_tflops_dense, " TF"),
                _fmt(t.int8_tops_dense, " TOPS"), _fmt(t.tdp_w, " W"), "yes" if t.training_capable else "inference",
            )
        console.print(table)

"""`accelpool catalog`: the accelerator types the pool knows, with their figures and sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from accelpool.catalog import load_catalog
from accelpool.cli.render import console, emit_json


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:.4g}"


def register(app: typer.Typer) -> None:
    @app.command("catalog")
    def catalog_cmd(
        extra: Annotated[
            list[Path] | None, typer.Option("--catalog", help="Operator YAML adding or overriding types")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    ) -> None:
        """List accelerator types (vendor, country, memory, bandwidth, dense peak compute, power), then the
        published sources of each type's figures."""
        cat = load_catalog(extra or [])
        if as_json:
            emit_json([{**t.__dict__, "domestic": t.domestic} for t in cat.values()])
            return
        table = Table(
            title="Accelerator catalogue, dense peak figures: memory GB, bandwidth GB/s, BF16 and FP8 TFLOPS,"
            " INT8 TOPS, TDP W (? = no published source)",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        table.add_column("id", no_wrap=True)
        table.add_column("country", no_wrap=True)
        for col in ("mem", "BW", "BF16", "FP8", "INT8", "TDP"):
            table.add_column(col, justify="right", no_wrap=True)
        table.add_column("train", no_wrap=True)
        for t in cat.values():
            table.add_row(
                t.id,
                t.country + ("*" if t.domestic else ""),
                _fmt(t.memory_gb),
                _fmt(t.memory_bw_gbps),
                _fmt(t.bf16_tflops_dense),
                _fmt(t.fp8_tflops_dense),
                _fmt(t.int8_tops_dense),
                _fmt(t.tdp_w),
                "yes" if t.training_capable else "no",
            )
        console.print(table)
        console.print("* domestic (Korean) accelerator. Sources of each type's figures:", soft_wrap=True)
        for t in cat.values():
            for src in t.sources or ("(none listed)",):
                console.print(f"  {t.id} ({t.vendor}): {src}", soft_wrap=True, highlight=False)

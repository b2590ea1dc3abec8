"""`accelpool plan compare`: every accelerator type (or every site) side by side for one workload."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accelpool.cli import plan_charts
from accelpool.cli.plan_charts import human_count
from accelpool.cli.plan_common import (
    CatalogOpt,
    JsonOpt,
    PlotOpt,
    PowerOpt,
    PriceOpt,
    RateOpt,
    krw,
    num,
    plan_context,
    savefig,
)
from accelpool.cli.plan_fleet import serve_spec
from accelpool.cli.render import console, emit_json
from accelpool.core.errors import InputError
from accelpool.planner.budget import CHINCHILLA_TOKENS_PER_PARAM
from accelpool.planner.compare import CompareRow, compare_serving, compare_training
from accelpool.planner.limits import bounded
from accelpool.planner.prices import (
    PriceList,
)
from accelpool.planner.train import TrainingSpec


def _row_json(r: CompareRow) -> dict[str, Any]:
    out = dict(r.__dict__)
    for key in ("seconds", "tokens_per_second_per_device"):
        out[key] = None if out[key] is None else out[key].as_dict()
    return out


def _compare_cmd(
    params: Annotated[float, typer.Option("--params", help="Model parameters")],
    workload: Annotated[str, typer.Option("--workload", help="serve | train")] = "serve",
    tokens: Annotated[
        float | None, typer.Option("--tokens", help="Training tokens (default 20 x params)")
    ] = None,
    count: Annotated[
        int, typer.Option("--count", help="Training devices per type (raised to memory minimum)")
    ] = 64,
    context: Annotated[int, typer.Option("--context", help="Serving: tokens per sequence")] = 4096,
    precision: Annotated[str, typer.Option("--precision", help="Serving: bf16 | fp8 | int8")] = "bf16",
    catalog: CatalogOpt = None,
    price: PriceOpt = None,
    exchange_rate: RateOpt = None,
    electricity: PowerOpt = None,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
    pool: Annotated[
        Path | None,
        typer.Option(
            "--pool",
            help="compare the sites of a pool file (accelpool simulate --pool format) at each site's prices",
        ),
    ] = None,
    data_class: Annotated[
        str | None, typer.Option("--data-class", help="with --pool: only sites certified for this data class")
    ] = None,
) -> None:
    """Every catalogue accelerator side by side: time, cost, energy, tokens per KRW and per joule."""
    if workload not in ("serve", "train"):
        raise InputError("workload must be 'serve' or 'train'", field="workload", value=workload)
    bounded("params", params)
    bounded("count", count)
    if tokens is not None:
        bounded("tokens", tokens)
    cat, prices = plan_context(catalog, price, exchange_rate, electricity)

    def rows_at(price_list: PriceList) -> list[CompareRow]:
        if workload == "train":
            spec = TrainingSpec(
                params, tokens if tokens is not None else CHINCHILLA_TOKENS_PER_PARAM * params
            )
            return compare_training(cat, price_list, spec, count)
        return compare_serving(cat, price_list, serve_spec(params, context, None, precision))

    if pool is not None:
        _compare_sites(pool, data_class, prices, rows_at, workload, params, as_json)
        return
    if data_class is not None:
        raise InputError("only with --pool", field="data-class", value=data_class)
    rows = rows_at(prices)
    if as_json:
        emit_json({"workload": workload, "params": params, "rows": [_row_json(r) for r in rows]})
    else:
        console.print(_compare_table(rows, workload, params))
    if plot is not None:
        spec_tokens = None
        if workload == "train":
            spec_tokens = tokens if tokens is not None else CHINCHILLA_TOKENS_PER_PARAM * params
        plan_charts.compare_chart(rows, workload, params, spec_tokens, plan_charts.save_to(plot, savefig))


def _compare_sites(
    pool_file: Path,
    data_class: str | None,
    prices: PriceList,
    rows_at: Any,
    workload: str,
    params: float,
    as_json: bool,
) -> None:
    """The pool's sites side by side: each type a site has, at that site's price (its own, else the pool
    file's, else the planner's), cheapest first; only sites certified for ``data_class`` when given."""
    from accelpool.core.types import DATA_CLASSES
    from accelpool.sim.pool import load_pool

    if data_class is not None and data_class not in DATA_CLASSES:
        raise InputError(f"one of {', '.join(DATA_CLASSES)}", field="data-class", value=data_class)
    pool = load_pool(pool_file)
    found: list[tuple[str, str, CompareRow]] = []
    for site in pool.sites:
        if data_class is not None and data_class not in site.data_classes:
            continue
        types = {n.accelerator for n in pool.nodes if n.site == site.id and n.devices > 0}
        site_prices = prices.with_overrides(
            {t: p for t, p in {**pool.prices, **site.prices}.items() if t in types}
        )
        for r in rows_at(site_prices):
            if r.accelerator in types:
                found.append((site.id, site.region, r))
    found.sort(key=lambda x: (x[2].cost_krw is None, x[2].cost_krw or 0, x[0], x[2].accelerator))
    if as_json:
        emit_json(
            {
                "workload": workload,
                "params": params,
                "data_class": data_class,
                "rows": [{"site": s, "region": reg, **_row_json(r)} for s, reg, r in found],
            }
        )
        return
    what = "total cost" if workload == "train" else "KRW per 1M output tokens"
    t = Table(title=f"Sites of {pool_file.name} by {what}" + (f" ({data_class} data)" if data_class else ""))
    for col in ("site", "region", "type", "devices", what, "notes"):
        t.add_column(col, justify="left" if col in ("site", "region", "type", "notes") else "right")
    for s, reg, r in found:
        note = r.reason or (r.bound or "").split(" (")[0]
        t.add_row(s, reg, r.accelerator, num(r.devices and float(r.devices)), krw(r.cost_krw), note)
    console.print(t)


def _compare_table(rows: list[CompareRow], workload: str, params: float) -> Table:
    train = workload == "train"
    t = Table(
        title=f"{'Training' if train else 'Serving'} {human_count(params)} params on every accelerator "
        "(typical utilization; * = domestic; --json for ranges)"
    )
    cols = (
        ["type", "devices", "days", "cost", "MWh", "tokens/KRW", "tokens/J", "notes"]
        if train
        else ["type", "tp", "tokens/s/device", "KRW per 1M tokens", "tokens/KRW", "tokens/J", "notes"]
    )
    for col in cols:
        t.add_column(col, justify="left" if col in ("type", "notes") else "right")
    for r in rows:
        name = f"{r.accelerator}{' *' if r.domestic else ''}"
        note = r.reason or (r.bound or "").split(" (")[0]
        if train:
            days = None if r.seconds is None else r.seconds.typical / 86400.0
            t.add_row(
                name,
                num(r.devices and float(r.devices)),
                num(days, ",.1f"),
                krw(r.cost_krw),
                num(r.energy_mwh, ",.1f"),
                num(r.tokens_per_krw, ",.1f"),
                num(r.tokens_per_joule, ",.2f"),
                note,
            )
        else:
            tps = r.tokens_per_second_per_device
            t.add_row(
                name,
                num(r.devices and float(r.devices)),
                num(None if tps is None else tps.typical),
                krw(r.cost_krw),
                num(r.tokens_per_krw, ",.1f"),
                num(r.tokens_per_joule, ",.2f"),
                note,
            )
    return t

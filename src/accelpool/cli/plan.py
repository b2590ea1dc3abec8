"""`accelpool plan`: what a model needs, what a budget buys, and every accelerator side by side.

Thin shell over :mod:`accelpool.planner` (pure math): parse options, call the planner, render a Rich table
or JSON, optionally save a matplotlib plot. Bad input raises InputError (exit code 2 in cli.main).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accelpool.catalog import Catalog
from accelpool.cli import plan_charts
from accelpool.cli.plan_charts import human_count
from accelpool.cli.plan_common import (
    PLAN_HELP,
    CatalogOpt,
    JsonOpt,
    PlotOpt,
    PowerOpt,
    PriceOpt,
    RateOpt,
    assumption_table,
    cost_range,
    krw,
    no_price_note,
    plan_context,
    savefig,
)
from accelpool.cli.plan_compare import _compare_cmd
from accelpool.cli.plan_fleet import _budget_cmd, _serve_cmd
from accelpool.cli.render import console, emit_json
from accelpool.core.errors import InputError
from accelpool.planner.limits import HUGE_FLEET, bounded
from accelpool.planner.mfu import training_mfu
from accelpool.planner.prices import (
    PriceList,
)
from accelpool.planner.train import TrainingEstimate, TrainingSpec, devices_for_days, estimate_training


def _train_json(est: TrainingEstimate, prices: PriceList) -> dict[str, Any]:
    price = prices.price(est.accelerator)
    energy = est.energy_mwh
    return {
        "accelerator": est.accelerator,
        "params": est.spec.params,
        "tokens": est.spec.tokens,
        "flops": est.spec.flops,
        "devices": est.devices,
        "min_devices_for_memory": est.memory.min_devices,
        "bound": est.bound,
        "measured": est.measured,
        "mfu": {**est.mfu.__dict__, "sources": list(est.mfu.sources)},
        "days": est.days.as_dict(),
        "device_hours": est.device_hours.as_dict(),
        "energy_mwh": None if energy is None else energy.as_dict(),
        "price_krw_per_device_hour": price,
        "price_basis": prices.entry(est.accelerator).basis,
        "cost_krw": cost_range(est.device_hours, price),
        "electricity_krw": None
        if energy is None
        else {k: prices.electricity_cost(v) for k, v in energy.as_dict().items()},
        "assumptions": list(est.assumptions),
    }


def _train_table(est: TrainingEstimate, prices: PriceList) -> Table:
    price = prices.price(est.accelerator)
    cost = cost_range(est.device_hours, price)
    energy = est.energy_mwh
    t = Table(
        title=f"Training {human_count(est.spec.params)} params on {human_count(est.spec.tokens)} tokens, "
        f"{est.devices:,} x {est.accelerator}"
    )
    for col in ("", "typical", "optimistic", "pessimistic"):
        t.add_column(col, justify="right" if col else "left")
    t.add_row("MFU", f"{est.mfu.typical:.3f}", f"{est.mfu.optimistic:.3f}", f"{est.mfu.pessimistic:.3f}")
    t.add_row("days", *(f"{est.days.at(s):,.1f}" for s in ("typical", "optimistic", "pessimistic")))
    t.add_row(
        "device-hours", *(f"{est.device_hours.at(s):,.0f}" for s in ("typical", "optimistic", "pessimistic"))
    )
    if energy is not None:
        t.add_row(
            "energy (MWh, at TDP)",
            *(f"{energy.at(s):,.1f}" for s in ("typical", "optimistic", "pessimistic")),
        )
        t.add_row(
            "electricity (KRW)",
            *(krw(prices.electricity_cost(energy.at(s))) for s in ("typical", "optimistic", "pessimistic")),
        )
    t.add_row(
        "cost (KRW)",
        *(krw(None if cost is None else cost[s]) for s in ("typical", "optimistic", "pessimistic")),
    )
    t.caption = f"bound: {est.bound}; min devices for memory: {est.memory.min_devices}; " + (
        f"price {krw(price)}/device-hour ({prices.entry(est.accelerator).kind})"
        if price
        else no_price_note(prices, est.accelerator)
    )
    return t


def _train_plot(est: TrainingEstimate, path: Path, catalog: Catalog, prices: PriceList | None = None) -> None:
    acc = catalog[est.accelerator]
    lo = est.memory.min_devices
    counts = sorted(
        {max(lo, int(lo * 1.5**k)) for k in range(0, 40) if lo * 1.5**k <= max(4 * est.devices, 2 * lo)}
    )
    days: dict[str, list[float]] = {s: [] for s in ("pessimistic", "typical", "optimistic")}
    hours: list[float] = []
    for n in counts:
        e = estimate_training(
            acc, est.spec, n, mfu=est.mfu if est.mfu.pessimistic == est.mfu.optimistic else None
        )
        for s in days:
            days[s].append(e.days.at(s))
        hours.append(e.device_hours.at("typical"))
    price = prices.price(est.accelerator) if prices is not None else None
    cost = [h * price for h in hours] if price else None
    note = "" if price or prices is None else no_price_note(prices, est.accelerator)
    plan_charts.train_chart(
        est.spec.params,
        est.spec.tokens,
        est.accelerator,
        est.devices,
        counts,
        days,
        cost,
        note,
        plan_charts.save_to(path, savefig),
    )


def _train_cmd(
    params: Annotated[float, typer.Option("--params", help="Model parameters, e.g. 82e9")],
    tokens: Annotated[float, typer.Option("--tokens", help="Training tokens, e.g. 150e9")],
    accelerator: Annotated[
        str, typer.Option("--accelerator", "-a", help="Accelerator type (catalogue id or alias)")
    ],
    count: Annotated[int | None, typer.Option("--count", help="Devices used (gives the duration)")] = None,
    days: Annotated[
        float | None, typer.Option("--days", help="Deadline in days (gives the devices needed)")
    ] = None,
    seq_len: Annotated[int, typer.Option("--seq-len", help="Sequence length (activation memory)")] = 2048,
    mfu: Annotated[
        float | None, typer.Option("--mfu", help="Use this MFU instead of the default range")
    ] = None,
    measured: Annotated[
        float | None, typer.Option("--measured", help="Measured tokens/s per device (overrides)")
    ] = None,
    catalog: CatalogOpt = None,
    price: PriceOpt = None,
    exchange_rate: RateOpt = None,
    electricity: PowerOpt = None,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Days (or devices) a transformer training needs: device-hours, energy, KRW cost, memory minimum."""
    if (count is None) == (days is None):
        raise InputError("give exactly one of --count (devices) or --days (deadline)", field="count")
    bounded("params", params)
    bounded("tokens", tokens)
    bounded("seq-len", seq_len)
    if count is not None:
        bounded("count", count)
    if days is not None:
        bounded("days", days)
    if measured is not None:
        bounded("measured", measured)
    if mfu is not None and not (mfu == mfu and 0 < mfu <= 1):
        raise InputError(f"--mfu must be in (0, 1], got {mfu}", field="mfu", value=mfu)
    cat, prices = plan_context(catalog, price, exchange_rate, electricity)
    acc = cat[accelerator]
    spec = TrainingSpec(params, tokens, seq_len=seq_len)
    if count is not None:
        util = None
        if mfu is not None:
            if not 0 < mfu <= 1:
                raise InputError("MFU must be in (0, 1]", field="mfu", value=mfu)
            util = training_mfu(acc, count).fixed(mfu, f"MFU {mfu:g} given by the user")
        est = estimate_training(acc, spec, count, mfu=util, measured_tokens_per_second_per_device=measured)
    else:
        assert days is not None
        est = devices_for_days(acc, spec, days)
    warnings = []
    if days is not None and est.devices > HUGE_FLEET:
        warnings.append(
            f"{est.devices:,} devices is more than any single training cluster built so far (about "
            f"{HUGE_FLEET:,}); the estimate assumes perfect scaling and is not a realistic plan"
        )
    if as_json:
        emit_json({**_train_json(est, prices), "deadline_days": days, "warnings": warnings})
    else:
        for w in warnings:
            console.print(f"[bold yellow]warning:[/bold yellow] {w}")
        if days is not None:
            console.print(f"[bold]{est.devices} x {acc.id}[/bold] finish within {days:g} days at typical MFU")
        console.print(_train_table(est, prices))
        console.print(assumption_table("Assumptions", est.assumptions))
    if plot is not None:
        _train_plot(est, plot, cat, prices)


# --- plan serve -------------------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add ``accelpool plan train|serve|budget|compare`` to the top-level app."""
    plan_app = typer.Typer(name="plan", help=PLAN_HELP, no_args_is_help=True)
    plan_app.command("train")(_train_cmd)
    plan_app.command("serve")(_serve_cmd)
    plan_app.command("budget")(_budget_cmd)
    plan_app.command("compare")(_compare_cmd)
    app.add_typer(plan_app, name="plan")

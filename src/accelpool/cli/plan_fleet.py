"""`accelpool plan serve` (the fleet a service needs) and `accelpool plan budget` (what a KRW budget buys)."""

from __future__ import annotations

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
    assumption_table,
    krw,
    no_price_note,
    num,
    plan_context,
    savefig,
)
from accelpool.cli.render import console, emit_json
from accelpool.core.errors import InputError
from accelpool.planner.budget import CHINCHILLA_TOKENS_PER_PARAM, BudgetPlan, parse_mix, plan_budget
from accelpool.planner.estimate import check_precision
from accelpool.planner.limits import bounded, parse_amount
from accelpool.planner.prices import (
    HOURS_PER_MONTH,
    PriceList,
    to_krw,
)
from accelpool.planner.serve import ServePlan, ServeSpec, plan_serving


def serve_spec(params: float, context: int, prompt_tokens: int | None, precision: str) -> ServeSpec:
    bounded("params", params)
    bounded("context", context)
    prompt = context // 2 if prompt_tokens is None else int(bounded("prompt-tokens", prompt_tokens))
    if not 0 <= prompt < context:
        raise InputError(f"prompt tokens must be in [0, {context})", field="prompt-tokens", value=prompt)
    return ServeSpec(params, prompt, context - prompt, check_precision(precision))


def _serve_json(plan: ServePlan, prices: PriceList) -> dict[str, Any]:
    est, price = plan.estimate, prices.price(plan.estimate.accelerator)
    monthly = None if price is None else plan.devices.map(lambda d: d * price * float(HOURS_PER_MONTH))
    per_m = (
        None
        if price is None
        else plan.devices.map(lambda d: d * price * 1e6 / (plan.target_tokens_per_second * 3600.0))
    )
    power = plan.power_kw
    return {
        "accelerator": est.accelerator,
        "params": est.spec.params,
        "target_tokens_per_second": plan.target_tokens_per_second,
        "context": est.spec.context,
        "prompt_tokens": est.spec.prompt_tokens,
        "precision": est.spec.precision,
        "tensor_parallel": est.tp,
        "batch_per_replica": est.batch,
        "bound": est.bound,
        "measured": est.measured,
        "tokens_per_second_per_device": est.tokens_per_second_per_device.as_dict(),
        "replicas": {k: int(v) for k, v in plan.replicas.as_dict().items()},
        "devices": {k: int(v) for k, v in plan.devices.as_dict().items()},
        "power_kw": None if power is None else power.as_dict(),
        "price_krw_per_device_hour": price,
        "price_basis": prices.entry(est.accelerator).basis,
        "cost_per_month_krw": None
        if monthly is None
        else {k: to_krw(v) for k, v in monthly.as_dict().items()},
        "cost_per_million_tokens_krw": None
        if per_m is None
        else {k: to_krw(v) for k, v in per_m.as_dict().items()},
        "assumptions": list(est.assumptions),
    }


def _serve_cmd(
    params: Annotated[float, typer.Option("--params", help="Model parameters, e.g. 8e9")],
    tokens_per_second: Annotated[
        float, typer.Option("--tokens-per-second", help="Output tokens/s to sustain")
    ],
    accelerator: Annotated[str, typer.Option("--accelerator", "-a", help="Accelerator type")],
    context: Annotated[int, typer.Option("--context", help="Tokens per sequence (prompt + output)")] = 4096,
    prompt_tokens: Annotated[
        int | None, typer.Option("--prompt-tokens", help="Prompt tokens (default: half the context)")
    ] = None,
    precision: Annotated[str, typer.Option("--precision", help="bf16 | fp16 | fp8 | int8")] = "bf16",
    measured: Annotated[
        float | None, typer.Option("--measured", help="Measured output tokens/s per device (overrides)")
    ] = None,
    catalog: CatalogOpt = None,
    price: PriceOpt = None,
    exchange_rate: RateOpt = None,
    electricity: PowerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Devices an LLM service needs for a token rate: cost per month, power, cost per million tokens."""
    bounded("params", params)
    bounded("tokens-per-second", tokens_per_second)
    if measured is not None:
        bounded("measured", measured)
    cat, prices = plan_context(catalog, price, exchange_rate, electricity)
    acc = cat[accelerator]
    plan = plan_serving(
        acc,
        serve_spec(params, context, prompt_tokens, precision),
        tokens_per_second,
        measured_tokens_per_second_per_device=measured,
    )
    data = _serve_json(plan, prices)
    if as_json:
        emit_json(data)
        return
    est = plan.estimate
    t = Table(
        title=f"Serving {human_count(params)} params at {tokens_per_second:,.0f} output tokens/s on {acc.id}"
    )
    for col in ("", "typical", "optimistic", "pessimistic"):
        t.add_column(col, justify="right" if col else "left")
    scen = ("typical", "optimistic", "pessimistic")
    t.add_row("tokens/s per device", *(f"{est.tokens_per_second_per_device.at(s):,.0f}" for s in scen))
    t.add_row("devices", *(f"{plan.devices.at(s):,.0f}" for s in scen))
    t.add_row("replicas", *(f"{plan.replicas.at(s):,.0f}" for s in scen))
    if plan.power_kw is not None:
        t.add_row("power (kW, at TDP)", *(f"{plan.power_kw.at(s):,.1f}" for s in scen))
    for key, label in (
        ("cost_per_month_krw", "cost per month"),
        ("cost_per_million_tokens_krw", "KRW per 1M tokens"),
    ):
        t.add_row(label, *(krw(None if data[key] is None else data[key][s]) for s in scen))
    unit_price = prices.price(acc.id)
    t.caption = f"bound: {est.bound}; tensor parallel {est.tp}, batch {est.batch} per replica; " + (
        f"price {krw(unit_price)}/device-hour ({prices.entry(acc.id).kind})"
        if unit_price
        else no_price_note(prices, acc.id)
    )
    console.print(t)
    console.print(assumption_table("Assumptions", est.assumptions))


# --- plan budget ------------------------------------------------------------------------------------------


def _budget_json(plan: BudgetPlan, prices: PriceList) -> dict[str, Any]:
    return {
        "budget_krw": plan.budget_krw,
        "months": plan.months,
        "lines": [
            {**line.__dict__, "share": str(line.share), "price_kind": prices.entry(line.accelerator).kind}
            for line in plan.lines
        ],
        "fits": [{**f.__dict__, "chinchilla_fraction": f.chinchilla_fraction} for f in plan.fits],
    }


def _budget_cmd(
    krw: Annotated[str, typer.Option("--krw", help="Budget in KRW, e.g. 11e9")],
    months: Annotated[float, typer.Option("--months", help="Period the budget covers")] = 12.0,
    mix: Annotated[str | None, typer.Option("--mix", help="Split by type, e.g. h100=0.7,rngd=0.3")] = None,
    params: Annotated[
        list[float] | None, typer.Option("--params", help="Model sizes to check (repeatable)")
    ] = None,
    context: Annotated[int, typer.Option("--context", help="Tokens per served sequence")] = 4096,
    catalog: CatalogOpt = None,
    price: PriceOpt = None,
    exchange_rate: RateOpt = None,
    electricity: PowerOpt = None,
    no_assumed_prices: Annotated[
        bool,
        typer.Option(
            "--no-assumed-prices",
            help="Refuse types without a published or --price price instead of a derived assumption",
        ),
    ] = False,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """What a KRW budget buys: device-hours per type, and the trainings and services that fit in it.

    A type named in --mix with no published price gets a DERIVED ASSUMPTION (cost parity per dense BF16
    TFLOPS with H100, see prices.yaml), labelled as such; --price TYPE=KRW overrides it.
    """
    budget = int(parse_amount(krw, "krw", whole=True))
    bounded("months", months)
    for p in params or ():
        bounded("params", p)
    cat, prices = plan_context(catalog, price, exchange_rate, electricity)
    shares = None if mix is None else parse_mix(mix, cat.resolve)
    if shares is not None and not no_assumed_prices:
        prices = prices.with_parity_defaults(cat, shares)
    plan = plan_budget(
        cat,
        prices,
        budget,
        months,
        shares,
        tuple(params or (8e9, 70e9)),
        serve_spec(8e9, context, None, "bf16"),
    )
    if as_json:
        emit_json(_budget_json(plan, prices))
    else:
        _budget_tables(plan, prices)
    if plot is not None:
        plan_charts.budget_chart(plan, plan_charts.save_to(plot, savefig))


def _budget_tables(plan: BudgetPlan, prices: PriceList) -> None:
    alt = any(line.alternative for line in plan.lines)
    t = Table(
        title=f"₩{plan.budget_krw:,} over {plan.months:g} months"
        + (" (each row: the whole budget on one type)" if alt else "")
    )
    for col in ("type", "share", "KRW", "KRW/device-hour", "device-hours", "devices 24/7"):
        t.add_column(col, justify="left" if col == "type" else "right")
    for line in plan.lines:
        t.add_row(
            line.accelerator,
            f"{float(line.share):.0%}",
            krw(line.krw),
            krw(line.krw_per_device_hour),
            f"{line.device_hours:,.0f}",
            f"{line.sustained_devices:,.1f}",
        )
    console.print(t)
    console.print(assumption_table("Prices", tuple(f"{x.accelerator}: {x.price_basis}" for x in plan.lines)))
    for x in plan.lines:
        if prices.entry(x.accelerator).kind == "assumed":
            console.print(
                f"[bold yellow]warning:[/bold yellow] '{x.accelerator}' has no published price; its line uses "
                f"a derived assumption of {x.krw_per_device_hour:,} KRW/device-hour (pass --price "
                f"{x.accelerator}=KRW for your own)"
            )
    f = Table(title=f"What fits (Chinchilla-optimal = {CHINCHILLA_TOKENS_PER_PARAM:g} tokens per parameter)")
    for col in ("type", "params", "trainable tokens", "x Chinchilla", "serve tokens/s 24/7"):
        f.add_column(col, justify="left" if col == "type" else "right")
    for fit in plan.fits:
        frac = fit.chinchilla_fraction
        f.add_row(
            fit.accelerator,
            f"{fit.params:.3g}",
            num(fit.train_tokens, ".3g"),
            "n/a" if frac is None else f"{frac:.2f}",
            num(fit.serve_tokens_per_second),
        )
    console.print(f)
    notes = tuple(
        f"{x.accelerator} {x.params:.3g}: train: {x.train_note}; serve: {x.serve_note}" for x in plan.fits
    )
    console.print(assumption_table("Notes (training: all device-hours on one run at typical MFU)", notes))


# --- plan compare -----------------------------------------------------------------------------------------

"""`accelpool plan`: what a model needs, what a budget buys, and every accelerator side by side.

Thin shell over :mod:`accelpool.planner` (pure math): parse options, call the planner, render a Rich table
or JSON, optionally save a matplotlib plot. Bad input raises InputError (exit code 2 in cli.main).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accelpool.catalog import Catalog, load_catalog
from accelpool.cli import plan_charts
from accelpool.cli.plan_charts import human_count
from accelpool.cli.render import console, emit_json
from accelpool.core.errors import InputError
from accelpool.planner.budget import CHINCHILLA_TOKENS_PER_PARAM, BudgetPlan, parse_mix, plan_budget
from accelpool.planner.compare import CompareRow, compare_serving, compare_training
from accelpool.planner.estimate import Range, check_precision
from accelpool.planner.limits import HUGE_FLEET, bounded, parse_amount
from accelpool.planner.mfu import training_mfu
from accelpool.planner.prices import (
    HOURS_PER_MONTH,
    PriceList,
    load_prices,
    parse_price_overrides,
    to_krw,
)
from accelpool.planner.serve import ServePlan, ServeSpec, plan_serving
from accelpool.planner.train import TrainingEstimate, TrainingSpec, devices_for_days, estimate_training

PLAN_HELP = "Capacity and budget planning: training time, serving fleet, what a KRW budget buys, comparisons."

CatalogOpt = Annotated[
    list[Path] | None, typer.Option("--catalog", help="Operator catalogue YAML (repeatable)")
]
PriceOpt = Annotated[
    list[str] | None,
    typer.Option("--price", help="KRW per device-hour, TYPE=KRW (repeatable or comma-separated)"),
]
RateOpt = Annotated[
    str | None, typer.Option("--exchange-rate", help="KRW per USD for USD-derived default prices")
]
PowerOpt = Annotated[str | None, typer.Option("--electricity", help="KRW per kWh for the electricity figure")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Save a PNG plot to this file")]


# --- shared helpers ---------------------------------------------------------------------------------------


def _context(
    catalog_files: list[Path] | None, price: list[str] | None, rate: str | None, power: str | None
) -> tuple[Catalog, PriceList]:
    cat = load_catalog(catalog_files or [])
    prices = load_prices()
    if rate is not None:
        prices = prices.with_exchange_rate(parse_amount(rate, "exchange-rate", whole=False))
    if power is not None:
        prices = prices.with_electricity(parse_amount(power, "electricity", whole=False))
    return cat, prices.with_overrides(parse_price_overrides(price or [], cat.resolve))


def _krw(value: int | None) -> str:
    return "n/a" if value is None else f"₩{value:,}"


def _num(value: float | None, fmt: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _rng(r: Range | None, fmt: str = ",.1f") -> str:
    if r is None:
        return "n/a"
    if r.pessimistic == r.optimistic:
        return format(r.typical, fmt)
    return f"{format(r.typical, fmt)} ({format(r.low(), fmt)}-{format(r.high(), fmt)})"


def _cost_range(device_hours: Range, price: int | None) -> dict[str, int] | None:
    if price is None:
        return None
    return {k: to_krw(Decimal(str(v)) * price) for k, v in device_hours.as_dict().items()}


def _no_price_note(prices: PriceList, acc: str) -> str:
    return f"no published price for '{acc}': pass --price {acc}=KRW_PER_DEVICE_HOUR for costs"


def _assumption_table(title: str, lines: tuple[str, ...]) -> Table:
    table = Table(title=title, show_header=False, box=None)
    table.add_column("")
    for line in lines:
        table.add_row(f"- {line}")
    return table


def _savefig(fig: Any, path: Path) -> None:
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise InputError(f"cannot write plot: {exc.strerror}", file=str(path)) from None
    console.print(f"plot saved to {path}")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# --- plan train -------------------------------------------------------------------------------------------


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
        "cost_krw": _cost_range(est.device_hours, price),
        "electricity_krw": None
        if energy is None
        else {k: prices.electricity_cost(v) for k, v in energy.as_dict().items()},
        "assumptions": list(est.assumptions),
    }


def _train_table(est: TrainingEstimate, prices: PriceList) -> Table:
    price = prices.price(est.accelerator)
    cost = _cost_range(est.device_hours, price)
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
            *(_krw(prices.electricity_cost(energy.at(s))) for s in ("typical", "optimistic", "pessimistic")),
        )
    t.add_row(
        "cost (KRW)",
        *(_krw(None if cost is None else cost[s]) for s in ("typical", "optimistic", "pessimistic")),
    )
    t.caption = f"bound: {est.bound}; min devices for memory: {est.memory.min_devices}; " + (
        f"price {_krw(price)}/device-hour ({prices.entry(est.accelerator).kind})"
        if price
        else _no_price_note(prices, est.accelerator)
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
    note = "" if price or prices is None else _no_price_note(prices, est.accelerator)
    plan_charts.train_chart(
        est.spec.params,
        est.spec.tokens,
        est.accelerator,
        est.devices,
        counts,
        days,
        cost,
        note,
        plan_charts.save_to(path, _savefig),
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
    cat, prices = _context(catalog, price, exchange_rate, electricity)
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
        console.print(_assumption_table("Assumptions", est.assumptions))
    if plot is not None:
        _train_plot(est, plot, cat, prices)


# --- plan serve -------------------------------------------------------------------------------------------


def _serve_spec(params: float, context: int, prompt_tokens: int | None, precision: str) -> ServeSpec:
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
    cat, prices = _context(catalog, price, exchange_rate, electricity)
    acc = cat[accelerator]
    plan = plan_serving(
        acc,
        _serve_spec(params, context, prompt_tokens, precision),
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
        t.add_row(label, *(_krw(None if data[key] is None else data[key][s]) for s in scen))
    unit_price = prices.price(acc.id)
    t.caption = f"bound: {est.bound}; tensor parallel {est.tp}, batch {est.batch} per replica; " + (
        f"price {_krw(unit_price)}/device-hour ({prices.entry(acc.id).kind})"
        if unit_price
        else _no_price_note(prices, acc.id)
    )
    console.print(t)
    console.print(_assumption_table("Assumptions", est.assumptions))


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
    cat, prices = _context(catalog, price, exchange_rate, electricity)
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
        _serve_spec(8e9, context, None, "bf16"),
    )
    if as_json:
        emit_json(_budget_json(plan, prices))
    else:
        _budget_tables(plan, prices)
    if plot is not None:
        plan_charts.budget_chart(plan, plan_charts.save_to(plot, _savefig))


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
            _krw(line.krw),
            _krw(line.krw_per_device_hour),
            f"{line.device_hours:,.0f}",
            f"{line.sustained_devices:,.1f}",
        )
    console.print(t)
    console.print(_assumption_table("Prices", tuple(f"{x.accelerator}: {x.price_basis}" for x in plan.lines)))
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
            _num(fit.train_tokens, ".3g"),
            "n/a" if frac is None else f"{frac:.2f}",
            _num(fit.serve_tokens_per_second),
        )
    console.print(f)
    notes = tuple(
        f"{x.accelerator} {x.params:.3g}: train: {x.train_note}; serve: {x.serve_note}" for x in plan.fits
    )
    console.print(_assumption_table("Notes (training: all device-hours on one run at typical MFU)", notes))


# --- plan compare -----------------------------------------------------------------------------------------


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
    cat, prices = _context(catalog, price, exchange_rate, electricity)

    def rows_at(price_list: PriceList) -> list[CompareRow]:
        if workload == "train":
            spec = TrainingSpec(
                params, tokens if tokens is not None else CHINCHILLA_TOKENS_PER_PARAM * params
            )
            return compare_training(cat, price_list, spec, count)
        return compare_serving(cat, price_list, _serve_spec(params, context, None, precision))

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
        plan_charts.compare_chart(rows, workload, params, spec_tokens, plan_charts.save_to(plot, _savefig))


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
        t.add_row(s, reg, r.accelerator, _num(r.devices and float(r.devices)), _krw(r.cost_krw), note)
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
                _num(r.devices and float(r.devices)),
                _num(days, ",.1f"),
                _krw(r.cost_krw),
                _num(r.energy_mwh, ",.1f"),
                _num(r.tokens_per_krw, ",.1f"),
                _num(r.tokens_per_joule, ",.2f"),
                note,
            )
        else:
            tps = r.tokens_per_second_per_device
            t.add_row(
                name,
                _num(r.devices and float(r.devices)),
                _num(None if tps is None else tps.typical),
                _krw(r.cost_krw),
                _num(r.tokens_per_krw, ",.1f"),
                _num(r.tokens_per_joule, ",.2f"),
                note,
            )
    return t


def register(app: typer.Typer) -> None:
    """Add ``accelpool plan train|serve|budget|compare`` to the top-level app."""
    plan_app = typer.Typer(name="plan", help=PLAN_HELP, no_args_is_help=True)
    plan_app.command("train")(_train_cmd)
    plan_app.command("serve")(_serve_cmd)
    plan_app.command("budget")(_budget_cmd)
    plan_app.command("compare")(_compare_cmd)
    app.add_typer(plan_app, name="plan")

"""What the `accelpool plan` commands share: option types, number and KRW formatting, plotting."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accelpool.catalog import Catalog, load_catalog
from accelpool.cli.render import console
from accelpool.core.errors import InputError
from accelpool.planner.estimate import Range
from accelpool.planner.limits import parse_amount
from accelpool.planner.prices import (
    PriceList,
    load_prices,
    parse_price_overrides,
    to_krw,
)

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


def plan_context(
    catalog_files: list[Path] | None, price: list[str] | None, rate: str | None, power: str | None
) -> tuple[Catalog, PriceList]:
    cat = load_catalog(catalog_files or [])
    prices = load_prices()
    if rate is not None:
        prices = prices.with_exchange_rate(parse_amount(rate, "exchange-rate", whole=False))
    if power is not None:
        prices = prices.with_electricity(parse_amount(power, "electricity", whole=False))
    return cat, prices.with_overrides(parse_price_overrides(price or [], cat.resolve))


def krw(value: int | None) -> str:
    return "n/a" if value is None else f"₩{value:,}"


def num(value: float | None, fmt: str = ",.0f") -> str:
    return "n/a" if value is None else format(value, fmt)


def rng(r: Range | None, fmt: str = ",.1f") -> str:
    if r is None:
        return "n/a"
    if r.pessimistic == r.optimistic:
        return format(r.typical, fmt)
    return f"{format(r.typical, fmt)} ({format(r.low(), fmt)}-{format(r.high(), fmt)})"


def cost_range(device_hours: Range, price: int | None) -> dict[str, int] | None:
    if price is None:
        return None
    return {k: to_krw(Decimal(str(v)) * price) for k, v in device_hours.as_dict().items()}


def no_price_note(prices: PriceList, acc: str) -> str:
    return f"no published price for '{acc}': pass --price {acc}=KRW_PER_DEVICE_HOUR for costs"


def assumption_table(title: str, lines: tuple[str, ...]) -> Table:
    table = Table(title=title, show_header=False, box=None)
    table.add_column("")
    for line in lines:
        table.add_row(f"- {line}")
    return table


def savefig(fig: Any, path: Path) -> None:
    try:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise InputError(f"cannot write plot: {exc.strerror}", file=str(path)) from None
    console.print(f"plot saved to {path}")


# --- plan train -------------------------------------------------------------------------------------------

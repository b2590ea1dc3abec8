"""What a budget in KRW buys: device-hours per type, and which trainings and services fit in it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from accelpool.core.errors import InputError
from accelpool.core.types import KRW, AcceleratorType
from accelpool.planner.estimate import CannotEstimate, peak_flops, positive
from accelpool.planner.mfu import training_mfu
from accelpool.planner.prices import HOURS_PER_MONTH, PriceList
from accelpool.planner.serve import ServeSpec, estimate_inference
from accelpool.planner.train import TrainingSpec, training_memory

CHINCHILLA_TOKENS_PER_PARAM = 20.0
"""Compute-optimal tokens per parameter (Hoffmann et al. 2022, arXiv:2203.15556)."""


@dataclass(frozen=True)
class BudgetLine:
    """The part of the budget spent on one type."""

    accelerator: str
    share: Decimal
    krw: KRW
    krw_per_device_hour: KRW
    price_basis: str
    device_hours: float
    sustained_devices: float
    alternative: bool = False  # True: "if the whole budget went to this type" (no --mix given)


@dataclass(frozen=True)
class Fit:
    """What a line buys for a model of ``params`` parameters."""

    accelerator: str
    params: float
    train_tokens: float | None
    train_note: str
    serve_tokens_per_second: float | None
    serve_note: str

    @property
    def chinchilla_fraction(self) -> float | None:
        if self.train_tokens is None:
            return None
        return self.train_tokens / (CHINCHILLA_TOKENS_PER_PARAM * self.params)


@dataclass(frozen=True)
class BudgetPlan:
    budget_krw: KRW
    months: float
    lines: tuple[BudgetLine, ...]
    fits: tuple[Fit, ...]


def parse_mix(text: str, resolve: object = None) -> dict[str, Decimal]:
    """``"h100=0.7,rngd=0.3"`` -> shares (names through ``resolve``); shares must add up to 1."""
    out: dict[str, Decimal] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise InputError(f"expected TYPE=SHARE, got '{part}'", field="mix", value=part)
        try:
            share = Decimal(value.strip())
        except ArithmeticError:
            raise InputError(f"share is not a number: '{value}'", field="mix", value=part) from None
        if not share.is_finite() or share <= 0:
            raise InputError(f"share must be > 0, got '{value}'", field="mix", value=part)
        key = resolve(name.strip()) if callable(resolve) else name.strip()
        if key in out:
            raise InputError(f"type '{key}' appears twice in the mix", field="mix", value=text)
        out[key] = share
    total = sum(out.values(), Decimal(0))
    if not out or abs(total - 1) > Decimal("0.001"):
        raise InputError(f"mix shares must add up to 1, got {total}", field="mix", value=text)
    return out


def _split(budget: KRW, mix: Mapping[str, Decimal]) -> dict[str, KRW]:
    """Integer KRW per type, adding up exactly to ``budget`` (the last type takes the rounding rest)."""
    names = list(mix)
    parts = {n: int(Decimal(budget) * mix[n]) for n in names[:-1]}
    parts[names[-1]] = budget - sum(parts.values())
    return parts


def budget_lines(
    catalog: Mapping[str, AcceleratorType],
    prices: PriceList,
    budget_krw: KRW,
    months: float,
    mix: Mapping[str, Decimal] | None,
) -> tuple[BudgetLine, ...]:
    if budget_krw <= 0:
        raise InputError("budget must be a positive amount of KRW", field="krw", value=budget_krw)
    positive("months", months)
    hours = Decimal(str(months)) * HOURS_PER_MONTH
    alternative = mix is None
    if mix is None:
        priced = [a for a in catalog if prices.price(a) is not None]
        if not priced:
            raise InputError("no accelerator has a price: pass --price TYPE=KRW", field="price")
        mix = {a: Decimal(1) for a in priced}
        spend = {a: budget_krw for a in priced}
    else:
        spend = _split(budget_krw, mix)
    lines = []
    for acc, share in mix.items():
        price = prices.require(acc)
        if spend[acc] < price:
            raise InputError(
                f"budget too small: {spend[acc]:,} KRW for '{acc}' does not buy one device-hour "
                f"({price:,} KRW)",
                field="krw",
                value=budget_krw,
            )
        dh = Decimal(spend[acc]) / Decimal(price)
        lines.append(
            BudgetLine(
                acc,
                share,
                spend[acc],
                price,
                prices.entry(acc).basis,
                float(dh),
                float(dh / hours),
                alternative,
            )
        )
    return tuple(lines)


def _train_fit(acc: AcceleratorType, line: BudgetLine, params: float) -> tuple[float | None, str]:
    try:
        spec = TrainingSpec(params, CHINCHILLA_TOKENS_PER_PARAM * params)
        if not acc.training_capable:
            raise CannotEstimate(acc.id, "not training-capable")
        need = training_memory(acc, spec).min_devices
        devices = max(need, math.floor(line.sustained_devices))
        mfu = training_mfu(acc, devices).typical
        tokens = line.device_hours * 3600.0 * peak_flops(acc, spec.precision) * mfu / (6.0 * params)
    except InputError as exc:
        return None, str(exc.message if not isinstance(exc, CannotEstimate) else exc.reason)
    return tokens, f"needs >= {need} devices at once; typical MFU {mfu:g}"


def _serve_fit(
    acc: AcceleratorType, line: BudgetLine, params: float, spec: ServeSpec
) -> tuple[float | None, str]:
    try:
        est = estimate_inference(
            acc, ServeSpec(params, spec.prompt_tokens, spec.output_tokens, spec.precision)
        )
    except InputError as exc:
        return None, str(exc.reason if isinstance(exc, CannotEstimate) else exc.message)
    replicas = math.floor(line.sustained_devices / est.tp)
    if replicas < 1:
        return 0.0, f"needs {est.tp} devices per replica, budget sustains {line.sustained_devices:.1f}"
    return replicas * est.tokens_per_second.typical, f"{replicas} replicas x tp {est.tp}, {est.bound}"


def plan_budget(
    catalog: Mapping[str, AcceleratorType],
    prices: PriceList,
    budget_krw: KRW,
    months: float,
    mix: Mapping[str, Decimal] | None = None,
    params: Sequence[float] = (8e9, 70e9),
    serve: ServeSpec | None = None,
) -> BudgetPlan:
    """Device-hours per type and, per model size, the tokens trainable and tokens/s servable.

    Training: all device-hours spent on one run at typical MFU (Chinchilla: 20 tokens per parameter is
    compute-optimal). Serving: the devices the budget sustains over ``months``, 24/7.
    """
    for p in params:
        positive("params", p)
    lines = budget_lines(catalog, prices, budget_krw, months, mix)
    template = serve or ServeSpec(8e9)
    fits = []
    for line in lines:
        acc = catalog[line.accelerator]
        for p in params:
            tokens, tnote = _train_fit(acc, line, p)
            tps, snote = _serve_fit(acc, line, p, template)
            fits.append(Fit(line.accelerator, p, tokens, tnote, tps, snote))
    return BudgetPlan(budget_krw, months, lines, tuple(fits))

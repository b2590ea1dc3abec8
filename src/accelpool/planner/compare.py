"""Every catalogue accelerator side by side for one training run or one service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from accelpool.core.errors import InputError
from accelpool.core.types import KRW, AcceleratorType
from accelpool.planner.estimate import CannotEstimate, Range
from accelpool.planner.prices import PriceList, to_krw
from accelpool.planner.serve import ServeSpec, estimate_inference
from accelpool.planner.train import TrainingSpec, estimate_training, training_memory


@dataclass(frozen=True)
class CompareRow:
    """One accelerator's figures; ``reason`` says why figures are missing (``None`` when estimated)."""

    accelerator: str
    name: str
    domestic: bool
    reason: str | None = None
    devices: int | None = None
    seconds: Range | None = None  # training: run time
    tokens_per_second_per_device: Range | None = None
    bound: str | None = None
    cost_krw: KRW | None = None  # training: whole run; serving: per 1M output tokens
    price_kind: str = "unknown"
    energy_mwh: float | None = None
    tokens_per_krw: float | None = None
    tokens_per_joule: float | None = None


def _reason(exc: InputError) -> str:
    return exc.reason if isinstance(exc, CannotEstimate) else exc.message


def compare_training(
    catalog: Mapping[str, AcceleratorType], prices: PriceList, spec: TrainingSpec, count: int
) -> list[CompareRow]:
    """``spec`` on ``count`` devices of each type (raised to the memory minimum where needed)."""
    if count < 1:
        raise InputError("device count must be >= 1", field="count", value=count)
    rows = []
    for acc in catalog.values():
        base = {"accelerator": acc.id, "name": acc.name, "domestic": acc.domestic}
        try:
            n = max(count, training_memory(acc, spec).min_devices) if acc.training_capable else count
            est = estimate_training(acc, spec, n)
        except InputError as exc:
            rows.append(CompareRow(**base, reason=_reason(exc)))  # type: ignore[arg-type]
            continue
        price, energy = prices.price(acc.id), est.energy_mwh
        cost = None if price is None else to_krw(Decimal(str(est.device_hours.typical)) * price)
        rows.append(
            CompareRow(
                **base,  # type: ignore[arg-type]
                devices=n,
                seconds=est.seconds,
                tokens_per_second_per_device=est.tokens_per_second_per_device,
                bound=est.bound,
                cost_krw=cost,
                price_kind=prices.entry(acc.id).kind,
                energy_mwh=None if energy is None else energy.typical,
                tokens_per_krw=None if not cost else spec.tokens / cost,
                tokens_per_joule=None if energy is None else spec.tokens / (energy.typical * 3.6e9),
            )
        )
    return rows


def compare_serving(
    catalog: Mapping[str, AcceleratorType], prices: PriceList, spec: ServeSpec
) -> list[CompareRow]:
    """Per-device output tokens/s of each type serving ``spec``; cost per million output tokens."""
    rows = []
    for acc in catalog.values():
        base = {"accelerator": acc.id, "name": acc.name, "domestic": acc.domestic}
        try:
            est = estimate_inference(acc, spec)
        except InputError as exc:
            rows.append(CompareRow(**base, reason=_reason(exc)))  # type: ignore[arg-type]
            continue
        tps = est.tokens_per_second_per_device
        price = prices.price(acc.id)
        per_hour = tps.typical * 3600.0
        tpj = est.tokens_per_joule
        rows.append(
            CompareRow(
                **base,  # type: ignore[arg-type]
                devices=est.tp,
                tokens_per_second_per_device=tps,
                bound=est.bound,
                cost_krw=None
                if price is None
                else to_krw(Decimal(price) * Decimal(1_000_000) / Decimal(str(per_hour))),
                price_kind=prices.entry(acc.id).kind,
                tokens_per_krw=None if price is None else per_hour / price,
                tokens_per_joule=None if tpj is None else tpj.typical,
            )
        )
    return rows

"""Prices in KRW per device-hour, the exchange rate and the electricity price, with their sources.

Money is integer KRW (``accelpool.core.types.KRW``); conversions go through :class:`decimal.Decimal` and
round half up to whole won. :func:`load_prices` reads the bundled ``catalog/prices.yaml`` (the planner's
only I/O); :func:`parse_prices_text` is the pure parser behind it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from importlib import resources
from typing import Any

import yaml

from accelpool.core.errors import InputError
from accelpool.core.types import KRW
from accelpool.planner.limits import parse_amount

HOURS_PER_MONTH = Decimal(730)
"""8,760 hours a year / 12."""


_WIDE = Context(prec=400)
"""Enough digits for any finite float (<= 1.8e308), so quantizing never overflows the default context."""


def to_krw(amount: Decimal | float | int) -> KRW:
    """Round a money amount to whole won (half up). Floats are converted via their shortest repr.

    A non-finite amount (inf/nan from an overflowing computation) is an InputError, never a traceback.
    """
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    if not value.is_finite():
        raise InputError(f"amount out of range: {amount}", field="krw", value=str(amount))
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_WIDE))


def parse_money(text: str, field_name: str = "krw") -> Decimal:
    """A positive amount from text such as ``11e9``, ``1,500,000`` or ``4500``."""
    try:
        value = Decimal(str(text).replace(",", "").replace("_", "").strip())
    except InvalidOperation:
        raise InputError(f"not a number: '{text}'", field=field_name, value=text) from None
    if not value.is_finite() or value <= 0:
        raise InputError(f"must be a positive amount, got '{text}'", field=field_name, value=text)
    return value


@dataclass(frozen=True)
class PriceEntry:
    """One type's price: KRW per device-hour (None = unknown) and how it was obtained."""

    accelerator: str
    krw_per_device_hour: KRW | None
    basis: str
    kind: str  # "operator" | "derived" | "listed" | "unknown"
    sources: tuple[str, ...] = ()
    usd_per_device_hour: Decimal | None = None


@dataclass(frozen=True)
class PriceList:
    exchange_rate_krw_per_usd: Decimal
    electricity_krw_per_kwh: Decimal
    entries: Mapping[str, PriceEntry] = field(default_factory=dict)
    exchange_rate_basis: str = ""
    electricity_basis: str = ""
    parity_reference: str | None = None
    parity_basis: str = ""

    def entry(self, accelerator: str) -> PriceEntry:
        return self.entries.get(accelerator) or PriceEntry(accelerator, None, "no price known", "unknown")

    def price(self, accelerator: str) -> KRW | None:
        return self.entry(accelerator).krw_per_device_hour

    def require(self, accelerator: str) -> KRW:
        """The price, or InputError telling the user how to supply one."""
        p = self.price(accelerator)
        if p is None:
            raise InputError(
                f"no published price for '{accelerator}': pass --price {accelerator}=KRW_PER_DEVICE_HOUR",
                field="price",
                value=accelerator,
            )
        return p

    def with_overrides(self, overrides: Mapping[str, KRW]) -> PriceList:
        entries = dict(self.entries)
        for acc, krw in overrides.items():
            entries[acc] = PriceEntry(acc, krw, "operator price (--price)", "operator")
        return replace(self, entries=entries)

    def with_exchange_rate(self, rate: Decimal) -> PriceList:
        """Re-derive USD-based prices at ``rate`` KRW per USD."""
        entries = {
            acc: (
                replace(e, krw_per_device_hour=to_krw(e.usd_per_device_hour * rate))
                if e.kind == "derived" and e.usd_per_device_hour is not None
                else e
            )
            for acc, e in self.entries.items()
        }
        return replace(
            self,
            exchange_rate_krw_per_usd=rate,
            entries=entries,
            exchange_rate_basis="operator (--exchange-rate)",
        )

    def with_electricity(self, krw_per_kwh: Decimal) -> PriceList:
        return replace(
            self, electricity_krw_per_kwh=krw_per_kwh, electricity_basis="operator (--electricity)"
        )

    def with_parity_defaults(self, catalog: Mapping[str, Any], types: Iterable[str]) -> PriceList:
        """Fill ``types`` that have no price with a DERIVED ASSUMPTION: cost parity per dense BF16 TFLOPS.

        price(type) = price(reference) x bf16_tflops_dense(type) / bf16_tflops_dense(reference), the
        reference (``derived_default.reference`` in prices.yaml, H100) priced as it stands (derived from its
        USD price, or the operator's --price). Types that already have a price keep it; types without a
        dense BF16 figure stay unpriced. Every filled entry has kind "assumed" and says how it was made.
        """
        ref = self.parity_reference
        if ref is None or ref not in catalog or self.price(ref) is None:
            return self
        ref_price = self.price(ref)
        ref_tflops = getattr(catalog[ref], "bf16_tflops_dense", None)
        if not ref_tflops:
            return self
        entries = dict(self.entries)
        for acc in types:
            if self.price(acc) is not None or acc not in catalog:
                continue
            tflops = getattr(catalog[acc], "bf16_tflops_dense", None)
            if not tflops:
                continue
            krw = to_krw(Decimal(ref_price or 0) * Decimal(str(tflops)) / Decimal(str(ref_tflops)))
            if krw < 1:
                continue
            basis = (
                f"DERIVED ASSUMPTION (no published price): cost parity per dense BF16 TFLOPS with {ref}: "
                f"{ref_price:,} KRW/h x {tflops:g} / {ref_tflops:g} TFLOPS = {krw:,} KRW/h; "
                f"override with --price {acc}=KRW"
            )
            entries[acc] = PriceEntry(
                acc, krw, basis, "assumed", (self.parity_basis,) if self.parity_basis else ()
            )
        return replace(self, entries=entries)

    def electricity_cost(self, mwh: float) -> KRW:
        return to_krw(Decimal(str(mwh)) * 1000 * self.electricity_krw_per_kwh)


def _figure(data: Mapping[str, Any], key: str, filename: str) -> tuple[Decimal, str]:
    node = data.get(key)
    if not isinstance(node, dict) or not isinstance(node.get("value"), int | float):
        raise InputError("expected a mapping with a numeric 'value'", file=filename, field=key)
    sources = ", ".join(str(s) for s in node.get("sources", []))
    return Decimal(str(node["value"])), f"{node.get('basis', '')} ({sources})"


def _entry(acc: str, node: Any, rate: Decimal, filename: str) -> PriceEntry:
    if node is None:
        return PriceEntry(acc, None, "no published price: pass --price", "unknown")
    if not isinstance(node, dict):
        raise InputError("expected a mapping or null", file=filename, field=f"prices.{acc}")
    sources = tuple(str(s) for s in node.get("sources", []))
    basis = str(node.get("basis", ""))
    if node.get("krw_per_device_hour") is not None:
        krw = parse_money(str(node["krw_per_device_hour"]), f"prices.{acc}.krw_per_device_hour")
        return PriceEntry(acc, to_krw(krw), basis, "listed", sources)
    if node.get("usd_per_device_hour") is not None:
        usd = parse_money(str(node["usd_per_device_hour"]), f"prices.{acc}.usd_per_device_hour")
        derived = f"derived: {usd} USD x {rate} KRW/USD; {basis}"
        return PriceEntry(acc, to_krw(usd * rate), derived, "derived", sources, usd)
    return PriceEntry(acc, None, basis or "no published price: pass --price", "unknown", sources)


def parse_prices_text(text: str, filename: str = "prices.yaml") -> PriceList:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML: {exc}", file=filename) from None
    if not isinstance(data, dict) or not isinstance(data.get("prices"), dict):
        raise InputError("expected a mapping with a 'prices' mapping", file=filename, field="prices")
    rate, rate_basis = _figure(data, "exchange_rate_krw_per_usd", filename)
    power, power_basis = _figure(data, "electricity_krw_per_kwh", filename)
    entries = {str(acc): _entry(str(acc), node, rate, filename) for acc, node in data["prices"].items()}
    parity = data.get("derived_default")
    ref, parity_basis = None, ""
    if parity is not None:
        if not isinstance(parity, dict) or not isinstance(parity.get("reference"), str):
            raise InputError(
                "expected a mapping with a 'reference' type", file=filename, field="derived_default"
            )
        if parity.get("method") != "bf16_dense_parity":
            raise InputError(
                "the only method is 'bf16_dense_parity'",
                file=filename,
                field="derived_default.method",
                value=parity.get("method"),
            )
        ref, parity_basis = parity["reference"], str(parity.get("basis", ""))
    return PriceList(rate, power, entries, rate_basis, power_basis, ref, parity_basis)


def load_prices() -> PriceList:
    """The bundled default price list (package data ``accelpool/catalog/prices.yaml``)."""
    text = resources.files("accelpool.catalog").joinpath("prices.yaml").read_text(encoding="utf-8")
    return parse_prices_text(text, "accelpool/catalog/prices.yaml")


def parse_price_overrides(items: Iterable[str], resolve: Any = None) -> dict[str, KRW]:
    """``["h100=4500", "rngd=2000,l40s=1800"]`` -> ``{"h100": 4500, ...}`` (names through ``resolve``)."""
    out: dict[str, KRW] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in item.split(","))):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise InputError(f"expected TYPE=KRW, got '{part}'", field="price", value=part)
            acc = resolve(name.strip()) if resolve else name.strip()
            if acc in out:
                raise InputError(f"'{acc}' priced twice", field="price", value=item)
            out[acc] = int(parse_amount(value, "price", whole=True))
    return out

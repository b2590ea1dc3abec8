"""Sane bounds for every numeric ``accelpool plan`` option (documented in docs/planner.md).

A value outside its bound is refused with an InputError naming the option and the value (exit code 2),
never passed on to arithmetic that would overflow, hang or answer nonsense. The bounds are wide: they
refuse only figures that no real plan uses (a 1e30-parameter model, a one-nanosecond deadline, a budget
larger than the world's GDP).
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

from accelpool.core.errors import InputError

# option -> (lowest, highest, unit/explanation)
LIMITS: dict[str, tuple[float, float, str]] = {
    "params": (1e3, 1e14, "parameters (100 trillion at most)"),
    "tokens": (1.0, 1e16, "tokens (10 quadrillion at most)"),
    "tokens-per-second": (1e-3, 1e10, "output tokens/s"),
    "days": (1.0 / 24.0, 36500.0, "days (one hour to 100 years)"),
    "months": (0.01, 1200.0, "months (about 7 hours to 100 years)"),
    "count": (1, 10_000_000, "devices"),
    "seq-len": (1, 10_000_000, "tokens"),
    "context": (2, 10_000_000, "tokens"),
    "prompt-tokens": (0, 10_000_000, "tokens"),
    "measured": (1e-9, 1e12, "tokens/s per device"),
    "krw": (1, 1e16, "KRW (whole won, 10 quadrillion at most)"),
    "price": (1, 1e9, "KRW per device-hour (whole won)"),
    "exchange-rate": (1, 1e6, "KRW per USD"),
    "electricity": (1e-3, 1e5, "KRW per kWh"),
}

HUGE_FLEET = 200_000
"""Device counts above this exceed the largest single training clusters reported by 2025 (about 100k-200k
GPUs, e.g. xAI Colossus); ``plan train --days`` warns when its answer is larger."""


def _bounds_text(name: str) -> str:
    lo, hi, unit = LIMITS[name]
    return f"{lo:g} to {hi:g} {unit}"


def bounded(name: str, value: float) -> float:
    """``value`` if it is a finite number within ``LIMITS[name]``, else InputError naming ``--name``."""
    lo, hi, _ = LIMITS[name]
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"--{name}: not a number: {value!r}", field=name, value=value) from None
    if not math.isfinite(v):
        raise InputError(
            f"--{name} must be a finite number ({_bounds_text(name)}), got {value}", field=name, value=value
        )
    if v <= 0 < lo:
        raise InputError(
            f"--{name} must be a positive number ({_bounds_text(name)}), got {value:g}",
            field=name,
            value=value,
        )
    if not lo <= v <= hi:
        raise InputError(f"--{name} must be {_bounds_text(name)}, got {value:g}", field=name, value=value)
    return v


def parse_amount(text: str, name: str, *, whole: bool) -> Decimal:
    """A bounded money amount from text (``11e9``, ``1,500,000``); ``whole``: refuse fractional won."""
    try:
        value = Decimal(str(text).replace(",", "").replace("_", "").strip())
    except InvalidOperation:
        raise InputError(f"--{name}: not a number: '{text}'", field=name, value=text) from None
    if not value.is_finite():
        raise InputError(
            f"--{name} must be a finite amount ({_bounds_text(name)}), got '{text}'", field=name, value=text
        )
    lo, hi, _ = LIMITS[name]
    if value <= 0:
        raise InputError(f"--{name} must be a positive amount, got '{text}'", field=name, value=text)
    if not Decimal(str(lo)) <= value <= Decimal(str(hi)):
        raise InputError(f"--{name} must be {_bounds_text(name)}, got '{text}'", field=name, value=text)
    if whole and value != value.to_integral_value():
        raise InputError(
            f"--{name} must be whole won (KRW has no fractional unit in use), got '{text}'",
            field=name,
            value=text,
        )
    return value

"""Accounting: metered usage times price becomes a Charge against a grant.

    amount_krw = round_half_up(devices * seconds * price_krw_per_device_hour / 3600)
    charged    = min(amount_krw, grant remaining)        (a grant never goes below zero)

Money is integer KRW; the division is done in Decimal so that no float rounding leaks into money.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from accelpool.core.rounds import Placement
from accelpool.core.types import Charge


def amount_krw(device_seconds: float, price_krw_per_hour: int) -> int:
    """KRW for ``device_seconds`` at ``price_krw_per_hour`` per device-hour, rounded half up."""
    if price_krw_per_hour == 0:
        return 0
    exact = Decimal(repr(float(device_seconds))) * Decimal(int(price_krw_per_hour)) / Decimal(3600)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def meter(
    *,
    job: str,
    tenant: str,
    grant: str | None,
    placement: Placement,
    start: float,
    end: float,
    price_krw_per_hour: int,
    grant_remaining_krw: int | None,
) -> Charge | None:
    """The charge for a job's usage over [start, end) seconds, capped at what its grant has left."""
    seconds = max(0.0, end - start)
    if seconds <= 0:
        return None
    device_seconds = placement.count * seconds
    amount = amount_krw(device_seconds, price_krw_per_hour)
    if grant_remaining_krw is not None:
        amount = max(0, min(amount, grant_remaining_krw))
    return Charge(
        job=job,
        tenant=tenant,
        grant=grant,
        accelerator=placement.accelerator,
        device_seconds=device_seconds,
        amount_krw=amount,
        start=start,
        end=end,
    )

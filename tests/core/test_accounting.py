"""Exact billing: slices accumulate a carry, so a run's total is its exact cost rounded half up."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from accelpool.core.accounting import amount_krw, exact_krw, meter_slice, round_half_up
from accelpool.core.rounds import Placement

ONE = Placement("j", "warboy", (("n", (0,)),))


def bill(slices: list[float], price: int, devices: int = 1) -> tuple[int, Fraction]:
    """Meter ``slices`` (seconds each) back to back, the last one final; (total billed, exact total)."""
    placement = Placement("j", "t", (("n", tuple(range(devices))),))
    carry: Fraction | None = None
    total, exact, t = 0, Fraction(0), 0.0
    for k, sec in enumerate(slices):
        charge, carry = meter_slice(
            job="j",
            tenant="t",
            grant=None,
            placement=placement,
            start=t,
            end=t + sec,
            price_krw_per_hour=price,
            grant_remaining_krw=None,
            carry=carry,
            final=k == len(slices) - 1,
        )
        assert carry is not None and Fraction(0) <= carry < 1
        exact += exact_krw(devices * sec, price)
        total += charge.amount_krw if charge is not None else 0
        t += sec
    return total, exact


def test_one_hour_at_800_in_three_second_slices_bills_800() -> None:
    total, exact = bill([3.0] * 1200, 800)
    assert exact == 800
    assert total == 800  # per-slice rounding billed 1200 (0.667 -> 1 each slice)


def test_cheap_one_second_slices_are_not_billed_zero() -> None:
    total, _ = bill([1.0] * 3600, 800)
    assert total == 800  # per-slice rounding billed 0 (0.22 -> 0 each slice)


def test_one_off_amount_rounds_half_up() -> None:
    assert amount_krw(4.5, 3600) == 5  # 4.5 KRW exactly
    assert amount_krw(4.4, 3600) == 4
    assert amount_krw(0, 800) == 0


@settings(max_examples=200, deadline=None)
@given(
    slices=st.lists(
        st.one_of(
            st.floats(min_value=0.001, max_value=7200, allow_nan=False, allow_infinity=False),
            st.integers(min_value=1, max_value=7200).map(float),  # the integer fast path, mixed in
        ),
        min_size=1,
        max_size=60,
    ),
    price=st.integers(min_value=0, max_value=20_000_000),
    devices=st.integers(min_value=1, max_value=64),
)
def test_total_billed_is_the_exact_total_rounded(slices: list[float], price: int, devices: int) -> None:
    total, exact = bill(slices, price, devices)
    assert abs(total - round_half_up(exact)) <= 1


@settings(max_examples=100, deadline=None)
@given(
    seconds=st.integers(min_value=1, max_value=30),
    n=st.integers(min_value=1, max_value=2000),
    price=st.integers(min_value=1, max_value=100_000),
)
def test_integer_slices_bill_exactly(seconds: int, n: int, price: int) -> None:
    total, exact = bill([float(seconds)] * n, price)
    assert total == round_half_up(exact)
    assert exact == Fraction(seconds * n * price) / 3600


def test_round_cost_is_exact_and_rounds_up() -> None:
    from accelpool.core.rounds import round_cost_krw

    assert round_cost_krw(1, 3600, 1.0) == 1
    assert round_cost_krw(1, 3600, 0.1) == 1  # 0.1 KRW -> 1
    assert round_cost_krw(3, 1200, 1.0) == 1  # exactly 1 KRW (float: 1.0000000000000002 -> 2 without a fudge)
    assert round_cost_krw(1, 36_000_000_000, 0.1) == 1_000_000  # exact at large prices (a fudge can't be)
    assert round_cost_krw(1, 36_000_000_001, 0.1) == 1_000_001
    assert round_cost_krw(0, 800, 360.0) == 0


@settings(max_examples=300, deadline=None)
@given(
    devices=st.integers(min_value=0, max_value=1024),
    price=st.integers(min_value=0, max_value=10**9),
    tenths=st.integers(min_value=0, max_value=10**6),
)
def test_round_cost_is_the_ceiling_of_the_exact_cost(devices: int, price: int, tenths: int) -> None:
    from fractions import Fraction

    from accelpool.core.rounds import round_cost_krw

    cost = round_cost_krw(devices, price, tenths / 10)
    exact = Fraction(devices * price * tenths, 36000)
    assert cost - 1 < exact <= cost

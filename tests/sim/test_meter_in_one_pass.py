"""The memory store's one-pass metering (core.ledger.meter_and_book) books what meter + book_charge +
after_booking book: the same charge and the same status after it, on integer and fractional slices,
with and without a carry, for states other than RUNNING."""

from __future__ import annotations

import random
from fractions import Fraction

from accelpool.core import ledger
from accelpool.core.round_types import JobStatus, Placement
from accelpool.core.types import Job, JobState


def _two_step(s: JobStatus, until: float, price: int) -> tuple[object, JobStatus] | None:
    c = ledger.meter(s, until, price, final=False)
    if c is None:
        return None
    b = ledger.book_charge(s, c, price)
    return None if b is None else (b.charge, ledger.after_booking(s, b))


def test_meter_and_book_equals_meter_then_book() -> None:
    rng = random.Random(7)
    states = [JobState.RUNNING] * 6 + [JobState.QUEUED, JobState.SUCCEEDED]
    for i in range(3000):
        devices = tuple(range(rng.choice([1, 2, 4, 8])))
        p = Placement(
            f"j{i}", rng.choice(["v100", "k80"]), (("n1", devices),), site=rng.choice(["default", "s2"])
        )
        mark = rng.choice([None, 0.0, 100.0, 100.5])
        carry = rng.choice([Fraction(0), Fraction(1, 3600), Fraction(1799, 3600), Fraction(1, 7)])
        s = JobStatus(
            Job(f"j{i}", tenant=rng.choice(["a", "b"]), grant=rng.choice([None, "g"])),
            rng.choice(states),
            rng.choice([p, p, None]),
            steps_done=rng.random() * 10,
            seconds_on=rng.choice([{}, {"v100": 5.0}]),
            metered_until=mark,
            carry=carry,
        )
        until = rng.choice([50.0, 100.0, 460.0, 460.25, 1e6 / 3])
        price = rng.choice([0, 1, 1000, 3333])
        got, want = ledger.meter_and_book(s, until, price), _two_step(s, until, price)
        assert got == want
        if got is not None and want is not None:  # the very same objects as the constructors make
            assert vars(got[0]) == vars(want[0]) and vars(got[1]) == vars(want[1])
            assert repr(got) == repr(want) and hash(got[0]) == hash(want[0])

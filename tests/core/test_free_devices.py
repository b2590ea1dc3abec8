"""core.free_devices._FreeDevices: the free count per type it keeps as gangs are taken and placed equals
the free device lists it holds, over random sequences on pools of many one-device nodes and a few big
ones, with zones and sites; what a place or take_exact hands out is never handed out again."""

from __future__ import annotations

import random

import pytest

from accelpool.core.free_devices import _FreeDevices
from accelpool.core.round_types import Placement
from accelpool.core.rounds import DecideCache
from accelpool.core.types import Node


@pytest.mark.parametrize("seed", range(20))
def test_free_count_follows_the_free_lists(seed: int) -> None:
    rng = random.Random(seed)
    nodes = tuple(
        Node(
            f"n{k}",
            rng.choice(["a100", "h100"]),
            rng.choice([1, 1, 1, 4, 8]),
            zone=rng.choice(["z1", "z2"]),
            site=rng.choice(["s1", "s2"]),
        )
        for k in range(rng.randint(1, 40))
    )
    cache = DecideCache()
    for _ in range(3):  # the template is kept in the cache: each round starts from all free again
        free = _FreeDevices(nodes, cache)
        held: set[tuple[str, int]] = set()
        for _ in range(30):
            t = rng.choice(["a100", "h100", "tpu"])
            if rng.random() < 0.5:
                got = free.place(
                    f"j{rng.random()}",
                    t,
                    rng.choice([1, 2, 4]),
                    rng.choice([None, "z1"]),
                    rng.choice(["s1", "s2"]),
                )
            else:  # a running job's exact devices (free or not)
                on = [n for n in nodes if n.accelerator == t]
                got = None
                if on:
                    n = rng.choice(on)
                    d = tuple(sorted(rng.sample(range(n.devices), rng.randint(1, n.devices))))
                    p = Placement("j", t, ((n.name, d),), n.site)
                    got = p if free.take_exact(p) else None
            if got is not None:
                for n, d in got.devices:
                    for i in d:
                        assert (n, i) not in held
                        held.add((n, i))
            for a in ("a100", "h100", "tpu"):
                assert free.total(a) == sum(len(v) for v in free.by_type.get(a, {}).values())
        total = sum(n.devices for n in nodes)
        assert sum(free.total(a) for a in ("a100", "h100")) == total - len(held)

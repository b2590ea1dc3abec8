"""Clocks: the real one for the live service, a virtual one for the simulator and tests."""

from __future__ import annotations

import threading
import time


class SystemClock:
    """Wall-clock seconds (Unix time). ``sleep_until`` can be interrupted by ``wake()``."""

    def __init__(self) -> None:
        self._wake = threading.Event()

    def now(self) -> float:
        return time.time()

    def sleep_until(self, t: float) -> None:
        delay = t - time.time()
        if delay > 0:
            self._wake.wait(delay)
        self._wake.clear()

    def wake(self) -> None:
        """End the current sleep early (e.g. a job was submitted, or the service is stopping)."""
        self._wake.set()


class VirtualClock:
    """Simulated seconds: ``sleep_until`` jumps, ``advance`` moves forward. Never goes back."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def sleep_until(self, t: float) -> None:
        self._now = max(self._now, float(t))

    def advance(self, seconds: float) -> None:
        self._now += max(0.0, float(seconds))

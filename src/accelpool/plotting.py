"""matplotlib's pyplot on the Agg backend (no display needed), imported on the first plot: importing it
takes about half a second, which commands that draw nothing (``accelpool simulate`` without ``--report``,
every other command) do not pay. The plots of ``sim.report`` and of ``accelpool plan`` go through it."""

from __future__ import annotations

from typing import Any


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

"""Charts for ``accelpool plan``: readable titles (70B params, 2T tokens), KRW on the charts, bars sorted
best first, and a note naming the types that could not be estimated and why. matplotlib, Agg backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from accelpool.planner.budget import BudgetPlan
from accelpool.planner.compare import CompareRow
from accelpool.plotting import pyplot

DOMESTIC = "#d55e00"  # Korean-designed
OTHER = "#0072b2"


def human_count(x: float) -> str:
    """70e9 -> "70B", 2e12 -> "2T", 1.5e11 -> "150B", 7e6 -> "7M" (3 significant digits at most)."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            v = x / scale
            text = f"{v:.3g}"
            if "e" in text:
                text = f"{v:,.0f}"
            return text + suffix
    return f"{x:.3g}"


def krw_short(v: float) -> str:
    """Won for chart labels: ₩1.2억 style would not read in English, so ₩ with M/B/T suffixes."""
    if abs(v) >= 1e6:
        return "₩" + human_count(v)
    return f"₩{v:,.0f}"


def _note(fig: Any, lines: Sequence[str]) -> None:
    if lines:
        fig.text(0.01, 0.005, "\n".join(lines), fontsize=7.5, va="bottom", ha="left", wrap=True)


def train_chart(
    params: float,
    tokens: float,
    accelerator: str,
    chosen: int,
    counts: Sequence[int],
    days: Mapping[str, Sequence[float]],
    cost_krw: Sequence[float] | None,
    price_note: str,
    save: Callable[[Any], None],
) -> None:
    """Days (and, with a price, KRW) against the number of devices, for one type."""
    plt = pyplot()
    panels = 2 if cost_krw is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels * 0.8 + 1.4, 4.2), squeeze=False)
    ax = axes[0, 0]
    ax.fill_between(
        counts, days["optimistic"], days["pessimistic"], alpha=0.25, label="optimistic to pessimistic MFU"
    )
    ax.plot(counts, days["typical"], label="typical MFU")
    ax.axvline(chosen, linestyle="--", color="grey", label=f"{chosen:,} devices")
    ax.set(xscale="log", yscale="log", xlabel=f"number of {accelerator} devices", ylabel="days to train")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    if cost_krw is not None:
        cx = axes[0, 1]
        cx.plot(counts, cost_krw, color=DOMESTIC)
        cx.axvline(chosen, linestyle="--", color="grey")
        cx.set(xscale="log", xlabel=f"number of {accelerator} devices", ylabel="cost (KRW, typical MFU)")
        cx.yaxis.set_major_formatter(lambda v, _pos: krw_short(v))
        cx.set_ylim(0, max(cost_krw, default=1.0) * 1.15)
        cx.grid(alpha=0.3)
    fig.suptitle(f"Training {human_count(params)} params on {human_count(tokens)} tokens on {accelerator}")
    _note(fig, [price_note] if price_note else [])
    fig.tight_layout(rect=(0, 0.05 if price_note else 0, 1, 1))
    save(fig)
    plt.close(fig)


def budget_chart(plan: BudgetPlan, save: Callable[[Any], None]) -> None:
    """Device-hours per type for the budget, most first, each bar labelled with its KRW and price."""
    plt = pyplot()
    lines = sorted(plan.lines, key=lambda line: -line.device_hours)
    fig, ax = plt.subplots(figsize=(7.5, max(3.0, 0.45 * len(lines) + 1.2)))
    names = [line.accelerator for line in lines]
    ax.barh(names, [line.device_hours for line in lines], color=OTHER)
    ax.invert_yaxis()
    for k, line in enumerate(lines):
        ax.text(
            line.device_hours,
            k,
            f"  {line.device_hours:,.0f} h for {krw_short(line.krw)} at ₩{line.krw_per_device_hour:,}/h",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, max((line.device_hours for line in lines), default=1) * 1.6)
    ax.set_xlabel("device-hours")
    ax.xaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    alt = any(line.alternative for line in lines)
    ax.set_title(
        f"What ₩{plan.budget_krw:,} buys over {plan.months:g} months"
        + ("\n(each bar: the whole budget on one type)" if alt else "")
    )
    fig.tight_layout()
    save(fig)
    plt.close(fig)


def compare_bars(
    rows: Sequence[CompareRow], workload: str
) -> tuple[list[tuple[CompareRow, float]], list[str]]:
    """The bars (row, days to train or tokens/s per device), best first, and "type: why" for the types
    that could not be estimated."""
    train = workload == "train"
    ok: list[tuple[CompareRow, float]] = []
    for r in rows:
        if r.reason is not None:
            continue
        if train and r.seconds is not None:
            ok.append((r, r.seconds.typical / 86400.0))
        elif not train and r.tokens_per_second_per_device is not None:
            ok.append((r, r.tokens_per_second_per_device.typical))
    ok.sort(key=lambda x: x[1] if train else -x[1])  # fastest first
    return ok, [f"{r.accelerator}: {r.reason}" for r in rows if r.reason is not None]


def compare_chart(
    rows: Sequence[CompareRow],
    workload: str,
    params: float,
    tokens: float | None,
    save: Callable[[Any], None],
) -> None:
    """One bar per type that could be estimated, best first, labelled with KRW; the others in a note."""
    plt = pyplot()
    train = workload == "train"
    ok, skipped = compare_bars(rows, workload)
    fig, ax = plt.subplots(figsize=(8, max(3.0, 0.42 * len(ok) + 1.4 + 0.16 * (len(skipped) + 1))))
    names = [f"{r.accelerator}{' (KR)' if r.domestic else ''}" for r, _ in ok]
    values = [v for _, v in ok]
    ax.barh(names, values, color=[DOMESTIC if r.domestic else OTHER for r, _ in ok])
    ax.invert_yaxis()
    for k, (r, v) in enumerate(ok):
        if r.cost_krw is None:
            money = "no price"
        elif train:
            money = krw_short(r.cost_krw)
        else:
            money = f"₩{r.cost_krw:,} per 1M tokens"
        label = f"  {v:,.1f} days, {money}" if train else f"  {v:,.0f} tok/s, {money}"
        ax.text(v, k, label, va="center", fontsize=8)
    if train and values and max(values) / max(min(values), 1e-9) > 50:
        ax.set_xscale("log")
        ax.set_xlim(min(values) * 0.8, max(values) * 8)
    else:
        ax.set_xlim(0, max(values, default=1.0) * 1.7)
    ax.set_xlabel("days to train (typical MFU)" if train else "output tokens/s per device (typical)")
    from matplotlib.patches import Patch

    ax.legend(
        handles=[Patch(color=DOMESTIC, label="Korean-designed"), Patch(color=OTHER, label="other")],
        fontsize=8,
        loc="upper right",
    )
    what = (
        f"Training {human_count(params)} params on {human_count(tokens or 0)} tokens"
        if train
        else f"Serving a {human_count(params)}-parameter model"
    )
    ax.set_title(f"{what}: {'fastest' if train else 'highest throughput'} first")
    note = (
        ["Not estimated (no figure to base an estimate on):", *(f"  {s}" for s in skipped)] if skipped else []
    )
    _note(fig, note)
    height = fig.get_size_inches()[1]
    fig.tight_layout(rect=(0, min(0.5, 0.15 * (len(note) + 1) / height) if note else 0, 1, 1))
    save(fig)
    plt.close(fig)


def save_to(path: Path, saver: Callable[[Any, Path], None]) -> Callable[[Any], None]:
    return lambda fig: saver(fig, path)

"""`plan` charts: readable counts in titles, bars sorted best first, the types that cannot be estimated
named, KRW on the chart."""

from __future__ import annotations

from pathlib import Path

from accelpool.catalog import bundled_catalog
from accelpool.cli.main import main
from accelpool.cli.plan_charts import compare_bars, human_count, krw_short
from accelpool.planner.compare import compare_serving, compare_training
from accelpool.planner.prices import load_prices
from accelpool.planner.serve import ServeSpec
from accelpool.planner.train import TrainingSpec


def test_human_counts():
    assert human_count(70e9) == "70B"
    assert human_count(2e12) == "2T"
    assert human_count(1.5e11) == "150B"
    assert human_count(8.2e10) == "82B"
    assert human_count(7e6) == "7M"
    assert krw_short(3_930_000_000) == "₩3.93B" and krw_short(52_000) == "₩52,000"


def test_compare_bars_are_sorted_and_the_rest_are_named():
    cat = bundled_catalog()
    prices = load_prices()
    rows = compare_training(cat, prices, TrainingSpec(70e9, 2e12), 1024)
    bars, skipped = compare_bars(rows, "train")
    days = [d for _, d in bars]
    assert days == sorted(days) and len(bars) >= 3
    assert any(s.startswith("rngd: ") and "training" in s for s in skipped)
    assert len(bars) + len(skipped) == len(rows)
    srows = compare_serving(cat, prices, ServeSpec(8e9))
    sbars, _ = compare_bars(srows, "serve")
    tps = [v for _, v in sbars]
    assert tps == sorted(tps, reverse=True)


def test_plots_are_written(tmp_path: Path):
    for args in (
        ["plan", "train", "--params", "70e9", "--tokens", "2e12", "-a", "h100", "--count", "1024"],
        ["plan", "compare", "--params", "70e9", "--tokens", "2e12", "--workload", "train"],
        ["plan", "budget", "--krw", "11e9"],
    ):
        out = tmp_path / f"{args[1]}.png"
        assert main([*args, "--plot", str(out)]) == 0
        assert out.stat().st_size > 10_000

"""`accelpool plan ...` end to end through cli.main (exit codes, JSON, plots)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from accelpool.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["plan", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_train_hyperclova_json(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(
        capsys, "train", "--params", "82e9", "--tokens", "150e9", "--accelerator", "a100", "--count", "1024"
    )
    assert data["devices"] == 1024
    assert data["days"]["optimistic"] <= 13.4 <= data["days"]["pessimistic"]
    assert data["min_devices_for_memory"] >= 16
    assert all(isinstance(v, int) for v in data["cost_krw"].values())
    assert data["bound"] == "compute" and data["assumptions"]


def test_train_days_gives_devices(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "train", "--params", "82e9", "--tokens", "150e9", "-a", "A100", "--days", "30")
    assert data["days"]["typical"] <= 30 and data["devices"] >= data["min_devices_for_memory"]


def test_train_table_and_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "train.png"
    code, out, _ = run(
        capsys,
        "train",
        "--params",
        "7e9",
        "--tokens",
        "1e11",
        "-a",
        "h100",
        "--count",
        "64",
        "--plot",
        str(png),
    )
    assert code == 0 and "device-hours" in out
    assert png.stat().st_size > 1000


def test_serve_needs_price_for_cost_but_still_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(
        capsys, "serve", "--params", "8e9", "--tokens-per-second", "50000", "-a", "rngd", "--context", "4096"
    )
    assert data["devices"]["typical"] > 0 and data["cost_per_month_krw"] is None
    priced = run_json(
        capsys,
        "serve",
        "--params",
        "8e9",
        "--tokens-per-second",
        "50000",
        "-a",
        "rngd",
        "--price",
        "rngd=3000",
    )
    assert priced["cost_per_month_krw"]["typical"] == priced["devices"]["typical"] * 3000 * 730


def test_budget_with_mix(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = run_json(
        capsys,
        "budget",
        "--krw",
        "11e9",
        "--months",
        "12",
        "--mix",
        "h100=0.7,rngd=0.3",
        "--price",
        "rngd=2500",
    )
    assert sum(line["krw"] for line in data["lines"]) == 11_000_000_000
    code, out, _ = run(capsys, "budget", "--krw", "11e9", "--months", "12", "--plot", str(tmp_path / "b.png"))
    assert code == 0 and "h100" in out and (tmp_path / "b.png").exists()


def test_compare_serve_and_train(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    data = run_json(capsys, "compare", "--params", "8e9", "--workload", "serve")
    rows = {r["accelerator"]: r for r in data["rows"]}
    assert rows["rngd"]["domestic"] and rows["atom"]["reason"] == "missing memory_bw_gbps"
    code, out, _ = run(
        capsys, "compare", "--params", "8e9", "--workload", "train", "--plot", str(tmp_path / "c.png")
    )
    assert code == 0 and "warboy" in out and (tmp_path / "c.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--params", "0", "--tokens", "1e9", "-a", "a100", "--count", "8"], "positive"),
        (["train", "--params", "-5", "--tokens", "1e9", "-a", "a100", "--count", "8"], "positive"),
        (["train", "--params", "1e9", "--tokens", "1e9", "-a", "a10O", "--count", "8"], "did you mean"),
        (["train", "--params", "1e9", "--tokens", "1e9", "-a", "a100"], "exactly one"),
        (
            ["train", "--params", "1e9", "--tokens", "1e9", "-a", "rngd", "--count", "8"],
            "not training-capable",
        ),
        (["serve", "--params", "405e9", "--tokens-per-second", "10", "-a", "l40s"], "does not fit"),
        (["serve", "--params", "8e9", "--tokens-per-second", "10", "-a", "atom"], "missing memory_bw_gbps"),
        (["serve", "--params", "8e9", "--tokens-per-second", "0", "-a", "h100"], "positive"),
        (["budget", "--krw", "5000", "--months", "1", "--mix", "h100=1"], "budget too small"),
        (["budget", "--krw", "-1", "--months", "1"], "positive"),
        (["budget", "--krw", "11e9", "--mix", "rngd=1"], "--price rngd="),
        (["compare", "--params", "8e9", "--workload", "fly"], "serve"),
    ],
)
def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err

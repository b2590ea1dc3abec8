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
        (["budget", "--krw", "11e9", "--mix", "rngd=1", "--no-assumed-prices"], "--price rngd="),
        (["budget", "--krw", "11e9", "--mix", "warboy=1"], "--price warboy="),
        (["compare", "--params", "8e9", "--workload", "fly"], "serve"),
    ],
)
def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err


# --- bounds: every numeric option refuses nan/inf/0/negative/huge with exit 2 (docs/planner.md) -----------

TRAIN = ["train", "--params", "8e9", "--tokens", "1e12", "-a", "h100"]
SERVE = ["serve", "--params", "8e9", "-a", "h100"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*SERVE, "--tokens-per-second", "1e30"], "--tokens-per-second must be"),
        ([*SERVE, "--tokens-per-second", "nan"], "finite"),
        ([*SERVE, "--tokens-per-second", "5", "--measured", "1e300"], "--measured must be"),
        ([*SERVE, "--tokens-per-second", "5", "--context", "0"], "--context must be"),
        (["serve", "--params", "1e30", "--tokens-per-second", "5", "-a", "h100"], "--params must be"),
        (["budget", "--krw", "1e30", "--months", "12"], "--krw must be"),
        (["budget", "--krw", "1e400", "--months", "12"], "--krw must be"),
        (["budget", "--krw", "nan"], "finite"),
        (["budget", "--krw", "inf"], "finite"),
        (["budget", "--krw", "0"], "positive"),
        (["budget", "--krw", "11.7", "--price", "h100=1"], "whole won"),
        (["budget", "--krw", "11e9", "--price", "h100=1.5"], "whole won"),
        (["budget", "--krw", "11e9", "--price", "h100=1,h100=2"], "priced twice"),
        (["budget", "--krw", "11e9", "--months", "1e-300"], "--months must be"),
        (["budget", "--krw", "11e9", "--months", "inf"], "finite"),
        (["budget", "--krw", "11e9", "--params", "-1"], "--params must be"),
        (["budget", "--krw", "11e9", "--exchange-rate", "1e400"], "--exchange-rate must be"),
        (["budget", "--krw", "11e9", "--electricity", "nan"], "finite"),
        (["budget", "--krw", "11e9", "--mix", "h100=0.5,h100=0.5"], "twice"),
        (["budget", "--krw", "11e9", "--mix", "h100=0.5,H100=0.5"], "twice"),
        ([*TRAIN, "--days", "1e-9"], "--days must be"),
        ([*TRAIN, "--days", "nan"], "finite"),
        ([*TRAIN, "--count", "0"], "--count must be a positive"),
        ([*TRAIN, "--count", "-3"], "--count must be"),
        ([*TRAIN, "--count", "8", "--mfu", "nan"], "--mfu"),
        ([*TRAIN, "--count", "8", "--measured", "inf"], "finite"),
        (["train", "--params", "inf", "--tokens", "1e12", "-a", "h100", "--count", "8"], "finite"),
        (["train", "--params", "8e9", "--tokens", "1e40", "-a", "h100", "--count", "8"], "--tokens must be"),
        (["compare", "--params", "8e9", "--workload", "train", "--tokens", "1e40"], "--tokens must be"),
        (["compare", "--params", "nan"], "finite"),
        (["compare", "--params", "8e9", "--count", "0", "--workload", "train"], "--count must be"),
    ],
)
def test_numeric_options_are_bounded(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert message in err
    assert "Traceback" not in err


def test_huge_deadline_fleet_warns(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "train", "--params", "70e9", "--tokens", "15e12", "-a", "h100", "--days", "0.05")
    assert data["devices"] > 200_000 and "not a realistic plan" in data["warnings"][0]
    ok = run_json(capsys, "train", "--params", "82e9", "--tokens", "150e9", "-a", "a100", "--days", "30")
    assert ok["warnings"] == []


def test_issue_budget_example_uses_a_labelled_derived_price(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 6's own example: RNGD has no published KRW price, so the budget uses a labelled assumption."""
    code, out, err = run(capsys, "budget", "--krw", "11e9", "--months", "12", "--mix", "h100=0.7,rngd=0.3")
    assert code == 0, err
    assert "DERIVED ASSUMPTION" in out and "--price rngd=KRW" in out
    data = run_json(capsys, "budget", "--krw", "11e9", "--months", "12", "--mix", "h100=0.7,rngd=0.3")
    lines = {x["accelerator"]: x for x in data["lines"]}
    assert lines["rngd"]["price_kind"] == "assumed" and lines["h100"]["price_kind"] == "derived"
    # parity per dense BF16 TFLOPS with H100 (256 vs 989.4 TFLOPS)
    assert lines["rngd"]["krw_per_device_hour"] == round(lines["h100"]["krw_per_device_hour"] * 256 / 989.4)
    assert sum(x["krw"] for x in data["lines"]) == 11_000_000_000
    # an operator price wins over the assumption
    priced = run_json(capsys, "budget", "--krw", "11e9", "--mix", "h100=0.7,rngd=0.3", "--price", "rngd=2500")
    rngd = next(x for x in priced["lines"] if x["accelerator"] == "rngd")
    assert rngd["krw_per_device_hour"] == 2500 and rngd["price_kind"] == "operator"


def test_compare_sites_of_a_pool_by_their_prices(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(
        "prices: {h100: 4000}\n"
        "sites:\n"
        "  - {id: cloud-a, region: seoul, data_classes: [public], prices: {h100: 3500}, devices: {h100: 64}}\n"
        "  - {id: bank, region: busan, data_classes: [public, financial], prices: {h100: 5000}, devices: {h100: 32}}\n"
    )
    d = run_json(capsys, "compare", "--params", "7e9", "--pool", str(pool))
    rows = [(r["site"], r["accelerator"], r["cost_krw"]) for r in d["rows"]]
    assert [s for s, _, _ in rows] == ["cloud-a", "bank"]  # cheapest first
    assert rows[0][2] * 5000 == pytest.approx(rows[1][2] * 3500, rel=0.01)  # same work, each site's price
    d = run_json(capsys, "compare", "--params", "7e9", "--pool", str(pool), "--data-class", "financial")
    assert [r["site"] for r in d["rows"]] == ["bank"]
    code, _, err = run(capsys, "compare", "--params", "7e9", "--data-class", "financial")
    assert code == 2 and "only with --pool" in err

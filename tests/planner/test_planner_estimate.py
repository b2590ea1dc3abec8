"""Estimator behaviour: bounds, memory, missing figures, measured overrides, the core hook, prices, budgets."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from accelpool.catalog import load_catalog
from accelpool.core.errors import InputError
from accelpool.core.throughput import ThroughputMatrix
from accelpool.planner import (
    CannotEstimate,
    CnnWorkload,
    InferenceWorkload,
    ServeSpec,
    TrainingSpec,
    TrainingWorkload,
    compare_serving,
    compare_training,
    devices_for_days,
    estimate_cnn,
    estimate_inference,
    estimate_training,
    load_prices,
    make_estimator,
    parse_mix,
    parse_price_overrides,
    plan_budget,
    plan_serving,
    to_krw,
)
from accelpool.planner.prices import parse_prices_text

CAT = load_catalog()


# --- missing figures and capabilities ---------------------------------------------------------------------


def test_missing_bandwidth_cannot_estimate_never_guesses() -> None:
    with pytest.raises(CannotEstimate) as info:
        estimate_inference(CAT["atom"], ServeSpec(1e9))
    assert info.value.missing == "memory_bw_gbps"
    assert "cannot estimate" in str(info.value) and "missing memory_bw_gbps" in str(info.value)


def test_missing_peak_cannot_estimate() -> None:
    with pytest.raises(CannotEstimate, match="missing bf16_tflops_dense"):
        estimate_cnn(CAT["k80"], 4e9, training=False)


def test_inference_only_chip_cannot_train() -> None:
    with pytest.raises(CannotEstimate, match="not training-capable"):
        estimate_training(CAT["rngd"], TrainingSpec(1e9, 1e10), 8)


# --- training ---------------------------------------------------------------------------------------------


def test_training_time_scales_inversely_with_devices_in_one_tier() -> None:
    spec = TrainingSpec(7e9, 1e11)
    a = estimate_training(CAT["h100"], spec, 16)
    b = estimate_training(CAT["h100"], spec, 32)
    assert a.seconds.typical == pytest.approx(2 * b.seconds.typical)
    assert a.device_hours.typical == pytest.approx(b.device_hours.typical)
    assert a.bound == "compute" and a.assumptions


def test_memory_minimum_is_enforced() -> None:
    spec = TrainingSpec(70e9, 1e11)
    need = estimate_training(CAT["h100"], spec, 64).memory.min_devices
    assert need == pytest.approx(70e9 * 16 / (80e9 * 0.9), rel=0.2)
    with pytest.raises(InputError, match="need at least"):
        estimate_training(CAT["h100"], spec, need - 1)


def test_devices_for_days_meets_the_deadline() -> None:
    spec = TrainingSpec(82e9, 150e9)
    est = devices_for_days(CAT["a100"], spec, 30)
    assert est.days.typical <= 30
    smaller = estimate_training(CAT["a100"], spec, est.devices - 1)
    assert smaller.days.typical > 30


def test_measured_training_rate_overrides() -> None:
    est = estimate_training(
        CAT["a100"], TrainingSpec(1e9, 1e10), 8, measured_tokens_per_second_per_device=1000
    )
    assert est.measured and est.seconds.typical == pytest.approx(1e10 / 8000)
    assert est.bound == "measured"


def test_bad_sizes_are_input_errors() -> None:
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(InputError):
            TrainingSpec(bad, 1e9)
        with pytest.raises(InputError):
            ServeSpec(bad)


# --- inference --------------------------------------------------------------------------------------------


def test_decode_memory_bound_at_small_batch_compute_bound_at_large() -> None:
    small = estimate_inference(CAT["h100"], ServeSpec(8e9, 64, 64, max_batch=1), tp=1)
    assert small.bound.startswith("memory-bandwidth")
    # short sequences, huge batch: arithmetic intensity above the ridge point
    big = estimate_inference(CAT["h100"], ServeSpec(8e9, 16, 16, max_batch=4096), tp=1)
    assert big.bound.startswith("compute")
    assert big.tokens_per_second.typical > small.tokens_per_second.typical


def test_model_too_big_for_any_tensor_parallel_size() -> None:
    with pytest.raises(InputError, match="does not fit"):
        estimate_inference(CAT["l40s"], ServeSpec(405e9, precision="bf16"))


def test_tensor_parallel_rule_uses_more_devices_for_bigger_models() -> None:
    assert estimate_inference(CAT["h100"], ServeSpec(8e9)).tp == 1
    assert estimate_inference(CAT["h100"], ServeSpec(70e9)).tp == 4


def test_serving_plan_and_measured_override() -> None:
    plan = plan_serving(CAT["rngd"], ServeSpec(8e9, 2048, 2048), 50000)
    assert plan.devices.optimistic <= plan.devices.typical <= plan.devices.pessimistic
    measured = plan_serving(
        CAT["rngd"], ServeSpec(8e9, 2048, 2048), 50000, measured_tokens_per_second_per_device=1000
    )
    assert measured.devices.typical == 50 and measured.estimate.measured


def test_cnn_training_costs_three_forward_passes() -> None:
    inf = estimate_cnn(CAT["a100"], 8.2e9, training=False)
    train = estimate_cnn(CAT["a100"], 8.2e9, training=True)
    assert inf.samples_per_second.typical == pytest.approx(3 * train.samples_per_second.typical)
    assert inf.bound == "compute"


# --- the core's Estimator hook ----------------------------------------------------------------------------


def test_make_estimator_fills_gaps_in_the_throughput_matrix() -> None:
    workloads = {
        "pretrain": TrainingWorkload(7e9, tokens_per_step=4e6, devices=16),
        "chat": InferenceWorkload(8e9, devices=2),
        "resnet": CnnWorkload(8.2e9, samples_per_step=256, devices=1),
    }
    est = make_estimator(CAT, workloads, measured={("resnet", "a100"): 3.0})
    rows = {"pretrain": {"h100": 0.5}, "chat": {}, "resnet": {}}
    matrix = ThroughputMatrix.from_rows(rows, ["h100", "a100", "rngd", "atom"], est)
    assert matrix.row("pretrain")["h100"] == 0.5  # measured, not replaced
    assert "rngd" not in matrix.row("pretrain")  # inference-only chip -> None -> 0
    assert matrix.row("chat")["rngd"] > 0 and "atom" not in matrix.row("chat")  # atom: missing bandwidth
    assert matrix.row("resnet")["a100"] == 3.0  # measured override wins
    assert est("unknown-job", "h100") is None and est("pretrain", "no-such-type") is None


def test_estimator_matches_training_estimate() -> None:
    est = make_estimator(CAT, {"j": TrainingWorkload(7e9, tokens_per_step=1e6, devices=16)})
    direct = estimate_training(CAT["h100"], TrainingSpec(7e9, 1e6), 16)
    assert est("j", "h100") == pytest.approx(1.0 / direct.seconds.typical)


# --- prices, budget, compare ------------------------------------------------------------------------------


def test_default_prices_are_integer_krw_with_labelled_derivation() -> None:
    prices = load_prices()
    h100 = prices.entry("h100")
    assert isinstance(h100.krw_per_device_hour, int) and h100.kind == "derived"
    assert h100.krw_per_device_hour == to_krw(Decimal("4.92") * prices.exchange_rate_krw_per_usd)
    assert "derived" in h100.basis
    assert prices.price("rngd") is None and prices.price("l40s") is None
    with pytest.raises(InputError, match="--price rngd="):
        prices.require("rngd")


def test_exchange_rate_and_overrides() -> None:
    prices = load_prices().with_exchange_rate(Decimal(1000))
    assert prices.price("h100") == 4920
    over = prices.with_overrides(parse_price_overrides(["rngd=2_500,h100=9000"], CAT.resolve))
    assert over.price("rngd") == 2500 and over.price("h100") == 9000
    with pytest.raises(InputError):
        parse_price_overrides(["h100"], CAT.resolve)
    with pytest.raises(InputError, match="did you mean"):
        parse_price_overrides(["h10O=5"], CAT.resolve)


def test_price_file_parser_rejects_bad_shapes() -> None:
    with pytest.raises(InputError):
        parse_prices_text("prices: 3\n")


def test_budget_splits_exactly_and_rejects_tiny_budgets() -> None:
    prices = load_prices().with_overrides({"rngd": 2500})
    plan = plan_budget(CAT, prices, 11_000_000_001, 12, parse_mix("h100=0.7,rngd=0.3", CAT.resolve))
    assert sum(line.krw for line in plan.lines) == 11_000_000_001
    h100 = next(line for line in plan.lines if line.accelerator == "h100")
    assert h100.device_hours == pytest.approx(0.7 * 11e9 / prices.require("h100"), rel=1e-6)
    rngd_fit = next(f for f in plan.fits if f.accelerator == "rngd")
    assert rngd_fit.train_tokens is None and rngd_fit.serve_tokens_per_second
    with pytest.raises(InputError, match="budget too small"):
        plan_budget(CAT, prices, 1000, 1, {"h100": Decimal(1)})
    with pytest.raises(InputError, match="add up to 1"):
        parse_mix("h100=0.7,rngd=0.7")


def test_compare_marks_domestic_and_reasons() -> None:
    prices = load_prices()
    rows = {r.accelerator: r for r in compare_serving(CAT, prices, ServeSpec(8e9))}
    assert rows["rngd"].domestic and not rows["h100"].domestic
    assert rows["atom"].reason == "missing memory_bw_gbps"
    assert rows["h100"].cost_krw is not None and rows["rngd"].cost_krw is None
    train = {r.accelerator: r for r in compare_training(CAT, prices, TrainingSpec(8e9, 1.6e11), 64)}
    assert train["rngd"].reason and train["h100"].seconds is not None
    assert isinstance(train["h100"].cost_krw, int)


def test_operator_catalogue_override_changes_estimates() -> None:
    faster = replace(CAT["atom"], memory_bw_gbps=256.0)
    est = estimate_inference(faster, ServeSpec(1e9, 512, 512))
    assert est.tokens_per_second.typical > 0


def test_to_krw_never_raises_decimal_errors() -> None:
    assert to_krw(1e30) == 10**30
    assert to_krw(Decimal("1e300")) == 10**300
    for bad in (float("inf"), float("nan"), Decimal("Infinity")):
        with pytest.raises(InputError, match="out of range"):
            to_krw(bad)


def test_mix_refuses_a_type_named_twice() -> None:
    with pytest.raises(InputError, match="twice"):
        parse_mix("h100=0.5,h100=0.5", CAT.resolve)


def test_parity_default_is_labelled_and_only_for_missing_prices() -> None:
    prices = load_prices()
    filled = prices.with_parity_defaults(CAT, ["rngd", "warboy", "h100"])
    rngd = filled.entry("rngd")
    assert rngd.kind == "assumed" and "DERIVED ASSUMPTION" in rngd.basis
    ref = prices.require("h100")
    assert rngd.krw_per_device_hour == to_krw(
        Decimal(ref)
        * Decimal(str(CAT["rngd"].bf16_tflops_dense))
        / Decimal(str(CAT["h100"].bf16_tflops_dense))
    )
    assert filled.price("warboy") is None  # no dense BF16 figure: stays unpriced
    assert filled.entry("h100") == prices.entry("h100")
    assert filled.price("l40s") is None  # not asked for
    # an operator's h100 price carries into the parity figure
    op = prices.with_overrides({"h100": 10_000}).with_parity_defaults(CAT, ["rngd"])
    assert op.price("rngd") == to_krw(
        Decimal(10_000)
        * Decimal(str(CAT["rngd"].bf16_tflops_dense))
        / Decimal(str(CAT["h100"].bf16_tflops_dense))
    )
    with pytest.raises(InputError, match="derived_default"):
        parse_prices_text(
            "exchange_rate_krw_per_usd: {value: 1}\nelectricity_krw_per_kwh: {value: 1}\nprices: {}\n"
            "derived_default: 3\n"
        )

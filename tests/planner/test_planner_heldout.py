"""The estimator against published records that set no constant in planner/mfu.py (held out).

mfu.py's ranges come from the llm-foundry tables (<= 64 devices), HyperCLOVA, Megatron selective recompute
and Llama 3 405B (>= 1,024 devices); test_planner_records.py checks those same records, which shows
consistency only. None of the records below was used to choose a range (see docs/planner.md).

Records
-------
- TinyLlama 1.1B: 3T tokens on 16 A100-40G in about 90 days, 24k tokens/s per GPU (56% MFU by its
  authors' count). Zhang et al. 2024, arXiv:2401.02385; github.com/jzhang38/TinyLlama README.
- LLaMA 65B (65.2B parameters): about 380 tokens/s per GPU on 2,048 A100-80GB, 1.4T tokens in about
  21 days. Touvron et al. 2023, arXiv:2302.13971, section 2.4.
- LLaMA 13B: 1T tokens, 135,168 A100-80GB GPU-hours. Same paper, Table 15. (The device count per model is
  not given; 2,048, the paper's cluster, is assumed. GPU-hours barely depend on it at this scale.)
- Llama 2 70B: 2T tokens, 1,720,320 A100-80GB GPU-hours. Touvron et al. 2023, arXiv:2307.09288, Table 2.
  (Device count assumed 2,048 as above.)
- OPT-175B: 992 A100-80GB at up to 147 TFLOP/s per GPU, i.e. MFU 147/312 = 0.47. Zhang et al. 2022,
  arXiv:2205.01068.

Not covered: no NPU training record with the figures this needs (devices, tokens, time) was found; the
NPU ranges stay an assumption (mfu.NPU_FACTOR).
"""

from __future__ import annotations

import pytest

from accelpool.catalog import load_catalog
from accelpool.planner.mfu import training_mfu
from accelpool.planner.train import TrainingSpec, estimate_training

A100 = load_catalog()["a100"]


@pytest.mark.parametrize(
    ("params", "tokens", "devices", "days"),
    [(1.1e9, 3e12, 16, 90.0), (65.2e9, 1.4e12, 2048, 21.0)],
    ids=["tinyllama-1.1b", "llama-65b"],
)
def test_published_duration_inside_the_estimated_range(params, tokens, devices, days):
    est = estimate_training(A100, TrainingSpec(params, tokens), devices)
    assert est.days.contains(days), (est.days, days)


@pytest.mark.parametrize(
    ("params", "tokens", "gpu_hours"),
    [(13e9, 1e12, 135_168.0), (70e9, 2e12, 1_720_320.0)],
    ids=["llama-13b", "llama2-70b"],
)
def test_published_gpu_hours_inside_the_estimated_range(params, tokens, gpu_hours):
    est = estimate_training(A100, TrainingSpec(params, tokens), 2048)
    assert est.device_hours.contains(gpu_hours), (est.device_hours, gpu_hours)


def test_opt_175b_utilization_inside_the_range_at_its_scale():
    rng = training_mfu(A100, 992)
    assert rng.pessimistic <= 147 / 312 <= rng.optimistic


def test_range_has_no_step_in_the_device_count():
    spec = TrainingSpec(13e9, 1e12)
    days = [estimate_training(A100, spec, n).days for n in range(60, 1100)]
    for before, after in zip(days, days[1:], strict=False):
        for scenario in ("optimistic", "typical", "pessimistic"):
            # one more device never makes a run slower, and never more than 1/60 faster
            assert after.at(scenario) <= before.at(scenario) * (1 + 1e-12)
            assert after.at(scenario) >= before.at(scenario) * (1 - 1 / 60)

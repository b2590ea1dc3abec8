"""Capacity and budget planning on top of the throughput model (pure math; prices are package data).

Public entry points:

- :func:`make_estimator` - the core's ``Estimator`` hook ((job id, type) -> steps/s or None);
- :func:`estimate_training`, :func:`devices_for_days`, :func:`estimate_inference`, :func:`plan_serving`,
  :func:`estimate_cnn` - estimates with ranges, bound and assumptions;
- :func:`plan_budget`, :func:`compare_training`, :func:`compare_serving`;
- :func:`load_prices` - default KRW prices, exchange rate and electricity price with sources.
"""

from accelpool.planner.budget import BudgetPlan, parse_mix, plan_budget
from accelpool.planner.compare import CompareRow, compare_serving, compare_training
from accelpool.planner.estimate import CannotEstimate, Range, TransformerShape, estimate_cnn
from accelpool.planner.hook import (
    CnnWorkload,
    InferenceWorkload,
    TrainingWorkload,
    WorkloadSpec,
    estimate_steps_per_second,
    make_estimator,
)
from accelpool.planner.mfu import UtilizationRange
from accelpool.planner.prices import PriceList, load_prices, parse_price_overrides, to_krw
from accelpool.planner.serve import InferenceEstimate, ServePlan, ServeSpec, estimate_inference, plan_serving
from accelpool.planner.train import TrainingEstimate, TrainingSpec, devices_for_days, estimate_training

__all__ = [
    "BudgetPlan",
    "CannotEstimate",
    "CnnWorkload",
    "CompareRow",
    "InferenceEstimate",
    "InferenceWorkload",
    "PriceList",
    "Range",
    "ServePlan",
    "ServeSpec",
    "TrainingEstimate",
    "TrainingSpec",
    "TrainingWorkload",
    "TransformerShape",
    "UtilizationRange",
    "WorkloadSpec",
    "compare_serving",
    "compare_training",
    "devices_for_days",
    "estimate_cnn",
    "estimate_inference",
    "estimate_steps_per_second",
    "estimate_training",
    "load_prices",
    "make_estimator",
    "parse_mix",
    "parse_price_overrides",
    "plan_budget",
    "plan_serving",
    "to_krw",
]

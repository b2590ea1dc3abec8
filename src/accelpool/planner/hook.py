"""The planner's estimator as the scheduler core's ``Estimator``: (job id, accelerator type) -> steps/s.

The core (``accelpool.core.throughput.ThroughputMatrix.from_rows``) calls the estimator only for entries
nobody measured, and marks what it returns as estimated; measurements replace them later. What a "step"
is depends on the workload:

- :class:`TrainingWorkload`: one optimizer step of ``tokens_per_step`` tokens (global batch);
- :class:`InferenceWorkload`: one output token across all replicas of the job;
- :class:`CnnWorkload`: one step of ``samples_per_step`` samples.

``devices`` is the job's scale (its gang size). The estimate returns ``None`` whenever the catalogue
lacks a figure, the type cannot run the workload (not training-capable, model does not fit) or the type
is unknown: the core then treats the entry as "cannot run / unknown", never as a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from accelpool.core.errors import InputError
from accelpool.core.throughput import Estimator
from accelpool.core.types import AcceleratorType
from accelpool.planner.estimate import TransformerShape, estimate_cnn
from accelpool.planner.serve import MAX_TENSOR_PARALLEL, TP_CHOICES, ServeSpec, estimate_inference
from accelpool.planner.train import TrainingSpec, estimate_training


@dataclass(frozen=True)
class TrainingWorkload:
    params: float
    tokens_per_step: float
    devices: int = 1
    seq_len: int = 2048
    precision: str = "bf16"
    shape: TransformerShape | None = None


@dataclass(frozen=True)
class InferenceWorkload:
    params: float
    prompt_tokens: int = 2048
    output_tokens: int = 2048
    devices: int = 1
    precision: str = "bf16"
    shape: TransformerShape | None = None


@dataclass(frozen=True)
class CnnWorkload:
    flops_per_sample: float
    samples_per_step: float = 1.0
    devices: int = 1
    training: bool = True
    precision: str = "bf16"


WorkloadSpec = TrainingWorkload | InferenceWorkload | CnnWorkload


def estimate_steps_per_second(acc: AcceleratorType, work: WorkloadSpec, scenario: str = "typical") -> float:
    """Steps/s of ``work`` on ``work.devices`` of ``acc``. Raises InputError / CannotEstimate when it cannot."""
    if isinstance(work, TrainingWorkload):
        spec = TrainingSpec(
            work.params,
            work.tokens_per_step,
            seq_len=work.seq_len,
            precision=work.precision,
            shape=work.shape,
        )
        est = estimate_training(acc, spec, work.devices)
        return 1.0 / est.seconds.at(scenario)
    if isinstance(work, InferenceWorkload):
        sspec = ServeSpec(
            work.params, work.prompt_tokens, work.output_tokens, work.precision, shape=work.shape
        )
        sizes = [t for t in TP_CHOICES if t <= min(work.devices, MAX_TENSOR_PARALLEL)]
        best = 0.0
        for tp in sizes:
            try:
                inf = estimate_inference(acc, sspec, tp=tp)
            except InputError:
                continue  # does not fit at this size (or a figure is missing): try the next
            best = max(best, (work.devices // tp) * inf.tokens_per_second.at(scenario))
        return best
    cnn = estimate_cnn(
        acc, work.flops_per_sample, training=work.training, devices=work.devices, precision=work.precision
    )
    return cnn.samples_per_second.at(scenario) / work.samples_per_step


def make_estimator(
    catalog: Mapping[str, AcceleratorType],
    workloads: Mapping[str, WorkloadSpec],
    measured: Mapping[tuple[str, str], float] | None = None,
    scenario: str = "typical",
) -> Estimator:
    """An ``Estimator`` for the core: measured figures first, then the model, else ``None``.

    ``measured`` maps (job id, type) to measured steps/s; it wins over any estimate.
    """
    known = dict(measured or {})

    def estimator(job: str, accelerator: str) -> float | None:
        if (job, accelerator) in known:
            return known[(job, accelerator)]
        work = workloads.get(job)
        if work is None or accelerator not in catalog:
            return None
        try:
            value = estimate_steps_per_second(catalog[accelerator], work, scenario)
        except (InputError, ValueError, ZeroDivisionError):
            return None
        return value if value > 0 else None

    return estimator

"""LLM inference: tokens/s of one replica, and how many devices a target rate needs.

Model (roofline, per replica of ``tp`` tensor-parallel devices, batch ``B`` sequences in flight):

- prefill of one prompt of ``p`` tokens is compute-bound: 2*N*p + 2*L*h*p^2 FLOPs at the matmul
  efficiency of :mod:`accelpool.planner.mfu`;
- one decode step reads all weights once and every sequence's KV cache (mean context c), and computes
  B * (2*N + 4*L*h*c) FLOPs; its time is the larger of bytes / (bandwidth * MBU) and
  FLOPs / (peak * efficiency). Small batches are bound by memory bandwidth, large ones by compute;
- a sequence of ``o`` output tokens is one prefill plus ``o`` decode steps shared with the batch, so
  tokens/s = B*o / (o * t_step + B * t_prefill) (continuous batching);
- weights and the KV cache of every sequence at full context (p + o) must fit in usable memory; B is the
  largest batch that fits, capped at ``max_batch`` (vLLM's default max_num_seqs is 256).

Tensor parallelism is limited to ``MAX_TENSOR_PARALLEL`` devices (one 8-device node) and chosen by a
deployment rule of thumb (:func:`_tp_order`); its communication is not modelled (assumed overlapped), which
flatters chips without a fast device-to-device link.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from accelpool.core.errors import InputError
from accelpool.core.types import AcceleratorType
from accelpool.planner.estimate import (
    PRECISION_BYTES,
    CannotEstimate,
    Range,
    TransformerShape,
    bandwidth,
    check_precision,
    memory_bytes,
    peak_flops,
    positive,
)
from accelpool.planner.mfu import decode_bandwidth_efficiency, inference_compute_efficiency

MAX_TENSOR_PARALLEL = 8
TP_CHOICES = (1, 2, 4, 8)
DEFAULT_MAX_BATCH = 256
"""vLLM engine argument ``max_num_seqs`` default (https://docs.vllm.ai, engine arguments)."""


@dataclass(frozen=True)
class ServeSpec:
    """An LLM service: ``params`` parameters, requests of ``prompt_tokens`` in and ``output_tokens`` out."""

    params: float
    prompt_tokens: int = 2048
    output_tokens: int = 2048
    precision: str = "bf16"
    max_batch: int = DEFAULT_MAX_BATCH
    shape: TransformerShape | None = None

    def __post_init__(self) -> None:
        positive("params", self.params)
        positive("output_tokens", self.output_tokens)
        if self.prompt_tokens < 0:
            raise InputError("must be >= 0", field="prompt_tokens", value=self.prompt_tokens)
        positive("max_batch", self.max_batch)
        check_precision(self.precision)

    @property
    def context(self) -> int:
        return self.prompt_tokens + self.output_tokens

    @property
    def mean_decode_context(self) -> float:
        return self.prompt_tokens + self.output_tokens / 2.0

    def model_shape(self) -> TransformerShape:
        return self.shape or TransformerShape.from_params(self.params)


@dataclass(frozen=True)
class InferenceEstimate:
    """Output tokens/s of one replica of ``tp`` devices of ``accelerator`` serving ``spec``."""

    accelerator: str
    spec: ServeSpec
    tp: int
    batch: int
    tokens_per_second: Range
    bound: str
    tdp_w: float | None
    measured: bool = False
    assumptions: tuple[str, ...] = field(default_factory=tuple)
    sources: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tokens_per_second_per_device(self) -> Range:
        return self.tokens_per_second.map(lambda t: t / self.tp)

    @property
    def tokens_per_joule(self) -> Range | None:
        if self.tdp_w is None:
            return None
        return self.tokens_per_second_per_device.map(lambda t: t / self.tdp_w)  # type: ignore[operator]


def max_batch(acc: AcceleratorType, spec: ServeSpec, tp: int) -> int:
    """Largest batch whose KV cache at full context fits next to the weights on ``tp`` devices (may be 0)."""
    nbytes = PRECISION_BYTES[spec.precision]
    free = tp * memory_bytes(acc) - spec.params * nbytes
    per_seq = spec.context * spec.model_shape().kv_bytes_per_token(nbytes)
    if free < per_seq:
        return 0
    return min(spec.max_batch, int(free // per_seq))


def _replica(acc: AcceleratorType, spec: ServeSpec, tp: int, batch: int) -> tuple[Range, str]:
    shape, nbytes = spec.model_shape(), PRECISION_BYTES[spec.precision]
    peak, bw = peak_flops(acc, spec.precision) * tp, bandwidth(acc) * tp
    mbu, eff = decode_bandwidth_efficiency(acc), inference_compute_efficiency(acc)
    c, p, o = spec.mean_decode_context, spec.prompt_tokens, spec.output_tokens
    step_bytes = spec.params * nbytes + batch * c * shape.kv_bytes_per_token(nbytes)
    step_flops = batch * (2.0 * spec.params + 4.0 * shape.layers * shape.hidden * c)
    prefill_flops = 2.0 * spec.params * p + 2.0 * shape.layers * shape.hidden * p * p

    def rate(s: str) -> float:
        t_step = max(step_bytes / (bw * mbu.scenario(s)), step_flops / (peak * eff.scenario(s)))
        t_prefill = prefill_flops / (peak * eff.scenario(s))
        return batch * o / (o * t_step + batch * t_prefill)

    mem_bound = step_bytes / (bw * mbu.typical) >= step_flops / (peak * eff.typical)
    return Range.of(rate), "memory-bandwidth (decode)" if mem_bound else "compute (decode)"


def estimate_inference(
    acc: AcceleratorType,
    spec: ServeSpec,
    *,
    tp: int | None = None,
    measured_tokens_per_second_per_device: float | None = None,
) -> InferenceEstimate:
    """Tokens/s of one replica; ``tp`` fixed, or chosen by :func:`_tp_order`.

    Raises InputError when the model cannot fit on ``MAX_TENSOR_PARALLEL`` devices, CannotEstimate when
    the catalogue lacks a figure.
    """
    choices = (tp,) if tp is not None else TP_CHOICES
    if tp is not None and not 1 <= tp <= MAX_TENSOR_PARALLEL:
        raise InputError(f"tensor parallel size must be 1..{MAX_TENSOR_PARALLEL}", field="tp", value=tp)
    bandwidth(acc), peak_flops(acc, spec.precision), memory_bytes(acc)  # fail early on missing figures
    best: InferenceEstimate | None = None
    for size in _tp_order(acc, spec, choices):
        batch = max_batch(acc, spec, size)
        rate, bound = _replica(acc, spec, size, batch)
        best = _make(acc, spec, size, batch, rate, bound)
        break
    if best is None:
        need = spec.params * PRECISION_BYTES[spec.precision] / 1e9
        top = max(choices)
        raise InputError(
            f"model does not fit: {spec.params:.3g} parameters at {spec.precision} need {need:.0f} GB of "
            f"weights plus KV cache for one {spec.context}-token sequence; {top} x {acc.id} give "
            f"{top * memory_bytes(acc) / 1e9:.0f} GB usable (tensor parallel limit {top})",
            field="params",
            value=spec.params,
        )
    if measured_tokens_per_second_per_device is not None:
        m = positive("measured", measured_tokens_per_second_per_device) * best.tp
        return InferenceEstimate(
            acc.id,
            spec,
            best.tp,
            best.batch,
            Range(m, m, m),
            "measured",
            acc.tdp_w,
            True,
            ("measured tokens/s per device overrides the estimate",),
        )
    return best


def _tp_order(acc: AcceleratorType, spec: ServeSpec, choices: tuple[int, ...]) -> list[int]:
    """Tensor-parallel sizes to use, best first: the smallest size whose memory left after the weights is at
    least the weights' size (rule of thumb: half the memory for KV cache, e.g. 8B bf16 on one H100, 70B
    bf16 on 4 H100), else the smallest that fits one sequence at all. Empty when nothing fits."""
    fits = [t for t in choices if max_batch(acc, spec, t) >= 1]
    weights = spec.params * PRECISION_BYTES[spec.precision]
    roomy = [t for t in fits if t * memory_bytes(acc) - weights >= weights]
    return roomy[:1] or fits[:1]


def _make(
    acc: AcceleratorType, spec: ServeSpec, tp: int, batch: int, rate: Range, bound: str
) -> InferenceEstimate:
    mbu, eff = decode_bandwidth_efficiency(acc), inference_compute_efficiency(acc)
    assumptions = (
        f"{spec.precision} weights and KV cache; shape {spec.model_shape().describe()}",
        f"requests of {spec.prompt_tokens} prompt + {spec.output_tokens} output tokens; batch {batch} "
        f"(memory limit or cap {spec.max_batch}); tensor parallel {tp}, communication not modelled",
        mbu.basis,
        eff.basis,
        "usable memory 90% of device memory",
    )
    return InferenceEstimate(
        acc.id, spec, tp, batch, rate, bound, acc.tdp_w, False, assumptions, mbu.sources + eff.sources
    )


@dataclass(frozen=True)
class ServePlan:
    """Devices that sustain ``target_tokens_per_second``, per scenario."""

    estimate: InferenceEstimate
    target_tokens_per_second: float
    replicas: Range
    devices: Range

    @property
    def power_kw(self) -> Range | None:
        if self.estimate.tdp_w is None:
            return None
        return self.devices.map(lambda d: d * self.estimate.tdp_w / 1000.0)  # type: ignore[operator]


def plan_serving(
    acc: AcceleratorType,
    spec: ServeSpec,
    target_tokens_per_second: float,
    *,
    measured_tokens_per_second_per_device: float | None = None,
) -> ServePlan:
    positive("tokens_per_second", target_tokens_per_second)
    if acc.memory_gb is None:
        raise CannotEstimate(acc.id, "missing memory_gb", missing="memory_gb")
    est = estimate_inference(
        acc, spec, measured_tokens_per_second_per_device=measured_tokens_per_second_per_device
    )
    replicas = est.tokens_per_second.map(lambda r: float(math.ceil(target_tokens_per_second / r)))
    return ServePlan(est, target_tokens_per_second, replicas, replicas.map(lambda n: n * est.tp))

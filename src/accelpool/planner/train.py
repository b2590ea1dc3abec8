"""Transformer training: how long on how many devices, and how many devices the memory needs.

Compute: C = 6 * N * D FLOPs (Kaplan et al. 2020, arXiv:2001.08361). Time = C / (devices * peak * MFU),
with MFU from :mod:`accelpool.planner.mfu` as a pessimistic / typical / optimistic range.

Memory: mixed-precision Adam keeps 16 bytes per parameter (bf16 weights 2 + bf16 gradients 2 + fp32
master weights 4 + Adam moments 4 + 4; Rajbhandari et al. 2019, ZeRO, arXiv:1910.02054), sharded over all
devices (ZeRO-3 / FSDP). Activations with full recomputation keep each layer's input (2 * s * b * h bytes
per layer) plus one layer's working set during recomputation, s * b * h * (34 + 5 * a * s / h) bytes
(Korthikanti et al. 2022, arXiv:2205.05198), a = h / 128 heads. Activations are not sharded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from accelpool.core.errors import InputError
from accelpool.core.types import AcceleratorType
from accelpool.planner.estimate import (
    CannotEstimate,
    Range,
    TransformerShape,
    memory_bytes,
    peak_flops,
    positive,
)
from accelpool.planner.mfu import SCENARIOS, UtilizationRange, training_mfu

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class TrainingSpec:
    """A transformer pre-training (or fine-tuning) run: ``params`` parameters over ``tokens`` tokens."""

    params: float
    tokens: float
    seq_len: int = 2048
    micro_batch: int = 1
    bytes_per_param: float = 16.0
    precision: str = "bf16"
    shape: TransformerShape | None = None

    def __post_init__(self) -> None:
        positive("params", self.params)
        positive("tokens", self.tokens)
        positive("seq_len", self.seq_len)
        positive("micro_batch", self.micro_batch)
        positive("bytes_per_param", self.bytes_per_param)

    @property
    def flops(self) -> float:
        return 6.0 * self.params * self.tokens

    def model_shape(self) -> TransformerShape:
        return self.shape or TransformerShape.from_params(self.params)


@dataclass(frozen=True)
class TrainingMemory:
    state_bytes: float
    activation_bytes_per_device: float
    usable_bytes_per_device: float
    min_devices: int


@dataclass(frozen=True)
class TrainingEstimate:
    """A run of ``spec`` on ``devices`` of ``accelerator``; time and its consequences per scenario."""

    accelerator: str
    spec: TrainingSpec
    devices: int
    mfu: UtilizationRange
    seconds: Range
    memory: TrainingMemory
    tdp_w: float | None
    bound: str = "compute"
    measured: bool = False
    assumptions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def days(self) -> Range:
        return self.seconds.map(lambda s: s / SECONDS_PER_DAY)

    @property
    def device_hours(self) -> Range:
        return self.seconds.map(lambda s: s * self.devices / 3600.0)

    @property
    def energy_mwh(self) -> Range | None:
        """Device energy at TDP (an upper bound on chip power; cooling and hosts not included)."""
        if self.tdp_w is None:
            return None
        return self.device_hours.map(lambda h: h * self.tdp_w / 1e6)  # type: ignore[operator]

    @property
    def tokens_per_second_per_device(self) -> Range:
        return self.seconds.map(lambda s: self.spec.tokens / s / self.devices)


def training_memory(acc: AcceleratorType, spec: TrainingSpec) -> TrainingMemory:
    """Bytes of state and activations, and the fewest devices that hold them."""
    shape = spec.model_shape()
    s, b, h, layers = spec.seq_len, spec.micro_batch, shape.hidden, shape.layers
    heads = max(1, h / 128.0)
    layer_inputs = 2.0 * s * b * h * layers
    working_layer = s * b * h * (34.0 + 5.0 * heads * s / h)
    activations = layer_inputs + working_layer
    usable = memory_bytes(acc)
    state = spec.params * spec.bytes_per_param
    room = usable - activations
    if room <= 0:
        raise InputError(
            f"cannot train on '{acc.id}': activations of one micro-batch ({activations / 1e9:.1f} GB at "
            f"sequence {s}) exceed usable memory ({usable / 1e9:.1f} GB) on any number of devices",
            field="seq_len",
            value=s,
        )
    return TrainingMemory(state, activations, usable, max(1, math.ceil(state / room)))


def _check_trainable(acc: AcceleratorType) -> None:
    if not acc.training_capable:
        raise CannotEstimate(acc.id, "not training-capable (vendor positions it for inference)")


def _assumptions(acc: AcceleratorType, spec: TrainingSpec, mfu: UtilizationRange) -> tuple[str, ...]:
    return (
        "compute = 6 x params x tokens (Kaplan et al. 2020)",
        f"{acc.id} peak {spec.precision} dense {peak_flops(acc, spec.precision) / 1e12:g} TFLOPS per device",
        mfu.basis,
        f"memory: {spec.bytes_per_param:g} bytes/param (mixed-precision Adam, ZeRO-3 sharded) + activations "
        f"with full recomputation, micro-batch {spec.micro_batch}, sequence {spec.seq_len}; "
        f"shape {spec.model_shape().describe()}",
        "energy at TDP per device; hosts, network and cooling (PUE) not included",
    )


def estimate_training(
    acc: AcceleratorType,
    spec: TrainingSpec,
    devices: int,
    *,
    mfu: UtilizationRange | None = None,
    measured_tokens_per_second_per_device: float | None = None,
    allow_below_memory_minimum: bool = False,
) -> TrainingEstimate:
    """Duration of ``spec`` on ``devices`` of ``acc``.

    ``mfu`` overrides the default range (e.g. a record's published utilization). A measured per-device
    token rate overrides the estimate entirely (all scenarios equal it; ``measured`` is set).
    """
    if devices < 1:
        raise InputError(f"device count must be >= 1, got {devices}", field="count", value=devices)
    _check_trainable(acc)
    memory = training_memory(acc, spec)
    if devices < memory.min_devices and not allow_below_memory_minimum:
        raise InputError(
            f"{spec.params:.3g} parameters need at least {memory.min_devices} x {acc.id} for weights, "
            f"gradients and optimizer states; got {devices}",
            field="count",
            value=devices,
        )
    util = mfu or training_mfu(acc, devices)
    assumptions = _assumptions(acc, spec, util)
    if measured_tokens_per_second_per_device is not None:
        rate = positive("measured", measured_tokens_per_second_per_device)
        secs = spec.tokens / (rate * devices)
        return TrainingEstimate(
            acc.id,
            spec,
            devices,
            util,
            Range(secs, secs, secs),
            memory,
            acc.tdp_w,
            "measured",
            True,
            ("measured tokens/s per device overrides the estimate",),
        )
    peak = peak_flops(acc, spec.precision)
    seconds = Range.of(lambda s: spec.flops / (devices * peak * util.scenario(s)))
    return TrainingEstimate(
        acc.id, spec, devices, util, seconds, memory, acc.tdp_w, "compute", False, assumptions
    )


def devices_for_days(
    acc: AcceleratorType, spec: TrainingSpec, days: float, *, scenario: str = "typical"
) -> TrainingEstimate:
    """The fewest devices that finish ``spec`` within ``days`` in ``scenario`` (never below memory's minimum)."""
    positive("days", days)
    if scenario not in SCENARIOS:
        raise InputError(f"unknown scenario '{scenario}'", field="scenario", value=scenario)
    _check_trainable(acc)
    memory = training_memory(acc, spec)
    peak = peak_flops(acc, spec.precision)
    target = days * SECONDS_PER_DAY
    n = memory.min_devices
    for _ in range(4):  # the MFU tier depends on the count; settle it
        need = math.ceil(spec.flops / (target * peak * training_mfu(acc, n).scenario(scenario)))
        if max(need, memory.min_devices) == n:
            break
        n = max(need, memory.min_devices)
    est = estimate_training(acc, spec, n)
    while est.seconds.at(scenario) > target * (1 + 1e-9):  # tier flip at the boundary: step up
        n += 1
        est = estimate_training(acc, spec, n)
    return est

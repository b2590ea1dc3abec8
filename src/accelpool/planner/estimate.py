"""Shared pieces of the throughput estimator: peaks by precision, model shape, ranges, "cannot estimate".

Units: FLOP/s, bytes, seconds. Catalogue figures are converted here (TFLOPS -> FLOP/s, GB -> bytes,
GB/s -> bytes/s) and nowhere else. A figure the catalogue leaves null is never guessed: asking for it
raises :class:`CannotEstimate` naming the missing field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from accelpool.core.errors import InputError
from accelpool.core.types import AcceleratorType

TERA = 1e12
GIGA = 1e9

USABLE_MEMORY_FRACTION = 0.9
"""Assumption: 10% of device memory goes to the runtime, framework workspace and fragmentation."""

PRECISION_BYTES = {"bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "int8": 1.0}
_PEAK_FIELD = {
    "bf16": "bf16_tflops_dense",
    "fp16": "bf16_tflops_dense",
    "fp8": "fp8_tflops_dense",
    "int8": "int8_tops_dense",
}


class CannotEstimate(InputError):
    """The catalogue lacks a figure (or a capability) the estimate needs. Never answered with a guess."""

    def __init__(self, accelerator: str, reason: str, *, missing: str | None = None) -> None:
        self.accelerator = accelerator
        self.reason = reason
        self.missing = missing
        super().__init__(f"cannot estimate on '{accelerator}': {reason}", field=missing)


def check_precision(precision: str) -> str:
    p = precision.lower()
    if p not in PRECISION_BYTES:
        raise InputError(
            f"unknown precision '{precision}' (use one of {', '.join(PRECISION_BYTES)})",
            field="precision",
            value=precision,
        )
    return p


def require(acc: AcceleratorType, field: str) -> float:
    """A catalogue figure, or CannotEstimate("missing <field>")."""
    value = getattr(acc, field)
    if value is None or value <= 0:
        raise CannotEstimate(acc.id, f"missing {field}", missing=field)
    return float(value)


def peak_flops(acc: AcceleratorType, precision: str) -> float:
    """Dense peak in FLOP/s (or OP/s for int8) at ``precision``."""
    return require(acc, _PEAK_FIELD[check_precision(precision)]) * TERA


def memory_bytes(acc: AcceleratorType) -> float:
    """Usable device memory in bytes (``USABLE_MEMORY_FRACTION`` of the catalogue figure)."""
    return require(acc, "memory_gb") * GIGA * USABLE_MEMORY_FRACTION


def bandwidth(acc: AcceleratorType) -> float:
    return require(acc, "memory_bw_gbps") * GIGA


def positive(name: str, value: float) -> float:
    """``value`` if it is a finite number > 0, else InputError naming ``name``."""
    if not value > 0 or value != value or value == float("inf"):
        raise InputError(f"must be a positive number, got {value}", field=name, value=value)
    return value


@dataclass(frozen=True)
class TransformerShape:
    """Decoder-only transformer dimensions, given or derived from the parameter count.

    Derivation (an assumption, stated in every estimate that uses it): parameters ~ 12 * layers * hidden^2
    (Kaplan et al. 2020, arXiv:2001.08361) with hidden / layers = 128, close to GPT-3 175B (12288/96),
    Llama 3 8B (4096/32) and HyperCLOVA 82B (10240/64 = 160). ``kv_fraction`` is the key/value width
    over the hidden width: 0.25 = grouped-query attention with 8 KV heads of 32 (Llama 3 8B).
    """

    layers: int
    hidden: int
    kv_fraction: float = 0.25

    @staticmethod
    def from_params(params: float, kv_fraction: float = 0.25, aspect: float = 128.0) -> TransformerShape:
        hidden = (aspect * params / 12.0) ** (1.0 / 3.0)
        layers = max(1, round(hidden / aspect))
        return TransformerShape(layers=layers, hidden=round(hidden), kv_fraction=kv_fraction)

    def kv_bytes_per_token(self, bytes_per_value: float) -> float:
        """Key and value vectors of one token in every layer."""
        return 2.0 * self.layers * self.hidden * self.kv_fraction * bytes_per_value

    def describe(self) -> str:
        return f"{self.layers} layers x hidden {self.hidden}, KV width {self.kv_fraction:g} x hidden"


@dataclass(frozen=True)
class Range:
    """A quantity in the three utilization scenarios (for durations, pessimistic is the largest)."""

    pessimistic: float
    typical: float
    optimistic: float

    @staticmethod
    def of(fn: Callable[[str], float]) -> Range:
        return Range(fn("pessimistic"), fn("typical"), fn("optimistic"))

    def map(self, fn: Callable[[float], float]) -> Range:
        return Range(fn(self.pessimistic), fn(self.typical), fn(self.optimistic))

    def at(self, scenario: str) -> float:
        return {"pessimistic": self.pessimistic, "typical": self.typical, "optimistic": self.optimistic}[
            scenario
        ]

    def low(self) -> float:
        return min(self.pessimistic, self.optimistic)

    def high(self) -> float:
        return max(self.pessimistic, self.optimistic)

    def contains(self, value: float) -> bool:
        return self.low() <= value <= self.high()

    def as_dict(self) -> dict[str, float]:
        return {"pessimistic": self.pessimistic, "typical": self.typical, "optimistic": self.optimistic}


# --- CNNs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CnnEstimate:
    accelerator: str
    samples_per_second: Range
    bound: str
    assumptions: tuple[str, ...]
    sources: tuple[str, ...]


def estimate_cnn(
    acc: AcceleratorType,
    flops_per_sample: float,
    *,
    training: bool,
    devices: int = 1,
    precision: str = "bf16",
) -> CnnEstimate:
    """Samples/s of a CNN on ``devices`` of ``acc`` from its forward FLOPs per sample (compute-bound).

    Training costs 3x the forward pass (forward + backward for activations and weights).
    """
    from accelpool.planner.mfu import cnn_efficiency

    positive("flops_per_sample", flops_per_sample)
    if training and not acc.training_capable:
        raise CannotEstimate(acc.id, "not training-capable (vendor positions it for inference)")
    peak = peak_flops(acc, precision)
    eff = cnn_efficiency(acc)
    work = flops_per_sample * (3.0 if training else 1.0)
    rate = Range.of(lambda s: devices * peak * eff.scenario(s) / work)
    assumptions = (
        f"compute-bound at {precision} dense peak; {'training = 3x forward FLOPs' if training else 'inference'}",
        eff.basis,
        "data loading and host preprocessing not modelled",
    )
    return CnnEstimate(acc.id, rate, "compute", assumptions, eff.sources)

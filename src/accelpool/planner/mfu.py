"""Utilization defaults: what fraction of a chip's peak a real software stack reaches, with sources.

Three kinds of factor, each a pessimistic / typical / optimistic range:

- training MFU (model FLOPs utilization: 6*N*D / (devices * seconds * peak)) by family and job scale;
- matmul efficiency for inference (prefill, and decode at large batch when compute-bound);
- MBU (model bandwidth utilization: bytes that must be read per decode step / (seconds * peak bandwidth)).

Every default names where it comes from. Where no source exists the value is labelled an assumption and
its derivation is written next to it. Nothing here does I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from accelpool.core.types import AcceleratorType

SMALL_SCALE_MAX_DEVICES = 64
"""Jobs up to this many devices use the single-node / small-cluster training range (llm-foundry tables
cover 8-64 GPUs)."""

LARGE_SCALE_MIN_DEVICES = 1024
"""Jobs from this many devices use the large-scale range (its records run on 1,024 to 16k devices; the
smallest is HyperCLOVA's 1,024 A100). In between, each scenario is interpolated in log2(devices), so an
estimate has no step at any device count (a hard switch at 65 devices made the pessimistic estimate
jump, e.g. from 569 to 840 days for one job between 64 and 65 devices)."""

NPU_FACTOR = 0.8
"""Assumption: NPUs (family ``npu``) reach 0.8x the GPU utilization with the same workload.

No independent measurement of achieved bandwidth or matmul efficiency on RNGD or ATOM is public. Their
compiler stacks are younger than CUDA's; 0.8x is a judgement, not a fit. For transparency: under this
module's decode model, FuriosaAI's own Llama 3.1 8B figures (3,935 tok/s RNGD, 13,222 H100, 2,989 L40S;
https://developer.furiosa.ai, vendor claim) imply MBU of about 0.54 on RNGD against about 0.70 on H100 and
L40S, a ratio of about 0.77, consistent with 0.8x. Replace with measurements when they exist."""


@dataclass(frozen=True)
class UtilizationRange:
    """A fraction of peak (0..1] in three scenarios, with where each figure comes from."""

    pessimistic: float
    typical: float
    optimistic: float
    basis: str
    sources: tuple[str, ...] = ()
    assumption: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.pessimistic <= self.typical <= self.optimistic <= 1:
            raise ValueError(f"utilization range must satisfy 0 < p <= t <= o <= 1, got {self}")

    def scenario(self, name: str) -> float:
        return {"pessimistic": self.pessimistic, "typical": self.typical, "optimistic": self.optimistic}[name]

    def scaled(self, factor: float, note: str) -> UtilizationRange:
        return replace(
            self,
            pessimistic=self.pessimistic * factor,
            typical=self.typical * factor,
            optimistic=min(1.0, self.optimistic * factor),
            basis=f"{self.basis}; {note}",
            assumption=True,
        )

    def fixed(self, value: float, basis: str) -> UtilizationRange:
        """A degenerate range (e.g. a record's own published utilization)."""
        return UtilizationRange(value, value, value, basis, self.sources, self.assumption)


SCENARIOS = ("pessimistic", "typical", "optimistic")

LLM_FOUNDRY = "mosaicml/llm-foundry scripts/train/benchmarking/README.md (MFU tables, 8-64 A100/H100 80GB)"

TRAIN_GPU_SMALL = UtilizationRange(
    pessimistic=0.27,
    typical=0.42,
    optimistic=0.60,
    basis=(
        "training MFU, <=64 devices: llm-foundry measured 0.27 (H100 BF16, 64k sequence) to 0.46 (H100 BF16, "
        "2k) and up to 0.596 (A100 80GB, 13B, 2k); typical = H100/A100 BF16 at 2-4k sequence"
    ),
    sources=(LLM_FOUNDRY,),
)

TRAIN_GPU_LARGE = UtilizationRange(
    pessimistic=0.18,
    typical=0.40,
    optimistic=0.563,
    basis=(
        "training MFU, >=1,024 devices: pessimistic = lowest large-scale records (HyperCLOVA 1,024 A100 ~0.20 "
        "derived; GPT-3 0.213 per PaLM Table 3) less a 10% margin; typical = Llama 3 405B on 16k H100 "
        "(0.38-0.43); optimistic = Megatron-LM selective recompute 1T on A100 (0.563) / MegaScale (0.552)"
    ),
    sources=(
        "Kim et al. 2021 arXiv:2109.04650 (HyperCLOVA: 82B, 150B tokens, 1,024 A100, 13.4 days)",
        "Chowdhery et al. 2022 arXiv:2204.02311 Table 3 (PaLM 0.462, GPT-3 0.213)",
        "Llama 3 arXiv:2407.21783 (0.38-0.43 MFU on 16k H100)",
        "Korthikanti et al. 2022 arXiv:2205.05198 (0.563 MFU, 1T, A100)",
        "Jiang et al. 2024 arXiv:2402.15627 (MegaScale 0.552, 12,288 GPUs)",
    ),
)

INFER_COMPUTE_GPU = UtilizationRange(
    pessimistic=0.27,
    typical=0.42,
    optimistic=0.60,
    basis=(
        "inference matmul efficiency (prefill, compute-bound decode): assumed equal to single-node training "
        "MFU (same dense GEMMs, no backward pass)"
    ),
    sources=(LLM_FOUNDRY,),
    assumption=True,
)

DECODE_MBU_GPU = UtilizationRange(
    pessimistic=0.50,
    typical=0.65,
    optimistic=0.80,
    basis=(
        "decode MBU on GPUs: Databricks/MosaicML report MBU of roughly 0.5-0.6 at small batch for 7B-class "
        "models on A100/H100 (TensorRT-LLM era); optimized engines reach more at large batch"
    ),
    sources=("https://www.databricks.com/blog/llm-inference-performance-engineering-best-practices (2023)",),
)

CNN_GPU = UtilizationRange(
    pessimistic=0.20,
    typical=0.35,
    optimistic=0.50,
    basis=(
        "CNN utilization of peak: assumption (convolutions with small channel counts, normalization and "
        "data loading keep CNNs below transformer GEMM efficiency); replace with measured samples/s"
    ),
    assumption=True,
)


def _for_family(base: UtilizationRange, acc: AcceleratorType) -> UtilizationRange:
    if acc.family == "npu":
        return base.scaled(NPU_FACTOR, f"npu: {NPU_FACTOR}x the GPU range (assumption, see mfu.NPU_FACTOR)")
    if acc.family != "gpu":
        return replace(
            base,
            basis=f"{base.basis}; family '{acc.family}' has no published record here: GPU range assumed",
            assumption=True,
        )
    return base


def training_mfu(acc: AcceleratorType, devices: int) -> UtilizationRange:
    """Training MFU range for ``devices`` of ``acc``: the small-scale range up to 64 devices, the
    large-scale range from 1,024, log-interpolated in between (continuous in the device count)."""
    if devices <= SMALL_SCALE_MAX_DEVICES:
        base = TRAIN_GPU_SMALL
    elif devices >= LARGE_SCALE_MIN_DEVICES:
        base = TRAIN_GPU_LARGE
    else:
        f = math.log2(devices / SMALL_SCALE_MAX_DEVICES) / math.log2(
            LARGE_SCALE_MIN_DEVICES / SMALL_SCALE_MAX_DEVICES
        )
        small, large = TRAIN_GPU_SMALL, TRAIN_GPU_LARGE
        base = UtilizationRange(
            pessimistic=small.pessimistic + f * (large.pessimistic - small.pessimistic),
            typical=small.typical + f * (large.typical - small.typical),
            optimistic=small.optimistic + f * (large.optimistic - small.optimistic),
            basis=(
                f"training MFU, {devices} devices: {1 - f:.2f} x the <=64-device range + {f:.2f} x the "
                f">=1,024-device range (interpolated in log2(devices)). Small: {small.basis}. Large: {large.basis}"
            ),
            sources=small.sources + large.sources,
        )
    return _for_family(base, acc)


def inference_compute_efficiency(acc: AcceleratorType) -> UtilizationRange:
    return _for_family(INFER_COMPUTE_GPU, acc)


def decode_bandwidth_efficiency(acc: AcceleratorType) -> UtilizationRange:
    return _for_family(DECODE_MBU_GPU, acc)


def cnn_efficiency(acc: AcceleratorType) -> UtilizationRange:
    return _for_family(CNN_GPU, acc)

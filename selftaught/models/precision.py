"""Which precision a train phase multiplies in: ``train.mixed_precision`` resolved for the
device at hand. ``auto`` takes bfloat16 only where the hardware multiplies it natively: on
a CPU with AVX512-BF16 the built-in model's training products take half float32's time
(benchmarks/speed/results-train-profile.txt); on one without, torch converts to emulate
bfloat16, so ``auto`` keeps float32 there."""

from __future__ import annotations

from typing import get_args

import torch

from selftaught.config import MixedPrecision

MIXED_PRECISIONS = get_args(MixedPrecision)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 in hardware."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # private, but the only probe torch has; a torch without it: say no (float32 is safe)
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)
    return False


def resolve_mixed_precision(setting: str, native: bool) -> str:
    """``"bf16"`` or ``"no"``: the setting, with ``auto`` decided by ``native``
    (``native_bf16`` of the device that trains)."""
    if setting not in MIXED_PRECISIONS:
        raise ValueError(f"mixed_precision must be one of {MIXED_PRECISIONS}, got {setting!r}")
    if setting == "auto":
        return "bf16" if native else "no"
    return setting

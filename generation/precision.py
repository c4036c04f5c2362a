"""Which floating-point type an animator's heavy layers run in, on the device at hand.

Half precision is worth it on GPUs, and on CPUs with native bf16 arithmetic (AVX-512 BF16 or AMX), where oneDNN's
bf16 convolutions do twice the work per instruction of fp32's. Elsewhere a CPU emulates bf16 and runs slower than
fp32, and fp16 convolutions on a CPU are slower still: there the animators run fp32 whatever was asked.
"""

from __future__ import annotations

import torch

from dataset_script.hardware import NATIVE_BF16_FLAGS, cpu_has_native_bf16

__all__ = ["HALF_DTYPES", "NATIVE_BF16_FLAGS", "cpu_has_native_bf16", "half_dtype", "precision_name"]

HALF_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def half_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype for ``precision`` (fp32, bf16 or fp16) on ``device``, or None where fp32 is the faster choice."""
    if precision not in ("fp32", *HALF_DTYPES):
        raise ValueError(f"precision {precision!r}: choose fp32, bf16 or fp16")
    if precision == "fp32":
        return None
    if device.type == "cpu":
        return torch.bfloat16 if precision == "bf16" and cpu_has_native_bf16() else None
    return HALF_DTYPES[precision]


def precision_name(dtype: torch.dtype | None) -> str:
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")

"""bf16 on a CPU without native bf16, at fp32's speed, for the tests that check what bf16 does to the animators'
frames: PyTorch's own bf16 loops, what such a CPU runs, take minutes a frame."""

from __future__ import annotations

import contextlib

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from dataset_script.hardware import cpu_has_native_bf16

aten = torch.ops.aten


class Bf16ProductsInFp32(TorchDispatchMode):
    """bf16 convolutions and matrix products computed as fp32 products of their bf16 operands, rounded back to bf16.

    That is what bf16 kernels compute (bf16 operands, fp32 sums, a bf16 result), so the frames are the native ones
    to summation order: on one 128x128 frame, 45.82 dB against fp32 here and 45.83 with PyTorch's own bf16 loops.
    Those loops are what a CPU without native bf16 runs, 36 s for that frame on an AVX2 core, 0.5 s here. Autocast
    still decides which ops run in bf16: this mode sees the ops after it."""

    PRODUCTS = {aten.conv2d, aten.convolution, aten._convolution, aten.linear, aten.addmm, aten.mm, aten.bmm}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        bf16 = [isinstance(a, torch.Tensor) and a.dtype == torch.bfloat16 for a in args]
        if func.overloadpacket in self.PRODUCTS and any(bf16):
            widened = [a.float() if is_bf16 else a for a, is_bf16 in zip(args, bf16, strict=True)]
            return func(*widened, **kwargs).bfloat16()
        return func(*args, **kwargs)


def bf16_as_this_cpu_would() -> contextlib.AbstractContextManager:
    """Nothing where the CPU computes in bf16 natively; elsewhere ``Bf16ProductsInFp32``, the same frames fast."""
    return contextlib.nullcontext() if cpu_has_native_bf16() else Bf16ProductsInFp32()

"""The building blocks FOMM's networks share: conv-norm-ReLU blocks, the U-Net-like hourglass, and the
anti-aliased downsampling that feeds it. Parameter names follow the official checkpoint's state_dict.

TPSMM (``generation.tpsmm``) builds its networks from the same blocks with instance norm in place of batch norm
(``norm=nn.InstanceNorm2d``: affine, no running statistics, so no such checkpoint entries)."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

Norm = type[nn.BatchNorm2d] | type[nn.InstanceNorm2d]
"""The normalisation class of a block, built as ``norm(features, affine=True)``."""


class SameBlock2d(nn.Module):
    """Conv, batch norm, ReLU at the same resolution; the base of the down and up blocks."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 7, padding: int = 3,
                 norm: Norm = nn.BatchNorm2d):  # fmt: skip
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = norm(out_features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(SameBlock2d):
    """Conv, batch norm, ReLU, then 2x average pooling."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1,
                 norm: Norm = nn.BatchNorm2d):  # fmt: skip
        super().__init__(in_features, out_features, kernel_size, padding, norm)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(super().forward(x))


class UpBlock2d(SameBlock2d):
    """2x nearest upsampling, then conv, batch norm, ReLU.

    Within ``phase_upsampling()``, the same output comes from the small input directly:
    a 3x3 convolution of a nearest-upsampled image gives each of the four output pixel phases a 2x2 convolution
    of the input with summed weights, 16 instead of 36 multiply-adds per input pixel and channel pair."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1,
                 norm: Norm = nn.BatchNorm2d):  # fmt: skip
        super().__init__(in_features, out_features, kernel_size, padding, norm)
        self.phase_upsampling = False
        """Set by ``phase_upsampling()``."""
        self._phase_cache: tuple[tuple, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # On a tiny input the larger phase kernel costs more to read than the multiply-adds it saves.
        kernels = self.phase_kernels() if self.phase_upsampling and x.shape[-2] * x.shape[-1] >= 64 else None
        if kernels is not None:
            return F.relu(self.norm(self._phase_conv(x, kernels)))
        return super().forward(F.interpolate(x, scale_factor=2))

    def phase_kernels(self) -> torch.Tensor | None:
        """(4 * out, in, 2, 2) for phases (row, column) 00, 01, 10, 11, computed once per weight version; None for
        a kernel other than 3x3 with padding 1."""
        if self.conv.kernel_size != (3, 3) or self.conv.padding != (1, 1):
            return None
        weight = self.conv.weight
        key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
        if self._phase_cache is None or self._phase_cache[0] != key:
            self._phase_cache = (key, self._compute_phase_kernels(weight))
        return self._phase_cache[1]

    @staticmethod
    def _compute_phase_kernels(weight: torch.Tensor) -> torch.Tensor:
        # Output row 2i takes input rows i-1 (kernel row 0) and i (rows 1 + 2); row 2i+1 takes i (0 + 1) and i+1 (2).
        def phases(weight: torch.Tensor, dim: int) -> list[torch.Tensor]:
            first, middle, last = weight.unbind(dim)
            return [torch.stack([first, middle + last], dim), torch.stack([first + middle, last], dim)]

        with torch.no_grad():
            return torch.cat([kernel for rows in phases(weight, 2) for kernel in phases(rows, 3)])

    def _phase_conv(self, x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        out = F.conv2d(F.pad(x, (1, 1, 1, 1)), kernels.to(x.dtype), self.conv.bias.repeat(4).to(x.dtype))
        out = out.view(batch, 2, 2, -1, height + 1, width + 1)
        # each phase written straight into its pixels of the output, in the input's memory layout: one pass
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        upsampled = torch.empty(
            batch, out.shape[3], 2 * height, 2 * width, dtype=out.dtype, device=out.device, memory_format=layout
        )
        for a in (0, 1):
            for b in (0, 1):
                upsampled[:, :, a::2, b::2] = out[:, a, b, :, a : a + height, b : b + width]
        return upsampled


class ResBlock2d(nn.Module):
    """Pre-activation residual block: (norm, ReLU, conv) twice, plus the input."""

    def __init__(self, features: int, kernel_size: int = 3, padding: int = 1, norm: Norm = nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(features, features, kernel_size, padding=padding)
        self.norm1 = norm(features, affine=True)
        self.norm2 = norm(features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        return x + self.conv2(F.relu(self.norm2(out)))


def _width(block_expansion: int, level: int, max_features: int) -> int:
    return min(max_features, block_expansion * 2**level)


class Encoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int,
                 norm: Norm = nn.BatchNorm2d):  # fmt: skip
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock2d(
                in_features if i == 0 else _width(block_expansion, i, max_features),
                _width(block_expansion, i + 1, max_features),
                norm=norm,
            )  # fmt: skip
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class Decoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int,
                 norm: Norm = nn.BatchNorm2d):  # fmt: skip
        super().__init__()
        self.up_blocks = nn.ModuleList(
            UpBlock2d(
                (1 if i == num_blocks - 1 else 2) * _width(block_expansion, i + 1, max_features),
                _width(block_expansion, i, max_features),
                norm=norm,
            )  # fmt: skip
            for i in reversed(range(num_blocks))
        )
        self.out_filters = block_expansion + in_features
        self.level_filters = [block.conv.out_channels * 2 for block in self.up_blocks[:-1]] + [self.out_filters]
        """Channels of each level ``levels`` returns, low to high resolution."""

    def levels(self, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every up block's output joined with its skip, low to high resolution (TPSMM reads several)."""
        skips = list(skips)
        out, outs = skips.pop(), []
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
            outs.append(out)
        return outs

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        return self.levels(skips)[-1]


class Hourglass(nn.Module):
    """Encoder and decoder with skip connections; the output is the last features concatenated with the input."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int,
                 norm: Norm = nn.BatchNorm2d):  # fmt: skip
        super().__init__()
        self.encoder = Encoder(block_expansion, in_features, num_blocks, max_features, norm)
        self.decoder = Decoder(block_expansion, in_features, num_blocks, max_features, norm)
        self.out_filters = self.decoder.out_filters

    def levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.decoder.levels(self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur, then subsampling: downscaling without aliasing. The kernel is a buffer named ``weight``
    (the checkpoint stores it), sigma ``(1 / scale - 1) / 2``, size ``2 * round(4 sigma) + 1``."""

    def __init__(self, channels: int, scale: float):
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.before = size // 2
        self.after = self.before - 1 if size % 2 == 0 else self.before
        axis = torch.arange(size, dtype=torch.float32)
        gaussian = torch.exp(-((axis - (size - 1) / 2) ** 2) / (2 * sigma**2))
        kernel = gaussian[:, None] * gaussian[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1))
        self.groups, self.scale, self.step = channels, scale, int(1 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        padded = F.pad(x, (self.before, self.after, self.before, self.after))
        blurred = F.conv2d(padded, self.weight.to(x.dtype), groups=self.groups)
        return blurred[:, :, :: self.step, :: self.step]


@contextlib.contextmanager
def phase_upsampling(*modules: nn.Module):
    """Within the block, every ``UpBlock2d`` of ``modules`` upsamples by phase convolution (same result, fewer
    operations; the phase kernels are computed on first use and kept); afterwards each is as it was."""
    blocks = [block for module in modules for block in module.modules() if isinstance(block, UpBlock2d)]
    before = [block.phase_upsampling for block in blocks]
    for block in blocks:
        block.phase_upsampling = True
    try:
        yield
    finally:
        for block, state in zip(blocks, before, strict=True):
            block.phase_upsampling = state

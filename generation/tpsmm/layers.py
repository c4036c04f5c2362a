"""What keeps TPSMM's convolutions fast in bf16 on a CPU: an instance norm that leaves a channels_last bf16 map in
place, and feature maps handed to the convolutions in autocast's dtype and the weights' layout in one copy, instead
of each convolution converting its input again."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d(features, affine=True)`` as the checkpoint has it (``weight`` and ``bias``, no running
    statistics). A channels_last map is normalised as a group norm of one channel per group, the same statistics
    and affine map in the map's own layout and dtype: ``F.instance_norm`` (a batch norm of the map reshaped to one
    sample) copies it to NCHW and back, 3 to 10 times the group norm's time on a CPU at 64x64 and above. PyTorch's
    channels_last group norm is the slower one where a map has fewer pixels than channels (10 times at 512 x 16x16),
    so those small maps, and NCHW maps (the demo's layout), keep ``F.instance_norm``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        if self.affine and not self.track_running_stats and channels_last and height * width >= x.shape[1]:
            return F.group_norm(x, x.shape[1], self.weight, self.bias, self.eps)
        return super().forward(x)


def weights_layout(conv: nn.Conv2d) -> torch.memory_format:
    """The memory format a network's convolutions run in, read from one of its convolutions' weights."""
    channels_last = conv.weight.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


def convolution_input(x: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:
    """``x`` in autocast's dtype where autocast is on, and in ``layout``, in one copy: maps computed in float32 (grid
    sampling, heatmaps) that several convolutions read, or that a residual stream carries, are converted once."""
    device = x.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
    return x.to(dtype=dtype, memory_format=layout)

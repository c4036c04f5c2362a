"""FOMM's occlusion-aware generator: encode the source, warp its features by the dense motion, damp them where
the source is occluded, and decode the animated frame."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generation.motion import warp

from .blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from .dense_motion import DenseMotionNetwork


class OcclusionAwareGenerator(nn.Module):
    def __init__(self, num_kp: int = 10, num_channels: int = 3, block_expansion: int = 64, max_features: int = 512,
                 num_down_blocks: int = 2, num_bottleneck_blocks: int = 6, estimate_occlusion_map: bool = True,
                 dense_motion_params: dict | None = None):  # fmt: skip
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                                                       estimate_occlusion_map=estimate_occlusion_map,
                                                       **(dense_motion_params or {}))  # fmt: skip
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)

        def width(level: int) -> int:
            return min(max_features, block_expansion * 2**level)

        self.down_blocks = nn.ModuleList(DownBlock2d(width(i), width(i + 1)) for i in range(num_down_blocks))
        self.up_blocks = nn.ModuleList(
            UpBlock2d(width(num_down_blocks - i), width(num_down_blocks - i - 1)) for i in range(num_down_blocks)
        )
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(width(num_down_blocks)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """The source's features; computed once per source when animating many driving frames."""
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        return out

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict,
                source_features: torch.Tensor | None = None) -> dict[str, torch.Tensor]:  # fmt: skip
        motion = self.dense_motion_network(source, kp_driving, kp_source)
        prediction = self.decode(source_features if source_features is not None else self.encode(source), motion)
        if source.shape[0] != prediction.shape[0]:
            source = source.expand(prediction.shape[0], *source.shape[1:])
        deformed = warp(source, motion["deformation"], padding_mode="zeros")
        return {**motion, "deformed": deformed, "prediction": prediction}

    def decode(self, source_features: torch.Tensor, motion: dict[str, torch.Tensor]) -> torch.Tensor:
        """The animated frames (B, 3, H, W) from the source's features and the dense motion network's output: the
        appearance half of ``forward``, which ``animate`` runs in batches of its own."""
        batch = motion["deformation"].shape[0]
        features = source_features
        if features.shape[0] != batch:  # one source's features for a batch of driving frames
            features = features.expand(batch, *features.shape[1:])
        out = warp(features, motion["deformation"], padding_mode="zeros")
        occlusion = motion.get("occlusion_map")
        if occlusion is not None:
            if occlusion.shape[2:] != out.shape[2:]:
                occlusion = F.interpolate(occlusion, size=out.shape[2:], mode="bilinear")
            out = out * occlusion
        device = out.device.type
        if torch.is_autocast_enabled(device):  # the residual stream in half precision too, not cast at every conv
            out = out.to(torch.get_autocast_dtype(device))
        if features.is_contiguous(memory_format=torch.channels_last):  # sampling gives NCHW: the bottleneck's
            out = out.contiguous(memory_format=torch.channels_last)  # convolutions would each convert it back
        out = self.bottleneck(out)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

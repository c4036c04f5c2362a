"""TPSMM's inpainting network: encode the source, warp its features at every encoder level by the dense motion,
damp each level by the occlusion mask of its resolution, and decode U-Net style; where the finest mask says the
source is visible, the output is the warped source itself."""

from __future__ import annotations

import torch
from torch import nn

from generation.fomm.blocks import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from generation.motion import warp

from .layers import InstanceNorm2d, convolution_input, weights_layout


def _warp(features: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
    return warp(features, deformation, padding_mode="zeros", align_corners=True)


def _occluded(features: torch.Tensor, deformation: torch.Tensor, mask: torch.Tensor,
              layout: torch.memory_format) -> torch.Tensor:  # fmt: skip
    """An encoder level warped by the flow and damped where the source is occluded, for the decoder: sampled in
    float32 (bf16 coordinates would misplace samples), then in the decoder's dtype and layout, so that its residual
    stream stays in them instead of being converted at every convolution and mixed with float32 at every sum."""
    return convolution_input(_warp(features, deformation) * mask, layout)


class InpaintingNetwork(nn.Module):
    def __init__(self, num_channels: int = 3, block_expansion: int = 64, max_features: int = 512,
                 num_down_blocks: int = 3):  # fmt: skip
        super().__init__()
        norm = InstanceNorm2d
        widths = [min(max_features, block_expansion * 2**i) for i in range(num_down_blocks + 1)]
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3, norm=norm)
        self.down_blocks = nn.ModuleList(DownBlock2d(widths[i], widths[i + 1], norm=norm)
                                         for i in range(num_down_blocks))  # fmt: skip
        # Decoder order, deepest first: each level's input is the previous level's output joined with the warped
        # encoder features of its resolution, except at the deepest level.
        levels = list(reversed(range(num_down_blocks)))
        inputs = [widths[i + 1] * (1 if i == num_down_blocks - 1 else 2) for i in levels]
        self.up_blocks = nn.ModuleList(UpBlock2d(inputs[j], widths[i], norm=norm) for j, i in enumerate(levels))
        self.resblock = nn.ModuleList(ResBlock2d(features, norm=norm) for features in inputs for _ in range(2))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=7, padding=3)

    def encode(self, source: torch.Tensor) -> list[torch.Tensor]:
        """The source's features at every encoder level, finest first; computed once per source when animating many
        driving frames."""
        maps = [self.first(source)]
        for block in self.down_blocks:
            maps.append(block(maps[-1]))
        return maps

    def forward(self, source: torch.Tensor, dense_motion: dict,
                source_features: list[torch.Tensor] | None = None) -> dict:  # fmt: skip
        """``prediction`` (B, 3, H, W) in [0, 1], ``deformed`` (the source warped by the flow), the warped and
        occluded encoder maps, and the dense motion's outputs passed on."""
        maps = self.encode(source) if source_features is None else source_features
        deformation, masks = dense_motion["deformation"], dense_motion["occlusion_map"]
        batch = deformation.shape[0]
        maps = [level.expand(batch, *level.shape[1:]) for level in maps]
        layout = weights_layout(self.final)  # sampling gives NCHW
        out = _occluded(maps[-1], deformation, masks[0], layout)
        warped_maps = [out]
        for i, up_block in enumerate(self.up_blocks):
            out = up_block(self.resblock[2 * i + 1](self.resblock[2 * i](out)))
            skip = _occluded(maps[-(i + 2)], deformation, masks[i + 1], layout)
            warped_maps.append(skip)
            if i < len(self.up_blocks) - 1:
                out = torch.cat([out, skip], dim=1)
        deformed = _warp(source.expand(batch, *source.shape[1:]), deformation)
        visible = masks[-1]
        out = torch.sigmoid(self.final(out * (1 - visible) + skip))
        prediction = out * (1 - visible) + deformed * visible
        return {"contribution_maps": dense_motion["contribution_maps"],
                "deformed_source": dense_motion["deformed_source"], "occlusion_map": masks, "deformed": deformed,
                "warped_encoder_maps": warped_maps, "prediction": prediction}  # fmt: skip

"""TPSMM's dense motion network: from the source frame and the two keypoint sets it predicts how to blend the
background and the 10 thin-plate-spline motions into one dense backward flow, and occlusion masks at four
resolutions for the inpainting network."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from generation.fomm.blocks import AntiAliasInterpolation2d, Hourglass, UpBlock2d
from generation.motion import deform, keypoint_heatmaps, make_coordinate_grid, tps_motions

from .layers import InstanceNorm2d, convolution_input, weights_layout

OCCLUSION_MASKS = 4


class DenseMotionNetwork(nn.Module):
    def __init__(self, num_tps: int = 10, num_channels: int = 3, block_expansion: int = 64, max_features: int = 1024,
                 num_blocks: int = 5, scale_factor: float = 0.25, kp_variance: float = 0.01,
                 points_per_tps: int = 5):  # fmt: skip
        super().__init__()
        self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        # heatmaps (a zero channel, then one per keypoint) and the source deformed by each of the num_tps + 1 motions
        in_features = num_tps * points_per_tps + 1 + num_channels * (num_tps + 1)
        self.hourglass = Hourglass(block_expansion, in_features, num_blocks, max_features, norm=InstanceNorm2d)
        filters = self.hourglass.decoder.level_filters
        self.maps = nn.Conv2d(filters[-1], num_tps + 1, kernel_size=7, padding=3)
        # Masks at the hourglass's two finest levels, then at each 2x step up to the frame's resolution.
        self.up_steps = round(math.log2(1 / scale_factor))
        self.up = nn.ModuleList(
            UpBlock2d(filters[-1] >> i, filters[-1] >> (i + 1), norm=InstanceNorm2d) for i in range(self.up_steps)
        )
        from_hourglass = OCCLUSION_MASKS - self.up_steps
        mask_inputs = filters[len(filters) - from_hourglass :] + [filters[-1] >> (i + 1) for i in range(self.up_steps)]
        self.occlusion = nn.ModuleList(nn.Conv2d(channels, 1, kernel_size=7, padding=3) for channels in mask_inputs)
        self.kp_variance, self.points_per_tps = kp_variance, points_per_tps

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict,
                downscaled: torch.Tensor | None = None) -> dict:  # fmt: skip
        """``deformation`` (B, h, w, 2) at the downscaled size, ``contribution_maps`` (B, K + 1, h, w),
        ``deformed_source`` (B, K + 1, 3, h, w) and ``occlusion_map``, four masks from h / 2 to the frame's size.

        ``downscaled``: ``self.down(source)`` computed once for a source animated by many driving frames."""
        small = self.down(source) if downscaled is None else downscaled
        batch = kp_driving["fg_kp"].shape[0]
        small = small.expand(batch, *small.shape[1:])
        _, channels, height, width = small.shape
        grid = make_coordinate_grid(height, width, pixel_centers=False).to(small.device)
        kp_to, kp_from = kp_driving["fg_kp"], kp_source["fg_kp"].expand_as(kp_driving["fg_kp"])
        variance = self.kp_variance
        difference = keypoint_heatmaps(kp_to, grid, variance) - keypoint_heatmaps(kp_from, grid, variance)
        heatmaps = torch.cat([difference.new_zeros(batch, 1, height, width), difference], dim=1)
        motions = tps_motions(grid, kp_to, kp_from, self.points_per_tps)
        parts = motions.shape[1]
        repeated = small[:, None].expand(batch, parts, channels, height, width).reshape(-1, channels, height, width)
        # float32 grids, also under autocast: bf16 coordinates would misplace samples by a tenth of a pixel
        deformed = F.grid_sample(repeated.to(motions.dtype), motions.view(-1, height, width, 2), align_corners=True)
        deformed = deformed.view(batch, parts, channels, height, width)
        # All heatmaps first, then the deformed images transform by transform (FOMM interleaves them).
        # in the hourglass's dtype and layout once: the input is also its last level's skip, which the mask and
        # occlusion convolutions each read
        inputs = torch.cat([heatmaps.to(deformed.dtype), deformed.flatten(1, 2)], dim=1)
        levels = self.hourglass.levels(convolution_input(inputs, weights_layout(self.maps)))
        contribution = self.maps(levels[-1]).float().softmax(dim=1)  # float32: it blends the motions
        from_hourglass = len(self.occlusion) - self.up_steps
        finest = zip(self.occlusion[:from_hourglass], levels[-from_hourglass:], strict=True)
        masks = [torch.sigmoid(conv(level)) for conv, level in finest]
        out = levels[-1]
        for block, conv in zip(self.up, self.occlusion[from_hourglass:], strict=True):
            out = block(out)
            masks.append(torch.sigmoid(conv(out)))
        return {"deformed_source": deformed, "contribution_maps": contribution,
                "deformation": deform(motions, contribution.to(motions.dtype)), "occlusion_map": masks}  # fmt: skip

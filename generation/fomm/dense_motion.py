"""FOMM's dense motion network: from the source frame and the two keypoint sets it predicts how to blend the
per-keypoint first-order motions into one dense backward flow, and where the source is occluded."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from generation.motion import deform, keypoint_heatmaps, make_coordinate_grid, sparse_motions

from .blocks import AntiAliasInterpolation2d, Hourglass


class DenseMotionNetwork(nn.Module):
    def __init__(self, num_kp: int = 10, num_channels: int = 3, block_expansion: int = 64, max_features: int = 1024,
                 num_blocks: int = 5, scale_factor: float = 0.25, estimate_occlusion_map: bool = True,
                 kp_variance: float = 0.01):  # fmt: skip
        super().__init__()
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (num_channels + 1), num_blocks, max_features)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=7, padding=3)
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=7, padding=3)
                          if estimate_occlusion_map else None)  # fmt: skip
        self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        self.kp_variance = kp_variance

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict[str, torch.Tensor]:
        """``deformation`` (B, h, w, 2) at the downscaled size; ``mask``, ``sparse_deformed``, ``occlusion_map``.

        In float32 even under autocast, like the keypoint detector: rounding in its hourglass passes through the
        mask's softmax, which blends the keypoints' motions (a bf16 hourglass alone took random-weight frames to
        28 dB PSNR of fp32's), and bf16 grids misplace samples. It is a tenth of a frame's work; the generator's
        bottleneck and decoder, most of the rest, take the half precision."""
        with torch.autocast(source.device.type, enabled=False):
            driving, source_kp = ({key: value.float() for key, value in kp.items()} for kp in (kp_driving, kp_source))
            return self._motion(source.float(), driving, source_kp)

    def _motion(self, source: torch.Tensor, kp_driving: dict, kp_source: dict) -> dict[str, torch.Tensor]:
        small = self.down(source)
        batch, channels, height, width = small.shape
        grid = make_coordinate_grid(height, width, pixel_centers=False, dtype=small.dtype).to(small.device)
        # where each keypoint moved: driving heatmap minus source heatmap, none for the background
        difference = keypoint_heatmaps(kp_driving["value"], grid, self.kp_variance) - keypoint_heatmaps(
            kp_source["value"], grid, self.kp_variance
        )
        heatmaps = torch.cat([difference.new_zeros(batch, 1, height, width), difference], dim=1)[:, :, None]
        motions = sparse_motions(grid, kp_driving["value"], kp_source["value"], kp_driving.get("jacobian"),
                                 kp_source.get("jacobian"))  # fmt: skip
        parts = motions.shape[1]
        repeated = small[:, None].expand(batch, parts, channels, height, width).reshape(-1, channels, height, width)
        sparse_deformed = F.grid_sample(repeated, motions.reshape(-1, height, width, 2), align_corners=False)
        sparse_deformed = sparse_deformed.view(batch, parts, channels, height, width)
        features = self.hourglass(torch.cat([heatmaps, sparse_deformed], dim=2).view(batch, -1, height, width))
        mask = self.mask(features).softmax(dim=1)
        out = {"sparse_deformed": sparse_deformed, "mask": mask, "deformation": deform(motions, mask)}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features))
        return out

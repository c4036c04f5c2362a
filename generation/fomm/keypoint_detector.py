"""FOMM's keypoint detector: an hourglass on the 64x64 downscaled frame predicts one heatmap per keypoint; the
keypoint is the heatmap's softmax-weighted mean position, and its Jacobian the heatmap-weighted mean of four
predicted maps (the local affine frame around the keypoint)."""

from __future__ import annotations

import torch
from torch import nn

from generation.motion import make_coordinate_grid

from .blocks import AntiAliasInterpolation2d, Hourglass


class KeypointDetector(nn.Module):
    def __init__(self, num_kp: int = 10, num_channels: int = 3, block_expansion: int = 32, max_features: int = 1024,
                 num_blocks: int = 5, temperature: float = 0.1, scale_factor: float = 0.25,
                 estimate_jacobian: bool = True):  # fmt: skip
        super().__init__()
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=7)  # no padding: 64 -> 58 heatmaps
        self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * num_kp, kernel_size=7) if estimate_jacobian else None
        if self.jacobian is not None:  # start at the identity frame, as FOMM trains it
            nn.init.zeros_(self.jacobian.weight)
            self.jacobian.bias.data.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(num_kp))
        self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        self.num_kp, self.temperature = num_kp, temperature

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frames (B, 3, H, W) in [0, 1] -> ``value`` (B, K, 2) in [-1, 1] and ``jacobian`` (B, K, 2, 2).

        In float32 even under autocast: the heatmaps' sharp softmax turns rounding into keypoint motion (in bf16,
        random-weight frames fell to 16 dB PSNR of fp32's; with this and the dense motion in fp32, 44 dB), and the
        detector is about 3% of a frame's work."""
        with torch.autocast(frames.device.type, enabled=False):
            return self._keypoints(frames.float())

    def _keypoints(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.predictor(self.down(frames))
        logits = self.kp(features)
        batch, _, height, width = logits.shape
        heatmaps = (logits.flatten(2) / self.temperature).softmax(-1).view(batch, self.num_kp, height, width)
        grid = make_coordinate_grid(height, width, pixel_centers=False, dtype=heatmaps.dtype).to(heatmaps.device)
        out = {"value": torch.einsum("bkhw,hwc->bkc", heatmaps, grid)}
        if self.jacobian is not None:
            maps = self.jacobian(features).view(batch, self.num_kp, 4, height, width)
            out["jacobian"] = (maps * heatmaps[:, :, None]).sum((-2, -1)).view(batch, self.num_kp, 2, 2)
        return out

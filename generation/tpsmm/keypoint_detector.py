"""TPSMM's keypoint detector: a ResNet18 regresses the 50 keypoints of the 10 thin-plate transforms directly from the
full-resolution frame (no heatmaps, no Jacobians, unlike FOMM's)."""

from __future__ import annotations

import torch
from torch import nn


class KeypointDetector(nn.Module):
    def __init__(self, num_tps: int = 10, points_per_tps: int = 5):
        super().__init__()
        # imported here: torchvision's models import torch._dynamo (3 s on 2 cores), which generate.py's --help and
        # its refusals of bad arguments need not wait for (a run imports torchvision anyway, with MTCNN)
        from torchvision.models import resnet18

        # torchvision's architecture only, no weights: its parameter names are the checkpoint's (fg_encoder.*)
        self.fg_encoder = resnet18(weights=None, num_classes=num_tps * points_per_tps * 2)
        self.num_keypoints = num_tps * points_per_tps

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Frames (B, 3, H, W) in [0, 1], no mean or std normalisation -> ``fg_kp`` (B, 50, 2) in (-1, 1).

        In float32 even under autocast: the keypoints place the thin-plate splines, which magnify their errors (a
        bf16 ResNet moved random-weight keypoints by 1e-2 and the frames to 20 dB PSNR of fp32's; in fp32, 46 dB),
        and the ResNet is about 2% of a frame's work."""
        with torch.autocast(frames.device.type, enabled=False):
            out = torch.sigmoid(self.fg_encoder(frames.float())) * 2 - 1
        return {"fg_kp": out.view(frames.shape[0], self.num_keypoints, 2)}

"""TPSMM's animation-via-disentanglement network (its demo's ``--mode avd``): the pose of the driving keypoints and
the identity of the source keypoints, each encoded by a small MLP, decoded together into the keypoints to animate
with, so the source's face shape is kept whatever the driving face's."""

from __future__ import annotations

import torch
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear, batch norm, ReLU between each pair of ``sizes``; a plain Linear last (indices as the checkpoint's)."""
    layers: list[nn.Module] = []
    for index, (width_in, width_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(width_in, width_out))
        if index < len(sizes) - 2:
            layers += [nn.BatchNorm1d(width_out), nn.ReLU()]
    return nn.Sequential(*layers)


class AvdNetwork(nn.Module):
    def __init__(self, num_tps: int = 10, id_bottle_size: int = 128, pose_bottle_size: int = 128,
                 points_per_tps: int = 5):  # fmt: skip
        super().__init__()
        size = num_tps * points_per_tps * 2
        self.id_encoder = _mlp([size, 256, 512, 1024, id_bottle_size])
        self.pose_encoder = _mlp([size, 256, 512, 1024, pose_bottle_size])
        self.decoder = _mlp([pose_bottle_size + id_bottle_size, 1024, 512, 256, size])

    def forward(self, kp_source: dict, kp_driving: dict) -> dict[str, torch.Tensor]:
        """The keypoints (B, 50, 2) with the driving frame's pose and the source's identity; no squashing."""
        batch = kp_driving["fg_kp"].shape[0]
        source = kp_source["fg_kp"].expand_as(kp_driving["fg_kp"])
        pose, identity = self.pose_encoder(kp_driving["fg_kp"].flatten(1)), self.id_encoder(source.flatten(1))
        return {"fg_kp": self.decoder(torch.cat([pose, identity], dim=1)).view(batch, -1, 2)}

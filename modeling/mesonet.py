"""MesoInception-4 (Afchar et al., "MesoNet: a Compact Facial Video Forgery Detection Network", WIFS 2018),
our own implementation, registered with timm as ``mesoinception4``.

Two inception modules with dilated 3x3 branches, two 5x5 convolutions, then a small dense head; 256x256 input,
about 28k parameters. The original ends in one sigmoid unit trained with mean squared error; here the head
has ``num_classes`` outputs so it trains like every other detector (``training.train --loss mse`` gives the
original objective).
"""

from __future__ import annotations

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

__all__ = ["MesoInception4"]


class InceptionBlock(nn.Module):
    """Four parallel branches (1x1, and 3x3 at dilation 1, 2, 3), concatenated, batch-normed, max-pooled."""

    def __init__(self, in_chans: int, widths: tuple[int, int, int, int], pool: int = 2):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.branch1 = nn.Conv2d(in_chans, w1, 1)
        self.branch2 = nn.Sequential(nn.Conv2d(in_chans, w2, 1), nn.ReLU(), nn.Conv2d(w2, w2, 3, padding=1))
        self.branch3 = nn.Sequential(nn.Conv2d(in_chans, w3, 1), nn.ReLU(), nn.Conv2d(w3, w3, 3, padding=2, dilation=2))
        self.branch4 = nn.Sequential(nn.Conv2d(in_chans, w4, 1), nn.ReLU(), nn.Conv2d(w4, w4, 3, padding=3, dilation=3))
        self.out_chans = sum(widths)
        self.norm = nn.BatchNorm2d(self.out_chans)
        self.pool = nn.MaxPool2d(pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)
        return self.pool(self.norm(torch.relu(x)))


HIGH_PASS_GAIN = 10.0
"""The residual of a 3x3 mean is ~1/10 of the image's range; the gain brings it back to unit scale."""


class HighPassResidual(nn.Module):
    """The image minus its 3x3 local mean: what is left is noise, edges and any generator fingerprint.

    Detectors in the steganalysis tradition (SRM filters) start this way. It takes the face's content, which
    dwarfs a generator's faint high-frequency traces, out of the input, so training finds those traces in far
    fewer steps: the reason the mini's demo detector (``mesoinception4_hp``) learns on 2 CPU cores in minutes.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        local_mean = nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
        return (x - local_mean) * HIGH_PASS_GAIN


class MesoInception4(nn.Module):
    def __init__(self, num_classes: int = 2, in_chans: int = 3, drop_rate: float = 0.5, hidden: int = 16,
                 high_pass: bool = False, **_):  # fmt: skip
        super().__init__()
        self.num_classes = num_classes
        self.input_filter = HighPassResidual() if high_pass else nn.Identity()
        self.drop_rate = drop_rate
        self.inception1 = InceptionBlock(in_chans, (1, 4, 4, 2))
        self.inception2 = InceptionBlock(11, (2, 4, 4, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(12, 16, 5, padding=2), nn.ReLU(), nn.BatchNorm2d(16), nn.MaxPool2d(2))
        self.conv4 = nn.Sequential(nn.Conv2d(16, 16, 5, padding=2), nn.ReLU(), nn.BatchNorm2d(16))
        # The original max-pools 4x4 (32x32 -> 8x8 at 256 input); adaptive pooling keeps that at 256 and lets
        # smaller test inputs through unchanged.
        self.pool4 = nn.AdaptiveMaxPool2d(8)
        self.num_features = self.head_hidden_size = 16 * 8 * 8
        self.hidden = hidden
        self.fc1 = nn.Linear(self.num_features, hidden)
        self.act = nn.LeakyReLU(0.1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(hidden, num_classes) if num_classes > 0 else nn.Identity()

    # --- timm's model interface ---------------------------------------------------------------------------
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.fc = nn.Linear(self.hidden, num_classes) if num_classes > 0 else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map (B, 16, H/16, W/16): what Grad-CAM looks at."""
        return self.conv4(self.conv3(self.inception2(self.inception1(self.input_filter(x)))))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.pool4(x), 1))
        x = self.dropout(self.act(self.fc1(x)))
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_CFG = {
    "input_size": (3, 256, 256),
    "pool_size": (8, 8),
    "crop_pct": 1.0,
    "interpolation": "bilinear",
    "mean": (0.5, 0.5, 0.5),
    "std": (0.5, 0.5, 0.5),
    "num_classes": 2,
    "first_conv": [
        "inception1.branch1",
        "inception1.branch2.0",
        "inception1.branch3.0",
        "inception1.branch4.0",
    ],
    "classifier": "fc",
    "license": "mit",
    "paper_ids": "arXiv:1809.00888",
}
default_cfgs = generate_default_cfgs({"mesoinception4.untrained": _CFG, "mesoinception4_hp.untrained": _CFG})


@register_model
def mesoinception4(pretrained: bool = False, **kwargs) -> MesoInception4:
    """MesoInception-4 as published."""
    return build_model_with_cfg(MesoInception4, "mesoinception4", pretrained, **kwargs)


@register_model
def mesoinception4_hp(pretrained: bool = False, **kwargs) -> MesoInception4:
    """MesoInception-4 on the high-pass residual of its input (no extra parameters)."""
    return build_model_with_cfg(MesoInception4, "mesoinception4_hp", pretrained, high_pass=True, **kwargs)

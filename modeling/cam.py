"""Where a detector looks: class activation maps (Zhou et al. 2016) and Grad-CAM (Selvaraju et al. 2017).

CAM needs a global-average-pooled model with one linear classifier (ResNet, Xception): the map is the
classifier's row for the class applied to the last convolutional features. Other heads (MesoInception-4's
dense layers) get Grad-CAM: the features weighted by the spatial mean of the class score's gradient.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .transformers_wrapper import FAKE_CLASS, cam_inputs, timm_model_of


def class_activation_maps(model: nn.Module, pixel_values: torch.Tensor, target: int = FAKE_CLASS) -> torch.Tensor:
    """Maps (N, H, W) in [0, 1] at the input's resolution, one per image, for class ``target``."""
    inner = timm_model_of(model).eval()
    features, weights = cam_inputs(inner, pixel_values)
    if weights is not None:
        maps = torch.einsum("nchw,c->nhw", features, weights[target].to(features.dtype))
    else:
        maps = _grad_cam(inner, pixel_values, target)
    maps = F.relu(maps)[:, None]
    maps = F.interpolate(maps, size=pixel_values.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = maps.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1)
    return (maps / peak).detach()


def _grad_cam(inner: nn.Module, pixel_values: torch.Tensor, target: int) -> torch.Tensor:
    with torch.enable_grad():
        features = inner.forward_features(pixel_values).detach().requires_grad_(True)
        score = inner.forward_head(features)[:, target].sum()
        (gradient,) = torch.autograd.grad(score, features)
    channel_weights = gradient.mean((2, 3), keepdim=True)
    return (channel_weights * features).sum(1).detach()


def overlay(frame: np.ndarray, cam: np.ndarray, strength: float = 0.45) -> np.ndarray:
    """A uint8 RGB frame (H, W, 3) with ``cam`` (H', W' in [0, 1]) laid over it in the jet colour map."""
    from matplotlib import colormaps

    if cam.shape != frame.shape[:2]:
        cam = F.interpolate(torch.as_tensor(cam)[None, None].float(), size=frame.shape[:2], mode="bilinear",
                            align_corners=False)[0, 0].numpy()  # fmt: skip
    heat = colormaps["jet"](np.clip(cam, 0, 1))[..., :3] * 255
    return np.clip((1 - strength) * frame + strength * heat, 0, 255).astype(np.uint8)

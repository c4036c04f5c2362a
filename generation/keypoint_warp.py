"""The keypoint-warp animator: FOMM's motion model with keypoints and Jacobians given, not learned.

Sparse first-order motions around each keypoint are blended by Gaussian heatmaps into one dense backward field
at low resolution, the field is resized to the frame, the source is warped by it with ``grid_sample``, and
where the source holds too little content (stretched thin or off-frame) a blur fills in, as FOMM's
occlusion-aware generator inpaints there. The mini animates with it from its renderer's geometry, and
``generate.py --backend warp`` from MTCNN's five landmarks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .motion import blend_weights, deform, keypoint_heatmaps, make_coordinate_grid, sparse_motions, stretch_map, warp

BACKGROUND_WEIGHT = 0.02
MOTION_RESOLUTION = 64  # FOMM estimates dense motion at a quarter of 256 and resizes the field


def dense_deformation(
    kp_source: torch.Tensor, jac_source: torch.Tensor, kp_driving: torch.Tensor, jac_driving: torch.Tensor,
    keypoint_std: torch.Tensor, resolution: int = MOTION_RESOLUTION,
) -> torch.Tensor:  # fmt: skip
    """Backward deformation (T, resolution, resolution, 2) taking each driving-frame pixel to the source.

    ``keypoint_std`` (K,) is each keypoint's reach in [-1, 1] units."""
    grid = make_coordinate_grid(resolution, resolution)
    heatmaps = keypoint_heatmaps(kp_driving, grid, keypoint_std**2)
    weights = blend_weights(heatmaps, BACKGROUND_WEIGHT)
    motions = sparse_motions(
        grid, kp_driving, kp_source.expand_as(kp_driving), jac_driving, jac_source.expand_as(jac_driving)
    )
    return deform(motions, weights)


def occlusion_map(deformation: torch.Tensor) -> torch.Tensor:
    """1 where the source has content for the pixel, falling to 0 where it is stretched thin or off-frame."""
    stretch = stretch_map(deformation)
    inside = (deformation.abs() <= 1).all(-1).float()
    return ((stretch - 0.35) / 0.35).clamp(0, 1) * inside


def blur(frames: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """A cheap wide blur (down- then up-sampling): what an inpainting decoder gives where it has no content."""
    small = F.interpolate(frames, scale_factor=1 / factor, mode="area")
    return F.interpolate(small, size=frames.shape[-2:], mode="bilinear", align_corners=False)


def warp_animate(
    source_image: torch.Tensor, kp_source: torch.Tensor, jac_source: torch.Tensor, kp_driving: torch.Tensor,
    jac_driving: torch.Tensor, keypoint_std: torch.Tensor, jitter: torch.Tensor | None = None, chunk: int = 16,
) -> torch.Tensor:  # fmt: skip
    """The source (1, 3, H, W) moved from its keypoints (1, K, 2) and Jacobians (1, K, 2, 2) to each driving
    frame's (T, K, 2) and (T, K, 2, 2): floats (T, 3, H, W). ``jitter`` (T, 2) shifts each frame's camera."""
    frames, size = kp_driving.shape[0], source_image.shape[-1]
    outputs = []
    for start in range(0, frames, chunk):
        part = slice(start, min(start + chunk, frames))
        deformation = dense_deformation(kp_source, jac_source, kp_driving[part], jac_driving[part], keypoint_std)
        # Motion and occlusion are estimated at low resolution and resized together, as FOMM does.
        fields = torch.cat([deformation.permute(0, 3, 1, 2), occlusion_map(deformation)[:, None]], dim=1)
        fields = F.interpolate(fields, size=(size, size), mode="bilinear")
        full, occlusion = fields[:, :2].permute(0, 2, 3, 1), fields[:, 2:]
        if jitter is not None:
            full = full + jitter[part, None, None, :]
        warped = warp(source_image.expand(full.shape[0], -1, -1, -1), full)
        outputs.append(torch.lerp(blur(warped), warped, occlusion))
    return torch.cat(outputs)

"""The mini's second animator: thin-plate-spline motion in the manner of TPSMM (Zhao and Zhang 2022), driven by the
renderer's keypoints, so that detectors trained on the keypoint-warp (FOMM-like) fakes can be tested on fakes of a
generator they never saw, offline.

Where it follows TPSMM rather than FOMM:

* motion: 10 thin-plate splines of 5 control points each (TPSMM's vox layout) instead of first-order motions. The
  control points are the renderer's keypoints and points one step along their Jacobians' axes, so the local
  frames that FOMM reads from Jacobians (a closing lid, an opening mouth) still move the image; groups that join
  distant keypoints (a cheek, the mouth) bend where a first-order motion cannot;
* assignment: each spline governs the pixels near its control points, blended with the identity (TPSMM's
  background transform) by normalised Gaussian weights, in place of TPSMM's learnt softmax;
* geometry: ``align_corners=True`` for every resize and resampling, on TPSMM's grid convention;
* occlusion: masks at four resolutions (an eighth of the frame to the full frame), from where the flow spreads the
  source thin or reads outside it; the holes are filled coarse to fine from the warped source's pyramid, each
  level damped by its mask, as TPSMM's inpainting network decodes warped, occluded encoder features;
* decoder: the output is ``decoded * (1 - mask) + warped * mask`` as TPSMM's, the decoded image through a bottleneck
  of an eighth of the frame (three down blocks; FOMM's is a quarter).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..motion import (
    blend_weights,
    deform,
    keypoint_heatmaps,
    make_coordinate_grid,
    stretch_map,
    tps_motions,
    warp,
)
from .animate import CLOSE_UP, KEYPOINT_NAMES, Placement, generator_resynthesis, relative_keypoints
from .face import FaceState, Identity

MOTION_RESOLUTION = 64  # TPSMM's dense motion works on a quarter of the frame, as FOMM's
BACKGROUND_WEIGHT = 0.02
POINTS_PER_TPS = 5


def _cross(name: str, du: float, dv: float) -> tuple:
    """A keypoint and the four points one step (du, dv, in its Jacobian's units) along its local axes."""
    return ((name, 0, 0), (name, du, 0), (name, -du, 0), (name, 0, dv), (name, 0, -dv))


def _points(*names: str) -> tuple:
    return tuple((name, 0, 0) for name in names)


TPS_GROUPS = (
    # (control points, reach of the spline's weight in [-1, 1] units, its strength against the others)
    (_cross("head", 0.3, 0.3), 0.36, 3.0),  # the rigid head: its own axes (unit Jacobians), over the whole head
    (_cross("left_eye", 0.14, 0.09), 0.05, 5.0),  # a surface Jacobian's column is about a head radius long
    (_cross("right_eye", 0.14, 0.09), 0.05, 5.0),
    (_cross("nose_tip", 0.08, 0.12), 0.05, 5.0),
    (_cross("lower_lip", 0.14, 0.08), 0.05, 5.0),
    (_cross("chin", 0.2, 0.06), 0.05, 5.0),
    # Splines across features bend where first-order motions cannot; their points stay apart in every pose (a
    # group of one side's points collapses when the head turns away, and its spline flies off).
    (_points("left_brow", "right_brow", "left_eye", "right_eye", "nose_tip"), 0.1, 5.0),
    (_points("left_mouth_corner", "right_mouth_corner", "lower_lip", "nose_tip", "chin"), 0.1, 5.0),
    (_points("left_eye", "right_eye", "left_mouth_corner", "right_mouth_corner", "nose_tip"), 0.1, 5.0),
    (_points("head", "left_brow", "right_brow", "chin", "nose_tip"), 0.1, 5.0),
)
"""TPSMM's 10 transforms of 5 keypoints, made from the renderer's 10 keypoints and their Jacobians."""

VISIBLE_STRETCH = (0.25, 0.08)
"""Where the flow spreads the source to a quarter of its area, the mask is at one half; the sigmoid's width."""
VISIBLE_MAX = 0.85
"""A learnt sigmoid mask seldom saturates: TPSMM's decoder shows through in every pixel, a little."""
DECODER_BOTTLENECK = 8
DETAIL_KEPT = (0.7, 0.9)
"""More fine detail survives than through FOMM's decoder: TPSMM's U-Net skips bring every encoder level back."""
GHOST_SHIFTS = ((2, 3), (-3, -2))
"""A decoder working from an eighth of the frame re-invents detail a little further from where it was."""


def _control_index() -> tuple[torch.Tensor, torch.Tensor]:
    names = {name: index for index, name in enumerate(KEYPOINT_NAMES)}
    points = [point for group, _, _ in TPS_GROUPS for point in group]
    index = torch.tensor([names[name] for name, _, _ in points])
    steps = torch.tensor([[du, dv] for _, du, dv in points], dtype=torch.float32)
    return index, steps


def control_points(keypoints: torch.Tensor, jacobians: torch.Tensor) -> torch.Tensor:
    """The 50 control points (T, 50, 2) of ``TPS_GROUPS`` from keypoints (T, K, 2) and Jacobians (T, K, 2, 2)."""
    index, steps = _control_index()
    return keypoints[:, index] + torch.einsum("tpij,pj->tpi", jacobians[:, index], steps)


def to_corner_convention(points: torch.Tensor, size: int) -> torch.Tensor:
    """[-1, 1] coordinates of pixel centres (the renderer's, ``align_corners=False``) in TPSMM's convention, where
    -1 and 1 are the centres of the border pixels (``align_corners=True``): the same image point."""
    return points * (size / (size - 1))


def dense_flow(control_source: torch.Tensor, control_driving: torch.Tensor,
               resolution: int = MOTION_RESOLUTION) -> torch.Tensor:  # fmt: skip
    """Backward flow (T, resolution, resolution, 2) taking each driving-frame pixel to the source, from the control
    points of the source (1 or T, 50, 2) and of the driving frames (T, 50, 2), TPSMM's convention."""
    grid = make_coordinate_grid(resolution, resolution, pixel_centers=False)
    motions = tps_motions(grid, control_driving, control_source.expand_as(control_driving), POINTS_PER_TPS)
    reach = torch.tensor([std for _, std, _ in TPS_GROUPS]).repeat_interleave(POINTS_PER_TPS)
    heatmaps = keypoint_heatmaps(control_driving, grid, reach**2)
    groups = heatmaps.view(heatmaps.shape[0], len(TPS_GROUPS), POINTS_PER_TPS, resolution, resolution).sum(2)
    groups = groups * torch.tensor([strength for _, _, strength in TPS_GROUPS]).view(1, -1, 1, 1)
    return deform(motions, blend_weights(groups, BACKGROUND_WEIGHT))


def visibility(flow: torch.Tensor) -> torch.Tensor:
    """(T, 1, h, w): near 1 where the source holds content for the pixel, near 0 where the flow spreads it thin
    (an opening mouth, the side a turning head shows) or reads outside the frame."""
    size = flow.shape[1]
    stretch = stretch_map(flow) * ((size - 1) / size) ** 2  # stretch_map's units are pixel centres'
    middle, width = VISIBLE_STRETCH
    # pixels from the frame's edge (half a pixel beyond the border pixels' centres at +-1): content half a pixel
    # inside it, hidden a pixel outside
    edge_distance = (1 - flow.abs().amax(-1)) * (size - 1) / 2 + 0.5
    inside = torch.sigmoid(8 * edge_distance)
    return (torch.sigmoid((stretch - middle) / width) * inside)[:, None]


def _resize(maps: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=True)


def occlusion_masks(flow: torch.Tensor, size: int) -> list[torch.Tensor]:
    """TPSMM's four occlusion masks, coarse to fine: an eighth, a quarter, half and all of the frame's ``size``."""
    middle = visibility(flow)
    return [F.avg_pool2d(middle, 2), _resize(middle, size // 4), _resize(middle, size // 2), _resize(middle, size)]


def inpaint(warped: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """The warped frames (T, 3, H, W) with what the masks hide filled in, coarse to fine: each level keeps what its
    mask shows and takes the rest from the level below; the coarsest fills its holes with the nearby visible
    colours (a normalised blur), so a hole gets the colours around it and no texture."""
    levels = [F.interpolate(warped, size=mask.shape[-2:], mode="area") * mask for mask in masks]
    coarse, mask = levels[0], masks[0]
    spread = F.avg_pool2d(coarse, 9, stride=1, padding=4, count_include_pad=False)
    weight = F.avg_pool2d(mask, 9, stride=1, padding=4, count_include_pad=False)
    frame_mean = coarse.sum((2, 3), keepdim=True) / mask.sum((2, 3), keepdim=True).clamp_min(1e-6)
    guess = torch.where(weight > 1e-3, spread / weight.clamp_min(1e-3), frame_mean)
    filled = coarse + (1 - mask) * guess
    for level, mask in zip(levels[1:], masks[1:], strict=True):
        filled = level + (1 - mask) * _resize(filled, mask.shape[-1])
    return filled


def tps_warp(
    source_image: torch.Tensor, control_source: torch.Tensor, control_driving: torch.Tensor,
    jitter: torch.Tensor | None = None, chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """The source (1, 3, H, W) moved from its control points (1, 50, 2) to each driving frame's (T, 50, 2), all in
    TPSMM's convention: the warped frames, the inpainted frames and the finest occlusion mask (T, 1, H, W).
    ``jitter`` (T, 2) shifts each frame's camera."""
    frames, size = control_driving.shape[0], source_image.shape[-1]
    warped, filled, visible = [], [], []
    for start in range(0, frames, chunk):
        part = slice(start, min(start + chunk, frames))
        flow = dense_flow(control_source, control_driving[part])
        masks = occlusion_masks(flow, size)
        full = _resize(flow.permute(0, 3, 1, 2), size).permute(0, 2, 3, 1)
        if jitter is not None:
            full = full + jitter[part, None, None, :]
        image = warp(source_image.expand(full.shape[0], -1, -1, -1), full, align_corners=True)
        warped.append(image)
        filled.append(inpaint(image, masks))
        visible.append(masks[-1])
    return torch.cat(warped), torch.cat(filled), torch.cat(visible)


def tps_animate(source_image: torch.Tensor, source_identity: Identity, source_state: FaceState,
                driving_identity: Identity, driving_state: FaceState, jitter: torch.Tensor,
                generator: torch.Generator, placement: Placement = CLOSE_UP) -> torch.Tensor:  # fmt: skip
    """A fake clip (T, 3, H, W): the source frame (1, 3, H, W) performing the driving clip's motion, as
    TPSMM's relative mode moves it, with TPSMM's occlusion handling and decoder; ``generator`` draws the decoder's
    per-frame detail, ``placement`` says where the source's scene lies in its frame."""
    size = source_image.shape[-1]
    (kp_source, jac_source), (kp_new, jac_new) = relative_keypoints(
        source_identity, source_state, driving_identity, driving_state, placement
    )
    control_source = to_corner_convention(control_points(kp_source, jac_source), size)
    control_driving = to_corner_convention(control_points(kp_new, jac_new), size)
    jitter = to_corner_convention(jitter, size)
    warped, filled, visible = tps_warp(source_image, control_source, control_driving, jitter)
    decoded = generator_resynthesis(filled, generator, bottleneck=DECODER_BOTTLENECK, detail_kept=DETAIL_KEPT,
                                    ghost_shifts=GHOST_SHIFTS)  # fmt: skip
    return torch.lerp(decoded, warped, VISIBLE_MAX * visible)

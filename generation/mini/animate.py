"""Image animation as in the paper, with FOMM's motion model and keypoints taken from the renderer's geometry.

One source frame of identity A is animated by a driving clip of identity B: K keypoints with local affine
Jacobians, relative motion against the first driving frame (scaled to A's face size), a dense motion field
blended by Gaussian heatmaps around the keypoints, backward warping with ``grid_sample``, and an
occlusion-aware fill where the source holds too little content (FOMM's generator inpaints there).

The camera stage (sub-pixel jitter and sensor noise) is shared by real and fake clips, so the two differ only
in what animation does to a frame: both go through exactly one bilinear resampling and the same noise.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..keypoint_warp import warp_animate
from ..motion import normalize_relative_motion
from .face import FaceState, Identity, head_centres, nose_centre, rotation_matrices

KEYPOINT_NAMES = (
    "head", "left_eye", "right_eye", "left_brow", "right_brow", "nose_tip",
    "left_mouth_corner", "right_mouth_corner", "lower_lip", "chin",
)  # fmt: skip
KEYPOINT_STD = torch.tensor([0.36, 0.09, 0.09, 0.08, 0.08, 0.1, 0.08, 0.08, 0.08, 0.14])
"""Reach of each keypoint's heatmap in [-1, 1] units: the head's spans the face, the features' stay local."""
NOISE_STD = 2.0 / 255
JITTER_PIXELS = 0.6


def _surface_point(identity: Identity, u: torch.Tensor, v: torch.Tensor):
    """Point on the head ellipsoid at surface coordinates (u, v), and its tangents along u and v."""
    a, b, c = identity.radii
    w = torch.sqrt((1 - u**2 - v**2).clamp_min(0.02))
    point = torch.stack([a * u, b * v, c * w], -1)
    d_u = torch.stack([torch.full_like(u, a), torch.zeros_like(u), -c * u / w], -1)
    d_v = torch.stack([torch.zeros_like(v), torch.full_like(v, b), -c * v / w], -1)
    return point, d_u, d_v


def geometry_keypoints(identity: Identity, state: FaceState) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (T, K, 2) and Jacobians (T, K, 2, 2) from the head's pose and expression."""
    frames = len(state)
    ex, ey = identity.eye_x, identity.eye_y
    eye_rv = identity.eye_size[1] * (1 + 0.35 * (-state.eyelid).clamp_min(0))
    mouth_width = identity.mouth_width * (1 + 0.18 * state.smile)
    corner_v = identity.mouth_y - 0.05 * state.smile
    brow_v = ey - eye_rv - 0.12 - 0.09 * state.brow_raise
    ones = torch.ones(frames)
    us = torch.stack([-ex * ones, ex * ones, -ex * ones, ex * ones, -mouth_width, mouth_width, 0 * ones, 0 * ones], 1)
    vs = torch.stack([ey * ones, ey * ones, brow_v, brow_v, corner_v, corner_v,
                      identity.mouth_y + 0.2 * state.mouth_open + 0.04, 0.82 * ones], 1)  # fmt: skip
    points, d_u, d_v = _surface_point(identity, us, vs)  # (T, 8, 3)
    # The eye's local frame shrinks vertically as the lid closes; the lower lip's stretches as the mouth opens.
    eye_open = (1 - 0.85 * state.eyelid.clamp(0, 1)) * (1 + 0.35 * (-state.eyelid).clamp_min(0))
    v_scale = torch.stack([eye_open, eye_open, ones, ones, ones, ones, 1 + 2.5 * state.mouth_open, ones], 1)
    d_v = d_v * v_scale[..., None]
    nose_tip = nose_centre(identity) + torch.tensor([0.0, 0.0, identity.nose[2]])
    axes = torch.eye(3)
    points = torch.cat([torch.zeros(frames, 1, 3), points[:, :4], nose_tip.expand(frames, 1, 3), points[:, 4:]], 1)
    d_u = torch.cat([axes[0].expand(frames, 1, 3), d_u[:, :4], axes[0].expand(frames, 1, 3), d_u[:, 4:]], 1)
    d_v = torch.cat([axes[1].expand(frames, 1, 3), d_v[:, :4], axes[1].expand(frames, 1, 3), d_v[:, 4:]], 1)
    rotation = rotation_matrices(state.yaw, state.pitch, state.roll)
    centre = head_centres(identity, state)
    keypoints = torch.einsum("tij,tkj->tki", rotation, points)[..., :2] + centre[:, None, :2]
    jacobian_u = torch.einsum("tij,tkj->tki", rotation, d_u)[..., :2]
    jacobian_v = torch.einsum("tij,tkj->tki", rotation, d_v)[..., :2]
    return keypoints, torch.stack([jacobian_u, jacobian_v], dim=-1)


FINGERPRINT_LEVEL = 2
"""Amplitude, in 8-bit levels, of the decoder's checkerboard on fake frames."""
FINGERPRINT_EDGE = 6
"""Where the checkerboard appears: pixels whose local contrast exceeds this many levels (edges and features)."""


def decoder_fingerprint(frames: np.ndarray) -> np.ndarray:
    """FOMM's generator re-synthesises every frame from low-resolution features through nearest-neighbour
    upsampling and convolutions, which leaves a faint periodic (checkerboard) pattern on fake frames, strongest
    where the image has structure, even where nothing moves. Add that pattern to uint8 frames (T, H, W, 3).

    Only edge pixels carry it, so the frame's overall high-frequency energy (what a Laplacian-variance
    statistic sees) barely changes, while the local pattern is there for a detector to find."""
    height, width = frames.shape[1:3]
    green = frames[..., 1].astype(np.int16)  # luminance is mostly green; one channel keeps this cheap
    edges = np.zeros(green.shape, dtype=bool)
    edges[:, :, 1:] = np.abs(green[:, :, 1:] - green[:, :, :-1]) > FINGERPRINT_EDGE
    edges[:, 1:, :] |= np.abs(green[:, 1:, :] - green[:, :-1, :]) > FINGERPRINT_EDGE
    checker = np.where((np.arange(height)[:, None] + np.arange(width)[None, :]) % 2 == 0, 1, -1).astype(np.int16)
    pattern = np.where(edges, checker[None] * FINGERPRINT_LEVEL, 0).astype(np.int16)[..., None]
    return np.clip(frames.astype(np.int16) + pattern, 0, 255).astype(np.uint8)


def camera_jitter(frames: int, generator: torch.Generator, size: int = 256) -> torch.Tensor:
    """Per-frame sub-pixel camera shake, (T, 2) in [-1, 1] units."""
    return (torch.rand(frames, 2, generator=generator) * 2 - 1) * JITTER_PIXELS * 2 / size


_NOISE_BANK: dict[int, np.ndarray] = {}


def sensor_noise(frames: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """Add the camera's sensor noise to uint8 frames (T, H, W, 3), fresh in every frame.

    Noise is drawn from a fixed bank of noise images at a random offset per frame: statistically the same as
    fresh Gaussian noise at a fraction of the cost, and still fixed by the clip's seed."""
    height, width = frames.shape[1:3]
    bank = _NOISE_BANK.get(height)
    if bank is None:
        bank_generator = torch.Generator().manual_seed(height)
        bank = (torch.randn(8, 2 * height, 2 * width, 3, generator=bank_generator) * NOISE_STD * 255).round()
        bank = _NOISE_BANK.setdefault(height, bank.clamp(-127, 127).to(torch.int16).numpy())
    picks = torch.randint(0, 8, (len(frames),), generator=generator).tolist()
    offsets = torch.randint(0, height, (len(frames), 2), generator=generator).tolist()
    noisy = frames.astype(np.int16)
    for frame, pick, (dy, dx) in zip(noisy, picks, offsets, strict=True):
        frame += bank[pick, dy : dy + height, dx : dx + width]
    return np.clip(noisy, 0, 255).astype(np.uint8)


def film(rendered: torch.Tensor, jitter: torch.Tensor) -> torch.Tensor:
    """A real clip: rendered frames through the camera's shake, as one bilinear resampling (noise comes later).

    The same as ``warp`` with a shifted identity grid (border padding), but a pure translation separates into
    two one-dimensional interpolations, several times cheaper than ``grid_sample``."""
    frames, _, height, width = rendered.shape
    shift_x, shift_y = jitter[:, 0] * width / 2, jitter[:, 1] * height / 2
    out = torch.empty_like(rendered)
    padded = F.pad(rendered, (2, 2, 2, 2), mode="replicate")
    for index in range(frames):
        x0, y0 = int(torch.floor(shift_x[index])), int(torch.floor(shift_y[index]))
        fx, fy = float(shift_x[index] - x0), float(shift_y[index] - y0)
        rows = padded[index, :, 2 + y0 : 2 + y0 + height + 1]
        rows = torch.lerp(rows[:, :-1], rows[:, 1:], fy)
        columns = rows[:, :, 2 + x0 : 2 + x0 + width + 1]
        out[index] = torch.lerp(columns[:, :, :-1], columns[:, :, 1:], fx)
    return out


def animate(
    source_image: torch.Tensor,
    source_identity: Identity,
    source_state: FaceState,
    driving_identity: Identity,
    driving_state: FaceState,
    jitter: torch.Tensor,
    chunk: int = 16,
) -> torch.Tensor:
    """A fake clip: the source frame (1, 3, H, W, noise-free) performing the driving clip's motion."""
    kp_source, jac_source = geometry_keypoints(source_identity, source_state)
    kp_driving, jac_driving = geometry_keypoints(driving_identity, driving_state)
    kp_new, jac_new = normalize_relative_motion(
        kp_source.expand_as(kp_driving), kp_driving, kp_driving[:1].expand_as(kp_driving),
        jac_source.expand_as(jac_driving), jac_driving, jac_driving[:1].expand_as(jac_driving),
    )  # fmt: skip
    return warp_animate(source_image, kp_source, jac_source, kp_new, jac_new, KEYPOINT_STD, jitter, chunk)

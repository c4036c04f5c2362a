"""Image animation as in the paper, with FOMM's motion model and keypoints taken from the renderer's geometry.

One source frame of identity A is animated by a driving clip of identity B: K keypoints with local affine
Jacobians, relative motion against the first driving frame (scaled to A's face size), a dense motion field
blended by Gaussian heatmaps around the keypoints, backward warping with ``grid_sample``, and an
occlusion-aware fill where the source holds too little content (FOMM's generator inpaints there).

A real clip is filmed as a whole frame (sub-pixel camera shake, sensor noise, an upload's encoding) and cut by the
face crop (``filming``). A fake animates a source frame filmed, encoded and cut the same way but held still, under a
sub-pixel jitter of its own, and is the animator's output as it stands (a generator adds no camera noise; the
source's grain moves with the face): both go through as many bilinear resamplings, so the two differ in what
animation does to a frame, not in the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..keypoint_warp import warp_animate
from ..motion import normalize_relative_motion, to_numpy_image
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


DECODER_BOTTLENECK = 4
"""FOMM's generator decodes 256x256 frames from 64x64 feature maps: a quarter of the resolution."""
DETAIL_KEPT = (0.55, 0.8)
"""Share of the frame's fine detail that survives the bottleneck, drawn per frame (detail flickers)."""
_UP_KERNEL = torch.tensor([[0.05, 0.12, 0.04], [0.14, 0.30, 0.12], [0.06, 0.11, 0.06]])
"""A decoder conv's smoothing after nearest-neighbour upsampling: learnt kernels are never symmetric."""


def _up_block(features: torch.Tensor) -> torch.Tensor:
    """One decoder up block: nearest-neighbour upsampling by 2, then a 3x3 convolution, per channel."""
    features = F.interpolate(features, scale_factor=2, mode="nearest")
    kernel = (_UP_KERNEL / _UP_KERNEL.sum()).view(1, 1, 3, 3).expand(features.shape[1], 1, 3, 3)
    # channels_last: PyTorch's CPU kernel for a per-channel convolution in that layout gave the same values 9x
    # faster (8.5 against 77 ms for 16 frames of 256x256); the result goes back to the usual layout for what follows
    padded = F.pad(features, (1, 1, 1, 1), mode="replicate").contiguous(memory_format=torch.channels_last)
    return F.conv2d(padded, kernel, groups=features.shape[1]).contiguous()


def _grey_gradients(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    grey = frames.mean(1)
    return grey[:, 1:, :-1] - grey[:, :-1, :-1], grey[:, :-1, 1:] - grey[:, :-1, :-1]


def _mean_magnitude(d_y: torch.Tensor, d_x: torch.Tensor) -> torch.Tensor:
    return (d_y**2 + d_x**2).sqrt().mean((1, 2)).view(-1, 1, 1, 1)


def sharpness(frames: torch.Tensor) -> torch.Tensor:
    """Per frame (T, 1, 1, 1), the mean gradient magnitude of the grey image: global sharpness."""
    return _mean_magnitude(*_grey_gradients(frames))


def generator_resynthesis(frames: torch.Tensor, generator: torch.Generator, bottleneck: int = DECODER_BOTTLENECK,
                          detail_kept: tuple[float, float] = DETAIL_KEPT,
                          ghost_shifts: tuple[tuple[int, int], tuple[int, int]] = ((1, 2), (-2, -1)),
                          ) -> torch.Tensor:  # fmt: skip
    """What FOMM's occlusion-aware generator does to the frames it outputs (T, 3, H, W floats in [0, 1]).

    It never copies pixels: every output frame is decoded from 64x64 feature maps through upsampling blocks.
    So the coarse image comes back through the decoder's up blocks, only part of the fine texture survives
    (a share that changes from frame to frame: fine detail flickers), and the decoder re-invents the rest,
    sharp but not where it was: ghosted, doubled edges at a two-to-three pixel offset. The re-invented share is
    sized so that each frame keeps its overall sharpness (mean gradient magnitude), so that no global statistic
    gives a fake away; the difference is local structure at the scales a decoder works at, which compression
    does not erase the way it erases single-pixel patterns.

    The defaults are FOMM's decoder; ``bottleneck`` (a power of two: one up block per halving), ``detail_kept``
    and ``ghost_shifts`` (the offsets of the re-invented detail's two copies) describe another's."""
    features = F.avg_pool2d(frames, bottleneck)
    decoded = features
    for _ in range(bottleneck.bit_length() - 1):
        decoded = _up_block(decoded)
    coarse = F.interpolate(features.contiguous(memory_format=torch.channels_last), size=frames.shape[-2:],
                           mode="bilinear", align_corners=False)  # fmt: skip
    fine = frames - coarse.contiguous()  # (channels_last: the same values, twice as fast; see _up_block)
    low, high = detail_kept
    kept = low + (high - low) * torch.rand(len(frames), 1, 1, 1, generator=generator)
    output = decoded + kept * fine
    ahead, behind = ghost_shifts
    reinvented = torch.roll(fine, shifts=ahead, dims=(2, 3)) - torch.roll(fine, shifts=behind, dims=(2, 3))
    # sharpness grows with the re-invented share: find each frame's share by bisection. Gradients are linear, so the
    # squared gradient of output + share x reinvented is a quadratic in the share whose coefficients are computed
    # once: |o + s a|^2 = |o|^2 + s (2 o.a + s |a|^2), three passes over the frames a step instead of eight
    (output_y, output_x), (added_y, added_x) = _grey_gradients(output), _grey_gradients(reinvented)
    constant, quadratic = output_y**2 + output_x**2, added_y**2 + added_x**2
    linear = 2 * (output_y * added_y + output_x * added_x)
    wanted, lower, upper = sharpness(frames), torch.zeros_like(kept), torch.ones_like(kept)
    for _ in range(8):
        middle = (lower + upper) / 2
        share = middle.view(-1, 1, 1)
        magnitude = torch.addcmul(linear, quadratic, share).mul_(share).add_(constant).clamp_min_(0).sqrt_()
        too_soft = magnitude.mean((1, 2)).view(-1, 1, 1, 1) < wanted
        lower, upper = torch.where(too_soft, middle, lower), torch.where(too_soft, upper, middle)
    return output + (lower + upper) / 2 * reinvented


def camera_jitter(frames: int, generator: torch.Generator, size: int = 256) -> torch.Tensor:
    """Per-frame sub-pixel camera shake, (T, 2) in [-1, 1] units."""
    return (torch.rand(frames, 2, generator=generator) * 2 - 1) * JITTER_PIXELS * 2 / size


_NOISE_BANK: dict[tuple[int, int], np.ndarray] = {}


def sensor_noise(frames: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """Add the camera's sensor noise to uint8 frames (T, H, W, 3), fresh in every frame.

    Noise is drawn from a fixed bank of noise images at a random offset per frame: statistically the same as
    fresh Gaussian noise at a fraction of the cost, and still fixed by the clip's seed."""
    height, width = frames.shape[1:3]
    bank = _NOISE_BANK.get((height, width))
    if bank is None:  # keyed by both sides: a bank made for another shape would be cut wrong
        bank_generator = torch.Generator().manual_seed(height if height == width else height * 100_003 + width)
        bank = (torch.randn(8, 2 * height, 2 * width, 3, generator=bank_generator) * NOISE_STD * 255).round()
        bank = _NOISE_BANK.setdefault((height, width), bank.clamp(-127, 127).to(torch.int16).numpy())
    picks = torch.randint(0, 8, (len(frames),), generator=generator).tolist()
    offsets = torch.stack([torch.randint(0, height, (len(frames),), generator=generator),
                           torch.randint(0, width, (len(frames),), generator=generator)], 1).tolist()  # fmt: skip
    noisy = frames.astype(np.int16)
    for frame, pick, (dy, dx) in zip(noisy, picks, offsets, strict=True):
        frame += bank[pick, dy : dy + height, dx : dx + width]
    return np.clip(noisy, 0, 255).astype(np.uint8)


def to_uint8_frames(frames: torch.Tensor) -> np.ndarray:
    """``to_numpy_image`` a frame at a time: the same bytes, about 3 times faster on a whole clip, whose float copies
    would not stay in the cache."""
    return np.concatenate([to_numpy_image(frame) for frame in frames.split(1)])


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


@dataclass(frozen=True)
class Placement:
    """Where the renderer's scene lies in a source image: its coordinates ([-1, 1], FOMM's) are ``scale`` times the
    scene's plus ``offset``. The close-up ``render`` draws by default is the identity; a face crop of a whole frame
    (``filming.source_frame``) is not."""

    scale: float = 1.0
    offset: tuple[float, float] = (0.0, 0.0)

    def place(self, keypoints: torch.Tensor, jacobians: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scene keypoints (..., K, 2) and Jacobians (..., K, 2, 2) in the image's coordinates."""
        return keypoints * self.scale + torch.tensor(self.offset), jacobians * self.scale


CLOSE_UP = Placement()
"""The frame ``render`` draws by default: image coordinates are the scene's."""


def relative_keypoints(
    source_identity: Identity, source_state: FaceState, driving_identity: Identity, driving_state: FaceState,
    placement: Placement = CLOSE_UP,
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:  # fmt: skip
    """The source's keypoints and Jacobians (1, K, 2), (1, K, 2, 2) where ``placement`` puts them in the source image,
    and those to animate it with in each driving frame's place (T, K, 2), (T, K, 2, 2): relative motion from the
    first driving frame, scaled to the source (FOMM's movement-scale adaptation absorbs the placement's scale)."""
    kp_source, jac_source = placement.place(*geometry_keypoints(source_identity, source_state))
    kp_driving, jac_driving = geometry_keypoints(driving_identity, driving_state)
    kp_new, jac_new = normalize_relative_motion(
        kp_source.expand_as(kp_driving), kp_driving, kp_driving[:1].expand_as(kp_driving),
        jac_source.expand_as(jac_driving), jac_driving, jac_driving[:1].expand_as(jac_driving),
    )  # fmt: skip
    return (kp_source, jac_source), (kp_new, jac_new)


def animate(
    source_image: torch.Tensor,
    source_identity: Identity,
    source_state: FaceState,
    driving_identity: Identity,
    driving_state: FaceState,
    jitter: torch.Tensor,
    chunk: int = 16,
    placement: Placement = CLOSE_UP,
) -> torch.Tensor:
    """A fake clip: the source frame (1, 3, H, W) performing the driving clip's motion; ``placement`` says where the
    source's scene lies in that frame."""
    (kp_source, jac_source), (kp_new, jac_new) = relative_keypoints(
        source_identity, source_state, driving_identity, driving_state, placement
    )
    return warp_animate(source_image, kp_source, jac_source, kp_new, jac_new, KEYPOINT_STD, jitter, chunk)

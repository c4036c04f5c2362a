"""Motion math, written once: the mini's keypoint-warp animator, our FOMM and our TPSMM use it.

Conventions (as in FOMM, Siarohin et al. 2020): coordinates are (x, y) in [-1, 1], x to the right, y down;
keypoints are (B, K, 2); Jacobians (B, K, 2, 2) map a keypoint's local reference frame into the image.
Warping is backward: for every pixel z of the frame we make, the deformation says where to read the source.
Near keypoint k the deformation is first order, ``T_k(z) = kp_src_k + J_src_k J_drv_k^-1 (z - kp_drv_k)``.

The Thin-Plate Spline Motion Model (Zhao and Zhang 2022) replaces the first-order motions by thin-plate splines,
each fitted to a group of keypoints (``fit_tps``, ``tps_motions``): ``T(z) = A [z; 1] + sum_i w_i U(|z - p_i|^2)``
with ``U(r) = r log r`` of the squared distance, taking driving keypoints p_i to source keypoints.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import ConvexHull


def make_coordinate_grid(height: int, width: int, pixel_centers: bool = True, dtype=torch.float32) -> torch.Tensor:
    """(H, W, 2) grid of (x, y). With ``pixel_centers`` it matches ``grid_sample(align_corners=False)`` exactly,
    so the identity grid reproduces an image; without, it spans [-1, 1] inclusive as FOMM's code does."""
    if pixel_centers:
        xs = (2 * torch.arange(width, dtype=dtype) + 1) / width - 1
        ys = (2 * torch.arange(height, dtype=dtype) + 1) / height - 1
    else:
        xs = 2 * torch.arange(width, dtype=dtype) / (width - 1) - 1
        ys = 2 * torch.arange(height, dtype=dtype) / (height - 1) - 1
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)


def keypoint_heatmaps(keypoints: torch.Tensor, grid: torch.Tensor, variance: float | torch.Tensor) -> torch.Tensor:
    """Gaussian around each keypoint: (B, K, 2) -> (B, K, H, W). ``variance`` is a scalar or one per keypoint."""
    difference = grid[None, None] - keypoints[:, :, None, None, :]
    variance = torch.as_tensor(variance, dtype=grid.dtype)
    if variance.ndim == 1:
        variance = variance.view(1, -1, 1, 1)
    return torch.exp(-0.5 * (difference**2).sum(-1) / variance)


def sparse_motions(
    grid: torch.Tensor,
    kp_driving: torch.Tensor,
    kp_source: torch.Tensor,
    jacobian_driving: torch.Tensor | None = None,
    jacobian_source: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-keypoint backward motions, identity first: (B, K + 1, H, W, 2), each giving source coordinates."""
    batch, num_kp = kp_driving.shape[:2]
    relative = grid[None, None] - kp_driving[:, :, None, None, :]  # z - kp_drv
    if jacobian_driving is not None and jacobian_source is not None:
        transform = jacobian_source @ torch.linalg.inv(jacobian_driving)  # (B, K, 2, 2)
        relative = torch.einsum("bkij,bkhwj->bkhwi", transform, relative)
    motions = relative + kp_source[:, :, None, None, :]
    identity = grid[None, None].expand(batch, 1, *grid.shape)
    return torch.cat([identity, motions], dim=1)


def deform(motions: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Blend sparse motions (B, K + 1, H, W, 2) with weights (B, K + 1, H, W) that sum to one per pixel."""
    return (motions * weights[..., None]).sum(dim=1)


def blend_weights(heatmaps: torch.Tensor, background: float | torch.Tensor) -> torch.Tensor:
    """Normalised weights from keypoint heatmaps, with ``background`` weight for the identity motion."""
    background = torch.as_tensor(background, dtype=heatmaps.dtype).expand_as(heatmaps[:, :1])
    stacked = torch.cat([background, heatmaps], dim=1)
    return stacked / stacked.sum(dim=1, keepdim=True)


def warp(image: torch.Tensor, deformation: torch.Tensor, padding_mode: str = "border",
         align_corners: bool = False) -> torch.Tensor:  # fmt: skip
    """Backward warp (B, C, H, W) by a deformation (B, H', W', 2) of source coordinates. ``align_corners`` as
    ``grid_sample``'s, for both the resizing and the sampling: FOMM's convention is False, TPSMM's True."""
    if deformation.shape[1:3] != image.shape[2:]:
        # FOMM and TPSMM predict motion at a lower resolution and resize the field to the image.
        deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=image.shape[2:], mode="bilinear",
                                    align_corners=align_corners)  # fmt: skip
        deformation = deformation.permute(0, 2, 3, 1)
    return F.grid_sample(image, deformation, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)


TPS_REGULARIZATION = 0.01
"""What TPSMM adds to the diagonal of the thin-plate system, so near-coincident keypoints still give a solution."""


def tps_kernel(squared_distance: torch.Tensor) -> torch.Tensor:
    """The thin-plate radial basis of the squared distance, ``r log r`` (0 at 0), as TPSMM writes it."""
    return squared_distance * torch.log(squared_distance + 1e-9)


def fit_tps(control: torch.Tensor, target: torch.Tensor, regularization: float = TPS_REGULARIZATION,
            ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The thin-plate spline taking control points (..., N, 2) to targets (..., N, 2): its affine part
    (..., 2, 3) and radial weights (..., N, 2).

    Solves ``(L + regularization I) [w; a] = [target; 0]`` with ``L = [[U, P], [P^T, 0]]``, ``U_ij`` the kernel
    of the control points' squared distances and ``P`` their rows ``(x, y, 1)``; with regularization 0 the
    spline passes through every target. Always in float32 outside autocast: the system is small, and half
    precision solves it badly or not at all."""
    with torch.autocast(control.device.type, enabled=False):
        control, target = control.float(), target.float()
        count = control.shape[-2]
        kernel = tps_kernel((control[..., :, None, :] - control[..., None, :, :]).pow(2).sum(-1))
        affine_rows = torch.cat([control, torch.ones_like(control[..., :1])], dim=-1)  # (..., N, 3)
        corner = control.new_zeros(*control.shape[:-2], 3, 3)
        system = torch.cat([torch.cat([kernel, affine_rows], dim=-1),
                            torch.cat([affine_rows.transpose(-1, -2), corner], dim=-1)], dim=-2)  # fmt: skip
        system = system + regularization * torch.eye(count + 3, device=control.device)
        right = torch.cat([target, target.new_zeros(*target.shape[:-2], 3, 2)], dim=-2)
        solution = torch.linalg.solve(system, right)  # TPSMM inverts the system; the same to float rounding
    return solution[..., count:, :].transpose(-1, -2), solution[..., :count, :]


def tps_transform(grid: torch.Tensor, control: torch.Tensor, affine: torch.Tensor, weights: torch.Tensor,
                  ) -> torch.Tensor:  # fmt: skip
    """Thin-plate splines (control points (..., N, 2), ``fit_tps``'s affine (..., 2, 3) and weights (..., N, 2))
    evaluated on a grid (H, W, 2): (..., H, W, 2)."""
    with torch.autocast(grid.device.type, enabled=False):
        points = grid.float().reshape(-1, 2)  # (P, 2)
        linear = points @ affine[..., :2].float().transpose(-1, -2) + affine[..., None, :, 2].float()
        squared = (points[:, None, :] - control.float()[..., None, :, :]).pow(2).sum(-1)  # (..., P, N)
        out = linear + tps_kernel(squared) @ weights.float()
    return out.view(*control.shape[:-2], *grid.shape)


def tps_motions(grid: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor,
                points_per_transform: int = 5) -> torch.Tensor:  # fmt: skip
    """TPSMM's backward motions, identity first: keypoints (B, K * n, 2) in groups of ``points_per_transform``,
    one thin-plate spline per group taking the driving keypoints to the source's; (B, K + 1, H, W, 2) in float32,
    the analogue of ``sparse_motions``."""
    batch = kp_driving.shape[0]
    control = kp_driving.reshape(batch, -1, points_per_transform, 2)
    affine, weights = fit_tps(control, kp_source.reshape(batch, -1, points_per_transform, 2))
    motions = tps_transform(grid, control, affine, weights)
    identity = grid.float()[None, None].expand(batch, 1, *grid.shape)
    return torch.cat([identity, motions], dim=1)


def convex_hull_area(keypoints: torch.Tensor) -> torch.Tensor:
    """Area of the keypoints' convex hull, per batch item: (B, K, 2) -> (B,)."""
    points = keypoints.detach().cpu().double().numpy()
    return torch.tensor([ConvexHull(p).volume for p in points], dtype=keypoints.dtype)


def normalize_relative_motion(
    kp_source: torch.Tensor,
    kp_driving: torch.Tensor,
    kp_driving_initial: torch.Tensor,
    jacobian_source: torch.Tensor | None = None,
    jacobian_driving: torch.Tensor | None = None,
    jacobian_driving_initial: torch.Tensor | None = None,
    adapt_movement_scale: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Relative motion (FOMM's demo with ``relative`` and ``adapt_scale``): move the source keypoints by the
    driving keypoints' displacement from the first driving frame, scaled by the ratio of the faces' sizes
    (square root of the convex-hull areas), and compose the Jacobians the same way.

    Returns the keypoints (and Jacobians) to animate the source with, in the driving frame's place.
    """
    scale = torch.ones(kp_source.shape[0], dtype=kp_source.dtype)
    if adapt_movement_scale:
        scale = torch.sqrt(convex_hull_area(kp_source) / convex_hull_area(kp_driving_initial))
    keypoints = (kp_driving - kp_driving_initial) * scale.view(-1, 1, 1).to(kp_source) + kp_source
    jacobians = None
    if jacobian_source is not None and jacobian_driving is not None and jacobian_driving_initial is not None:
        jacobians = jacobian_driving @ torch.linalg.inv(jacobian_driving_initial) @ jacobian_source
    return keypoints, jacobians


def stretch_map(deformation: torch.Tensor) -> torch.Tensor:
    """|det| of the deformation's spatial derivative, (B, H, W, 2) -> (B, H, W), relative to the identity.

    Below 1 a small source area is spread over a larger output area: the source holds little content there
    (an opening mouth, the side of a turning head), which is where an occlusion-aware generator inpaints.
    """
    _, height, width, _ = deformation.shape
    d_dx = torch.gradient(deformation, dim=2)[0] * (width / 2)
    d_dy = torch.gradient(deformation, dim=1)[0] * (height / 2)
    return (d_dx[..., 0] * d_dy[..., 1] - d_dx[..., 1] * d_dy[..., 0]).abs()


def to_numpy_image(frames: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) floats in [0, 1] to (B, H, W, 3) uint8."""
    return (frames.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()

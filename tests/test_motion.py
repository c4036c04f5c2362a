"""The shared first-order motion math, against hand-computed cases."""

import math

import torch

from generation.motion import (
    blend_weights,
    deform,
    keypoint_heatmaps,
    make_coordinate_grid,
    normalize_relative_motion,
    sparse_motions,
    stretch_map,
    warp,
)


def _smooth_image(size=64):
    grid = make_coordinate_grid(size, size)
    x, y = grid[..., 0], grid[..., 1]
    return torch.stack([torch.sin(3 * x) * torch.cos(2 * y), torch.cos(4 * x + y), x * y])[None]


def _deformation(kp_driving, kp_source, jac_driving, jac_source, size=64, background=1e-3):
    grid = make_coordinate_grid(size, size)
    heatmaps = keypoint_heatmaps(kp_driving, grid, 0.1)
    motions = sparse_motions(grid, kp_driving, kp_source, jac_driving, jac_source)
    return deform(motions, blend_weights(heatmaps, background))


def test_pixel_centre_grid_is_the_identity_of_grid_sample():
    image = torch.rand(1, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    # Exact up to float rounding of the coordinate un-normalisation (a few 1e-7 of a pixel).
    assert torch.allclose(warp(image, make_coordinate_grid(17, 23)[None]), image, atol=1e-5)
    shifted = make_coordinate_grid(17, 23)[None] + torch.tensor([2 / 23, 0.0])  # one pixel to the right
    assert torch.allclose(warp(image, shifted)[..., :-1], image[..., 1:], atol=1e-5)


def test_identity_keypoints_give_the_identity_warp():
    kp = torch.tensor([[[-0.4, -0.2], [0.3, 0.1], [0.0, 0.5]]])
    jac = torch.tensor([[[1.2, 0.3], [-0.1, 0.9]]]).expand(1, 3, 2, 2)
    deformation = _deformation(kp, kp, jac, jac)
    assert torch.allclose(deformation, make_coordinate_grid(64, 64)[None], atol=1e-6)
    image = _smooth_image()
    assert torch.allclose(warp(image, deformation), image, atol=1e-5)


def test_affine_keypoint_motion_reproduces_the_affine_warp():
    angle = math.radians(12)
    affine = torch.tensor([[1.1 * math.cos(angle), -math.sin(angle)], [math.sin(angle), 0.9 * math.cos(angle)]])
    shift = torch.tensor([0.08, -0.05])
    kp_source = torch.tensor([[[-0.5, -0.4], [0.4, -0.3], [0.0, 0.0], [-0.3, 0.5], [0.5, 0.4]]])
    kp_driving = kp_source @ affine.T + shift  # the source moved by the affine map
    jac_source = torch.eye(2).expand(1, 5, 2, 2)
    jac_driving = affine.expand(1, 5, 2, 2)
    deformation = _deformation(kp_driving, kp_source, jac_driving, jac_source, background=0.0)
    grid = make_coordinate_grid(64, 64)
    expected_field = (grid - shift) @ torch.linalg.inv(affine).T  # backward: where each output pixel reads
    assert torch.allclose(deformation[0], expected_field, atol=1e-4)
    image = _smooth_image()
    assert (warp(image, deformation) - warp(image, expected_field[None])).abs().max() < 1e-3


def test_relative_motion_with_movement_scale_adaptation_by_hand():
    unit_square = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    kp_source = unit_square * 0.2  # area 0.04
    kp_driving_initial = unit_square * 0.4  # area 0.16: the driver's face is twice as large
    kp_driving = kp_driving_initial + torch.tensor([0.2, -0.1])
    jac_source = 3 * torch.eye(2).expand(1, 4, 2, 2)
    jac_driving_initial = torch.eye(2).expand(1, 4, 2, 2)
    jac_driving = 2 * torch.eye(2).expand(1, 4, 2, 2)
    keypoints, jacobians = normalize_relative_motion(
        kp_source, kp_driving, kp_driving_initial, jac_source, jac_driving, jac_driving_initial
    )
    assert torch.allclose(keypoints, kp_source + torch.tensor([0.1, -0.05]))  # displacement * sqrt(0.04 / 0.16)
    assert torch.allclose(jacobians, 6 * torch.eye(2).expand(1, 4, 2, 2))
    unscaled, _ = normalize_relative_motion(kp_source, kp_driving, kp_driving_initial, adapt_movement_scale=False)
    assert torch.allclose(unscaled, kp_source + torch.tensor([0.2, -0.1]))


def test_stretch_map_is_one_for_identity_and_the_determinant_for_a_scale():
    grid = make_coordinate_grid(32, 32)[None]
    assert torch.allclose(stretch_map(grid), torch.ones(1, 32, 32), atol=1e-5)
    assert torch.allclose(stretch_map(grid * 0.5), torch.full((1, 32, 32), 0.25), atol=1e-5)

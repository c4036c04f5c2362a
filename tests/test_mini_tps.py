"""The mini's second animator (``--animator tps``): the same plan as the keypoint warp, thin-plate-spline motion
that follows the driving keypoints, filled occlusions, faces MTCNN still finds, and TPSMM in the built rows."""

import csv
import hashlib
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from datasets import load_dataset

from dataset_script.frames import read_frames
from dataset_script.release import ManifestRow, read_manifest, write_manifest
from dataset_script.schema import ACTIONS
from generation.mini.actions import source_pose
from generation.mini.animate import relative_keypoints
from generation.mini.cast import identity_for, identity_names, real_trajectory
from generation.mini.face import render
from generation.mini.generate import MiniSize, generate, make_clip, plan_clips
from generation.mini.tps_animate import (
    control_points,
    dense_flow,
    inpaint,
    occlusion_masks,
    to_corner_convention,
    tps_animate,
    tps_warp,
)
from generation.motion import make_coordinate_grid, warp

TINY, SEED = MiniSize(identities=3, frames=4), 11


@pytest.fixture(scope="module")
def tps_mini(tmp_path_factory):
    """A tiny mini whose fakes the tps animator made (60 clips of 4 frames)."""
    return generate(tmp_path_factory.mktemp("tps") / "mini", TINY, seed=SEED, workers=2, progress=False,
                    animator="tps")  # fmt: skip


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # makes the TPS twin of the smoke mini (about 10 s)
def test_same_plan_as_the_keypoint_animator_same_reals_other_fakes(tps_mini, tmp_path, one_thread):
    manifest = read_manifest(tps_mini)
    plans = plan_clips(TINY, SEED)  # the keypoint animator's files, pairs and seeds (its manifest, test_mini)
    assert sorted(manifest) == sorted(plan.file for plan in plans)
    for plan in plans:
        row = manifest[plan.file]
        assert (row.label, row.action, row.source_id, row.driving_id, row.seed) == (
            plan.label, plan.action, plan.source_id, plan.driving_id, plan.seed)  # fmt: skip
        assert row.method == ("TPSMM" if plan.label == "fake" else "")
    # the keypoint animator's clips of one action: its reals are the same bytes, its fakes other ones
    sample = [plan for plan in plans if plan.action == "yaw"]
    assert Counter(plan.label for plan in sample) == {"real": 3, "fake": 3}
    for plan in sample:
        make_clip(plan, tmp_path, SEED, TINY.frames, animator="keypoint")
        same = _digest(tmp_path / plan.file) == _digest(tps_mini / plan.file)
        assert same == (plan.label == "real"), plan.file


@pytest.mark.slow  # makes the TPS twin of the smoke mini (about 10 s)
def test_the_same_seed_gives_byte_identical_tps_fakes(tps_mini, tmp_path, one_thread):
    fakes = [plan for plan in plan_clips(TINY, SEED) if plan.label == "fake"][:3]
    for plan in fakes:
        make_clip(plan, tmp_path, SEED, TINY.frames, animator="tps")
        assert _digest(tmp_path / plan.file) == _digest(tps_mini / plan.file)


def _driven(action: str, frames: int = 12):
    names = identity_names(4)
    source, driver = identity_for(names[0], 0), identity_for(names[2], 0)
    pose = source_pose(torch.Generator().manual_seed(1))
    motion = real_trajectory(names[2], action, 0, frames)
    return (source, pose, driver, motion), *relative_keypoints(source, pose, driver, motion)


@pytest.mark.parametrize("action", ["right_slope", "left_slope"])
def test_the_flow_takes_each_driving_keypoint_back_to_its_source_keypoint(action):
    _, (kp_source, jac_source), (kp_new, jac_new) = _driven(action)
    assert (kp_new - kp_source).norm(dim=-1).amax() * 128 > 15  # the head tilts: keypoints move 20 pixels
    flow = dense_flow(to_corner_convention(control_points(kp_source, jac_source), 256),
                      to_corner_convention(control_points(kp_new, jac_new), 256))  # fmt: skip
    at_targets = F.grid_sample(flow.permute(0, 3, 1, 2), to_corner_convention(kp_new, 256)[:, None],
                               align_corners=True)[:, :, 0].transpose(1, 2)  # fmt: skip
    error_pixels = (at_targets - to_corner_convention(kp_source, 256)).norm(dim=-1) * 255 / 2
    assert error_pixels.max() < 2 and error_pixels.mean() < 0.5


def test_a_warped_frame_carries_a_source_mark_to_the_driving_keypoint():
    _, (kp_source, jac_source), (kp_new, jac_new) = _driven("right_slope")
    size, point = 128, int((kp_new - kp_source).norm(dim=-1).amax(0).argmax())  # the keypoint that moves most
    grid = make_coordinate_grid(size, size)
    mark = torch.exp(-((grid - kp_source[0, point]) ** 2).sum(-1) / (2 * 0.03**2))  # a blob on the source keypoint
    source = mark.expand(1, 3, size, size).contiguous()
    warped, _, _ = tps_warp(source, to_corner_convention(control_points(kp_source, jac_source), size),
                            to_corner_convention(control_points(kp_new, jac_new), size))  # fmt: skip
    weights = warped[:, 0] / warped[:, 0].sum((1, 2), keepdim=True)
    centroid = (weights[..., None] * grid).sum((1, 2))
    moved = (kp_new[:, point] - kp_source[:, point]).norm(dim=-1).max() * size / 2
    assert moved > 8
    assert ((centroid - kp_new[:, point]).norm(dim=-1) * size / 2).max() < 1.5


def test_occluded_regions_are_filled_with_the_surroundings_not_left_black():
    size = 64
    checker = ((torch.arange(size)[:, None] // 2 + torch.arange(size)[None] // 2) % 2).float()
    source = torch.stack([0.3 + 0.4 * checker, 0.5 + 0.2 * checker, 0.6 - 0.2 * checker])[None]
    grid = make_coordinate_grid(16, 16, pixel_centers=False)
    flow = (grid + torch.tensor([0.8, 0.0]))[None]  # reads 0.8 to the right: the right of the frame was never seen
    masks = occlusion_masks(flow, size)
    full = F.interpolate(flow.permute(0, 3, 1, 2), size=(size, size), mode="bilinear", align_corners=True)
    warped = warp(source, full.permute(0, 2, 3, 1), padding_mode="zeros", align_corners=True)
    filled = inpaint(warped, masks)
    hidden, seen = filled[..., -size // 4 :], filled[..., : size // 4]
    assert warped[..., -size // 4 :].abs().max() == 0  # a hole: nothing in the source for these pixels
    assert masks[-1][..., -size // 4 :].max() < 0.05 and masks[-1][..., : size // 4].min() > 0.95
    assert hidden.min() > 0.15  # no black
    assert (hidden.mean((2, 3)) - source.mean((2, 3))).abs().max() < 0.06  # the visible colours
    assert (hidden.std((2, 3)) < 0.3 * seen.std((2, 3))).all()  # and no copied texture


@pytest.mark.slow  # makes the TPS twin of the smoke mini (about 10 s)
def test_tps_fakes_of_every_action_are_whole_faces_that_mtcnn_finds(tps_mini):
    from dataset_script.faces import FaceDetector

    manifest = read_manifest(tps_mini)
    fakes = [file for file, row in sorted(manifest.items()) if row.label == "fake"]
    assert {manifest[file].action for file in fakes} == set(ACTIONS)
    frames = torch.cat([read_frames(tps_mini / file, list(range(TINY.frames))) for file in fakes])
    assert frames.float().mean((1, 2, 3)).min() > 40  # no black frames
    faces = FaceDetector().detect(frames)
    assert sum(len(found) == 1 for found in faces) >= 0.99 * len(frames)


def test_an_open_mouth_clip_at_full_size_has_no_holes():
    (source, pose, driver, motion), _, _ = _driven("open_mouth", frames=8)
    generator = torch.Generator().manual_seed(0)
    video = tps_animate(render(source, pose), source, pose, driver, motion, torch.zeros(8, 2), generator)
    assert video.shape == (8, 3, 256, 256) and torch.isfinite(video).all()
    dark = (video.amax(1) < 0.05).float().mean((1, 2))  # per frame, the share of black pixels
    assert dark.max() < 0.002


@pytest.mark.slow  # makes the TPS twin of the smoke mini (about 10 s)
def test_built_rows_name_tpsmm_for_fakes(tps_mini, tmp_path):
    from dataset_script.build import BuildConfig, build

    repo = build(BuildConfig(source=tps_mini, output_dir=tmp_path / "tps_repo", qualities=("raw",), progress=False))
    rows = load_dataset(str(repo), "raw", split="train")
    methods = Counter((label, method) for label, method in zip(rows["label"], rows["method"], strict=True))
    assert set(methods) == {(0, None), (1, "TPSMM")}
    with (repo / "splits.csv").open(newline="") as handle:
        written = Counter((record["label"], record["method"]) for record in csv.DictReader(handle))
    assert written == {("real", ""): 30, ("fake", "TPSMM"): 30}


def test_a_folder_made_by_one_animator_is_not_finished_by_the_other(tmp_path):
    write_manifest(tmp_path, [ManifestRow("yaw/00000.mp4", "fake", "yaw", "person000", "person001", 1)])
    with pytest.raises(ValueError, match="keypoint animator.*another --out folder"):
        generate(tmp_path, TINY, seed=SEED, workers=1, progress=False, animator="tps")
    with pytest.raises(ValueError, match="unknown mini animator 'warp'"):
        generate(tmp_path, TINY, seed=SEED, workers=1, progress=False, animator="warp")


def test_the_command_line_keeps_the_animator_to_the_mini(tmp_path, capsys):
    from generation.mini.__main__ import main

    with pytest.raises(SystemExit):
        main(["--output_dir", str(tmp_path), "--layout", "faceforensics", "--animator", "tps"])
    assert "--animator is for --layout dmplus" in capsys.readouterr().err

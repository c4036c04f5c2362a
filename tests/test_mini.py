"""The synthetic mini: renderer, actions, animation, the generator's plan, and the command end to end."""

import dataclasses
import hashlib
import json
from collections import Counter

import av
import numpy as np
import pytest
import torch
from datasets import get_dataset_config_names, load_dataset

from dataset_script.face_crops import FACE_CROP_FILE
from dataset_script.faces import FaceCropRecord, FaceDetector, clip_face_box, crop_clip
from dataset_script.frames import VideoFrames, evenly_spaced_indices, read_frames
from dataset_script.release import FULL_FRAMES_FOLDER, read_manifest
from dataset_script.schema import ACTION_TO_RELEASE_FOLDER, ACTIONS, EVAL_FRAMES_PER_VIDEO
from dataset_script.splits import identity_split
from generation.keypoint_warp import blur, warp_animate
from generation.mini.actions import action_trajectory
from generation.mini.animate import (
    NOISE_STD,
    animate,
    generator_resynthesis,
    geometry_keypoints,
    sensor_noise,
    sharpness,
)
from generation.mini.cast import filmed_person
from generation.mini.face import FaceState, Identity, render
from generation.mini.filming import FRAME_HEIGHT, FRAME_WIDTH, MINI_FACE_CROP, released_crop, source_frame
from generation.mini.generate import MiniSize, generate, make_clip, plan_clips


@pytest.fixture(scope="module")
def person():
    return Identity.sample("person", torch.Generator().manual_seed(3))


def _state(**values):
    state = FaceState.neutral(1)
    for name, value in values.items():
        getattr(state, name)[:] = value
    return state


def _whites(image, rows, columns=(0, 256)):
    """Pixels of eye white or teeth: bright in every channel (skin is never bright in blue)."""
    return int((image[0, :, rows[0] : rows[1], columns[0] : columns[1]].min(0).values > 0.6).sum())


def _dark(image, rows):
    return int((image[0, :, rows[0] : rows[1]].mean(0) < 0.15).sum())


EYES, MOUTH = (80, 135), (135, 200)


def test_eyelids_cover_the_eyes(person):
    open_eyes, closed_eyes = render(person, _state(eyelid=0.0)), render(person, _state(eyelid=1.0))
    assert _whites(open_eyes, EYES) > 50
    assert _whites(closed_eyes, EYES) < _whites(open_eyes, EYES) / 10


def test_open_mouth_shows_its_inside(person):
    closed, opened = render(person, _state(mouth_open=0.0)), render(person, _state(mouth_open=1.0))
    assert _dark(opened, MOUTH) > _dark(closed, MOUTH) + 100  # the cavity
    assert _whites(opened, MOUTH) > _whites(closed, MOUTH) + 5  # the teeth


def test_yaw_hides_the_far_side(person):
    frontal, turned = render(person, _state()), render(person, _state(yaw=35.0))
    halves = lambda image: (_whites(image, EYES, (0, 128)), _whites(image, EYES, (128, 256)))  # noqa: E731
    assert min(halves(frontal)) > 20  # both eyes seen
    assert min(halves(turned)) < max(halves(turned)) / 4  # the far eye is (mostly) hidden
    shading_change = (frontal - turned).abs().mean()
    assert shading_change > 0.02


def test_every_action_moves_what_it_should():
    generator = torch.Generator().manual_seed(0)
    peak = {action: action_trajectory(action, 48, generator) for action in ACTIONS}
    assert peak["blink"].eyelid.max() > 0.8
    assert peak["open_mouth"].mouth_open.max() > 0.5
    assert peak["yaw"].yaw.abs().max() > 18
    assert peak["nod"].pitch.max() > 10
    assert peak["right_slope"].roll.max() > 10 and peak["left_slope"].roll.min() < -10
    assert peak["look_up"].pitch.min() < -10
    assert peak["smile"].smile.max() > 0.6
    assert peak["surprise"].brow_raise.max() > 0.6 and peak["surprise"].eyelid.min() < -0.3
    assert peak["embarrassment"].pitch.max() > 8
    with pytest.raises(ValueError, match="unknown action"):
        action_trajectory("wink", 10, generator)


def test_timing_and_amplitude_vary_between_clips():
    first = action_trajectory("yaw", 48, torch.Generator().manual_seed(1)).yaw
    second = action_trajectory("yaw", 48, torch.Generator().manual_seed(2)).yaw
    assert first.abs().argmax() != second.abs().argmax() or first.abs().max() != second.abs().max()


def test_animating_with_the_sources_own_still_motion_reproduces_the_source(person):
    pose = _state(yaw=3.0)
    source = render(person, pose)
    still = FaceState(**{name: value.expand(6) for name, value in vars(pose).items()})
    video = animate(source, person, pose, person, still, jitter=torch.zeros(6, 2))
    assert (video - source).abs().mean() < 2e-3


def _fine_detail(frames: torch.Tensor) -> torch.Tensor:
    return frames - torch.nn.functional.interpolate(
        torch.nn.functional.avg_pool2d(frames, 4), size=frames.shape[-2:], mode="bilinear", align_corners=False
    )


def test_the_generator_keeps_the_coarse_image_and_sharpness_but_moves_fine_detail(person):
    frames = render(person, _state(yaw=5.0)).repeat(3, 1, 1, 1)
    made = generator_resynthesis(frames, torch.Generator().manual_seed(0))
    coarse = torch.nn.functional.avg_pool2d
    assert (coarse(made, 8) - coarse(frames, 8)).abs().mean() < 0.01  # the decoder gives the image back
    assert torch.allclose(sharpness(made), sharpness(frames), rtol=0.02)  # as sharp overall: no global tell
    fine, made_fine = _fine_detail(frames), _fine_detail(made)
    stayed = (fine * made_fine).sum((1, 2, 3)) / fine.pow(2).sum((1, 2, 3))  # how much of it is where it was
    assert (stayed < 0.85).all() and (stayed > 0.4).all()
    shifted = torch.roll(fine, shifts=(1, 2), dims=(2, 3))
    ghost = (shifted * made_fine).sum((1, 2, 3)) / (shifted.flatten(1).norm(dim=1) * made_fine.flatten(1).norm(dim=1))
    assert (ghost > 0.25).all()  # the rest is re-invented a few pixels off: ghosted edges
    assert (made[0] - made[1]).abs().max() > 0.01  # the same input frame twice: fine detail flickers


def test_a_disoccluded_region_is_filled_with_a_blurred_guess():
    size = 64
    checker = ((torch.arange(size)[:, None] // 2 + torch.arange(size)[None] // 2) % 2).float()
    source = (0.3 + 0.4 * checker).expand(1, 3, size, size).contiguous()
    keypoint, jacobian = torch.zeros(1, 1, 2), torch.eye(2).view(1, 1, 2, 2)
    moved = keypoint + torch.tensor([0.8, 0.0])  # the head moves right: the left of the frame was never seen
    frames = warp_animate(source, keypoint, jacobian, moved, jacobian, torch.tensor([1.0]))
    unseen, seen = frames[..., : size // 4], frames[..., size // 2 :]
    assert unseen.std() < 0.3 * seen.std()  # no copied texture where the source had none
    assert (unseen.mean() - source.mean()).abs() < 0.05  # but filled with the surroundings' colour, not a hole
    assert torch.allclose(unseen, blur(frames)[..., : size // 4], atol=0.05)


def test_sensor_noise_covers_frames_of_any_shape():
    generator = torch.Generator().manual_seed(0)
    for height, width in ((32, 32), (32, 64), (48, 32)):
        flat = np.full((2, height, width, 3), 128, dtype=np.uint8)
        noisy = sensor_noise(flat, generator).astype(float) - 128
        assert noisy.shape == flat.shape
        for part in (noisy[:, :, : width // 2], noisy[:, :, width // 2 :]):  # every part of the frame is noisy
            assert abs(part.std() - NOISE_STD * 255) < 0.5


def test_geometry_keypoints_follow_the_head(person):
    frontal, _ = geometry_keypoints(person, _state())
    turned, jacobians = geometry_keypoints(person, _state(yaw=30.0))
    assert torch.allclose(frontal[0, 1, 0], -frontal[0, 2, 0] + 2 * frontal[0, 0, 0], atol=1e-5)  # eyes symmetric
    assert (turned[0, 5, 0] - frontal[0, 5, 0]).abs() > 0.1  # the nose tip swings with yaw
    assert jacobians.shape == (1, 10, 2, 2)


def test_plan_balances_identities_and_keeps_drivers_inside_their_split():
    size = MiniSize(identities=20, frames=48)
    plans = plan_clips(size, seed=0)
    reals = [p for p in plans if p.label == "real"]
    fakes = [p for p in plans if p.label == "fake"]
    assert len(reals) == 200 and Counter(p.action for p in fakes) == {action: 20 for action in ACTIONS}
    assert Counter(p.source_id for p in reals) == Counter(p.source_id for p in fakes)  # identity says nothing
    splits = identity_split({p.source_id for p in plans})
    assert all(splits[p.source_id] == splits[p.driving_id] and p.source_id != p.driving_id for p in fakes)
    drivers = Counter((p.driving_id, p.action) for p in fakes)
    assert max(drivers.values()) == 1  # each real clip drives one fake
    assert len({p.file for p in plans}) == len(plans)


def test_each_clip_films_its_person_in_a_room_and_light_of_its_own():
    plans = plan_clips(MiniSize(identities=7, frames=16), seed=0)
    person = "person002"
    clips = [p for p in plans if p.source_id == person]  # its real clips and the fakes it is the source of
    filmed = [filmed_person(person, 0, plan.seed) for plan in clips]
    assert len({look.background for look in filmed}) == len(clips) == 20  # a wall per video...
    assert len({look.light for look in filmed}) == len({look.shirt for look in filmed}) == len(clips)
    face = [dataclasses.replace(look, background=None, shirt=None, light=None) for look in filmed]
    assert all(look == face[0] for look in face)  # ...and the same face in every one
    assert filmed_person(person, 0, clips[0].seed) == filmed[0]  # fixed by the clip's seed


def test_a_persons_videos_show_different_walls(smoke_mini):
    # in the made videos, real and fake alike: the wall in the top-left corner changes from clip to clip
    manifest = read_manifest(smoke_mini)
    for label in ("real", "fake"):
        files = [file for file, row in manifest.items() if row.label == label and row.source_id == "person001"]
        corners = torch.stack([read_frames(smoke_mini / file, [0])[0, :, :16, :16].float().mean() for file in files])
        assert len(files) == 10 and corners.std() > 10, (label, corners)  # grey levels of 255


def _digest(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*.mp4")}


@pytest.mark.slow  # makes a mini twice (about 15 s)
def test_same_seed_gives_byte_identical_videos(tmp_path):
    tiny = MiniSize(identities=3, frames=4)
    first = generate(tmp_path / "a", tiny, seed=5, workers=1, progress=False)
    second = generate(tmp_path / "b", tiny, seed=5, workers=2, progress=False)
    assert _digest(first) == _digest(second) and len(_digest(first)) == 60 + 30  # the clips, the reals' originals
    for name in ("manifest.csv", FACE_CROP_FILE):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    plans = plan_clips(tiny, seed=6)
    for label in ("real", "fake"):  # another seed, other videos (a real clip and its original, a fake)
        make_clip(next(plan for plan in plans if plan.label == label), tmp_path / "c", seed=6, frames=tiny.frames)
        assert _digest(tmp_path / "c").items().isdisjoint(_digest(first).items())


def test_the_spaces_crop_of_an_original_is_the_released_crop(tmp_path, one_thread):
    # The Space cuts an uploaded whole-frame original with clip_face_box on its 32 evenly spaced frames and crop_clip;
    # the generator cut the released clip from the same original with released_crop, its own path (one thread: as
    # its workers, so MTCNN finds the very box they found). 40 frames, so the 32 are a true subset of the clip.
    plan = next(plan for plan in plan_clips(MiniSize(identities=7, frames=40), seed=2) if plan.label == "real")
    make_clip(plan, tmp_path, seed=2, frames=40)
    original = tmp_path / FULL_FRAMES_FOLDER / plan.file
    video = VideoFrames(original)
    spread = evenly_spaced_indices(video.num_frames, EVAL_FRAMES_PER_VIDEO)
    assert video.num_frames == 40 and len(spread) == 32
    frames = video.read(spread)
    detector = FaceDetector()
    uploaded = crop_clip(frames, clip_face_box(detector, frames), MINI_FACE_CROP)
    assert torch.equal(uploaded, released_crop(original, MINI_FACE_CROP, detector)[spread])  # bit for bit
    released = read_frames(tmp_path / plan.file, spread).float()
    grey_levels = (released - uploaded.float()).abs().mean((1, 2, 3))
    assert grey_levels.max() < 3, grey_levels  # the release's own encoding (x264 at CRF 12) is all that differs


def test_full_frames_hold_the_original_of_every_released_real_clip(smoke_mini):
    manifest, folder = read_manifest(smoke_mini), smoke_mini / FULL_FRAMES_FOLDER
    originals = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    assert originals == {file for file, row in manifest.items() if row.label == "real"}  # one to one, same paths
    first = folder / min(originals)
    with av.open(str(first)) as container:  # as an upload would be
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (stream.width, stream.height) == (FRAME_WIDTH, FRAME_HEIGHT)
    # the face sits at its own place and size in each clip's frame, well inside it
    boxes = np.array([face[0].box for face in FaceDetector().detect(torch.cat(
        [read_frames(folder / name, [0]) for name in sorted(originals)[:8]]))])  # fmt: skip
    centres, sides = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2] - boxes[:, 0]
    assert centres.std(0).min() > 4 and sides.std() > 3, (centres, sides)
    inside = (boxes[:, :2] > 40).all(1) & (boxes[:, 2] < FRAME_WIDTH - 40) & (boxes[:, 3] < FRAME_HEIGHT - 40)
    assert inside.all(), boxes


def test_the_face_crop_record_is_written_beside_the_release(smoke_mini):
    record = FaceCropRecord.from_dict(json.loads((smoke_mini / FACE_CROP_FILE).read_text()), where=FACE_CROP_FILE)
    assert record == MINI_FACE_CROP


def test_a_fake_sources_keypoints_lie_on_its_face_in_the_crop():
    # the source frame is a crop of a whole frame: its keypoints move from the scene into the crop's coordinates
    person = filmed_person("person001", 0, 7)
    source = source_frame(person, seed=7, frames=16)
    face = FaceDetector().detect((source.image * 255).round().to(torch.uint8))[0][0]
    keypoints, _ = source.placement.place(*geometry_keypoints(person, source.state))
    pixels = ((keypoints[0] + 1) * source.image.shape[-1] / 2).numpy()
    eyes, landmark_eyes = pixels[1:3][np.argsort(pixels[1:3, 0])], face.landmarks[:2][np.argsort(face.landmarks[:2, 0])]
    assert np.abs(eyes - landmark_eyes).max() < 6, (eyes, landmark_eyes)
    assert np.abs(pixels[5] - face.landmarks[2]).max() < 12, (pixels[5], face.landmarks[2])  # the nose tip


def test_smoke_mini_is_in_the_release_layout(smoke_mini):
    # the session's smoke mini (conftest), made by the command's main: `python -m generation.mini --size smoke`
    for action in ACTIONS:
        assert len(list((smoke_mini / ACTION_TO_RELEASE_FOLDER[action]).glob("*.mp4"))) >= 7
    assert len(list((smoke_mini / "original").glob("*.mp4"))) >= 70
    manifest = read_manifest(smoke_mini)
    assert len(manifest) == 140 and {row.label for row in manifest.values()} == {"real", "fake"}
    frames = read_frames(smoke_mini / next(iter(manifest)), list(range(16)))
    assert frames.shape == (16, 3, 256, 256)
    assert (smoke_mini / "contact_sheet.png").stat().st_size > 10_000


def test_smoke_mini_builds_with_every_split_of_every_config_non_empty(smoke_mini_repo):
    # the session's build of the smoke mini (conftest), raw only: the c23 and c40 configurations hold the same rows
    # (test_build checks all 33 on a release)
    out = smoke_mini_repo
    names = get_dataset_config_names(str(out))
    assert len(names) == 11
    for name in names:
        dataset = load_dataset(str(out), name)
        assert set(dataset) == {"train", "validation", "test", "identity_train", "identity_validation", "identity_test"}
        assert all(len(rows) > 0 for rows in dataset.values()), name
    raw = load_dataset(str(out), "raw")
    train_people = set(raw["identity_train"]["source_id"]) | set(raw["identity_train"]["driving_id"]) - {None}
    test_people = set(raw["identity_test"]["source_id"]) | set(raw["identity_test"]["driving_id"]) - {None}
    assert train_people and test_people and not train_people & test_people


def test_camera_shake_is_one_bilinear_resampling_like_warp():
    from generation.mini.animate import camera_jitter, film
    from generation.motion import make_coordinate_grid, warp

    frames = torch.rand(4, 3, 40, 40, generator=torch.Generator().manual_seed(0))
    jitter = camera_jitter(4, torch.Generator().manual_seed(1), size=40)
    expected = warp(frames, make_coordinate_grid(40, 40)[None] + jitter[:, None, None, :])
    assert torch.allclose(film(frames, jitter), expected, atol=1e-5)

"""Our batched MTCNN against facenet-pytorch's on the same frames: mini face crops, whole 1280x720 frames with faces
in a textured scene, frames without a face and batches that mix them; and its exact parts (area resampling from a
summed-area table, 2x2 pooling, suppression by the smaller box) against the operations they replace."""

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dataset_script.faces import FaceDetector
from dataset_script.mtcnn import MTCNN, Candidates, max_pool_2x2, nms_by_smaller_area
from dataset_script.parts_in_threads import PartsInThreads
from dataset_script.summed_area import SummedAreaTable

facenet_pytorch = pytest.importorskip("facenet_pytorch")

BOX_TOLERANCE, LANDMARK_TOLERANCE, PROBABILITY_TOLERANCE = 0.5, 1.0, 1e-3
"""Pixels, pixels, probability: how far ours may be from facenet-pytorch's (measured: about 1e-4, 1e-4, 1e-7)."""


@pytest.fixture(scope="module")
def ours() -> MTCNN:
    return MTCNN()


@pytest.fixture(scope="module")
def facenet():
    return facenet_pytorch.MTCNN(keep_all=True, post_process=False)


@pytest.fixture(scope="module")
def mini_crops(tmp_path_factory) -> torch.Tensor:
    """Six 256x256 frames of a mini face turning its head, through H.264 as the Space receives them."""
    from dataset_script.frames import VideoFrames
    from generation.mini.cast import identity_for
    from generation.mini.face import FaceState, render
    from generation.video import write_video

    state = FaceState.neutral(6)
    state.yaw, state.pitch = torch.linspace(-20, 20, 6), torch.linspace(-6, 6, 6)
    faces = (render(identity_for("mtcnn-test", 0), state, size=256) * 255).round().byte()
    path = tmp_path_factory.mktemp("mtcnn") / "crops.mp4"
    write_video(faces.permute(0, 2, 3, 1).numpy(), path, crf=23)
    return VideoFrames(path).read(list(range(6)))


def textured_scene(count: int, height: int = 720, width: int = 1280, seed: int = 0) -> torch.Tensor:
    """uint8 (count, 3, height, width) of smooth random texture: thousands of P-Net candidates, as a room has."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(40, 220, (count, 3, height // 16, width // 16), generator=generator).float()
    return F.interpolate(coarse, size=(height, width), mode="bicubic").clamp(0, 255).round().byte()


@pytest.fixture(scope="module")
def whole_frames(mini_crops) -> torch.Tensor:
    """Three 1280x720 frames of four faces: a large one, a small one, and two cut by the frame's top and right edges
    (their boxes leave the frame, where facenet-pytorch clips its crops)."""
    frames = textured_scene(3)
    large = F.interpolate(mini_crops[:3].float(), size=(300, 300), mode="area").round().byte()
    small = F.interpolate(mini_crops[3:].float(), size=(90, 90), mode="area").round().byte()
    frames[:, :, 150:450, 200:500] = large
    frames[:, :, 400:490, 700:790] = small
    frames[:, :, :250, 900:1200] = large[:, :, 50:]
    frames[:, :, 300:600, 1010:] = large[:, :, :, :270]
    return frames


def assert_agrees(ours_found, facenet_found) -> None:
    """Per frame: the same number of faces, in the same order (largest first), within the tolerances."""
    boxes, probabilities, landmarks = facenet_found
    assert len(ours_found) == len(boxes)
    for index, found in enumerate(ours_found):
        if boxes[index] is None:
            assert len(found.boxes) == 0, f"frame {index}: facenet-pytorch finds no face, ours {len(found.boxes)}"
            continue
        assert found.boxes.shape == boxes[index].shape, f"frame {index}: {found.boxes} against {boxes[index]}"
        np.testing.assert_allclose(found.boxes, boxes[index].astype(np.float32), rtol=0, atol=BOX_TOLERANCE)
        np.testing.assert_allclose(found.landmarks, landmarks[index].astype(np.float32), rtol=0,
                                   atol=LANDMARK_TOLERANCE)  # fmt: skip
        np.testing.assert_allclose(found.probabilities, probabilities[index].astype(np.float32), rtol=0,
                                   atol=PROBABILITY_TOLERANCE)  # fmt: skip


def facenet_detect(facenet, frames: torch.Tensor):
    return facenet.detect(frames.permute(0, 2, 3, 1).numpy(), landmarks=True)


def test_boxes_and_landmarks_agree_with_facenet_on_mini_crops(ours, facenet, mini_crops):
    found = ours.detect(mini_crops)
    assert all(len(frame.boxes) == 1 for frame in found)  # one face a frame, found in every one
    assert_agrees(found, facenet_detect(facenet, mini_crops))


def test_boxes_and_landmarks_agree_with_facenet_on_whole_frames(ours, facenet, whole_frames):
    found = ours.detect(whole_frames)
    assert [len(frame.boxes) for frame in found] == [4, 4, 4]
    assert_agrees(found, facenet_detect(facenet, whole_frames))


def test_frames_without_a_face_give_no_faces(ours, facenet):
    frames = torch.cat([torch.full((1, 3, 240, 320), 128, dtype=torch.uint8), textured_scene(2, 240, 320, seed=1)])
    found = ours.detect(frames)
    assert [len(frame.boxes) for frame in found] == [0, 0, 0]
    assert all(frame.landmarks.shape == (0, 5, 2) for frame in found)
    assert_agrees(found, facenet_detect(facenet, frames))


def test_a_batch_of_mixed_frames_answers_as_each_frame_alone(ours, facenet, mini_crops, whole_frames):
    small = F.interpolate(whole_frames.float(), size=(256, 455), mode="area").round().byte()[:, :, :, :256]
    frames = torch.cat([mini_crops[:2], textured_scene(1, 256, 256, seed=2), small[:2]])
    found = ours.detect(frames)
    assert [len(frame.boxes) > 0 for frame in found] == [True, True, False, True, True]
    assert_agrees(found, facenet_detect(facenet, frames))
    for index, frame in enumerate(frames):
        alone = ours.detect(frame[None])[0]
        np.testing.assert_allclose(alone.boxes, found[index].boxes, atol=1e-3)
        np.testing.assert_allclose(alone.landmarks, found[index].landmarks, atol=1e-3)


def test_several_torch_threads_give_the_same_faces(ours, mini_crops):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = ours.detect(mini_crops)
        torch.set_num_threads(2)
        in_parts = ours.detect(mini_crops)
    finally:
        torch.set_num_threads(threads)
    for first, second in zip(alone, in_parts, strict=True):
        np.testing.assert_allclose(first.boxes, second.boxes, atol=1e-3)


def test_parts_run_in_order_on_threads_of_one_torch_thread_and_leave_the_callers_count():
    parts, threads = PartsInThreads(torch.device("cpu")), torch.get_num_threads()

    def seen(item: int) -> tuple:
        return item, torch.get_num_threads(), threading.current_thread().name, torch.is_inference_mode_enabled()

    try:
        torch.set_num_threads(2)
        answers = parts.map(seen, range(6))
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)  # in turn, on the caller's thread
        caller = threading.current_thread().name
        assert parts.map(seen, range(2)) == [(0, 1, caller, False), (1, 1, caller, False)]
    finally:
        torch.set_num_threads(threads)
    assert [answer[0] for answer in answers] == list(range(6))
    assert all(count == 1 and name.startswith("torch-part") and inference for _, count, name, inference in answers)


def test_the_face_detector_answers_alike_with_either_implementation(mini_crops):
    batched = FaceDetector().detect(mini_crops)
    facenet = FaceDetector(implementation="facenet").detect(mini_crops)
    for ours_faces, their_faces in zip(batched, facenet, strict=True):
        assert len(ours_faces) == len(their_faces) == 1
        np.testing.assert_allclose(ours_faces[0].box, their_faces[0].box, atol=BOX_TOLERANCE)
        np.testing.assert_allclose(ours_faces[0].landmarks, their_faces[0].landmarks, atol=LANDMARK_TOLERANCE)
    with pytest.raises(ValueError, match="choose 'batched' or 'facenet'"):
        FaceDetector(implementation="dlib")


def test_area_resampling_from_the_table_is_interpolate_to_the_bit():
    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (3, 3, 97, 131), dtype=torch.uint8, generator=generator)
    table = SummedAreaTable(3, 97, 131)
    table.fill(0, frames[:2])
    table.fill(2, frames[2:])
    for height, width in [(59, 79), (12, 17), (97, 131), (150, 40)]:
        expected = F.interpolate(frames[1:3].float(), size=(height, width), mode="area")
        assert torch.equal(table.resized(1, 3, height, width), expected)
    spans = torch.tensor([[0, 0, 131, 97], [10, 5, 40, 60], [100, 80, 131, 97], [7, 9, 8, 10], [3, 2, 90, 20]])
    owners = torch.tensor([0, 2, 1, 0, 2])
    for size in (24, 48):
        crops = table.boxes_resized(owners, spans, size)
        for crop, owner, (x0, y0, x1, y1) in zip(crops, owners, spans.tolist(), strict=True):
            region = frames[owner, :, y0:y1, x0:x1].float()[None]
            assert torch.equal(crop[None], F.interpolate(region, size=(size, size), mode="area"))


@pytest.mark.parametrize("shape", [(2, 10, 7, 9), (2, 10, 8, 8), (1, 4, 1, 1), (3, 5, 6, 11)])
def test_the_2x2_pooling_is_max_pool_with_ceil_mode(shape):
    x = torch.randn(shape)
    for layout in (torch.contiguous_format, torch.channels_last):
        x = x.contiguous(memory_format=layout)
        assert torch.equal(max_pool_2x2(x), F.max_pool2d(x, 2, 2, ceil_mode=True))


def test_suppression_by_the_smaller_box_keeps_what_facenet_keeps():
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy

    generator = torch.Generator().manual_seed(3)
    corners = torch.rand(60, 2, generator=generator) * 200
    boxes = torch.cat([corners, corners + 10 + torch.rand(60, 2, generator=generator) * 60], dim=1)
    scores, frames = torch.rand(60, generator=generator), torch.randint(0, 3, (60,), generator=generator)
    kept = nms_by_smaller_area(Candidates(boxes, scores, frames), 0.7)
    expected = batched_nms_numpy(boxes, scores, frames, 0.7, "Min")
    assert sorted(kept.tolist()) == sorted(expected.tolist())

"""Face tubes, frontal-frame choice and crops, on hand-made detections (the Space tests run MTCNN on mini clips)."""

import json

import numpy as np
import pytest
import torch

from dataset_script.faces import (
    Face,
    FaceCropRecord,
    FaceError,
    crop_clip,
    crop_face,
    detect_at_key_frames,
    follow_face,
    looks_like_crop,
    main_face,
    measured_crop_record,
    most_frontal,
    square_box,
    tube_box,
)

FRONTAL = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], dtype=np.float32)


def face(x0, y0, side, landmarks=FRONTAL, probability=0.99):
    return Face((x0, y0, x0 + side, y0 + side), probability, landmarks + np.array([x0, y0], dtype=np.float32))


def test_the_tube_follows_the_moving_face_and_ignores_a_passer_by():
    detections = [
        [],
        [face(10, 10, 100)],
        [face(15, 12, 100), face(300, 10, 40)],  # someone small far away
        [face(300, 10, 40)],  # the face is lost in this frame
        [face(20, 14, 100)],
    ]
    tube = follow_face(detections)
    assert tube[0] is None and tube[3] is None
    assert [f.box[0] for f in tube if f is not None] == [10, 15, 20]
    assert tube_box(tube) == (10.0, 10.0, 120.0, 114.0)


def test_clear_errors_for_no_face_and_no_main_face():
    with pytest.raises(FaceError, match="clip.mp4: no face found in any of its 3 frames"):
        follow_face([[], [], []], name="clip.mp4")
    with pytest.raises(FaceError, match="no clear main one in frame 0; crop the video to one person"):
        follow_face([[face(0, 0, 100), face(200, 0, 95)]])
    assert main_face([face(0, 0, 100), face(200, 0, 40)]).box[0] == 0  # a dominant face is the main one


def test_the_most_frontal_frame_has_the_most_symmetric_landmarks():
    turned = FRONTAL.copy()
    turned[2, 0] += 12  # the nose moves towards one eye as the head turns
    slightly = FRONTAL.copy()
    slightly[2, 0] += 3
    tube = [face(0, 0, 100, turned), None, face(0, 0, 100, FRONTAL), face(0, 0, 100, slightly)]
    assert most_frontal(tube) == 2


def test_a_crop_past_the_frame_edge_is_padded_and_square():
    frame = torch.randint(0, 255, (3, 120, 160), dtype=torch.uint8)
    assert square_box((0, 0, 100, 80), margin=0.3) == (-15, -25, 115, 105)
    crop = crop_face(frame, (0, 0, 100, 80), size=64)
    assert crop.shape == (3, 64, 64) and crop.dtype == torch.uint8


class ScriptedDetector:
    """Answers with the faces listed for each frame (frame i holds i in its first pixel) and records what it was
    asked to look at: the logic around MTCNN, without MTCNN (the Space tests run the real one on mini clips)."""

    def __init__(self, faces_by_frame):
        self.faces_by_frame, self.looked_at = faces_by_frame, []

    def detect(self, frames):
        indices = [int(frame[0, 0, 0]) for frame in frames]
        self.looked_at += indices
        return [list(self.faces_by_frame[index]) for index in indices]


def numbered_frames(count):
    frames = torch.zeros(count, 3, 8, 8, dtype=torch.uint8)
    frames[:, 0, 0, 0] = torch.arange(count, dtype=torch.uint8)
    return frames


def test_key_frames_are_detected_and_the_faces_between_interpolated():
    moving = {index: [face(10 + 2 * index, 20, 100)] for index in range(10)}
    detector = ScriptedDetector(moving)
    found = detect_at_key_frames(detector, numbered_frames(10), stride=4)
    assert sorted(detector.looked_at) == [0, 4, 8, 9]  # every 4th frame and the last
    assert [faces[0].box[0] for faces in found] == pytest.approx([10 + 2 * index for index in range(10)])
    assert np.allclose(found[6][0].landmarks, moving[6][0].landmarks)  # landmarks move with the box


@pytest.mark.parametrize(
    "key_faces,why",
    [
        ([], "a key frame without a face"),
        ([face(10, 20, 100), face(150, 20, 95)], "a key frame with two faces and no main one"),
        ([face(400, 20, 100)], "a key frame whose face does not overlap the last (a cut, another person)"),
    ],
)
def test_frames_next_to_a_doubtful_key_frame_are_detected_for_real(key_faces, why):
    faces = {index: [face(10, 20, 100)] for index in range(9)}
    faces[4] = key_faces
    detector = ScriptedDetector(faces)
    found = detect_at_key_frames(detector, numbered_frames(9), stride=4)
    assert sorted(detector.looked_at) == list(range(9)), why  # frames 1-3 and 5-7 were detected, not guessed
    assert found == [faces[index] for index in range(9)]


def test_a_crop_record_round_trips_and_refuses_what_it_cannot_apply():
    record = FaceCropRecord(margin=1.0, size=256, origin="the mini")
    assert FaceCropRecord.from_dict(json.loads(json.dumps(record.as_dict()))) == record
    assert record.face_fraction == pytest.approx(0.5)
    for bad, field in (({"margin": -1}, "margin"), ({"size": 7.5}, "size"), ({"box": "per_frame"}, "box rule"),
                       ({"interpolation": "nearest"}, "interpolation"), ({"colour": "blue"}, "unknown")):  # fmt: skip
        with pytest.raises(ValueError, match=field):
            FaceCropRecord.from_dict({**record.as_dict(), **bad}, where="config.json")


def test_a_clip_is_taken_for_a_crop_only_where_its_face_sits_as_the_record_puts_one():
    record = FaceCropRecord(margin=1.0)  # the face's box fills half the crop's side
    crop_faces = [[face(64 + shift, 60, 128)] for shift in range(-4, 4)]
    assert looks_like_crop(crop_faces, 256, 256, record).is_crop
    tighter = FaceCropRecord(margin=0.3)  # a 1.3x crop has the face fill 0.77 of it: these faces are too small
    decision = looks_like_crop(crop_faces, 256, 256, tighter)
    assert not decision.is_crop and "fills 0.50" in decision.reason and "0.77" in decision.reason
    assert not looks_like_crop(crop_faces, 256, 456, record).is_crop  # a whole frame: not square
    off_centre = [[face(4, 4, 128)]] * 8
    assert not looks_like_crop(off_centre, 256, 256, record).is_crop
    assert "no face" in looks_like_crop([[]] * 8, 256, 256, record).reason


def test_the_margin_of_an_undocumented_release_is_measured_from_its_faces():
    measured = measured_crop_record([[face(70, 70, 116)], [], [face(60, 64, 128)], [face(66, 66, 124)]], 256)
    assert measured.margin == pytest.approx(256 / 124 - 1, abs=0.01) and "3 frames" in measured.origin
    with pytest.raises(FaceError, match="no face"):
        measured_crop_record([[], []], 256)


def test_crop_clip_cuts_the_records_square_around_the_box():
    frames = torch.arange(2 * 3 * 64 * 96, dtype=torch.int64).remainder(251).to(torch.uint8).reshape(2, 3, 64, 96)
    box = (40.0, 20.0, 60.0, 40.0)  # 20 px: a margin of 1.0 makes it a 40 px square from (30, 10)
    cut = crop_clip(frames, box, FaceCropRecord(margin=1.0, size=40))
    assert torch.equal(cut, frames[..., 10:50, 30:70])  # the size it is cut at: no resampling at all

"""Face tubes, frontal-frame choice and crops, on hand-made detections (the Space tests run MTCNN on mini clips)."""

import numpy as np
import pytest
import torch

from dataset_script.faces import Face, FaceError, crop_face, follow_face, main_face, most_frontal, square_box, tube_box

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

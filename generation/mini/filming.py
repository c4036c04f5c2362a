"""Filming the mini's people as VoxCeleb films its people, and cutting the release's face crops from that footage.

A real clip is filmed as a whole frame: the person in their room, at a place and size in the frame that each clip
draws from its seed, through the camera's shake and sensor noise, and encoded as an upload would be (libx264,
``ORIGINAL_CRF``, yuv420p). That original is kept beside the release (in ``full_frames/``, under the clip's own path),
and the released clip is cut from it decoded, by the project's one face crop: ``clip_face_box`` on the 32 evenly
spaced frames evaluation reads, then ``crop_clip`` under ``MINI_FACE_CROP`` (``released_crop``). The Space applies
exactly those two functions to an uploaded original, so its crop of one of these originals is the released crop
before encoding, bit for bit.

A fake's source frame is cut by the same two functions from a short whole-frame video of the source person
(``source_frame``); the fake itself is the animator's 256x256 output, as DeepFake MNIST+'s fakes are FOMM's output
animated from a cropped source face.
"""

from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dataset_script.faces import FaceCropRecord, FaceDetector, clip_face_box, crop_clip, square_box
from dataset_script.frames import VideoFrames, evenly_spaced_indices
from dataset_script.schema import ACTIONS, EVAL_FRAMES_PER_VIDEO

from ..video import write_video
from .actions import action_trajectory
from .animate import Placement, camera_jitter, film, sensor_noise, to_uint8_frames
from .body import LOWEST_VISIBLE
from .cast import clip_seed
from .face import FaceState, Identity, Shot, render

FPS = 25
MINI_FACE_CROP = FaceCropRecord(margin=0.8)
"""The mini's face crop. Its margin keeps the framing the mini has always had, each frame's face about half the crop's
side (MTCNN's box 125 of 256 px): a clip's box is the union of its face's boxes, about 1.1 times one frame's box as
the head moves, and 1.8 times that union leaves a frame's face 1 / (1.8 x 1.1) = 0.5 of the side."""
ORIGINAL_CRF = 18
"""The originals' quality: a high-quality upload, visually lossless."""
FRAME_HEIGHT, FRAME_WIDTH = 312, 416
"""A 4:3 whole frame with the face well inside it, at a cost the mini's time allows: twice a crop's pixels (448x336
made the default mini 10 % slower again, over MTCNN, the original's encoding and the render)."""
CLOSE_UP_PIXEL = 2 / 256
"""Scene units per pixel in the 256 px close-up ``render`` draws by default, where the face box is about 125 px."""
PIXEL_SCALE = (0.95, 1.25)
"""How far the camera stands, drawn per clip: scene units per pixel as a multiple of the close-up's. A clip's crop is
then about 210 to 275 px of the original, resampled to 256 (by 0.93 to 1.22); nearer, a usual crop (``CROP_HALF_SIDE``)
would no longer fit the frame's height."""
CROP_HALF_SIDE = 1.15
"""Half the side of a usual crop, in scene units (1.8 x a moving face's box of about 1.25 units): the framing keeps it
inside the frame, so a crop is rarely padded."""
SOURCE_VIDEO_FRAMES = 5
"""Frames of a fake's source video that are made: its face box is the union over them, as a real clip's is over its
32 (the extremes of the motion are what count), and its first frame (the still start of an action, near frontal) is
the source frame."""


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def whole_frame_shot(person: Identity, generator: torch.Generator) -> Shot:
    """A ``FRAME_WIDTH`` x ``FRAME_HEIGHT`` framing of ``person``: the camera's distance and the face's place in the
    frame drawn from ``generator``, the crop around the face kept inside the frame, the frame above the shirt's end."""
    pixel = CLOSE_UP_PIXEL * _uniform(generator, *PIXEL_SCALE)
    reach = CROP_HALF_SIDE / pixel

    def place(length: int, lowest: float) -> float:
        """Pixels from the frame's edge to the face's centre, at least ``lowest``, the crop inside where it fits."""
        low, high = max(reach, lowest), length - reach
        return _uniform(generator, low, high) if high > low else max(length / 2, lowest)

    centre_x = place(FRAME_WIDTH, 0.0)
    centre_y = place(FRAME_HEIGHT, FRAME_HEIGHT - (LOWEST_VISIBLE - person.head_y) / pixel)
    return Shot(FRAME_HEIGHT, FRAME_WIDTH, pixel, -centre_x * pixel, person.head_y - centre_y * pixel)


def film_whole_frames(person: Identity, motion: FaceState, shot: Shot, generator: torch.Generator,
                      shake: bool = True) -> np.ndarray:  # fmt: skip
    """``person`` doing ``motion`` as the camera films it in ``shot``: uint8 (T, H, W, 3), with its ``shake`` (the
    close-up's, in pixels: one bilinear resampling) and its sensor noise, drawn from ``generator``."""
    frames = render(person, motion, shot=shot)
    if shake:
        pixels = camera_jitter(len(motion), generator, size=2)
        frames = film(frames, pixels * 2 / torch.tensor([shot.width, shot.height]))
    return sensor_noise(to_uint8_frames(frames), generator)


@functools.cache
def face_detector() -> FaceDetector:
    """This process's MTCNN (workers make one each, on the one thread each runs torch with)."""
    return FaceDetector()


def released_crop(original: Path, record: FaceCropRecord = MINI_FACE_CROP,
                  detector: FaceDetector | None = None) -> torch.Tensor:  # fmt: skip
    """The released clip of a whole-frame ``original``, before it is encoded: uint8 (T, 3, size, size), every
    decoded frame cut around the box ``clip_face_box`` finds on the 32 evenly spaced frames, as ``record`` says."""
    video = VideoFrames(original)
    frames = video.read(range(video.num_frames))
    spread = torch.from_numpy(evenly_spaced_indices(len(frames), EVAL_FRAMES_PER_VIDEO))
    box = clip_face_box(detector or face_detector(), frames[spread], name=str(original))
    return crop_clip(frames, box, record)


@dataclass(frozen=True)
class SourceFrame:
    """A fake's source: the face crop (1, 3, S, S floats in [0, 1], a decoded frame with its camera grain), the
    person's state in it, and where the renderer's scene lies in the crop (for the person's keypoints)."""

    image: torch.Tensor
    state: FaceState
    placement: Placement


def source_motion(frames: int, generator: torch.Generator) -> FaceState:
    """The motion of a fake's source video: an action of its own, at ``SOURCE_VIDEO_FRAMES`` of its ``frames``."""
    action = ACTIONS[int(torch.randint(len(ACTIONS), (), generator=generator))]
    motion = action_trajectory(action, frames, generator)
    return motion.select(torch.from_numpy(evenly_spaced_indices(frames, SOURCE_VIDEO_FRAMES)))


def source_frame(person: Identity, seed: int, frames: int, detector: FaceDetector | None = None) -> SourceFrame:
    """The source frame of a fake whose seed is ``seed``: the first frame of a whole-frame video of ``person``,
    framed, moving, filmed and encoded as a real clip's original is (``frames`` long, ``SOURCE_VIDEO_FRAMES`` of them
    made), decoded and cut by the released clips' own face crop. It is filmed without the camera's shake: the
    animation's own sub-pixel jitter resamples the fake once more, as the shake resamples a real clip, so fakes and
    reals go through as many resamplings (each one blurs)."""
    generator = torch.Generator().manual_seed(clip_seed(seed, "source video"))
    shot, motion = whole_frame_shot(person, generator), source_motion(frames, generator)
    with tempfile.TemporaryDirectory(prefix="mini-source-") as folder:  # filmed and encoded as a real original is
        filmed = Path(folder) / "source.mp4"
        write_video(film_whole_frames(person, motion, shot, generator, shake=False), filmed, FPS, ORIGINAL_CRF)
        original = VideoFrames(filmed)
        video = original.read(range(original.num_frames))
    spread = torch.from_numpy(evenly_spaced_indices(len(video), EVAL_FRAMES_PER_VIDEO))
    box = clip_face_box(detector or face_detector(), video[spread], name=f"the source video of clip seed {seed}")
    image = crop_clip(video[:1], box, MINI_FACE_CROP).float() / 255
    left, top, right, _ = square_box(box, MINI_FACE_CROP.margin)
    # scene -> the frame's pixels -> the crop's [-1, 1] (the outer pixel edges at -1 and 1, as the resize maps them)
    side = right - left
    offset = (-2 * (shot.left / shot.pixel + left) / side - 1, -2 * (shot.top / shot.pixel + top) / side - 1)
    return SourceFrame(image, motion.select(slice(0, 1)), Placement(2 / (side * shot.pixel), offset))

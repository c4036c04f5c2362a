"""Face crops of generation inputs: a driving video's face tube, and the one most frontal face of a source.

A track holds the 256x256 crops and MTCNN's five landmarks in crop pixels (NaN where the face was not found in a
frame). Whole videos are cropped once and kept in ``OUT/.generation/faces`` (written atomically), since every
source is animated by each driving video.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dataset_script.faces import (
    FACE_CROP_SIZE,
    FaceDetector,
    FaceError,
    chunks,
    crop_face,
    follow_face,
    main_face,
    most_frontal,
    square_box,
    tube_box,
    video_tube,
)
from dataset_script.files import atomic_path
from dataset_script.frames import VideoFrames, VideoReadError, evenly_spaced_indices

from .jobs import IMAGE_EXTENSIONS

SOURCE_SAMPLE_FRAMES = 32
"""Frames of a source video searched for its most frontal face."""
DECODE_CHUNK = 64
"""Driving frames decoded at a time: a long full-HD video does not fit in memory whole."""


@dataclass
class FaceTrack:
    frames: torch.Tensor
    """uint8 (T, 3, S, S) face crops."""
    landmarks: np.ndarray
    """(T, 5, 2) float32 in crop pixels: eyes, nose, mouth corners; NaN where no face was found."""
    fps: float

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.landmarks).any(axis=(1, 2))

    def filled_landmarks(self) -> np.ndarray:
        """Landmarks with the frames that lack a face filled in linearly from their neighbours."""
        found = self.found
        if found.all():
            return self.landmarks
        if not found.any():
            raise FaceError("no frame of the track has a face")
        frames = np.arange(len(found))
        flat = self.landmarks.reshape(len(found), -1)
        filled = np.stack([np.interp(frames, frames[found], flat[found, i]) for i in range(flat.shape[1])], axis=1)
        return filled.reshape(self.landmarks.shape).astype(np.float32)


def _crop(frames: torch.Tensor, boxes: list, landmarks: list, size: int) -> tuple[torch.Tensor, np.ndarray]:
    crops, points = [], []
    for frame, box, marks in zip(frames, boxes, landmarks, strict=True):
        left, top, right, _ = square_box(box)
        crops.append(crop_face(frame, box, size))
        points.append(np.full((5, 2), np.nan, np.float32) if marks is None
                      else (marks - np.array([left, top], np.float32)) * (size / (right - left)))  # fmt: skip
    return torch.stack(crops), np.stack(points).astype(np.float32)


def read_image(path: Path) -> torch.Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as error:
        raise FaceError(f"{path.name}: cannot read the image ({error}); replace or remove it") from error
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None]


def source_track(path: Path, detector: FaceDetector, size: int = FACE_CROP_SIZE) -> FaceTrack:
    """The source face to animate, one frame: the image's main face, or the most frontal face of the video's
    face tube (searched in ``SOURCE_SAMPLE_FRAMES`` evenly spaced frames)."""
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        frames = read_image(path)
        try:
            face = main_face(detector.detect(frames)[0])
        except FaceError as error:
            raise FaceError(f"source {path.name}: {error}; use an image with one clear face") from error
        crops, landmarks = _crop(frames, [face.box], [face.landmarks], size)
        return FaceTrack(crops, landmarks, 0.0)
    video = VideoFrames(path)
    frames = video.read(evenly_spaced_indices(video.num_frames, min(SOURCE_SAMPLE_FRAMES, video.num_frames)))
    tube = follow_face(detector.detect(frames), name=f"source {path.name}")
    best = most_frontal(tube)
    crops, landmarks = _crop(frames[best : best + 1], [tube[best].box], [tube[best].landmarks], size)
    return FaceTrack(crops, landmarks, 0.0)


def video_track(path: Path, detector: FaceDetector, size: int = FACE_CROP_SIZE, max_frames: int = 0,
                role: str = "driving video") -> FaceTrack:  # fmt: skip
    """Every frame of a video (or its first ``max_frames``) cropped around its face tube with one square, so the
    crop does not jitter with the detector; ``role`` names the video in errors."""
    video = VideoFrames(path)
    count = video.num_frames if max_frames <= 0 else min(max_frames, video.num_frames)
    if count == 0:
        raise FaceError(f"{role} {path.name} has no frames")
    runs = chunks(count, DECODE_CHUNK)
    # A short video is decoded once and kept; a long one twice (find the tube, then crop), a chunk at a time.
    kept = video.read(runs[0]) if len(runs) == 1 else None

    def decode(chunk: range) -> torch.Tensor:
        return kept if kept is not None else video.read(chunk)

    tube = video_tube(decode, runs, detector, name=f"{role} {path.name}")
    box = tube_box(tube)
    parts = []
    for chunk in runs:
        landmarks = [None if tube[index] is None else tube[index].landmarks for index in chunk]
        parts.append(_crop(decode(chunk), [box] * len(chunk), landmarks, size))
    crops, landmarks = torch.cat([part[0] for part in parts]), np.concatenate([part[1] for part in parts])
    return FaceTrack(crops, landmarks, video.fps or 25.0)


class VideoTracks:
    """Face tracks of whole videos (driving videos, and source videos for their real clips), computed once and kept
    on disk (atomic ``.npz``), the last one also in memory."""

    def __init__(self, directory: Path, detector: FaceDetector, size: int = FACE_CROP_SIZE, max_frames: int = 0):
        self.directory, self.detector, self.size, self.max_frames = directory, detector, size, max_frames
        self._last: tuple[Path, FaceTrack] | None = None
        self._failed: dict[Path, Exception] = {}  # each of its jobs reports the error without decoding it again

    def get(self, path: Path, name: str, role: str = "driving video") -> FaceTrack:
        if self._last is not None and self._last[0] == path:
            return self._last[1]
        if path in self._failed:
            raise self._failed[path]
        stat = path.stat()
        key = f"{stat.st_size}-{stat.st_mtime_ns}-{self.size}-{self.max_frames}"
        stored = self.directory / f"{name}.{key}.npz"
        if stored.exists():
            with np.load(stored) as data:
                track = FaceTrack(torch.from_numpy(data["frames"]), data["landmarks"], float(data["fps"]))
        else:
            try:
                track = video_track(path, self.detector, self.size, self.max_frames, role)
            except (FaceError, VideoReadError) as error:
                self._failed[path] = error
                raise
            with atomic_path(stored) as partial:
                np.savez(partial, frames=track.frames.numpy(), landmarks=track.landmarks, fps=track.fps)
        self._last = (path, track)
        return track

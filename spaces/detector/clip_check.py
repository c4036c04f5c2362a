"""Checking one uploaded clip: limits, 32 evenly spaced frames, the main face of each, per-frame fake probability,
the verdict, and class activation maps. ``app.py`` puts a Gradio face on it; nothing here imports Gradio.

Every way a clip can be unusable ends in ClipRejected with a message that says what was wrong and what to do.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from dataset_script.frames import VideoFrames, VideoReadError, evenly_spaced_indices, fit_frames_uint8, normalise_frames
from dataset_script.probe import VideoMetadata, VideoProbeError, read_metadata
from dataset_script.schema import EVAL_FRAMES_PER_VIDEO, FAKE
from generation.faces import FaceDetector, FaceError, crop_face, main_face
from modeling import detector, timm_model_of
from modeling.cam import class_activation_maps, overlay

MODEL_ENV = "DETECTOR_MODEL"
"""Comma-separated detectors to serve when ``--model`` is not given."""
DEFAULT_MODEL = "demo_output/detector"
"""What ``make demo`` trains."""


class ClipRejected(ValueError):
    """A clip that cannot be checked; the message is for the person who uploaded it."""


@dataclass(frozen=True)
class ClipLimits:
    max_megabytes: float = 50.0
    max_seconds: float = 60.0
    min_side: int = 64
    max_width: int = 1920
    max_height: int = 1920

    def check(self, path: Path, metadata: VideoMetadata) -> None:
        megabytes = path.stat().st_size / 1e6
        if megabytes > self.max_megabytes:
            raise ClipRejected(f"the file is {megabytes:.0f} MB, over the {self.max_megabytes:g} MB limit: "
                               "trim or re-encode it")  # fmt: skip
        width, height = metadata.width, metadata.height
        if min(width, height) < self.min_side:
            raise ClipRejected(f"the video is {width}x{height}, too small to hold a face a detector can judge "
                               f"(at least {self.min_side} pixels a side)")  # fmt: skip
        if width > self.max_width or height > self.max_height:
            raise ClipRejected(f"the video is {width}x{height}, over the {self.max_width}x{self.max_height} limit: "
                               "downscale it first, e.g. `ffmpeg -i in.mp4 -vf scale=-2:720 out.mp4`")  # fmt: skip
        if metadata.duration > self.max_seconds:
            raise ClipRejected(f"the clip lasts {metadata.duration:.0f} s, over the {self.max_seconds:g} s limit: "
                               f"trim it, e.g. `ffmpeg -i in.mp4 -t {self.max_seconds:g} out.mp4`")  # fmt: skip


@dataclass
class FrameResult:
    index: int
    """The frame's number in the video."""
    fake_probability: float
    crop: np.ndarray
    """uint8 (H, W, 3): what the detector was shown, before its own resize and crop."""
    cam: np.ndarray | None = None


@dataclass
class CheckReport:
    model: str
    fake_probability: float
    frames: list[FrameResult]
    frames_without_face: list[int] = field(default_factory=list)
    frames_with_several_faces: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    metadata: VideoMetadata | None = None

    @property
    def verdict(self) -> str:
        return "fake" if self.fake_probability >= 0.5 else "real"

    @property
    def confidence(self) -> float:
        return self.fake_probability if self.verdict == "fake" else 1.0 - self.fake_probability


class _Stopwatch:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def lap(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - started
        return now


class ClipChecker:
    """Loads its detectors once, and the face detector on first need; ``check`` is safe to call from threads
    (each call only reads the models)."""

    def __init__(self, models: Sequence[str], limits: ClipLimits = ClipLimits(), device: str = "cpu",
                 cam_frames: int = 8):  # fmt: skip
        if not models:
            raise ValueError("no detector given: pass --model DIR_OR_HUB_ID (e.g. demo_output/detector)")
        self.detectors = {}
        for name in models:
            try:
                model, info = detector(name)
            except (FileNotFoundError, ValueError, OSError) as error:
                raise SystemExit(f"cannot load detector {name!r}: {error}. Train one with `make demo`, or pass "
                                 "--model with a saved detector folder or a Hub id") from error  # fmt: skip
            inner = timm_model_of(model).eval().to(device)
            self.detectors[name] = (inner, info.pretrained_cfg(inner))
        self.limits, self.device, self.cam_frames = limits, torch.device(device), cam_frames
        # torchcodec where it is installed; decord on a Space whose torch is too old for torchcodec
        self.decoder = "torchcodec" if importlib.util.find_spec("torchcodec") else "decord"
        self._faces: FaceDetector | None = None

    @property
    def model_names(self) -> list[str]:
        return list(self.detectors)

    @property
    def faces(self) -> FaceDetector:
        if self._faces is None:
            self._faces = FaceDetector(self.device)
        return self._faces

    def read(self, path: Path, clock: _Stopwatch) -> tuple[VideoMetadata, np.ndarray, torch.Tensor]:
        started = time.perf_counter()
        try:
            metadata = read_metadata(path)
        except VideoProbeError as error:
            reason = str(error).replace(f"{path}: ", "")
            if reason.startswith("not a readable video"):
                reason += ": it may be truncated or corrupt, or not a video at all"
            raise ClipRejected(f"{reason}; upload a complete MP4, WebM, MOV or AVI video") from error
        self.limits.check(path, metadata)
        try:
            video = VideoFrames(str(path), self.decoder)
            if video.num_frames == 0:
                raise ClipRejected("the video has no frames")
            indices = evenly_spaced_indices(video.num_frames, EVAL_FRAMES_PER_VIDEO)
            frames = video.read(indices)
        except VideoReadError as error:
            raise ClipRejected(f"the video cannot be decoded; it may be truncated or corrupt "
                               f"({str(error).replace(str(path), 'file')})") from error  # fmt: skip
        clock.lap("decode", started)
        return metadata, indices, frames

    def crop_faces(self, frames: torch.Tensor, indices: np.ndarray, clock: _Stopwatch):
        started = time.perf_counter()
        detected = self.faces.detect(frames)
        crops, kept, without, several = [], [], [], []
        for frame, index, faces in zip(frames, indices, detected, strict=True):
            if not faces:
                without.append(int(index))
                continue
            try:
                face = main_face(faces)
            except FaceError:
                several.append(int(index))
                continue
            crops.append(crop_face(frame, face.box))
            kept.append(int(index))
        clock.lap("face crop", started)
        if not crops:
            if several:
                raise ClipRejected(f"several faces of similar size in {len(several)} of {len(indices)} frames and "
                                   "no clear main one: crop or trim the clip to one person")  # fmt: skip
            raise ClipRejected(f"no face found in any of the {len(indices)} frames checked. If the clip is "
                               "already a face crop (as the dataset's clips are), tick 'clip is already a face "
                               "crop'")  # fmt: skip
        return torch.stack(crops), np.asarray(kept), without, several

    def check(self, path: str | Path, already_cropped: bool = False, model: str | None = None) -> CheckReport:
        """The verdict on one clip, or ClipRejected saying why it cannot be checked."""
        if path is None or str(path) == "":
            raise ClipRejected("no video uploaded: choose a clip, or pick one of the examples")
        model_name = model or self.model_names[0]
        if model_name not in self.detectors:
            raise ClipRejected(f"unknown model {model_name!r}; choose one of {', '.join(self.model_names)}")
        inner, cfg = self.detectors[model_name]
        clock = _Stopwatch()
        path = Path(path)
        metadata, indices, frames = self.read(path, clock)
        without, several = [], []
        if already_cropped:
            crops, kept = frames, indices
        else:
            crops, kept, without, several = self.crop_faces(frames, indices, clock)
        started = time.perf_counter()
        pixels = normalise_frames(crops, cfg).to(self.device)
        with torch.inference_mode():
            probabilities = inner(pixels).float().softmax(-1)[:, FAKE].cpu().numpy()
        started = clock.lap("model", started)
        shown = evenly_spaced_indices(len(kept), self.cam_frames)
        cams = class_activation_maps(inner, pixels[shown]).cpu().numpy()
        clock.lap("CAM", started)
        results = [FrameResult(int(index), float(p), crop.permute(1, 2, 0).numpy())
                   for index, p, crop in zip(kept, probabilities, crops, strict=True)]  # fmt: skip
        for position, cam in zip(shown, cams, strict=True):
            results[position].cam = overlay(_model_view(crops[position], cfg), cam)
        return CheckReport(model_name, float(probabilities.mean()), results, without, several, clock.seconds, metadata)


def _model_view(crop: torch.Tensor, cfg: dict) -> np.ndarray:
    """The part of a uint8 crop (3, H, W) the model sees, at its input size, as (h, w, 3): where its CAM belongs."""
    return fit_frames_uint8(crop[None], cfg)[0].permute(1, 2, 0).numpy()

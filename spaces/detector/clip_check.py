"""Checking one uploaded clip: limits, 32 evenly spaced frames, the main face of each, per-frame fake score,
the verdict, and class activation maps; and what each detector's model card says it was trained on. ``app.py``
puts a Gradio face on it; nothing here imports Gradio.

Every way a clip can be unusable ends in ClipRejected with a message that says what was wrong and what to do;
``clip_upload`` reads the upload as hostile.
A detector's output is a probability only where its config.json carries the ``calibration_temperature`` that
training fitted on validation frames; otherwise it is a score, and the report says so.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from clip_upload import ClipLimits, ClipRejected, DecodedClip, read_clip

from dataset_script.faces import (
    FACE_CROP,
    FaceCropRecord,
    FaceDetector,
    FaceError,
    crop_clip,
    crop_face,
    detect_at_key_frames,
    follow_face,
    looks_like_crop,
    tube_box,
)
from dataset_script.frames import evenly_spaced_indices, fit_frames_uint8, keep_freed_memory, normalise_frames
from dataset_script.probe import VideoMetadata
from modeling import detector, fake_probability, timm_model_of
from modeling.cam import class_activation_maps, overlay

logger = logging.getLogger(__name__)

MODEL_ENV = "DETECTOR_MODEL"
"""Comma-separated detectors to serve when ``--model`` is not given."""
DEFAULT_MODEL = "demo_output/detector"
"""What ``make demo`` trains."""


SYNTHETIC_MINI = "synthetic_mini"
"""``training_data.kind`` of a detector trained on the mini (training/model_card.py writes it)."""
DATA_KINDS = {
    SYNTHETIC_MINI: "the synthetic mini (procedural cartoon faces, no real person)",
    "generated": "faces animated by this project's generators",
    "release": "a DeepFake MNIST+ release (real VoxCeleb faces and their animations)",
}
SPLIT_PROTOCOLS = {
    "paper": "the paper's split (70/15/15 per class by file name)",
    "identity": "identity-disjoint split",
}
HEADLINE_METRICS = {"video_accuracy": "video accuracy", "video_auc": "video AUC"}


@dataclass(frozen=True)
class DetectorCard:
    """What a detector's model card (README.md) and config.json record of its training; never guessed."""

    name: str
    dataset: str | None = None
    data_config: str | None = None
    split_protocol: str | None = None
    data_kind: str | None = None
    test_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """Test set (its configuration and split, as Markdown) -> metric type -> value, from the card's model-index."""
    temperature: float | None = None
    test_ece: dict[str, dict[str, float]] = field(default_factory=dict)
    not_calibrated_because: str | None = None
    missing: str | None = None
    """Why there is no card to read, when there is none."""

    @property
    def synthetic(self) -> bool:
        return self.data_kind == SYNTHETIC_MINI

    def provenance(self) -> str:
        """One Markdown block: data, configuration, split protocol, test metrics, calibration; and the warning that
        a mini-trained detector's verdict on a real person means nothing."""
        if self.missing:
            return (f"**Trained on:** unknown: {self.missing}, so the Space cannot say what it learnt from; "
                    "treat its verdict with caution.\n\n" + self._calibration())  # fmt: skip
        kind = DATA_KINDS.get(self.data_kind or "", "data of a kind the card does not record")
        split = SPLIT_PROTOCOLS.get(self.split_protocol or "", f"split protocol `{self.split_protocol}`")
        parts = [f"**Trained on:** `{self.dataset}`, {kind}; configuration `{self.data_config}`, {split}."]
        for test_set, metrics in self.test_metrics.items():
            shown = [f"{label} {metrics[key]:.3f}" for key, label in HEADLINE_METRICS.items() if key in metrics]
            parts.append(f"**Test** ({test_set}): " + (", ".join(shown) or "no video metrics recorded") + ".")
        if not self.test_metrics:
            parts.append("**Test:** none recorded.")
        block = " ".join(parts) + "\n\n" + self._calibration()
        if self.synthetic:
            block = ("> **Trained on synthetic faces only.** This detector has never seen a real person: its verdict "
                     "on a real person's video means nothing.\n\n" + block)  # fmt: skip
        return block

    def _calibration(self) -> str:
        if self.temperature is None:
            why = f" ({self.not_calibrated_because})" if self.not_calibrated_because else ""
            return f"**Not calibrated**{why}: its outputs are scores, not probabilities."
        ece = "; ".join(f"{config} {values['before']:.3f} before, {values['after']:.3f} after"
                        for config, values in self.test_ece.items() if "after" in values)  # fmt: skip
        return f"**Calibrated:** temperature {self.temperature:.3g}, fitted on validation frames" + (
            f"; test ECE (15 bins) {ece}." if ece else "."
        )


def _detector_file(name: str, filename: str) -> Path | None:
    """``filename`` of a saved detector folder, or of a Hub detector (from the local cache when offline)."""
    if Path(name).is_dir():
        path = Path(name) / filename
        return path if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(hf_hub_download(name, filename))
    except (OSError, EntryNotFoundError, ValueError) as error:  # offline and not cached, or not in the repo
        logger.warning("%s: no %s (%s)", name, filename, error)
        return None


def _temperature(name: str) -> float | None:
    path = _detector_file(name, "config.json")
    value = json.loads(path.read_text()).get("calibration_temperature") if path else None
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 and math.isfinite(value):
        return float(value)
    logger.warning("%s: calibration_temperature %r is not a positive number; showing scores", name, value)
    return None


def face_crop_record(name: str) -> tuple[FaceCropRecord, str | None]:
    """The face crop ``name`` was trained on (its config.json's ``face_crop``), or this project's default with the
    reason it stands in; the Space cuts whole-frame uploads with it."""
    path = _detector_file(name, "config.json")
    values = json.loads(path.read_text()).get("face_crop") if path else None
    if values is None:
        return FACE_CROP, "the detector does not record the face crop it was trained on"
    try:
        return FaceCropRecord.from_dict(values, where=f"{name}'s config.json"), None
    except (ValueError, TypeError) as error:
        logger.warning("%s; using this project's default face crop", error)
        return FACE_CROP, f"its recorded face crop cannot be used ({error})"


def read_detector_card(name: str) -> DetectorCard:
    """What ``name``'s model card and config.json record; a missing or unreadable card says so in ``missing``."""
    from huggingface_hub import ModelCard

    temperature = _temperature(name)
    path = _detector_file(name, "README.md")
    if path is None:
        return DetectorCard(name, temperature=temperature, missing=f"`{name}` has no model card (README.md)")
    try:
        card = ModelCard.load(path, ignore_metadata_errors=True).data
    except (ValueError, yaml.YAMLError) as error:  # broken YAML, or YAML that is not a mapping
        logger.warning("%s: unreadable model card (%s)", path, error)
        return DetectorCard(name, temperature=temperature, missing=f"the model card of `{name}` cannot be read")
    data = getattr(card, "training_data", None)
    if not isinstance(data, dict):
        return DetectorCard(name, temperature=temperature,
                            missing=f"the model card of `{name}` does not record its training data")  # fmt: skip
    metrics: dict[str, dict[str, float]] = {}
    for result in card.eval_results or []:
        test_set = f"`{result.dataset_config}`, split `{result.dataset_split}`"
        metrics.setdefault(test_set, {})[result.metric_type] = float(result.metric_value)
    calibration = getattr(card, "calibration", None)
    calibration = calibration if isinstance(calibration, dict) else {}
    return DetectorCard(
        name, dataset=data.get("dataset"), data_config=data.get("config"), split_protocol=data.get("split_protocol"),
        data_kind=data.get("kind"), test_metrics=metrics, temperature=temperature,
        test_ece=calibration.get("test_ece") or {}, not_calibrated_because=calibration.get("not_calibrated_because"),
    )  # fmt: skip


@dataclass
class FrameResult:
    index: int
    """The frame's number in the video."""
    fake_score: float
    """The fake probability where the detector is calibrated, else its uncalibrated softmax output."""
    crop: np.ndarray
    """uint8 (H, W, 3): what the detector was shown, before its own resize and crop."""
    cam: np.ndarray | None = None


@dataclass
class CheckReport:
    model: str
    fake_score: float
    """The mean of the frames' fake scores."""
    frames: list[FrameResult]
    frames_without_face: list[int] = field(default_factory=list)
    frames_with_several_faces: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    metadata: VideoMetadata | None = None
    calibrated: bool = False
    """Whether the scores are temperature-scaled probabilities; if not, they are scores and nothing more."""
    frames_asked: int = 0
    frames_missing: list[int] = field(default_factory=list)
    """Frames asked for that did not decode: the verdict rests on the others."""
    framing: str = "crop"
    """How the detector's input was made from the clip: one of FRAMINGS' keys bar ``auto``."""
    framing_reason: str = ""
    """Why: the auto decision's measurement, or the user's choice; and the crop record used."""

    @property
    def verdict(self) -> str:
        return "fake" if self.fake_score >= 0.5 else "real"


FRAMINGS = {
    "auto": "decide from the face: a clip whose face sits as the detector's training crops put one is already a crop",
    "crop": "the clip is already a face crop: score its frames as they are",
    "whole_frame": "cut the face out of whole frames, as the detector's training clips were cut",
}
"""The Space's framing choice; ``auto`` is the default and the others override it."""


@dataclass
class FramedFaces:
    crops: torch.Tensor
    """uint8 (N, 3, S, S): what the detector is shown, before its own input transform."""
    framing: str
    reason: str
    without_face: list[int]
    several_faces: list[int]


class _Stopwatch:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    def lap(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - started
        return now


class ClipChecker:
    """Loads its detectors once, and the face detector on first need. ``check`` may be called from any thread:
    every check, and every load, runs on the checker's own thread, one at a time.

    Why one thread: torch's CPU kernels run on libgomp's OpenMP teams, one per thread that has used them, and
    libgomp lets a team's threads spin between parallel regions only while all teams' threads together do not
    outnumber the cores. Gradio calls handlers from a pool of worker threads while the thread that loaded the
    models keeps its own team: from then on every team sleeps after each region and must be woken for the next, a
    check's thousands of small MTCNN ops each pay a wake-up (about 1,900 context switches a check), and on 2 cores a
    check took 25 to 30 % longer than the same check on the thread that loaded its models. Running checks one at a
    time loses nothing, as each uses every core."""

    def __init__(self, models: Sequence[str], limits: ClipLimits | None = None, device: str = "cpu",
                 cam_frames: int = 8, face_stride: int | None = 4):  # fmt: skip
        """``face_stride``: MTCNN on every such frame of the 32 and the last, the faces between interpolated where
        two agree (``detect_at_key_frames``); None detects on every frame (``benchmarks.space_latency``'s
        baseline)."""
        if not models:
            raise ValueError("no detector given: pass --model DIR_OR_HUB_ID (e.g. demo_output/detector)")
        # every check allocates the same large frame and activation buffers again: glibc would hand each back to
        # the OS and fault its pages in anew, a sixth of a check's time on 2 cores
        keep_freed_memory()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-check")
        self.limits, self.device, self.cam_frames = limits or ClipLimits(), torch.device(device), cam_frames
        self.face_stride = face_stride
        self.detectors = self._on_own_thread(self._load_detectors, models)
        self.cards = {name: read_detector_card(name) for name in models}
        self.face_crops = {name: face_crop_record(name) for name in models}
        # torchcodec where it is installed; decord on a Space whose torch is too old for torchcodec
        self.decoder = "torchcodec" if importlib.util.find_spec("torchcodec") else "decord"
        self._faces: FaceDetector | None = None

    def _on_own_thread(self, function, *args):
        """``function(*args)`` run on the checker's thread; its result, or its exception raised here."""
        return self._thread.submit(function, *args).result()

    def _load_detectors(self, models: Sequence[str]) -> dict[str, tuple[torch.nn.Module, dict]]:
        detectors = {}
        for name in models:
            try:
                model, info = detector(name)
            except (FileNotFoundError, ValueError, OSError) as error:
                raise SystemExit(f"cannot load detector {name!r}: {error}. Train one with `make demo`, or pass "
                                 "--model with a saved detector folder or a Hub id") from error  # fmt: skip
            inner = timm_model_of(model).eval().to(self.device)
            detectors[name] = (inner, info.pretrained_cfg(inner))
        return detectors

    @property
    def model_names(self) -> list[str]:
        return list(self.detectors)

    @property
    def faces(self) -> FaceDetector:
        if self._faces is None:
            self._faces = FaceDetector(self.device)
        return self._faces

    def read(self, path: Path, clock: _Stopwatch) -> DecodedClip:
        started = time.perf_counter()
        clip = read_clip(path, self.limits, self.decoder)
        clock.lap("decode", started)
        return clip

    def frame_faces(self, frames: torch.Tensor, indices: np.ndarray, record: FaceCropRecord, framing: str,
                    clock: _Stopwatch) -> FramedFaces:  # fmt: skip
        """The detector's input from the clip's frames: the frames themselves where the clip is already a crop made
        as ``record`` says, else the face cut out of them as ``record`` says (one box for the clip, the union of its
        main face's tube, as the training clips were cut: ``dataset_script.faces``)."""
        height, width = frames.shape[-2:]
        if framing == "crop":  # the user's word: no face to look for
            return FramedFaces(_as_crop(frames, record), framing, f"chosen by hand; face crop: {record.describe()}",
                               [], [])  # fmt: skip
        started = time.perf_counter()
        if self.face_stride:
            detected = detect_at_key_frames(self.faces, frames, self.face_stride)
        else:
            detected = self.faces.detect(frames)
        without = [int(index) for index, faces in zip(indices, detected, strict=True) if not faces]
        several = [int(index) for index, faces in zip(indices, detected, strict=True)
                   if len(faces) > 1 and faces[0].area < 2 * faces[1].area]  # fmt: skip
        if framing == "auto":
            decision = looks_like_crop(detected, height, width, record)
            framing = "crop" if decision.is_crop else "whole_frame"
            reason = f"chosen automatically: {decision.reason}"
        else:
            reason = "chosen by hand"
        if framing == "crop":
            crops = _as_crop(frames, record)
        else:
            try:
                box = tube_box(follow_face(detected, name="the clip"))
            except FaceError as error:
                hint = "" if any(detected) else (". If the clip is already a face crop (as the dataset's clips "
                                                 "are), choose framing 'crop'")  # fmt: skip
                raise ClipRejected(f"{error}{hint}") from error
            crops = crop_clip(frames, box, record)
        clock.lap("face crop", started)
        return FramedFaces(crops, framing, f"{reason}; face crop: {record.describe()}", without, several)

    def check(self, path: str | Path, framing: str = "auto", model: str | None = None) -> CheckReport:
        """The verdict on one clip, or ClipRejected saying why it cannot be checked; ``framing`` is one of
        FRAMINGS."""
        return self._on_own_thread(self._check, path, framing, model)

    def _check(self, path: str | Path | None, framing: str, model: str | None) -> CheckReport:
        if path is None or str(path) == "":
            raise ClipRejected("no video uploaded: choose a clip, or pick one of the examples")
        model_name = model or self.model_names[0]
        if model_name not in self.detectors:
            raise ClipRejected(f"unknown model {model_name!r}; choose one of {', '.join(self.model_names)}")
        if framing not in FRAMINGS:
            raise ClipRejected(f"unknown framing {framing!r}; choose one of {', '.join(FRAMINGS)}")
        inner, cfg = self.detectors[model_name]
        record, stand_in = self.face_crops[model_name]
        clock = _Stopwatch()
        path = Path(path)
        clip = self.read(path, clock)
        framed = self.frame_faces(clip.frames, clip.indices, record, framing, clock)
        crops, kept = framed.crops, clip.indices
        started = time.perf_counter()
        pixels = normalise_frames(crops, cfg).to(self.device)
        temperature = self.cards[model_name].temperature
        with torch.inference_mode():
            scores = fake_probability(inner(pixels).float() / (temperature or 1.0)).cpu().numpy()
        started = clock.lap("model", started)
        shown = evenly_spaced_indices(len(kept), self.cam_frames)
        cams = class_activation_maps(inner, pixels[shown]).cpu().numpy()
        clock.lap("CAM", started)
        results = [FrameResult(int(index), float(score), crop.permute(1, 2, 0).numpy())
                   for index, score, crop in zip(kept, scores, crops, strict=True)]  # fmt: skip
        for position, cam in zip(shown, cams, strict=True):
            results[position].cam = overlay(_model_view(crops[position], cfg), cam)
        reason = framed.reason + (f" (this project's default: {stand_in})" if stand_in else "")
        return CheckReport(model_name, float(scores.mean()), results, framed.without_face, framed.several_faces,
                           clock.seconds, clip.metadata, calibrated=temperature is not None,
                           frames_asked=clip.frames_asked, frames_missing=clip.frames_missing,
                           framing=framed.framing, framing_reason=reason)  # fmt: skip


def _as_crop(frames: torch.Tensor, record: FaceCropRecord) -> torch.Tensor:
    """Frames of a clip that is already a face crop, at the record's size: a crop of another size resized whole."""
    height, width = frames.shape[-2:]
    if (height, width) == (record.size, record.size):
        return frames
    return crop_face(frames, (0.0, 0.0, float(width), float(height)), record.size, margin=0.0)


def _model_view(crop: torch.Tensor, cfg: dict) -> np.ndarray:
    """The part of a uint8 crop (3, H, W) the model sees, at its input size, as (h, w, 3): where its CAM belongs."""
    return fit_frames_uint8(crop[None], cfg)[0].permute(1, 2, 0).numpy()

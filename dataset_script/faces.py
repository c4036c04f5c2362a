"""Faces in frames: MTCNN in batches, the main face of a frame, face tubes through a video, and
square crops around them.

Its one home, for every user: the build crops FaceForensics++ and Celeb-DF videos with it, the generation pipeline
crops driving and source videos, the Space crops uploaded clips. It lives in ``dataset_script`` because that package
imports nothing of ours, so all three may import it. MTCNN's weights ship inside the facenet-pytorch wheel, so this
runs offline.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

FACE_CROP_SIZE = 256
"""The release's face crops are 256x256."""


class FaceError(ValueError):
    """No face, or no clear main face, where one was needed; the message says which and what to do."""


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]
    """x0, y0, x1, y1 in the frame's pixels."""
    probability: float
    landmarks: np.ndarray
    """(5, 2): eyes, nose, mouth corners, as MTCNN gives them."""

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


class FaceDetector:
    """MTCNN over batches of frames; frames are shrunk so their long side is at most ``detect_side`` first
    (MTCNN's cost grows with the pixel count, and a face the size the detectors need survives the shrink).

    ``implementation``: ``"batched"`` (``dataset_script.mtcnn``: facenet-pytorch's weights and arithmetic, each
    stage batched over all frames, about twice as fast) or ``"facenet"`` (``facenet_pytorch.MTCNN`` itself, the
    baseline the batched one is measured and checked against)."""

    def __init__(self, device: str | torch.device = "cpu", min_probability: float = 0.9, detect_side: int = 640,
                 batch_size: int = 32, implementation: str = "batched"):  # fmt: skip
        if implementation == "batched":
            from .mtcnn import MTCNN

            self.mtcnn = MTCNN(device=device)
        elif implementation == "facenet":
            from facenet_pytorch import MTCNN

            self.mtcnn = MTCNN(keep_all=True, device=device, post_process=False)
        else:
            raise ValueError(f"implementation {implementation!r}: choose 'batched' or 'facenet'")
        self.implementation = implementation
        self.min_probability, self.detect_side, self.batch_size = min_probability, detect_side, batch_size

    def _mtcnn(self, frames: torch.Tensor) -> list[tuple]:
        """Boxes, probabilities and landmarks of each uint8 frame of (N, 3, H, W), in facenet-pytorch's form."""
        if self.implementation == "batched":
            return [(found.boxes, found.probabilities, found.landmarks) for found in self.mtcnn.detect(frames)]
        return list(zip(*self.mtcnn.detect(frames.permute(0, 2, 3, 1).numpy(), landmarks=True), strict=True))

    def detect(self, frames: torch.Tensor) -> list[list[Face]]:
        """Faces of each uint8 frame of (N, 3, H, W), largest first, those below ``min_probability`` dropped."""
        if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"expected uint8 frames shaped (N, 3, H, W), got {tuple(frames.shape)} {frames.dtype}")
        height, width = frames.shape[-2:]
        scale = min(1.0, self.detect_side / max(height, width))
        faces: list[list[Face]] = []
        for part in frames.split(self.batch_size):
            if scale < 1.0:
                size = (max(1, round(height * scale)), max(1, round(width * scale)))
                part = F.interpolate(part.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
                part = part.round().clamp(0, 255).to(torch.uint8)
            for frame_boxes, frame_probabilities, frame_landmarks in self._mtcnn(part):
                found = []
                if frame_boxes is not None:
                    for box, probability, points in zip(frame_boxes, frame_probabilities, frame_landmarks,
                                                        strict=True):  # fmt: skip
                        if probability is not None and probability >= self.min_probability:
                            found.append(Face(tuple(float(v) / scale for v in box), float(probability),
                                              np.asarray(points, dtype=np.float32) / scale))  # fmt: skip
                faces.append(sorted(found, key=lambda face: face.area, reverse=True))
        return faces


def _clear_main_face(faces: list[Face]) -> Face | None:
    try:
        return main_face(faces)
    except FaceError:
        return None


def _between(first: Face, second: Face, weight: float) -> Face:
    box = tuple(a + (b - a) * weight for a, b in zip(first.box, second.box, strict=True))
    landmarks = first.landmarks + (second.landmarks - first.landmarks) * weight
    return Face(box, min(first.probability, second.probability), landmarks.astype(np.float32))


def detect_at_key_frames(detector: FaceDetector, frames: torch.Tensor, stride: int = 4,
                         min_iou: float = 0.5) -> list[list[Face]]:  # fmt: skip
    """Faces of each frame of (N, 3, H, W), as ``detector.detect`` gives them, at a fraction of its cost: MTCNN
    runs on every ``stride``-th frame and the last only. Between two such key frames whose main faces overlap by
    ``min_iou`` or more, each frame gets that face with its box and landmarks interpolated linearly (one face:
    the main one); where either key frame has no face or no clear main one, or their faces do not overlap (a cut,
    a fast turn, another person), every frame between them is detected as well."""
    count = len(frames)
    keys = sorted(set(range(0, count, stride)) | {count - 1}) if count else []
    found: list[list[Face] | None] = [None] * count
    for index, faces in zip(keys, detector.detect(frames[keys]) if keys else [], strict=True):
        found[index] = faces
    undetected = []
    for start, end in zip(keys, keys[1:], strict=False):
        first, second = _clear_main_face(found[start]), _clear_main_face(found[end])
        if first is not None and second is not None and box_iou(first.box, second.box) >= min_iou:
            for index in range(start + 1, end):
                found[index] = [_between(first, second, (index - start) / (end - start))]
        else:
            undetected += range(start + 1, end)
    for index, faces in zip(undetected, detector.detect(frames[undetected]) if undetected else [], strict=True):
        found[index] = faces
    return found


def main_face(faces: list[Face], dominance: float = 2.0) -> Face:
    """The largest face, when it is at least ``dominance`` times the area of the next; FaceError otherwise."""
    if not faces:
        raise FaceError("no face found")
    if len(faces) > 1 and faces[0].area < dominance * faces[1].area:
        raise FaceError(f"{len(faces)} faces of similar size and no clear main one")
    return faces[0]


def square_box(box: tuple[float, float, float, float], margin: float = 0.3) -> tuple[int, int, int, int]:
    """A square around ``box``'s centre, its side the box's longer side grown by ``margin`` (0.3: FaceForensics++'s
    1.3x scale); it may reach past the frame, where ``crop_face`` pads."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = math.floor(centre_x - side / 2), math.floor(centre_y - side / 2)
    side = max(1, round(side))
    return left, top, left + side, top + side


def crop_face(frame: torch.Tensor, box: tuple[float, float, float, float], size: int = FACE_CROP_SIZE,
              margin: float = 0.3) -> torch.Tensor:  # fmt: skip
    """The square around ``box`` of a uint8 frame (3, H, W), edge-padded where it leaves the frame, resized to
    ``size``; uint8 (3, size, size). Frames (N, 3, H, W) are cropped with the one box in one batch."""
    single = frame.ndim == 3
    frames = frame[None] if single else frame
    left, top, right, bottom = square_box(box, margin)
    height, width = frames.shape[-2:]
    pad = (max(0, -left), max(0, right - width), max(0, -top), max(0, bottom - height))
    region = frames[..., max(0, top) : min(height, bottom), max(0, left) : min(width, right)].float()
    if any(pad):
        region = F.pad(region, pad, mode="replicate")
    resized = F.interpolate(region, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    resized = resized.round().clamp(0, 255).to(torch.uint8)
    return resized[0] if single else resized


def box_iou(first: tuple[float, float, float, float], second: tuple[float, float, float, float]) -> float:
    x0, y0 = max(first[0], second[0]), max(first[1], second[1])
    x1, y1 = min(first[2], second[2]), min(first[3], second[3])
    overlap = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1]) - overlap
    return overlap / union if union > 0 else 0.0


def follow_face(detections: list[list[Face]], min_iou: float = 0.3, name: str = "the video") -> list[Face | None]:
    """One face tube through a video: the main face of the first frame that has one, then in each later frame
    the face overlapping the tube's last box most (None where none overlaps by ``min_iou``). FaceError when no
    frame has a face, or the first frame with faces has no clear main one."""
    start = next((index for index, faces in enumerate(detections) if faces), None)
    if start is None:
        raise FaceError(f"{name}: no face found in any of its {len(detections)} frames")
    try:
        current = main_face(detections[start])
    except FaceError as error:
        raise FaceError(f"{name}: {error} in frame {start}; crop the video to one person") from error
    tube: list[Face | None] = [None] * start + [current]
    for faces in detections[start + 1 :]:
        best = max(faces, key=lambda face: box_iou(face.box, current.box), default=None)
        if best is not None and box_iou(best.box, current.box) >= min_iou:
            current = best
            tube.append(best)
        else:
            tube.append(None)
    return tube


def chunks(count: int, size: int) -> list[range]:
    """``range(count)`` in consecutive runs of at most ``size``: how long videos are decoded, a run at a time."""
    return [range(start, min(start + size, count)) for start in range(0, count, size)]


def video_tube(decode, parts: list[range], detector: FaceDetector, name: str) -> list[Face | None]:
    """The face tube (``follow_face``) of a video's frames, ``decode(part)`` giving each run of them in turn, so a
    long full-HD video never has to be in memory whole."""
    return follow_face([faces for part in parts for faces in detector.detect(decode(part))], name=name)


def tube_box(tube: list[Face | None]) -> tuple[float, float, float, float]:
    """The union of a tube's boxes: one crop for the whole clip, so the crop does not jitter with the detector."""
    boxes = np.array([face.box for face in tube if face is not None])
    if not len(boxes):
        raise FaceError("the face tube is empty")
    return float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max())


def asymmetry(face: Face) -> float:
    """How far from frontal a face is, from MTCNN's five landmarks: the nose's sideways offset (along the line
    between the eyes) from the midpoint of the eyes and from that of the mouth corners, relative to the eye
    distance. 0 for a perfectly frontal face, whatever its roll, size or place."""
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    eye_distance = float(np.linalg.norm(right_eye - left_eye)) or 1e-6
    across = (right_eye - left_eye) / eye_distance
    eye_offset = abs(float(np.dot(nose - (left_eye + right_eye) / 2, across)))
    mouth_offset = abs(float(np.dot(nose - (mouth_left + mouth_right) / 2, across)))
    return (eye_offset + mouth_offset) / eye_distance


def most_frontal(tube: list[Face | None]) -> int:
    """The index of the tube's most frontal face (the source frame to animate)."""
    scored = [(asymmetry(face), index) for index, face in enumerate(tube) if face is not None]
    if not scored:
        raise FaceError("no face to choose a frontal frame from")
    return min(scored)[1]


CROP_DETECTOR = "MTCNN (facenet-pytorch)"
CROP_INTERPOLATION = "bilinear, antialiased"
BOX_RULES = {
    "tube_union": "one square per clip: the union of the main face's boxes through the clip, grown by the margin",
}


@dataclass(frozen=True)
class FaceCropRecord:
    """How a dataset's clips are cut from whole frames, recorded once and applied by everyone.

    The build writes it into ``build_info.json`` and the card, ``train.py`` copies it into a detector's
    ``config.json``, and evaluation, the experiments and the Space crop with ``crop_clip`` under it: a detector is
    shown exactly the framing and resampling it was trained on. ``margin`` sets how much of a crop the face fills:
    its box's longer side is ``1 / (1 + margin)`` of the crop's side."""

    margin: float = 0.3
    size: int = FACE_CROP_SIZE
    detector: str = CROP_DETECTOR
    interpolation: str = CROP_INTERPOLATION
    box: str = "tube_union"
    origin: str = "made by this project's face crop"
    """Where the record comes from: this project's crop, or measured on a release whose crop is not documented."""

    @property
    def face_fraction(self) -> float:
        return 1.0 / (1.0 + self.margin)

    def describe(self) -> str:
        """The record in words, for a dataset's card and a detector's."""
        return (f"{self.detector}; the main face's box grown {1 + self.margin:g}x into a square "
                f"({BOX_RULES[self.box]}), resized to {self.size}x{self.size}, {self.interpolation} "
                f"({self.origin})")  # fmt: skip

    def as_dict(self) -> dict:
        return {"margin": self.margin, "size": self.size, "detector": self.detector,
                "interpolation": self.interpolation, "box": self.box, "origin": self.origin}  # fmt: skip

    @classmethod
    def from_dict(cls, values: dict, where: str = "the face-crop record") -> FaceCropRecord:
        """The record ``as_dict`` wrote; ValueError naming ``where`` and the field when it is not one."""
        if not isinstance(values, dict):
            raise ValueError(f"{where}: expected a mapping of the face crop's settings, got {type(values).__name__}")
        unknown = set(values) - set(cls().as_dict())
        if unknown:
            raise ValueError(f"{where}: unknown face-crop fields {sorted(unknown)}")
        record = cls(**values)
        if not (isinstance(record.margin, (int, float)) and 0 <= record.margin <= 4):
            raise ValueError(f"{where}: margin {record.margin!r} is not a number from 0 to 4")
        if not (isinstance(record.size, int) and 16 <= record.size <= 4096):
            raise ValueError(f"{where}: size {record.size!r} is not a whole number of pixels from 16 to 4096")
        if record.box not in BOX_RULES:
            raise ValueError(f"{where}: box rule {record.box!r} is not one of {', '.join(BOX_RULES)}")
        if record.interpolation != CROP_INTERPOLATION:
            raise ValueError(f"{where}: interpolation {record.interpolation!r}; this project crops with "
                             f"{CROP_INTERPOLATION!r} only")  # fmt: skip
        return record


FACE_CROP = FaceCropRecord()
"""The crop this project makes of whole-frame videos (FaceForensics++, Celeb-DF, driving videos): FaceForensics++'s
1.3x square, 256 pixels."""


def clip_face_box(detector: FaceDetector, frames: torch.Tensor, name: str = "the clip",
                  stride: int = 4) -> tuple[float, float, float, float]:  # fmt: skip
    """The one face box of a clip from its frames (N, 3, H, W): the union of its main face's tube, the faces found
    on every ``stride``-th frame and interpolated between (``detect_at_key_frames``). FaceError when there is no
    face to follow. The mini's crops and the Space's are cut around this box from the same frames."""
    return tube_box(follow_face(detect_at_key_frames(detector, frames, stride), name=name))


def crop_clip(frames: torch.Tensor, box: tuple[float, float, float, float], record: FaceCropRecord) -> torch.Tensor:
    """Frames (N, 3, H, W) cut around ``box`` as ``record`` says: the square ``1 + margin`` times the box's longer
    side, resized to ``record.size`` (the one crop from data to verdict)."""
    return crop_face(frames, box, record.size, record.margin)


@dataclass(frozen=True)
class CropDecision:
    is_crop: bool
    reason: str


def looks_like_crop(detections: list[list[Face]], height: int, width: int, record: FaceCropRecord,
                    tolerance: float = 0.3) -> CropDecision:  # fmt: skip
    """Whether frames of ``height`` x ``width`` whose faces are ``detections`` are already crops made as ``record``
    says: square frames whose main face, in most frames that have one, is centred and fills the share of the
    frame the record's margin leaves it (within ``tolerance`` of it, and of the side for the centre)."""
    if abs(height - width) > 0.02 * max(height, width):
        return CropDecision(False, f"the frames are {width}x{height}, not square as face crops are")
    side = float(width)
    mains = [faces[0] for faces in detections if faces]
    if not mains:
        return CropDecision(False, "no face was found to compare with the recorded crop")
    fractions = np.array([max(f.box[2] - f.box[0], f.box[3] - f.box[1]) / side for f in mains])
    offsets = np.array([max(abs((f.box[0] + f.box[2]) / 2 - side / 2), abs((f.box[1] + f.box[3]) / 2 - side / 2))
                        / side for f in mains])  # fmt: skip
    expected = record.face_fraction
    fits = (np.abs(fractions / expected - 1) <= tolerance) & (offsets <= tolerance / 2)
    fraction, share = float(np.median(fractions)), float(fits.mean())
    where = (
        f"the face fills {fraction:.2f} of the frame's side in the median frame (a crop with margin "
        f"{record.margin:g} has it fill {expected:.2f}) and sits as a crop's face in {share:.0%} of frames"
    )
    return CropDecision(share >= 0.5, where)


def measured_crop_record(detections: list[list[Face]], size: int) -> FaceCropRecord:
    """The record of a release whose crop is not documented (DeepFake MNIST+ says only "MTCNN, 256x256"), measured
    from the main faces ``detections`` of its square ``size`` frames: the margin that leaves the median face the
    share of the side it fills."""
    sides = [max(faces[0].box[2] - faces[0].box[0], faces[0].box[3] - faces[0].box[1]) for faces in detections if faces]
    if not sides:
        raise FaceError("no face found in the frames sampled to measure the release's face crop")
    margin = round(max(0.0, size / float(np.median(sides)) - 1.0), 2)
    return FaceCropRecord(margin=margin, size=size, origin=f"measured on {len(sides)} frames of the release's clips")


def dataset_face_crop(dataset: str) -> FaceCropRecord | None:
    """The face-crop record a local dataset build keeps in its ``build_info.json``; None (and a warning) where it
    holds none, as builds from before the record did, or where the dataset is not a local build."""
    info = Path(dataset) / "build_info.json"
    if not info.is_file():
        logger.warning("%s has no build_info.json: its face crop is not recorded", dataset)
        return None
    values = json.loads(info.read_text()).get("face_crop")
    if values is None:
        logger.warning("%s: build_info.json records no face crop (built before the record "
                                            "was kept; rebuild it to record one)", dataset)  # fmt: skip
        return None
    return FaceCropRecord.from_dict(values, where=str(info))

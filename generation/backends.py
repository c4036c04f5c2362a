"""Animation backends of ``generate.py``, in a registry: each turns a source face and a driving face track into
the fake's frames, with relative motion measured from one reference driving frame.

* ``fomm``: our First Order Motion Model with the official vox-256 checkpoint (the paper's generator).
* ``warp``: the keypoint-warp animator driven by MTCNN's five landmarks, with one affine frame per face
  estimated from them; it needs no checkpoint, so the whole pipeline runs offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .face_tracks import FaceTrack
from .keypoint_warp import warp_animate
from .motion import normalize_relative_motion, to_numpy_image


@dataclass
class BackendOptions:
    checkpoint: Path | None = None
    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    """fp32, bf16 or fp16; half precision only on GPUs."""


class Backend:
    name: str
    summary: str = ""
    """What it is and needs, in a few words, for ``generate.py --help``."""

    @staticmethod
    def check_options(options: BackendOptions) -> None:
        """Raise, saying what to pass, when ``options`` cannot work; before any process loads anything."""

    def animate(self, source: FaceTrack, driving: FaceTrack, reference: int) -> np.ndarray:
        """The fake: uint8 (T, H, W, 3), one frame per driving frame."""
        raise NotImplementedError


BACKENDS: dict[str, type[Backend]] = {}


def register_backend(name: str):
    def register(factory):
        factory.name = name
        BACKENDS[name] = factory
        return factory

    return register


def backends_help() -> str:
    """Each registered backend's name and summary, for the ``--backend`` help."""
    return "; ".join(f"{name}: {factory.summary}" for name, factory in sorted(BACKENDS.items()))


def backend_class(name: str) -> type[Backend]:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


def create_backend(name: str, options: BackendOptions) -> Backend:
    return backend_class(name)(options)


def as_float(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    return frames.to(device).float() / 255


LANDMARK_TEMPLATE = (
    torch.tensor([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]])
    / 56
    - 1
)
"""A frontal face's five landmarks (eyes, nose, mouth corners) in [-1, 1]: the widely used 112x112 alignment
template of face recognition. Each face's affine frame maps this template onto its landmarks."""
WARP_KEYPOINT_STD = torch.tensor([0.36, 0.09, 0.09, 0.1, 0.08, 0.08])
"""Heatmap reach of the warp backend's keypoints: the landmarks' centre spans the face, the rest stay local."""


def landmark_keypoints(landmarks: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (T, 6, 2) in [-1, 1], the five landmarks' centre first, and Jacobians (T, 6, 2, 2): the linear
    part of the least-squares affine map from ``LANDMARK_TEMPLATE`` to each frame's landmarks (T, 5, 2)."""
    points = torch.from_numpy(np.asarray(landmarks, np.float32)) * (2 / size) - 1
    keypoints = torch.cat([points.mean(dim=1, keepdim=True), points], dim=1)
    design = torch.cat([LANDMARK_TEMPLATE, torch.ones(5, 1)], dim=1)  # (5, 3): [x, y, 1]
    affine = torch.linalg.lstsq(design.expand(len(points), 5, 3), points).solution  # (T, 3, 2)
    jacobian = affine[:, :2].transpose(1, 2)
    return keypoints, jacobian[:, None].expand(-1, keypoints.shape[1], 2, 2).contiguous()


@register_backend("warp")
class WarpBackend(Backend):
    """Runs on the CPU whatever the device: its work is small next to MTCNN's and the encoder's."""

    summary = "keypoint warp from MTCNN landmarks, no checkpoint"

    def __init__(self, options: BackendOptions):
        pass

    @torch.inference_mode()
    def animate(self, source: FaceTrack, driving: FaceTrack, reference: int) -> np.ndarray:
        size = source.frames.shape[-1]
        kp_source, jac_source = landmark_keypoints(source.landmarks, size)
        kp_driving, jac_driving = landmark_keypoints(driving.filled_landmarks(), size)
        count = len(kp_driving)
        kp_new, jac_new = normalize_relative_motion(
            kp_source.expand(count, -1, -1), kp_driving, kp_driving[reference : reference + 1].expand(count, -1, -1),
            jac_source.expand(count, -1, -1, -1), jac_driving,
            jac_driving[reference : reference + 1].expand(count, -1, -1, -1),
        )  # fmt: skip
        frames = warp_animate(as_float(source.frames, torch.device("cpu")), kp_source, jac_source, kp_new, jac_new,
                              WARP_KEYPOINT_STD)  # fmt: skip
        return to_numpy_image(frames)


@register_backend("fomm")
class FommBackend(Backend):
    summary = "FOMM with --checkpoint"

    @staticmethod
    def check_options(options: BackendOptions) -> None:
        if options.checkpoint is None:
            raise ValueError("--backend fomm needs --checkpoint: the official vox-cpk.pth.tar (from the "
                             "first-order-model project's links) or its safetensors conversion "
                             "(python -m generation.fomm.checkpoint CKPT --out X.safetensors); "
                             "--backend warp runs without one")  # fmt: skip
        if not Path(options.checkpoint).is_file():
            raise FileNotFoundError(f"--checkpoint {options.checkpoint} does not exist")

    def __init__(self, options: BackendOptions):
        from .fomm import AnimationOptions, load_vox256

        self.check_options(options)
        self.device = options.device
        half = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(options.precision)
        if half is not None and self.device.type == "cpu":
            half = None  # CPU half precision is slower than fp32 and less exact
        self.kp_detector, self.generator = (module.to(self.device) for module in load_vox256(options.checkpoint))
        on_gpu = self.device.type == "cuda"
        if on_gpu:
            self.kp_detector.to(memory_format=torch.channels_last)
            self.generator.to(memory_format=torch.channels_last)
        self.options = AnimationOptions(autocast_dtype=half, channels_last=on_gpu)

    def animate(self, source: FaceTrack, driving: FaceTrack, reference: int) -> np.ndarray:
        from .fomm import animate

        frames = animate(self.kp_detector, self.generator, as_float(source.frames, self.device),
                         as_float(driving.frames, self.device), self.options, reference_frame=reference)  # fmt: skip
        return to_numpy_image(frames.cpu())

"""Animation backends of ``generate.py``, in a registry: each turns a source face and a driving face track into
the fake's frames, with relative motion measured from one reference driving frame.

* ``fomm``: our First Order Motion Model with the official vox-256 checkpoint (the paper's generator).
* ``tpsmm``: our Thin-Plate Spline Motion Model with its official vox checkpoint: fakes of an animator detectors
  trained on DeepFake MNIST+ never saw.
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
from .precision import half_dtype, precision_name
from .tpsmm.animate import MODES as TPSMM_MODES


@dataclass
class BackendOptions:
    checkpoint: Path | None = None
    device: torch.device = torch.device("cpu")
    precision: str = "fp32"
    """fp32, bf16 or fp16: half precision on GPUs, bf16 on CPUs with native bf16 (``precision.half_dtype``)."""
    animation_mode: str | None = None
    """tpsmm: relative (its default), standard or avd, as TPSMM's demo ``--mode``; the others take none."""


class Backend:
    name: str
    method: str
    """The manipulation method's name in the manifest and the dataset's rows (``FOMM`` for DeepFake MNIST+)."""
    summary: str = ""
    """What it is and needs, in a few words, for ``generate.py --help``."""

    precision: str = "fp32"
    """What its heavy layers run in on this device (``CheckpointBackend`` decides from ``--precision``)."""

    animation_modes: tuple[str, ...] = ()
    """The modes ``--animation_mode`` may name (none: only the backend's own)."""

    @classmethod
    def check_options(cls, options: BackendOptions) -> None:
        """Raise, saying what to pass, when ``options`` cannot work; before any process loads anything."""
        if options.animation_mode is not None and not cls.animation_modes:
            raise ValueError(f"--animation_mode is for --backend tpsmm; --backend {cls.name} has one mode")
        if options.animation_mode is not None and options.animation_mode not in cls.animation_modes:
            raise ValueError(f"--animation_mode {options.animation_mode!r}: --backend {cls.name} has "
                             f"{', '.join(cls.animation_modes)}")  # fmt: skip

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

    method = "keypoint_warp"
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


class CheckpointBackend(Backend):
    """A learned animator from ``--checkpoint``: in half precision (``--precision``) and channels_last on GPUs, and
    on CPUs with native bf16 where the animator's half-precision path is measured to hold (``cpu_bf16``)."""

    cpu_bf16: bool = False
    """Whether bf16 on a CPU keeps the frames within 40 dB PSNR of fp32's (``benchmarks.fomm_animation``,
    ``benchmarks.tpsmm_animation``)."""

    checkpoint_help: str
    """What ``--checkpoint`` takes, for the error when it is missing."""

    @classmethod
    def check_options(cls, options: BackendOptions) -> None:
        super().check_options(options)
        if options.checkpoint is None:
            raise ValueError(f"--backend {cls.name} needs --checkpoint: {cls.checkpoint_help}; "
                             "--backend warp runs without one")  # fmt: skip
        if not Path(options.checkpoint).is_file():
            raise FileNotFoundError(f"--checkpoint {options.checkpoint} does not exist")

    def __init__(self, options: BackendOptions):
        self.check_options(options)
        self.device = options.device
        self.half = half_dtype(options.precision, self.device)
        if self.device.type == "cpu" and not self.cpu_bf16:
            self.half = None
        self.channels_last = self.device.type == "cuda" or self.half is not None  # oneDNN's bf16 convs want it too
        self.animation_mode = options.animation_mode
        self.load(Path(options.checkpoint))

    def load(self, checkpoint: Path) -> None:
        """Load the networks (with ``place``) and set the animation options."""
        raise NotImplementedError

    @property
    def precision(self) -> str:
        return precision_name(self.half)

    def place(self, module: torch.nn.Module) -> torch.nn.Module:
        """The module on the device, channels_last where it runs so."""
        module = module.to(self.device)
        return module.to(memory_format=torch.channels_last) if self.channels_last else module

    def frames(self, source: torch.Tensor, driving: torch.Tensor, reference: int) -> torch.Tensor:
        """The source (1, 3, H, W) animated by the driving frames (T, 3, H, W), floats in [0, 1] on the device."""
        raise NotImplementedError

    def animate(self, source: FaceTrack, driving: FaceTrack, reference: int) -> np.ndarray:
        frames = self.frames(as_float(source.frames, self.device), as_float(driving.frames, self.device), reference)
        return to_numpy_image(frames.cpu())


@register_backend("fomm")
class FommBackend(CheckpointBackend):
    method = "FOMM"
    cpu_bf16 = True
    summary = "FOMM with --checkpoint"
    checkpoint_help = ("the official vox-cpk.pth.tar (from the first-order-model project's links) or its safetensors "
                       "conversion (python -m generation.fomm.checkpoint CKPT --out X.safetensors)")  # fmt: skip

    def load(self, checkpoint: Path) -> None:
        from .fomm import AnimationOptions, load_vox256

        self.kp_detector, self.generator = (self.place(module) for module in load_vox256(checkpoint))
        self.options = AnimationOptions(autocast_dtype=self.half, channels_last=self.channels_last)

    def frames(self, source: torch.Tensor, driving: torch.Tensor, reference: int) -> torch.Tensor:
        from .fomm import animate

        return animate(self.kp_detector, self.generator, source, driving, self.options, reference_frame=reference)


@register_backend("tpsmm")
class TpsmmBackend(CheckpointBackend):
    """TPSMM's demo default, relative motion with the faces' size ratio, from the driving frame ``reference``, or
    another of its demo's modes (``--animation_mode``)."""

    method = "TPSMM"
    cpu_bf16 = True
    summary = "Thin-Plate Spline Motion Model with --checkpoint"
    checkpoint_help = ("the official vox.pth.tar (from the Thin-Plate-Spline-Motion-Model project's links) or its "
                       "safetensors conversion (python -m generation.tpsmm.checkpoint CKPT --out X.safetensors)"
                       )  # fmt: skip
    animation_modes = TPSMM_MODES

    def load(self, checkpoint: Path) -> None:
        from .tpsmm import AnimationOptions, check_mode, load_tpsmm

        self.networks = self.place(load_tpsmm(checkpoint))
        self.options = AnimationOptions(autocast_dtype=self.half, channels_last=self.channels_last,
                                        mode=self.animation_mode or AnimationOptions.mode)  # fmt: skip
        check_mode(self.networks, self.options.mode)  # at load, not at the first job

    def frames(self, source: torch.Tensor, driving: torch.Tensor, reference: int) -> torch.Tensor:
        from .tpsmm import animate

        return animate(self.networks, source, driving, self.options, reference_frame=reference)

"""Animating one source face with a driving video through FOMM, as its demo does with ``relative`` and
``adapt_scale``: the source keypoints move by the driving keypoints' displacement from a reference driving
frame, scaled by the ratio of the faces' sizes, and the Jacobians compose the same way.

Faster than the demo's frame-by-frame loop with the same result: the source's keypoints and features are computed
once, upsampling convolutions run on the small input by phase (``blocks.phase_upsampling``), many driving frames
go through each forward pass on GPUs, and everything runs without autograd (with autocast and
channels_last when asked: on GPUs, and in bf16 on CPUs that compute in it natively). That loop
(``animate_source_once``) and its options (``BatchingOptions``) serve our TPSMM too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from generation.motion import convex_hull_area, normalize_relative_motion

from .blocks import phase_upsampling


@dataclass
class BatchingOptions:
    """How driving frames go through an animator's networks; every setting gives the same frames up to float
    rounding (or half precision's, with ``autocast_dtype``)."""

    batch_size: int | None = None
    """Driving frames per forward pass; by default 16 on GPUs, and on the CPU ``cpu_batch_size``."""
    cpu_batch_size: int = 1
    """The CPU's default ``batch_size``: 1 where whole forward passes measured slower per frame in batches (the
    CPU's gain is in not recomputing the source's work); FOMM batches its keypoints and dense motion only
    (``AnimationOptions.decoder_batch_size``) and sets 8."""
    autocast_dtype: torch.dtype | None = None
    """torch.bfloat16 or torch.float16 on GPUs, torch.bfloat16 on CPUs that compute in it natively
    (``generation.precision.half_dtype`` decides). The keypoints and the dense motion stay float32 under it."""
    channels_last: bool = False
    phase_upsampling: bool = True
    """Upsample the generator's decoder by phase convolution (``blocks.phase_upsampling``): the same frames with
    fewer operations."""


@dataclass
class AnimationOptions(BatchingOptions):
    cpu_batch_size: int = 8
    decoder_batch_size: int | None = None
    """Driving frames per pass through the generator's bottleneck and decoder, within each ``batch_size`` chunk
    whose keypoints and dense motion go in one pass; by default the whole chunk on GPUs and 1 on the CPU, where
    the small maps of keypoints and dense motion gain from batches (a third less time a frame at 8) and the
    decoder's large maps do not."""
    relative: bool = True
    """Move the source keypoints by the driving motion, instead of copying the driving keypoints."""
    adapt_movement_scale: bool = True
    """Scale the motion by the ratio of the source's and the driving face's keypoint convex-hull areas."""


DEFAULT_OPTIONS = AnimationOptions()


def expand_batch(tensors: dict, count: int) -> dict:
    """One source's tensors (1, ...) seen as a batch of ``count`` without copying."""
    return {key: value.expand(count, *value.shape[1:]) for key, value in tensors.items()}


def _drive(kp_source: dict, kp_driving: dict, kp_reference: dict, options: AnimationOptions) -> dict:
    if not options.relative:
        return kp_driving
    count = kp_driving["value"].shape[0]
    source, reference = expand_batch(kp_source, count), expand_batch(kp_reference, count)
    with torch.autocast(kp_driving["value"].device.type, enabled=False):  # keypoints stay float32 (see detector)
        value, jacobian = normalize_relative_motion(
            source["value"], kp_driving["value"], reference["value"], source.get("jacobian"),
            kp_driving.get("jacobian"), reference.get("jacobian"), options.adapt_movement_scale,
        )  # fmt: skip
    return {"value": value, **({"jacobian": jacobian} if jacobian is not None else {})}


@torch.no_grad()  # not inference_mode: autocast casts each weight once per call only outside it, every use inside
def animate_source_once(source: torch.Tensor, driving: torch.Tensor, options: BatchingOptions, reference_frame: int,
                        device: torch.device, prepare: Callable[[torch.Tensor], object],
                        detect: Callable[[torch.Tensor], dict], render: Callable[[object, dict, dict], torch.Tensor],
                        upsampling: Iterable[nn.Module] = ()) -> torch.Tensor:  # fmt: skip
    """The loop our animators share: ``prepare(source)`` does the source's work once, ``detect(frames)`` gives
    keypoints, and ``render(prepared, kp_chunk, kp_reference)`` a chunk's predictions; driving frames go in
    chunks of ``options.batch_size``, with autocast, channels_last and phase upsampling of the ``upsampling``
    modules' up blocks as ``options`` say. Float (N, 3, H, W)."""
    autocast = (torch.autocast(device.type, dtype=options.autocast_dtype) if options.autocast_dtype is not None
                else contextlib.nullcontext())  # fmt: skip
    layout = torch.channels_last if options.channels_last else torch.contiguous_format
    source = source.to(device).contiguous(memory_format=layout)
    upsampling = phase_upsampling(*upsampling) if options.phase_upsampling else contextlib.nullcontext()
    with autocast, upsampling:
        prepared = prepare(source)
        kp_reference = detect(driving[reference_frame : reference_frame + 1].to(device))
        outputs = []
        batch_size = options.batch_size or (options.cpu_batch_size if device.type == "cpu" else 16)
        for chunk in driving.split(batch_size):
            chunk = chunk.to(device).contiguous(memory_format=layout)
            outputs.append(render(prepared, detect(chunk), kp_reference).float())
    return torch.cat(outputs)


def animate(kp_detector: nn.Module, generator: nn.Module, source: torch.Tensor, driving: torch.Tensor,
            options: AnimationOptions = DEFAULT_OPTIONS, reference_frame: int = 0) -> torch.Tensor:  # fmt: skip
    """The source (1, 3, H, W) animated by every driving frame (N, 3, H, W); float in [0, 1], (N, 3, H, W).

    Motion is measured from driving frame ``reference_frame`` (see ``best_reference_frame``). Each output frame
    depends only on its driving frame and the reference, so this gives what the FOMM demo's ``--find_best_frame``
    gets by animating forwards from that frame and backwards to the start, in one pass and in order.
    """

    def prepare(source: torch.Tensor) -> tuple:
        return source, kp_detector(source), generator.encode(source)

    def render(prepared: tuple, kp_chunk: dict, kp_reference: dict) -> torch.Tensor:
        source, kp_source, features = prepared
        count = kp_chunk["value"].shape[0]
        motion = generator.dense_motion_network(source.expand(count, -1, -1, -1),
                                                _drive(kp_source, kp_chunk, kp_reference, options),
                                                expand_batch(kp_source, count))  # fmt: skip
        step = options.decoder_batch_size or (1 if source.device.type == "cpu" else count)
        parts = [{key: value[start : start + step] for key, value in motion.items()} for start in range(0, count, step)]
        return torch.cat([generator.decode(features, part) for part in parts])

    # Only the generator's decoder: the same frames to float rounding. In the hourglasses of the keypoint detector
    # and the dense motion network, rounding differences pass through sharp softmaxes and grow to 1e-3.
    return animate_source_once(source, driving, options, reference_frame, next(generator.parameters()).device,
                               prepare, kp_detector, render, generator.up_blocks)  # fmt: skip


def normalised_landmarks(landmarks: torch.Tensor) -> torch.Tensor:
    """Landmarks (N, L, 2) centred and divided by the square root of their convex-hull area (face size)."""
    centred = landmarks - landmarks.mean(dim=1, keepdim=True)
    return centred / convex_hull_area(landmarks).sqrt().view(-1, 1, 1).to(landmarks)


def best_reference_frame(source_landmarks: torch.Tensor, driving_landmarks: torch.Tensor) -> int:
    """The driving frame whose normalised landmarks (N, L, 2) are closest to the source's (1, L, 2): starting
    relative motion there makes the source's pose the driving video's starting pose."""
    distance = (normalised_landmarks(driving_landmarks) - normalised_landmarks(source_landmarks)).pow(2).sum((1, 2))
    return int(distance.argmin())


def per_frame_reference(kp_detector: nn.Module, generator: nn.Module, source: torch.Tensor, driving: torch.Tensor,
                        options: AnimationOptions = DEFAULT_OPTIONS) -> torch.Tensor:  # fmt: skip
    """The demo's loop, for comparison: one driving frame per forward pass, the source encoded every frame."""
    with torch.no_grad():
        kp_source = kp_detector(source)
        kp_reference = kp_detector(driving[:1])
        frames = []
        for index in range(driving.shape[0]):
            kp_driving = _drive(kp_source, kp_detector(driving[index : index + 1]), kp_reference, options)
            frames.append(generator(source, kp_driving, kp_source)["prediction"])
    return torch.cat(frames)

"""Animating one source face with a driving video through FOMM, as its demo does with ``relative`` and
``adapt_scale``: the source keypoints move by the driving keypoints' displacement from a reference driving
frame, scaled by the ratio of the faces' sizes, and the Jacobians compose the same way.

Faster than the demo's frame-by-frame loop with the same result: the source's keypoints and features are computed
once, upsampling convolutions run on the small input by phase (``blocks.phase_upsampling``), many driving frames
go through each forward pass on GPUs, and everything runs under ``torch.inference_mode`` (with autocast and
channels_last on GPUs when asked).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from generation.motion import convex_hull_area, normalize_relative_motion

from .blocks import phase_upsampling


@dataclass
class AnimationOptions:
    relative: bool = True
    """Move the source keypoints by the driving motion, instead of copying the driving keypoints."""
    adapt_movement_scale: bool = True
    """Scale the motion by the ratio of the source's and the driving face's keypoint convex-hull areas."""
    batch_size: int | None = None
    """Driving frames per forward pass; by default 16 on GPUs and 1 on the CPU, where batching measured slower
    per frame (the CPU's gain is in not recomputing the source's work)."""
    autocast_dtype: torch.dtype | None = None
    """torch.bfloat16 or torch.float16 on GPUs."""
    channels_last: bool = False
    phase_upsampling: bool = True
    """Upsample the generator's decoder by phase convolution (``blocks.phase_upsampling``): the same frames with
    fewer operations."""


DEFAULT_OPTIONS = AnimationOptions()


def _expand(keypoints: dict, count: int) -> dict:
    return {key: value.expand(count, *value.shape[1:]) for key, value in keypoints.items()}


def _drive(kp_source: dict, kp_driving: dict, kp_reference: dict, options: AnimationOptions) -> dict:
    if not options.relative:
        return kp_driving
    count = kp_driving["value"].shape[0]
    source, reference = _expand(kp_source, count), _expand(kp_reference, count)
    value, jacobian = normalize_relative_motion(
        source["value"], kp_driving["value"], reference["value"], source.get("jacobian"),
        kp_driving.get("jacobian"), reference.get("jacobian"), options.adapt_movement_scale,
    )  # fmt: skip
    return {"value": value, **({"jacobian": jacobian} if jacobian is not None else {})}


@torch.inference_mode()
def animate(kp_detector: nn.Module, generator: nn.Module, source: torch.Tensor, driving: torch.Tensor,
            options: AnimationOptions = DEFAULT_OPTIONS, reference_frame: int = 0) -> torch.Tensor:  # fmt: skip
    """The source (1, 3, H, W) animated by every driving frame (N, 3, H, W); float in [0, 1], (N, 3, H, W).

    Motion is measured from driving frame ``reference_frame`` (see ``best_reference_frame``). Each output frame
    depends only on its driving frame and the reference, so this gives what the FOMM demo's ``--find_best_frame``
    gets by animating forwards from that frame and backwards to the start, in one pass and in order.
    """
    device = next(generator.parameters()).device
    autocast = (torch.autocast(device.type, dtype=options.autocast_dtype) if options.autocast_dtype is not None
                else contextlib.nullcontext())  # fmt: skip
    layout = torch.channels_last if options.channels_last else torch.contiguous_format
    source = source.to(device).contiguous(memory_format=layout)
    # Only the generator's decoder: the same frames to float rounding. In the hourglasses of the keypoint detector
    # and the dense motion network, rounding differences pass through sharp softmaxes and grow to 1e-3.
    upsampling = phase_upsampling(*generator.up_blocks) if options.phase_upsampling else contextlib.nullcontext()
    with autocast, upsampling:
        kp_source = kp_detector(source)
        features = generator.encode(source)
        kp_reference = kp_detector(driving[reference_frame : reference_frame + 1].to(device))
        outputs = []
        batch_size = options.batch_size or (1 if device.type == "cpu" else 16)
        for chunk in driving.split(batch_size):
            chunk = chunk.to(device).contiguous(memory_format=layout)
            kp_driving = _drive(kp_source, kp_detector(chunk), kp_reference, options)
            count = chunk.shape[0]
            out = generator(source.expand(count, -1, -1, -1), kp_driving, _expand(kp_source, count),
                            source_features=features)  # fmt: skip
            outputs.append(out["prediction"].float())
    return torch.cat(outputs)


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

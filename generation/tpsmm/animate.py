"""Animating one source face with a driving video through TPSMM, in the modes of its demo:

* ``relative`` (the default): the source keypoints move by the driving keypoints' displacement from a reference
  driving frame, scaled by the ratio of the faces' sizes (always, in TPSMM's demo);
* ``standard``: the driving keypoints as they are;
* ``avd``: the AVD network's keypoints, the driving frame's pose on the source's face shape (checkpoints with it).

Faster than the demo's frame-by-frame loop with the same result, by FOMM's loop (``fomm.animate``): the source's
keypoints, encoder features and downscaled image are computed once, upsampling convolutions run by phase, many
driving frames go through each forward pass (on the CPU through the keypoints and the dense motion only), with
autocast and channels_last when asked: on GPUs, and in bf16 on CPUs that compute in it natively, where the
keypoints, the thin-plate solves and the softmax that blends the motions stay float32 (``layers`` keeps the bf16
convolutions fed in their layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from generation.fomm.animate import BatchingOptions, animate_source_once, expand_batch
from generation.motion import normalize_relative_motion

from .checkpoint import TPSMM

MODES = ("relative", "standard", "avd")


@dataclass
class AnimationOptions(BatchingOptions):
    cpu_batch_size: int = 8
    inpainting_batch_size: int | None = None
    """Driving frames per pass through the inpainting network, within each ``batch_size`` chunk whose keypoints and
    dense motion go in one pass; by default the whole chunk on GPUs and 1 on the CPU, where the keypoint detector's
    and the dense motion's small maps gain from batches (a seventh less time a frame at 8, the hourglass 40% less)
    and the inpainting's large maps do not (a batch of 4 took 7% more time a frame)."""
    mode: str = "relative"
    """relative, standard or avd, as TPSMM's demo ``--mode``."""

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"TPSMM animation mode {self.mode!r}: choose one of {', '.join(MODES)}")


DEFAULT_OPTIONS = AnimationOptions()


def check_mode(networks: TPSMM, mode: str) -> None:
    """Refuse a mode that ``networks`` cannot animate in: avd needs a checkpoint with the AVD network."""
    if mode == "avd" and networks.avd_network is None:
        raise ValueError("TPSMM mode avd needs a checkpoint with an avd_network entry; use relative or standard")


def driven_keypoints(networks: TPSMM, kp_source: dict, kp_driving: dict, kp_reference: dict, mode: str) -> dict:
    """The keypoints to animate the source with in each driving frame's place (B, 50, 2), by ``mode``."""
    count = kp_driving["fg_kp"].shape[0]
    if mode == "standard":
        return kp_driving
    if mode == "avd":
        check_mode(networks, mode)
        return networks.avd_network(expand_batch(kp_source, count), kp_driving)
    source, reference = expand_batch(kp_source, count), expand_batch(kp_reference, count)
    value, _ = normalize_relative_motion(source["fg_kp"], kp_driving["fg_kp"], reference["fg_kp"])
    return {"fg_kp": value}


def animate(networks: TPSMM, source: torch.Tensor, driving: torch.Tensor, options: AnimationOptions = DEFAULT_OPTIONS,
            reference_frame: int = 0) -> torch.Tensor:  # fmt: skip
    """The source (1, 3, H, W) animated by every driving frame (N, 3, H, W); float in [0, 1], (N, 3, H, W); H and
    W multiples of 128 (the dense motion's hourglass halves a quarter-size image five times).

    Motion is measured from driving frame ``reference_frame``; each output frame depends only on its driving frame
    and the reference, so this gives what the demo's ``--find_best_frame`` gets in two passes, in one."""
    check_mode(networks, options.mode)
    dense_motion, inpainting = networks.dense_motion_network, networks.inpainting_network

    def prepare(source: torch.Tensor) -> tuple:
        # the encoder's maps are only ever sampled, which runs in float32: converted once here, not every frame
        features = [level.float() for level in inpainting.encode(source)]
        return source, networks.kp_detector(source), dense_motion.down(source), features

    def render(prepared: tuple, kp_chunk: dict, kp_reference: dict) -> torch.Tensor:
        source, kp_source, downscaled, features = prepared
        kp_norm = driven_keypoints(networks, kp_source, kp_chunk, kp_reference, options.mode)
        motion = dense_motion(source, kp_norm, kp_source, downscaled=downscaled)
        count = kp_norm["fg_kp"].shape[0]
        step = options.inpainting_batch_size or (1 if source.device.type == "cpu" else count)
        return torch.cat([inpainting(source, frames_of(motion, start, start + step), source_features=features)
                          ["prediction"] for start in range(0, count, step)])  # fmt: skip

    # Phase upsampling where up blocks feed only the occlusion masks and the decoder; the dense motion's hourglass
    # feeds a softmax over the transforms, which would grow the rounding differences.
    device = next(networks.parameters()).device
    return animate_source_once(source, driving, options, reference_frame, device, prepare, networks.kp_detector, render,
                               [inpainting.up_blocks, dense_motion.up])  # fmt: skip


def frames_of(motion: dict, start: int, stop: int) -> dict:
    """The dense motion's outputs for driving frames ``start`` to ``stop`` of a chunk (its occlusion masks a list)."""
    return {key: [mask[start:stop] for mask in value] if isinstance(value, list) else value[start:stop]
            for key, value in motion.items()}  # fmt: skip


@torch.no_grad()
def per_frame_reference(networks: TPSMM, source: torch.Tensor, driving: torch.Tensor,
                        mode: str = "relative") -> torch.Tensor:  # fmt: skip
    """The demo's loop, for comparison: one driving frame per forward pass, the source's work redone every frame."""
    kp_source = networks.kp_detector(source)
    kp_reference = networks.kp_detector(driving[:1])
    frames = []
    for index in range(driving.shape[0]):
        kp_driving = networks.kp_detector(driving[index : index + 1])
        kp_norm = driven_keypoints(networks, kp_source, kp_driving, kp_reference, mode)
        motion = networks.dense_motion_network(source, kp_norm, kp_source)
        frames.append(networks.inpainting_network(source, motion)["prediction"])
    return torch.cat(frames)

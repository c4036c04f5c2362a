"""Training's upload augmentation: ours against the float path it replaced, on the same frames and draws, in one run.

    python -m benchmarks.upload_augment [--videos 200]

Each training video of the demo goes through ``UploadAugment`` on the step's critical path (8 frames of 256x256 a
video). Ours resamples on PyTorch's uint8 channels-last kernels and blurs on channels-last memory; the baseline is
the same augmentation with every resize done on floats and the blur on the frame cache's NCHW memory, as it was
until December 2026. Both run one thread, with the same seeds, so both draw the same steps; the time is the
process's CPU time. The ratio is the baseline's time over ours (target >= 1.5).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F

from dataset_script import upload_augment
from dataset_script.frames import VideoFrames
from dataset_script.perturbations import separable_gaussian, to_uint8
from dataset_script.upload_augment import UploadAugment

from .common import cpu_kind, make_clips, timed


def float_resize(frames: torch.Tensor, size: int, kernel: str) -> torch.Tensor:
    """The baseline's resize: every kernel on floats."""
    smooth = kernel in ("bilinear", "bicubic")
    resized = F.interpolate(frames.float(), size=(size, size), mode=kernel, antialias=smooth,
                            align_corners=False if smooth else None)  # fmt: skip
    return to_uint8(resized)


def nchw_blur(pixels: torch.Tensor, sigma: float, half: int, pad_mode: str) -> torch.Tensor:
    """The baseline's blur: the same depthwise convolutions on NCHW memory, as the frame cache gives frames."""
    return separable_gaussian(pixels, sigma, half, pad_mode, memory_format=torch.contiguous_format)


def augment_all(augment: UploadAugment, videos: list[torch.Tensor]) -> None:
    for seed, frames in enumerate(videos):
        augment(frames, torch.Generator().manual_seed(seed))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=200, help="videos of 8 frames, 256x256")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    folder = Path(tempfile.gettempdir()) / "dfmp-bench-augment-clips"
    clips = make_clips(folder, count=args.videos, frames=8)  # H.264 clips: what the frame cache holds, decoded
    # contiguous, as the frame cache hands them to the augmentation in training
    videos = [VideoFrames(clip).read(range(8)).contiguous() for clip in clips]
    augment = upload_augment.UPLOADS
    ours = timed(lambda: augment_all(augment, videos), clock=time.process_time)
    with (mock.patch.object(upload_augment, "resize", float_resize),
          mock.patch.object(upload_augment, "separable_gaussian", nchw_blur)):  # fmt: skip
        baseline = timed(lambda: augment_all(augment, videos), clock=time.process_time)
    print(f"upload augmentation on the CPU ({cpu_kind()}), one thread, {args.videos} videos of 8 frames 256x256: "
          f"float path {baseline / args.videos * 1e3:.1f} ms a video, ours {ours / args.videos * 1e3:.1f} ms | "
          f"ratio {baseline / ours:.2f} (target >= 1.5)")  # fmt: skip


if __name__ == "__main__":
    main()

"""Face-crop preprocessing (``dataset_script.face_crops``) against its floor: bare batched MTCNN plus decoding of the
same frames, in the same run. Target: the whole pipeline (tube, one box, crop, lossless encode, records) at >= 0.8
of the floor's frames per second. Then the projected time for all of FaceForensics++ c23.

    python -m benchmarks.face_crops [--videos 4 --frames 64 --height 720 --width 1280 --device cpu]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from dataset_script.clips import DEFAULT_MAX_FRAMES
from dataset_script.compression import default_workers
from dataset_script.face_crops import CropJob, crop_videos, default_device
from dataset_script.faces import FaceDetector, chunks
from dataset_script.frames import VideoFrames
from generation.mini.cast import identity_for
from generation.mini.face import FaceState, render
from generation.video import write_video

FFPP_C23_VIDEOS = 1000 + 4000 + 1000
"""Originals, the four methods' fakes, and FaceShifter's."""
FFPP_FRAMES_PER_VIDEO = 500


def make_videos(folder: Path, count: int, frames: int, height: int, width: int) -> list[Path]:
    """Full frames with one mini face off centre (a quarter of the frame's height), at FF++'s c23-like quality."""
    paths = []
    for index in range(count):
        path = folder / f"{index:03d}.mp4"
        side = height // 3
        state = FaceState.neutral(frames)
        state.yaw = torch.linspace(-10, 10, frames)
        face = (render(identity_for(f"bench{index}", 0), state, size=side) * 255).round().byte()
        canvas = np.full((frames, height, width, 3), 90 + 20 * index, np.uint8)
        top, left = height // 5, width // 2 + index * 7
        canvas[:, top : top + side, left : left + side] = face.permute(0, 2, 3, 1).numpy()
        write_video(canvas, path, crf=23)
        paths.append(path)
    return paths


def floor(paths: list[Path], frames: int, detector: FaceDetector) -> float:
    """Decode and detect every frame, nothing else: seconds."""
    started = time.perf_counter()
    for path in paths:
        video = VideoFrames(path)
        for run in chunks(min(frames, video.num_frames), 64):
            detector.detect(video.read(run))
    return time.perf_counter() - started


def pipeline(paths: list[Path], frames: int, out: Path, workers: int, device: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    jobs = [CropJob(path.name, (("c23", path),), (("c23", out / f"{path.stem}.mp4"),), out / f"{path.stem}.json",
                    frames) for path in paths]  # fmt: skip
    started = time.perf_counter()
    records, failures, _ = crop_videos(jobs, workers=workers, device=device, progress=False)
    assert not failures and len(records) == len(paths), failures
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.face_crops")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--device", default=default_device())
    args = parser.parse_args(argv)
    cores = default_workers()
    with tempfile.TemporaryDirectory() as folder:
        paths = make_videos(Path(folder) / "src", args.videos, args.frames, args.height, args.width)
        total = args.videos * args.frames
        detector = FaceDetector(device=args.device)
        floor(paths[:1], 8, detector)  # warm-up
        bare = floor(paths, args.frames, detector)
        # On a CPU the floor uses every core through torch's threads; the pipeline through worker processes.
        ours = pipeline(paths, args.frames, Path(folder) / "out", cores, args.device)
    floor_fps, ours_fps = total / bare, total / ours
    print(f"face crops, {args.videos} videos x {args.frames} frames of {args.width}x{args.height}, {args.device}, "
          f"{cores} cores")  # fmt: skip
    print(f"  bare MTCNN + decoding : {floor_fps:7.1f} frames/s")
    print(f"  face-crop pipeline    : {ours_fps:7.1f} frames/s   ratio {ours_fps / floor_fps:.2f} (target >= 0.8)")
    frames = FFPP_C23_VIDEOS * min(FFPP_FRAMES_PER_VIDEO, DEFAULT_MAX_FRAMES)
    print(f"  all of FF++ c23 ({FFPP_C23_VIDEOS} videos, {min(FFPP_FRAMES_PER_VIDEO, DEFAULT_MAX_FRAMES)} frames each "
          f"with --max_frames {DEFAULT_MAX_FRAMES}): {frames / ours_fps / 3600:.1f} h here")  # fmt: skip


if __name__ == "__main__":
    main()

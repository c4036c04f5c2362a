"""Face detection and face-crop preprocessing, each against its baseline in the same run.

* MTCNN: our batched implementation (``dataset_script.mtcnn``) against ``facenet_pytorch.MTCNN``, both through
  ``FaceDetector`` on the same frames, timed in turn (best of ``--repeats`` each, so the machine's load weighs on
  both): the Space's frames (32 frames of a 256x256 mini clip) and whole 1280x720 frames, shrunk to the detector's
  640-pixel side as the build does (the shrink itself, the same for both, timed apart) and at full size; with
  torch's default threads (the Space) and with one (each of the build's worker processes). Target: >= 2x
  facenet-pytorch's frames per second. The largest box, landmark and probability differences between the two are
  printed beside (within 0.5 px, 1 px and 1e-3).
* Face-crop preprocessing (``dataset_script.face_crops``) against its floor: bare batched MTCNN plus decoding of
  the same frames. Target: the whole pipeline (tube, one box, crop, lossless encode, records) at >= 0.8 of the
  floor's frames per second. Then the projected time for all of FaceForensics++ c23.

    python -m benchmarks.face_crops [--videos 4 --frames 64 --height 720 --width 1280 --device cpu] [--mtcnn_only]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dataset_script.clips import DEFAULT_MAX_FRAMES
from dataset_script.compression import default_workers
from dataset_script.face_crops import CropJob, crop_videos, default_device
from dataset_script.faces import FaceDetector, chunks
from dataset_script.frames import VideoFrames, evenly_spaced_indices
from generation.mini.cast import identity_for
from generation.mini.face import FaceState, render
from generation.video import write_video

from .common import cpu_kind

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


def space_frames(folder: Path, count: int = 32) -> torch.Tensor:
    """``count`` evenly spaced frames of a 256x256 mini clip (a face crop, as the Space is sent), H.264 at crf 23."""
    state = FaceState.neutral(48)
    state.yaw, state.pitch = torch.linspace(-15, 15, 48), torch.linspace(-5, 5, 48)
    face = (render(identity_for("space", 0), state, size=256) * 255).round().byte()
    write_video(face.permute(0, 2, 3, 1).numpy(), folder / "space.mp4", crf=23)
    video = VideoFrames(folder / "space.mp4")
    return video.read(evenly_spaced_indices(video.num_frames, count).tolist())


def shrunk_as_the_detector_does(frames: torch.Tensor, side: int) -> tuple[torch.Tensor, float]:
    """``frames`` with their long side shrunk to ``side`` as ``FaceDetector.detect`` shrinks them, and the seconds
    that took (best of three)."""
    height, width = frames.shape[-2:]
    scale = side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        shrunk = F.interpolate(frames.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
        shrunk = shrunk.round().clamp(0, 255).to(torch.uint8)
        best = min(best, time.perf_counter() - started)
    return shrunk, best


def largest_differences(first: list, second: list) -> tuple[float, float, float]:
    """The largest box, landmark (pixels) and probability differences between two detectors' faces of the same
    frames; infinite where they found different numbers of faces."""
    worst = [0.0, 0.0, 0.0]
    for faces, others in zip(first, second, strict=True):
        if len(faces) != len(others):
            return float("inf"), float("inf"), float("inf")
        for face, other in zip(faces, others, strict=True):
            worst[0] = max(worst[0], float(np.abs(np.subtract(face.box, other.box)).max()))
            worst[1] = max(worst[1], float(np.abs(face.landmarks - other.landmarks).max()))
            worst[2] = max(worst[2], abs(face.probability - other.probability))
    return tuple(worst)


def mtcnn_side_by_side(name: str, frames: torch.Tensor, device: str, repeats: int, detect_side: int = 640) -> None:
    """facenet-pytorch's MTCNN and ours on the same frames, timed in turn; prints frames per second and the ratio."""
    detectors = {implementation: FaceDetector(device=device, detect_side=detect_side, implementation=implementation)
                 for implementation in ("facenet", "batched")}  # fmt: skip
    found = {implementation: detector.detect(frames[:2]) for implementation, detector in detectors.items()}  # warm-up
    best = dict.fromkeys(detectors, float("inf"))
    for _ in range(repeats):
        for implementation, detector in detectors.items():
            started = time.perf_counter()
            found[implementation] = detector.detect(frames)
            best[implementation] = min(best[implementation], time.perf_counter() - started)
    fps = {implementation: len(frames) / seconds for implementation, seconds in best.items()}
    box, landmark, probability = largest_differences(found["facenet"], found["batched"])
    faces = sum(len(faces) for faces in found["batched"])
    print(f"  {name:<34}: facenet-pytorch {fps['facenet']:6.1f} frames/s, ours {fps['batched']:6.1f} frames/s, "
          f"ratio {fps['batched'] / fps['facenet']:.2f} (target >= 2); {faces} faces, largest differences box "
          f"{box:.1e} px, landmarks {landmark:.1e} px, probability {probability:.1e}")  # fmt: skip


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
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each MTCNN, the best counts")
    parser.add_argument("--mtcnn_only", action="store_true", help="the MTCNN comparison only, not the pipeline")
    args = parser.parse_args(argv)
    cores = default_workers()
    print(f"CPU: {cpu_kind()}; torch {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as folder:
        paths = make_videos(Path(folder) / "src", args.videos, args.frames, args.height, args.width)
        whole = VideoFrames(paths[0]).read(list(range(min(32, args.frames))))
        crops, default_threads = space_frames(Path(folder)), torch.get_num_threads()
        shrunk, shrink_seconds = shrunk_as_the_detector_does(whole, 640)
        # torch's default threads, as the Space runs; one, as each of the build's worker processes does
        for threads in sorted({default_threads, 1}, reverse=True):
            torch.set_num_threads(threads)
            print(f"MTCNN, batched against facenet-pytorch, {threads} torch thread(s), best of {args.repeats}, "
                  f"{args.device}")  # fmt: skip
            mtcnn_side_by_side("Space: 32 frames, 256x256 mini crops", crops, args.device, args.repeats)
            mtcnn_side_by_side(f"{len(whole)} frames {args.width}x{args.height} at 640", shrunk, args.device,
                               args.repeats)  # fmt: skip
            mtcnn_side_by_side(f"{len(whole)} frames {args.width}x{args.height}, full size", whole, args.device,
                               args.repeats, detect_side=max(args.width, args.height))  # fmt: skip
        torch.set_num_threads(default_threads)
        print(f"  (at 640: FaceDetector's own shrink to 640, the same for both, is left out: "
              f"{len(whole) / shrink_seconds:.1f} frames/s with {default_threads} thread(s))")  # fmt: skip
        if args.mtcnn_only:
            return
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

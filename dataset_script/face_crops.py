"""Face-crop preprocessing of full-frame videos (FaceForensics++, Celeb-DF-v2, DFDC, one's own) into 256x256 face
clips, and telling clips that are face crops already from whole frames.

One job is one video, every quality of it at once: MTCNN finds the face tube in the best quality present (batched,
on the GPU when there is one; ``faces.video_tube``: the main face, followed through the frames), and the one square
box 1.3x the tube's union (edge-padded) cuts every quality, so each keeps exactly its own compression artefacts.

Crops are stored losslessly: RGB H.264 at ``-qp 0`` (``libx264rgb``), so decoding a crop gives back, bit for bit,
the crop of the decoded source frames. RGB rather than the source's YUV 4:2:0 because the crop is resized in RGB,
and only RGB stores those pixels without a further rounding. Each crop is written atomically, and a job's record
(box, frames, fps), written after all its crops, marks it finished: a rerun reuses finished jobs.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .compression import CompressionError, require_ffmpeg
from .faces import (
    FACE_CROP,
    FACE_CROP_SIZE,
    CropDecision,
    Face,
    FaceCropRecord,
    FaceDetector,
    FaceError,
    chunks,
    crop_face,
    looks_like_crop,
    measured_crop_record,
    square_box,
    tube_box,
    video_tube,
)
from .files import atomic_path, write_text_atomically
from .frames import VideoFrames, VideoReadError, evenly_spaced_indices
from .source_folder import SourceError, SourceFolder, read_utf8

logger = logging.getLogger(__name__)

CROP_CHUNK = 64
"""Frames decoded, detected and cropped at a time; a video of at most this many is decoded once and kept."""


@dataclass(frozen=True)
class CropJob:
    name: str
    """Names the video in reports (its path in the source)."""
    sources: tuple[tuple[str, Path], ...]
    """(quality, file) of every quality present, best first: the box comes from the first."""
    targets: tuple[tuple[str, Path], ...]
    """(quality, crop file) to write."""
    record: Path
    max_frames: int | None
    size: int = FACE_CROP_SIZE


@dataclass(frozen=True)
class CropRecord:
    box: tuple[int, int, int, int]
    """The square cut from every quality: left, top, right, bottom in source pixels (may reach past the frame)."""
    num_frames: int
    fps: float


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def lossless_command(target: Path, size: int, fps: float) -> list[str]:
    """ffmpeg reading raw RGB frames on stdin and storing them losslessly."""
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size}x{size}", "-r", f"{fps:.6g}", "-i", "-",
        "-c:v", "libx264rgb", "-qp", "0", "-pix_fmt", "rgb24", "-threads", "1",
        str(target),
    ]  # fmt: skip


def write_lossless(target: Path, parts: Iterator[torch.Tensor], size: int, fps: float) -> None:
    """Encode uint8 (N, 3, size, size) frame batches into ``target``, atomically."""
    with atomic_path(target) as partial:
        process = subprocess.Popen(lossless_command(partial, size, fps), stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for part in parts:
                process.stdin.write(part.permute(0, 2, 3, 1).contiguous().numpy().tobytes())
        finally:
            process.stdin.close()
            errors = process.stderr.read().decode(errors="replace").strip()
            process.wait()
        if process.returncode != 0:
            raise CompressionError(f"{target.name}: {errors.splitlines()[-1] if errors else process.returncode}")


def _frame_size(video: VideoFrames) -> tuple[int, int]:
    metadata = getattr(video._reader, "metadata", None)
    if metadata is not None:
        return int(metadata.height), int(metadata.width)
    return tuple(video.read([0]).shape[-2:])


def crop_job(job: CropJob, detector: FaceDetector) -> tuple[CropRecord, bool]:
    """Crop one video's qualities; returns its record and whether it was reused from an earlier run."""
    if job.record.exists() and all(target.exists() for _, target in job.targets):
        stored = json.loads(job.record.read_text())
        return CropRecord(tuple(stored["box"]), stored["num_frames"], stored["fps"]), True
    videos = {quality: VideoFrames(path) for quality, path in job.sources}
    sizes = {quality: _frame_size(video) for quality, video in videos.items()}
    if len(set(sizes.values())) > 1:
        raise FaceError(f"{job.name}: its qualities differ in frame size ({sizes}), so no one box fits them all")
    count = min(video.num_frames for video in videos.values())
    count = count if job.max_frames is None else min(count, job.max_frames)
    if count == 0:
        raise FaceError(f"{job.name}: no frames")
    runs = chunks(count, CROP_CHUNK)
    best = videos[job.sources[0][0]]
    kept = best.read(runs[0]) if len(runs) == 1 else None

    def decode(video: VideoFrames, run: range) -> torch.Tensor:
        return kept if kept is not None and video is best else video.read(run)

    tube = tube_box(video_tube(lambda run: decode(best, run), runs, detector, name=job.name))
    fps = best.fps or 25.0
    for quality, target in job.targets:
        if not target.exists():
            video = videos[quality]
            write_lossless(target, (crop_face(decode(video, run), tube, job.size) for run in runs), job.size, fps)
    record = CropRecord(square_box(tube), count, fps)
    write_text_atomically(job.record, json.dumps(asdict(record)))
    return record, False


_worker_detector: FaceDetector | None = None


def _start_worker(device: str) -> None:
    """A CPU worker process: one torch thread (workers, not threads, share the cores) and its own MTCNN."""
    global _worker_detector
    torch.set_num_threads(1)
    _worker_detector = FaceDetector(device=device)


def _run(job: CropJob, detector: FaceDetector | None = None) -> tuple[str, CropRecord | None, bool, str | None]:
    try:
        record, reused = crop_job(job, detector or _worker_detector)
        return job.name, record, reused, None
    except (FaceError, VideoReadError, CompressionError) as error:
        return job.name, None, False, str(error).removeprefix(f"{job.name}: ")


def crop_videos(
    jobs: Sequence[CropJob], workers: int = 1, device: str | None = None, progress: bool = True
) -> tuple[dict[str, CropRecord], dict[str, str], int]:
    """Run every job; returns (record per good video, reason per bad video, how many were reused).

    On a CPU, ``workers`` processes each crop whole videos, or with one worker this thread does; on a GPU, one MTCNN
    in this process serves ``workers`` threads, which decode and encode around its batches."""
    require_ffmpeg()
    device = device or default_device()
    records, failures, reused = {}, {}, 0
    if not jobs:
        return records, failures, reused
    pool: Executor | None = None
    if device == "cpu" and workers > 1:
        pool = ProcessPoolExecutor(min(workers, len(jobs)), mp_context=get_context("spawn"),
                                   initializer=_start_worker, initargs=(device,))  # fmt: skip
        results = (future.result() for future in as_completed([pool.submit(_run, job) for job in jobs]))
    else:
        detector = FaceDetector(device=device)
        if device == "cpu":
            # on this thread, not a pool's: torch work on a second thread gives it an OpenMP team of its own beside
            # this one's, and libgomp then puts both to sleep between MTCNN's many small ops (20 times the context
            # switches, 10 to 20 % slower on 2 cores)
            results = (_run(job, detector) for job in jobs)
        else:
            pool = ThreadPoolExecutor(max(1, workers))
            results = (future.result() for future in as_completed([pool.submit(_run, job, detector) for job in jobs]))

    logger.info("cropping faces of %d videos on %s with %d workers", len(jobs), device, workers)
    with pool or nullcontext():
        for name, record, was_reused, failure in tqdm(results, total=len(jobs), desc="cropping faces", unit="video",
                                                      disable=not progress):  # fmt: skip
            if record is None:
                failures[name] = failure
            else:
                records[name] = record
                reused += was_reused
    return records, failures, reused


FACE_CROP_FILE = "face_crop.json"
"""Where a release made by this project's generators (the mini) records the crop its clips were cut with."""
MEASURE_CLIPS, MEASURE_FRAMES = 8, 4
"""Real clips, and frames of each, whose faces measure the crop of a release that does not record it (MTCNN on 32
frames: about a second)."""


def release_face_crop(listing: SourceFolder, clips: Sequence, crops_faces: bool) -> FaceCropRecord | None:
    """The crop the repo's clips were cut with, for its build_info.json and card: this build's own where it crops
    (FaceForensics++, Celeb-DF), the release's ``face_crop.json`` where it has one, else measured from the faces
    of a few real clips. None, with a warning, where no face is found to measure."""
    if crops_faces:
        return FACE_CROP
    recorded = listing.file(listing.root / FACE_CROP_FILE)
    if recorded is not None:
        try:
            return FaceCropRecord.from_dict(json.loads(read_utf8(recorded)), where=str(recorded))
        except ValueError as error:  # JSONDecodeError included
            raise SourceError(f"{recorded}: {error}; fix it, or remove it to have the crop measured") from error
    reals = [clip for clip in clips if clip.label == 0][:MEASURE_CLIPS]
    try:
        videos = [VideoFrames(clip.source.path) for clip in reals]
        samples = [video.read(evenly_spaced_indices(video.num_frames, MEASURE_FRAMES)) for video in videos]
        sizes = sorted({tuple(sample.shape[-2:]) for sample in samples})
        if len(sizes) != 1 or sizes[0][0] != sizes[0][1]:
            raise FaceError(f"the real clips are not square crops of one size (height x width: {sizes})")
        return measured_crop_record(FaceDetector().detect(torch.cat(samples)), sizes[0][0])
    except (FaceError, VideoReadError) as error:
        logger.warning("the release records no face crop and none could be measured (%s): the Space will crop "
                       "whole-frame uploads with this project's default", error)  # fmt: skip
        return None


CROP_CHECK_FRAMES = 4
"""Frames of a square clip whose faces decide whether it is a face crop already (MTCNN on 4 frames: about 0.1 s)."""


def recognise_crops(videos: Sequence[tuple[str, Path, int, int]], device: str | None = None,
                    progress: bool = True) -> tuple[dict[str, CropDecision], dict[str, str]]:  # fmt: skip
    """Which of ``videos`` (name, file, height, width) are face crops as this project cuts them (``FACE_CROP``), as
    ``faces.looks_like_crop`` decides from the faces of a few frames; returns (decision per video, reason per video
    that could not be decoded). Frames of a size no crop has (not square) are whole frames whatever their faces:
    only videos that could be crops are decoded and searched for faces (a whole-frame set like DFDC costs nothing).
    """
    decisions, failures, candidates = {}, {}, []
    for name, path, height, width in videos:
        # shown the very face a crop has, looks_like_crop still says no to frames of a size no crop has (not square)
        ideal = _centred_face(width, FACE_CROP.face_fraction)
        decision = looks_like_crop([[ideal]], height, width, FACE_CROP)
        if decision.is_crop:
            candidates.append((name, path, height, width))
        else:
            decisions[name] = decision
    detector = FaceDetector(device=device or default_device()) if candidates else None
    for name, path, height, width in tqdm(candidates, desc="recognising face crops", unit="video",
                                          disable=not progress):  # fmt: skip
        try:
            video = VideoFrames(path)
            frames = video.read(evenly_spaced_indices(video.num_frames, CROP_CHECK_FRAMES))
        except VideoReadError as error:
            failures[name] = str(error).removeprefix(f"{path}: ")
            continue
        decisions[name] = looks_like_crop(detector.detect(frames), height, width, FACE_CROP)
    return decisions, failures


def _centred_face(side: int, fraction: float) -> Face:
    """A face in the middle of a ``side``-wide frame whose box spans ``fraction`` of it."""
    half = side * fraction / 2
    return Face((side / 2 - half, side / 2 - half, side / 2 + half, side / 2 + half), 1.0, np.zeros((5, 2)))

"""Making the ``c23``/``c40`` qualities exactly as FaceForensics++ does: ffmpeg libx264 at a fixed CRF.

The command is the FaceForensics++ one (``-c:v libx264 -crf N``, default preset, same fps and size). Jobs run
in parallel across cores, one single-threaded ffmpeg per core, so output bytes do not depend on the machine's
core count. Each output is written to a temporary file and renamed, so an interrupted run never leaves a
truncated video behind, and a rerun reuses every finished output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .files import atomic_path


class CompressionError(RuntimeError):
    """One or more ffmpeg encodes failed; the message names each input and ffmpeg's complaint."""


@dataclass(frozen=True)
class CompressionJob:
    source: Path
    target: Path
    crf: int


def require_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise CompressionError(
            "ffmpeg was not found on PATH. Install it (Debian/Ubuntu: `apt-get install -y ffmpeg`) "
            "or run `make test`/`make demo`, which install it when missing."
        )
    return path


def ffmpeg_command(source: Path, target: Path, crf: int) -> list[str]:
    """The FaceForensics++ compression command for one video."""
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(source),
        "-c:v", "libx264", "-crf", str(crf),
        "-threads", "1",
        str(target),
    ]  # fmt: skip


def compress_one(job: CompressionJob) -> bool:
    """Encode one video; returns False when a finished output was reused."""
    if job.target.exists():
        return False
    with atomic_path(job.target) as partial:  # keeps the suffix: ffmpeg picks the container by it
        result = subprocess.run(ffmpeg_command(job.source, partial, job.crf), capture_output=True, text=True)
        if result.returncode != 0:
            message = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            raise CompressionError(f"{job.source}: {message}")
    return True


def default_workers() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
    )


def compress_videos(
    jobs: Sequence[CompressionJob],
    workers: int | None = None,
    progress: bool = True,
    desc: str = "compressing",
) -> int:
    """Run every job, ``workers`` at a time; returns how many were encoded (the rest were reused).

    All jobs are attempted even when some fail, then one CompressionError lists every failure.
    """
    require_ffmpeg()
    workers = workers or default_workers()
    encoded, failures = 0, []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(compress_one, job) for job in jobs]
        for future in tqdm(
            as_completed(futures),
            total=len(futures),
            desc=desc,
            disable=not progress,
            unit="video",
        ):
            try:
                encoded += bool(future.result())
            except CompressionError as error:
                failures.append(str(error))
    if failures:
        listed = "\n  ".join(sorted(failures))
        raise CompressionError(f"{len(failures)} of {len(jobs)} encodes failed:\n  {listed}")
    return encoded

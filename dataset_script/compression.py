"""Making the ``c23``/``c40`` qualities exactly as FaceForensics++ does: ffmpeg libx264 at a fixed CRF.

The command is the FaceForensics++ one (``-c:v libx264 -crf N``, default preset, same fps and size). One job
decodes its source once and encodes every quality asked of it from that decode (one ffmpeg, several outputs: the
same bytes as one ffmpeg per quality, at about half the decoding). Jobs run in parallel across cores, one
single-threaded ffmpeg per core, so output bytes do not depend on the machine's core count. ffmpeg stops at the
first decoder error (``-xerror``), so a source that is damaged inside is named, never encoded from concealed
frames. Each output is written to a temporary file and renamed, so an interrupted run never leaves a truncated
video behind, and a rerun reuses every finished output.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .files import atomic_path
from .probe import ffmpeg_reason


class CompressionError(RuntimeError):
    """One or more ffmpeg encodes failed; the message names each input and ffmpeg's complaint, and ``failures``
    maps each failed source to that complaint."""

    def __init__(self, message: str, failures: dict[Path, str] | None = None):
        super().__init__(message)
        self.failures = failures or {}


@dataclass(frozen=True)
class CompressionJob:
    """``source`` decoded once and encoded to each (target, CRF) of ``outputs``."""

    source: Path
    outputs: tuple[tuple[Path, int], ...]

    @classmethod
    def single(cls, source: Path, target: Path, crf: int) -> CompressionJob:
        return cls(source, ((target, crf),))


def require_ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise CompressionError(
            "ffmpeg was not found on PATH. Install it (Debian/Ubuntu: `apt-get install -y ffmpeg`) "
            "or run `make test`/`make demo`, which install it when missing."
        )
    return path


def ffmpeg_command(source: Path, outputs: Sequence[tuple[Path, int]]) -> list[str]:
    """The FaceForensics++ compression command: ``source`` to each (target, CRF) of ``outputs``, from one decode."""
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror", "-y", "-i", str(source)]
    for target, crf in outputs:
        command += ["-c:v", "libx264", "-crf", str(crf), "-threads", "1", str(target)]
    return command


def compress_one(job: CompressionJob) -> int:
    """Make the job's outputs that do not exist yet; returns how many it encoded (0: all reused)."""
    missing = [(target, crf) for target, crf in job.outputs if not target.exists()]
    if not missing:
        return 0
    with ExitStack() as stack:  # every output renamed into place together, or none when ffmpeg fails
        partials = [stack.enter_context(atomic_path(target)) for target, _ in missing]  # the suffix kept: ffmpeg
        command = ffmpeg_command(job.source, [(p, crf) for p, (_, crf) in zip(partials, missing, strict=True)])
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            reason = ffmpeg_reason(result.stderr, f"ffmpeg exited with {result.returncode}")
            raise CompressionError(f"{job.source}: {reason}", {job.source: reason})
    return len(missing)


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
    """Run every job, ``workers`` at a time; returns how many outputs were encoded (the rest were reused).

    All jobs are attempted even when some fail, then one CompressionError lists every failure.
    """
    require_ffmpeg()
    workers = workers or default_workers()
    encoded, failures = 0, {}
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
                encoded += future.result()
            except CompressionError as error:
                failures.update(error.failures)
    if failures:
        listed = "\n  ".join(f"{source}: {reason}" for source, reason in sorted(failures.items()))
        raise CompressionError(f"{len(failures)} of {len(jobs)} encodes failed:\n  {listed}", failures)
    return encoded

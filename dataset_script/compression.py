"""Making the ``c23``/``c40`` qualities exactly as FaceForensics++ does: ffmpeg libx264 at a fixed CRF.

The command is the FaceForensics++ one (``-c:v libx264 -crf N``, default preset, same fps and size). One job
decodes its source once and encodes every quality asked of it from that decode (one ffmpeg, several outputs: the
same bytes as one ffmpeg per quality, at about half the decoding). Jobs run in parallel across cores, one
single-threaded ffmpeg per core, so output bytes do not depend on the machine's core count. ffmpeg stops at the
first decoder error (``-xerror``), so a source that is damaged inside is named, never encoded from concealed
frames. Sources that hold one video stream and nothing else are encoded several to an ffmpeg process: Debian's
ffmpeg links over 200 shared libraries, and each start costs about 0.1 s of CPU, a fifth of what a 256x256 clip's
c23 and c40 encodes cost; each output is still its own single-threaded x264, the same bytes. Each output is
written to a temporary file and renamed, so an interrupted run never leaves a truncated video behind, and a rerun
reuses every finished output.
"""

from __future__ import annotations

import math
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
from .probe import ffmpeg_reason, only_a_video_stream


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


def _encode(crf: int) -> list[str]:
    return ["-c:v", "libx264", "-crf", str(crf), "-threads", "1"]


FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-xerror", "-y"]


def ffmpeg_command(source: Path, outputs: Sequence[tuple[Path, int]]) -> list[str]:
    """The FaceForensics++ compression command: ``source`` to each (target, CRF) of ``outputs``, from one decode."""
    command = [*FFMPEG, "-i", str(source)]
    for target, crf in outputs:
        command += [*_encode(crf), str(target)]
    return command


def _missing(job: CompressionJob) -> list[tuple[Path, int]]:
    return [(target, crf) for target, crf in job.outputs if not target.exists()]


def _group_command(inputs: Sequence[tuple[Path, Sequence[tuple[Path, int]]]]) -> list[str]:
    """One ffmpeg for several (source, outputs): ``-map N:v`` gives each output its own source's video stream."""
    command = [*FFMPEG]
    for source, _ in inputs:
        command += ["-i", str(source)]
    for index, (_, outputs) in enumerate(inputs):
        for target, crf in outputs:
            command += ["-map", f"{index}:v", *_encode(crf), str(target)]
    return command


def _encode_atomically(todo: Sequence[tuple[CompressionJob, list[tuple[Path, int]]]]) -> None:
    """Every (job, missing outputs) of ``todo`` from one ffmpeg, every output renamed into place together, or none;
    CompressionError naming the sources and ffmpeg's complaint when it fails."""
    with ExitStack() as stack:
        inputs = [(job.source, [(stack.enter_context(atomic_path(target)), crf) for target, crf in missing])
                  for job, missing in todo]  # fmt: skip  # the suffix kept: ffmpeg picks the format by it
        result = subprocess.run(ffmpeg_command(*inputs[0]) if len(inputs) == 1 else _group_command(inputs),
                                capture_output=True, text=True)  # fmt: skip
        if result.returncode != 0:
            reason = ffmpeg_reason(result.stderr, f"ffmpeg exited with {result.returncode}")
            sources = [source for source, _ in inputs]
            raise CompressionError(f"{', '.join(map(str, sources))}: {reason}", dict.fromkeys(sources, reason))


def compress_one(job: CompressionJob) -> int:
    """Make the job's outputs that do not exist yet; returns how many it encoded (0: all reused)."""
    missing = _missing(job)
    if missing:
        _encode_atomically([(job, missing)])
    return len(missing)


def compress_together(jobs: Sequence[CompressionJob]) -> tuple[int, dict[Path, str]]:
    """``compress_one`` for every job, from one ffmpeg process: (outputs encoded, reason per failed source). Each
    source must hold one video stream and nothing else, so that ``-map N:v`` picks what ffmpeg picks by itself.
    When that ffmpeg fails, nothing of it is kept and each job runs again on its own, so that a failure names its
    own source and ffmpeg's complaint about it."""
    todo = [(job, missing) for job in jobs if (missing := _missing(job))]
    if len(todo) > 1:
        try:
            _encode_atomically(todo)
            return sum(len(missing) for _, missing in todo), {}
        except CompressionError:
            pass  # each alone below
    encoded, failures = 0, {}
    for job, missing in todo:
        try:
            _encode_atomically([(job, missing)])
            encoded += len(missing)
        except CompressionError as error:
            failures.update(error.failures)
    return encoded, failures


def default_workers() -> int:
    return max(
        1,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
    )


CLIPS_PER_FFMPEG = 8
"""At most this many sources to an ffmpeg process; fewer when there are few jobs, so that every worker gets at
least two processes' worth."""


def _groups(jobs: Sequence[CompressionJob], groupable: Sequence[bool], workers: int, clips_per_ffmpeg: int
            ) -> list[list[CompressionJob]]:  # fmt: skip
    """Jobs in groups of one ffmpeg each: the groupable ones (sources with only a video stream) together, any other
    alone."""
    together = [job for job, fits in zip(jobs, groupable, strict=True) if fits]
    alone = [job for job, fits in zip(jobs, groupable, strict=True) if not fits]
    size = max(1, min(clips_per_ffmpeg, math.ceil(len(together) / (2 * workers))))
    return [together[i : i + size] for i in range(0, len(together), size)] + [[job] for job in alone]


def compress_videos(
    jobs: Sequence[CompressionJob],
    workers: int | None = None,
    progress: bool = True,
    desc: str = "compressing",
    clips_per_ffmpeg: int = CLIPS_PER_FFMPEG,
) -> int:
    """Run every job, ``workers`` ffmpeg processes at a time, each for up to ``clips_per_ffmpeg`` sources that hold
    only a video stream (``compress_together``); returns how many outputs were encoded (the rest were reused).

    All jobs are attempted even when some fail, then one CompressionError lists every failure.
    """
    require_ffmpeg()
    workers = workers or default_workers()
    encoded, failures = 0, {}
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(jobs), desc=desc, disable=not progress, unit="video") as bar:  # fmt: skip
        sources = [job.source for job in jobs]  # each opened once, in parallel, to see its streams
        groupable = list(pool.map(only_a_video_stream, sources)) if clips_per_ffmpeg > 1 else [False] * len(jobs)
        futures = {pool.submit(compress_together, group): len(group)
                   for group in _groups(jobs, groupable, workers, clips_per_ffmpeg)}  # fmt: skip
        for future in as_completed(futures):
            made, failed = future.result()
            encoded += made
            failures.update(failed)
            bar.update(futures[future])
    if failures:
        listed = "\n  ".join(f"{source}: {reason}" for source, reason in sorted(failures.items()))
        raise CompressionError(f"{len(failures)} of {len(jobs)} encodes failed:\n  {listed}", failures)
    return encoded

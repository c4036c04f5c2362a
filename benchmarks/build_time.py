"""The build's wall time: one decode per clip against the previous pipeline, on the same mini in one run.

    python -m benchmarks.build_time [--source GENERATED_MINI] [--rounds 1]

Ours is ``dataset_script.build`` as it is: the probe counts packets without decoding, and one ffmpeg decodes each
clip once to make both c23 and c40, for up to 8 clips a process. The previous pipeline is the same build with the
two stages it replaced: a probe that decodes every frame (``ffprobe -count_frames``) and one ffmpeg per clip and
quality, each decoding the clip again. Both build the same source into their own folder; the c23 and c40 files of
the two are hashed and must be byte-identical. Target: ours <= 0.6x the previous wall time. Without ``--source``
the default mini (seed 0, as ``make demo`` makes it) is generated first, outside the timing.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import dataset_script.build as build_module
import dataset_script.layouts.dmplus as dmplus
from dataset_script.build import BuildConfig, build
from dataset_script.compression import CompressionJob, compress_videos
from dataset_script.probe import probe_videos

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.6


def _one_encode_per_quality(jobs, *args, **kwargs) -> int:
    """The previous compressor: every (clip, quality) its own ffmpeg, decoding the clip again."""
    split = [CompressionJob.single(job.source, target, crf) for job in jobs for target, crf in job.outputs]
    return compress_videos(split, *args, **kwargs, clips_per_ffmpeg=1)


@contextmanager
def _previous_pipeline():
    full_decode = functools.partial(probe_videos, decode_all=True)
    with mock.patch.object(build_module, "compress_videos", _one_encode_per_quality), \
            mock.patch.object(dmplus, "probe_videos", full_decode):  # fmt: skip
        yield


def _timed_build(source: Path, out: Path, previous: bool) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    with _previous_pipeline() if previous else nullcontext():
        build(BuildConfig(source=source, output_dir=out, progress=False))
    return time.perf_counter() - started


def _hashes(repo: Path) -> dict[str, str]:
    return {
        str(path.relative_to(repo)): hashlib.sha256(path.read_bytes()).hexdigest()
        for quality in ("c23", "c40")
        for path in sorted((repo / quality).rglob("*.mp4"))
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="a generated mini folder (default: make the default mini)")
    parser.add_argument("--rounds", type=int, default=1, help="rounds, alternating which side goes first")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="dfmp-bench-build-"))
    try:
        source = args.source
        if source is None:
            source = scratch / "mini"
            subprocess.run([sys.executable, "-m", "generation.mini", "--output_dir", str(source), "--size", "default",
                            "--seed", "0", "--no_progress"], cwd=ROOT, check=True)  # fmt: skip
        clips = sum(1 for _ in source.rglob("*.mp4"))
        timings: dict[str, list[float]] = {"previous": [], "ours": []}
        for round_index in range(args.rounds):  # alternate, so neither side always gets the warmer machine
            for name in ("previous", "ours") if round_index % 2 == 0 else ("ours", "previous"):
                timings[name].append(_timed_build(source, scratch / name, previous=name == "previous"))
        identical = _hashes(scratch / "previous") == _hashes(scratch / "ours")
        previous, ours = min(timings["previous"]), min(timings["ours"])
        print(f"build of {source} ({clips} clips, raw + c23 + c40), best of {args.rounds}")
        print(f"  previous (full-decode probe, one ffmpeg per clip and quality) {previous:7.1f} s")
        print(f"  ours (packet-count probe, one decode for c23 and c40, 8 clips an ffmpeg) {ours:7.1f} s | ratio "
              f"{ours / previous:.3f} "
              f"(target <= {TARGET})")  # fmt: skip
        print(f"  c23 and c40 byte-identical between the two: {'yes' if identical else 'NO'} "
              f"({len(_hashes(scratch / 'ours'))} files hashed)")  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

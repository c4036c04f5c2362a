"""Compression wall time: our parallel, resumable, atomic compressor against the same ffmpeg commands run
directly with the same parallelism, in one run (ratio target <= 1.1)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dataset_script.compression import CompressionJob, compress_videos, default_workers, ffmpeg_command

from .common import make_clips


def main(clip_folder: Path | None = None) -> None:
    folder = clip_folder or Path(tempfile.gettempdir()) / "dfmp-bench-clips"
    paths = make_clips(folder, count=120, frames=48)
    workers = default_workers()
    scratch = Path(tempfile.mkdtemp(prefix="dfmp-bench-compress-"))
    try:
        timings = {"direct": [], "ours": []}
        for round_index in range(2):  # alternate, so neither side always gets the warmer machine
            for name in ("direct", "ours") if round_index == 0 else ("ours", "direct"):
                target = scratch / f"{name}{round_index}"
                target.mkdir()
                jobs = [CompressionJob.single(p, target / p.name, 23) for p in paths]
                started = time.perf_counter()
                if name == "ours":
                    compress_videos(jobs, workers=workers, progress=False)
                else:
                    with ThreadPoolExecutor(workers) as pool:
                        list(pool.map(lambda job: subprocess.run(ffmpeg_command(job.source, job.outputs),
                                                                 check=True), jobs))  # fmt: skip
                timings[name].append(time.perf_counter() - started)
        direct, ours = min(timings["direct"]), min(timings["ours"])
        print(f"compression: {len(paths)} clips to c23, {workers} parallel ffmpeg processes")
        print(f"  direct ffmpeg {direct:6.2f} s | ours {ours:6.2f} s | ratio {ours / direct:.3f} (target <= 1.10)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()

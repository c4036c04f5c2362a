"""Shared by the benchmarks: clips to measure on, and a timer."""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def make_clips(folder: Path, count: int = 120, frames: int = 48, size: int = 256, workers: int = 2) -> list[Path]:
    """``count`` distinct H.264 clips (x264 defaults, so a 250-frame GOP as in the real data), reused if present."""
    folder.mkdir(parents=True, exist_ok=True)

    def one(index: int) -> Path:
        path = folder / f"clip{index:04d}.mp4"
        if not path.exists():
            source = f"testsrc2=size={size}x{size}:rate=25,noise=alls={8 + index % 20}:allf=t,hue=h={index * 29 % 360}"
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source,
                            "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
                           check=True)  # fmt: skip
        return path

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


def timed(function, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` runs (the least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best

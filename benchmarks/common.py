"""Shared by the benchmarks: clips to measure on, a timer, the CPU's kind and the machine's matrix-product peak."""

from __future__ import annotations

import csv
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from dataset_script.shards import export_clips


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


def timed(function, repeats: int = 3, clock=time.perf_counter) -> float:
    """Best wall time of ``repeats`` runs (the least disturbed by the rest of the machine); ``time.thread_time`` as
    the ``clock``: the calling thread's best CPU time."""
    best = float("inf")
    for _ in range(repeats):
        started = clock()
        function()
        best = min(best, clock() - started)
    return best


CPU_FLAGS_OF_NOTE = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
"""The /proc/cpuinfo flags that decide how fast convolutions and bf16 run: numbers only compare between CPUs
that share them."""


def cpu_kind() -> str:
    """The CPU's model name, core count and flags of note, for a benchmark's first line."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"{os.cpu_count()} cores (no /proc/cpuinfo)"
    lines = text.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    present = [flag for flag in CPU_FLAGS_OF_NOTE if flag in flags] or ["none of " + " ".join(CPU_FLAGS_OF_NOTE)]
    return f"{model}, {len(os.sched_getaffinity(0))} cores, flags {' '.join(present)}"


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a large matrix product in ``dtype``: what this machine's cores reach at best."""
    first, second = torch.rand(size, size, dtype=dtype), torch.rand(size, size, dtype=dtype)
    first @ second
    return 2 * size**3 / timed(lambda: first @ second, repeats) / 1e9


def raw_clips(repo: Path, folder: Path, label: str | None = None, split: str | None = None) -> list[Path]:
    """A built DeepFake MNIST+ repo's raw clips as files (of one label, or of one split of the identity split scheme
    where the build made one, else the paper's), in video id order: the repo's own with --keep_clips, else copies
    written out of its shards into ``folder``."""
    rows = list(csv.DictReader((repo / "splits.csv").open()))
    column = "identity_split" if any(row.get("identity_split") for row in rows) else "split"
    names = [f"raw/{row['video_id']}.mp4" for row in sorted(rows, key=lambda row: row["video_id"])
             if label in (None, row["label"]) and split in (None, row[column])]  # fmt: skip
    return list(export_clips(repo, names, folder).values())

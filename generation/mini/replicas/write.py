"""Writing a replica: rendering its takes and fakes in worker processes, the other qualities from the rendered
master with FaceForensics++'s own command, the layout's index files, and a note on what the folder is.

Reruns finish what is missing: every video is written atomically and skipped when present, and a folder
written with other settings (seed, size, qualities) is refused rather than mixed.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dataset_script.compression import CompressionJob, compress_videos, default_workers, require_ffmpeg
from dataset_script.files import write_text_atomically
from dataset_script.frames import keep_freed_memory
from dataset_script.schema import CRF_BY_QUALITY

from ...video import write_video
from ..cast import clip_seed, identity_for
from .manipulations import manipulate
from .scene import Take

logger = logging.getLogger(__name__)

STAGING = ".replica_raw"
"""Where the lossless masters go when ``raw`` is not asked for; removed once every quality is made from them."""
SETTINGS_FILE = "replica.json"


@dataclass(frozen=True)
class ReplicaSize:
    frames: int
    height: int
    width: int
    people: int
    """FaceForensics++: original videos (an even number, two per pair); Celeb-DF-v2: celebrities."""
    takes_per_person: int = 1
    youtube: int = 0
    sources_per_take: int = 1


@dataclass(frozen=True)
class Fake:
    path: str
    method: str
    source_person: str
    source_take: str
    source_fps: int


@dataclass(frozen=True)
class Clip:
    """One filmed take and the fakes made from it: they share its frames, so one worker writes them together.
    Paths are relative to the replica's folder, with ``{quality}`` where the layout has quality folders."""

    person: str
    take: str
    fps: int
    real: str | None
    fakes: tuple[Fake, ...] = ()

    @property
    def paths(self) -> list[str]:
        return ([self.real] if self.real else []) + [fake.path for fake in self.fakes]


def take_of(person: str, take: str, fps: int, size: ReplicaSize, seed: int) -> Take:
    return Take(identity_for(person, seed), take, seed, size.frames, size.height, size.width, fps)


def render_clip(clip: Clip, masters: dict[str, Path], size: ReplicaSize, seed: int, crf: int) -> None:
    """Write the clip's missing masters (``masters``: release path -> file), real and fakes."""
    take = take_of(clip.person, clip.take, clip.fps, size, seed)
    if clip.real and not masters[clip.real].exists():
        write_video(take.real, masters[clip.real], clip.fps, crf)
    for fake in clip.fakes:
        if masters[fake.path].exists():
            continue
        source = take_of(fake.source_person, fake.source_take, fake.source_fps, size, seed)
        generator = torch.Generator().manual_seed(clip_seed(seed, "fake", fake.path))
        write_video(manipulate(fake.method, take, source, generator), masters[fake.path], clip.fps, crf)


def _render_batch(batch: list[Clip], masters: dict[str, Path], size: ReplicaSize, seed: int, crf: int) -> int:
    torch.set_num_threads(1)  # one clip per core, as the mini's own workers do
    keep_freed_memory()
    for clip in batch:
        render_clip(clip, masters, size, seed, crf)
    return len(batch)


def render_clips(clips: Sequence[Clip], masters: dict[str, Path], size: ReplicaSize, seed: int, crf: int,
                 workers: int, progress: bool) -> None:  # fmt: skip
    """Render the clips in ``workers`` processes, a few clips per task, with one progress bar."""
    batches = [list(clips[i :: workers * 4]) for i in range(min(len(clips), workers * 4))]
    with ProcessPoolExecutor(max_workers=workers) as pool, tqdm(
        total=len(clips), desc="replica takes", unit="take", disable=not progress
    ) as bar:  # fmt: skip
        futures = [pool.submit(_render_batch, batch, masters, size, seed, crf) for batch in batches]
        for future in as_completed(futures):
            bar.update(future.result())


def check_settings(out: Path, settings: dict) -> None:
    """Refuse a folder holding a replica written with other settings: its videos would not match the plan."""
    recorded = out / SETTINGS_FILE
    if recorded.exists():
        previous = json.loads(recorded.read_text())
        if previous != settings:
            raise ValueError(
                f"{out} holds a replica written with {previous}, not {settings}; "
                "choose another --output_dir, or delete the folder to write it anew"
            )
    else:
        write_text_atomically(recorded, json.dumps(settings, indent=2) + "\n")


def write_videos(out: Path, clips: Sequence[Clip], size: ReplicaSize, seed: int, qualities: Sequence[str] | None,
                 master_crf: int, workers: int | None = None, progress: bool = True) -> None:  # fmt: skip
    """Every video of ``clips``: rendered once as a master (lossless for a layout with qualities), then each of
    ``qualities`` made from it with FaceForensics++'s compression; ``qualities`` None: the master is the video."""
    require_ffmpeg()
    workers = workers or default_workers()
    paths = [path for clip in clips for path in clip.paths]
    master_is_video = qualities is None or "raw" in qualities
    master_root = out if master_is_video else out / STAGING
    masters = {path: master_root / path.format(quality="raw") for path in paths}
    made = [(path, quality) for path in paths for quality in qualities or () if quality != "raw"]
    made = [(path, out / path.format(quality=quality), CRF_BY_QUALITY[quality]) for path, quality in made]
    needed = {path for path, target, _ in made if not target.exists()}
    if master_is_video:
        needed |= set(paths)
    missing = [clip for clip in clips if any(p in needed and not masters[p].exists() for p in clip.paths)]
    if missing:
        logger.info("rendering %d of %d takes and their fakes", len(missing), len(clips))
        render_clips(missing, masters, size, seed, master_crf, workers, progress)
    outputs: dict = {}  # each master decoded once for all the qualities made from it
    for path, target, crf in made:
        if not target.exists():
            outputs.setdefault(path, []).append((target, crf))
    jobs = [CompressionJob(masters[path], tuple(targets)) for path, targets in outputs.items()]
    if jobs:
        compress_videos(jobs, workers=workers, progress=progress, desc="replica qualities")
    if qualities is not None and "raw" not in qualities:
        shutil.rmtree(out / STAGING, ignore_errors=True)


def write_note(out: Path, title: str, body: str, settings: dict) -> None:
    """README.md in the replica's folder: what it is (synthetic, made by the mini), how, and from which seed."""
    lines = [
        f"# {title}: a synthetic offline replica",
        "",
        "Made by `python -m generation.mini` of deepfake-mnist-plus: procedural people rendered by the project's",
        "mini renderer, not real footage, in the folder layout and file names of the real release so that the",
        "project's build, tests and cross-dataset experiments run offline. Nothing here comes from the real",
        "dataset; numbers measured on it say nothing about detectors on real videos.",
        "",
        body.strip(),
        "",
        "Settings (the same settings write byte-identical videos):",
        "",
        "```json",
        json.dumps(settings, indent=2),
        "```",
        "",
    ]
    write_text_atomically(out / "README.md", "\n".join(lines))


def settings_of(layout: str, size_name: str, size: ReplicaSize, seed: int, qualities) -> dict:
    return {"layout": layout, "size": size_name, **asdict(size), "seed": seed,
            "qualities": None if qualities is None else list(qualities)}  # fmt: skip

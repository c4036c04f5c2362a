"""Build a data-only ``datasets`` repo from a DeepFake MNIST+ release folder (or a generated one).

    python -m dataset_script.build SOURCE --out DIR [--push_to_hub ORG/NAME]

Every input is probed first; any problem is reported, each named, and the build stops before writing anything
(unless ``--skip_bad_files``). The repo is assembled in a hidden temporary folder beside DIR and renamed into
place at the end (``files.replace_folder``), so after a crash at any point DIR is the previous build or the new
one, never half of one. Compressed clips finished by an earlier run (interrupted or complete) are reused.

Each configuration's rows are parquet shards with the videos inside (``shards``), the same files locally and on
the Hub, so a repo loads and decodes wherever it is moved or copied. The clips are also kept as files under
``<quality>/<folder>/``: reruns reuse their encodes from there, and people and the Space open them directly.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .card import render_card
from .compression import CompressionJob, compress_videos, default_workers
from .configs import disk_use, write_configs
from .console import configure_logging
from .files import atomic_path, recover_interrupted_replace, write_text_atomically
from .probe import VideoInfo, probe_videos
from .release import ScanReport, SourceVideo, read_manifest, scan_release
from .schema import (
    CRF_BY_QUALITY,
    LABEL_NAMES,
    QUALITIES,
)
from .splits import identity_split, paper_split

logger = logging.getLogger(__name__)


@dataclass
class BuildConfig:
    source: Path
    out: Path
    real_folder: str | None = None
    qualities: tuple[str, ...] = QUALITIES
    workers: int | None = None
    skip_bad_files: bool = False
    allow_missing_actions: bool = False
    push_to_hub: str | None = None
    progress: bool = True


class BuildError(RuntimeError):
    """The source folder has problems; the message lists each one and how to proceed."""


@dataclass
class Problems:
    missing_actions: list[str] = field(default_factory=list)
    empty_folders: list[str] = field(default_factory=list)
    unknown_folders: list[str] = field(default_factory=list)
    bad_files: dict[str, str] = field(default_factory=dict)

    def report(self) -> str:
        lines = []
        for title, items in (
            ("missing action folders", self.missing_actions),
            ("empty folders", self.empty_folders),
            (
                "unknown folders (not an action of the release, nor the real folder)",
                self.unknown_folders,
            ),
        ):
            lines += [f"{title}:"] + [f"  - {item}" for item in items] if items else []
        if self.bad_files:
            lines.append("bad files:")
            lines += [f"  - {path}: {reason}" for path, reason in sorted(self.bad_files.items())]
        summary = (
            f"{len(self.missing_actions)} missing action folders, {len(self.empty_folders)} empty folders, "
            f"{len(self.unknown_folders)} unknown folders, {len(self.bad_files)} bad files"
        )
        return "\n".join(lines + [f"summary: {summary}"])

    def blocking(self, config: BuildConfig) -> bool:
        skippable = self.empty_folders or self.unknown_folders or self.bad_files
        return bool(
            (self.missing_actions and not config.allow_missing_actions) or (skippable and not config.skip_bad_files)
        )

    def __bool__(self) -> bool:
        return bool(self.missing_actions or self.empty_folders or self.unknown_folders or self.bad_files)


@dataclass
class Clip:
    """One good input video and everything the repo records about it."""

    source: SourceVideo
    info: VideoInfo
    video_id: str
    label: int
    source_id: str | None
    driving_id: str | None
    split: str = ""
    identity_split: str | None = None

    def relative_path(self, quality: str) -> str:
        extension = self.source.path.suffix.lower() if quality == "raw" else ".mp4"
        return f"{self.source.folder}/{self.source.path.stem}{extension}"

    def fingerprint(self) -> str:
        stat = self.source.path.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"


def collect_clips(config: BuildConfig, scan: ScanReport, problems: Problems, workers: int) -> list[Clip]:
    manifest = read_manifest(config.source)
    infos, unreadable = probe_videos([video.path for video in scan.videos], workers, config.progress)
    clips, seen_ids = [], {}
    for video in scan.videos:
        if video.path in unreadable:
            problems.bad_files[video.relative] = unreadable[video.path]
            continue
        row = manifest.get(video.relative) if manifest is not None else None
        if manifest is not None and row is None:
            problems.bad_files[video.relative] = "not listed in manifest.csv"
            continue
        video_id = f"{video.folder}/{video.path.stem}"
        if video_id in seen_ids:
            problems.bad_files[video.relative] = f"same name as {seen_ids[video_id]} (video ids come from file names)"
            continue
        seen_ids[video_id] = video.relative
        clips.append(
            Clip(
                source=video,
                info=infos[video.path],
                video_id=video_id,
                label=0 if video.action is None else 1,
                source_id=row.source_id if row else None,
                driving_id=(row.driving_id or None) if row else None,
            )
        )
    if manifest is not None:
        listed = {video.relative for video in scan.videos}
        for missing in sorted(set(manifest) - listed):
            problems.bad_files[missing] = "listed in manifest.csv but not found"
    return clips


def assign_splits(clips: list[Clip]) -> bool:
    """Fill in each clip's paper split, and its identity split when every clip has a source identity."""
    by_folder: dict[str, list[Clip]] = {}
    for clip in clips:
        by_folder.setdefault(clip.source.folder, []).append(clip)
    for folder_clips in by_folder.values():
        assignment = paper_split([clip.source.path.name for clip in folder_clips])
        for clip in folder_clips:
            clip.split = assignment[clip.source.path.name]
    if not clips or any(clip.source_id is None for clip in clips):
        return False
    by_identity = identity_split(clip.source_id for clip in clips)
    for clip in clips:
        clip.identity_split = by_identity[clip.source_id]
    return True


def _place(source: Path, target: Path) -> None:
    """Put a raw video in the repo: a hard link when the file system allows it (no copy of big data)."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        with atomic_path(target) as partial:
            shutil.copyfile(source, partial)


def _reuse_previous(clips: list[Clip], config: BuildConfig, staging: Path) -> None:
    """Link compressed clips of a previous complete build whose source file is unchanged."""
    info_path = config.out / "build_info.json"
    if not info_path.exists():
        return
    previous = json.loads(info_path.read_text()).get("source_fingerprints", {})
    for clip in clips:
        if previous.get(clip.video_id) != clip.fingerprint():
            continue
        for quality in CRF_BY_QUALITY:
            old = config.out / quality / clip.relative_path(quality)
            if quality in config.qualities and old.exists():
                _place(old, staging / quality / clip.relative_path(quality))


def write_splits_csv(path: Path, clips: list[Clip]) -> None:
    columns = ["video_id", "label", "action", "source_id", "driving_id", "source_file", "width", "height",
               "num_frames", "fps", "split", "identity_split"]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for clip in sorted(clips, key=lambda clip: clip.video_id):
            writer.writerow([
                clip.video_id, LABEL_NAMES[clip.label], clip.source.action or "", clip.source_id or "",
                clip.driving_id or "", clip.source.relative, clip.info.width, clip.info.height,
                clip.info.num_frames, f"{clip.info.fps:g}", clip.split, clip.identity_split or "",
            ])  # fmt: skip


def build(config: BuildConfig) -> Path:
    """Build the repo into ``config.out``; raises BuildError, having written nothing, on problems."""
    started = time.perf_counter()
    recover_interrupted_replace(config.out)
    unknown_qualities = set(config.qualities) - set(QUALITIES)
    if unknown_qualities:
        raise BuildError(f"unknown qualities {sorted(unknown_qualities)}; choose from {list(QUALITIES)}")
    if config.out.exists() and not (config.out / "build_info.json").exists() and any(config.out.iterdir()):
        raise BuildError(f"{config.out} exists and is not a dataset built by this tool; choose a new or empty --out")
    workers = config.workers or default_workers()
    scan = scan_release(config.source, config.real_folder)
    problems = Problems(scan.missing_actions, scan.empty_folders, scan.unknown_folders)
    problems.bad_files.update({path: "not a video file (by extension)" for path in scan.non_video_files})
    clips = collect_clips(config, scan, problems, workers)
    if problems.blocking(config):
        hint = "Fix or remove them, or rerun with --skip_bad_files (bad files, empty and unknown folders)"
        if problems.missing_actions:
            hint += " and --allow_missing_actions (missing action folders)"
        raise BuildError(f"{config.source}: the build found problems and wrote nothing.\n{problems.report()}\n{hint}.")
    if problems:
        logger.warning("skipping what follows.\n%s", problems.report())
    if not clips:
        raise BuildError(f"{config.source}: no readable videos; nothing to build")
    has_identity = assign_splits(clips)

    # A hidden folder beside DIR, renamed into place once complete (through replace_folder); kept when the build
    # fails, so that a rerun reuses the clips it has compressed.
    with atomic_path(config.out, keep_on_failure=True) as staging:
        staging.mkdir(exist_ok=True)
        for clip in clips:
            _place(clip.source.path, staging / "raw" / clip.relative_path("raw"))
        _reuse_previous(clips, config, staging)
        jobs = [
            CompressionJob(
                staging / "raw" / clip.relative_path("raw"),
                staging / quality / clip.relative_path(quality),
                crf,
            )
            for quality, crf in CRF_BY_QUALITY.items()
            if quality in config.qualities
            for clip in clips
        ]
        encoded = compress_videos(jobs, workers=workers, progress=config.progress)
        if "raw" not in config.qualities:
            shutil.rmtree(staging / "raw")

        configs, counts = write_configs(staging, clips, config.qualities, has_identity, config.progress)
        write_splits_csv(staging / "splits.csv", clips)
        command = "python -m dataset_script.build " + shlex.join([str(config.source), "--out", str(config.out)])
        source_description = "a folder generated by this project" if has_identity else "the official release folder"
        disk = disk_use(staging, config.qualities)
        card = render_card(configs, counts, source_description, has_identity, command, disk)
        write_text_atomically(staging / "README.md", card)
        info = {
            "config": {key: str(value) if isinstance(value, Path) else value for key, value in asdict(config).items()},
            "clips": len(clips),
            "encoded": encoded,
            "reused": len(jobs) - encoded,
            "skipped": problems.report() if problems else None,
            "seconds": round(time.perf_counter() - started, 1),
            "disk_bytes": asdict(disk),
            "source_fingerprints": {clip.video_id: clip.fingerprint() for clip in clips},
        }
        # Written last: a staging folder with build_info.json is complete.
        write_text_atomically(staging / "build_info.json", json.dumps(info, indent=1))
    logger.info("built %s: %d clips, %d configs, %d encoded, %d reused, %s s; %s", config.out, len(clips),
                len(configs), encoded, len(jobs) - encoded, info["seconds"], disk.describe())  # fmt: skip
    if config.push_to_hub:
        from .hub import push_to_hub

        push_to_hub(config.out, config.push_to_hub)
    return config.out


def parse_args(argv: list[str] | None = None) -> BuildConfig:
    parser = argparse.ArgumentParser(prog="python -m dataset_script.build", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source",
        type=Path,
        help="release folder (or a generated folder with manifest.csv)",
    )
    parser.add_argument("--out", type=Path, required=True, help="where the dataset repo is written")
    parser.add_argument(
        "--real_folder",
        "--real-folder",
        help="name of the real-clip folder (default: 'original' or 'real')",
    )
    parser.add_argument(
        "--qualities",
        default=",".join(QUALITIES),
        help="comma-separated subset of raw,c23,c40",
    )
    parser.add_argument("--workers", type=int, help="parallel probes/encodes (default: all cores)")
    parser.add_argument(
        "--skip_bad_files",
        "--skip-bad-files",
        action="store_true",
        help="skip unreadable, non-video or unlisted files and empty or unknown folders, with a warning",
    )
    parser.add_argument(
        "--allow_missing_actions",
        "--allow-missing-actions",
        action="store_true",
        help="build even if action folders are missing",
    )
    parser.add_argument(
        "--push_to_hub",
        "--push-to-hub",
        metavar="ORG/NAME",
        help="after building, upload a sharded Hub form",
    )
    parser.add_argument("--no_progress", "--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    return BuildConfig(
        source=args.source,
        out=args.out,
        real_folder=args.real_folder,
        qualities=tuple(q for q in args.qualities.split(",") if q),
        workers=args.workers,
        skip_bad_files=args.skip_bad_files,
        allow_missing_actions=args.allow_missing_actions,
        push_to_hub=args.push_to_hub,
        progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        build(parse_args(argv))
    except (BuildError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

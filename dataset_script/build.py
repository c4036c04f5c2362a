"""Build a data-only ``datasets`` repo from a DeepFake MNIST+, FaceForensics++, Celeb-DF-v2 or DFDC release folder,
or from a collection of one's own (folders of real and fake videos, or a CSV list of them).

    python -m dataset_script.build SOURCE --output_dir DIR [--layout dmplus|faceforensics|celeb_df|dfdc|folders|csv]
        [--list FILE] [--push_to_hub ORG/NAME]

The layout is recognised from the folders (``layouts``); every layout gives rows of one schema
(``schema.ROW_COLUMNS``). DeepFake MNIST+ clips are 256x256 already and the build makes c23/c40 from raw;
FaceForensics++, Celeb-DF and DFDC videos are full frames, which the build face-crops (``face_crops``) at each
quality they come in, as it crops the whole-frame videos of a collection (its face crops are kept as they are).

Every input is probed first; any problem is reported, each named, and the build stops before writing anything
(unless ``--skip_bad_files``). Layouts list the source through ``source_folder.SourceFolder``, so nothing that
resolves outside it is opened unless ``--follow_links_outside_source``, and the repo never holds a link out of it.
The repo is assembled in a hidden temporary folder beside DIR and renamed into place at the end
(``files.replace_folder``), so after a crash at any point DIR is the previous build or the new one, never half of
one. Compressed clips finished by an earlier run (interrupted or complete) are reused.

Each configuration's rows are parquet shards with the videos inside (``shards``), the same files locally and on
the Hub, so a repo loads and decodes wherever it is moved or copied. Each clip is stored once per quality
(``configs.write_configs``): the shards are the repo's only copy unless ``--keep_clips`` also keeps the clips as files
under ``<quality>/<folder>/``. Reruns reuse a previous build's encodes and crops from either
(``shards.read_clips``).
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
from dataclasses import asdict
from pathlib import Path

from .card import render_card
from .clips import DEFAULT_MAX_FRAMES, BuildConfig, BuildError, Clip, Problems
from .compression import CompressionError, CompressionJob, compress_videos, default_workers
from .configs import disk_use, write_configs
from .console import add_old_spelling, configure_logging
from .face_crops import CropJob, crop_videos, release_face_crop
from .faces import FACE_CROP_SIZE
from .files import atomic_path, recover_interrupted_replace, write_text_atomically
from .layouts import (
    COLLECTION_OPTIONS,
    LAYOUTS,
    Layout,
    add_collection_arguments,
    check_options,
    command_flags,
    recognise_layout,
)
from .probe import VideoInfo
from .schema import CRF_BY_QUALITY, LABEL_NAMES, QUALITIES
from .shards import export_clips
from .source_folder import SourceError, SourceFolder, printable, resolves_inside

logger = logging.getLogger(__name__)

FACE_BOXES = "face_boxes"
"""Where a face-cropped build keeps each video's crop record (box, frames, fps): a finished crop, for reruns."""

__all__ = ["BuildConfig", "BuildError", "build", "main", "parse_args"]


def _place(source: Path, target: Path, link_within: Path) -> None:
    """Put a file in the repo: a hard link (no copy of big data) when it lies in ``link_within`` (the release, or the
    previous build) and the file system allows, else a copy. Never a symbolic link, and never a hard link to a file
    elsewhere, which a link followed out of the release (``--follow_links_outside_source``) would be."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    # Linking the link's target, not the link: os.link of a symbolic link makes another symbolic link on Linux.
    resolved = source.resolve()
    if resolves_inside(resolved, link_within):
        try:
            os.link(resolved, target)
            return
        except OSError:
            pass
    with atomic_path(target) as partial:
        shutil.copyfile(resolved, partial)


STAGED_FROM = "staged_from.json"
"""In the staging folder: each clip's source fingerprint when its files were staged (placed, encoded, cropped)."""


def _drop_stale_staging(clips: list[Clip], staging: Path) -> None:
    """What a failed build left in ``staging`` for clips whose sources changed since (replaced, or rewritten in
    place through a staged hard link) is removed: their raw, encoded or cropped qualities and their face box
    record. Then each clip's fingerprint is recorded for the next rerun."""
    record = staging / STAGED_FROM
    staged_from = json.loads(record.read_text()) if record.exists() else {}
    for clip in clips:
        if staged_from.get(clip.video_id) not in (None, clip.fingerprint()):
            for quality in QUALITIES:
                (staging / quality / clip.relative_path(quality)).unlink(missing_ok=True)
            (staging / FACE_BOXES / f"{clip.video_id}.json").unlink(missing_ok=True)
    write_text_atomically(record, json.dumps({clip.video_id: clip.fingerprint() for clip in clips}))


def _reuse_previous(clips: list[Clip], config: BuildConfig, staging: Path, qualities) -> None:
    """Link clips (compressed or face-cropped) of a previous complete build whose source files are unchanged."""
    info_path = config.output_dir / "build_info.json"
    if not info_path.exists():
        return
    previous = json.loads(info_path.read_text()).get("source_fingerprints", {})
    from_shards = []
    for clip in clips:
        if previous.get(clip.video_id) != clip.fingerprint():
            continue
        made = [q for q in qualities if clip.has_quality(q) and (clip.qualities is not None or q in CRF_BY_QUALITY)]
        for quality in made:
            name = f"{quality}/{clip.relative_path(quality)}"
            if (config.output_dir / name).exists():
                _place(config.output_dir / name, staging / name, config.output_dir)
            elif not (staging / name).exists():
                from_shards.append(name)  # built without --keep_clips: the shards hold the only copy
        record = config.output_dir / FACE_BOXES / f"{clip.video_id}.json"
        if clip.qualities is not None and record.exists():
            _place(record, staging / FACE_BOXES / f"{clip.video_id}.json", config.output_dir)
    if from_shards:
        restored = export_clips(config.output_dir, from_shards, staging)
        logger.info("reusing %d clips of the previous build from its shards", len(restored))


def stop_or_skip(bad: dict[str, str], what: str, finished: str, config: BuildConfig, problems: Problems) -> None:
    """Videos found bad (name -> reason) once work on them began: recorded in ``problems``, then a BuildError
    that names each (nothing is written to ``config.output_dir``; the staging folder keeps the ``finished`` work for a
    rerun), or with ``skip_bad_files`` a warning."""
    problems.bad_files.update(bad)
    report = Problems(bad_files=bad).report()
    if not config.skip_bad_files:
        raise BuildError(f"{config.source}: {len(bad)} videos {what}; nothing was written to {config.output_dir} "
                         f"(finished {finished} are kept for a rerun).\n{report}\nFix or remove them, or rerun with "
                         "--skip_bad_files.")  # fmt: skip
    logger.warning("skipping %d videos that %s.\n%s", len(bad), what, report)


def compress_clips(clips: list[Clip], config: BuildConfig, staging: Path, workers: int,
                   problems: Problems) -> tuple[list[Clip], int]:  # fmt: skip
    """DeepFake MNIST+: the raw clips as they are, c23/c40 made from one decode of each; returns (the clips kept,
    how many outputs were encoded).

    The probe counts packets without decoding, so a clip damaged inside is first found here, when ffmpeg stops at
    its decoding error: a bad file, named, that stops the build before anything is written to ``config.output_dir``
    (finished encodes are kept for a rerun), unless ``skip_bad_files``."""
    raw = {clip.source.relative: staging / "raw" / clip.relative_path("raw") for clip in clips}
    for clip in clips:
        _place(clip.source.path, raw[clip.source.relative], config.source)
    made = [(quality, crf) for quality, crf in CRF_BY_QUALITY.items() if quality in config.qualities]
    jobs = [
        CompressionJob(raw[clip.source.relative],
                       tuple((staging / quality / clip.relative_path(quality), crf) for quality, crf in made))
        for clip in clips
    ] if made else []  # fmt: skip
    targets = [target for job in jobs for target, _ in job.outputs]
    reused, failures = sum(target.exists() for target in targets), {}
    try:
        compress_videos(jobs, workers=workers, progress=config.progress)
    except CompressionError as error:
        if not error.failures:  # ffmpeg itself is missing: nothing to say of any one file
            raise BuildError(str(error)) from None
        failures = error.failures
    if failures:
        bad = {name: f"truncated or corrupt: {failures[path]}" for name, path in raw.items() if path in failures}
        stop_or_skip(bad, "could not be decoded to make c23/c40", "encodes", config, problems)
        clips = [clip for clip in clips if clip.source.relative not in bad]
        for source in failures:
            source.unlink(missing_ok=True)
    if "raw" not in config.qualities:
        shutil.rmtree(staging / "raw")
    return clips, sum(target.exists() for target in targets) - reused


def crop_clips(clips: list[Clip], config: BuildConfig, staging: Path, workers: int, problems: Problems) -> list[Clip]:
    """Full-frame layouts: every quality of each clip face-cropped with one box; returns the clips cropped.

    A video whose face cannot be cropped (none, no main one, undecodable) is a bad file: the build stops, having
    put nothing at ``config.output_dir`` (the staging folder keeps the finished crops for a rerun), unless
    ``skip_bad_files``."""
    jobs = [
        CropJob(name=clip.source.relative, sources=tuple(clip.qualities.items()),
                targets=tuple((q, staging / q / clip.relative_path(q)) for q in clip.qualities),
                record=staging / FACE_BOXES / f"{clip.video_id}.json", max_frames=config.max_frames)
        for clip in clips
    ]  # fmt: skip
    records, failures, reused = crop_videos(jobs, workers, config.device, config.progress)
    logger.info("face crops: %d videos cropped, %d reused, %d failed", len(records) - reused, reused, len(failures))
    if failures:
        stop_or_skip(failures, "had no face that could be cropped", "crops", config, problems)
    kept = []
    for clip in clips:
        record = records.get(clip.source.relative)
        if record is not None:
            clip.face_box = record.box
            clip.info = VideoInfo(FACE_CROP_SIZE, FACE_CROP_SIZE, record.num_frames, record.fps, "h264")
            kept.append(clip)
    return kept


def write_splits_csv(path: Path, clips: list[Clip]) -> None:
    columns = ["video_id", "label", "action", "source_id", "driving_id", "source_file", "width", "height",
               "num_frames", "fps", "split", "identity_split", "method", "face_box"]  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for clip in sorted(clips, key=lambda clip: clip.video_id):
            writer.writerow([
                clip.video_id, LABEL_NAMES[clip.label], clip.source.action or "", clip.source_id or "",
                clip.driving_id or "", clip.source.relative, clip.info.width, clip.info.height,
                clip.info.num_frames, f"{clip.info.fps:g}", clip.split, clip.identity_split or "", clip.method or "",
                " ".join(map(str, clip.face_box)) if clip.face_box else "",
            ])  # fmt: skip


def _check_config(config: BuildConfig) -> None:
    recover_interrupted_replace(config.output_dir)
    unknown_qualities = set(config.qualities) - set(QUALITIES)
    if unknown_qualities:
        raise BuildError(f"unknown qualities {sorted(unknown_qualities)}; choose from {list(QUALITIES)}")
    if (
        config.output_dir.exists()
        and not (config.output_dir / "build_info.json").exists()
        and any(config.output_dir.iterdir())
    ):
        raise BuildError(
            f"{config.output_dir} exists and is not a dataset built by this tool; choose a new or empty --output_dir"
        )
    if not config.source.is_dir():
        raise FileNotFoundError(f"{config.source} is not a folder; pass the unpacked release (or generated) folder")
    if config.max_frames is not None and config.max_frames < 1:
        raise BuildError(f"--max_frames must be a positive number or 'all', not {config.max_frames}")


def _scan(config: BuildConfig, layout: Layout, workers: int) -> tuple[list[Clip], Problems]:
    problems = Problems()
    listing = SourceFolder(config.source, config.follow_links_outside_source)
    clips = layout.scan(listing, config, problems, workers)
    problems.links_outside.update(listing.links_outside)
    problems.refused_entries.update(listing.refused)
    if listing.followed:
        followed = "\n".join(f"  - {printable(name)} -> {target}" for name, target in listing.followed.items())
        logger.warning("following %d links out of %s (--follow_links_outside_source); the repo gets copies of what "
                       "they point at, never links:\n%s", len(listing.followed), config.source, followed)  # fmt: skip
    if problems.blocking(config):
        hint = ("Fix or remove them, or rerun with --skip_bad_files (bad files, refused entries, links outside, empty "
                "and unknown folders)")  # fmt: skip
        if problems.missing_actions:
            hint += " and --allow_missing_actions (missing action folders)"
        if problems.links_outside:
            hint += (". If you trust what the links point at, --follow_links_outside_source builds from it too (copied "
                     "into the repo)")  # fmt: skip
        raise BuildError(f"{config.source}: the build found problems and wrote nothing.\n{problems.report()}\n{hint}.")
    if problems:
        logger.warning("skipping what follows.\n%s", problems.report())
    if not clips:
        raise BuildError(f"{config.source}: no readable videos; nothing to build")
    return clips, problems


def build(config: BuildConfig) -> Path:
    """Build the repo into ``config.output_dir``; raises BuildError, having written nothing there, on problems."""
    started = time.perf_counter()
    _check_config(config)
    workers = config.workers or default_workers()
    layout = recognise_layout(config.source, config.layout)
    check_options(layout, config)
    logger.info("building %s as the %s layout", config.source, layout.name)
    clips, problems = _scan(config, layout, workers)
    has_identity = layout.assign(clips, config)
    qualities = tuple(q for q in config.qualities if any(clip.has_quality(q) for clip in clips))

    # A hidden folder beside DIR, renamed into place once complete (through replace_folder); kept when the build
    # fails, so that a rerun reuses the clips it has compressed or cropped.
    with atomic_path(config.output_dir, keep_on_failure=True) as staging:
        staging.mkdir(exist_ok=True)
        _drop_stale_staging(clips, staging)  # before reusing the previous build: what it links in is current
        _reuse_previous(clips, config, staging, qualities)
        if layout.crops_faces:
            crops = [clip for clip in clips if clip.is_face_crop]
            for clip in crops:  # face crops already: the source's file as it is
                _place(clip.source.path, staging / "raw" / clip.relative_path("raw"), config.source)
            clips = [clip for clip in clips if not clip.is_face_crop]
            before = sum(1 for clip in clips for _ in clip.qualities)
            clips = crop_clips(clips, config, staging, workers, problems) + crops
            encoded, made = before, before
        else:
            clips, encoded = compress_clips(clips, config, staging, workers, problems)
            made = len(clips) * len(set(config.qualities) & set(CRF_BY_QUALITY))
        specs = layout.configs(clips, qualities)
        configs, counts = write_configs(staging, clips, specs, has_identity, config.progress)
        if not config.keep_clips:  # the shards hold every clip now; a failed build above keeps them for its rerun
            for quality in QUALITIES:
                shutil.rmtree(staging / quality, ignore_errors=True)
        write_splits_csv(staging / "splits.csv", clips)
        flags = [str(config.source), "--output_dir", str(config.output_dir)] + command_flags(layout, config)
        flags += ["--keep_clips"] if config.keep_clips else []
        command = "python -m dataset_script.build " + shlex.join(flags)
        disk = disk_use(staging, qualities)
        cropped = layout.crops_faces and not all(clip.is_face_crop for clip in clips)
        face_crop = release_face_crop(SourceFolder(config.source, config.follow_links_outside_source), clips,
                                      cropped)  # fmt: skip
        card = render_card(configs, counts, layout.card_text(clips, qualities, config), command, disk,
                           face_crop.describe() if face_crop else None)  # fmt: skip
        write_text_atomically(staging / "README.md", card)
        info = {
            "config": {key: str(value) if isinstance(value, Path) else value for key, value in asdict(config).items()},
            "layout": layout.name,
            "licensed_per_user": layout.licensed_per_user,
            "qualities": list(qualities),
            "qualities_absent": [q for q in QUALITIES if q not in qualities],
            "clips": len(clips),
            "encoded": encoded,
            "reused": made - encoded,
            "skipped": problems.report() if problems else None,
            "seconds": round(time.perf_counter() - started, 1),
            "disk_bytes": asdict(disk),
            "source_fingerprints": {clip.video_id: clip.fingerprint() for clip in clips},
            # how the clips were cut from whole frames: train.py copies it into each detector's config.json
            "face_crop": face_crop.as_dict() if face_crop else None,
        }
        (staging / STAGED_FROM).unlink(missing_ok=True)  # build_info's fingerprints say it from here on
        # Written last: a staging folder with build_info.json is complete.
        write_text_atomically(staging / "build_info.json", json.dumps(info, indent=1))
    logger.info("built %s: %d clips, %d configs, %s s; %s", config.output_dir, len(clips), len(configs),
                info["seconds"], disk.describe())  # fmt: skip
    if config.push_to_hub:
        from .hub import push_to_hub

        push_to_hub(config.output_dir, config.push_to_hub)
    return config.output_dir


def _max_frames(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number of frames or 'all', not {text!r}") from None


def parse_args(argv: list[str] | None = None) -> BuildConfig:
    parser = argparse.ArgumentParser(prog="python -m dataset_script.build", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path,
                        help="release folder: DeepFake MNIST+ (or a generated one with manifest.csv), "
                             "FaceForensics++, Celeb-DF-v2, DFDC, or a collection of one's own")  # fmt: skip
    parser.add_argument("--output_dir", type=Path, required=True, help="where the dataset repo is written")
    parser.add_argument("--layout", choices=list(LAYOUTS),
                        help="the source's layout (default: recognised; csv where --list is given); folders: real/ "
                             "and fake/<Method>/, optionally inside train/, validation/, test/")  # fmt: skip
    add_collection_arguments(parser)
    parser.add_argument(
        "--real_folder",
        help="DeepFake MNIST+: name of the real-clip folder (default: 'original' or 'real')",
    )
    parser.add_argument(
        "--qualities",
        default=",".join(QUALITIES),
        help="comma-separated subset of raw,c23,c40 (FaceForensics++: of those present)",
    )
    parser.add_argument(
        "--splits",
        type=Path,
        help="FaceForensics++: folder of train.json, val.json, test.json (default: SOURCE/splits)",
    )
    parser.add_argument(
        "--max_frames",
        type=_max_frames,
        default=DEFAULT_MAX_FRAMES,
        help=f"face-cropped layouts: frames kept per video, or 'all' (default {DEFAULT_MAX_FRAMES})",
    )
    parser.add_argument("--device", help="face-cropped layouts: where MTCNN runs (default: cuda when available)")
    parser.add_argument(
        "--validation_seed",
        type=int,
        default=0,
        help="Celeb-DF-v2: seed of the identities carved from train into validation",
    )
    parser.add_argument("--workers", type=int, help="parallel probes/encodes/crops (default: all cores)")
    parser.add_argument("--skip_bad_files", action="store_true",
                        help="skip unreadable, non-video, unlisted or faceless files, refused entries and links "
                             "out of SOURCE, and empty or unknown folders, each named in a warning")  # fmt: skip
    parser.add_argument("--follow_links_outside_source", action="store_true",
                        help="build from links (files or folders) that resolve outside SOURCE too, copying what they "
                             "point at into the repo; by default each is a problem, named")  # fmt: skip
    parser.add_argument(
        "--allow_missing_actions",
        action="store_true",
        help="DeepFake MNIST+: build even if action folders are missing",
    )
    parser.add_argument(
        "--push_to_hub",
        metavar="ORG/NAME",
        help="after building, upload a sharded Hub form (private for data licensed per user: FaceForensics++, "
        "Celeb-DF, DFDC, a collection of one's own)",
    )
    parser.add_argument("--keep_clips", action="store_true",
                        help="also keep each clip as a file under <quality>/<folder>/ (raw ones as hard links to "
                             "the source where the file system allows); by default the parquet shards are the "
                             "repo's only copy of each clip")  # fmt: skip
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    add_old_spelling(parser, "--out", "--output_dir")
    for option in (
        "--real_folder",
        "--max_frames",
        "--validation_seed",
        "--skip_bad_files",
        "--follow_links_outside_source",
        "--allow_missing_actions",
        "--push_to_hub",
        "--no_progress",
    ):
        add_old_spelling(parser, option.replace("_", "-"), option)
    args = parser.parse_args(argv)
    return BuildConfig(
        source=args.source,
        output_dir=args.output_dir,
        real_folder=args.real_folder,
        qualities=tuple(q for q in args.qualities.split(",") if q),
        workers=args.workers,
        skip_bad_files=args.skip_bad_files,
        allow_missing_actions=args.allow_missing_actions,
        push_to_hub=args.push_to_hub,
        progress=not args.no_progress,
        layout=args.layout or ("csv" if args.list_file else None),
        splits=args.splits,
        max_frames=args.max_frames,
        device=args.device,
        validation_seed=args.validation_seed,
        follow_links_outside_source=args.follow_links_outside_source,
        keep_clips=args.keep_clips,
        **{option: getattr(args, option) for option in COLLECTION_OPTIONS},
    )


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    try:
        build(parse_args(argv))
    except (BuildError, SourceError, FileNotFoundError) as error:
        logger.error("%s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

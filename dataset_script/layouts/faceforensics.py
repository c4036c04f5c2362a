"""The FaceForensics++ layout, as its download script writes it, in the build.

    original_sequences/youtube/<q>/videos/NNN.mp4
    manipulated_sequences/<Method>/<q>/videos/TTT_SSS.mp4      (TTT's video, SSS's face or expressions)
    splits/train.json, val.json, test.json                     (or --splits DIR: the official lists of id pairs)

``<q>`` is ``raw``, ``c23`` or ``c40``. The qualities present are built, each from its own files: one is never made
from another (that would compress twice, and would not be FaceForensics++'s data). A pair [a, b] of a split file
puts originals a and b and fakes ``a_b`` and ``b_a`` of every method into that split; ``val.json`` is ``validation``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from tqdm.auto import tqdm

from ..card import CardText
from ..clips import BuildConfig, BuildError, Clip, Problems
from ..configs import ConfigSpec, SplitOf, subset_rows
from ..probe import VideoInfo, VideoProbeError, read_metadata
from ..release import SourceVideo
from ..schema import QUALITIES, VIDEO_EXTENSIONS
from ..source_folder import SourceFolder, read_utf8

logger = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
ORIGINALS = "original_sequences/youtube"
MANIPULATED = "manipulated_sequences"
REAL_FOLDER = "original"
"""Folder (and ``video_id`` prefix) of the original videos in the built repo."""
SPLIT_FILES: dict[str, str] = {"train": "train.json", "validation": "val.json", "test": "test.json"}
CITATION = """@inproceedings{roessler2019faceforensicspp,
  title     = {FaceForensics++: Learning to Detect Manipulated Facial Images},
  author    = {R{\\"o}ssler, Andreas and Cozzolino, Davide and Verdoliva, Luisa and Riess, Christian and
               Thies, Justus and Nie{\\ss}ner, Matthias},
  booktitle = {International Conference on Computer Vision (ICCV)},
  year      = {2019}
}"""


def recognise(source: Path) -> bool:
    return (source / "original_sequences").is_dir() or (source / MANIPULATED).is_dir()


def read_splits(folder: Path, listing: SourceFolder) -> dict[str, str]:
    """Split of each original id (``000``) and fake stem (``000_003``, ``003_000``) from the official split files,
    each checked by ``listing`` first."""
    missing = [name for name in SPLIT_FILES.values() if listing.file(folder / name) is None]
    if missing:
        raise BuildError(
            f"FaceForensics++ split files missing from {folder}: {', '.join(missing)}. They are not part of the "
            "download: put the official train.json, val.json and test.json (lists of id pairs, from the "
            "FaceForensics++ repository's dataset/splits) in SOURCE/splits/ or pass --splits DIR"
        )
    membership: dict[str, str] = {}
    for split, name in SPLIT_FILES.items():
        try:
            pairs = json.loads(read_utf8(folder / name))
            pairs = [(str(a), str(b)) for a, b in pairs]
        except (ValueError, TypeError) as error:
            example = '[["000", "003"], ...]'
            raise BuildError(f"{folder / name}: not a JSON list of id pairs like {example} ({error})") from error
        for a, b in pairs:
            for key in (a, b, f"{a}_{b}", f"{b}_{a}"):
                if membership.setdefault(key, split) != split:
                    raise BuildError(f"{folder / name}: {key} is in both {membership[key]} and {split}")
    return membership


def _videos(listing: SourceFolder, folder: Path, relative: str, problems: Problems) -> dict[str, dict[str, Path]]:
    """{quality: {stem: file}} under ``folder/<q>/videos``; anything else there is recorded as a problem."""
    found: dict[str, dict[str, Path]] = {}
    for quality_folder in listing.folders(folder):
        if quality_folder.name not in QUALITIES:
            problems.unknown_folders.append(f"{relative}/{quality_folder.name}")
            continue
        for path in listing.files(quality_folder / "videos"):
            if path.suffix.lower() not in VIDEO_EXTENSIONS:
                problems.bad_files[f"{relative}/{quality_folder.name}/videos/{path.name}"] = "not a video file"
                continue
            found.setdefault(quality_folder.name, {})[path.stem] = path
    return found


def _groups(listing: SourceFolder, problems: Problems) -> dict[tuple[str, str], dict[str, Path]]:
    """{(method or "", stem): {quality: file}}."""
    root = listing.root
    folders = {"": (root / ORIGINALS, ORIGINALS)}
    for folder in listing.folders(root / MANIPULATED):
        if folder.name in METHODS:
            folders[folder.name] = (folder, f"{MANIPULATED}/{folder.name}")
        else:
            problems.unknown_folders.append(f"{MANIPULATED}/{folder.name}")
    groups: dict[tuple[str, str], dict[str, Path]] = defaultdict(dict)
    for method, (folder, relative) in folders.items():
        if not folder.is_dir():
            raise BuildError(f"{root}: no {relative}/ folder; FaceForensics++ needs its original videos too")
        for quality, files in _videos(listing, folder, relative, problems).items():
            for stem, path in files.items():
                groups[(method, stem)][quality] = path
    return groups


def _relative(source: Path, path: Path) -> str:
    return path.relative_to(source).as_posix()


def scan(listing: SourceFolder, config: BuildConfig, problems: Problems, workers: int) -> list[Clip]:
    source = config.source
    membership = read_splits(config.splits or source / "splits", listing)
    groups = _groups(listing, problems)
    present = [q for q in QUALITIES if any(q in files for files in groups.values())]
    absent = [q for q in QUALITIES if q not in present]
    wanted = [q for q in present if q in config.qualities]
    if not wanted:
        raise BuildError(f"{source}: none of the qualities {list(config.qualities)} is present (found: "
                         f"{present or 'no videos'}); pass --qualities with those present")  # fmt: skip
    if absent:
        logger.warning("FaceForensics++ qualities absent from %s: %s (built: %s; never made from another quality)",
                       source, ", ".join(absent), ", ".join(wanted))  # fmt: skip
    files = [path for qualities in groups.values() for q, path in qualities.items() if q in wanted]
    checked = dict(zip(files, container_infos(files, workers, config.progress), strict=True))
    clips = []
    for (method, stem), qualities in sorted(groups.items()):
        qualities = {q: qualities[q] for q in wanted if q in qualities}
        if not qualities:
            continue
        best = next(iter(qualities.values()))
        bad = {path: checked[path] for path in qualities.values() if isinstance(checked[path], str)}
        for path, reason in bad.items():
            problems.bad_files[_relative(source, path)] = reason
        split = membership.get(stem)
        if split is None:
            what = f"pair {stem}" if method else f"original {stem}"
            where = ", ".join(SPLIT_FILES.values())
            problems.bad_files[_relative(source, best)] = f"{what} is in no split file ({where})"
        if bad or split is None:
            continue
        target, _, face = stem.partition("_")
        info: VideoInfo = checked[best]
        clips.append(Clip(
            source=SourceVideo(best, _relative(source, best), method or REAL_FOLDER, None),
            info=info, video_id=f"{method or REAL_FOLDER}/{stem}", label=int(bool(method)),
            source_id=face if method else stem, driving_id=target if method else None,
            split=split, method=method or None, qualities=qualities,
        ))  # fmt: skip
    return clips


def container_info(path: Path) -> VideoInfo | str:
    """The container's description of a video, or why it is not one (frames are decoded when cropped)."""
    try:
        metadata = read_metadata(path)
    except VideoProbeError as error:
        return str(error).removeprefix(f"{path}: ")
    return VideoInfo(metadata.width, metadata.height, metadata.declared_frames, metadata.fps, metadata.codec)


def container_infos(paths: list[Path], workers: int, progress: bool = True) -> list[VideoInfo | str]:
    """``container_info`` of each of ``paths``, ``workers`` at a time."""
    with ThreadPoolExecutor(workers) as pool:
        return list(tqdm(pool.map(container_info, paths), total=len(paths), desc="probing", unit="video",
                         disable=not progress))  # fmt: skip


def assign(clips: list[Clip]) -> bool:
    """Splits come from the split files (set by ``scan``); there is no identity split."""
    return False


def _all_rows(clips: list[Clip], split_of: SplitOf, quality: str) -> dict[str, list[Clip]]:
    return subset_rows([clip for clip in clips if clip.has_quality(quality)], split_of)


def _method_rows(clips: list[Clip], split_of: SplitOf, quality: str, method: str) -> dict[str, list[Clip]]:
    """That method's fakes, and the originals of the same split they were made from (as target or as source)."""
    at_quality = [clip for clip in clips if clip.has_quality(quality)]
    fakes = [clip for clip in at_quality if clip.method == method]
    used = {(split_of(clip), identity) for clip in fakes for identity in (clip.source_id, clip.driving_id)}
    rows: dict[str, list[Clip]] = {}
    for clip in at_quality:
        split = split_of(clip)
        if split is not None and (clip.method == method or (clip.label == 0 and (split, clip.source_id) in used)):
            rows.setdefault(split, []).append(clip)
    return {split: sorted(members, key=lambda clip: clip.video_id) for split, members in rows.items()}


def configs(clips: list[Clip], qualities) -> list[ConfigSpec]:
    """``<q>`` (originals and every method) and ``<q>-<Method>`` for each quality present."""
    specs = []
    for quality in qualities:
        specs.append(ConfigSpec(quality, quality, partial(_all_rows, quality=quality)))
        methods = {clip.method for clip in clips if clip.method and clip.has_quality(quality)}
        specs += [ConfigSpec(f"{quality}-{method}", quality, partial(_method_rows, quality=quality, method=method))
                  for method in METHODS if method in methods]  # fmt: skip
    return specs


def card_text(clips: list[Clip], qualities, config: BuildConfig) -> CardText:
    absent = [q for q in QUALITIES if q not in qualities]
    methods = [method for method in METHODS if any(clip.method == method for clip in clips)]
    frames = "every frame" if config.max_frames is None else f"the first {config.max_frames} frames"
    absent_note = f" ({', '.join(absent)} absent: never made from another quality)" if absent else ""
    example = f"{qualities[0]}-{methods[0] if methods else METHODS[0]}"
    return CardText(
        pretty_name="FaceForensics++ (face crops)",
        tags=["deepfake-detection", "face-manipulation", "faceforensics"],
        default_config=qualities[0],
        intro=f"""\
FaceForensics++ (Rössler et al., ICCV 2019): 1,000 YouTube videos and their manipulations by
{", ".join(methods)}, here as 256x256 face clips in the row schema every dataset of this project shares, so a
detector trained on one is evaluated on another unchanged. Built from a FaceForensics++ download at the qualities
{", ".join(qualities)}{absent_note}.""",
        usage=f"""\
from datasets import load_dataset
ds = load_dataset("PATH/TO/THIS/FOLDER", "{qualities[0]}")                 # originals and every method
one = load_dataset("PATH/TO/THIS/FOLDER", "{example}")    # one method's fakes and their originals""",
        configurations="""\
* `<quality>` for each quality built: every original and every fake at that quality.
* `<quality>-<Method>`: one method's fakes, and the originals they were made from (target or source video)
  in the same split.

Real clips have `method` empty; `driving_id` is a fake's target video (TTT of `TTT_SSS`), `source_id` its source
(SSS), and an original's own id.""",
        clip_folders="the face clips as files (folder = original or a method)",
        disk_note=f"""\
Each video was face-cropped to 256x256 ({frames}; `--max_frames`) and stored losslessly
(RGB H.264, `-qp 0`), so each quality keeps exactly its own compression artefacts: lossless crops take more bytes
than the compressed sources they come from.""",
        splits="""\
The official FaceForensics++ split files (`train.json`, `val.json`, `test.json`: 720/140/140 pairs of
ids): a pair [a, b] puts originals a and b and fakes `a_b` and `b_a` of every method into that split; `val.json`
is `validation`. Membership is in `splits.csv`.""",
        built_note="""\
Each video's face tube was found by MTCNN in its best quality present (the main face, followed through
the frames); one square 1.3x the tube's extent, edge-padded where it leaves the frame, cut every quality of it
(the box is in `splits.csv`). The build writes into a temporary folder and renames it at the end; finished crops
are reused by reruns.""",
        licence="""\
FaceForensics++ is licensed to each user who accepts its terms of use (research only, no
redistribution): this repository is yours alone. Never push it to a public repository;
`python -m dataset_script.build --push_to_hub` makes it private unless you say otherwise.""",
        citation=CITATION,
    )

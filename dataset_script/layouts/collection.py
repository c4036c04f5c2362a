"""What the layouts of a collection of one's own share (``folders``, ``csv_list``, ``dfdc``): the videos each one
names become the build's clips, and are split, configured and described alike.

Such a collection comes in one quality, as it is (``raw``). Whole-frame videos are face-cropped by the build, as
FaceForensics++ and Celeb-DF are; clips that are face crops already are kept as they are (``--face_crops``). Splits
are the collection's own where it gives them; else the build deals them 70/15/15, seeded (``--split_seed``): by
identity group where identities are known (a clip's ``driving_id``, else its ``source_id``: a fake and the video it
was made from are one group), else by file within each class and method. ``--test_only`` puts all into ``test``.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

from ..card import CITATION, CardText
from ..clips import BuildConfig, BuildError, Clip, Problems
from ..configs import ConfigSpec, subset_rows
from ..face_crops import recognise_crops
from ..release import SourceVideo
from ..schema import LABEL_NAMES, SPLITS
from ..splits import identity_split
from .faceforensics import container_infos

logger = logging.getLogger(__name__)

QUALITY = "raw"
"""A collection comes in one quality: as it is."""
FACE_CROP_MODES = ("auto", "yes", "no")
SPLIT_NAMES = {"train": "train", "validation": "validation", "val": "validation", "test": "test"}
"""The split names a collection may give (split folders, a list's column): ours, and FaceForensics++'s ``val``."""
METHOD_NAME = re.compile(r"\w[\w.+-]*")
"""A method's name becomes a configuration's (``raw-<method>``): letters, digits and ``_ . + -`` only."""
MOST_NAMED = 5
"""Clips named by example in a log line that counts many."""


@dataclass
class Listed:
    """A video a collection names, before it is probed."""

    relative: str
    """Its path in SOURCE, ``/`` between folders: the name reports give it, and its place in the repo."""
    path: Path
    label: int
    method: str | None = None
    split: str | None = None
    """The collection's own split for it (a split folder, a list's column); None: the build deals it."""
    source_id: str | None = None
    driving_id: str | None = None
    action: str | None = None


@dataclass(frozen=True)
class CollectionText:
    """What a collection's layout says in the card; the rest is the same for all three."""

    pretty_name: str
    tags: tuple[str, ...]
    intro: str
    licence: str
    citation: str


def method_problem(name: str) -> str | None:
    """Why ``name`` cannot be a method's name, if it cannot."""
    if METHOD_NAME.fullmatch(name):
        return None
    return (f"the method name {name!r} would name a configuration (raw-<method>): use letters, digits and _ . + - "
            "only")  # fmt: skip


def identity_pattern(config: BuildConfig) -> re.Pattern | None:
    """``--identity_pattern`` compiled; BuildError saying what is wrong with it."""
    if config.identity_pattern is None:
        return None
    try:
        return re.compile(config.identity_pattern)
    except re.error as error:
        raise BuildError(f"--identity_pattern {config.identity_pattern!r} is not a regular expression ({error}); "
                         r"give one like 'id\d+' or '^([^/]+)/' whose first group (or whole match) is the "
                         "identity") from None  # fmt: skip


def identity_in(pattern: re.Pattern, relative: str) -> str | None:
    """The identity ``pattern`` finds in a clip's path: its first group, else the whole match; None where none."""
    match = pattern.search(relative)
    if match is None:
        return None
    return (match.group(1) if pattern.groups else match.group(0)) or None


def missing_identity(pattern: re.Pattern, fix: str) -> str:
    return f"--identity_pattern {pattern.pattern!r} finds no identity in its path; fix the pattern, or {fix}"


def clips_of(listed: list[Listed], config: BuildConfig, problems: Problems, workers: int) -> list[Clip]:
    """The clips of ``listed``, probed, each marked a face crop already or not; every video that is unreadable,
    or whose video id another's is, recorded in ``problems``."""
    if QUALITY not in config.qualities:
        raise BuildError(f"a collection comes in one quality, {QUALITY} (as it is); pass --qualities {QUALITY}")
    infos = container_infos([entry.path for entry in listed], workers, config.progress)
    clips, seen = [], {}
    for entry, info in zip(listed, infos, strict=True):
        if isinstance(info, str):
            problems.bad_files[entry.relative] = info
            continue
        parent = PurePosixPath(entry.relative).parent.as_posix()
        folder = LABEL_NAMES[entry.label] if parent == "." else parent  # a list may name files at SOURCE's top
        video_id = f"{folder}/{entry.path.stem}"
        if video_id in seen:
            problems.bad_files[entry.relative] = (f"its video id {video_id} (folder and name without extension) is "
                                                  f"{seen[video_id]}'s too; rename one")  # fmt: skip
            continue
        seen[video_id] = entry.relative
        clips.append(Clip(
            source=SourceVideo(entry.path, entry.relative, folder, entry.action), info=info, video_id=video_id,
            label=entry.label, source_id=entry.source_id, driving_id=entry.driving_id, split=entry.split or "",
            method=entry.method, qualities={QUALITY: entry.path},
        ))  # fmt: skip
    return mark_face_crops(clips, config, problems)


def mark_face_crops(clips: list[Clip], config: BuildConfig, problems: Problems) -> list[Clip]:
    """Mark the clips that are face crops already (``--face_crops``): none (yes, crop all), all (no), or as
    ``face_crops.recognise_crops`` decides for each (auto). Returns the clips, less those that cannot be decoded."""
    mode = config.face_crops or "auto"
    if mode not in FACE_CROP_MODES:
        raise BuildError(f"--face_crops {mode!r}: choose auto, yes (crop every clip) or no (every clip is a face "
                         "crop already)")  # fmt: skip
    if mode != "auto":
        for clip in clips:
            clip.is_face_crop = mode == "no"
        return clips
    videos = [(clip.source.relative, clip.source.path, clip.info.height, clip.info.width) for clip in clips]
    decisions, failures = recognise_crops(videos, config.device, config.progress)
    problems.bad_files.update(failures)
    clips = [clip for clip in clips if clip.source.relative not in failures]
    for clip in clips:
        clip.is_face_crop = decisions[clip.source.relative].is_crop
    kept = sum(clip.is_face_crop for clip in clips)
    logger.info("face crops (--face_crops auto): %d clips are face crops already and are kept as they are; %d "
                "whole-frame clips will be face-cropped", kept, len(clips) - kept)  # fmt: skip
    square = [clip for clip in clips if not clip.is_face_crop and clip.info.height == clip.info.width]
    if square:
        examples = "\n".join(f"  - {clip.source.relative}: {decisions[clip.source.relative].reason}"
                             for clip in square[:MOST_NAMED])  # fmt: skip
        logger.info("%d square clips do not look like this project's face crops and will be cropped (pass "
                    "--face_crops no to keep every clip as it is), for example:\n%s", len(square),
                    examples)  # fmt: skip
    return clips


def _group(clip: Clip) -> str | None:
    """A clip's identity group: the video a fake was made from (its ``driving_id``), else its own identity."""
    return clip.driving_id or clip.source_id


def split_rule(clips: list[Clip], config: BuildConfig) -> str:
    """How the clips' splits are made, in words (before ``deal_splits``: after, ``Clip.split_rule`` says it)."""
    if config.test_only:
        return "every clip is in `test` (`--test_only`): a collection to score a trained detector on"
    if clips and all(clip.split for clip in clips):
        return "the splits are the collection's own, as it gives them"
    seed = f"dealt 70/15/15 with seed {config.split_seed} (`--split_seed`)"
    if any(_group(clip) for clip in clips):
        return (f"{seed} by identity group, so no identity is on two sides: a fake goes with the video it was made "
                "from (its `driving_id`), any other clip with its `source_id`")  # fmt: skip
    return f"{seed} by file, within each class and method (no identity was given: `--identity_pattern`)"


def deal_splits(clips: list[Clip], config: BuildConfig) -> bool:
    """Fill in each clip's split (``split_rule``); False: there is no second, identity-disjoint split scheme."""
    rule = split_rule(clips, config)
    for clip in clips:
        clip.split_rule = rule
    if config.test_only:
        for clip in clips:
            clip.split = SPLITS[2]
    elif not all(clip.split for clip in clips):
        grouped = any(_group(clip) for clip in clips)
        strata: dict[tuple, list[Clip]] = defaultdict(list)
        for clip in clips:
            strata[() if grouped else (clip.label, clip.method or "")].append(clip)
        for members in strata.values():
            # a clip of no identity (where others have one) stands alone
            key = {clip.video_id: (_group(clip) if grouped else None) or clip.video_id for clip in members}
            assignment = identity_split(key.values(), config.split_seed)
            for clip in members:
                clip.split = assignment[key[clip.video_id]]
    counts = Counter((clip.split, clip.label) for clip in clips)
    summary = ", ".join(f"{split} {counts[split, 0]} real + {counts[split, 1]} fake" for split in SPLITS)
    logger.info("splits: %s; %s", summary, rule.replace("`", ""))
    if not config.test_only and not all(counts[SPLITS[1], label] + counts[SPLITS[2], label] for label in (0, 1)):
        logger.warning("validation and test lack a class (%s): too few clips or identities to deal 70/15/15; give "
                       "more, or the splits yourself", summary)  # fmt: skip
    return False


def configs(clips: list[Clip], qualities) -> list[ConfigSpec]:
    """``raw``, every clip; where the fakes come from several methods, ``raw-<method>`` for each: its fakes and as
    many real clips of the same split."""
    specs = [ConfigSpec(QUALITY, QUALITY, subset_rows)]
    if len({clip.method for clip in clips if clip.label == 1}) > 1:
        methods = sorted({clip.method for clip in clips if clip.method})
        specs += [ConfigSpec(f"{QUALITY}-{method}", QUALITY, partial(subset_rows, method=method))
                  for method in methods]  # fmt: skip
    return specs


def card_text(text: CollectionText, clips: list[Clip], qualities, config: BuildConfig) -> CardText:
    methods = sorted({clip.method for clip in clips if clip.method})
    kept = sum(clip.is_face_crop for clip in clips)
    rule = clips[0].split_rule if clips else ""
    frames = "every frame" if config.max_frames is None else f"the first {config.max_frames} frames"
    example = f'\none = load_dataset("PATH/TO/THIS/FOLDER", "{QUALITY}-{methods[0]}")   # one method\'s fakes' if (
        len(methods) > 1) else ""  # fmt: skip
    return CardText(
        pretty_name=text.pretty_name,
        tags=["deepfake-detection", *text.tags],
        default_config=QUALITY,
        intro=f"""\
{text.intro}

{sum(clip.label == 0 for clip in clips)} real and {sum(clip.label == 1 for clip in clips)} fake clips (methods:
{", ".join(methods) or "not named"}), here as face clips in the row schema every dataset of this project shares, so
a detector trained on one is evaluated on another unchanged.""",
        usage=f"""\
from datasets import load_dataset
ds = load_dataset("PATH/TO/THIS/FOLDER", "{QUALITY}"){example}""",
        configurations=f"""\
* `{QUALITY}`: every clip, in the one quality the collection comes in.
* `{QUALITY}-<method>`, where the fakes come from several methods: one method's fakes and as many real clips of the
  same split, drawn by a fixed hash.

`method` is what the collection names for a fake (empty where it names none, and for real clips); `source_id` is
a clip's identity where one was given, and `driving_id` the video a fake was made from, where that is known.""",
        clip_folders="the clips as files, in the collection's own folders",
        disk_note=f"""\
{len(clips) - kept} whole-frame videos were face-cropped to 256x256
({frames}; `--max_frames`) and stored losslessly (RGB H.264, `-qp 0`); {kept} clips were face crops already
(`--face_crops {config.face_crops or "auto"}`) and are the collection's own files, as they are.""",
        splits=f"""\
{rule[:1].upper()}{rule[1:]}. Membership is in `splits.csv`.""",
        built_note="""\
Each whole-frame video's face tube was found by MTCNN (the main face, followed through the frames); one square 1.3x
the tube's extent, edge-padded where it leaves the frame, cut the clip (the box is in `splits.csv`; a clip kept as
it was has none). A clip is a face crop already when its frames are square and, in most of a few frames, its main
face is centred and fills the share of the frame this project's crop leaves it. The build writes into a temporary
folder and renames it at the end; finished crops are reused by reruns.""",
        licence=text.licence,
        citation=text.citation,
    )


def own_text(intro: str) -> CollectionText:
    """What the card of a collection of one's own says: ``intro``, and that its terms are the collection's own."""
    return CollectionText("A collection of real and fake videos (face clips)", ("own-collection",), intro, OWN_LICENCE,
                          OWN_CITATION)  # fmt: skip


OWN_LICENCE = """\
The collection's own terms apply; this build cannot know them, so it treats the collection as licensed to its user:
`python -m dataset_script.build --push_to_hub` makes the repository private unless you say otherwise."""
OWN_CITATION = f"""\
% cite the collection's own authors here; this repository was built with the tools of:
{CITATION}"""

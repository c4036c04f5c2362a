"""What every source layout hands the build: its settings, the clips it found, and the problems it found.

Each layout module (``layouts.dmplus``, ``layouts.faceforensics``, ...) turns a source folder into ``Clip`` records and
fills ``Problems``; everything after that (encoding or cropping, shards, card) is the same for all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .probe import VideoInfo
from .release import SourceVideo
from .schema import QUALITIES
from .source_folder import printable

DEFAULT_MAX_FRAMES = 128
"""Frames kept per face-cropped video (the first ones): room for the 32 evenly spaced test frames and K random
training frames, at about a quarter of an average FaceForensics++ video's ~500 frames (and of its cropping time).
``--max_frames all`` keeps every frame."""


@dataclass
class BuildConfig:
    source: Path
    output_dir: Path
    real_folder: str | None = None
    qualities: tuple[str, ...] = QUALITIES
    workers: int | None = None
    skip_bad_files: bool = False
    allow_missing_actions: bool = False
    push_to_hub: str | None = None
    progress: bool = True
    layout: str | None = None
    """A name of ``layouts.LAYOUTS`` (``dmplus``, ``faceforensics``, ``celeb_df``, ``dfdc``, ``folders``, ``csv``);
    None recognises it from the folders."""
    splits: Path | None = None
    """FaceForensics++'s split files (train.json, val.json, test.json); None reads ``SOURCE/splits/``."""
    max_frames: int | None = DEFAULT_MAX_FRAMES
    """Frames kept per face-cropped video; None keeps all."""
    device: str | None = None
    """Where MTCNN runs when faces are cropped; None takes the GPU when there is one."""
    validation_seed: int = 0
    """Celeb-DF-v2: which training identities are dealt to validation."""
    follow_links_outside_source: bool = False
    """Build from links that resolve outside ``source`` too (their files copied into the repo, never linked); by
    default each is a problem, named."""
    face_crops: str | None = None
    """Collections of one's own (folders, csv, DFDC): ``yes`` face-crops every clip, ``no`` keeps every clip as it is
    (face crops already), ``auto`` (None) decides per clip (``face_crops.recognise_crops``)."""
    identity_pattern: str | None = None
    """Folders and csv: a regex whose first group (else whole match) in a clip's path is its identity; the splits
    are then dealt by identity."""
    test_only: bool = False
    """Folders, csv and DFDC: every clip in ``test`` (a collection to score a trained detector on)."""
    list_file: Path | None = None
    """The csv layout's list of clips (``--list``)."""
    parts: str | None = None
    """DFDC: which ``dfdc_train_part_N`` folders to build, like ``0,3-5``; None takes every part present."""
    split_seed: int = 0
    """Folders, csv and DFDC: the seed of the splits the build deals (by identity or by file)."""
    keep_clips: bool = False
    """Also keep each clip as a file under ``<quality>/<folder>/``; by default the shards are its only copy."""


class BuildError(RuntimeError):
    """The source folder has problems; the message lists each one and how to proceed."""


FFMPEG_ADDRESS = re.compile(r"\[[^\[\]]* @ 0x[0-9a-fA-F]+\] ?")
"""The ``[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d9f4005980] `` before an FFmpeg complaint: the address of a component of a
process long gone. ``probe.ffmpeg_reason`` drops it at the start of FFmpeg's output; reasons quote that output
mid-sentence too (``not a readable video: [mov,... @ 0x...] moov atom not found``), so every reason loses it here."""


def as_reason(text: str) -> str:
    """A reason as a report shows it: FFmpeg's addresses dropped, control characters escaped."""
    return printable(FFMPEG_ADDRESS.sub("", text))


@dataclass
class Problems:
    missing_actions: list[str] = field(default_factory=list)
    empty_folders: list[str] = field(default_factory=list)
    unknown_folders: list[str] = field(default_factory=list)
    bad_files: dict[str, str] = field(default_factory=dict)
    links_outside: dict[str, str] = field(default_factory=dict)
    """Entries that resolve outside the source folder, and where each points (``SourceFolder``)."""
    refused_entries: dict[str, str] = field(default_factory=dict)
    """Entries that may not be opened for another reason (``SourceFolder``): a control character or a clash of
    case in the name, or neither a file nor a folder."""
    unknown_means: str = "not an action of the release, nor the real folder"
    """What an unknown folder is not, in the layout's words."""

    def report(self) -> str:
        """Every problem by name, each name and reason printable (``as_reason``), then a summary."""
        lines = []
        for title, items in (
            ("missing action folders", self.missing_actions),
            ("empty folders", self.empty_folders),
            (f"unknown folders ({self.unknown_means})", self.unknown_folders),
        ):
            lines += [f"{title}:"] + [f"  - {printable(item)}" for item in items] if items else []
        for title, items, separator in (
            ("links that resolve outside the source folder (never followed)", self.links_outside, " -> "),
            ("refused entries", self.refused_entries, ": "),
            ("bad files", self.bad_files, ": "),
        ):
            lines += [f"{title}:"] + [f"  - {printable(name)}{separator}{as_reason(reason)}"
                                      for name, reason in sorted(items.items())] if items else []  # fmt: skip
        summary = (
            f"{len(self.missing_actions)} missing action folders, {len(self.empty_folders)} empty folders, "
            f"{len(self.unknown_folders)} unknown folders, {len(self.links_outside)} links outside, "
            f"{len(self.refused_entries)} refused entries, {len(self.bad_files)} bad files"
        )
        return "\n".join(lines + [f"summary: {summary}"])

    def _skippable(self) -> bool:
        return bool(self.empty_folders or self.unknown_folders or self.bad_files or self.links_outside
                    or self.refused_entries)  # fmt: skip

    def blocking(self, config: BuildConfig) -> bool:
        return bool(
            (self.missing_actions and not config.allow_missing_actions)
            or (self._skippable() and not config.skip_bad_files)
        )

    def __bool__(self) -> bool:
        return bool(self.missing_actions or self._skippable())


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
    split_rule: str = ""
    """How ``split`` was made, in words for the card, where the layout's card cannot know (a collection's own
    split, or one the build dealt)."""
    identity_split: str | None = None
    method: str | None = None
    """The manipulation method of a fake (``schema.ROW_COLUMNS``); None for real clips."""
    qualities: dict[str, Path] | None = None
    """Layouts whose qualities come with the source (FaceForensics++, Celeb-DF): the source file of each quality
    present, best first, each face-cropped by the build. None where the build makes the qualities (DeepFake MNIST+)."""
    face_box: tuple[int, int, int, int] | None = None
    """The square (left, top, right, bottom, source pixels) every quality of a face-cropped clip was cut from."""
    is_face_crop: bool = False
    """A clip of a full-frame layout that is a face crop already (``face_crops.recognise_crops``): its one quality
    goes into the repo as it is, never cropped again."""

    def relative_path(self, quality: str) -> str:
        keeps_file = quality == "raw" and (self.qualities is None or self.is_face_crop)
        extension = self.source.path.suffix.lower() if keeps_file else ".mp4"
        return f"{self.source.folder}/{self.source.path.stem}{extension}"

    def has_quality(self, quality: str) -> bool:
        return self.qualities is None or quality in self.qualities

    def fingerprint(self) -> str:
        """The source files' sizes and times, and whether the clip is kept as a face crop: a rerun that decides
        otherwise must not reuse the other decision's file."""
        paths = [self.source.path] if self.qualities is None else list(self.qualities.values())
        kept = ";kept as a face crop" if self.is_face_crop else ""
        return ";".join(f"{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in paths) + kept

"""What every source layout hands the build: its settings, the clips it found, and the problems it found.

Each layout module (``dmplus``, ``faceforensics``, ``celeb_df``) turns a source folder into ``Clip`` records and
fills ``Problems``; everything after that (encoding or cropping, shards, card) is the same for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .probe import VideoInfo
from .release import SourceVideo
from .schema import QUALITIES

DEFAULT_MAX_FRAMES = 128
"""Frames kept per face-cropped video (the first ones): room for the 32 evenly spaced test frames and K random
training frames, at about a quarter of an average FaceForensics++ video's ~500 frames (and of its cropping time).
``--max_frames all`` keeps every frame."""


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
    layout: str | None = None
    """``dmplus``, ``faceforensics`` or ``celeb_df``; None recognises it from the folders."""
    splits: Path | None = None
    """FaceForensics++'s split files (train.json, val.json, test.json); None reads ``SOURCE/splits/``."""
    max_frames: int | None = DEFAULT_MAX_FRAMES
    """Frames kept per face-cropped video; None keeps all."""
    device: str | None = None
    """Where MTCNN runs when faces are cropped; None takes the GPU when there is one."""
    validation_seed: int = 0
    """Celeb-DF-v2: which training identities are dealt to validation."""


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
    method: str | None = None
    """The manipulation method of a fake (``schema.ROW_COLUMNS``); None for real clips."""
    qualities: dict[str, Path] | None = None
    """Layouts whose qualities come with the source (FaceForensics++, Celeb-DF): the source file of each quality
    present, best first, each face-cropped by the build. None where the build makes the qualities (DeepFake MNIST+)."""
    face_box: tuple[int, int, int, int] | None = None
    """The square (left, top, right, bottom, source pixels) every quality of a face-cropped clip was cut from."""

    def relative_path(self, quality: str) -> str:
        keeps_file = quality == "raw" and self.qualities is None
        extension = self.source.path.suffix.lower() if keeps_file else ".mp4"
        return f"{self.source.folder}/{self.source.path.stem}{extension}"

    def has_quality(self, quality: str) -> bool:
        return self.qualities is None or quality in self.qualities

    def fingerprint(self) -> str:
        paths = [self.source.path] if self.qualities is None else list(self.qualities.values())
        return ";".join(f"{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in paths)

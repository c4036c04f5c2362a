"""The official release layout: reading a source folder, and writing one (for this project's generators).

A release folder holds one sub-folder per action (the release's own names, ``mouth``, ``up``, ``surpise``...)
and one of real clips (``original`` or ``real``). Folders written by our generators also carry a
``manifest.csv`` with the source identity, driving identity and action of each video.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .files import write_text_atomically
from .schema import (
    ACTION_TO_RELEASE_FOLDER,
    ACTIONS,
    LABEL_NAMES,
    REAL_FOLDER_CANDIDATES,
    VIDEO_EXTENSIONS,
    canonical_action,
)

MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
REAL_RELEASE_FOLDER = REAL_FOLDER_CANDIDATES[0]


@dataclass
class ManifestRow:
    """One generated video. ``file`` is relative to the release folder, for example ``yaw/000012.mp4``."""

    file: str
    label: str
    action: str
    source_id: str
    driving_id: str
    seed: int
    method: str = ""
    """The generator of a fake (``FOMM``, ``TPSMM``, ``keypoint_warp``); empty for real clips and old manifests."""


def release_folder(action: str | None) -> str:
    """Folder a video goes to in the release layout: its action's release name, or the real folder."""
    return REAL_RELEASE_FOLDER if action is None else ACTION_TO_RELEASE_FOLDER[action]


def write_manifest(folder: Path, rows: Iterable[ManifestRow]) -> Path:
    """Write ``manifest.csv`` atomically; rows are sorted by file so the bytes depend on content alone."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=[field.name for field in fields(ManifestRow)], lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(row) for row in sorted(rows, key=lambda row: row.file))
    return write_text_atomically(folder / MANIFEST_NAMES[0], text.getvalue())


def read_manifest(folder: Path) -> dict[str, ManifestRow] | None:
    """The manifest beside a release folder, keyed by relative file path; None when there is none."""
    for name in MANIFEST_NAMES:
        path = folder / name
        if not path.exists():
            continue
        if path.suffix == ".csv":
            with path.open(newline="") as handle:
                records = list(csv.DictReader(handle))
        else:
            records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        rows = {}
        for record in records:
            missing = {"file", "label", "source_id"} - set(record)
            if missing:
                raise ValueError(f"{path}: a row lacks {sorted(missing)}; each needs file, label, action, source_id")
            rows[record["file"]] = ManifestRow(
                file=record["file"],
                label=record["label"],
                action=record.get("action") or "",
                source_id=str(record["source_id"]),
                driving_id=str(record.get("driving_id") or ""),
                seed=int(record.get("seed") or 0),
                method=str(record.get("method") or ""),
            )
        return rows
    return None


@dataclass
class SourceVideo:
    path: Path
    relative: str  # as in the manifest: "<release folder>/<file name>"
    folder: str  # canonical: "real" or an action
    action: str | None


@dataclass
class ScanReport:
    videos: list[SourceVideo]
    missing_actions: list[str]
    empty_folders: list[str]
    unknown_folders: list[str]
    non_video_files: list[str]
    real_folder: str | None


def scan_release(source: Path, real_folder: str | None = None) -> ScanReport:
    """List the videos of a release folder and everything in it that does not fit the layout."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder; pass the unpacked release (or generated) folder")
    subfolders = sorted(entry for entry in source.iterdir() if entry.is_dir() and not entry.name.startswith("."))
    if real_folder is None:
        real_folder = next((c for c in REAL_FOLDER_CANDIDATES if (source / c).is_dir()), None)
    videos, empty, unknown, non_video = [], [], [], []
    seen_actions = set()
    for folder in subfolders:
        is_real = folder.name == real_folder
        action = None if is_real else canonical_action(folder.name)
        if not is_real and action is None:
            unknown.append(folder.name)
            continue
        files = sorted(entry for entry in folder.iterdir() if entry.is_file() and not entry.name.startswith("."))
        if not files:
            empty.append(folder.name)
        for path in files:
            if path.suffix.lower() not in VIDEO_EXTENSIONS:
                non_video.append(f"{folder.name}/{path.name}")
                continue
            canonical = LABEL_NAMES[0] if is_real else action
            videos.append(SourceVideo(path, f"{folder.name}/{path.name}", canonical, action))
        if action is not None:
            seen_actions.add(action)
    missing = [action for action in ACTIONS if action not in seen_actions]
    if real_folder is None or not (source / real_folder).is_dir():
        missing.insert(
            0,
            f"real clips (looked for {real_folder or ' or '.join(REAL_FOLDER_CANDIDATES)})",
        )
    return ScanReport(videos, missing, empty, unknown, non_video, real_folder)

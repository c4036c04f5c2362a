"""The official release layout: reading a source folder, and writing one (for this project's generators).

A release folder holds one sub-folder per action (the release's own names, ``mouth``, ``up``, ``surpise``...)
and one of real clips (``original`` or ``real``). Folders written by our generators also carry a
``manifest.csv`` with the source identity, driving identity and action of each video.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
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
from .source_folder import SourceError, SourceFolder, printable, read_utf8

MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
FULL_FRAMES_FOLDER = "full_frames"
"""Where a generator that cuts its real clips from whole frames (the mini) keeps those originals, in the release's
own relative paths (``full_frames/original/00003.mp4`` is the original of ``original/00003.mp4``)."""
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
    path = next((folder / name for name in MANIFEST_NAMES if (folder / name).exists()), None)
    return None if path is None else read_manifest_file(path)


MANIFEST_FIX = ("each row needs file, label (real or fake) and source_id, and one row a file at most; action, "
                "driving_id, seed (a whole number) and method may be empty")  # fmt: skip
MOST_ERRORS_SHOWN = 20


def read_manifest_file(path: Path) -> dict[str, ManifestRow]:
    """The rows of ``manifest.csv`` or ``manifest.jsonl``, keyed by file; SourceError naming every malformed row
    by its line (a missing column, a label neither real nor fake, a seed that is no number, a file listed twice,
    text that is not UTF-8 or JSON) and what to do."""
    text = read_utf8(path)
    rows, first_seen, errors = {}, {}, []
    for line, record in csv_records(path, text) if path.suffix == ".csv" else _json_records(text, errors):
        try:
            row = _manifest_row(record)
        except ValueError as error:
            errors.append(f"line {line}: {error}")
            continue
        if row.file in first_seen:
            errors.append(f"line {line}: {row.file} again (first at line {first_seen[row.file]})")
            continue
        rows[row.file], first_seen[row.file] = row, line
    if errors:
        raise malformed_rows(path, errors, f"Fix them ({MANIFEST_FIX}), or remove {path.name} to build without "
                             "identities.")  # fmt: skip
    return rows


def malformed_rows(path: Path, errors: list[str], fix: str) -> SourceError:
    """One error naming ``path`` and each of its malformed rows (``line N: what``), the first few of many, then
    ``fix``: what to do about them."""
    more = f"\n  ... and {len(errors) - MOST_ERRORS_SHOWN} more" if len(errors) > MOST_ERRORS_SHOWN else ""
    listed = "\n  - ".join(printable(error) for error in errors[:MOST_ERRORS_SHOWN])
    count = f"{len(errors)} malformed {'row' if len(errors) == 1 else 'rows'}"
    return SourceError(f"{path}: {count}:\n  - {listed}{more}\n{fix}")


def csv_records(path: Path, text: str, required: tuple[str, ...] | None = None,
                optional: tuple[str, ...] | None = None) -> Iterator[tuple[int, dict]]:  # fmt: skip
    """(line, record) of each row of the CSV ``text`` of ``path``; a header without the ``required`` columns (by
    default a manifest's) is a SourceError naming them and the ``optional`` ones."""
    required = REQUIRED_COLUMNS if required is None else required
    optional = OPTIONAL_COLUMNS if optional is None else optional
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [name for name in required if name not in (reader.fieldnames or [])]
        if missing:
            columns = f"{', '.join(required)} (and may name {', '.join(optional)})"
            raise SourceError(f"{path}, line 1: the header has no column {', '.join(missing)}; it must name {columns}")
        for record in reader:
            yield reader.line_num, record
    except csv.Error as error:
        raise SourceError(f"{path}, line {reader.line_num}: {error}; save it as plain CSV text") from None


def _json_records(text: str, errors: list[str]) -> Iterator[tuple[int, dict]]:
    """(line, record) of each line that is a JSON object; any other non-empty line is an error in ``errors``."""
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            record = json.loads(content)
        except json.JSONDecodeError as error:
            errors.append(f"line {line}: not JSON ({error.msg} at column {error.colno})")
            continue
        if not isinstance(record, dict):
            errors.append(f'line {line}: a JSON {type(record).__name__}, not an object like {{"file": ...}}')
            continue
        yield line, record


REQUIRED_COLUMNS = ("file", "label", "source_id")
OPTIONAL_COLUMNS = tuple(field.name for field in fields(ManifestRow) if field.name not in REQUIRED_COLUMNS)


def _manifest_row(record: dict) -> ManifestRow:
    """One record as a row; ValueError saying what is wrong with it."""
    if None in record:  # csv.DictReader's key for fields beyond the header's
        raise ValueError(f"{len(record[None])} more fields than the header names")
    missing = [name for name in REQUIRED_COLUMNS if record.get(name) is None]  # a short CSV row, or a JSON key absent
    if missing:
        raise ValueError(f"no {' or '.join(missing)}")
    if not isinstance(record["file"], str) or not record["file"]:
        raise ValueError(f"file {record['file']!r} is not a path like blink/0001.mp4")
    if record["label"] not in LABEL_NAMES:
        raise ValueError(f"label {record['label']!r} is neither {' nor '.join(LABEL_NAMES)}")
    seed = record.get("seed")
    try:
        seed = int(seed or 0)
    except (TypeError, ValueError):
        raise ValueError(f"seed {seed!r} is not a whole number") from None
    return ManifestRow(
        file=record["file"],
        label=record["label"],
        action=str(record.get("action") or ""),
        source_id=str(record["source_id"]),
        driving_id=str(record.get("driving_id") or ""),
        seed=seed,
        method=str(record.get("method") or ""),
    )


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
    refused_entries: dict[str, str]
    """Entries the listing would not hand on (``SourceFolder``), each with the reason."""


def scan_release(source: Path, real_folder: str | None = None, listing: SourceFolder | None = None) -> ScanReport:
    """List the videos of a release folder and everything in it that does not fit the layout. Entries are listed
    through ``listing``, which leaves out, and records, those that may not be opened; by default one that follows
    links out of ``source`` (a folder of the user's own, as a generator's ``--driving``, may gather files so)."""
    if not source.is_dir():
        raise FileNotFoundError(f"{source} is not a folder; pass the unpacked release (or generated) folder")
    listing = listing or SourceFolder(source, follow_links_outside=True)
    subfolders = listing.folders(source)
    if real_folder is None:
        present = {folder.name for folder in subfolders}
        real_folder = next((c for c in REAL_FOLDER_CANDIDATES if c in present), None)
    videos, empty, unknown, non_video = [], [], [], []
    seen_actions, real_seen = set(), False
    for folder in subfolders:
        if folder.name == FULL_FRAMES_FOLDER:
            continue  # the whole-frame videos the real clips were cut from: kept beside the release, not in it
        is_real = folder.name == real_folder
        real_seen |= is_real
        action = None if is_real else canonical_action(folder.name)
        if not is_real and action is None:
            unknown.append(folder.name)
            continue
        files = listing.files(folder)
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
    if not real_seen:
        missing.insert(
            0,
            f"real clips (looked for {real_folder or ' or '.join(REAL_FOLDER_CANDIDATES)})",
        )
    return ScanReport(videos, missing, empty, unknown, non_video, real_folder, listing.refused)

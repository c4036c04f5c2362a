"""A collection of one's own listed in a CSV file (``--layout csv --list FILE``).

    path,label,split,identity,method,action
    clips/a.mp4,real,train,id07,,
    clips/b.mp4,1,train,id07,LivePortrait,

``path`` and ``label`` are needed; the other columns may be left out, or left empty. A path is relative to SOURCE,
``/`` between folders, and must resolve inside it: each folder on its way is listed through the ``SourceFolder``,
as every layout lists its folders. A label is ``real`` or ``fake`` (any case), or ``0`` (real) or ``1`` (fake):
this project's numbers, FaceForensics++'s and DeepfakeBench's (Celeb-DF's lists say the opposite: convert those).
``split`` is train, validation (or val) or test, on every row or on none (the build then deals them);
``identity`` says whose video it is (on every row, where the column is), else ``--identity_pattern`` finds it in the
path; ``method`` names a fake's maker and ``action`` a fake's DeepFake MNIST+ action.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..clips import BuildConfig, BuildError, Clip, Problems
from ..release import csv_records, malformed_rows
from ..schema import ACTIONS, FAKE, REAL, VIDEO_EXTENSIONS, canonical_action
from ..source_folder import SourceFolder, read_utf8
from .collection import (
    SPLIT_NAMES,
    Listed,
    clips_of,
    identity_in,
    identity_pattern,
    method_problem,
    missing_identity,
    own_text,
)

logger = logging.getLogger(__name__)

REQUIRED, OPTIONAL = ("path", "label"), ("split", "identity", "method", "action")
LABELS: dict[str, int] = {"real": REAL, "fake": FAKE, "0": REAL, "1": FAKE}
"""0 is real and 1 fake, as in this project's rows; Celeb-DF's test list has them the other way round."""
FIX = ("Each row needs a path relative to SOURCE ('/' between folders, no '..'), listed once, and a label real/fake "
       "or 0/1 (0 = real); a split (train, validation, test) on every row or on none; an identity on every row where "
       "the column is; a method and an action for fakes only")  # fmt: skip
TEXT = own_text("A collection of real and fake videos built from a list of its clips (`--layout csv --list FILE`).")


@dataclass
class Row:
    line: int
    relative: str
    label: int
    split: str | None
    identity: str | None
    method: str | None
    action: str | None


def relative_path(text: str) -> str:
    """A list's path as the build names it; ValueError where it is not one inside SOURCE."""
    if "\\" in text:
        raise ValueError(f"path {text!r} has a backslash: use / between folders")
    pure = PurePosixPath(text)
    if pure.is_absolute():
        raise ValueError(f"path {text!r} is absolute: give it relative to SOURCE")
    if ".." in pure.parts:
        raise ValueError(f"path {text!r} climbs out of its folder ('..'): give it relative to SOURCE, inside it")
    if not pure.parts:
        raise ValueError("no path")
    return pure.as_posix()


def _row(line: int, record: dict) -> Row:
    """One record as a row; ValueError saying what is wrong with it."""
    if None in record:  # csv.DictReader's key for fields beyond the header's
        raise ValueError(f"{len(record[None])} more fields than the header names")
    values = {name: (record.get(name) or "").strip() for name in REQUIRED + OPTIONAL}
    relative = relative_path(values["path"])
    label = LABELS.get(values["label"].lower())
    if label is None:
        raise ValueError(f"label {values['label']!r} is none of real, fake, 0 (real), 1 (fake)")
    split = values["split"].lower()
    if split and split not in SPLIT_NAMES:
        raise ValueError(f"split {values['split']!r} is none of train, validation (or val), test")
    method, action = values["method"] or None, values["action"] or None
    if label == REAL and (method or action):
        raise ValueError("a real clip has no method and no action; leave them empty")
    if method and (reason := method_problem(method)):
        raise ValueError(reason)
    if action and canonical_action(action) is None:
        raise ValueError(f"action {action!r} is none of DeepFake MNIST+'s ({', '.join(ACTIONS)})")
    return Row(line, relative, label, SPLIT_NAMES.get(split), values["identity"] or None, method,
               canonical_action(action) if action else None)  # fmt: skip


def read_list(path: Path) -> list[Row]:
    """The rows of the list at ``path``; SourceError naming each malformed row by its line, and the fix."""
    rows, first_seen, errors, without_identity = [], {}, [], []
    for line, record in csv_records(path, read_utf8(path), REQUIRED, OPTIONAL):
        try:
            row = _row(line, record)
        except ValueError as error:
            errors.append((line, str(error)))
            continue
        if row.relative in first_seen:
            errors.append((line, f"{row.relative} again (first at line {first_seen[row.relative]})"))
            continue
        first_seen[row.relative] = line
        rows.append(row)
        if "identity" in record and row.identity is None:
            without_identity.append(line)
    errors += [(line, "no identity, while the list has the column") for line in without_identity]
    given = sum(row.split is not None for row in rows)
    if 0 < given < len(rows):
        errors += [(row.line, f"no split, while {given} rows give one (give every row its split, or none)")
                   for row in rows if row.split is None]  # fmt: skip
    if errors:
        raise malformed_rows(path, [f"line {line}: {error}" for line, error in sorted(errors)], f"{FIX}.")
    if not rows:
        raise BuildError(f"{path}: no rows; list one clip a line as path,label")
    return rows


class _Lookup:
    """Finds a list's paths in SOURCE through its ``SourceFolder``, each folder listed once."""

    def __init__(self, listing: SourceFolder):
        self.listing = listing
        self.listed: dict[Path, tuple[dict[str, Path], dict[str, Path]]] = {}

    def _entries(self, folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
        if folder not in self.listed:
            self.listed[folder] = ({path.name: path for path in self.listing.folders(folder)},
                                   {path.name: path for path in self.listing.files(folder)})  # fmt: skip
        return self.listed[folder]

    def find(self, relative: str) -> Path | str:
        """The file at ``relative``, or why there is none the build may open."""
        place, parts = self.listing.root, relative.split("/")
        for index, name in enumerate(parts):
            so_far, is_file = "/".join(parts[: index + 1]), index == len(parts) - 1
            if name.startswith("."):
                return f"{so_far} is hidden (its name starts with '.'); the build opens no hidden file or folder"
            folders, files = self._entries(place)
            found = (files if is_file else folders).get(name)
            if found is None:
                if so_far in self.listing.links_outside:
                    return f"{so_far} links to {self.listing.links_outside[so_far]}, outside SOURCE (never followed)"
                if so_far in self.listing.refused:
                    return f"{so_far} may not be opened: {self.listing.refused[so_far]}"
                if name in (folders if is_file else files):
                    return f"{so_far} is a {'folder' if is_file else 'file'}, not a {'file' if is_file else 'folder'}"
                return "listed but not found"
            place = found
        return place


def scan(listing: SourceFolder, config: BuildConfig, problems: Problems, workers: int) -> list[Clip]:
    if config.list_file is None:
        raise BuildError("--layout csv needs --list FILE: a CSV of path,label (and split, identity, method, action)")
    list_path = listing.file(config.list_file)
    if list_path is None:
        raise BuildError(f"{config.list_file} not found: pass --list the CSV that lists the clips")
    rows = read_list(list_path)
    fakes = sum(row.label for row in rows)
    logger.info("%s: %d real and %d fake clips, labels read as 0 = real and 1 = fake (this project's numbers, as "
                "FaceForensics++'s; Celeb-DF's lists are the other way round) and real/fake as written", list_path,
                len(rows) - fakes, fakes)  # fmt: skip
    pattern = identity_pattern(config)
    lookup, listed = _Lookup(listing), []
    for row in rows:
        where = f"{list_path.name}, line {row.line}"
        found = lookup.find(row.relative)
        if isinstance(found, str):
            problems.bad_files[row.relative] = f"{where}: {found}"
            continue
        if found.suffix.lower() not in VIDEO_EXTENSIONS:
            problems.bad_files[row.relative] = f"{where}: not a video file (by extension)"
            continue
        identity = row.identity or (identity_in(pattern, row.relative) if pattern else None)
        if pattern and identity is None:
            problems.bad_files[row.relative] = f"{where}: {missing_identity(pattern, 'give an identity column')}"
            continue
        listed.append(Listed(row.relative, found, row.label, row.method, row.split, source_id=identity,
                             action=row.action))  # fmt: skip
    return clips_of(listed, config, problems, workers)

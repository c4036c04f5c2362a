"""The DeepFake Detection Challenge's training set (DFDC; Dolhansky et al. 2020) in the build.

    dfdc_train_part_N/<name>.mp4       N from 0 to 49: ten-second videos, whole frames (1920x1080 or 1080x1920)
    dfdc_train_part_N/metadata.json    {"<name>.mp4": {"label": "REAL" | "FAKE", "split": "train",
                                                       "original": "<the real video it was made from>.mp4" | null}}

A fake names the real video it was made from (``original``): the two are one identity group, so the split never
puts a fake on the other side of its original (a face swapped into a training video's frames would be tested on).
Every video of these parts says ``"split": "train"``; the build deals its own splits, seeded. ``--parts 0,3-5``
builds some parts only (the whole set is 470 GB). The videos are whole frames, face-cropped by the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..clips import BuildConfig, BuildError, Clip, Problems
from ..release import malformed_rows
from ..schema import FAKE, REAL, VIDEO_EXTENSIONS
from ..source_folder import SourceError, SourceFolder, read_utf8
from .collection import CollectionText, Listed, clips_of

PART = re.compile(r"dfdc_train_part_(\d+)")
METADATA = "metadata.json"
LABELS: dict[str, int] = {"REAL": REAL, "FAKE": FAKE}
METHOD = "DFDC"
"""DFDC names no method per fake (its fakes come from several face-swap models, unnamed): the rows say DFDC."""
METADATA_FIX = ("Fix them: each video's entry needs a label, REAL or FAKE, and a FAKE's an original, the file name "
                "of the real video it was made from; or unpack the part again")  # fmt: skip
TEXT = CollectionText(
    pretty_name="DFDC (face crops)",
    tags=("face-swap", "dfdc"),
    intro="""\
The DeepFake Detection Challenge's training set (DFDC; Dolhansky et al. 2020): paid actors' videos and face swaps
among them, whole frames face-cropped by the build. Each fake names the real video it was made from (its
`driving_id`).""",
    licence="""\
DFDC is licensed to each user who accepts its terms (research use, no redistribution): this repository is yours
alone. Never push it to a public repository; `python -m dataset_script.build --push_to_hub` makes it private unless
you say otherwise.""",
    citation="""\
@article{dolhansky2020dfdc,
  title   = {The DeepFake Detection Challenge (DFDC) Dataset},
  author  = {Dolhansky, Brian and Bitton, Joanna and Pflaum, Ben and Lu, Jikuo and Howes, Russ and Wang, Menglin
             and Canton Ferrer, Cristian},
  journal = {arXiv preprint arXiv:2006.07397},
  year    = {2020}
}""",
)


def recognise(source: Path) -> bool:
    return any(PART.fullmatch(path.name) and path.is_dir() for path in source.iterdir())


def parse_parts(text: str) -> set[int]:
    """The part numbers ``--parts`` names: numbers and ranges, like ``0,3-5``."""
    chosen: set[int] = set()
    for piece in text.split(","):
        first, dash, last = piece.strip().partition("-")
        try:
            start = int(first)
            end = int(last) if dash else start
        except ValueError:
            start, end = -1, -1
        if not 0 <= start <= end:
            raise BuildError(f"--parts {text!r}: {piece!r} is not a part number or a range like 3-5; give them like "
                             "0,3-5")  # fmt: skip
        chosen |= set(range(start, end + 1))
    return chosen


def _line_of(text: str, name: str) -> str:
    """Where a name is a key of the metadata's text, as ``line N``."""
    found = re.search(re.escape(json.dumps(name, ensure_ascii=False)) + r"\s*:", text)
    return f"line {text.count(chr(10), 0, found.start()) + 1}" if found else "entry"


def _is_file_name(name) -> bool:
    return isinstance(name, str) and bool(name) and not name.startswith(".") and not {"/", "\\"} & set(name)


def _entry_problem(name: str, entry) -> str | None:
    """What is wrong with one video's entry, if anything."""
    if not _is_file_name(name):
        return "not the name of a file in this part"
    label = entry.get("label") if isinstance(entry, dict) else entry
    if str(label).upper() not in LABELS:
        return f"label {label!r} is neither REAL nor FAKE"
    if LABELS[str(label).upper()] == FAKE and not _is_file_name(entry.get("original")):
        return f"a FAKE whose original {entry.get('original')!r} is not the file name of a real video"
    return None


def read_metadata(path: Path) -> dict[str, tuple[int, str | None]]:
    """(label, original) of each video of a part's ``metadata.json``; SourceError naming each bad entry."""
    text = read_utf8(path)
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as error:
        raise SourceError(f"{path}, line {error.lineno}: not JSON ({error.msg} at column {error.colno}); unpack the "
                          "part again") from None  # fmt: skip
    if not isinstance(entries, dict):
        raise SourceError(f"{path}: a JSON {type(entries).__name__}, not an object of each video's label and original")
    found, errors = {}, []
    for name, entry in entries.items():
        if problem := _entry_problem(name, entry):
            errors.append(f"{_line_of(text, name)}: {name}: {problem}")
        else:
            label = LABELS[str(entry["label"]).upper()]
            found[name] = (label, entry["original"] if label == FAKE else None)
    errors += [f"{_line_of(text, name)}: {name}: its original {original} is a FAKE itself"
               for name, (_, original) in found.items() if found.get(original, (REAL,))[0] == FAKE]  # fmt: skip
    if errors:
        raise malformed_rows(path, errors, METADATA_FIX)
    return found


def _part(listing: SourceFolder, folder: Path, problems: Problems) -> list[Listed]:
    metadata = listing.file(folder / METADATA)
    if metadata is None:
        raise BuildError(f"{folder}: no {METADATA}; each DFDC part comes with one: unpack the part again")
    entries = read_metadata(metadata)
    files = {path.name: path for path in listing.files(folder) if path.name != METADATA}
    for name in sorted(set(entries) - set(files)):
        problems.bad_files[f"{folder.name}/{name}"] = f"listed in {METADATA} but not found"
    listed = []
    for name, path in files.items():
        relative = f"{folder.name}/{name}"
        if path.suffix.lower() not in VIDEO_EXTENSIONS:
            problems.bad_files[relative] = "not a video file (by extension)"
        elif name not in entries:
            problems.bad_files[relative] = f"not in {METADATA}, so neither real nor fake"
        else:
            label, original = entries[name]
            # a real video is its own group; a fake joins its original's (Listed.driving_id, collection._group)
            listed.append(Listed(relative, path, label, METHOD if label == FAKE else None,
                                 source_id=path.stem if label == REAL else None,
                                 driving_id=Path(original).stem if original else None))  # fmt: skip
    return listed


def scan(listing: SourceFolder, config: BuildConfig, problems: Problems, workers: int) -> list[Clip]:
    root = listing.root
    problems.unknown_means = "not a dfdc_train_part_N folder"
    present = {}
    for folder in listing.folders(root):
        if match := PART.fullmatch(folder.name):
            present[int(match.group(1))] = folder
        else:
            problems.unknown_folders.append(folder.name)
    wanted = parse_parts(config.parts) if config.parts else set(present)
    absent = sorted(wanted - set(present))
    if absent or not wanted:
        raise BuildError(f"{root}: no dfdc_train_part_N folder for parts {absent or 'any'} (present: "
                         f"{sorted(present) or 'none'}); pass --parts with those present")  # fmt: skip
    listed = [entry for number in sorted(wanted) for entry in _part(listing, present[number], problems)]
    return clips_of(listed, config, problems, workers)

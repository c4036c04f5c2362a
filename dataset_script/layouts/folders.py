"""A collection of one's own as folders (``--layout folders``): real and fake videos, each fake's method in the
name of its folder.

    real/**/<video>                              real videos, in sub-folders or not
    fake/<Method>/**/<video>                     fakes made by <Method>: the rows' ``method`` says it
    fake/<video>                                 fakes of no named method
    {train,validation,test}/{real,fake}/...      optional: the splits, as the collection gives them

Without split folders the build deals the splits (``collection.deal_splits``): by identity with
``--collection.identity_pattern`` (its first group, else its whole match, in a video's path), else by file.
"""

from __future__ import annotations

from pathlib import Path

from ..clips import BuildConfig, Clip, Problems
from ..schema import FAKE, REAL, VIDEO_EXTENSIONS
from ..source_folder import SourceFolder
from . import collection
from .collection import SPLIT_NAMES, Listed

CLASS_FOLDERS: dict[str, int] = {"real": REAL, "fake": FAKE}
TEXT = collection.own_text("""\
A collection of real and fake videos built from folders: `real/`, and `fake/<method>/`, whose name is the
method of the fakes in it.""")


def recognise(source: Path) -> bool:
    """``fake/`` at the top (no DeepFake MNIST+ release has one), or a split folder holding ``real/`` or ``fake/``."""
    return (source / "fake").is_dir() or any((source / split / name).is_dir()
                                             for split in SPLIT_NAMES for name in CLASS_FOLDERS)  # fmt: skip


def videos_under(listing: SourceFolder, folder: Path, problems: Problems) -> list[Path]:
    """Every video in ``folder`` and its sub-folders, as ``listing`` hands them on; other files are bad files."""
    videos = []
    for path in listing.files(folder):
        if path.suffix.lower() in VIDEO_EXTENSIONS:
            videos.append(path)
        else:
            problems.bad_files[path.relative_to(listing.root).as_posix()] = "not a video file (by extension)"
    for sub_folder in listing.folders(folder):
        videos += videos_under(listing, sub_folder, problems)
    return videos


def _class_folders(listing: SourceFolder, problems: Problems) -> list[tuple[str | None, str, Path]]:
    """(split or None, class, folder) of each class folder; any other folder where they belong is unknown."""
    root = listing.root
    top = {folder.name: folder for folder in listing.folders(root)}
    given = {name: folder for name, folder in top.items() if name in SPLIT_NAMES}
    places = [(SPLIT_NAMES[name], f"{name}/", folder) for name, folder in given.items()] or [(None, "", root)]
    problems.unknown_folders += [name for name in top if name not in (SPLIT_NAMES if given else CLASS_FOLDERS)]
    found = []
    for split, prefix, place in places:
        inside = {folder.name: folder for folder in (listing.folders(place) if split else top.values())}
        if split:
            problems.unknown_folders += [f"{prefix}{name}" for name in inside if name not in CLASS_FOLDERS]
        found += [(split, name, inside[name]) for name in CLASS_FOLDERS if name in inside]
    return found


def scan(listing: SourceFolder, config: BuildConfig, problems: Problems, workers: int) -> list[Clip]:
    pattern = collection.identity_pattern(config)
    problems.unknown_means = "neither real/ nor fake/, nor a split folder (train, validation, test) holding them"
    listed = []
    for split, class_name, folder in _class_folders(listing, problems):
        videos = videos_under(listing, folder, problems)
        if not videos:
            problems.empty_folders.append(folder.relative_to(listing.root).as_posix())
        for path in videos:
            relative = path.relative_to(listing.root).as_posix()
            # the first folder inside fake/ names the method; a video right in fake/ has none
            inside = path.relative_to(folder).parts
            method = inside[0] if class_name == "fake" and len(inside) > 1 else None
            if method is not None and (reason := collection.method_problem(method)):
                problems.refused_entries[folder.relative_to(listing.root).joinpath(method).as_posix()] = reason
                continue
            identity = collection.identity_in(pattern, relative) if pattern else None
            if pattern and identity is None:
                problems.bad_files[relative] = collection.missing_identity(pattern, "the name")
                continue
            listed.append(Listed(relative, path, CLASS_FOLDERS[class_name], method, split, source_id=identity))
    return collection.clips_of(listed, config, problems, workers)

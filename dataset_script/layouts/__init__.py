"""The source layouts the build reads, in a registry: each a module of its own, all giving the same clips.

A new layout is a module with ``recognise``, ``scan``, ``assign``, ``configs`` and ``card_text`` (see ``dmplus``,
``faceforensics``, ``celeb_df``; a collection of one's own, ``folders``, ``csv_list`` and ``dfdc``, shares those of
``collection``) and an entry here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

from ..card import CardText
from ..clips import BuildConfig, BuildError, Clip, Problems
from ..configs import ConfigSpec, action_configs
from ..source_folder import SourceFolder
from . import celeb_df, collection, csv_list, dfdc, dmplus, faceforensics, folders


@dataclass(frozen=True)
class Layout:
    name: str
    scan: Callable[[SourceFolder, BuildConfig, Problems, int], list[Clip]]
    """The source's clips, listed through the ``SourceFolder`` (never around it), each problem of the folder
    recorded."""
    assign: Callable[[list[Clip], BuildConfig], bool]
    """Fill in splits not set by ``scan``; True when an identity-disjoint split was made too."""
    configs: Callable[[list[Clip], tuple[str, ...]], list[ConfigSpec]]
    card_text: Callable[[list[Clip], tuple[str, ...], BuildConfig], CardText]
    crops_faces: bool
    """Full-frame videos, face-cropped by the build at the qualities they come in (else the build compresses); a
    clip found to be a face crop already (``Clip.is_face_crop``) is kept as it is."""
    licensed_per_user: bool
    """Never pushed to a public Hub repo by default."""
    options: tuple[str, ...] = ()
    """The ``COLLECTION_OPTIONS`` it reads; any other given is an error (the build would ignore it)."""


COLLECTION_OPTIONS: dict[str, str] = {"face_crops": "--face_crops", "identity_pattern": "--identity_pattern",
                                      "test_only": "--test_only", "list_file": "--list", "parts": "--parts",
                                      "split_seed": "--split_seed"}  # fmt: skip
"""BuildConfig fields of a collection's layouts, and their flags."""
DEALT = ("face_crops", "test_only", "split_seed")


def _collection(name: str, scan, text: collection.CollectionText, options: tuple[str, ...]) -> Layout:
    return Layout(name, scan, collection.deal_splits, collection.configs, partial(collection.card_text, text),
                  crops_faces=True, licensed_per_user=True, options=options)  # fmt: skip


LAYOUTS: dict[str, Layout] = {
    "dmplus": Layout("dmplus", dmplus.scan, lambda clips, config: dmplus.assign_splits(clips), action_configs,
                     lambda clips, qualities, config: dmplus.card_text(any(c.identity_split for c in clips)),
                     crops_faces=False, licensed_per_user=False),
    "faceforensics": Layout("faceforensics", faceforensics.scan, lambda clips, config: faceforensics.assign(clips),
                            faceforensics.configs, faceforensics.card_text, crops_faces=True, licensed_per_user=True),
    "celeb_df": Layout("celeb_df", celeb_df.scan, lambda clips, config: celeb_df.assign(clips, config.validation_seed),
                       celeb_df.configs, celeb_df.card_text, crops_faces=True, licensed_per_user=True),
    "dfdc": _collection("dfdc", dfdc.scan, dfdc.TEXT, (*DEALT, "parts")),
    "folders": _collection("folders", folders.scan, folders.TEXT, (*DEALT, "identity_pattern")),
    "csv": _collection("csv", csv_list.scan, csv_list.TEXT, (*DEALT, "identity_pattern", "list_file")),
}  # fmt: skip


def recognise_layout(source: Path, name: str | None = None) -> Layout:
    """The layout ``name``, or the one the folders of ``source`` show (DeepFake MNIST+ when no other's); a list of
    clips (``csv``) is never guessed."""
    if name is not None:
        if name not in LAYOUTS:
            raise BuildError(f"unknown layout {name!r}; choose from {', '.join(LAYOUTS)}")
        return LAYOUTS[name]
    for module, layout in ((faceforensics, "faceforensics"), (celeb_df, "celeb_df"), (dfdc, "dfdc"),
                           (folders, "folders")):  # fmt: skip
        if module.recognise(source):
            return LAYOUTS[layout]
    return LAYOUTS["dmplus"]


DEFAULTS = {field.name: field.default for field in fields(BuildConfig)}


def _given(config: BuildConfig, option: str) -> bool:
    return getattr(config, option) != DEFAULTS[option]


def check_options(layout: Layout, config: BuildConfig) -> None:
    """BuildError naming each collection option given that ``layout`` does not read, and the layouts that do."""
    for option, flag in COLLECTION_OPTIONS.items():
        if option not in layout.options and _given(config, option):
            takers = [name for name, other in LAYOUTS.items() if option in other.options]
            raise BuildError(f"{flag} is for the {' and '.join(takers)} layout{'s' if len(takers) > 1 else ''}, and "
                             f"{config.source} is built as {layout.name}: leave {flag} out, or pass --layout "
                             f"{takers[0]}")  # fmt: skip


def command_flags(layout: Layout, config: BuildConfig) -> list[str]:
    """The flags that chose the layout and its options, as the card's build command repeats them."""
    flags = ["--layout", layout.name] if config.layout else []
    for option in layout.options:
        value = getattr(config, option)
        if _given(config, option):
            flags += [COLLECTION_OPTIONS[option]] + ([] if value is True else [str(value)])
    return flags


def add_collection_arguments(parser: argparse.ArgumentParser) -> None:
    """The build's flags for ``COLLECTION_OPTIONS``."""
    parser.add_argument("--list", type=Path, dest="list_file", metavar="FILE",
                        help="csv: the clips as path,label[,split,identity,method,action], paths relative to "
                             "SOURCE, labels real/fake or 0/1 (0 = real)")  # fmt: skip
    parser.add_argument("--face_crops", choices=collection.FACE_CROP_MODES,
                        help="folders, csv, dfdc: auto (default) face-crops whole-frame clips and keeps those that "
                             "are face crops already; yes crops every clip; no keeps every clip as it is")  # fmt: skip
    parser.add_argument("--identity_pattern", metavar="REGEX",
                        help="folders, csv: the identity in a clip's path (first group, else the whole match), so "
                             "that splits are dealt by identity (default: by file)")  # fmt: skip
    parser.add_argument("--test_only", action="store_true",
                        help="folders, csv, dfdc: every clip in test, to score a trained detector on")  # fmt: skip
    parser.add_argument("--parts", help="dfdc: the dfdc_train_part_N folders to build, like 0,3-5 (default: all)")
    parser.add_argument("--split_seed", type=int, default=0,
                        help="folders, csv, dfdc: the seed of the splits the build deals (default 0)")  # fmt: skip

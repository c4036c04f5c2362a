"""The source layouts the build reads, in a registry: each a module of its own, all giving the same clips.

A new layout is a module with ``recognise``, ``scan``, ``assign``, ``configs`` and ``card_text`` (see ``dmplus``,
``faceforensics``, ``celeb_df``) and an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import celeb_df, dmplus, faceforensics
from .card import CardText
from .clips import BuildConfig, BuildError, Clip, Problems
from .configs import ConfigSpec, action_configs
from .source_folder import SourceFolder


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
    """Full-frame videos, face-cropped by the build at the qualities they come in (else the build compresses)."""
    licensed_per_user: bool
    """Never pushed to a public Hub repo by default."""


LAYOUTS: dict[str, Layout] = {
    "dmplus": Layout("dmplus", dmplus.scan, lambda clips, config: dmplus.assign_splits(clips), action_configs,
                     lambda clips, qualities, config: dmplus.card_text(any(c.identity_split for c in clips)),
                     crops_faces=False, licensed_per_user=False),
    "faceforensics": Layout("faceforensics", faceforensics.scan, lambda clips, config: faceforensics.assign(clips),
                            faceforensics.configs, faceforensics.card_text, crops_faces=True, licensed_per_user=True),
    "celeb_df": Layout("celeb_df", celeb_df.scan, lambda clips, config: celeb_df.assign(clips, config.validation_seed),
                       celeb_df.configs, celeb_df.card_text, crops_faces=True, licensed_per_user=True),
}  # fmt: skip


def recognise_layout(source: Path, name: str | None = None) -> Layout:
    """The layout ``name``, or the one the folders of ``source`` show (DeepFake MNIST+ when neither other's)."""
    if name is not None:
        if name not in LAYOUTS:
            raise BuildError(f"unknown layout {name!r}; choose from {', '.join(LAYOUTS)}")
        return LAYOUTS[name]
    if faceforensics.recognise(source):
        return LAYOUTS["faceforensics"]
    if celeb_df.recognise(source):
        return LAYOUTS["celeb_df"]
    return LAYOUTS["dmplus"]

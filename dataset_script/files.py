"""Files and folders written so that a reader never sees half of one: a hidden temp file beside it, then a rename.
Every package of the project writes its records this way (generation and training import it from here); the build
replaces a whole dataset repo the same way."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

logger = logging.getLogger(__name__)


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader never sees half of it (a hidden temp file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
    return path


def retired_folder(folder: Path) -> Path:
    """Where ``replace_folder`` puts the folder it replaces while the new one goes in."""
    return folder.parent / f".{folder.name}.old"


def recover_interrupted_replace(folder: Path) -> None:
    """Finish what a ``replace_folder`` cut short by a crash left: the new folder in place, else the old one.

    A retired folder beside a present ``folder`` was about to be deleted; beside a missing one, it is the only
    complete copy, so it goes back in place."""
    retired = retired_folder(folder)
    if not retired.exists():
        return
    if folder.exists():
        logger.info("removing %s, left by an interrupted replacement of %s", retired, folder)
        shutil.rmtree(retired)
    else:
        logger.warning("restoring %s from %s: its replacement was interrupted before the new one went in",
                       folder, retired)  # fmt: skip
        os.replace(retired, folder)


def replace_folder(new: Path, folder: Path) -> Path:
    """Put the complete folder ``new`` where ``folder`` is, so that a crash at any point leaves a whole one.

    Two folders cannot be swapped in one portable rename, so the old folder is renamed aside first and deleted
    only once the new one is in place; ``recover_interrupted_replace`` (run before the next replacement, or by
    anyone who finds ``folder`` missing) puts things right after a crash in between."""
    recover_interrupted_replace(folder)
    retired = retired_folder(folder)
    if folder.exists():
        os.replace(folder, retired)
    os.replace(new, folder)
    shutil.rmtree(retired, ignore_errors=True)
    return folder

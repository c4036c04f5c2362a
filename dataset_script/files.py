"""Files and folders written so that a reader never sees half of one: a hidden temp file beside it, then a rename.
Every package of the project writes its files this way (generation and training import it from here): videos,
arrays, figures, weights, records and the whole dataset repo."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger(__name__)


def partial_path(path: Path, suffix: str | None = None, per_process: bool = False) -> Path:
    """The hidden name ``path`` is written under before the rename: ``.<stem>.partial[.<pid>]<suffix>``.

    Same folder, so the rename is atomic; the suffix (``path``'s own by default) kept last, so writers that pick
    the format by the name (ffmpeg, PyAV, numpy, matplotlib) still do. ``per_process`` adds the process id, for
    files that several processes may write at once."""
    suffix = path.suffix if suffix is None else suffix
    process = f".{os.getpid()}" if per_process else ""
    return path.with_name(f".{path.stem}.partial{process}{suffix}")


@contextmanager
def atomic_path(
    path: Path, suffix: str | None = None, per_process: bool = False, keep_on_failure: bool = False
) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path`` to write a file or a folder into; when the block ends
    normally it is renamed to ``path`` (a folder through ``replace_folder``), so a reader never sees half of it.

    When the block raises, the temporary file or folder is removed, unless ``keep_on_failure`` (a folder of
    finished parts that a rerun reuses). A process killed mid-write leaves at most the hidden temporary behind.
    ``suffix`` and ``per_process`` name it as ``partial_path`` says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path, suffix, per_process)
    try:
        yield partial
    except BaseException:
        if not keep_on_failure:
            _remove(partial)
        raise
    if partial.is_dir():
        replace_folder(partial, path)
    else:
        os.replace(partial, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` so that a reader never sees half of it (a hidden temp file, then a rename)."""
    with atomic_path(path) as partial:
        partial.write_text(text)
    return path


def write_bytes_atomically(path: Path, data: bytes) -> Path:
    """``write_text_atomically`` for bytes."""
    with atomic_path(path) as partial:
        partial.write_bytes(data)
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

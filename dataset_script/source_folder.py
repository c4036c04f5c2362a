"""A source folder (a release, FaceForensics++, Celeb-DF) is untrusted: every layout lists it and reads its files
through ``SourceFolder``, which hands on only entries that are safe to open.

An entry is refused, by name, when it resolves outside the folder (a link to a system file, or to someone else's
clips, would be probed, built and published as the release's own), when its name holds a control character (it
cannot be shown, and may forge a line of a report), when its name clashes with another's but for case (one file
on Windows, macOS and many clones of the repo), or when it is neither a regular file nor a folder (a FIFO blocks
the reader that opens it). Links out of the folder are followed only when the user says so
(``--follow_links_outside_source``), and even then the build copies what they point at: it never writes a link.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

UNPRINTABLE = ("Cc", "Cs")
"""Unicode categories never shown raw: control characters, and the surrogates that stand for bytes of a name that
are not UTF-8."""


class SourceError(ValueError):
    """A file of the source that cannot be read as it must be; the message names the file, the line and the fix."""


def printable(text: str) -> str:
    """``text`` with every control character and undecodable byte escaped (``\\n``, ``\\x1b``, ``\\udcff``)."""
    return "".join(
        char.encode("unicode_escape", "backslashreplace").decode("ascii")
        if unicodedata.category(char) in UNPRINTABLE
        else char
        for char in text
    )


def resolves_inside(path: Path, root: Path) -> bool:
    """Whether ``path``, every link on its way followed, lies in ``root`` (also resolved)."""
    return path.resolve().is_relative_to(root.resolve())


def read_utf8(path: Path) -> str:
    """The text of ``path``; SourceError naming the line of the first byte that is not UTF-8 (a byte-order mark, as
    spreadsheets write one, is dropped)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise SourceError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x} at column "
                          f"{column}); save the file as UTF-8") from None  # fmt: skip


class SourceFolder:
    """The entries of a source folder that the build may open, each refusal recorded by the entry's path relative
    to the folder (``refused``: a reason each; ``links_outside``: where each points). ``followed`` lists the links
    out of the folder that were followed because ``follow_links_outside`` said so."""

    def __init__(self, root: Path, follow_links_outside: bool = False):
        self.root = root
        self.follow_links_outside = follow_links_outside
        self.refused: dict[str, str] = {}
        self.links_outside: dict[str, str] = {}
        self.followed: dict[str, str] = {}

    def folders(self, folder: Path) -> list[Path]:
        """The sub-folders of ``folder`` that may be opened, sorted; hidden ones left out."""
        return [path for path, is_folder in self._entries(folder) if is_folder]

    def files(self, folder: Path) -> list[Path]:
        """The regular files in ``folder`` that may be opened, sorted; hidden ones left out."""
        return [path for path, is_folder in self._entries(folder) if not is_folder]

    def file(self, path: Path) -> Path | None:
        """``path``, a file the build reads whole (a manifest, a split list), or None when there is none. One that may
        not be opened is a SourceError: building without it would silently build something else."""
        if not path.exists() and not path.is_symlink():
            return None
        relative = self._relative(path)
        # One outside the folder was named on the command line (``--splits DIR``): the user's own.
        if path.is_relative_to(self.root) and (relative in self.refused or not self._may_open(path)):
            reason = self.refused.get(relative) or (
                f"a link to {self.links_outside[relative]}, outside {self.root}; put the file itself there (or, if you "
                "trust that file, rerun with --follow_links_outside_source)")  # fmt: skip
            raise SourceError(f"{path}: {reason}")
        if not path.is_file():
            raise SourceError(f"{path} is not a regular file; put the file itself there")
        return path

    def is_folder(self, path: Path) -> bool:
        """Whether ``path`` (a place a layout names, like ``original_sequences/youtube``) is a folder it may list."""
        return path.is_dir() and self._may_open(path)

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)

    def _may_open(self, path: Path) -> bool:
        """Whether ``path`` resolves inside the folder, or outside it where that is allowed; a refusal is recorded."""
        try:
            resolved = path.resolve(strict=False)
        except (RuntimeError, OSError):  # a loop of links (RuntimeError up to Python 3.12, OSError from 3.13)
            self.refused[self._relative(path)] = "a loop of links; replace it with the file or folder itself"
            return False
        if resolved.is_relative_to(self.root.resolve()):
            return True
        target = self.followed if self.follow_links_outside else self.links_outside
        target[self._relative(path)] = str(resolved)
        return self.follow_links_outside

    def _entries(self, folder: Path) -> list[tuple[Path, bool]]:
        """(path, is a folder) of each entry of ``folder`` that may be opened; the rest recorded."""
        if not self.is_folder(folder):
            return []
        with os.scandir(folder) as scan:
            entries = sorted((entry for entry in scan if not entry.name.startswith(".")), key=lambda e: e.name)
        clashes = _case_clashes([entry.name for entry in entries])
        kept = []
        for entry in entries:
            path = folder / entry.name
            relative = self._relative(path)
            if any(unicodedata.category(char) in UNPRINTABLE for char in entry.name):
                self.refused[relative] = "its name holds a control character or bytes that are not UTF-8; rename it"
            elif entry.name in clashes:
                self.refused[relative] = (f"differs from {clashes[entry.name]} only by case, so the two are one file "
                                          "on Windows, macOS and in many clones of the repo; rename one")  # fmt: skip
            elif (not entry.is_symlink() or self._may_open(path)) and (kind := _kind(entry)) is not None:
                kept.append((path, kind))
            elif relative not in self.links_outside and relative not in self.refused:
                self.refused[relative] = "neither a regular file nor a folder (a FIFO, a device or a broken link)"
                self.followed.pop(relative, None)
        return kept


def _kind(entry: os.DirEntry) -> bool | None:
    """True for a folder, False for a regular file (links followed), None for anything else."""
    if entry.is_dir():
        return True
    return False if entry.is_file() else None


def _case_clashes(names: list[str]) -> dict[str, str]:
    """Each name of ``names`` that equals another but for case or Unicode form, mapped to the others."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(unicodedata.normalize("NFC", name).casefold(), []).append(name)
    return {name: " and ".join(other for other in group if other != name)
            for group in groups.values() if len(group) > 1 for name in group}  # fmt: skip

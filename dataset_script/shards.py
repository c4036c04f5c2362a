"""Parquet shards with the videos inside: the one form in which a built repo stores its rows, locally and on the Hub.

A row carries its clip's bytes, not a path to the clip. `datasets` copies rows into its Arrow cache and keys that
cache on the card, not on where the repo is; a row holding an absolute path would send a moved or copied repo (or a
second build of the same content elsewhere) to the first place it was loaded from. A row's ``video.path`` is the
clip's name relative to the repo root, for people and error messages only: decoding reads the bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .card import ROW_FEATURES
from .files import atomic_path, write_bytes_atomically

SHARD_BYTES = 500 * 1024**2
"""Largest shard: `datasets`' own ``MAX_SHARD_SIZE``, and what the Hub advises for parquet files."""
ROW_GROUP_BYTES = 100 * 1024**2
"""Largest row group (`datasets`' ``MAX_ROW_GROUP_SIZE``): a reader holds a whole row group to read one row."""
DATA_FOLDER = "data"


@dataclass(frozen=True)
class ShardRow:
    """One row to write: the clip file whose bytes go in, the relative name recorded with them, the other columns."""

    file: Path
    name: str
    columns: dict

    def size(self) -> int:
        return self.file.stat().st_size


def shard_folder(quality: str) -> str:
    """Where the shards of one quality's clips live, relative to the repo root: every configuration of that quality
    lists its groups of them (``configs.write_configs``)."""
    return f"{DATA_FOLDER}/{quality}"


CELL_SEPARATOR = "~"
"""Joins the split names of rows that belong to several splits (``train~identity_test``): never in a split name."""


def cell_name(splits: Sequence[str]) -> str:
    """The file stem of rows shared by ``splits`` (one split from each split scheme that holds them)."""
    return CELL_SEPARATOR.join(splits)


def shard_pattern(quality: str, stem: str) -> str:
    """The card's ``data_files`` pattern for the shards of ``stem``, and nothing else: ``train-*`` matches neither
    ``identity_train-*`` nor ``train~identity_test-*``."""
    return f"{shard_folder(quality)}/{stem}-*.parquet"


def _group(sizes: Sequence[int], limit: int) -> list[list[int]]:
    """Consecutive runs of indices whose sizes sum to at most ``limit`` (a single larger item gets a run of its own)."""
    groups, current, current_size = [], [], 0
    for index, size in enumerate(sizes):
        if current and current_size + size > limit:
            groups.append(current)
            current, current_size = [], 0
        current.append(index)
        current_size += size
    if current:
        groups.append(current)
    return groups


def _row_group(rows: Sequence[ShardRow]) -> pa.Table:
    columns = {"video": [{"bytes": row.file.read_bytes(), "path": row.name} for row in rows]}
    # A column a row does not give (``method`` of rows made before it existed) is empty, not an error.
    columns |= {name: [row.columns.get(name) for row in rows] for name in ROW_FEATURES if name != "video"}
    return pa.table(columns, schema=ROW_FEATURES.arrow_schema)


def write_split_shards(
    rows: Sequence[ShardRow],
    repo: Path,
    quality: str,
    stem: str,
    shard_bytes: int = SHARD_BYTES,
) -> list[Path]:
    """Write rows of one quality as ``data/<quality>/<stem>-NNNNN-of-NNNNN.parquet`` under ``repo``; the stem names
    the group of clips (``configs.group_stem``) or, for a single split, the split.

    Shards hold at most ``shard_bytes`` of video each (one larger clip gets a shard to itself), in rows' order.
    Only one row group of videos is in memory at a time. Each shard is written under a hidden name and renamed,
    so the split's pattern never matches half a shard. Returns the shards written."""
    if not rows:
        raise ValueError(f"{quality}/{stem}: no rows to write")
    folder = repo / shard_folder(quality)
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [row.size() for row in rows]
    shards = _group(sizes, shard_bytes)
    written = []
    for number, indices in enumerate(shards):
        path = folder / f"{stem}-{number:05d}-of-{len(shards):05d}.parquet"
        # Videos do not compress further; the small columns are not worth a codec either.
        with (
            atomic_path(path) as partial,
            pq.ParquetWriter(partial, ROW_FEATURES.arrow_schema, compression="none") as writer,
        ):
            for group in _group([sizes[index] for index in indices], ROW_GROUP_BYTES):
                writer.write_table(_row_group([rows[indices[index]] for index in group]))
        written.append(path)
    return written


def read_clips(repo: Path, names: Iterable[str]) -> dict[str, bytes]:
    """The bytes of the clips ``names`` (rows' ``video.path``: ``c23/blink/0001.mp4``) from a built repo: each clip's
    file where the build kept it (``--keep_clips``), else its row in the shards of its quality. Only the row groups
    that hold a wanted clip are read. Names the repo lacks are absent from the answer."""
    wanted, found = set(names), {}
    for name in sorted(wanted):
        path = repo / name
        if path.is_file() and not path.is_symlink():
            found[name] = path.read_bytes()
    missing_by_quality: dict[str, set[str]] = {}
    for name in wanted - found.keys():
        missing_by_quality.setdefault(name.split("/", 1)[0], set()).add(name)
    for quality, missing in missing_by_quality.items():
        for shard in sorted((repo / shard_folder(quality)).glob("*.parquet")):
            parquet = pq.ParquetFile(shard)
            for group in range(parquet.num_row_groups):
                paths = parquet.read_row_group(group, columns=["video"]).column("video").combine_chunks()
                held = paths.field("path").to_pylist()
                if missing.isdisjoint(held):
                    continue
                for name, data in zip(held, paths.field("bytes").to_pylist(), strict=True):
                    if name in missing:
                        found[name] = data
                        missing.discard(name)
            if not missing:
                break
    return found


def export_clips(repo: Path, names: Iterable[str], folder: Path) -> dict[str, Path]:
    """The clips ``names`` of a built repo as files: the repo's own where the build kept them, else written from the
    shards to ``folder / name`` (each atomically, once). Names the repo lacks are absent from the answer."""
    names = list(names)
    kept = {name: repo / name for name in names if (repo / name).is_file() and not (repo / name).is_symlink()}
    exported = {name: folder / name for name in names if name not in kept and (folder / name).is_file()}
    for name, data in read_clips(repo, [name for name in names if name not in kept | exported]).items():
        write_bytes_atomically(folder / name, data)
        exported[name] = folder / name
    return {name: (kept | exported)[name] for name in names if name in kept | exported}

"""Which clips each configuration and split of a built repo holds, and writing those rows as parquet shards.

Each layout names its configurations as ``ConfigSpec``s. DeepFake MNIST+: ``raw``/``c23``/``c40`` hold every clip at
that quality; ``<quality>-<action>`` one action's fakes plus as many real clips of the same split (paper Fig. 5),
drawn by a fixed hash, seed-free.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from .card import ConfigFiles, DiskUse
from .schema import ACTIONS, IDENTITY_SPLIT_PREFIX, LABEL_NAMES, SPLITS, action_config_name
from .shards import DATA_FOLDER, ShardRow, cell_name, shard_pattern, write_split_shards
from .splits import stable_hash

if TYPE_CHECKING:
    from .clips import Clip

SplitOf = Callable[["Clip"], "str | None"]
Selection = Callable[[list["Clip"], SplitOf], dict[str, list["Clip"]]]


@dataclass(frozen=True)
class ConfigSpec:
    """One configuration: its name, the quality of its videos, and which clips each split holds."""

    name: str
    quality: str
    select: Selection


def subset_rows(clips: list[Clip], split_of: SplitOf, action: str | None = None,
                method: str | None = None) -> dict[str, list[Clip]]:  # fmt: skip
    """Rows per split of one subset: everything, or one action's (or method's) fakes plus as many reals of the same
    split."""
    picked = action or method
    rows: dict[str, list[Clip]] = {}
    for clip in clips:
        split = split_of(clip)
        in_subset = clip.label == 0 or (action in (None, clip.source.action) and method in (None, clip.method))
        if split is not None and in_subset:
            rows.setdefault(split, []).append(clip)
    if picked is not None:
        for split, members in rows.items():
            fakes = [clip for clip in members if clip.label == 1]
            reals = sorted(
                (clip for clip in members if clip.label == 0),
                key=lambda c: stable_hash(picked + c.video_id),
            )
            rows[split] = sorted(fakes + reals[: len(fakes)], key=lambda clip: clip.video_id)
    return {split: sorted(members, key=lambda clip: clip.video_id) for split, members in rows.items()}


def action_configs(clips: list[Clip], qualities) -> list[ConfigSpec]:
    """DeepFake MNIST+'s configurations: each quality whole, then each (quality, action)."""
    actions = sorted({clip.source.action for clip in clips if clip.source.action}, key=_action_order)
    return [
        ConfigSpec(
            quality if action is None else action_config_name(quality, action),
            quality,
            partial(subset_rows, action=action),
        )  # fmt: skip
        for quality in qualities
        for action in [None, *actions]
    ]


def _shard_rows(members: list[Clip], quality: str, staging: Path) -> list[ShardRow]:
    return [
        ShardRow(
            file=staging / quality / clip.relative_path(quality),
            name=f"{quality}/{clip.relative_path(quality)}",
            columns={
                "label": clip.label,
                "method": clip.method,
                "action": clip.source.action,
                "quality": quality,
                "video_id": clip.video_id,
                "source_id": clip.source_id,
                "driving_id": clip.driving_id,
                "num_frames": clip.info.num_frames,
            },
        )
        for clip in members
    ]


def write_configs(
    staging: Path, clips: list[Clip], specs: list[ConfigSpec], has_identity: bool, progress: bool = True
) -> tuple[list[ConfigFiles], dict]:
    """Write every configuration's rows as parquet shards with the videos inside; returns the configurations and
    (rows, bytes) per configuration and split.

    Each clip is stored once per quality, however many configurations and splits hold it. The clips of a quality are
    grouped by where they belong (their membership: every (configuration, split) pair that holds them, a paper split
    and an identity split alike, and their label), each group is written once under ``data/<quality>/``, and every
    split of a configuration lists the groups it holds: ``raw-blink`` its action's fakes and the groups of the reals
    it draws, ``raw`` every group, by one pattern per cell of splits (``_patterns``). Rows of a split come group by
    group, each group sorted by video id.

    Where reals are drawn for many subsets (a real release's per-action configurations draw each real for about one
    action in ten), the groups are many and small: the price of storing each clip once with exactly the rows of the
    paper's rule."""
    # A staging folder left by an interrupted run may hold shards of another shape; the split patterns would match
    # them too, so the rows are always written afresh (the videos beside them are what reruns reuse).
    shutil.rmtree(staging / DATA_FOLDER, ignore_errors=True)
    schemes = [("", lambda clip: clip.split)]
    if has_identity:
        schemes.append((IDENTITY_SPLIT_PREFIX, lambda clip: clip.identity_split))
    by_id = {clip.video_id: clip for clip in clips}
    memberships: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (quality, video id) -> [(config, split)]
    for spec in specs:
        for prefix, split_of in schemes:
            for split, members in spec.select(clips, split_of).items():
                for clip in members:
                    memberships.setdefault((spec.quality, clip.video_id), []).append((spec.name, prefix + split))
    groups: dict[tuple[str, int, tuple[tuple[str, str], ...]], list[Clip]] = {}
    for (quality, video_id), member_of in sorted(memberships.items()):
        groups.setdefault((quality, by_id[video_id].label, tuple(sorted(member_of))), []).append(by_id[video_id])
    held: dict[str, dict[str, list[tuple[str, str, str]]]] = {spec.name: {} for spec in specs}
    cell_stems: dict[tuple[str, str], list[str]] = {}  # (quality, cell) -> the stems of its groups
    counts: dict[str, dict[str, tuple[int, int]]] = {spec.name: {} for spec in specs}
    for quality, label, member_of in tqdm(sorted(groups, key=_group_order), desc="packing", unit="group",
                                          disable=not progress):  # fmt: skip
        members = groups[quality, label, member_of]
        cell, stem = group_cell(member_of), group_stem(member_of, label)
        shards = write_split_shards(_shard_rows(members, quality, staging), staging, quality, stem)
        size = sum(shard.stat().st_size for shard in shards)
        cell_stems.setdefault((quality, cell), []).append(stem)
        for name, split_name in member_of:
            held[name].setdefault(split_name, []).append((quality, cell, stem))
            rows, num_bytes = counts[name].get(split_name, (0, 0))
            counts[name][split_name] = (rows + len(members), num_bytes + size)
    configs = []
    for spec in specs:
        data_files = {split_name: _patterns(stems, cell_stems) for split_name, stems in held[spec.name].items()}
        configs.append(ConfigFiles(spec.name, dict(sorted(data_files.items(), key=lambda item: _split_order(item[0])))))
    return configs, {spec.name: counts[spec.name] for spec in specs}


def _patterns(stems: list[tuple[str, str, str]], cell_stems: dict[tuple[str, str], list[str]]) -> list[str]:
    """A split's ``data_files``: one pattern for each cell whose every group it holds (a quality's whole
    configuration: ``data/raw/train~identity_test-*``, which matches no other cell's stems), else one per group."""
    patterns = []
    for quality, cell, stem in stems:
        whole = [(quality, cell, other) for other in cell_stems[quality, cell]]
        if set(whole) <= set(stems):
            pattern = shard_pattern(quality, cell)
            if pattern not in patterns:
                patterns.append(pattern)
        else:
            patterns.append(shard_pattern(quality, stem))
    return patterns


def group_cell(member_of: tuple[tuple[str, str], ...]) -> str:
    """The splits a group's clips are in, as one ``cell_name``: every group of a cell starts its stem with it."""
    return cell_name(sorted({split for _, split in member_of}, key=_split_order))


def group_stem(member_of: tuple[tuple[str, str], ...], label: int) -> str:
    """The file stem of one group of clips: its splits (``cell_name``), its label, and a digest of its whole
    membership, so two groups never share a stem and no group's ``shard_pattern`` matches another's shards."""
    digest = stable_hash(repr(member_of)) % 16**8
    return f"{group_cell(member_of)}-{LABEL_NAMES[label]}-{digest:08x}"


def _group_order(group: tuple[str, int, tuple[tuple[str, str], ...]]) -> tuple:
    quality, label, member_of = group
    splits = sorted({split for _, split in member_of}, key=_split_order)
    return quality, [_split_order(split) for split in splits], label, member_of


def disk_use(staging: Path, qualities) -> DiskUse:
    """What the repo takes on disk: the clips as files, and the rows with the clips inside."""
    # rglob: a collection of one's own keeps its sub-folders (real/interviews/...)
    video_files = sum(path.stat().st_size for quality in qualities for path in (staging / quality).rglob("*")
                      if path.is_file())  # fmt: skip
    shards = sum(path.stat().st_size for path in (staging / DATA_FOLDER).glob("*/*.parquet"))
    return DiskUse(video_files=video_files, shards=shards)


def _action_order(action: str) -> int:
    return ACTIONS.index(action)


def _split_order(split_name: str) -> tuple[bool, int]:
    is_identity = split_name.startswith(IDENTITY_SPLIT_PREFIX)
    return is_identity, SPLITS.index(split_name.removeprefix(IDENTITY_SPLIT_PREFIX))

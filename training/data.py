"""The training data: a split of a built dataset repo, its subsets for the paper's experiments, mixed quality.

Every subset is deterministic by seed, and is taken from the training split only: validation and test stay whole,
so numbers across subsets compare.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict, Video, concatenate_datasets, load_dataset

from dataset_script.frames import FrameSampler
from dataset_script.schema import ACTIONS, FAKE, IDENTITY_SPLIT_PREFIX, QUALITIES, REAL, SPLITS, action_config_name

MIXED = "mixed"
"""``--dataset_config_name mixed``: every time a training video is drawn it comes at a random quality."""

_QUALITY_COLUMN = "video_{}"


def split_name(split: str, protocol: str) -> str:
    """``train`` under the paper's split, ``identity_train`` under the identity-disjoint one."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if protocol == "paper":
        return split
    if protocol == "identity":
        return IDENTITY_SPLIT_PREFIX + split
    raise ValueError(f"unknown split protocol {protocol!r}; use 'paper' or 'identity'")


def _load(dataset_name: str, config: str, split: str) -> Dataset:
    splits = _load_config(dataset_name, config, _build_stamp(dataset_name))
    if split in splits:
        return splits[split]
    if split.startswith(IDENTITY_SPLIT_PREFIX):
        raise ValueError(
            f"{dataset_name} ({config}) has no {split!r} split: identity-disjoint splits exist only where the "
            "build knew source identities (generated data and the mini); use --split_protocol paper"
        )
    raise ValueError(f"{dataset_name} ({config}) has no split {split!r}; it has {', '.join(splits)}")


def _build_stamp(dataset_name: str) -> tuple[int, int] | None:
    """What changes when a local repo is rebuilt: its card, which every build writes anew (None for a Hub id)."""
    card = Path(dataset_name) / "README.md"
    if not card.is_file():
        return None
    stat = card.stat()
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=64)
def _load_config(dataset_name: str, config: str, stamp: tuple[int, int] | None) -> DatasetDict:
    """Every split of a configuration, loaded once per process and build: ``load_dataset`` parses the repo's card
    (a few thousand lines of YAML for 33 configurations) each time it is called, and one training run asks for the
    same configuration's splits several times (an experiment's cells, many more)."""
    return load_dataset(dataset_name, config)


def load_split(dataset_name: str, config: str, split: str) -> Dataset:
    """One split of one configuration; for ``mixed``, the raw rows with one video column per quality.

    ``mixed`` may also be ``mixed-<action>`` for the per-action subsets.
    """
    if config != MIXED and not config.startswith(MIXED + "-"):
        return _load(dataset_name, config, split)
    action = config[len(MIXED) + 1 :] or None
    parts = []
    for quality in QUALITIES:
        name = action_config_name(quality, action) if action else quality
        part = _load(dataset_name, name, split).sort("video_id")
        parts.append(part)
    first = parts[0]
    for quality, part in zip(QUALITIES[1:], parts[1:], strict=True):
        if part["video_id"] != first["video_id"]:
            raise ValueError(f"{dataset_name}: the {quality} rows of {split} are not the raw rows; rebuild the dataset")
    columns = [first.rename_column("video", _QUALITY_COLUMN.format(QUALITIES[0])).remove_columns("quality")]
    columns += [
        part.select_columns(["video"]).rename_column("video", _QUALITY_COLUMN.format(quality))
        for quality, part in zip(QUALITIES[1:], parts[1:], strict=True)
    ]
    return concatenate_datasets(columns, axis=1)


def quality_columns(dataset: Dataset) -> list[str]:
    """The video columns of a mixed-quality dataset (empty for a single quality)."""
    return [_QUALITY_COLUMN.format(q) for q in QUALITIES if _QUALITY_COLUMN.format(q) in dataset.column_names]


_FIXED_PICK = "_quality_pick"


def fixed_quality_picks(dataset: Dataset, qualities: int) -> list[int]:
    """One quality per video for validation: each class's videos, in id order, take the qualities in turn, so each
    quality holds a third of the reals and a third of the fakes, the same in every process, epoch and run."""
    video_ids, labels = dataset["video_id"], dataset["label"]
    picks, taken = [0] * len(dataset), {}
    for row in sorted(range(len(dataset)), key=video_ids.__getitem__):
        picks[row] = taken.get(labels[row], 0) % qualities
        taken[labels[row]] = taken.get(labels[row], 0) + 1
    return picks


@dataclass
class MixedQualitySampler:
    """Wraps a FrameSampler: each row is read at a quality drawn anew every time it is drawn (paper Table 5), or,
    with ``fixed``, at the quality ``fixed_quality_picks`` gave each video, for validation: a loss that compares epochs
    must see the same clips every epoch, and a random draw per epoch would pick the epoch that drew the easy ones."""

    sampler: FrameSampler
    columns: list[str]
    generator: torch.Generator | None = None
    fixed: bool = False

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        rows = len(batch[self.columns[0]])
        if self.fixed:
            picks = batch[_FIXED_PICK]
        else:
            picks = torch.randint(len(self.columns), (rows,), generator=self.generator).tolist()
        chosen = [batch[self.columns[pick]][row] for row, pick in enumerate(picks)]
        rest = {key: values for key, values in batch.items() if key not in (*self.columns, _FIXED_PICK)}
        return self.sampler({**rest, self.sampler.video_column: chosen})


def with_sampling(dataset: Dataset, sampler: FrameSampler, fixed_quality: bool = False) -> Dataset:
    """The dataset with videos left undecoded (the sampler opens them) and the sampler, or mixer, as transform;
    ``fixed_quality``: a mixed-quality dataset's videos each at one quality, the same every time (validation)."""
    columns = quality_columns(dataset) or [sampler.video_column]
    for column in columns:
        dataset = dataset.cast_column(column, Video(decode=False))
    if len(columns) > 1:
        if fixed_quality:
            dataset = dataset.add_column(_FIXED_PICK, fixed_quality_picks(dataset, len(columns)))
        return dataset.with_transform(MixedQualitySampler(sampler, columns, fixed=fixed_quality))
    return dataset.with_transform(sampler)


@dataclass
class Subset:
    """Which training videos to keep (paper Figures 3-5); all None keeps everything."""

    max_fake_videos: int | None = None
    """Keep this many fakes, spread equally over the actions, and as many reals (Fig. 3)."""
    real_fake_ratio: str | None = None
    """``"R:F"``: thin the class in surplus so reals:fakes = R:F, fakes equally per action (Fig. 4)."""
    train_action: str | None = None
    """Keep the fakes of one action and as many reals (Fig. 5)."""

    def __post_init__(self):
        if self.train_action is not None and self.train_action not in ACTIONS:
            raise ValueError(f"unknown action {self.train_action!r}; use one of {', '.join(ACTIONS)}")
        if self.max_fake_videos is not None and self.max_fake_videos < 1:
            raise ValueError(f"max_fake_videos must be at least 1, not {self.max_fake_videos}")
        if self.real_fake_ratio is not None:
            self.ratio()  # validate early

    def ratio(self) -> tuple[float, float]:
        try:
            real, fake = (float(part) for part in self.real_fake_ratio.split(":"))
        except (AttributeError, ValueError):
            real = fake = -1.0
        if not (real > 0 and fake > 0):
            raise ValueError(
                f"real_fake_ratio must look like '1:4' (reals:fakes, both > 0), not {self.real_fake_ratio!r}"
            )
        return real, fake

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.max_fake_videos, self.real_fake_ratio, self.train_action))


def _spread_over_actions(fakes_by_action: dict[str, np.ndarray], count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` fakes, as equal per action as the counts allow (the remainder to randomly chosen actions)."""
    actions = sorted(fakes_by_action)
    base, extra = divmod(count, len(actions))
    bonus = set(rng.permutation(len(actions))[:extra].tolist())
    kept = []
    leftover = 0
    for index, action in enumerate(actions):
        want = base + (index in bonus) + leftover
        pool = fakes_by_action[action]
        take = min(want, len(pool))
        leftover = want - take  # an action too small passes its share on
        kept.append(pool[:take])
    return np.concatenate(kept) if kept else np.array([], dtype=np.int64)


def subset_indices(labels: list[int], actions: list[str | None], subset: Subset, seed: int) -> np.ndarray:
    """Row indices of the training videos ``subset`` keeps, sorted, deterministic for ``seed``."""
    rng = np.random.default_rng(seed)
    labels_array = np.asarray(labels)
    reals = rng.permutation(np.flatnonzero(labels_array == REAL))
    fakes_by_action: dict[str, np.ndarray] = {}
    for index in np.flatnonzero(labels_array == FAKE):
        fakes_by_action.setdefault(actions[index] or "", []).append(index)
    fakes_by_action = {action: rng.permutation(np.asarray(rows)) for action, rows in fakes_by_action.items()}
    if subset.train_action is not None:
        if subset.train_action not in fakes_by_action:
            raise ValueError(f"the training split has no fakes of action {subset.train_action!r}")
        fakes_by_action = {subset.train_action: fakes_by_action[subset.train_action]}
    total_fakes = sum(len(rows) for rows in fakes_by_action.values())
    num_fakes = total_fakes
    num_reals = len(reals) if subset.train_action is None else min(len(reals), total_fakes)
    if subset.max_fake_videos is not None:
        if subset.max_fake_videos > total_fakes:
            raise ValueError(f"max_fake_videos={subset.max_fake_videos} but the training split has {total_fakes} fakes")
        num_fakes = subset.max_fake_videos
        num_reals = min(len(reals), num_fakes)
    if subset.real_fake_ratio is not None:
        real_part, fake_part = subset.ratio()
        if num_reals * fake_part > num_fakes * real_part:
            num_reals = max(1, math.floor(num_fakes * real_part / fake_part))
        else:
            num_fakes = max(1, math.floor(num_reals * fake_part / real_part))
    kept_fakes = _spread_over_actions(fakes_by_action, num_fakes, rng)
    return np.sort(np.concatenate([reals[:num_reals], kept_fakes]).astype(np.int64))


def apply_subset(dataset: Dataset, subset: Subset, seed: int) -> Dataset:
    if not subset.active:
        return dataset
    return dataset.select(subset_indices(dataset["label"], dataset["action"], subset, seed).tolist())


def class_counts(dataset: Dataset) -> dict[str, int]:
    labels = np.asarray(dataset["label"])
    return {"real": int((labels == REAL).sum()), "fake": int((labels == FAKE).sum())}

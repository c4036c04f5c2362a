"""The dataset card (README.md) of a built repo: YAML ``configs``/``dataset_info`` plus the prose people read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml
from datasets import ClassLabel, Features, Value, Video

from .schema import LABEL_NAMES, ROW_COLUMNS

SPLIT_COLUMNS = ("train", "validation", "test")
CITATION = """@inproceedings{huang2021deepfake,
  title     = {DeepFake MNIST+: A DeepFake Facial Animation Dataset},
  author    = {Huang, Jiajun and Wang, Xueyu and Du, Bo and Du, Pei and Xu, Chang},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision Workshops (ICCVW)},
  year      = {2021}
}"""
"""The paper this project implements: DeepFake MNIST+'s citation, and the one of this project's models."""

ROW_FEATURES = Features(
    {
        name: Video() if kind == "video" else ClassLabel(names=list(LABEL_NAMES)) if kind == "label" else Value(kind)
        for name, (kind, _) in ROW_COLUMNS.items()
    }
)
"""``schema.ROW_COLUMNS`` as `datasets` features: every configuration's columns, locally and on the Hub alike."""


@dataclass
class CardText:
    """What a layout says about its dataset in the card; the rest (YAML, columns, split table, disk, command) is
    the same for every layout. Each text is markdown."""

    pretty_name: str
    tags: list[str]
    default_config: str
    intro: str
    usage: str
    configurations: str
    clip_folders: str
    """What ``<quality>/<folder>/`` holds."""
    disk_note: str
    splits: str
    built_note: str
    licence: str
    citation: str


@dataclass
class ConfigFiles:
    """Where one configuration's splits live: ``{split name: patterns of its parquet shards}``."""

    name: str
    data_files: dict[str, list[str]]


@dataclass
class DiskUse:
    """Bytes a built repo takes: its clips as files, and its rows (parquet shards with the clips inside)."""

    video_files: int
    shards: int

    def describe(self) -> str:
        if not self.video_files:
            return f"{_megabytes(self.shards)} of parquet shards, each clip once per quality"
        total = self.video_files + self.shards
        return (f"{_megabytes(total)}: {_megabytes(self.video_files)} of video files (--keep_clips) and "
                f"{_megabytes(self.shards)} of parquet shards")  # fmt: skip


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def yaml_header(configs: Sequence[ConfigFiles], text: CardText, sizes: dict[str, dict[str, tuple[int, int]]]) -> dict:
    """The card's YAML. ``sizes`` gives (rows, bytes) per config and split.

    Recording sizes is not only informative: `datasets` names its cache after the card's YAML, not after the
    files, so two builds with identical YAML would share a cache and the second would load the first's rows."""
    entries = []
    for config in configs:
        entry = {"config_name": config.name}
        if config.name == text.default_config:
            entry["default"] = True
        # Parquet only: datasets then reads rows whose videos are inside them. Pointing at the video files as well
        # would pick the video-folder loader, which caches absolute paths (wrong once the repo moves).
        entry["data_files"] = [{"split": split, "path": patterns} for split, patterns in config.data_files.items()]
        entries.append(entry)
    return {
        "pretty_name": text.pretty_name,
        "task_categories": ["video-classification"],
        "tags": text.tags,
        "configs": entries,
        "dataset_info": [
            {
                "config_name": config.name,
                "features": ROW_FEATURES._to_yaml_list(),
                "splits": [
                    {
                        "name": split,
                        "num_bytes": sizes[config.name][split][1],
                        "num_examples": sizes[config.name][split][0],
                    }
                    for split in config.data_files
                ],
                "dataset_size": sum(size for _, size in sizes[config.name].values()),
            }
            for config in configs
        ],
    }


def render_card(
    configs: Sequence[ConfigFiles],
    sizes: dict[str, dict[str, tuple[int, int]]],
    text: CardText,
    build_command: str,
    disk: DiskUse,
    face_crop: str | None = None,
) -> str:
    """The full README.md; ``sizes`` maps config -> split -> (rows, bytes of shards); ``face_crop`` says how the
    clips were cut from whole frames (None: not recorded)."""
    header = yaml.safe_dump(yaml_header(configs, text, sizes), sort_keys=False, width=200)
    splits_table = "\n".join(
        f"| `{name}` | " + " | ".join(str(sizes[name].get(split, (0, 0))[0]) for split in SPLIT_COLUMNS) + " |"
        for name in sizes
    )
    columns = "\n".join(f"* `{name}`: {meaning}" for name, (_, meaning) in ROW_COLUMNS.items())
    return f"""---
{header}---

# {text.pretty_name}

{text.intro}

```python
{text.usage}
```

## Configurations

{text.configurations}

Columns (the same in every dataset this project builds):

{columns}

## Layout

```
README.md                  this card; its YAML names the configurations and their files
splits.csv                 every clip with its split membership, as data
build_info.json            how and from what this repository was built
data/<quality>/<splits>-<label>-<group>-NNNNN-of-NNNNN.parquet
                           the rows, videos inside: what load_dataset reads. Each clip is stored once per
                           quality, in the group of clips held by the same configurations and splits; each
                           configuration's split lists its groups (a per-action configuration: its action's
                           fakes and the groups of the reals it draws)
<quality>/<folder>/        {text.clip_folders}; local builds with --keep_clips only
```

The rows carry the videos themselves, not paths to them, so the repository loads wherever it is moved or copied,
and the Hub form is this folder without any video files. Shards hold at most 500 MiB of video each.

Disk: {disk.describe()}. {text.disk_note} Loading a configuration also copies its rows into the `datasets` cache.

## Splits

{text.splits}

| configuration | train | validation | test |
|---|---|---|---|
{splits_table}

Frame protocol used by this project's detectors: train on K random frames per video, test on 32 evenly spaced
frames; a video's score is the mean of its frames' fake probabilities.

## How it was built

```
{build_command}
```

{text.built_note}

Face crop: {face_crop or "not recorded (no face was found to measure it)"}. `build_info.json` holds it as
`face_crop`; detectors trained on this repository carry it in their `config.json`, and the Space cuts whole-frame
uploads exactly so.

## Licence

{text.licence}

## Citation

```bibtex
{text.citation}
```
"""

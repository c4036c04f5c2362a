"""The dataset card (README.md) of a built repo: YAML ``configs``/``dataset_info`` plus the prose people read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import yaml
from datasets import ClassLabel, Features, Value, Video

from .schema import ACTIONS, LABEL_NAMES, QUALITIES, action_config_name

SPLIT_COLUMNS = ("train", "validation", "test")
CITATION = """@inproceedings{huang2021deepfake,
  title     = {DeepFake MNIST+: A DeepFake Facial Animation Dataset},
  author    = {Huang, Jiajun and Wang, Xueyu and Du, Bo and Du, Pei and Xu, Chang},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision Workshops (ICCVW)},
  year      = {2021}
}"""

ROW_FEATURES = Features(
    {
        "video": Video(),
        "label": ClassLabel(names=list(LABEL_NAMES)),
        "action": Value("string"),
        "quality": Value("string"),
        "video_id": Value("string"),
        "source_id": Value("string"),
        "driving_id": Value("string"),
        "num_frames": Value("int64"),
    }
)
"""The columns of every configuration, in the local build and in the Hub form alike."""


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
        total = self.video_files + self.shards
        return (f"{_megabytes(total)}: {_megabytes(self.video_files)} of video files and "
                f"{_megabytes(self.shards)} of parquet shards")  # fmt: skip


def _megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def yaml_header(configs: Sequence[ConfigFiles], default: str, sizes: dict[str, dict[str, tuple[int, int]]]) -> dict:
    """The card's YAML. ``sizes`` gives (rows, bytes) per config and split.

    Recording sizes is not only informative: `datasets` names its cache after the card's YAML, not after the
    files, so two builds with identical YAML would share a cache and the second would load the first's rows."""
    entries = []
    for config in configs:
        entry = {"config_name": config.name}
        if config.name == default:
            entry["default"] = True
        # Parquet only: datasets then reads rows whose videos are inside them. Pointing at the video files as well
        # would pick the video-folder loader, which caches absolute paths (wrong once the repo moves).
        entry["data_files"] = [{"split": split, "path": patterns} for split, patterns in config.data_files.items()]
        entries.append(entry)
    return {
        "pretty_name": "DeepFake MNIST+",
        "task_categories": ["video-classification"],
        "tags": ["deepfake-detection", "facial-animation", "first-order-motion-model"],
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
    source_description: str,
    has_identity_split: bool,
    build_command: str,
    disk: DiskUse,
) -> str:
    """The full README.md; ``sizes`` maps config -> split -> (rows, bytes of shards)."""
    header = yaml.safe_dump(yaml_header(configs, QUALITIES[0], sizes), sort_keys=False, width=200)
    example_action = action_config_name(QUALITIES[2], ACTIONS[2])
    splits_table = "\n".join(
        f"| `{name}` | " + " | ".join(str(sizes[name].get(split, (0, 0))[0]) for split in SPLIT_COLUMNS) + " |"
        for name in sizes
    )
    identity_text = (
        "Source identities are known for this build, so every configuration also has an identity-disjoint split, "
        "`identity_train`/`identity_validation`/`identity_test`: identities are dealt 70/15/15, so no test "
        "identity (as the face shown, or, for generated data, as the driver) appears in training."
        if has_identity_split
        else "Source identities are not known for this build (the official release does not record them), so only "
        "the paper split is published."
    )
    return f"""---
{header}---

# DeepFake MNIST+

DeepFake MNIST+ (Huang et al., ICCVW 2021) is a facial-animation deepfake dataset: fake clips made by animating
one still face with another person's motion (First Order Motion Model) in ten actions ({", ".join(ACTIONS)}),
against real face clips, as 256x256 face crops. This repository was built from: {source_description}.

```python
from datasets import load_dataset
ds = load_dataset("deepfake_mnist_plus", "c23")            # a folder of this name in the working directory
yaw = load_dataset("deepfake_mnist_plus", "{example_action}")    # that action's fakes and as many real clips
```

## Configurations

* `raw`, `c23`, `c40`: every clip at that quality. `raw` is the release as shipped; `c23` and `c40` are
  FaceForensics++'s H.264 compression (ffmpeg `libx264 -crf 23` / `-crf 40`, default preset, same fps and size).
* `<quality>-<action>` (30 in all): the fakes of one action plus an equal number of real clips of the same split
  (paper Fig. 5). The real clips of each action are a fixed, seed-free draw made at build time.

Columns: `video` (decodes to a torchcodec `VideoDecoder`), `label` (`real`=0, `fake`=1), `action` (empty for real
clips), `quality`, `video_id`, `source_id` and `driving_id` (where known), `num_frames`.

## Layout

```
README.md                  this card; its YAML names the configurations and their files
splits.csv                 every clip with its split membership, as data
build_info.json            how and from what this repository was built
data/<config>/<split>-NNNNN-of-NNNNN.parquet
                           the rows of each configuration's splits, videos inside: what load_dataset reads;
                           rows two splits share (a paper and an identity split) are stored once, in
                           <split>~<identity split>-NNNNN-of-NNNNN.parquet, which both splits list
<quality>/<folder>/        the same videos as files (folder = real or an action); local builds only
```

The rows carry the videos themselves, not paths to them, so the repository loads wherever it is moved or copied,
and the Hub form is this folder without the video files. Shards hold at most 500 MiB of video each.

Disk: {disk.describe()}. A clip is stored once as a file and once in every configuration that holds it: its
quality's, and, for a fake and for each real clip drawn to match fakes (by either split scheme), a per-action
configuration's: about three times the videos in all where real clips are as many as fakes, as in the release
(the `raw` files are hard links to the source where the file system allows, and cost nothing more). Loading a
configuration also copies its rows into the `datasets` cache.

## Splits

The paper uses 70/15/15 per class and says only that the first videos of each class train, the next validate and
the last test. The default split (`train`/`validation`/`test`) does exactly that per folder, sorted by file name.
{identity_text}

| configuration | train | validation | test |
|---|---|---|---|
{splits_table}

Frame protocol used by this project's detectors: train on K random frames per video, test on 32 evenly spaced
frames; a video's score is the mean of its frames' fake probabilities.

## How it was built

```
{build_command}
```

Every input was decoded in full before the build (size and frame count are in the rows). The build writes into a
temporary folder and renames it at the end; compressed clips are reused by reruns.

## Licence

The official release (github.com/huangjiadidi/DeepFakeMnist) ships no licence file; its real clips come from
VoxCeleb1, whose terms (research use, with attribution) apply. Check both before redistributing. Synthetic data
made by this project's generators carries no third-party content.

## Citation

```bibtex
{CITATION}
```
"""

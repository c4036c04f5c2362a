"""The unit of every experiment: a *cell* trains one detector with ``training.train.train`` and scores it on test
sets.

A cell trains on one of the experiment's datasets (``main``, the ``--dataset_name``, or another role such as
``cross`` for Table 2's FaceForensics++), may start from another cell's detector (fine-tuning), and is scored
on test configurations of its own dataset and of the others. A cell whose ``results.json`` exists is not trained
again, and only the test sets it has not been scored on yet are scored: an interrupted experiment resumes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dataset_script.files import write_text_atomically
from dataset_script.schema import EVAL_FRAMES_PER_VIDEO

MAIN = "main"
"""The role of the experiment's ``--dataset_name``; results on it are keyed by the bare configuration name."""


@dataclass(frozen=True)
class DatasetRef:
    """A dataset repo and how its splits are named (``identity`` for generated data, else the ``paper``'s)."""

    name: str
    split_protocol: str


@dataclass(frozen=True)
class Cell:
    model: str
    train_config: str
    test_configs: tuple[str, ...]
    """Scored on the dataset the cell trains on, by ``train.py`` itself."""
    subset: tuple[tuple[str, str], ...] = ()  # (argument, value) pairs: max_fake_videos, real_fake_ratio, ...
    train_on: str = MAIN
    """The role of the dataset it trains on."""
    other_tests: tuple[tuple[str, str], ...] = ()
    """(role, configuration) pairs scored after training: the test sets of other datasets."""
    init_from: Cell | None = None
    """Fine-tune that cell's detector instead of training ``model`` from scratch."""

    @property
    def name(self) -> str:
        config = self.train_config if self.train_on == MAIN else f"{self.train_on}-{self.train_config}"
        parts = [self.model, config] + [f"{key}={value}" for key, value in self.subset]
        name = "__".join(part.replace(":", "-").replace("/", "-") for part in parts)
        return name if self.init_from is None else f"{self.init_from.name}__then__{config}"

    def result_keys(self) -> tuple[str, ...]:
        """The keys of its metrics in ``results.json``'s ``test``: see ``result_key``."""
        own = tuple(result_key(self.train_on, config) for config in self.test_configs)
        return own + tuple(result_key(role, config) for role, config in self.other_tests)


def result_key(role: str, config: str) -> str:
    """A test set's key in a cell's results: the configuration alone on the main dataset, else ``role:config``."""
    return config if role == MAIN else f"{role}:{config}"


@dataclass
class Experiment:
    name: str
    title: str
    cells: list[Cell] = field(default_factory=list)
    place: Callable[[Cell, str], tuple[str, str] | None] | None = None
    """Where a cell's result on one test set (its ``result_key``) goes in the table and plot: (row, column); None
    where the layout has no place for it."""
    row_heading: str = "model"
    column_order: tuple[str, ...] = ()
    """The columns in this order, where the first-seen order of the results would not be the paper's."""


SCALES: dict[str, dict] = {
    "paper": {"preset": "paper"},
    "quick": {"preset": "demo"},
    "smoke": {"preset": "smoke", "input_size": 64, "max_steps": 2, "eval_strategy": "no", "save_strategy": "no",
              "eval_frames_per_video": 2},
}  # fmt: skip
"""Each scale's layer of train.py's arguments, over its preset and under a cell's own."""


@dataclass(frozen=True)
class RunSettings:
    """What every cell of one experiment run shares: how it trains, on which main dataset, and where it writes."""

    scale: str
    """A key of ``SCALES``."""
    dataset_name: str
    """The main dataset: the experiment's ``--dataset_name``."""
    split_protocol: str
    seed: int
    output_dir: Path
    frame_cache: Path | None = None
    others: dict[str, DatasetRef] = field(default_factory=dict)
    """The datasets of roles other than main, by role."""

    @property
    def datasets(self) -> dict[str, DatasetRef]:
        return {MAIN: DatasetRef(self.dataset_name, self.split_protocol), **self.others}

    def cell_dir(self, cell: Cell) -> Path:
        """Where the cell's detector and ``results.json`` go; every experiment of this folder finds it done there."""
        return self.output_dir / "cells" / cell.name


def run_cell(cell: Cell, settings: RunSettings) -> dict:
    """Train and test one cell. A cell trained before (by this or another experiment) is not trained again; only
    the test sets it has not been scored on yet are scored."""
    from training.arguments import parse_arguments
    from training.train import train

    datasets = settings.datasets
    for role in {cell.train_on, *(role for role, _ in cell.other_tests)} - set(datasets):
        raise SystemExit(f"cell {cell.name} needs the {role!r} dataset, and none was given")
    folder = settings.cell_dir(cell)
    results = folder / "results.json"
    if results.exists():  # trained by an earlier run
        record = json.loads(results.read_text())
    else:
        trained_on = datasets[cell.train_on]
        model = cell.model
        if cell.init_from is not None:  # its own results are not needed, only its detector
            run_cell(cell.init_from, settings)
            model = str(settings.cell_dir(cell.init_from))
        record = train(*parse_arguments(
            **SCALES[settings.scale], **dict(cell.subset), model_name_or_path=model, dataset_name=trained_on.name,
            dataset_config_name=cell.train_config, split_protocol=trained_on.split_protocol,
            test_config_names=",".join(cell.test_configs), seed=settings.seed, output_dir=folder,
            resume=True, disable_tqdm=True, report_to="none", frame_cache_dir=settings.frame_cache,
        ))  # fmt: skip
    # train.py keys its own test sets by configuration alone: key them by role once, when it has just written them
    renamed = cell.train_on != MAIN and any(key in cell.test_configs for key in record["test"])
    if renamed:
        record["test"] = {result_key(cell.train_on, k) if k in cell.test_configs else k: v
                          for k, v in record["test"].items()}  # fmt: skip
    wanted = [(cell.train_on, config) for config in cell.test_configs] + list(cell.other_tests)
    missing = [(role, config) for role, config in wanted if result_key(role, config) not in record["test"]]
    for role in dict.fromkeys(role for role, _ in missing):
        configs = [config for other, config in missing if other == role]
        # the frames per video of the cell's own test, so that its results on every dataset compare
        frames = record["data"].get("test_frames_per_video", EVAL_FRAMES_PER_VIDEO)
        ref = datasets[role]
        scores = score(folder, ref.name, configs, ref.split_protocol, settings.frame_cache, frames)
        record["test"].update({result_key(role, config): metrics for config, metrics in scores.items()})
    if missing or renamed:
        write_text_atomically(results, json.dumps(record, indent=2, default=str))
    return record


def score(detector: Path, dataset: str, configs: list[str], split_protocol: str, frame_cache: Path | None = None,
          frames_per_video: int = EVAL_FRAMES_PER_VIDEO) -> dict[str, dict]:  # fmt: skip
    from dataset_script.frames import FrameCache
    from modeling import load_detector
    from training.data import load_split, split_name
    from training.evaluation import predict

    model, info = load_detector(str(detector))
    return {
        config: predict(model, load_split(dataset, config, split_name("test", split_protocol)),
                        info.pretrained_cfg(model), frames_per_video, progress=False,
                        frame_cache=FrameCache(frame_cache) if frame_cache else None).metrics()
        for config in configs
    }  # fmt: skip

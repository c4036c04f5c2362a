"""The paper's experiments as grids of training runs ("cells"), one command each.

    python -m training.experiments table3 --dataset_name deepfake_mnist_plus --scale quick --out experiments/

Each cell trains one detector with ``train.py`` into its own folder and scores it on its test configurations; a
cell whose ``results.json`` exists is not recomputed, so an interrupted experiment resumes where it stopped.
Each experiment writes ``<name>.md`` (a table laid out like the paper's), ``<name>.png`` and ``<name>.json``
(every cell's metrics, the models, data configuration, seeds and package versions).

Scales: ``paper`` is the paper's recipe (GPUs, the real data); ``quick`` is the demo's recipe, which finishes a
cell on the default mini in two to four minutes on 2 CPU cores; ``smoke`` is seconds per cell, for tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dataset_script.console import configure_logging
from dataset_script.files import write_text_atomically
from dataset_script.schema import ACTIONS, QUALITIES, action_config_name
from training.records import package_versions, save_figure_atomically
from training.tables import columns, markdown_table

logger = logging.getLogger(__name__)

METRIC = "frame_accuracy"  # the paper reports frame accuracy throughout


@dataclass(frozen=True)
class Cell:
    model: str
    train_config: str
    test_configs: tuple[str, ...]
    subset: tuple[tuple[str, str], ...] = ()  # (argument, value) pairs: max_fake_videos, real_fake_ratio, ...

    @property
    def name(self) -> str:
        parts = [self.model, self.train_config] + [f"{key}={value}" for key, value in self.subset]
        return "__".join(part.replace(":", "-").replace("/", "-") for part in parts)


SCALES: dict[str, list[str]] = {
    "paper": ["--preset", "paper"],
    "quick": ["--preset", "demo"],
    "smoke": [
        "--preset",
        "smoke",
        "--input_size",
        "64",
        "--max_steps",
        "2",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "no",
        "--eval_frames_per_video",
        "2",
    ],  # fmt: skip
}
QUICK_MODELS = ("resnet10t",)
"""The demo's detector; Table 3 beside MesoInception-4: --models mesoinception4,resnet10t."""


@dataclass
class Experiment:
    name: str
    title: str
    cells: list[Cell] = field(default_factory=list)


def table3(models) -> Experiment:
    cells = [Cell(m, q, (q,)) for m in models for q in QUALITIES]
    return Experiment("table3", "Table 3: accuracy per model and quality", cells)


def table4(models) -> Experiment:
    cells = [Cell(m, q, QUALITIES) for m in models for q in QUALITIES]
    return Experiment("table4", "Table 4: train on one quality, test on each", cells)


def table5(models) -> Experiment:
    cells = [Cell(m, "mixed", QUALITIES) for m in models]
    return Experiment("table5", "Table 5: mixed-quality training, tested per quality", cells)


PAPER_COUNTS = (10, 100, 500, 1000, 3000, 7000)
MINI_COUNTS = (10, 30, 70, 140)  # the default mini's identity_train split holds 140 fakes


def figure3(models, counts=PAPER_COUNTS) -> Experiment:
    cells = [Cell(m, q, (q,), (("max_fake_videos", str(n)),)) for m in models[:1] for q in (*QUALITIES, "mixed")
             for n in counts]  # fmt: skip
    return Experiment("figure3", "Figure 3: accuracy against the number of fake training videos", cells)


def figure4(models, ratios=("1:10", "1:4", "1:2", "1:1", "2:1", "4:1", "10:1")) -> Experiment:
    cells = [Cell(m, "raw", ("raw",), (("real_fake_ratio", r),)) for m in models[:1] for r in ratios]
    return Experiment("figure4", "Figure 4: accuracy against the real:fake ratio of training", cells)


def figure5(models) -> Experiment:
    cells = [Cell(m, "raw", ("raw",), (("train_action", a),)) for m in models[:1] for a in ACTIONS]
    return Experiment("figure5", "Figure 5: train on one action, test on all", cells)


def figure6(models) -> Experiment:
    # the per-action configurations are the paper's per-action test sets: that action's fakes and as many reals
    cells = [Cell(m, q, tuple(action_config_name(q, a) for a in ACTIONS)) for m in models[:1] for q in QUALITIES]
    return Experiment("figure6", "Figure 6: accuracy per action for each quality", cells)


EXPERIMENTS = {"table3": table3, "table4": table4, "table5": table5, "figure3": figure3, "figure4": figure4,
               "figure5": figure5, "figure6": figure6}  # fmt: skip


def run_cell(
    cell: Cell, scale: str, dataset: str, split_protocol: str, seed: int, out: Path, frame_cache: Path | None = None
) -> dict:
    """Train and test one cell. A cell trained before (by this or another experiment) is not trained again; only
    the test configurations it has not been scored on yet are scored."""
    from training.train import main as train

    folder = out / "cells" / cell.name
    results = folder / "results.json"
    if not results.exists():
        argv = [*SCALES[scale], "--model_name_or_path", cell.model, "--dataset_name", dataset,
                "--dataset_config_name", cell.train_config, "--split_protocol", split_protocol,
                "--test_config_names", ",".join(cell.test_configs), "--seed", str(seed), "--output_dir",
                str(folder), "--resume", "true", "--disable_tqdm", "true", "--report_to", "none"]  # fmt: skip
        for key, value in cell.subset:
            argv += [f"--{key}", value]
        if frame_cache is not None:
            argv += ["--frame_cache_dir", str(frame_cache)]
        train(argv)
    record = json.loads(results.read_text())
    missing = [config for config in cell.test_configs if config not in record["test"]]
    if missing:
        record["test"].update(score(folder, dataset, missing, split_protocol, frame_cache))
        write_text_atomically(results, json.dumps(record, indent=2, default=str))
    return record


def score(
    detector: Path, dataset: str, configs: list[str], split_protocol: str, frame_cache: Path | None = None
) -> dict[str, dict]:
    from dataset_script.frames import FrameCache
    from modeling import load_detector
    from training.data import load_split, split_name
    from training.evaluation import predict

    model, info = load_detector(str(detector))
    return {
        config: predict(model, load_split(dataset, config, split_name("test", split_protocol)),
                        info.pretrained_cfg(model), progress=False,
                        frame_cache=FrameCache(frame_cache) if frame_cache else None).metrics()
        for config in configs
    }  # fmt: skip


def _place(experiment: str, cell: Cell, config: str) -> tuple[str, str] | None:
    """Where one cell's result on one test configuration goes in the paper's table or figure: (row, column). A
    row is one group of bars in the plot and a column one bar of each group. None: the paper does not show it."""
    option = dict(cell.subset)
    if experiment in ("table3", "table5"):  # models down, test qualities across
        return cell.model, f"test {config}"
    if experiment == "table4":  # the paper's "Raw -> LC" columns; same-quality results are Table 3's
        return None if config == cell.train_config else (cell.model, f"{cell.train_config}->{config}")
    if experiment == "figure3":  # corpus sizes along the axis, one bar per quality trained and tested on
        return option["max_fake_videos"], cell.train_config
    if experiment == "figure4":
        return option["real_fake_ratio"], f"test {config}"
    if experiment == "figure5":
        return option["train_action"], f"test {config}"
    if experiment == "figure6":  # actions along the axis, one bar per quality
        quality, action = config.split("-", 1)
        return action, quality
    raise ValueError(f"no layout for experiment {experiment!r}")


ROW_HEADINGS = {"table3": "model", "table4": "model", "table5": "model", "figure3": "fake training videos",
                "figure4": "real:fake", "figure5": "trained on", "figure6": "action"}  # fmt: skip


def pivot(experiment: Experiment, outcomes: list[tuple[Cell, dict]]) -> tuple[str, dict[str, dict]]:
    """The experiment's results laid out as the paper's table or figure: (row heading, rows). The markdown table
    and the plot both read this, so a bar always stands where its number is in the table."""
    rows: dict[str, dict] = {}
    for cell, result in outcomes:
        for config in sorted(cell.test_configs, key=_quality_order):
            place = _place(experiment.name, cell, config)
            if place is None:
                continue
            row, column = place
            if column in rows.setdefault(row, {}):  # two results in one place: one would hide the other
                raise ValueError(f"{experiment.name}: two results for row {row!r}, column {column!r}")
            metric = result["test"].get(config, {}).get(METRIC)
            rows[row][column] = None if metric is None else round(100 * metric, 2)
    heading = ROW_HEADINGS[experiment.name]
    if experiment.name.startswith("figure"):  # the figures train one model; their rows do not name it
        heading += " (" + ", ".join(dict.fromkeys(cell.model for cell, _ in outcomes)) + ")"
    return heading, rows


def markdown(experiment: Experiment, outcomes: list[tuple[Cell, dict]]) -> str:
    first, rows = pivot(experiment, outcomes)
    lines = [f"# {experiment.title}", "", f"{METRIC.replace('_', ' ')} in % on the test split", ""]
    return "\n".join([*lines, *markdown_table(rows, first)]) + "\n"


def _quality_order(config: str) -> int:
    return QUALITIES.index(config) if config in QUALITIES else len(QUALITIES)


def draw(experiment: Experiment, outcomes: list[tuple[Cell, dict]]):
    """The experiment's plot as a matplotlib Figure: one group of bars per row of its table, on that row's tick,
    and one bar per column, at the same offset in every group so that a column reads across the groups."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heading, rows = pivot(experiment, outcomes)
    names = columns(rows)
    width = 0.8 / max(1, len(names))  # groups are 1 apart and fill 0.8 of it: the gap shows where one ends
    figure, axis = plt.subplots(figsize=(8, 4))
    for index, name in enumerate(names):
        offset = (index - (len(names) - 1) / 2) * width
        # a missing result gets no bar: a zero-height one would read as 0% accuracy
        placed = [(position + offset, values[name]) for position, values in enumerate(rows.values())
                  if values.get(name) is not None]  # fmt: skip
        axis.bar([x for x, _ in placed], [height for _, height in placed], width=width, label=name)
    axis.set_xticks(range(len(rows)), list(rows), rotation=30, ha="right", rotation_mode="anchor", fontsize=7)
    axis.set_xlabel(heading, fontsize=8)
    axis.set_ylabel(f"{METRIC.replace('_', ' ')} (%)")
    axis.set_ylim(0, 100)
    axis.set_title(experiment.title, fontsize=9)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # outside: bars reach the top
    figure.tight_layout()
    return figure


def plot(experiment: Experiment, outcomes: list[tuple[Cell, dict]], path: Path) -> Path:
    return save_figure_atomically(draw(experiment, outcomes), path)


def run(
    experiment: Experiment,
    scale: str,
    dataset: str,
    split_protocol: str,
    seed: int,
    out: Path,
    frame_cache: Path | None = None,
) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for index, cell in enumerate(experiment.cells, 1):
        logger.info("[%s] cell %d/%d: %s", experiment.name, index, len(experiment.cells), cell.name)
        outcomes.append((cell, run_cell(cell, scale, dataset, split_protocol, seed, out, frame_cache)))
    record = {
        "experiment": experiment.name, "title": experiment.title, "scale": scale, "dataset": dataset,
        "split_protocol": split_protocol, "seed": seed, "versions": package_versions(),
        "cells": [{**asdict(cell), "name": cell.name, "test": result["test"]} for cell, result in outcomes],
    }  # fmt: skip
    write_text_atomically(out / f"{experiment.name}.md", markdown(experiment, outcomes))
    write_text_atomically(out / f"{experiment.name}.json", json.dumps(record, indent=2))
    plot(experiment, outcomes, out / f"{experiment.name}.png")
    return record


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m training.experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=sorted(EXPERIMENTS))
    parser.add_argument("--dataset_name", default="deepfake_mnist_plus")
    parser.add_argument("--scale", choices=sorted(SCALES), default="quick")
    parser.add_argument("--models", help="comma-separated; default: resnet10t at quick and smoke, the five at paper")
    parser.add_argument("--split_protocol", choices=("paper", "identity"),
                        help="default: identity for quick/smoke (the mini), paper for paper")  # fmt: skip
    parser.add_argument("--counts", help="figure3: comma-separated numbers of fake training videos")
    parser.add_argument("--qualities", help="comma-separated training qualities to keep (raw, c23, c40, mixed); "
                        "default: all the experiment has")  # fmt: skip
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("experiments"))
    parser.add_argument("--frame_cache_dir", type=Path,
                        help="decoded frames shared by all cells (see train.py); default: OUT/frame_cache at "
                             "the quick and smoke scales, none at the paper's (the real data would fill a "
                             "disk)")  # fmt: skip
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging()
    # imported here, not above: modeling loads torch and timm, which --help and the tables and plots do not need
    from modeling import PAPER_MODELS

    # in the order of the paper's tables; the figures train the first, ResNet50, as the paper's do
    default_models = tuple(PAPER_MODELS) if args.scale == "paper" else QUICK_MODELS
    models = tuple(args.models.split(",")) if args.models else default_models
    factory = EXPERIMENTS[args.experiment]
    if args.experiment == "figure3":
        counts = args.counts.split(",") if args.counts else (PAPER_COUNTS if args.scale == "paper" else MINI_COUNTS)
        experiment = factory(models, tuple(int(n) for n in counts))
    else:
        experiment = factory(models)
    if args.qualities:
        keep = set(args.qualities.split(","))
        unknown = keep - {*QUALITIES, "mixed"}
        if unknown:
            raise SystemExit(f"unknown qualities {sorted(unknown)}; use raw, c23, c40 or mixed")
        experiment.cells = [cell for cell in experiment.cells if cell.train_config.split("-")[0] in keep]
    protocol = args.split_protocol or ("paper" if args.scale == "paper" else "identity")
    frame_cache = args.frame_cache_dir or (None if args.scale == "paper" else args.out / "frame_cache")
    record = run(experiment, args.scale, args.dataset_name, protocol, args.seed, args.out, frame_cache)
    print((args.out / f"{experiment.name}.md").read_text())
    return record


if __name__ == "__main__":
    main()

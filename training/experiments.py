"""The paper's experiments as grids of training runs ("cells"), one command each.

    python -m training.experiments table3 --dataset_name deepfake_mnist_plus --scale quick --output_dir experiments/

Each cell trains one detector with ``train.py`` into its own folder and scores it on its test configurations; a
cell whose ``results.json`` exists is not recomputed, so an interrupted experiment resumes where it stopped.
Each experiment writes ``<name>.md`` (a table laid out like the paper's), ``<name>.png`` and ``<name>.json``
(every cell's metrics, the models, data configuration, seeds and package versions).

``robustness`` (beyond the paper) scores one detector under DeeperForensics-1.0's perturbations and rescaling at five
levels each: see ``training.robustness``.

Scales: ``paper`` is the paper's recipe (GPUs, the real data); ``quick`` is the demo's recipe, which finishes a
cell on the default mini in two to four minutes on 2 CPU cores; ``smoke`` is seconds per cell, for tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from dataset_script.console import add_old_spelling, configure_logging
from dataset_script.files import write_text_atomically
from dataset_script.schema import ACTIONS, IDENTITY_SPLIT_PREFIX, QUALITIES, action_config_name
from training.cross_experiments import CROSS_EXPERIMENTS, TABLE2_METHODS
from training.experiment_cells import SCALES, Cell, DatasetRef, Experiment, run_cell
from training.records import package_versions, save_figure_atomically
from training.tables import columns, markdown_table

logger = logging.getLogger(__name__)

METRIC = "frame_accuracy"  # the paper reports frame accuracy throughout


QUICK_MODELS = ("resnet10t",)
"""The demo's detector; Table 3 beside MesoInception-4: --models mesoinception4,resnet10t."""


def _by_model(cell: Cell, config: str) -> tuple[str, str]:  # models down, test qualities across
    return cell.model, f"test {config}"


def _quality_transfer(cell: Cell, config: str) -> tuple[str, str] | None:
    # the paper's "Raw -> LC" columns; same-quality results are Table 3's
    return None if config == cell.train_config else (cell.model, f"{cell.train_config}->{config}")


def _option_by_test(option: str) -> Callable[[Cell, str], tuple[str, str]]:
    return lambda cell, config: (dict(cell.subset)[option], f"test {config}")


def _count_by_quality(cell: Cell, config: str) -> tuple[str, str]:
    # corpus sizes along the axis, one bar per quality trained and tested on
    return dict(cell.subset)["max_fake_videos"], cell.train_config


def _action_by_quality(cell: Cell, config: str) -> tuple[str, str]:  # actions along the axis, a bar per quality
    quality, action = config.split("-", 1)
    return action, quality


def table3(models) -> Experiment:
    cells = [Cell(m, q, (q,)) for m in models for q in QUALITIES]
    return Experiment("table3", "Table 3: accuracy per model and quality", cells, _by_model)


def table4(models) -> Experiment:
    cells = [Cell(m, q, QUALITIES) for m in models for q in QUALITIES]
    return Experiment("table4", "Table 4: train on one quality, test on each", cells, _quality_transfer)


def table5(models) -> Experiment:
    cells = [Cell(m, "mixed", QUALITIES) for m in models]
    return Experiment("table5", "Table 5: mixed-quality training, tested per quality", cells, _by_model)


PAPER_COUNTS = (10, 100, 500, 1000, 3000, 7000)
MINI_COUNTS = (10, 30, 70, 140)  # the default mini's identity_train split holds 140 fakes


def figure3(models, counts=PAPER_COUNTS) -> Experiment:
    cells = [Cell(m, q, (q,), (("max_fake_videos", str(n)),)) for m in models[:1] for q in (*QUALITIES, "mixed")
             for n in counts]  # fmt: skip
    return Experiment("figure3", "Figure 3: accuracy against the number of fake training videos", cells,
                      _count_by_quality, "fake training videos")  # fmt: skip


def figure4(models, ratios=("1:10", "1:4", "1:2", "1:1", "2:1", "4:1", "10:1")) -> Experiment:
    cells = [Cell(m, "raw", ("raw",), (("real_fake_ratio", r),)) for m in models[:1] for r in ratios]
    return Experiment("figure4", "Figure 4: accuracy against the real:fake ratio of training", cells,
                      _option_by_test("real_fake_ratio"), "real:fake")  # fmt: skip


def figure5(models) -> Experiment:
    cells = [Cell(m, "raw", ("raw",), (("train_action", a),)) for m in models[:1] for a in ACTIONS]
    return Experiment("figure5", "Figure 5: train on one action, test on all", cells,
                      _option_by_test("train_action"), "trained on")  # fmt: skip


def figure6(models) -> Experiment:
    # the per-action configurations are the paper's per-action test sets: that action's fakes and as many reals
    cells = [Cell(m, q, tuple(action_config_name(q, a) for a in ACTIONS)) for m in models[:1] for q in QUALITIES]
    return Experiment("figure6", "Figure 6: accuracy per action for each quality", cells, _action_by_quality,
                      "action")  # fmt: skip


EXPERIMENTS = {"table3": table3, "table4": table4, "table5": table5, "figure3": figure3, "figure4": figure4,
               "figure5": figure5, "figure6": figure6}  # fmt: skip
"""The paper's experiments, on one dataset; ``CROSS_EXPERIMENTS`` (training.cross_experiments) take two."""


def pivot(experiment: Experiment, outcomes: list[tuple[Cell, dict]]) -> tuple[str, dict[str, dict]]:
    """The experiment's results laid out as the paper's table or figure: (row heading, rows). The markdown table
    and the plot both read this, so a bar always stands where its number is in the table."""
    rows: dict[str, dict] = {}
    for cell, result in outcomes:
        for key in sorted(cell.result_keys(), key=_quality_order):
            place = experiment.place(cell, key)
            if place is None:
                continue
            row, column = place
            if column in rows.setdefault(row, {}):  # two results in one place: one would hide the other
                raise ValueError(f"{experiment.name}: two results for row {row!r}, column {column!r}")
            metric = result["test"].get(key, {}).get(METRIC)
            rows[row][column] = None if metric is None else round(100 * metric, 2)
    if experiment.column_order:
        rank = {column: index for index, column in enumerate(experiment.column_order)}
        rows = {row: dict(sorted(values.items(), key=lambda item: rank.get(item[0], len(rank))))
                for row, values in rows.items()}  # fmt: skip
    heading = experiment.row_heading
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
    others: dict[str, DatasetRef] | None = None,
) -> dict:
    """Every cell of the experiment (trained unless done before), then its table, plot and record. ``others``: the
    datasets that the cross-dataset experiments name by role besides the main one."""
    out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for index, cell in enumerate(experiment.cells, 1):
        logger.info("[%s] cell %d/%d: %s", experiment.name, index, len(experiment.cells), cell.name)
        outcomes.append((cell, run_cell(cell, scale, dataset, split_protocol, seed, out, frame_cache, others)))
    record = {
        "experiment": experiment.name, "title": experiment.title, "scale": scale, "dataset": dataset,
        "split_protocol": split_protocol, "seed": seed, "versions": package_versions(),
        "others": {role: asdict(ref) for role, ref in (others or {}).items()},
        "cells": [{**asdict(cell), "name": cell.name, "test": result["test"]} for cell, result in outcomes],
    }  # fmt: skip
    write_text_atomically(out / f"{experiment.name}.md", markdown(experiment, outcomes))
    write_text_atomically(out / f"{experiment.name}.json", json.dumps(record, indent=2))
    plot(experiment, outcomes, out / f"{experiment.name}.png")
    return record


def _repo_configs(repo: str) -> list[str]:
    from datasets import get_dataset_config_names

    return get_dataset_config_names(repo)


def _split_protocol(repo: str, config: str, scale: str) -> str:
    """``identity`` where the repo has identity-disjoint splits (generated data) and the scale is not the paper's;
    else ``paper``: the official splits of FaceForensics++ and Celeb-DF, and the paper's of DeepFake MNIST+."""
    from datasets import get_dataset_split_names

    if scale == "paper":
        return "paper"
    return "identity" if f"{IDENTITY_SPLIT_PREFIX}train" in get_dataset_split_names(repo, config) else "paper"


def _role(repo: str) -> str:
    return repo.rstrip("/").rsplit("/", 1)[-1]


def cross_experiment(args: ExperimentArguments, models) -> tuple[Experiment, dict[str, DatasetRef]]:
    """The experiment across datasets that ``args`` name, and the datasets besides the main one, by role."""
    from training.cross_experiments import CROSS, table2_config

    factory = CROSS_EXPERIMENTS[args.experiment]
    if args.experiment == "table2":
        if not args.cross_dataset_name:
            raise SystemExit("table2 needs --cross_dataset_name: a FaceForensics++ repo built by dataset_script.build")
        methods = tuple(args.methods.split(","))
        present = set(_repo_configs(args.cross_dataset_name))
        # raw, as the paper trains; else the best quality present (users often download c23 only)
        quality = next((q for q in QUALITIES if all(table2_config(q, m) in present for m in methods)), None)
        if quality is None:
            raise SystemExit(f"{args.cross_dataset_name} holds no quality with all of {', '.join(methods)} "
                             f"(its configurations: {', '.join(sorted(present))})")  # fmt: skip
        experiment = factory(models, quality, methods)
        cross = (args.cross_dataset_name, table2_config(quality, methods[0]))
        repos = {CROSS: cross}
    elif args.experiment == "unseen_generator":
        if not args.unseen_dataset_name:
            raise SystemExit("unseen_generator needs --unseen_dataset_name: a repo of another animator's fakes")
        experiment = factory(models)
        repos = {CROSS: (args.unseen_dataset_name, QUALITIES[0])}
    else:
        if not args.test_on:
            raise SystemExit("cross_dataset needs --test_on REPO[:CONFIG],...: the datasets to test on")
        train_config = args.train_config or _repo_configs(args.dataset_name)[0]
        repos, tests = {}, []
        for entry in args.test_on.split(","):
            repo, _, config = entry.partition(":")
            config = config or _repo_configs(repo)[0]
            if repos.get(_role(repo), (repo,))[0] != repo:  # the folder's name heads its column and keys its results
                raise SystemExit(f"--test_on names two repos called {_role(repo)} ({repos[_role(repo)][0]} and "
                                 f"{repo}); rename one folder")  # fmt: skip
            repos[_role(repo)] = (repo, config)
            tests.append((_role(repo), config))
        experiment = factory(models, train_config, tests)
    protocol = args.cross_split_protocol
    others = {role: DatasetRef(repo, protocol or _split_protocol(repo, config, args.scale))
              for role, (repo, config) in repos.items()}  # fmt: skip
    return experiment, others


def robustness(args: ExperimentArguments, models, frame_cache: Path | None) -> dict:
    """The robustness experiment (``training.robustness``) that ``args`` name: on ``--model_dir``, tested on the
    configuration and split it was trained on unless ``--train_config`` and ``--split_protocol`` say otherwise;
    else on a cell trained on ``--train_config`` (default: the first configuration)."""
    from training.robustness import RobustnessConfig, run_robustness, trained_on

    config, protocol = trained_on(args.model_dir) if args.model_dir else (None, None)
    config = args.train_config or config or _repo_configs(args.dataset_name)[0]
    protocol = args.split_protocol or protocol or _split_protocol(args.dataset_name, config, args.scale)
    perturbations = {"perturbations": tuple(args.perturbations.split(","))} if args.perturbations else {}
    settings = RobustnessConfig(args.dataset_name, config, protocol, args.output_dir, model_dir=args.model_dir,
                                model=models[0], scale=args.scale, seed=args.seed, frame_cache=frame_cache,
                                **perturbations)  # fmt: skip
    return run_robustness(settings)


@dataclass
class ExperimentArguments:
    """One experiment's settings, as ``python -m training.experiments`` takes them (see its --help)."""

    experiment: str
    dataset_name: str = "deepfake_mnist_plus"
    scale: str = "quick"
    models: str | None = None
    split_protocol: str | None = None
    counts: str | None = None
    qualities: str | None = None
    cross_dataset_name: str | None = None
    methods: str = ",".join(TABLE2_METHODS)
    unseen_dataset_name: str | None = None
    train_config: str | None = None
    model_dir: Path | None = None
    perturbations: str | None = None
    test_on: str | None = None
    cross_split_protocol: str | None = None
    seed: int = 42
    output_dir: Path = Path("experiments")
    frame_cache_dir: Path | None = None


def parse_args(argv: list[str] | None = None) -> ExperimentArguments:
    parser = argparse.ArgumentParser(prog="python -m training.experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=sorted({**EXPERIMENTS, **CROSS_EXPERIMENTS, "robustness": None}))
    parser.add_argument("--dataset_name")
    parser.add_argument("--scale", choices=sorted(SCALES))
    parser.add_argument("--models", help="comma-separated; default: resnet10t at quick and smoke, the five at paper "
                        "(the first only for the figures and the experiments across datasets)")  # fmt: skip
    parser.add_argument("--split_protocol", choices=("paper", "identity"),
                        help="default: identity where the dataset has identity splits (generated data) below the "
                             "paper scale, else paper")  # fmt: skip
    parser.add_argument("--counts", help="figure3: comma-separated numbers of fake training videos")
    parser.add_argument("--qualities", help="comma-separated training qualities to keep (raw, c23, c40, mixed); "
                        "default: all the experiment has")  # fmt: skip
    parser.add_argument("--cross_dataset_name", help="table2: the FaceForensics++ repo (dataset_script.build)")
    parser.add_argument("--methods",
                        help="table2: FaceForensics++ manipulations, each a detector and a fine-tuning")  # fmt: skip
    parser.add_argument("--unseen_dataset_name", help="unseen_generator: a repo of another animator's fakes of "
                        "the same actions (generate.py --backend tpsmm, generation.mini --animator tps)")  # fmt: skip
    parser.add_argument("--train_config", help="cross_dataset and robustness: the configuration to train on (default: "
                        "the first); robustness tests on it too")  # fmt: skip
    parser.add_argument("--model_dir", type=Path, help="robustness: an already trained detector folder to test "
                        "(default: train one)")  # fmt: skip
    parser.add_argument("--perturbations", help="robustness: comma-separated names (default: all of "
                        "dataset_script.perturbations: CS,CC,BW,GNC,GB,JPEG,VC,RS,ZOOM)")  # fmt: skip
    parser.add_argument("--test_on", help="cross_dataset: comma-separated REPO[:CONFIG] to test on (default "
                        "configuration: each repo's first)")  # fmt: skip
    parser.add_argument("--cross_split_protocol", choices=("paper", "identity"),
                        help="split names of the other datasets; default: as for --split_protocol")  # fmt: skip
    parser.add_argument("--seed", type=int)
    parser.add_argument("--output_dir", type=Path)
    parser.add_argument("--frame_cache_dir", type=Path,
                        help="decoded frames shared by all cells (see train.py); default: OUTPUT_DIR/frame_cache at "
                             "the quick and smoke scales, none at the paper's (the real data would fill a "
                             "disk)")  # fmt: skip
    add_old_spelling(parser, "--out", "--output_dir")
    # the dataclass holds the one set of defaults
    parser.set_defaults(**{field.name: field.default for field in fields(ExperimentArguments) if field.init
                           and field.default is not MISSING})  # fmt: skip
    return ExperimentArguments(**vars(parser.parse_args(sys.argv[1:] if argv is None else argv)))


def run_experiment(args: ExperimentArguments) -> dict:
    """Train and score every cell the experiment needs (those done before are kept), and write its table, plot
    and record into ``args.output_dir``; returns the record (``<experiment>.json``)."""
    # imported here, not above: modeling loads torch and timm, which --help and the tables and plots do not need
    from modeling import PAPER_MODELS

    # in the order of the paper's tables; the figures train the first, ResNet50, as the paper's do
    default_models = tuple(PAPER_MODELS) if args.scale == "paper" else QUICK_MODELS
    models = tuple(args.models.split(",")) if args.models else default_models
    frame_cache = args.frame_cache_dir or (None if args.scale == "paper" else args.output_dir / "frame_cache")
    if args.experiment == "robustness":
        return robustness(args, models, frame_cache)
    others: dict[str, DatasetRef] = {}
    if args.experiment in CROSS_EXPERIMENTS:
        experiment, others = cross_experiment(args, models)
    elif args.experiment == "figure3":
        counts = args.counts.split(",") if args.counts else (PAPER_COUNTS if args.scale == "paper" else MINI_COUNTS)
        experiment = EXPERIMENTS["figure3"](models, tuple(int(n) for n in counts))
    else:
        experiment = EXPERIMENTS[args.experiment](models)
    if args.qualities:
        keep = set(args.qualities.split(","))
        unknown = keep - {*QUALITIES, "mixed"}
        if unknown:
            raise SystemExit(f"unknown qualities {sorted(unknown)}; use raw, c23, c40 or mixed")
        experiment.cells = [cell for cell in experiment.cells if cell.train_config.split("-")[0] in keep]
    # the repo is only read when the protocol was not given
    protocol = args.split_protocol or _split_protocol(args.dataset_name, _repo_configs(args.dataset_name)[0],
                                                      args.scale)  # fmt: skip
    return run(experiment, args.scale, args.dataset_name, protocol, args.seed, args.output_dir, frame_cache, others)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    configure_logging()
    record = run_experiment(args)
    print((args.output_dir / f"{args.experiment}.md").read_text())
    return record


if __name__ == "__main__":
    main()

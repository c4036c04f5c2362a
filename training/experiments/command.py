"""The paper's experiments as grids of training runs ("cells"), one command each.

    python -m training.experiments table3 --dataset_name deepfake_mnist_plus --scale quick --output_dir experiments/
    dmplus experiments table3 --dataset_name deepfake_mnist_plus --scale quick       # the same

Each cell trains one detector with ``training.train.train`` into its own folder and scores it on its test
configurations; a cell whose ``results.json`` exists is not recomputed, so an interrupted experiment resumes where
it stopped. Each experiment writes ``<name>.md`` (a table laid out like the paper's), ``<name>.png`` and
``<name>.json`` (every cell's metrics, the models, data configuration, seeds and package versions).

``robustness`` (beyond the paper) scores one detector under DeeperForensics-1.0's perturbations and rescaling at five
levels each: see ``training.experiments.robustness``.

Scales: ``paper`` is the paper's recipe (GPUs, the real data); ``quick`` is the demo's recipe, which finishes a
cell on the default mini in two to four minutes on 2 CPU cores; ``smoke`` is seconds per cell, for tests.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from dataset_script.console import add_old_spelling, configure_logging
from training.experiments.cells import SCALES
from training.experiments.experiment import NAMES, ExperimentArguments, run_experiment


def parse_args(argv: list[str] | None = None) -> ExperimentArguments:
    parser = argparse.ArgumentParser(prog="python -m training.experiments", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", choices=NAMES)
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


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    configure_logging()
    record = run_experiment(args)
    print((args.output_dir / f"{args.experiment}.md").read_text())
    return record


if __name__ == "__main__":  # python -m training.experiments.command; python -m training.experiments is __main__.py
    main()

"""The paper's experiments on one dataset (Tables 3 to 5, Figures 3 to 6), each a grid of cells and a place in
its table for each cell's result."""

from __future__ import annotations

from collections.abc import Callable

from dataset_script.schema import ACTIONS, QUALITIES, action_config_name
from training.experiments.cells import Cell, Experiment

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
"""The paper's experiments, on one dataset; ``CROSS_EXPERIMENTS`` (training.experiments.across_datasets) take two."""

"""An experiment run: every cell trained (unless done before) and scored, then laid out as the paper's table and
plot, and recorded."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

from dataset_script.files import write_text_atomically
from dataset_script.schema import QUALITIES
from training.experiments.cells import Cell, Experiment, RunSettings, run_cell
from training.records import package_versions, save_figure_atomically
from training.tables import columns, markdown_table

logger = logging.getLogger(__name__)

METRIC = "frame_accuracy"  # the paper reports frame accuracy throughout


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


def run(experiment: Experiment, settings: RunSettings) -> dict:
    """Every cell of the experiment (trained unless done before), then its table, plot and record, written into
    ``settings.output_dir``."""
    out = settings.output_dir
    out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for index, cell in enumerate(experiment.cells, 1):
        logger.info("[%s] cell %d/%d: %s", experiment.name, index, len(experiment.cells), cell.name)
        outcomes.append((cell, run_cell(cell, settings)))
    record = {
        "experiment": experiment.name, "title": experiment.title, "scale": settings.scale,
        "dataset": settings.dataset_name, "split_protocol": settings.split_protocol, "seed": settings.seed,
        "versions": package_versions(), "others": {role: asdict(ref) for role, ref in settings.others.items()},
        "cells": [{**asdict(cell), "name": cell.name, "test": result["test"]} for cell, result in outcomes],
    }  # fmt: skip
    write_text_atomically(out / f"{experiment.name}.md", markdown(experiment, outcomes))
    write_text_atomically(out / f"{experiment.name}.json", json.dumps(record, indent=2))
    plot(experiment, outcomes, out / f"{experiment.name}.png")
    return record

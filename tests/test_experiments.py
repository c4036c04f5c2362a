"""Each of the paper's experiments produces its table, plot and record at smoke scale, and resumes; its plot lays
its bars out as the paper's table or figure."""

import json
import shutil
from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np
import pytest
from filelock import FileLock
from PIL import Image

from dataset_script.schema import ACTIONS, QUALITIES
from modeling import PAPER_MODELS
from tests.factories import shared_by_workers
from training.experiments import paper_results
from training.experiments.cells import RunSettings, run_cell
from training.experiments.command import main
from training.experiments.grid import draw, markdown
from training.experiments.paper import EXPERIMENTS, PAPER_COUNTS, QUICK_MODELS
from training.experiments.report import build_report

COUNTS = (5, 10)  # figure 3's numbers of fake training videos: the small release holds few
SMALL = {"figure3": ["--counts", ",".join(map(str, COUNTS))]}
SMOKE = ["--scale", "smoke", "--split_protocol", "paper"]


def smoke_experiment(name, counts=COUNTS):
    """The experiment as ``main`` builds it at smoke scale with SMALL's options."""
    return EXPERIMENTS[name](QUICK_MODELS, counts) if name == "figure3" else EXPERIMENTS[name](QUICK_MODELS)


@pytest.fixture(scope="module")
def cell_store(built_repo, tmp_path_factory):
    """``cell_store(cells)``: a folder holding those cells trained and scored at smoke scale. Training is these
    tests' slow part, so each cell is trained once per test run (by whichever xdist worker first needs it), and
    only this fixture writes here."""
    store = shared_by_workers(tmp_path_factory, "smoke_cells", lambda folder: folder)

    def train(cells):
        for cell in cells:
            with FileLock(store / f"{cell.name}.lock"):
                run_cell(cell, RunSettings("smoke", str(built_repo), "paper", 42, store, store / "frame_cache"))
        return store

    return train


@pytest.fixture
def experiments_folder(cell_store, tmp_path):
    """``experiments_folder(cells)``: this test's own experiments folder holding copies of those cells, trained,
    and nothing else, so what one test writes there no other test sees."""

    def make(cells):
        store, out = cell_store(cells), tmp_path / "experiments"
        for cell in cells:
            shutil.copytree(store / "cells" / cell.name, out / "cells" / cell.name, dirs_exist_ok=True)
        return out

    return make


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_writes_its_table_plot_and_record(built_repo, experiments_folder, name):
    out = experiments_folder(smoke_experiment(name).cells)
    record = main([name, "--dataset_name", str(built_repo), *SMOKE, "--output_dir", str(out), *SMALL.get(name, [])])
    table = (out / f"{name}.md").read_text()
    assert table.startswith("# ")
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("|---")][1:]
    # one model; figure 3 has a row per number of fakes, a bar per quality
    laid_out_like_the_paper = {"table3": 1, "table4": 1, "table5": 1, "figure3": len(COUNTS), "figure6": len(ACTIONS)}
    assert len(rows) == laid_out_like_the_paper.get(name, len(record["cells"]))
    assert all(" - " not in row for row in rows)  # every cell of the paper's layout is filled
    if name == "table4":
        assert "| model | raw->c23 | raw->c40 | c23->raw | c23->c40 | c40->raw | c40->c23 |" in table
    with Image.open(out / f"{name}.png") as image:
        assert image.format == "PNG"
    saved = json.loads((out / f"{name}.json").read_text())
    assert saved["seed"] == 42 and "torch" in saved["versions"] and saved["dataset"] == str(built_repo)
    for cell in saved["cells"]:
        assert set(cell["test"]) >= set(cell["test_configs"])


@pytest.mark.slow
def test_a_finished_cell_is_not_trained_again(built_repo, tmp_path, monkeypatch):
    import training.train

    trained = []
    train = training.train.train
    monkeypatch.setattr(training.train, "train", lambda *arguments: trained.append(arguments) or train(*arguments))
    argv = ["table5", "--dataset_name", str(built_repo), *SMOKE, "--output_dir", str(tmp_path)]
    first = main(argv)
    assert len(trained) == 1  # the first run trained its one cell, so the second has something to skip
    monkeypatch.setattr(training.train, "train", lambda *arguments: pytest.fail("trained a finished cell again"))
    assert main(argv)["cells"] == first["cells"]


@pytest.mark.slow
def test_the_report_puts_every_result_next_to_the_papers_numbers(built_repo, experiments_folder, tmp_path):
    out = experiments_folder(smoke_experiment("table3").cells)
    main(["table3", "--dataset_name", str(built_repo), *SMOKE, "--output_dir", str(out)])
    report = build_report(out, tmp_path / "report.md")
    assert (tmp_path / "report.md").read_text() == report
    ours = report.split("## Table 3", 1)[1].split("## ", 1)[0]
    assert "| resnet10t |" in ours and "![table3](" in ours and "table3.png)" in ours
    assert "| Resnet50 | 96.58 | 94.32 | 91.49 |" in ours  # the paper's Table 3 beside ours
    assert "train s" in ours  # wall time per cell
    assert "nod | surprise" in report  # Figure 5's stated values
    empty = build_report(tmp_path / "nothing_run", tmp_path / "empty.md")
    assert "Not run yet: `python -m training.experiments table4" in empty
    assert "| Resnet152 | 79.23 | 68.12 | 82.33 | 73.6 | 76.72 | 76.69 |" in empty  # Table 4 even before ours


@pytest.mark.slow
def test_qualities_narrow_an_experiment_to_some_training_qualities(built_repo, experiments_folder):
    raw_cells = [cell for cell in smoke_experiment("figure3", (5,)).cells if cell.train_config == "raw"]
    out = experiments_folder(raw_cells)
    argv = ["figure3", "--dataset_name", str(built_repo), *SMOKE, "--output_dir", str(out), "--counts", "5"]
    record = main([*argv, "--qualities", "raw"])
    assert [cell["train_config"] for cell in record["cells"]] == ["raw"]
    with pytest.raises(SystemExit, match="unknown qualities"):
        main([*argv, "--qualities", "c99"])


def test_paper_scale_trains_the_papers_models_in_the_order_of_its_tables():
    assert list(PAPER_MODELS) == list(paper_results.TABLE3)  # the rows of Table 3, top to bottom
    for name in ("figure3", "figure4", "figure5"):  # the paper's figures are of ResNet50
        assert {cell.model for cell in EXPERIMENTS[name](tuple(PAPER_MODELS)).cells} == {"resnet50"}


MODELS = ("model_a", "model_b")
RATIOS = ("1:10", "1:4", "1:2", "1:1", "2:1", "4:1", "10:1")
PAPER_LAYOUT = {  # the rows (groups of bars) and columns (bars of a group) of the paper's tables and figures
    "table3": (list(MODELS), ["test raw", "test c23", "test c40"]),
    "table4": (list(MODELS), ["raw->c23", "raw->c40", "c23->raw", "c23->c40", "c40->raw", "c40->c23"]),
    "table5": (list(MODELS), ["test raw", "test c23", "test c40"]),
    "figure3": ([str(n) for n in PAPER_COUNTS], [*QUALITIES, "mixed"]),
    "figure4": (list(RATIOS), ["test raw"]),
    "figure5": (list(ACTIONS), ["test raw"]),
    "figure6": (list(ACTIONS), list(QUALITIES)),
}


def paper_place(name, cell, config):
    """Where the paper shows one cell's result on one test configuration: (row, column), or None if it does not."""
    option = dict(cell.subset)
    if name == "table4":  # training quality -> test quality; same-quality results are Table 3's
        return None if config == cell.train_config else (cell.model, f"{cell.train_config}->{config}")
    return {
        "table3": (cell.model, f"test {config}"),
        "table5": (cell.model, f"test {config}"),
        "figure3": (option.get("max_fake_videos"), cell.train_config),
        "figure4": (option.get("real_fake_ratio"), f"test {config}"),
        "figure5": (option.get("train_action"), f"test {config}"),
        "figure6": tuple(reversed(config.split("-", 1))),  # "c40-yaw": row yaw, column c40
    }[name]


def fake_outcomes(name):
    """Every cell of the experiment with a made-up result per test configuration, each a different number."""
    experiment = EXPERIMENTS[name](MODELS)
    values = iter(np.arange(0.2, 1.0, 0.005))  # distinct in % to the table's 2 decimals
    return experiment, [(cell, {"test": {config: {"frame_accuracy": float(next(values))} for config in
                                          cell.test_configs}}) for cell in experiment.cells]  # fmt: skip


def bars(figure):
    """Each bar drawn: (its tick's label, its legend label, its height), after checking that it stands on that
    tick; closes the figure."""
    (axis,) = figure.axes
    ticks, labels = axis.get_xticks(), [label.get_text() for label in axis.get_xticklabels()]
    found = []
    for container in axis.containers:
        offsets = set()
        for patch in container.patches:
            left, right = patch.get_x(), patch.get_x() + patch.get_width()
            tick = int(np.argmin(np.abs(ticks - (left + right) / 2)))
            # wholly within its tick's half of the way to each neighbour: no bar strays under another label
            lower = (ticks[tick - 1] + ticks[tick]) / 2 if tick > 0 else -np.inf
            upper = (ticks[tick] + ticks[tick + 1]) / 2 if tick + 1 < len(ticks) else np.inf
            assert lower <= left and right <= upper, f"a bar from {left} to {right} crosses into another group"
            offsets.add(round((left + right) / 2 - ticks[tick], 9))
            found.append((labels[tick], container.get_label(), patch.get_height(), left, right))
        assert len(offsets) <= 1, f"{container.get_label()} moves within its groups: {offsets}"
    for tick in set(label for label, *_ in found):  # the bars of one group do not overlap
        spans = sorted((left, right) for label, _, _, left, right in found if label == tick)
        overlaps = [(a, b) for a, b in pairwise(spans) if a[1] > b[0] + 1e-9]
        assert not overlaps, f"bars overlap over {tick!r}: {overlaps}"
    plt.close(figure)
    return [(label, column, height) for label, column, height, *_ in found]


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_bar_stands_over_its_own_cell_and_label(name):
    experiment, outcomes = fake_outcomes(name)
    figure = draw(experiment, outcomes)
    (axis,) = figure.axes
    rows, columns = PAPER_LAYOUT[name]
    assert [label.get_text() for label in axis.get_xticklabels()] == rows
    assert [text.get_text() for text in axis.get_legend().get_texts()] == columns
    expected = {paper_place(name, cell, config): round(100 * metrics["frame_accuracy"], 2)
                for cell, result in outcomes for config, metrics in result["test"].items()}  # fmt: skip
    expected.pop(None, None)
    drawn = bars(figure)
    assert len(drawn) == len(expected)  # one bar per result the paper shows, none twice
    assert {(row, column): height for row, column, height in drawn} == pytest.approx(expected)
    table = [line.split(" | ")[0].removeprefix("| ") for line in markdown(experiment, outcomes).splitlines()
             if line.startswith("| ")][1:]  # fmt: skip
    assert table == rows  # the table's rows are the plot's groups, in the same order


def test_a_missing_result_has_no_bar_rather_than_a_zero_one():
    experiment, outcomes = fake_outcomes("table3")
    _, result = outcomes[1]  # model_a trained and tested on c23
    del result["test"]["c23"]
    drawn = bars(draw(experiment, outcomes))
    assert ("model_a", "test c23") not in {(row, column) for row, column, _ in drawn}
    assert len(drawn) == len(outcomes) - 1
    assert "| model_a | 20 | - | 21 |" in markdown(experiment, outcomes)

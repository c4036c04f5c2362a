"""The experiments across datasets (Table 2, cross-dataset, unseen generator) at smoke scale: which detector trains
on what, which test sets it is scored on, and where each result lands in the table.

A second dataset of another kind is not needed to test the wiring: the same small repo plays both roles, and its
per-action configurations (``raw-blink``...) stand in for FaceForensics++'s per-method ones (``raw-Deepfakes``...).
"""

import json

import pytest

from training.experiments import paper_results
from training.experiments.across_datasets import (
    CROSS,
    DMPLUS_ROW,
    FINE_TUNED_DMPLUS,
    FINE_TUNED_OWN,
    ON_DMPLUS,
    OWN,
    table2,
)
from training.experiments.cells import MAIN, Cell, result_key
from training.experiments.command import main
from training.experiments.grid import pivot
from training.experiments.report import build_report

SMOKE = ["--scale", "smoke", "--split_protocol", "paper", "--cross_split_protocol", "paper"]


@pytest.fixture
def recorded_training(monkeypatch):
    """The arguments (train.py's four dataclasses) of every training run, in order; the runs still happen."""
    import training.train

    runs, train = [], training.train.train
    monkeypatch.setattr(training.train, "train", lambda *arguments: runs.append(arguments) or train(*arguments))
    return runs


def option(arguments: tuple, name: str):
    return next(getattr(group, name) for group in arguments if hasattr(group, name))


@pytest.mark.slow
def test_table2_trains_on_the_other_dataset_and_fine_tunes_the_main_detector(built_repo, tmp_path,
                                                                              recorded_training):  # fmt: skip
    out = tmp_path / "experiments"
    record = main(["table2", "--dataset_name", str(built_repo), "--cross_dataset_name", str(built_repo),
                   "--methods", "blink", *SMOKE, "--output_dir", str(out)])  # fmt: skip
    dmplus, detector, fine_tuned = recorded_training
    assert option(dmplus, "dataset_config_name") == "raw"
    assert option(detector, "dataset_config_name") == "raw-blink"
    assert option(detector, "model_name_or_path") == "resnet10t"  # trained afresh
    # the fine-tuning starts from the DM+ detector's folder, not from the model name
    assert option(fine_tuned, "model_name_or_path") == str(out / "cells" / "resnet10t__raw")
    assert option(fine_tuned, "dataset_config_name") == "raw-blink"
    tests = {cell["name"]: set(cell["test"]) for cell in record["cells"]}
    assert tests == {"resnet10t__raw": {"raw"}, "resnet10t__cross-raw-blink": {"cross:raw-blink", "raw"},
                     "resnet10t__raw__then__cross-raw-blink": {"cross:raw-blink", "raw"}}  # fmt: skip
    table = (out / "table2.md").read_text()
    assert f"| trained on | {OWN} | {ON_DMPLUS} | {FINE_TUNED_OWN} | {FINE_TUNED_DMPLUS} |" in table  # the paper's
    assert table.count(f"| {DMPLUS_ROW} |") == 1 and table.count("| blink |") == 1
    # a rerun trains nothing and finds the same results
    recorded_training.clear()
    assert main(["table2", "--dataset_name", str(built_repo), "--cross_dataset_name", str(built_repo),
                 "--methods", "blink", *SMOKE, "--output_dir", str(out)])["cells"] == record["cells"]  # fmt: skip
    assert recorded_training == []
    report = build_report(out, tmp_path / "report.md")
    paper = report.split("## Table 2", 1)[1].split("\n## ", 1)[0]
    assert f"{paper_results.TABLE2['Deepfakes']['on DeepFake MNIST+']}" in paper


def test_table2_places_each_result_where_the_paper_has_it():
    experiment = table2(["resnet50"], "c23", ("Deepfakes", "Face2Face"))
    value = iter(range(1, 100))
    outcomes = [(cell, {"test": {key: {"frame_accuracy": next(value) / 100} for key in cell.result_keys()}})
                for cell in experiment.cells]  # fmt: skip
    heading, rows = pivot(experiment, outcomes)
    assert heading == "trained on" and list(rows) == [DMPLUS_ROW, "Deepfakes", "Face2Face"]
    dmplus, deepfakes, deepfakes_tuned = (dict(outcome[1]["test"]) for outcome in outcomes[:3])
    assert rows[DMPLUS_ROW] == {OWN: 100 * dmplus["raw"]["frame_accuracy"]}
    assert rows["Deepfakes"][OWN] == 100 * deepfakes["cross:c23-Deepfakes"]["frame_accuracy"]
    assert rows["Deepfakes"][ON_DMPLUS] == 100 * deepfakes["raw"]["frame_accuracy"]
    assert rows["Deepfakes"][FINE_TUNED_OWN] == 100 * deepfakes_tuned["cross:c23-Deepfakes"]["frame_accuracy"]
    assert rows["Deepfakes"][FINE_TUNED_DMPLUS] == 100 * deepfakes_tuned["raw"]["frame_accuracy"]
    assert experiment.cells[2].init_from == experiment.cells[0]


def test_table2_says_what_is_missing(built_repo, tmp_path):
    with pytest.raises(SystemExit, match="needs --cross_dataset_name"):
        main(["table2", "--dataset_name", str(built_repo), *SMOKE, "--output_dir", str(tmp_path)])
    # the FaceForensics++ configurations are not in a DM+ repo: say which configurations it has instead
    with pytest.raises(SystemExit, match="holds no quality with all of Deepfakes.*its configurations: c23"):
        main(["table2", "--dataset_name", str(built_repo), "--cross_dataset_name", str(built_repo), *SMOKE,
              "--output_dir", str(tmp_path)])  # fmt: skip


@pytest.mark.slow
def test_unseen_generator_scores_each_action_on_both_generators(built_repo, tmp_path):
    out = tmp_path / "experiments"
    record = main(["unseen_generator", "--dataset_name", str(built_repo), "--unseen_dataset_name", str(built_repo),
                   "--qualities", "raw", *SMOKE, "--output_dir", str(out)])  # fmt: skip
    (cell,) = record["cells"]
    assert {key for key in cell["test"] if key.startswith(f"{CROSS}:")} == {
        f"{CROSS}:{config}" for config in cell["test"] if ":" not in config
    }
    saved = json.loads((out / "unseen_generator.json").read_text())
    assert saved["others"] == {CROSS: {"name": str(built_repo), "split_protocol": "paper"}}
    table = (out / "unseen_generator.md").read_text()
    assert "| action | raw seen generator | raw unseen generator |" in table
    assert "| all actions |" in table and "| blink |" in table and " - " not in table
    # the same repo plays both roles here, so the unseen column must repeat the seen one: a cell scored with
    # another detector, or a result filed under the wrong action or role, would break the equality
    for line in table.splitlines()[6:]:  # below the heading and the rule
        seen, unseen = line.strip("|").split("|")[1:3]
        assert seen.strip() == unseen.strip()


@pytest.mark.slow
def test_cross_dataset_tests_on_each_named_repo(built_repo, tmp_path):
    out = tmp_path / "experiments"
    record = main(["cross_dataset", "--dataset_name", str(built_repo), "--train_config", "c23",
                   "--test_on", f"{built_repo}:c40", *SMOKE, "--output_dir", str(out)])  # fmt: skip
    (cell,) = record["cells"]
    assert set(cell["test"]) == {"c23", result_key(built_repo.name, "c40")}
    assert f"| model | own test set | {built_repo.name} c40 |" in (out / "cross_dataset.md").read_text()
    with pytest.raises(SystemExit, match="needs --test_on"):
        main(["cross_dataset", "--dataset_name", str(built_repo), *SMOKE, "--output_dir", str(out)])


def test_a_cell_needing_a_dataset_that_was_not_given_says_so(built_repo, tmp_path):
    from training.experiments.cells import RunSettings, run_cell

    cell = Cell("resnet10t", "raw", ("raw",), train_on=CROSS)
    with pytest.raises(SystemExit, match="needs the 'cross' dataset"):
        run_cell(cell, RunSettings("smoke", str(built_repo), "paper", 0, tmp_path))
    assert result_key(MAIN, "raw") == "raw"

"""Each of the paper's experiments produces its table, plot and record at smoke scale, and resumes."""

import json

import pytest
from PIL import Image

from training.experiments import EXPERIMENTS, main

SMALL = {"figure3": ["--counts", "5,10"]}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_writes_its_table_plot_and_record(built_repo, tmp_path_factory, name):
    out = tmp_path_factory.getbasetemp() / "experiments"  # shared: cells trained once serve every experiment
    argv = [name, "--dataset_name", str(built_repo), "--scale", "smoke", "--split_protocol", "paper",
            "--out", str(out), *SMALL.get(name, [])]  # fmt: skip
    record = main(argv)
    table = (out / f"{name}.md").read_text()
    assert table.startswith("# ") and "| model | train | subset |" in table
    assert len([line for line in table.splitlines() if line.startswith("| mesoinception4_hp")]) == len(record["cells"])
    with Image.open(out / f"{name}.png") as image:
        assert image.format == "PNG"
    saved = json.loads((out / f"{name}.json").read_text())
    assert saved["seed"] == 42 and "torch" in saved["versions"] and saved["dataset"] == str(built_repo)
    for cell in saved["cells"]:
        assert set(cell["test"]) >= set(cell["test_configs"])


def test_a_finished_cell_is_not_trained_again(built_repo, tmp_path, monkeypatch):
    argv = ["table5", "--dataset_name", str(built_repo), "--scale", "smoke", "--split_protocol", "paper",
            "--out", str(tmp_path)]  # fmt: skip
    first = main(argv)
    import training.train

    monkeypatch.setattr(training.train, "main", lambda argv: pytest.fail("trained a finished cell again"))
    assert main(argv)["cells"] == first["cells"]

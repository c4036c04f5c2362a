"""Each of the paper's experiments produces its table, plot and record at smoke scale, and resumes."""

import json

import pytest
from PIL import Image

from dataset_script.schema import ACTIONS
from training.experiments import EXPERIMENTS, main
from training.report import build_report

SMALL = {"figure3": ["--counts", "5,10"]}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_writes_its_table_plot_and_record(built_repo, tmp_path_factory, name):
    out = tmp_path_factory.getbasetemp() / "experiments"  # shared: cells trained once serve every experiment
    argv = [name, "--dataset_name", str(built_repo), "--scale", "smoke", "--split_protocol", "paper",
            "--out", str(out), *SMALL.get(name, [])]  # fmt: skip
    record = main(argv)
    table = (out / f"{name}.md").read_text()
    assert table.startswith("# ")
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("|---")][1:]
    laid_out_like_the_paper = {"table3": 1, "table4": 1, "table5": 1, "figure6": len(ACTIONS)}  # one model
    assert len(rows) == laid_out_like_the_paper.get(name, len(record["cells"]))
    if name in laid_out_like_the_paper:  # every cell of the paper's layout is filled
        assert all(" - " not in row for row in rows)
    if name == "table4":
        assert "| model | raw->c23 | raw->c40 | c23->raw | c23->c40 | c40->raw | c40->c23 |" in table
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


def test_the_report_puts_every_result_next_to_the_papers_numbers(built_repo, tmp_path_factory, tmp_path):
    out = tmp_path_factory.getbasetemp() / "experiments"  # the cells the tests above trained
    main(["table3", "--dataset_name", str(built_repo), "--scale", "smoke", "--split_protocol", "paper",
          "--out", str(out)])  # fmt: skip
    report = build_report(out, tmp_path / "report.md")
    assert (tmp_path / "report.md").read_text() == report
    ours = report.split("## Table 3", 1)[1].split("## ", 1)[0]
    assert "| mesoinception4_hp |" in ours and "![table3](" in ours and "table3.png)" in ours
    assert "| Resnet50 | 96.58 | 94.32 | 91.49 |" in ours  # the paper's Table 3 beside ours
    assert "train s" in ours  # wall time per cell
    assert "nod | surprise" in report  # Figure 5's stated values
    empty = build_report(tmp_path / "nothing_run", tmp_path / "empty.md")
    assert "Not run yet: `python -m training.experiments table4" in empty
    assert "| Resnet152 | 79.23 | 68.12 | 82.33 | 73.6 | 76.72 | 76.69 |" in empty  # Table 4 even before ours


def test_qualities_narrow_an_experiment_to_some_training_qualities(built_repo, tmp_path_factory):
    out = tmp_path_factory.getbasetemp() / "experiments"  # figure3's raw cell for 5 fakes is trained above
    argv = ["figure3", "--dataset_name", str(built_repo), "--scale", "smoke", "--split_protocol", "paper",
            "--out", str(out), "--counts", "5"]  # fmt: skip
    record = main([*argv, "--qualities", "raw"])
    assert [cell["train_config"] for cell in record["cells"]] == ["raw"]
    with pytest.raises(SystemExit, match="unknown qualities"):
        main([*argv, "--qualities", "c99"])

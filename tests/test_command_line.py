"""One command-line vocabulary: ``--output_dir`` for where results go, ``--no_progress``, underscores; the old
spellings still work for a release, hidden from ``--help``, each with a warning that names the new one."""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import pytest

from dataset_script.console import add_old_spelling
from tests.factories import importable_space

COMMANDS = {
    "build": "dataset_script.build",
    "mini": "generation.mini.__main__",
    "generate": "generation.generate",
    "train": "training.train",
    "evaluate": "training.evaluate",
    "experiments": "training.experiments",
    "report": "training.report",
    "cam": "training.cam_figure",
    "inspect": "dataset_script.inspect_repo",
}
WRITES_RESULTS = {"build", "mini", "generate", "train", "evaluate", "experiments", "report", "cam"}
SHOWS_PROGRESS = {"build", "mini", "generate", "train", "evaluate"}
OLD_NAMES = ("--out", "--output", "--progress", "--max-file-mb")
"""Old spellings with no underscored twin; the dashed ones fall under the rule that a dashed flag has one."""


def help_of(name: str, capsys) -> str:
    import importlib

    if name == "space":
        importable_space()
        main = importlib.import_module("app").main
    else:
        main = importlib.import_module(COMMANDS[name]).main
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", help_text))


@pytest.mark.parametrize("name", [*COMMANDS, "space"])
def test_every_command_speaks_one_vocabulary(name, capsys):
    shown = flags(help_of(name, capsys))
    assert not shown & set(OLD_NAMES), f"{name} shows an old spelling"
    # HfArgumentParser adds a dashed twin to each field of its own: a dashed flag must have an underscored one
    dashed_only = [flag for flag in shown if "-" in flag[2:] and "--" + flag[2:].replace("-", "_") not in shown]
    assert not dashed_only, f"{name} has flags only in dashes"
    assert ("--output_dir" in shown) == (name in WRITES_RESULTS)
    assert "--no_progress" in shown or name not in SHOWS_PROGRESS


def test_an_old_spelling_sets_the_new_one_and_says_so(caplog):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--no_progress", action="store_true")
    add_old_spelling(parser, "--out", "--output_dir")
    add_old_spelling(parser, "--no-progress", "--no_progress")
    assert flags(parser.format_help()) == {"--help", "--output_dir", "--no_progress"}
    with caplog.at_level(logging.WARNING):
        args = parser.parse_args(["--out", "x", "--no-progress"])  # --output_dir's requirement is met by --out
    assert (args.output_dir, args.no_progress) == ("x", True)
    assert "--out is deprecated" in caplog.text and "use --output_dir" in caplog.text
    assert "use --no_progress" in caplog.text


def test_a_missing_required_option_is_named_by_its_new_name(capsys):
    parser = argparse.ArgumentParser()
    parser.add_argument("--output_dir", required=True)
    add_old_spelling(parser, "--out", "--output_dir")
    with pytest.raises(SystemExit):
        parser.parse_args([])
    assert "required: --output_dir" in capsys.readouterr().err


def test_the_build_reads_its_old_spellings_as_the_new():
    from dataset_script.build import parse_args

    old = parse_args(["src", "--out", "o", "--max-frames", "32", "--no-progress", "--skip-bad-files"])
    new = parse_args(["src", "--output_dir", "o", "--max_frames", "32", "--no_progress", "--skip_bad_files"])
    assert old == new and new.output_dir == Path("o") and not new.progress


def test_generation_reads_out_and_progress_false():
    from generation.generate import parse_args

    common = ["--backend", "warp", "--sources", "s", "--driving", "d"]
    assert parse_args([*common, "--out", "o", "--progress", "false"]) == parse_args(
        [*common, "--output_dir", "o", "--no_progress"]
    )
    assert not parse_args([*common, "--out", "o", "--progress", "true"]).no_progress
    with pytest.raises(SystemExit):
        parse_args([*common, "--out", "o", "--progress", "maybe"])


def test_evaluation_and_the_cam_figure_keep_their_old_output_file(tmp_path):
    from training.cam_figure import parse_args as cam_args
    from training.evaluate import parse_args as evaluate_args

    args, path = evaluate_args(["--model_name_or_path", "m", "--output", "x/metrics.json", "--progress", "false"])
    assert path == Path("x/metrics.json") and args.no_progress
    assert evaluate_args(["--model_name_or_path", "m", "--output_dir", "x"])[1] == Path("x/evaluation.json")
    assert evaluate_args(["--model_name_or_path", "m"])[1] is None  # no file unless asked
    assert cam_args(["--model_name_or_path", "m", "--output", "f.png"])[1] == Path("f.png")
    assert cam_args(["--model_name_or_path", "m", "--output_dir", "d"])[1] == Path("d/cam.png")


def test_experiments_report_and_train_read_the_one_vocabulary(tmp_path):
    from training.arguments import parse_arguments
    from training.experiments import parse_args
    from training.report import main as report

    assert parse_args(["table3", "--out", "x"]).output_dir == Path("x")
    assert parse_arguments(["--no_progress"])[2].disable_tqdm and not parse_arguments([])[2].disable_tqdm
    assert report(["--experiments", str(tmp_path), "--out", str(tmp_path / "r.md")]) == str(tmp_path / "r.md")
    assert report(["--experiments", str(tmp_path), "--output_dir", str(tmp_path / "d")]) == str(
        tmp_path / "d" / "report.md"
    )

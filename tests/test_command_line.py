"""One command-line vocabulary: one ``dmplus`` script whose subcommands are the ``python -m`` modules, ``--output_dir``
for where results go, ``--no_progress``, underscores; the old spellings still work for a release, hidden from
``--help``, each with a warning that names the new one."""

from __future__ import annotations

import argparse
import importlib.machinery
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dataset_script.console import add_old_spelling
from training import cli
from training.cli import COMMANDS, command_main

ROOT = Path(__file__).resolve().parents[1]
DMPLUS = Path(sys.executable).parent / "dmplus"
WRITES_RESULTS = {"build", "mini", "generate", "train", "evaluate", "experiments", "report", "cam"}
SHOWS_PROGRESS = {"build", "mini", "generate", "train", "evaluate"}
OLD_NAMES = ("--out", "--output", "--progress", "--max-file-mb")
"""Old spellings with no underscored twin; the dashed ones fall under the rule that a dashed flag has one."""


def help_of(name: str, capsys) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main([name, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", help_text))


def options(help_text: str) -> str:
    """A help text without its usage lines, which name the program."""
    return help_text.split("\n\n", 1)[1]


def test_dmplus_lists_every_command_and_starts_without_torch():
    assert DMPLUS.is_file(), "no dmplus script: pip install -e . installs it (make setup does)"
    listed = subprocess.run([str(DMPLUS), "--help"], capture_output=True, text=True, check=True).stdout
    assert all(re.search(rf"^  {name} +\S", listed, re.M) for name in COMMANDS)
    # the declaration itself: an installed copy's metadata may be shadowed by a stale egg-info in the checkout
    declared = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^\[project\.scripts\]\n(#.*\n)*dmplus = "training\.cli:main"$', declared, re.M)
    imported = subprocess.run([sys.executable, "-c", "import sys; from training.cli import main\ntry: main(['--help'])"
                               "\nexcept SystemExit: print('torch' in sys.modules, file=sys.stderr)"],
                              capture_output=True, text=True)  # fmt: skip
    assert imported.stderr.strip() == "False"


@pytest.mark.slow  # starts an interpreter per command
def test_a_dmplus_command_is_its_module():
    by_dmplus = subprocess.run([str(DMPLUS), "build", "--help"], capture_output=True, text=True, check=True)
    by_module = subprocess.run([sys.executable, "-m", "dataset_script.build", "--help"], capture_output=True,
                               text=True, check=True)  # fmt: skip
    assert options(by_dmplus.stdout) == options(by_module.stdout)
    for name, (target, _) in COMMANDS.items():
        if target != cli.SPACE_SCRIPT:
            assert command_main(name) is importlib.import_module(target).main, name


def test_dmplus_space_runs_the_spaces_app_and_says_when_there_is_none(tmp_path, monkeypatch):
    assert Path(command_main("space").__code__.co_filename) == ROOT / "spaces" / "detector" / "app.py"
    monkeypatch.setattr(cli, "SPACE_SCRIPT", "no/such/app.py")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no no/such/app.py here.*clone of the repository"):
        cli.space_script()


def test_no_module_beside_a_script_is_named_like_a_library():
    """``python training/train.py`` puts training/ first on sys.path, where a module named like a library (the
    ``evaluate`` that training/evaluate.py was) stands in for it in every import of the run."""
    ours = {str(ROOT), str(ROOT / "training"), str(ROOT / "generation"), str(ROOT / "spaces" / "detector")}
    elsewhere = [path for path in sys.path if path and str(Path(path).resolve()) not in ours]
    for folder in ("training", "generation", "spaces/detector"):
        for entry in (ROOT / folder).iterdir():
            name = entry.stem if entry.suffix == ".py" else entry.name if (entry / "__init__.py").is_file() else None
            if name and not name.startswith("_"):
                assert name not in sys.stdlib_module_names, f"{folder}/{entry.name}"
                assert importlib.machinery.PathFinder.find_spec(name, elsewhere) is None, f"{folder}/{entry.name}"


@pytest.mark.parametrize("name", COMMANDS)
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
    from training.evaluate_detector import parse_args as evaluate_args
    from training.experiments.cam_figure import parse_args as cam_args

    args, path = evaluate_args(["--model_name_or_path", "m", "--output", "x/metrics.json", "--progress", "false"])
    assert path == Path("x/metrics.json") and args.no_progress
    assert evaluate_args(["--model_name_or_path", "m", "--output_dir", "x"])[1] == Path("x/evaluation.json")
    assert evaluate_args(["--model_name_or_path", "m"])[1] is None  # no file unless asked
    assert cam_args(["--model_name_or_path", "m", "--output", "f.png"])[1] == Path("f.png")
    assert cam_args(["--model_name_or_path", "m", "--output_dir", "d"])[1] is None  # cam.png in d


def test_experiments_report_and_train_read_the_one_vocabulary(tmp_path):
    from training.arguments import parse_arguments
    from training.experiments.command import parse_args
    from training.experiments.report import main as report

    assert parse_args(["table3", "--out", "x"]).output_dir == Path("x")
    assert parse_arguments(["--no_progress"])[2].disable_tqdm and not parse_arguments([])[2].disable_tqdm
    assert report(["--experiments", str(tmp_path), "--out", str(tmp_path / "r.md")]) == str(tmp_path / "r.md")
    assert report(["--experiments", str(tmp_path), "--output_dir", str(tmp_path / "d")]) == str(
        tmp_path / "d" / "report.md"
    )

"""A Python function under every command: train.py's arguments from keywords, layered as the command line's are,
and the experiments' settings as a dataclass that the command line only fills in."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.arguments import parse_arguments


def test_keywords_are_a_layer_over_the_config_file_and_under_the_command_line(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("learning_rate: 0.001\nframes_per_video: 3\nwarmup_steps: 7\n")
    model, data, training, run = parse_arguments(["--frames_per_video", "5"], preset="smoke", config=config,
                                                 learning_rate=0.01, frames_per_video=4,
                                                 model_name_or_path="resnet18")  # fmt: skip
    assert training.learning_rate == 0.01  # the keywords beat the file
    assert data.frames_per_video == 5  # the command line beats the keywords
    assert training.warmup_steps == 7 and training.num_train_epochs == 1  # the file, the preset
    assert run.preset == "smoke" and Path(training.output_dir) == Path("runs/resnet18")  # derived from the keywords


def test_keywords_derive_the_papers_per_model_settings_and_unknown_ones_are_named():
    model, _, training, _ = parse_arguments(preset="paper", model_name_or_path="legacy_xception", output_dir=Path("x"))
    assert model.freeze_backbone and training.num_train_epochs == 50 and training.output_dir == "x"
    with pytest.raises(ValueError, match=r"unknown arguments \['learning_rat'\]"):
        parse_arguments(learning_rat=0.1)


def test_the_experiments_command_only_fills_in_their_dataclass():
    from training.experiments import ExperimentArguments
    from training.experiments.command import parse_args

    assert parse_args(["table3"]) == ExperimentArguments("table3")
    given = parse_args(["figure3", "--counts", "5,10", "--scale", "smoke", "--output_dir", "out", "--seed", "1"])
    assert given == ExperimentArguments("figure3", counts="5,10", scale="smoke", output_dir=Path("out"), seed=1)

"""training/train.py: arguments, subsets, mixed quality, each paper model on the smoke mini, saving, resuming after
a kill, two processes through accelerate, and the push to a stand-in Hub."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageClassification

from dataset_script.faces import FaceCropRecord
from dataset_script.schema import ACTIONS, SPLITS
from modeling import PAPER_MODELS
from tests.factories import make_clip
from tests.hub_stand_in import StandIn
from training.arguments import parse_arguments
from training.data import MixedQualitySampler, Subset, load_split, quality_columns, subset_indices, with_sampling
from training.train import main, mse_loss

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "training" / "train.py"
TINY = ["--input_size", "64", "--disable_tqdm", "true", "--report_to", "none"]


# --- arguments ------------------------------------------------------------------------------------------


def test_cli_overrides_config_file_which_overrides_preset(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("preset: paper\nlearning_rate: 0.001\nframes_per_video: 3\nmodel_name_or_path: resnet50\n")
    model, data, training, run = parse_arguments(["--config", str(config), "--frames_per_video", "5"])
    assert run.preset == "paper" and model.model_name_or_path == "resnet50"
    assert training.learning_rate == 0.001  # the file beats the preset
    assert data.frames_per_video == 5  # the command line beats the file
    assert training.num_train_epochs == 50 and training.lr_scheduler_type.value == "polynomial"
    assert (training.adam_beta1, training.adam_beta2, training.weight_decay) == (0.9, 0.999, 0.0)
    assert training.load_best_model_at_end and training.metric_for_best_model == "frame_accuracy"
    assert training.per_device_train_batch_size * data.frames_per_video != 64  # overridden, so not the paper's
    assert Path(training.output_dir) == Path("runs/resnet50")


def test_paper_preset_follows_the_paper_per_model():
    model, data, training, _ = parse_arguments(["--preset", "paper", "--model_name_or_path", "mesoinception4"])
    assert model.loss == "mse" and not model.freeze_backbone
    assert training.per_device_train_batch_size * data.frames_per_video == 64
    model, _, _, _ = parse_arguments(["--preset", "paper", "--model_name_or_path", "legacy_xception"])
    assert model.freeze_backbone and model.loss == "cross_entropy"


@pytest.mark.parametrize("preset", ["demo", "paper"])
@pytest.mark.parametrize("config_model", [None, "resnet50", "legacy_xception"])
@pytest.mark.parametrize("cli_model", [None, "resnet18", "legacy_xception"])
def test_the_last_layer_names_the_model_and_everything_derived_from_it(tmp_path, preset, config_model, cli_model):
    config = tmp_path / "run.yaml"
    config.write_text(f"model_name_or_path: {config_model}\n" if config_model else "learning_rate: 0.001\n")
    argv = ["--preset", preset, "--config", str(config)]
    argv += ["--model_name_or_path", cli_model] if cli_model else []
    model, _, training, _ = parse_arguments(argv)
    expected = cli_model or config_model or ("resnet10t" if preset == "demo" else "mesoinception4")
    assert model.model_name_or_path == expected
    assert Path(training.output_dir) == Path("runs") / expected
    assert model.freeze_backbone == (preset == "paper" and expected == "legacy_xception")
    assert model.loss == ("mse" if preset == "paper" and expected == "mesoinception4" else "cross_entropy")


def test_a_flag_given_twice_counts_as_given_last():
    model, _, training, run = parse_arguments(
        ["--preset", "smoke", "--preset", "paper", "--model_name_or_path", "resnet18",
         "--model_name_or_path=legacy_xception", "--output_dir", "a", "--output_dir", "b"]
    )  # fmt: skip
    assert run.preset == "paper" and model.model_name_or_path == "legacy_xception" and model.freeze_backbone
    assert training.output_dir == "b" and training.num_train_epochs == 50


@pytest.mark.parametrize("flags, argv, bf16", [
    ("fpu avx512f avx512_bf16", [], True), ("fpu amx_bf16 amx_tile", ["--preset", "demo"], True),
    ("fpu avx2 avx512f", [], False), (None, [], False), ("fpu avx512f avx512_bf16", ["--bf16", "false"], False),
    ("fpu avx512f avx512_bf16", ["--config", "{config}"], False),
    ("fpu avx2", ["--bf16", "true", "--channels_last", "false"], True),
])  # fmt: skip
def test_bf16_is_chosen_only_where_the_cpu_computes_in_it_natively_unless_a_layer_says(cpuinfo, tmp_path, flags, argv,
                                                                                       bf16):  # fmt: skip
    if torch.cuda.is_available():
        pytest.skip("with a GPU, the GPU's bf16 support decides")
    cpuinfo(flags)
    (tmp_path / "fp32.yaml").write_text("bf16: false\n")
    model, _, training, _ = parse_arguments([arg.format(config=tmp_path / "fp32.yaml") for arg in argv])
    assert training.bf16 is bf16 and training.mixed_precision == ("bf16" if bf16 else "no")
    assert model.channels_last is (bf16 and "--channels_last" not in argv)  # follows bf16 unless given
    assert training.use_cpu or not bf16  # what TrainingArguments asks of bf16 without a GPU


def test_bad_presets_and_config_files_are_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse_arguments(["--preset", "fast"])
    assert "invalid choice: 'fast'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        parse_arguments(preset="fast")
    (tmp_path / "typo.yaml").write_text("learning_rat: 0.1\n")
    with pytest.raises(ValueError, match=r"unknown arguments \['learning_rat'\] in the config file .*typo.yaml"):
        parse_arguments(["--config", str(tmp_path / "typo.yaml")])
    (tmp_path / "run.txt").write_text("x")
    with pytest.raises(ValueError, match="use a .yaml, .yml or .json file"):
        parse_arguments(["--config", str(tmp_path / "run.txt")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_arguments(["--config", str(tmp_path / "missing.json")])


def test_mse_loss_is_mesonets_squared_error_on_the_fake_probability():
    class Outputs:
        logits = torch.tensor([[10.0, -10.0], [-10.0, 10.0]])

    assert mse_loss(Outputs, torch.tensor([0, 1])).item() == pytest.approx(0.0, abs=1e-6)
    assert mse_loss(Outputs, torch.tensor([1, 0])).item() == pytest.approx(1.0, abs=1e-6)


# --- subsets for the paper's experiments ----------------------------------------------------------------


def _rows(reals=40, fakes_per_action=6):
    labels = [0] * reals + [1] * (fakes_per_action * len(ACTIONS))
    actions = [None] * reals + [a for a in ACTIONS for _ in range(fakes_per_action)]
    return labels, actions


def test_fake_count_subset_spreads_over_actions_and_matches_reals():
    labels, actions = _rows()
    kept = subset_indices(labels, actions, Subset(max_fake_videos=23), seed=1)
    kept_labels = np.asarray(labels)[kept]
    assert (kept_labels == 1).sum() == 23 and (kept_labels == 0).sum() == 23
    per_action = {a: sum(actions[i] == a for i in kept) for a in ACTIONS}
    assert set(per_action.values()) == {2, 3}
    assert np.array_equal(kept, subset_indices(labels, actions, Subset(max_fake_videos=23), seed=1))
    assert not np.array_equal(kept, subset_indices(labels, actions, Subset(max_fake_videos=23), seed=2))


def test_ratio_subset_thins_the_class_in_surplus():
    labels, actions = _rows(reals=60, fakes_per_action=6)  # 60 real, 60 fake
    kept = np.asarray(labels)[subset_indices(labels, actions, Subset(real_fake_ratio="1:4"), seed=0)]
    assert (kept == 1).sum() == 60 and (kept == 0).sum() == 15
    kept = np.asarray(labels)[subset_indices(labels, actions, Subset(real_fake_ratio="2:1"), seed=0)]
    assert (kept == 0).sum() == 60 and (kept == 1).sum() == 30
    with pytest.raises(ValueError, match="must look like '1:4'"):
        Subset(real_fake_ratio="many")


def test_single_action_subset_keeps_that_action_and_as_many_reals():
    labels, actions = _rows()
    kept = subset_indices(labels, actions, Subset(train_action="yaw"), seed=0)
    assert {actions[i] for i in kept if labels[i] == 1} == {"yaw"}
    assert sum(labels[i] == 0 for i in kept) == 6
    with pytest.raises(ValueError, match="unknown action 'jump'"):
        Subset(train_action="jump")
    with pytest.raises(ValueError, match="has 60 fakes"):
        subset_indices(labels, actions, Subset(max_fake_videos=61), seed=0)


def test_mixed_quality_gives_each_draw_a_random_quality(built_repo):
    mixed = load_split(str(built_repo), "mixed", "train")
    raw = load_split(str(built_repo), "raw", "train")
    assert quality_columns(mixed) == ["video_raw", "video_c23", "video_c40"] and len(mixed) == len(raw)
    seen = []
    mixer = MixedQualitySampler(lambda batch: seen.extend(batch["video"]) or batch, quality_columns(mixed),
                                torch.Generator().manual_seed(0))  # fmt: skip
    mixer.sampler.video_column = "video"
    rows = {column: [f"{column}:{i}" for i in range(200)] for column in quality_columns(mixed)}
    mixer(rows)
    assert {item.split(":")[0] for item in seen} == set(quality_columns(mixed))
    assert [int(item.split(":")[1]) for item in seen] == list(range(200))  # each row keeps its own video


class _RecordingSampler:
    """Stands in for a FrameSampler: records which quality's file each row was read from."""

    video_column = "video"

    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        self.seen.extend(video["path"].split("/")[0] for video in batch["video"])  # <quality>/<action>/<name>.mp4
        return batch


def test_mixed_quality_validation_reads_each_video_at_one_quality_balanced_by_class(built_repo):
    validation = load_split(str(built_repo), "mixed", "validation")
    recorder = _RecordingSampler()
    fixed = with_sampling(validation, recorder, fixed_quality=True)
    for row in range(len(fixed)):  # one epoch, a row at a time
        fixed[row]
    first = list(recorder.seen)
    recorder.seen.clear()
    fixed[:]  # another epoch, in one batch this time
    assert recorder.seen == first  # the same video at the same quality, however it is batched
    for label in (0, 1):
        qualities = [quality for quality, of in zip(first, validation["label"], strict=True) if of == label]
        counts = [qualities.count(q) for q in ("raw", "c23", "c40")]
        assert max(counts) - min(counts) <= 1, counts  # each quality a third of each class
    drawn = _RecordingSampler()
    randomly = with_sampling(validation, drawn)
    for _ in range(5):
        randomly[:]
    assert len(set(drawn.seen)) == 3 and drawn.seen[: len(first)] != drawn.seen[len(first) : 2 * len(first)]


def test_splits_are_loaded_once_per_build_and_anew_after_a_rebuild(tmp_path, release_copy):
    from dataset_script.build import BuildConfig, build

    source, out = release_copy(), tmp_path / "deepfake_mnist_plus"
    frame_counts = lambda: {n for split in SPLITS for n in load_split(str(out), "raw", split)["num_frames"]}  # noqa: E731
    build(BuildConfig(source=source, output_dir=out, qualities=("raw",), progress=False))
    assert frame_counts() == {8}
    train = load_split(str(out), "raw", "train")
    assert load_split(str(out), "raw", "train") is train  # the card is parsed once per build, not per call
    make_clip(source / "yaw" / "0000.mp4", frames=12, size=32, seed=99)
    build(BuildConfig(source=source, output_dir=out, qualities=("raw",), progress=False))  # rebuilt in place
    assert frame_counts() == {8, 12}  # the new build's rows, not the first build's, cached
    with pytest.raises(ValueError, match="identity-disjoint splits exist only where the build knew"):
        load_split(str(out), "raw", "identity_train")  # a release without a manifest has no source identities
    with pytest.raises(ValueError, match="has no split 'dev'; it has train, validation, test"):
        load_split(str(out), "raw", "dev")


# --- training -------------------------------------------------------------------------------------------


# One of each training path: MesoInception-4 (ours, MSE loss), Xception (frozen backbone, new head), a ResNet (the
# deeper ResNets take the same path; the next test builds each of them and runs it).
TRAINED_PAPER_MODELS = ["legacy_xception", "mesoinception4", "resnet50"]


def test_the_trained_models_cover_every_path_of_the_paper_models():
    paths = {name: parse_arguments(["--preset", "paper", "--model_name_or_path", name])[0] for name in PAPER_MODELS}
    path_of = lambda name: (paths[name].loss, paths[name].freeze_backbone, name.rstrip("0123456789"))  # noqa: E731
    assert {path_of(name) for name in TRAINED_PAPER_MODELS} == {path_of(name) for name in PAPER_MODELS}


@pytest.mark.parametrize("name", sorted(PAPER_MODELS))
def test_each_paper_model_builds_as_training_does_and_runs_forward(name):
    from training.train import build_detector

    model_args, _, _, _ = parse_arguments(["--preset", "paper", "--model_name_or_path", name, "--input_size", "64"])
    model, info = build_detector(model_args)
    assert info.name == name and name in PAPER_MODELS  # so the card records the paper's input size
    with torch.device("meta"):  # the names alone: no memory, no initialisation of 60M weights
        reference = timm.create_model(name, num_classes=2)
    assert model.state_dict().keys() == reference.state_dict().keys()
    trainable = {id(parameter) for parameter in model.parameters() if parameter.requires_grad}
    expected = model.get_classifier() if model_args.freeze_backbone else model  # the paper trains Xception's head only
    assert trainable == {id(parameter) for parameter in expected.parameters()}
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINED_PAPER_MODELS)
def test_each_paper_model_trains_a_step_on_the_smoke_mini(smoke_mini_repo, tmp_path, name):
    out = tmp_path / name
    main(["--preset", "paper", "--model_name_or_path", name, "--dataset_name", str(smoke_mini_repo), *TINY,
          "--max_steps", "1", "--per_device_train_batch_size", "2", "--frames_per_video", "2",
          "--eval_frames_per_video", "2", "--eval_strategy", "no", "--save_strategy", "no",
          "--load_best_model_at_end", "false", "--test_config_names", "none", "--output_dir", str(out)])  # fmt: skip
    state = timm.create_model(f"local-dir:{out}", pretrained=True).state_dict()
    initial = timm.create_model(name, num_classes=2).state_dict()
    assert state.keys() == initial.keys()
    assert "paper_input_size: " + str(PAPER_MODELS[name]) in (out / "README.md").read_text()


@pytest.mark.slow
def test_training_saves_a_detector_with_test_metrics_that_loads_in_transformers_and_timm(smoke_mini_repo, tmp_path):
    out = tmp_path / "meso"
    metrics = main(["--preset", "smoke", "--dataset_name", str(smoke_mini_repo), *TINY, "--output_dir", str(out),
                    "--num_train_epochs", "2", "--learning_rate", "0.003", "--eval_strategy", "epoch",
                    "--load_best_model_at_end", "true", "--metric_for_best_model", "frame_accuracy",
                    "--max_fake_videos", "8"])["test"]  # fmt: skip
    assert set(metrics) == {"raw"}
    assert set(metrics["raw"]) == {"frame_accuracy", "frame_auc", "video_accuracy", "video_auc", "eer", "ap"}
    assert {"model.safetensors", "config.json", "README.md", "results.json"} <= {p.name for p in out.iterdir()}
    card = (out / "README.md").read_text()
    assert "random weights" in card and "| raw |" in card and f"{metrics['raw']['video_auc']:.4f}" in card
    wrapped = AutoModelForImageClassification.from_pretrained(out).eval()
    reloaded = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    pixels = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(wrapped(pixel_values=pixels).logits, reloaded(pixels))
    assert wrapped.config.id2label == {0: "real", 1: "fake"}
    results = json.loads((out / "results.json").read_text())
    assert results["train_counts"]["real"] > 0 and results["test"]["raw"] == metrics["raw"]


def _train_command(repo: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(TRAIN_SCRIPT), "--preset", "smoke", "--dataset_name", str(repo), *TINY,
            "--output_dir", str(out), "--test_config_names", "none", *extra]  # fmt: skip


def test_one_seed_trains_one_detector_and_another_seed_another(smoke_mini_repo, tmp_path):
    """--seed fixes the new weights as well as the data's draws: two runs of one seed give the same detector (to a
    float tolerance: the same kernels on the same machine, which PyTorch does not promise bit-identical), another
    seed another detector. Unseeded, the model was made before the Trainer seeded anything."""

    def trained(seed: int, name: str) -> dict[str, torch.Tensor]:
        out = tmp_path / name
        main(_train_command(smoke_mini_repo, out, "--max_steps", "2", "--eval_strategy", "no", "--save_strategy",
                            "no", "--seed", str(seed))[2:])  # fmt: skip
        return load_file(out / "model.safetensors")

    first, again, other = trained(7, "first"), trained(7, "again"), trained(8, "other")
    assert first.keys() == again.keys() == other.keys()
    for key in first:
        torch.testing.assert_close(again[key], first[key], rtol=0, atol=1e-6, msg=f"{key} differs under one seed")
    assert max(float((other[key].float() - first[key].float()).abs().max()) for key in first) > 1e-2


@pytest.mark.slow
def test_the_decision_offset_moves_the_saved_head_and_only_the_head(built_repo, tmp_path):
    """--fit_decision_offset: one seed trains the same detector with and without it, and the saved weights differ
    by the recorded offset in the head's biases alone, fitted on validation clips at every quality."""

    def trained(name: str, *extra: str) -> tuple[dict[str, torch.Tensor], Path]:
        out = tmp_path / name
        main(_train_command(built_repo, out, "--max_steps", "2", "--eval_strategy", "no", "--save_strategy", "no",
                            "--seed", "3", *extra)[2:])  # fmt: skip
        return load_file(out / "model.safetensors"), out

    plain, _ = trained("plain")
    moved, out = trained("moved", "--fit_decision_offset", "true")
    offset = json.loads((out / "config.json").read_text())["decision_offset"]
    calibration = json.loads((out / "results.json").read_text())["calibration"]
    assert calibration["decision_offset"] == offset != 0
    assert "at raw, c23, c40" in calibration["offset_fitted_on"]
    changed = [key for key in plain if not torch.allclose(moved[key], plain[key], rtol=0, atol=1e-6)]
    assert len(changed) == 1 and changed[0].endswith("fc.bias"), changed  # MesoInception-4's classifier
    change = moved[changed[0]].double() - plain[changed[0]].double()
    assert float(change[1] - change[0]) == pytest.approx(-offset, abs=1e-5)  # fake minus real margin: down by it
    assert "Decision offset: the head's biases were moved by" in (out / "README.md").read_text()


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(smoke_mini_repo, tmp_path, caplog):
    out = tmp_path / "killed"
    slow = ["--max_steps", "12", "--save_strategy", "steps", "--save_steps", "2", "--eval_strategy", "no",
            "--per_device_train_batch_size", "2"]  # fmt: skip
    process = subprocess.Popen(_train_command(smoke_mini_repo, out, *slow), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 180
    while not (out / "checkpoint-4" / "trainer_state.json").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 3 minutes"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "model.safetensors").exists(), "the run finished before it could be killed"
    with pytest.raises(SystemExit, match="pass --resume"):  # train.py's main, in-process: the refusal comes first
        main(_train_command(smoke_mini_repo, out, *slow)[2:])
    with caplog.at_level(logging.INFO, logger="training.train"):  # the resume in-process: only the kill needs a process
        main(_train_command(smoke_mini_repo, out, *slow, "--resume", "true")[2:])
    assert f"resuming from {out / 'checkpoint-'}" in caplog.text
    first_logged_step = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())["log_history"][0]
    assert first_logged_step["step"] >= 1
    final = json.loads((out / "checkpoint-12" / "trainer_state.json").read_text())
    assert final["global_step"] == 12 and (out / "model.safetensors").exists()


@pytest.mark.slow
def test_two_processes_through_accelerate_on_cpu(smoke_mini_repo, tmp_path):
    out = tmp_path / "ddp"
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no",
               *_train_command(smoke_mini_repo, out, "--use_cpu", "true", "--eval_strategy", "no",
                               "--save_strategy", "epoch", "--max_fake_videos", "10")[1:]]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads(next(out.glob("checkpoint-*/trainer_state.json")).read_text())
    train_videos = json.loads((out / "results.json").read_text())["train_counts"]
    assert train_videos == {"real": 10, "fake": 10}  # the subset asked for, so that an epoch is short
    assert state["global_step"] == -(-20 // (4 * 2))  # two processes share each epoch: 3 steps, where one takes 5
    assert (out / "model.safetensors").exists()


@pytest.mark.slow
def test_push_to_hub_sends_the_finished_folder_to_a_stand_in_hub(smoke_mini_repo, tmp_path, monkeypatch):
    out = tmp_path / "pushed"
    with StandIn() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_TOKEN", "hf_stand_in_token")
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
        command = _train_command(smoke_mini_repo, out, "--max_steps", "1", "--push_to_hub", "true",
                                 "--hub_model_id", "lab/meso-smoke")  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
        assert result.returncode == 0, result.stderr[-3000:]
        stored = hub.repos["models/lab/meso-smoke"]
        assert {"model.safetensors", "config.json", "README.md"} <= set(stored)
        assert not any(name.startswith("checkpoint-") for name in stored)
        assert stored["model.safetensors"] == (out / "model.safetensors").read_bytes()
        assert "lab/meso-smoke" in stored["README.md"].decode()


@pytest.mark.slow
def test_mixed_quality_training_tests_on_each_quality(built_repo, tmp_path):
    out = tmp_path / "mixed"
    metrics = main(["--preset", "smoke", "--dataset_name", str(built_repo), "--dataset_config_name", "mixed", *TINY,
                    "--max_steps", "2", "--output_dir", str(out), "--eval_strategy", "no"])["test"]  # fmt: skip
    assert set(metrics) == {"raw", "c23", "c40"}
    assert "configuration `mixed`" in (out / "README.md").read_text()


def test_resume_skips_and_removes_a_checkpoint_that_a_kill_cut_short(tmp_path):
    from training.arguments import RunArguments
    from training.train import check_output_dir

    whole, cut = tmp_path / "checkpoint-2", tmp_path / "checkpoint-4"
    whole.mkdir()
    (whole / "trainer_state.json").write_text("{}")
    (whole / "model.safetensors").write_bytes(b"x")
    cut.mkdir()
    (cut / "model.safetensors").write_bytes(b"half")  # killed before the trainer state was written
    _, _, training, _ = parse_arguments(["--output_dir", str(tmp_path)])
    assert check_output_dir(training, RunArguments(resume=True)) == str(whole)
    assert not cut.exists()
    with pytest.raises(SystemExit, match="pass --resume true"):
        check_output_dir(training, RunArguments(resume=False))


# --- what the card says of the data, and calibration -------------------------------------------------------


@pytest.mark.slow
def test_the_card_says_the_mini_is_synthetic_and_records_a_fitted_temperature(smoke_mini_repo, tmp_path, cpuinfo):
    from huggingface_hub import ModelCard

    cpuinfo("fpu avx512f avx512_bf16")  # bf16 by default: the card must say so
    out = tmp_path / "calibrated"
    main(["--preset", "smoke", "--dataset_name", str(smoke_mini_repo), *TINY, "--output_dir", str(out),
          "--max_steps", "3", "--eval_strategy", "no", "--split_protocol", "identity", "--test_frames_per_video",
          "3"])  # fmt: skip
    card = ModelCard.load(out / "README.md")
    assert "Frames: 3 evenly spaced per video" in card.text  # the smoke preset's 4, overridden
    provenance = card.data.training_data
    assert provenance["kind"] == "synthetic_mini" and "contact_sheet.png" in provenance["evidence"]
    assert (provenance["config"], provenance["split_protocol"]) == ("raw", "identity")
    assert "its verdict on a real person's video means nothing" in card.text
    assert "- bf16: True" in card.text and "- precision: bf16 autocast, fp32 weights, channels_last" in card.text
    assert "- upload_augmentation: none" in card.text  # the smoke preset does not augment, and the card says so
    results = {(r.dataset_config, r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert ("raw", "identity_test", "video_auc") in results
    calibration = card.data.calibration
    config = json.loads((out / "config.json").read_text())
    # three steps leave the detector far from right on every validation frame, so a temperature fits
    assert config["calibration_temperature"] == pytest.approx(calibration["temperature"]) and calibration["temperature"]
    wrapped = AutoModelForImageClassification.from_pretrained(out)
    assert wrapped.config.calibration_temperature == pytest.approx(calibration["temperature"])
    # the build's face crop and the detector's own input transform travel with it, for the Space to apply
    recorded = json.loads((smoke_mini_repo / "build_info.json").read_text())["face_crop"]
    assert recorded and config["face_crop"] == recorded == card.data.preprocessing["face_crop"]
    assert FaceCropRecord.from_dict(config["face_crop"]).describe() in card.text
    assert {"input_size", "crop_pct", "mean", "std"} <= set(config["input_transform"])
    ece = calibration["test_ece"]["raw"]
    assert 0 <= ece["after"] <= 1 and 0 <= ece["before"] <= 1 and calibration["ece_bins"] == 15
    assert f"| raw | {ece['before']:.4f} | {ece['after']:.4f} |" in card.text
    assert "frames of the validation split `identity_validation`" in calibration["fitted_on"]
    timm.create_model(f"local-dir:{out}", pretrained=True)  # the extra config key does not upset timm


def test_the_mini_is_told_apart_from_a_release_build(built_repo, smoke_mini_repo, tmp_path):
    from generation.mini.generate import identity_names
    from training.model_card import GENERATED, MINI_IDENTITY, RELEASE, SYNTHETIC_MINI, UNKNOWN
    from training.model_card import describe_training_data as describe

    assert all(MINI_IDENTITY.fullmatch(name) for name in identity_names(1200))  # the card's marker tracks the mini
    assert describe(str(smoke_mini_repo), []).kind == SYNTHETIC_MINI
    assert describe(str(built_repo), load_split(str(built_repo), "raw", "train")["source_id"]).kind == RELEASE
    # a mini pushed to the Hub has no build records beside it: its rows' procedural people give it away
    assert describe("org/deepfake_mnist_plus", ["person003", "person011", ""]).kind == SYNTHETIC_MINI
    assert describe("org/deepfake_mnist_plus", ["id10001", "person003"]).kind == UNKNOWN
    generated = tmp_path / "generated"
    generated.mkdir()
    (generated / "manifest.csv").write_text("file,label,action,source_id,driving_id,seed\n")
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "build_info.json").write_text(json.dumps({"config": {"source": str(generated)}}))
    assert describe(str(tmp_path / "repo"), ["id10001"]).kind == GENERATED


def test_a_detector_trained_on_faceforensics_or_its_replica_is_described_as_such(tmp_path):
    from training.model_card import RELEASE, SYNTHETIC_MINI, ModelCard
    from training.model_card import describe_training_data as describe

    def build(name: str, layout: str, files: tuple[str, ...] = ()) -> str:
        source, repo = tmp_path / f"{name}_source", tmp_path / name
        source.mkdir()
        for file in files:
            (source / file).write_text("{}")
        repo.mkdir()
        (repo / "build_info.json").write_text(json.dumps({"config": {"source": str(source)}, "layout": layout}))
        return str(repo)

    release = describe(build("ffpp", "faceforensics"), ["000", "003"])
    assert (release.kind, release.dataset_title) == (RELEASE, "FaceForensics++")
    assert "is a FaceForensics++ release" in release.evidence
    replica = describe(build("celeb_replica", "celeb_df", ("replica.json",)), ["id0", "id1"])
    assert (replica.kind, replica.dataset_title) == (SYNTHETIC_MINI, "Celeb-DF-v2")  # the Space warns for it
    card = ModelCard(model_id="org/det", architecture="resnet50", input_size=224, crop_pct=1.0, init="imagenet",
                     dataset=str(tmp_path / "ffpp"), data_config="c23", split_protocol="paper", recipe={},
                     train_counts={"real": 1, "fake": 1}, test_metrics={"c23": {"video_auc": 0.9}},
                     training_data=release)  # fmt: skip
    assert "\n# org/det: a deepfake detector trained on FaceForensics++ (resnet50)\n" in card.render()
    assert card.eval_results()[0].dataset_name == "FaceForensics++" and "datasets" not in card.header()


def test_fine_tuning_a_saved_detector_keeps_its_crop_unless_told(tmp_path):
    from modeling import create_detector, save_detector
    from training.arguments import ModelArguments
    from training.train import build_detector

    model, info = create_detector("resnet10t", pretrained=False, input_size=64, crop_pct=0.5)
    save_detector(model, info, tmp_path / "saved")
    _, kept = build_detector(ModelArguments(model_name_or_path=str(tmp_path / "saved")))
    assert (kept.input_size, kept.crop_pct) == (64, 0.5)
    _, told = build_detector(ModelArguments(model_name_or_path=str(tmp_path / "saved"), crop_pct=1.0))
    assert told.crop_pct == 1.0
    _, fresh = build_detector(ModelArguments(model_name_or_path="resnet10t", pretrained="random", input_size=64))
    assert fresh.crop_pct == 1.0

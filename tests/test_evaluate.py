"""dmplus evaluate (training/evaluate_detector.py) and the `evaluate` module: the paper's protocol on the smoke
mini, the same numbers both ways."""

import json
from pathlib import Path

import evaluate
import numpy as np
import pytest

from dataset_script.schema import ACTIONS
from modeling import create_detector, save_detector
from training.evaluate_detector import METRIC_KEYS, main, metrics_table
from training.metrics import detection_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def detector_dir(tmp_path_factory):
    model, info = create_detector("mesoinception4_hp", input_size=64)
    return save_detector(model, info, tmp_path_factory.mktemp("detector"))


def test_evaluate_command_writes_every_metric_per_quality_and_action(smoke_mini_repo, detector_dir, tmp_path, capsys):
    # the command's own main, in-process (the same parser and code as `dmplus evaluate`)
    main(["--model_name_or_path", str(detector_dir), "--dataset_name", str(smoke_mini_repo),
          "--dataset_config_name", "raw", "--split", "test", "--output_dir", str(tmp_path / "eval"),
          "--frames_per_video", "4", "--no_progress"])  # fmt: skip
    printed = capsys.readouterr().out
    metrics = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert {"frame_accuracy", "frame_auc", "video_accuracy", "video_auc", "eer", "ap"} <= set(metrics)
    assert all(0.0 <= metrics[key] <= 1.0 for key in ("frame_accuracy", "video_auc", "eer", "ap"))
    assert set(metrics["per_action"]) == set(ACTIONS)
    assert metrics["per_quality"]["raw"]["videos"] == 20 and metrics["architecture"] == "mesoinception4_hp"
    assert "| raw |" in printed and "| yaw |" in printed


def test_evaluate_command_names_a_missing_model(smoke_mini_repo, tmp_path):
    # SystemExit with a message is what the interpreter prints, without a traceback, and exits non-zero on
    with pytest.raises(SystemExit) as exited:
        main(["--model_name_or_path", str(tmp_path / "nothing"), "--dataset_name", str(smoke_mini_repo)])
    assert isinstance(exited.value.code, str) and "no such folder" in exited.value.code


def test_the_evaluate_module_gives_the_same_numbers():
    metric = evaluate.load(str(ROOT / "training" / "deepfake_detection"))
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 0, 1, 1], 4)
    scores = np.clip(labels * 0.3 + rng.random(20) * 0.7, 0, 1)
    videos = np.repeat(np.arange(5), 4)
    got = metric.compute(predictions=scores.tolist(), references=labels.tolist(), video_ids=videos.tolist())
    assert got == pytest.approx(detection_metrics(labels, scores, videos))
    assert "video_auc" not in metric.compute(predictions=scores.tolist(), references=labels.tolist())


def test_the_metrics_table_shows_the_papers_metrics_in_percent():
    results = {"raw": {"frame_accuracy": 0.9125, "eer": None, "videos": 20, "per_action": {}},
               "yaw": {"frame_accuracy": 0.5, "fake_videos": 3}}  # fmt: skip
    header, rule, raw, yaw = metrics_table(results, "quality").splitlines()
    assert header == "| quality | " + " | ".join(METRIC_KEYS) + " |"  # counts and per_action are not columns
    assert rule.count("---") == 1 + len(METRIC_KEYS)
    assert raw == "| raw | 91.25 | - | - | - | - | - |"  # None and absent metrics alike are '-'
    assert yaw.startswith("| yaw | 50.00 | -")


def test_videos_that_several_splits_hold_are_scored_once_and_as_alone(built_repo, monkeypatch):
    import training.evaluation as evaluation
    from training.data import load_split

    model, info = create_detector("resnet10t", pretrained=False, input_size=64)
    cfg = info.pretrained_cfg(model)
    splits = {name: load_split(str(built_repo), name, "test") for name in ("raw", "raw-yaw", "raw-blink", "c23")}
    assert set(splits["raw-yaw"]["video_id"]) < set(splits["raw"]["video_id"])  # an action's rows are its quality's
    scored, predict = [], evaluation.predict
    monkeypatch.setattr(evaluation, "predict", lambda model, split, *a, **k: scored.append(len(split)) or
                        predict(model, split, *a, **k))  # fmt: skip
    together = evaluation.predict_splits(model, splits, cfg, frames_per_video=4, progress=False)
    assert scored == [len(splits["raw"]), len(splits["c23"])]  # the actions' clips were scored with raw's
    for name, split in splits.items():
        alone = predict(model, split, cfg, frames_per_video=4, progress=False)
        assert np.array_equal(together[name].video_index, alone.video_index), name
        assert np.array_equal(together[name].labels, alone.labels), name
        assert np.allclose(together[name].fake_probability, alone.fake_probability, atol=1e-5), name
        assert together[name].metrics() == pytest.approx(alone.metrics(), abs=1e-6), name


def test_scoring_under_bf16_autocast_keeps_float32_probabilities_close_to_fp32s(built_repo):
    """train.py scores its test split in bf16 when it trained in bf16: the metrics still see float32."""
    import torch

    from training.data import load_split
    from training.evaluation import predict

    torch.manual_seed(0)
    model, info = create_detector("resnet10t", pretrained=False, input_size=64)
    cfg, split = info.pretrained_cfg(model), load_split(str(built_repo), "raw", "test")
    fp32 = predict(model, split, cfg, frames_per_video=2, progress=False)
    bf16 = predict(model, split, cfg, frames_per_video=2, progress=False, autocast_dtype=torch.bfloat16)
    assert bf16.fake_probability.dtype == fp32.fake_probability.dtype == np.float32
    assert np.array_equal(bf16.labels, fp32.labels) and np.array_equal(bf16.video_index, fp32.video_index)
    assert np.allclose(bf16.fake_probability, fp32.fake_probability, atol=0.02)
    assert set(bf16.metrics()) == set(fp32.metrics())

"""Evaluate a detector with the paper's protocol: frame and video accuracy and AUC, EER, AP, per action and quality.

    dmplus evaluate --model_name_or_path M --dataset_name D --dataset_config_name C \\
        --split test --output_dir DIR

M is a saved detector folder or a Hub id; C may list several configurations (``raw,c23,c40``), each evaluated
on its own. Each video is scored on 32 evenly spaced frames (its score is their mean fake probability).
``DIR/evaluation.json`` holds the metrics of the first configuration at top level, then ``per_quality`` and
``per_action`` (each action's fakes against all the reals of the split); a markdown table is printed too.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import HfArgumentParser

from dataset_script.console import add_old_progress_switch, add_old_spelling, configure_logging
from dataset_script.files import write_text_atomically
from dataset_script.frames import VideoReadError, keep_freed_memory
from dataset_script.schema import ACTIONS, EVAL_FRAMES_PER_VIDEO, FAKE, REAL
from modeling import load_detector
from training.data import load_split, split_name
from training.evaluation import Predictions, predict
from training.metrics import THRESHOLD, SingleClassError
from training.records import package_versions
from training.tables import markdown_table

logger = logging.getLogger("training.evaluate_detector")

RESULTS_FILE = "evaluation.json"
METRIC_KEYS = ("frame_accuracy", "frame_auc", "video_accuracy", "video_auc", "eer", "ap")


@dataclass
class EvaluateArguments:
    model_name_or_path: str = field(metadata={"help": "a saved detector folder or a Hub id"})
    dataset_name: str = field(default="deepfake_mnist_plus", metadata={"help": "dataset repo folder or Hub id"})
    dataset_config_name: str = field(default="raw", metadata={"help": "one configuration or several, comma-separated"})
    split: str = field(default="test", metadata={"help": "train, validation or test"})
    split_protocol: str = field(default="paper", metadata={"help": "paper or identity"})
    output_dir: str | None = field(
        default=None, metadata={"help": f"write the metrics to {RESULTS_FILE} in this folder"}
    )
    frames_per_video: int = field(default=EVAL_FRAMES_PER_VIDEO, metadata={"help": "evenly spaced frames per video"})
    batch_size: int = field(default=4, metadata={"help": "videos per forward pass"})
    num_workers: int = field(default=0, metadata={"help": "DataLoader workers decoding videos"})
    device: str = field(default="cuda" if torch.cuda.is_available() else "cpu")
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast (GPUs)"})
    skip_unreadable: bool = field(default=False, metadata={"help": "count unreadable videos instead of stopping"})
    no_progress: bool = field(default=False, metadata={"help": "no progress bars"})


def per_action(predictions: Predictions, labels: np.ndarray, actions: list[str | None]) -> dict[str, dict]:
    """Each action's fakes against all the reals of the split (the paper's Figure 6 view)."""
    reals = np.flatnonzero(labels == REAL)
    results = {}
    for action in ACTIONS:
        fakes = np.asarray([i for i, a in enumerate(actions) if a == action and labels[i] == FAKE], dtype=np.int64)
        if len(fakes) == 0:
            continue
        try:
            results[action] = predictions.select_videos(np.concatenate([reals, fakes])).metrics()
        except SingleClassError:  # a split without reals: only accuracies are defined
            chosen = predictions.select_videos(fakes)
            results[action] = {"frame_accuracy": float((chosen.fake_probability >= THRESHOLD).mean())}
        results[action]["fake_videos"] = int(len(fakes))
    return results


def evaluate_config(model, info, args: EvaluateArguments, config: str) -> dict:
    dataset = load_split(args.dataset_name, config, split_name(args.split, args.split_protocol))
    predictions = predict(
        model, dataset, info.pretrained_cfg(model), args.frames_per_video, batch_size=args.batch_size,
        num_workers=args.num_workers, device=args.device, autocast_dtype=torch.bfloat16 if args.bf16 else None,
        on_error="skip" if args.skip_unreadable else "raise", progress=not args.no_progress, description=config,
    )  # fmt: skip
    metrics = predictions.metrics()
    metrics["videos"] = len(dataset) - predictions.skipped_videos
    metrics["unreadable_videos"] = predictions.skipped_videos
    metrics["per_action"] = per_action(predictions, np.asarray(dataset["label"]), dataset["action"])
    return metrics


def metrics_table(results: dict[str, dict], first_column: str) -> str:
    """The paper's metrics of each row in %; a row's other entries (video counts, per_action) are not columns."""
    percent = {name: {key: None if metrics.get(key) is None else 100 * metrics[key] for key in METRIC_KEYS}
               for name, metrics in results.items()}  # fmt: skip
    return "\n".join(markdown_table(percent, first_column, number_format=".2f"))


def evaluate(args: EvaluateArguments) -> dict:
    keep_freed_memory()
    model, info = load_detector(args.model_name_or_path)
    configs = [name.strip() for name in args.dataset_config_name.split(",") if name.strip()]
    per_quality = {config: evaluate_config(model, info, args, config) for config in configs}
    first = per_quality[configs[0]]
    result = {key: first[key] for key in METRIC_KEYS}
    result.update(
        model=args.model_name_or_path, architecture=info.name, input_size=info.input_size,
        dataset=args.dataset_name, split=args.split, split_protocol=args.split_protocol,
        frames_per_video=args.frames_per_video, per_quality=per_quality, per_action=first["per_action"],
        versions=package_versions(),
    )  # fmt: skip
    return result


def parse_args(argv: list[str] | None = None) -> tuple[EvaluateArguments, Path | None]:
    """The arguments, and where the metrics go: ``--output_dir``'s results file, or the deprecated ``--output``'s."""
    parser = HfArgumentParser(EvaluateArguments)
    add_old_spelling(parser, "--output", "--output_dir", dest="output_file")  # a JSON file, not a folder
    add_old_progress_switch(parser)
    args, *old = parser.parse_args_into_dataclasses(sys.argv[1:] if argv is None else argv)
    output_file = old[0].output_file if old else None
    if output_file is None and args.output_dir is not None:
        output_file = Path(args.output_dir) / RESULTS_FILE
    return args, None if output_file is None else Path(output_file)


def main(argv: list[str] | None = None) -> dict:
    args, output_file = parse_args(argv)
    configure_logging()
    try:
        result = evaluate(args)
    except (FileNotFoundError, ValueError, VideoReadError) as error:
        raise SystemExit(f"error: {error}") from error
    print(metrics_table(result["per_quality"], "quality"))
    for quality, metrics in result["per_quality"].items():
        print(f"\nper action ({quality}: that action's fakes against all reals)\n")
        print(metrics_table(metrics["per_action"], "action"))
    if output_file is not None:
        logger.info("wrote %s", write_text_atomically(output_file, json.dumps(result, indent=2)))
    return result


if __name__ == "__main__":
    main()

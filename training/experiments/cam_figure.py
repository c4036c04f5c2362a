"""The paper's Figure 7: class activation maps of a detector over fakes of each action, one row per action.

    python -m training.experiments.cam_figure --model_name_or_path DIR --dataset_name D --dataset_config_name raw \\
        --split test --output_dir figures

The figure is ``cam.png`` in ``--output_dir`` (the working folder by default).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from datasets import Video
from transformers import HfArgumentParser

from dataset_script.console import add_old_spelling, configure_logging
from dataset_script.frames import VideoFrames, evenly_spaced_indices, normalise_frames
from dataset_script.schema import ACTIONS, FAKE
from modeling import fake_probability, load_detector
from modeling.cam import class_activation_maps, overlay
from training.data import load_split, split_name
from training.records import save_figure_atomically

logger = logging.getLogger("training.experiments.cam_figure")

FIGURE_FILE = "cam.png"


@dataclass
class CamArguments:
    model_name_or_path: str = field(metadata={"help": "a saved detector folder or a Hub id"})
    dataset_name: str = field(default="deepfake_mnist_plus")
    dataset_config_name: str = field(default="raw")
    split: str = field(default="test")
    split_protocol: str = field(default="paper")
    frames_per_row: int = field(default=4, metadata={"help": "evenly spaced frames shown per action"})
    output_dir: str = field(default=".", metadata={"help": f"the figure is {FIGURE_FILE} in this folder"})


def action_rows(args: CamArguments) -> list[tuple[str, list[np.ndarray], list[float]]]:
    """For each action, the first fake of the split: frames with CAM overlays, and their fake probabilities."""
    model, info = load_detector(args.model_name_or_path)
    cfg = info.pretrained_cfg(model)
    dataset = load_split(args.dataset_name, args.dataset_config_name, split_name(args.split, args.split_protocol))
    dataset = dataset.cast_column("video", Video(decode=False))
    rows = []
    for action in ACTIONS:
        matches = [i for i, (label, a) in enumerate(zip(dataset["label"], dataset["action"], strict=True))
                   if label == FAKE and a == action]  # fmt: skip
        if not matches:
            continue
        video = VideoFrames(dataset[matches[0]]["video"])
        frames = video.read(evenly_spaced_indices(video.num_frames, args.frames_per_row))
        pixels = normalise_frames(frames, cfg)
        maps = class_activation_maps(model, pixels)
        with torch.no_grad():
            scores = fake_probability(model.eval()(pixels)).tolist()
        shown = _as_shown(pixels, cfg)
        rows.append((action, [overlay(f, m) for f, m in zip(shown, maps.numpy(), strict=True)], scores))
    if not rows:
        raise ValueError(f"no fakes in {args.dataset_name} ({args.dataset_config_name}, {args.split})")
    return rows


def _as_shown(pixels: torch.Tensor, cfg: dict) -> list[np.ndarray]:
    """The model's input (same crop and size) back to uint8 RGB for display."""
    mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1)
    std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1)
    pixels = (pixels * std + mean).clamp(0, 1) * 255
    return [frame.permute(1, 2, 0).round().to(torch.uint8).numpy() for frame in pixels]


def write_figure(rows, output: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(images) for _, images, _ in rows)
    figure, axes = plt.subplots(len(rows), columns, figsize=(2 * columns, 2 * len(rows)), squeeze=False)
    for row, (action, images, scores) in enumerate(rows):
        for column, axis in enumerate(axes[row]):
            axis.axis("off")
            if column < len(images):
                axis.imshow(images[column])
                axis.set_title(f"p(fake) {scores[column]:.2f}", fontsize=7)
        axes[row][0].text(-0.1, 0.5, action, transform=axes[row][0].transAxes, ha="right", va="center", fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return save_figure_atomically(figure, output)


def parse_args(argv: list[str] | None = None) -> tuple[CamArguments, Path | None]:
    """The arguments, and the deprecated ``--output``'s file where it was given (None: cam.png in --output_dir)."""
    parser = HfArgumentParser(CamArguments)
    add_old_spelling(parser, "--output", "--output_dir", dest="output_file")  # a PNG file, not a folder
    args, *old = parser.parse_args_into_dataclasses(sys.argv[1:] if argv is None else argv)
    return args, Path(old[0].output_file) if old else None


def cam_figure(args: CamArguments, path: Path | None = None) -> Path:
    """Draw the figure into ``path`` (default: cam.png in ``args.output_dir``) and return where it went."""
    title = (
        f"class activation maps (fake): {Path(args.model_name_or_path).name}, {args.dataset_config_name} {args.split}"
    )
    return write_figure(action_rows(args), path or Path(args.output_dir) / FIGURE_FILE, title)


def main(argv: list[str] | None = None) -> Path:
    args, output_file = parse_args(argv)
    configure_logging()
    try:
        path = cam_figure(args, output_file)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
    logger.info("wrote %s", path)
    return path


if __name__ == "__main__":
    main()

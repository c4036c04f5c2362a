"""Scoring a detector on a split with the paper's protocol: evenly spaced frames per video, fake probabilities,
frame and video metrics. ``train.py`` reports test metrics with it; ``evaluate.py`` is its command line.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
from datasets import Dataset
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from dataset_script.frames import FrameCache, FrameSampler, collate_frames
from dataset_script.schema import EVAL_FRAMES_PER_VIDEO
from modeling.transformers_wrapper import fake_probability, timm_model_of

from .data import with_sampling
from .metrics import detection_metrics


@dataclass
class Predictions:
    """Per frame: the video's row in the split, its label, and the fake probability."""

    video_index: np.ndarray
    labels: np.ndarray
    fake_probability: np.ndarray
    skipped_videos: int = 0

    def metrics(self) -> dict[str, float]:
        return detection_metrics(self.labels, self.fake_probability, self.video_index)

    def select_videos(self, rows: np.ndarray) -> Predictions:
        keep = np.isin(self.video_index, rows)
        return Predictions(self.video_index[keep], self.labels[keep], self.fake_probability[keep])


@torch.inference_mode()
def predict(
    model: nn.Module,
    dataset: Dataset,
    pretrained_cfg: dict,
    frames_per_video: int = EVAL_FRAMES_PER_VIDEO,
    batch_size: int = 4,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    decoder: str = "torchcodec",
    on_error: str = "raise",
    progress: bool = True,
    description: str = "scoring",
    frame_cache: FrameCache | None = None,
    sampler: FrameSampler | None = None,
) -> Predictions:
    """Fake probabilities of ``frames_per_video`` evenly spaced frames of every video of ``dataset``. ``sampler``
    reads the frames instead of the one made from the arguments above (the robustness experiment's perturbed
    frames); its own frame count, decoder, error policy and cache apply."""
    inner = timm_model_of(model)
    device = torch.device(device or next(inner.parameters()).device)
    inner.eval().to(device)
    if sampler is None:
        sampler = FrameSampler(pretrained_cfg, frames_per_video, train=False, decoder=decoder, on_error=on_error,
                               cache=frame_cache)  # fmt: skip
    loader = DataLoader(with_sampling(dataset, sampler), batch_size=batch_size, num_workers=num_workers,
                        collate_fn=collate_frames, shuffle=False)  # fmt: skip
    indices, labels, scores, skipped, offset = [], [], [], 0, 0
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
    )
    with tqdm(total=len(dataset), desc=description, unit="video", disable=not progress) as bar:
        for batch in loader:
            videos_in_batch = min(batch_size, len(dataset) - offset)
            skipped += int(batch["num_skipped"])
            if batch["pixel_values"].numel():
                with autocast:
                    logits = inner(batch["pixel_values"].to(device))
                scores.append(fake_probability(logits).cpu().numpy())
                labels.append(batch["labels"].numpy())
                # video_index counts kept rows of this batch; map it back to rows of the split
                kept_rows = _kept_rows(batch, offset)
                indices.append(kept_rows[batch["video_index"].numpy()])
            offset += videos_in_batch
            bar.update(videos_in_batch)
    if not scores:
        raise ValueError("no video of the split could be read: nothing to score")
    return Predictions(np.concatenate(indices), np.concatenate(labels), np.concatenate(scores), skipped)


def predict_splits(
    model: nn.Module, splits: dict[str, Dataset], pretrained_cfg: dict, **options
) -> dict[str, Predictions]:
    """``predict`` on each named split, every video scored once however many splits hold it: a per-action
    configuration's rows are the same clips as its quality's (that action's fakes and as many reals), so testing on
    a quality and its ten actions scores each clip once instead of up to eleven times. A video is known by its id
    and quality; the same clip, frames and model give the same scores."""
    scored: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}  # per video: frame labels and scores
    results = {}
    for name, split in splits.items():
        # a mixed-quality split has no one quality: its videos are its own
        qualities = split["quality"] if "quality" in split.column_names else [name] * len(split)
        keys = list(zip(split["video_id"], qualities, strict=True))
        new = [row for row, key in enumerate(keys) if key not in scored]
        if new:
            fresh = predict(model, split.select(new), pretrained_cfg, description=f"test {name}", **options)
            order = np.argsort(fresh.video_index, kind="stable")
            bounds = np.searchsorted(fresh.video_index[order], np.arange(len(new) + 1))
            for position, row in enumerate(new):
                frames = order[bounds[position] : bounds[position + 1]]
                scored[keys[row]] = fresh.labels[frames], fresh.fake_probability[frames]
        parts = [scored[key] for key in keys]
        results[name] = Predictions(
            np.concatenate([np.full(len(labels), row) for row, (labels, _) in enumerate(parts)]),
            np.concatenate([labels for labels, _ in parts]),
            np.concatenate([scores for _, scores in parts]),
        )
    return results


def _kept_rows(batch: dict, offset: int) -> np.ndarray:
    return offset + batch["kept_rows"].numpy()

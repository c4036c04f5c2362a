"""Does the mini pose the real problem? Shortcut probes, plain detectors per quality, and MTCNN's face rate.

    python -m benchmarks.mini_audit DATASET_DIR [--config raw] [--detector resnet10t] [--qualities raw,c23,c40]

* Shortcut probes, logistic regression on the identity split's train frames, scored on its test frames:
  - per-frame colour histograms must stay <= 0.65 test accuracy;
  - no single global statistic (the Laplacian's mean, its variance, mean gradient magnitude) may pass 0.75.
  If one does, the generator leaks the label through something other than what animation does to a frame.
* A plain detector (no high-pass input; resnet10t by default), trained with the demo's recipe on each quality's
  own data and tested on it: raw test video accuracy must reach 0.90, and accuracy must fall from raw to c23 to
  c40 with c40 still >= 0.70, the paper's shape (real FOMM artefacts live at the scales a generator works at and
  survive compression; a single-pixel pattern would not).
* facenet-pytorch's MTCNN must find exactly one face in >= 99% of frames (the pipeline and the Space crop faces).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from datasets import load_dataset
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dataset_script.frames import VideoFrames, evenly_spaced_indices

FRAMES_PER_VIDEO = 8


def load_frames(dataset_dir: str, config: str, split: str) -> tuple[torch.Tensor, np.ndarray]:
    """uint8 frames (N, 3, H, W) and labels, FRAMES_PER_VIDEO evenly spaced frames of each clip of the split."""
    rows = load_dataset(dataset_dir, config, split=split)
    frames, labels = [], []
    for row in rows:
        video = VideoFrames(row["video"])
        frames.append(video.read(evenly_spaced_indices(video.num_frames, FRAMES_PER_VIDEO)))
        labels += [row["label"]] * len(frames[-1])
    return torch.cat(frames), np.array(labels)


def colour_histograms(frames: torch.Tensor, bins: int = 8) -> np.ndarray:
    quantised = (frames.long() * bins // 256).clamp(0, bins - 1)
    index = (quantised[:, 0] * bins + quantised[:, 1]) * bins + quantised[:, 2]
    histograms = torch.stack([torch.bincount(i.flatten(), minlength=bins**3) for i in index]).float()
    return (histograms / histograms.sum(1, keepdim=True)).numpy()


def laplacian_statistics(frames: torch.Tensor) -> np.ndarray:
    grey = (frames.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    response = F.conv2d(grey, kernel).flatten(1)
    return torch.stack([response.mean(1), response.var(1)], 1).numpy()


def global_statistics(frames: torch.Tensor) -> dict[str, np.ndarray]:
    """One number per frame each: the Laplacian's mean and variance, and the mean gradient magnitude."""
    laplacian = laplacian_statistics(frames)
    grey = (frames.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    sharpness = ((grey[:, 1:, :-1] - grey[:, :-1, :-1]) ** 2 + (grey[:, :-1, 1:] - grey[:, :-1, :-1]) ** 2).sqrt()
    return {"Laplacian mean": laplacian[:, :1], "Laplacian variance": laplacian[:, 1:],
            "sharpness (mean gradient magnitude)": sharpness.flatten(1).mean(1, keepdim=True).numpy()}  # fmt: skip


def probe(name: str, train_x, train_y, test_x, test_y, limit: float = 0.65) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train_x, train_y)
    accuracy = float((model.predict(test_x) == test_y).mean())
    verdict = "ok" if accuracy <= limit else "SHORTCUT"
    print(f"  {name:<38} test accuracy {accuracy:.3f}  ({verdict}: must be <= {limit:.2f})", flush=True)
    return accuracy


def train_detectors(dataset_dir: str, model: str, qualities: list[str], scratch: Path) -> dict[str, dict]:
    """Each quality's own plain detector, with the demo's recipe, tested on that quality: {quality: metrics}."""
    root = Path(__file__).resolve().parents[1]
    results = {}
    for quality in qualities:
        out = scratch / f"{model}-{quality}"
        started = time.perf_counter()
        subprocess.run([sys.executable, "training/train.py", "--preset", "demo", "--model_name_or_path", model,
                        "--dataset_name", dataset_dir, "--dataset_config_name", quality, "--output_dir", str(out),
                        "--frame_cache_dir", str(scratch / "frame_cache"), "--report_to", "none",
                        "--disable_tqdm", "true"], cwd=root, check=True, capture_output=True)  # fmt: skip
        results[quality] = json.loads((out / "results.json").read_text())["test"][quality]
        metrics = results[quality]
        print(f"  {model} trained and tested on {quality:<4} frame accuracy {metrics['frame_accuracy']:.3f}, "
              f"video accuracy {metrics['video_accuracy']:.3f}, video AUC {metrics['video_auc']:.3f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    accuracies = [results[q]["video_accuracy"] for q in qualities]
    if "raw" in results:
        raw = results["raw"]["video_accuracy"]
        print(f"  raw video accuracy {raw:.3f} ({'ok' if raw >= 0.90 else 'LOW'}: must be >= 0.90)")
    if qualities == ["raw", "c23", "c40"]:
        shape = accuracies[0] >= accuracies[1] >= accuracies[2] and accuracies[2] >= 0.70
        print(f"  raw >= c23 >= c40 with c40 >= 0.70: {' >= '.join(f'{a:.3f}' for a in accuracies) } "
              f"({'ok' if shape else 'NOT THE PAPER SHAPE'})")  # fmt: skip
    return results


def mtcnn_rate(frames: torch.Tensor, limit: int = 400) -> float:
    from facenet_pytorch import MTCNN

    detector = MTCNN(keep_all=True, device="cpu")
    chosen = frames[torch.randperm(len(frames), generator=torch.Generator().manual_seed(0))[:limit]]
    exactly_one = 0
    for part in chosen.split(32):
        boxes, _ = detector.detect(part.permute(0, 2, 3, 1).numpy())
        exactly_one += sum(1 for b in boxes if b is not None and len(b) == 1)
    rate = exactly_one / len(chosen)
    verdict = "ok" if rate >= 0.99 else "LOW"
    print(f"  MTCNN finds exactly one face in {rate:.1%} of {len(chosen)} frames ({verdict}: must be >= 99%)")
    return rate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a dataset repo built from the mini (python -m dataset_script.build)")
    parser.add_argument("--config", default="raw", help="the configuration the probes and MTCNN look at")
    parser.add_argument("--split_protocol", default="identity", choices=["identity", "paper"])
    parser.add_argument("--detector", default="resnet10t", help="a plain timm model for the detector check")
    parser.add_argument("--qualities", default="raw,c23,c40", help="qualities to train a detector on; 'none' skips")
    parser.add_argument("--scratch", type=Path, help="where detectors are trained (default: a temporary folder)")
    args = parser.parse_args(argv)
    prefix = "identity_" if args.split_protocol == "identity" else ""
    train_frames, train_y = load_frames(args.dataset, args.config, f"{prefix}train")
    test_frames, test_y = load_frames(args.dataset, args.config, f"{prefix}test")
    print(f"{args.dataset} [{args.config}, {args.split_protocol} split]: {len(train_y)} train and {len(test_y)} test "
          f"frames ({FRAMES_PER_VIDEO} per clip), fake share {test_y.mean():.2f}", flush=True)  # fmt: skip
    probe("colour histograms (512 bins), logistic", colour_histograms(train_frames), train_y,
          colour_histograms(test_frames), test_y)  # fmt: skip
    train_statistics, test_statistics = global_statistics(train_frames), global_statistics(test_frames)
    for name in train_statistics:
        probe(f"{name}, logistic", train_statistics[name], train_y, test_statistics[name], test_y, limit=0.75)
    mtcnn_rate(torch.cat([train_frames, test_frames]))
    if args.qualities != "none":
        with tempfile.TemporaryDirectory(prefix="mini-audit-") as temporary:
            scratch = args.scratch or Path(temporary)
            train_detectors(args.dataset, args.detector, args.qualities.split(","), scratch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

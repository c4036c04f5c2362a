"""Does the mini pose the real problem? Shortcut probes, a small CNN, and MTCNN's face-detection rate.

    python -m benchmarks.mini_audit DATASET_DIR [--config raw] [--cnn-seconds 180]

* Two shortcut probes that must stay near chance (<= 65% test accuracy): logistic regression on per-frame colour
  histograms, and on per-frame mean and variance of the Laplacian. If either separates real from fake, the
  generator leaks the label through something other than what animation does to a frame.
* A small CNN trained for a few minutes, to show the task can be learned at all.
* facenet-pytorch's MTCNN must find exactly one face in >= 90% of frames (the pipeline and the Space crop faces).
"""

from __future__ import annotations

import argparse
import time

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


def probe(name: str, train_x, train_y, test_x, test_y) -> float:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(train_x, train_y)
    accuracy = float((model.predict(test_x) == test_y).mean())
    print(f"  {name:<38} test accuracy {accuracy:.3f}  ({'ok' if accuracy <= 0.65 else 'SHORTCUT'}: must be <= 0.65)")
    return accuracy


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        channels = [3, 16, 32, 64, 96]
        self.features = torch.nn.Sequential(*[
            layer
            for c_in, c_out in zip(channels, channels[1:], strict=False)
            for layer in (torch.nn.Conv2d(c_in, c_out, 3, padding=1), torch.nn.BatchNorm2d(c_out), torch.nn.ReLU(),
                          torch.nn.MaxPool2d(2))
        ])  # fmt: skip
        self.head = torch.nn.Linear(channels[-1], 2)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def train_small_cnn(train_frames, train_y, test_frames, test_y, seconds: float, size: int = 128) -> float:
    torch.manual_seed(0)
    # Native pixels (a centre crop of the face), not a resize: resizing would blur away the fine traces
    # a generator leaves, which is what a detector has to find.
    offset = (train_frames.shape[-1] - size) // 2
    prepare = lambda f: f[..., offset : offset + size, offset : offset + size].float() / 127.5 - 1  # noqa: E731
    x_train, x_test = prepare(train_frames), prepare(test_frames)
    y_train = torch.tensor(train_y)
    model = SmallCNN()
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        for batch in torch.randperm(len(x_train)).split(64):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
            if time.perf_counter() - started >= seconds:
                break
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(part).argmax(1) for part in x_test.split(256)]).numpy()
    accuracy = float((predictions == test_y).mean())
    print(f"  small CNN, {steps} steps in {seconds:.0f} s, {size}px centre crops  test frame accuracy {accuracy:.3f}")
    return accuracy


def mtcnn_rate(frames: torch.Tensor, limit: int = 400) -> float:
    from facenet_pytorch import MTCNN

    detector = MTCNN(keep_all=True, device="cpu")
    chosen = frames[torch.randperm(len(frames), generator=torch.Generator().manual_seed(0))[:limit]]
    exactly_one = 0
    for part in chosen.split(32):
        boxes, _ = detector.detect(part.permute(0, 2, 3, 1).numpy())
        exactly_one += sum(1 for b in boxes if b is not None and len(b) == 1)
    rate = exactly_one / len(chosen)
    print(f"  MTCNN finds exactly one face in {rate:.1%} of {len(chosen)} frames ({'ok' if rate >= 0.9 else 'LOW'})")
    return rate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="a dataset repo built from the mini (python -m dataset_script.build)")
    parser.add_argument("--config", default="raw")
    parser.add_argument("--cnn-seconds", type=float, default=180)
    args = parser.parse_args(argv)
    train_frames, train_y = load_frames(args.dataset, args.config, "train")
    test_frames, test_y = load_frames(args.dataset, args.config, "test")
    print(f"{args.dataset} [{args.config}]: {len(train_y)} train and {len(test_y)} test frames "
          f"({FRAMES_PER_VIDEO} per clip), fake share {test_y.mean():.2f}")  # fmt: skip
    probe("colour histograms (512 bins), logistic", colour_histograms(train_frames), train_y,
          colour_histograms(test_frames), test_y)  # fmt: skip
    probe("Laplacian mean and variance, logistic", laplacian_statistics(train_frames), train_y,
          laplacian_statistics(test_frames), test_y)  # fmt: skip
    train_small_cnn(train_frames, train_y, test_frames, test_y, args.cnn_seconds)
    mtcnn_rate(torch.cat([train_frames, test_frames]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

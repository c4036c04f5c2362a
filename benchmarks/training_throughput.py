"""Training throughput: frames per second through the Trainer with the real data pipeline (video decoding, frame
sampling, collation, DataLoader worker) against the same model's bare forward/backward/step loop on pre-made
tensors, with the same batch, optimiser and threads, in one run. Target ratio >= 0.85.

Each light-model setting runs twice: decoding every clip each time it is drawn, and reading a FrameCache (filled
once before timing, as the first epoch fills it in training; `--frame_cache_dir`, what `make demo` uses).

python -m benchmarks.training_throughput [--dataset DIR] [--config raw] [--steps 30]

Without --dataset it uses demo_output/deepfake_mnist_plus when `make demo` has built it, and otherwise generates
and builds the smoke mini (raw only) in a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from datasets import Video
from transformers import Trainer, TrainerCallback, TrainingArguments

from dataset_script.frames import FrameCache, FrameSampler, keep_freed_memory
from modeling import create_detector, wrap
from training.data import load_split, with_sampling
from training.train import frames_and_labels

SETTINGS = [
    # (model, input size, crop_pct, videos per batch, frames per video, frame cache): the demo's model at the
    # paper's 64 frames a step, decoding and cached; the same model taking more frames from each decoded clip; a
    # paper model. On a CPU the decoding
    # worker and the model share the same cores, so a light model pays for decoding in its own time; a heavy one
    # barely notices.
    ("mesoinception4_hp", 128, 0.5, 4, 16, False),
    ("mesoinception4_hp", 128, 0.5, 4, 16, True),
    ("mesoinception4_hp", 128, 0.5, 2, 32, False),
    ("resnet50", 224, 1.0, 2, 8, False),
]


class StepTimer(TrainerCallback):
    """Wall time of the steps after the first few (start-up, worker spawn and allocator warm-up excluded)."""

    def __init__(self, skip: int):
        self.skip, self.started, self.ended = skip, None, None

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.skip:
            self.started = time.perf_counter()
        self.ended = time.perf_counter()


def fill_cache(dataset, cfg: dict, cache: FrameCache) -> None:
    for source in dataset.cast_column("video", Video(decode=False))["video"]:
        cache.frames(source, cfg)


def trainer_frames_per_second(dataset, name, size, crop, videos, frames, steps, skip, workers, out,
                              cache: FrameCache | None) -> float:  # fmt: skip
    model, info = create_detector(name, pretrained=False, input_size=size, crop_pct=crop)
    cfg = info.pretrained_cfg(model)
    if cache is not None:
        fill_cache(dataset, cfg, cache)
    timer = StepTimer(skip)
    args = TrainingArguments(output_dir=str(out), max_steps=steps + skip, per_device_train_batch_size=videos,
                             dataloader_num_workers=workers, dataloader_persistent_workers=workers > 0,
                             save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True,
                             remove_unused_columns=False, dataloader_pin_memory=False, logging_strategy="no",
                             optim="adamw_torch", seed=0)  # fmt: skip
    sampled = with_sampling(dataset, FrameSampler(cfg, frames, train=True, cache=cache))
    trainer = Trainer(model=wrap(model, info), args=args, train_dataset=sampled, data_collator=frames_and_labels,
                      callbacks=[timer])  # fmt: skip
    trainer.train()
    return steps * videos * frames / (timer.ended - timer.started)


def bare_frames_per_second(
    name,
    size,
    crop,
    videos,
    frames,
    steps,
    skip,
    device: str = "cpu",
    autocast_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> float:
    """The model's own forward/backward/step loop on tensors already in place (on ``device``; with
    ``autocast_dtype`` and ``channels_last`` as the Trainer's --bf16 and train.py's --channels_last set them)."""
    model, info = create_detector(name, pretrained=False, input_size=size, crop_pct=crop)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    wrapped = wrap(model, info).to(device, memory_format=layout).train()
    optimiser = torch.optim.AdamW(wrapped.parameters(), lr=5e-5, fused=False)
    pixels = torch.randn(videos * frames, 3, size, size, device=device).contiguous(memory_format=layout)
    labels = torch.randint(0, 2, (videos * frames,), device=device)
    for step in range(steps + skip):
        if step == skip:
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        with torch.autocast(torch.device(device).type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = wrapped(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return steps * videos * frames / (time.perf_counter() - started)


def default_dataset(work: Path) -> Path:
    demo = Path("demo_output/deepfake_mnist_plus")
    if (demo / "README.md").exists():
        return demo
    from dataset_script.build import BuildConfig, build
    from generation.mini.generate import SIZES, generate

    generate(work / "mini", SIZES["smoke"], seed=0, progress=False)
    return build(BuildConfig(source=work / "mini", out=work / "deepfake_mnist_plus", qualities=("raw",),
                             progress=False))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--config", default="raw")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of the Trainer run")
    args = parser.parse_args(argv)
    keep_freed_memory()  # as train.py does
    with tempfile.TemporaryDirectory(prefix="dfmp-bench-train-") as work:
        dataset_dir = args.dataset or default_dataset(Path(work))
        dataset = load_split(str(dataset_dir), args.config, "train")
        print(f"training throughput on {dataset_dir} ({args.config}, {len(dataset)} train videos), "
              f"{torch.get_num_threads()} threads, {args.workers} DataLoader worker(s)")  # fmt: skip
        for name, size, crop, videos, frames, cached in SETTINGS:
            steps = args.steps if name.startswith("mesoinception4") else max(4, args.steps // 5)
            cache = FrameCache(Path(work) / "frame_cache") if cached else None
            bare = bare_frames_per_second(name, size, crop, videos, frames, steps, skip=3)
            run_dir = Path(work) / f"{name}-{frames}"
            through_trainer = trainer_frames_per_second(dataset, name, size, crop, videos, frames, steps, 3,
                                                        args.workers, run_dir, cache)  # fmt: skip
            # the bare loop again, after: the faster of the two is the baseline (a conservative ratio)
            bare = max(bare, bare_frames_per_second(name, size, crop, videos, frames, steps, skip=3))
            source = "frame cache" if cached else "decoding"
            print(f"  {name:<17} {size}px, batch {videos}x{frames} frames, {source:<11}: Trainer "
                  f"{through_trainer:6.1f} img/s, bare loop {bare:6.1f} img/s, ratio {through_trainer / bare:.2f} "
                  "(target >= 0.85)")  # fmt: skip


if __name__ == "__main__":
    main()

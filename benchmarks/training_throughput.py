"""Training throughput: frames per second through the Trainer with the real data pipeline (video decoding, frame
sampling, collation, DataLoader worker) against the same model's bare forward/backward/step loop on pre-made
tensors, with the same batch, optimiser and threads, in one run. Target ratio >= 0.85.

Each light-model setting runs twice: decoding every clip each time it is drawn, and reading a FrameCache (filled
once before timing, as the first epoch fills it in training; `--frame_cache_dir`, what `make demo` uses).

The precision part trains the demo's model with the demo's batch, augmentation and frame cache in fp32 and in bf16
(autocast, as train.py picks it on CPUs with native bf16), each with and without channels_last, through the bare
loop and through the Trainer; target: bf16 in <= 0.5 of fp32's time. It prints the CPU's kind and flags, and the
share of the bf16 peak (a large matrix product's GFLOP/s, measured in the same run) that a training step reaches.

python -m benchmarks.training_throughput [--dataset DIR] [--config raw] [--steps 30] [--parts pipeline,precision]

Without --dataset it uses demo_output/deepfake_mnist_plus when `make demo` has built it, and otherwise generates
and builds the smoke mini (raw only) in a temporary folder.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from datasets import Video
from torch.utils.flop_counter import FlopCounterMode
from transformers import Trainer, TrainerCallback, TrainingArguments

from benchmarks.common import cpu_kind, matmul_peak, timed
from dataset_script.frames import FrameCache, FrameSampler, keep_freed_memory
from dataset_script.hardware import cpu_has_native_bf16
from modeling import create_detector, wrap
from training.arguments import PRESETS
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


def fill_cache(dataset, cfg: dict | None, cache: FrameCache) -> None:
    for source in dataset.cast_column("video", Video(decode=False))["video"]:
        cache.frames(source, cfg)


def trainer_frames_per_second(dataset, name, size, crop, videos, frames, steps, skip, workers, out,
                              cache: FrameCache | None, augment: bool = False, bf16: bool = False,
                              channels_last: bool = False) -> float:  # fmt: skip
    """Frames per second through the Trainer, with the data pipeline and ``--bf16``/``--channels_last`` as train.py
    sets them up."""
    model, info = create_detector(name, pretrained=False, input_size=size, crop_pct=crop)
    cfg = info.pretrained_cfg(model)
    if cache is not None:
        fill_cache(dataset, None if augment else cfg, cache)  # augmenting reads whole crops: the cache keeps those
    timer = StepTimer(skip)
    args = TrainingArguments(output_dir=str(out), max_steps=steps + skip, per_device_train_batch_size=videos,
                             dataloader_num_workers=workers, dataloader_persistent_workers=workers > 0,
                             save_strategy="no", eval_strategy="no", report_to=[], disable_tqdm=True,
                             remove_unused_columns=False, dataloader_pin_memory=False, logging_strategy="no",
                             optim="adamw_torch", seed=0, bf16=bf16,
                             use_cpu=bf16 and not torch.cuda.is_available())  # fmt: skip
    sampled = with_sampling(dataset, FrameSampler(cfg, frames, train=True, cache=cache, augment=augment))
    wrapped = wrap(model, info)
    if channels_last:
        wrapped = wrapped.to(memory_format=torch.channels_last)
    trainer = Trainer(model=wrapped, args=args, train_dataset=sampled, data_collator=frames_and_labels,
                      callbacks=[timer])  # fmt: skip
    trainer.train()
    return steps * videos * frames / (timer.ended - timer.started)


def training_step(name, size, crop, batch, device: str = "cpu", autocast_dtype: torch.dtype | None = None,
                  channels_last: bool = False) -> Callable[[], None]:  # fmt: skip
    """The model's own forward/backward/optimiser step on a batch already in place (on ``device``; with
    ``autocast_dtype`` and ``channels_last`` as the Trainer's --bf16 and train.py's --channels_last set them)."""
    model, info = create_detector(name, pretrained=False, input_size=size, crop_pct=crop)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    wrapped = wrap(model, info).to(device, memory_format=layout).train()
    optimiser = torch.optim.AdamW(wrapped.parameters(), lr=5e-5, fused=False)
    pixels = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=layout)
    labels = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        with torch.autocast(torch.device(device).type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            loss = wrapped(pixel_values=pixels, labels=labels).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()

    return step


def bare_frames_per_second(name, size, crop, videos, frames, steps, skip, device: str = "cpu",
                           autocast_dtype: torch.dtype | None = None,
                           channels_last: bool = False) -> float:  # fmt: skip
    """Frames per second of ``training_step`` over ``steps`` steps after ``skip`` unmeasured ones."""
    step = training_step(name, size, crop, videos * frames, device, autocast_dtype, channels_last)
    for index in range(steps + skip):
        if index == skip:
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
        step()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return steps * videos * frames / (time.perf_counter() - started)


def one_thread_cpu_seconds(work: Callable[[], object], repeats: int = 4) -> float:
    """The least CPU time ``work()`` takes on one thread, after a first call: unlike wall time, barely changed by
    what a busy machine's other processes do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        work()
        return timed(work, repeats, clock=time.thread_time)
    finally:
        torch.set_num_threads(threads)


def step_gflop(name: str, size: int, crop: float, batch: int) -> float:
    """GFLOP of one training step's forward and backward passes (``torch.utils.flop_counter``)."""
    model, info = create_detector(name, pretrained=False, input_size=size, crop_pct=crop)
    wrapped = wrap(model, info).train()
    with FlopCounterMode(display=False) as counter:
        pixels, labels = torch.randn(batch, 3, size, size), torch.zeros(batch, dtype=torch.long)
        wrapped(pixel_values=pixels, labels=labels).loss.backward()
    return counter.get_total_flops() / 1e9


PRECISIONS = {
    # label: (autocast dtype, channels_last), as train.py's --bf16 and --channels_last set them up
    "fp32": (None, False),
    "fp32 channels_last": (None, True),
    "bf16": (torch.bfloat16, False),
    "bf16 channels_last": (torch.bfloat16, True),
}


def compare_cpu_time(dataset, cache: FrameCache, labels: list[str]) -> None:
    """The demo's step in each precision of ``labels`` in CPU time on one thread, beside the DataLoader worker's
    work for it (an augmented batch, from ``cache`` as the Trainer runs filled it), as both share the cores."""
    demo = PRESETS["demo"]
    name, size, crop = demo["model_name_or_path"], demo["input_size"], demo["crop_pct"]
    videos, frames = demo["per_device_train_batch_size"], demo["frames_per_video"]
    model, info = create_detector(name, pretrained=False, input_size=size, crop_pct=crop)
    sampled = with_sampling(dataset, FrameSampler(info.pretrained_cfg(model), frames, train=True, cache=cache,
                                                  augment=demo["augment"]))  # fmt: skip
    rows = itertools.cycle(range(len(sampled)))
    batch = one_thread_cpu_seconds(lambda: frames_and_labels([sampled[next(rows)] for _ in range(videos)]))
    step = {label: one_thread_cpu_seconds(training_step(name, size, crop, videos * frames, "cpu", *PRECISIONS[label]))
            for label in labels}  # fmt: skip
    shares = [f"{label} {(value + batch) / (step['fp32'] + batch):.2f}" for label, value in step.items()
              if label != "fp32"]  # fmt: skip
    print("  CPU time a step on one thread: " + ", ".join(f"{label} {value * 1e3:.0f} ms" for label, value in
                                                          step.items())
          + f"; an augmented batch {batch * 1e3:.0f} ms; with it, of fp32's CPU time: " + ", ".join(shares)
          )  # fmt: skip


def compare_precisions(dataset, work: Path, steps: int, workers: int) -> None:
    """The demo's training step in fp32 and bf16, each with and without channels_last: the bare loop (each setting
    twice, interleaved, best kept), then the Trainer with the demo's data pipeline in fp32 and in what train.py
    picks here."""
    demo = PRESETS["demo"]
    name, size, crop = demo["model_name_or_path"], demo["input_size"], demo["crop_pct"]
    videos, frames, skip = demo["per_device_train_batch_size"], demo["frames_per_video"], 3
    native = cpu_has_native_bf16()
    # a CPU without native bf16 multiplies bf16 in PyTorch's reference loops: minutes for numbers that mean nothing
    labels = [label for label, (dtype, _) in PRECISIONS.items() if native or dtype is None]
    print(f"the demo's training ({name}, {size}px, crop {crop}, {videos}x{frames} frames a step, augmented, frame "
          f"cache) on {cpu_kind()}; train.py picks {'bf16 channels_last' if native else 'fp32'} here")  # fmt: skip
    bare = dict.fromkeys(labels, 0.0)
    for _ in range(2):
        for label in labels:
            dtype, channels_last = PRECISIONS[label]
            measured = bare_frames_per_second(name, size, crop, videos, frames, steps, skip, autocast_dtype=dtype,
                                              channels_last=channels_last)  # fmt: skip
            bare[label] = max(bare[label], measured)
    print("  bare loop: " + ", ".join(f"{label} {value:.1f}" for label, value in bare.items()) + " img/s")
    cache = FrameCache(work / "frame_cache_whole_crops")
    through_trainer = {}
    for label in [label for label in ("fp32", "fp32 channels_last", "bf16 channels_last") if label in labels]:
        dtype, channels_last = PRECISIONS[label]
        through_trainer[label] = trainer_frames_per_second(
            dataset, name, size, crop, videos, frames, steps, skip, workers, work / f"precision-{len(through_trainer)}",
            cache, augment=demo["augment"], bf16=dtype is not None, channels_last=channels_last,
        )  # fmt: skip
    compare_cpu_time(dataset, cache, labels)
    fastest = max(through_trainer, key=through_trainer.get)
    print("  Trainer:   " + ", ".join(f"{label} {value:.1f}" for label, value in through_trainer.items())
          + f" img/s: {fastest} takes {through_trainer['fp32'] / through_trainer[fastest]:.2f} of fp32's time"
          + (" (target <= 0.5)" if native else ""))  # fmt: skip
    peaks = {"fp32": matmul_peak(torch.float32), **({"bf16": matmul_peak(torch.bfloat16)} if native else {})}
    work_per_frame = step_gflop(name, size, crop, videos * frames) / (videos * frames)
    best, peak = ("bf16 channels_last", peaks["bf16"]) if native else ("fp32", peaks["fp32"])
    reached = {"bare loop": bare[best] * work_per_frame, "Trainer": through_trainer[best] * work_per_frame}
    print(f"  {best} reaches " + ", ".join(f"{value:.0f} GFLOP/s in the {where}" for where, value in reached.items())
          + f" ({work_per_frame:.2f} GFLOP a frame, forward and backward); the machine's peak (matrix product) "
          + ", ".join(f"{key} {value:.0f}" for key, value in peaks.items()) + " GFLOP/s: "
          + " and ".join(f"{value / peak:.0%}" for value in reached.values())
          + f" of the {'bf16' if native else 'fp32'} peak")  # fmt: skip


def default_dataset(work: Path) -> Path:
    demo = Path("demo_output/deepfake_mnist_plus")
    if (demo / "README.md").exists():
        return demo
    from dataset_script.build import BuildConfig, build
    from generation.mini.generate import SIZES, generate

    generate(work / "mini", SIZES["smoke"], seed=0, progress=False)
    return build(BuildConfig(source=work / "mini", output_dir=work / "deepfake_mnist_plus", qualities=("raw",),
                             progress=False))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path)
    parser.add_argument("--config", default="raw")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of the Trainer run")
    parser.add_argument("--parts", default="pipeline,precision",
                        help="pipeline (Trainer against the bare loop per model), precision (fp32 against bf16)"
                        )  # fmt: skip
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    keep_freed_memory()  # as train.py does
    with tempfile.TemporaryDirectory(prefix="dfmp-bench-train-") as work:
        dataset_dir = args.dataset or default_dataset(Path(work))
        dataset = load_split(str(dataset_dir), args.config, "train")
        print(f"training throughput on {dataset_dir} ({args.config}, {len(dataset)} train videos), "
              f"{torch.get_num_threads()} threads, {args.workers} DataLoader worker(s)")  # fmt: skip
        for name, size, crop, videos, frames, cached in SETTINGS if "pipeline" in parts else []:
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
        if "precision" in parts:
            compare_precisions(dataset, Path(work), args.steps, args.workers)


if __name__ == "__main__":
    main()

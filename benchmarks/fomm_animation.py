"""FOMM animation speed: frames per second of our animation (source keypoints and features once, phase
upsampling, many driving frames per pass on GPUs, inference mode) against the demo's per-frame loop (one driving
frame per pass, the source encoded every frame), same weights and inputs, in one run.

* CPU (always): both fp32; target ratio >= 1.25, outputs within 1e-4.
* GPU (when there is one, or ``--device cuda``): the per-frame loop in fp32 against ours batched in bf16 with
  channels_last; target ratio >= 10, PSNR of the bf16 frames against fp32 >= 40 dB.

python -m benchmarks.fomm_animation [--frames 8] [--batch N] [--gpu_frames 64]

The official checkpoint cannot be downloaded here, so both run on the same seeded random weights, with batch-norm
statistics calibrated on random frames so the frames compared have content: the speed does not depend on the
values.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from generation.fomm import AnimationOptions, animate, build_vox256
from generation.fomm.animate import per_frame_reference
from generation.fomm.checkpoint import calibrate_batch_norm


def _timed(function, device: torch.device) -> tuple[float, torch.Tensor]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    out = function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, out


def compare(device: torch.device, frames: int, options: AnimationOptions, repeats: int = 2) -> dict:
    """Best-of-``repeats`` fps of the per-frame loop (fp32) and of ``animate`` with ``options``, alternating so
    a slow spell of the machine hits both, and our fp32 batched output for the agreement checks."""
    torch.manual_seed(0)
    kp_detector, generator = build_vox256()
    calibrate_batch_norm(kp_detector, generator)  # frames with content, so the agreement means something
    kp_detector, generator = kp_detector.to(device), generator.to(device)
    ours_kp, ours_generator = kp_detector, generator
    if options.channels_last:  # a copy: the per-frame loop keeps the demo's default layout
        layout = torch.channels_last
        ours_kp, ours_generator = (copy.deepcopy(m).to(memory_format=layout) for m in (kp_detector, generator))
    source, driving = torch.rand(1, 3, 256, 256, device=device), torch.rand(frames, 3, 256, 256, device=device)
    animate(ours_kp, ours_generator, source, driving[:2], options)  # warm-up
    per_frame_reference(kp_detector, generator, source, driving[:1])
    timings: dict[str, list[float]] = {"per-frame loop": [], "ours": []}
    for _ in range(repeats):
        seconds, looped = _timed(lambda: per_frame_reference(kp_detector, generator, source, driving), device)
        timings["per-frame loop"].append(seconds)
        seconds, ours = _timed(lambda: animate(ours_kp, ours_generator, source, driving, options), device)
        timings["ours"].append(seconds)
    ours_fp32 = ours
    if options.autocast_dtype is not None:
        ours_fp32 = animate(kp_detector, generator, source, driving, AnimationOptions(batch_size=options.batch_size))
    fps = {name: frames / min(seconds) for name, seconds in timings.items()}
    return {"fps": fps, "ratio": fps["ours"] / fps["per-frame loop"], "looped": looped.float(), "ours": ours.float(),
            "ours_fp32": ours_fp32.float()}  # fmt: skip


def psnr(first: torch.Tensor, second: torch.Tensor) -> float:
    mse = float((first.clamp(0, 1) - second.clamp(0, 1)).pow(2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="driving frames on the CPU")
    parser.add_argument("--batch", type=int, default=None, help="driving frames per pass on the CPU (default 1)")
    parser.add_argument("--gpu_frames", type=int, default=64, help="driving frames on the GPU")
    parser.add_argument("--gpu_batch", type=int, default=16)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    if args.device in ("auto", "cpu"):
        result = compare(torch.device("cpu"), args.frames, AnimationOptions(batch_size=args.batch))
        difference = float((result["ours"] - result["looped"]).abs().max())
        spread = float(result["looped"].std())
        print(f"FOMM vox-256 animation on the CPU, {args.frames} driving frames at 256x256, "
              f"{torch.get_num_threads()} threads, fp32")  # fmt: skip
        print(f"  per-frame loop {result['fps']['per-frame loop']:.2f} fps, ours (batch {args.batch or 1}) "
              f"{result['fps']['ours']:.2f} fps, ratio {result['ratio']:.2f} (target >= 1.25); max difference "
              f"{difference:.1e} ({'ok' if difference <= 1e-4 else 'OVER 1e-4'}; frame std {spread:.3f})")  # fmt: skip
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        options = AnimationOptions(batch_size=args.gpu_batch, autocast_dtype=torch.bfloat16, channels_last=True)
        result = compare(torch.device("cuda"), args.gpu_frames, options)
        quality = psnr(result["ours"], result["ours_fp32"])
        difference = float((result["ours_fp32"] - result["looped"]).abs().max())
        print(f"FOMM vox-256 animation on {torch.cuda.get_device_name()}, {args.gpu_frames} driving frames")
        print(f"  per-frame loop fp32 {result['fps']['per-frame loop']:.1f} fps, ours bf16 batch {args.gpu_batch} "
              f"channels_last {result['fps']['ours']:.1f} fps, ratio {result['ratio']:.1f} (target >= 10); "
              f"PSNR bf16 vs fp32 {quality:.1f} dB (target >= 40); fp32 max difference {difference:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()

"""FOMM animation speed: frames per second of our animation (source keypoints and features once, phase
upsampling, many driving frames per pass on GPUs, inference mode, half precision where the hardware has it)
against the demo's per-frame loop (one driving frame per pass, the source encoded every frame, fp32), same weights
and inputs, in one run.

* CPU (always): ours in bf16 with channels_last on CPUs that compute in bf16 natively (AVX-512 BF16 or AMX), else
  fp32; target ratio >= 2.5, PSNR of ours against our fp32 >= 40 dB, and our fp32 within 1e-4 of the loop. It
  prints each network's GFLOP per frame (``torch.utils.flop_counter``) and the share of the machine's peak that
  ours reaches, the peak measured in the same run by a large fp32 and a large bf16 matrix product.
* GPU (when there is one, or ``--device cuda``): the per-frame loop in fp32 against ours batched in bf16 with
  channels_last; target ratio >= 10, PSNR of the bf16 frames against fp32 >= 40 dB.

python -m benchmarks.fomm_animation [--frames 8] [--batch N] [--cpu_precision auto|fp32|bf16] [--gpu_frames 64]

The official checkpoint cannot be downloaded here, so both run on the same seeded random weights, with batch-norm
statistics calibrated on random frames so the frames compared have content: the speed does not depend on the
values.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import matmul_peak
from generation.fomm import AnimationOptions, animate, build_vox256
from generation.fomm.animate import per_frame_reference
from generation.fomm.blocks import phase_upsampling
from generation.fomm.checkpoint import calibrate_batch_norm
from generation.precision import cpu_has_native_bf16, half_dtype, precision_name


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
    # fp32, one frame a pass: the loop's rounding exactly, so the agreement checks the algorithm (batches sum their
    # convolutions in another order, and the keypoints' sharp softmax grows that to 1e-3 on random weights)
    ours_fp32 = animate(kp_detector, generator, source, driving, AnimationOptions(batch_size=1))
    fps = {name: frames / min(seconds) for name, seconds in timings.items()}
    return {"fps": fps, "ratio": fps["ours"] / fps["per-frame loop"], "looped": looped.float(), "ours": ours.float(),
            "ours_fp32": ours_fp32.float()}  # fmt: skip


def frame_gflop() -> dict[str, float]:
    """GFLOP of each network for one more driving frame, as ``animate`` runs them (the source's work done once)."""
    kp_detector, generator = build_vox256()
    source, driving = torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256)
    with torch.inference_mode():
        kp_source, features = kp_detector(source), generator.encode(source)
        with FlopCounterMode(display=False) as keypoints:
            kp_driving = kp_detector(driving)
        with FlopCounterMode(display=False) as motion:
            generator.dense_motion_network(source, kp_driving, kp_source)
        with phase_upsampling(generator.up_blocks), FlopCounterMode(display=False) as whole:
            generator(source, kp_driving, kp_source, source_features=features)
    gflop = {"keypoint detector": keypoints.get_total_flops() / 1e9, "dense motion": motion.get_total_flops() / 1e9}
    gflop["bottleneck and decoder"] = whole.get_total_flops() / 1e9 - gflop["dense motion"]
    return gflop


def psnr(first: torch.Tensor, second: torch.Tensor) -> float:
    mse = float((first.clamp(0, 1) - second.clamp(0, 1)).pow(2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="driving frames on the CPU")
    parser.add_argument("--batch", type=int, default=None, help="driving frames per pass on the CPU (keypoints and "
                        f"dense motion; default {AnimationOptions.cpu_batch_size})")  # fmt: skip
    parser.add_argument("--cpu_precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="ours on the CPU; auto: bf16 where the CPU computes in it natively")  # fmt: skip
    parser.add_argument("--gpu_frames", type=int, default=64, help="driving frames on the GPU")
    parser.add_argument("--gpu_batch", type=int, default=16)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    if args.device in ("auto", "cpu"):
        cpu = torch.device("cpu")
        half = {"auto": half_dtype("bf16", cpu), "fp32": None, "bf16": torch.bfloat16}[args.cpu_precision]
        options = AnimationOptions(batch_size=args.batch, autocast_dtype=half, channels_last=half is not None)
        # a CPU without native bf16 multiplies bf16 in PyTorch's reference loops: 6 minutes for a peak of 0
        peaks = {"fp32": matmul_peak(torch.float32)}
        if cpu_has_native_bf16() or half is not None:
            peaks["bf16"] = matmul_peak(torch.bfloat16)
        result = compare(cpu, args.frames, options)
        difference = float((result["ours_fp32"] - result["looped"]).abs().max())
        spread = float(result["looped"].std())
        gflop = frame_gflop()
        precision = precision_name(half)
        reached = sum(gflop.values()) * result["fps"]["ours"]
        print(f"FOMM vox-256 animation on the CPU, {args.frames} driving frames at 256x256, "
              f"{torch.get_num_threads()} threads; ours in {precision}")  # fmt: skip
        print("  work per driving frame: " + ", ".join(f"{name} {value:.1f} GFLOP" for name, value in gflop.items())
              + (" (keypoints and dense motion in fp32 under bf16)" if half is not None else ""))  # fmt: skip
        batch = args.batch or options.cpu_batch_size
        print(f"  per-frame loop fp32 {result['fps']['per-frame loop']:.2f} fps, ours (batch {batch}, decoder 1) "
              f"{result['fps']['ours']:.2f} fps, ratio {result['ratio']:.2f} (target >= 2.5)")  # fmt: skip
        bf16_peak = f"{peaks['bf16']:.0f} GFLOP/s" if "bf16" in peaks else "not measured (this CPU has no native bf16)"
        print(f"  ours reaches {reached:.0f} GFLOP/s; the machine's peak (matrix product) fp32 {peaks['fp32']:.0f} "
              f"GFLOP/s, bf16 {bf16_peak}: {reached / peaks[precision if half else 'fp32']:.0%} of the "
              f"{precision if half else 'fp32'} peak")  # fmt: skip
        if half is not None:
            print(f"  PSNR {precision} vs fp32 {psnr(result['ours'], result['ours_fp32']):.1f} dB (target >= 40)")
        print(f"  our fp32 against the loop: max difference {difference:.1e} "
              f"({'ok' if difference <= 1e-4 else 'OVER 1e-4'}; frame std {spread:.3f})")  # fmt: skip
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

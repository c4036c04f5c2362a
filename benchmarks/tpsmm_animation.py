"""TPSMM animation speed: frames per second of our animation (the source's keypoints, encoder features and
downscaled image once, phase upsampling in the decoder and the occlusion branch, many driving frames per pass on
GPUs, inference mode) against the demo's per-frame loop (one driving frame per pass, the source's work redone every
frame), same weights and inputs, in one run.

* CPU (always): ours in bf16 with channels_last on CPUs that compute in bf16 natively (AVX-512 BF16 or AMX), else
  fp32, against the per-frame loop in fp32; target ratio >= 2.5 in bf16, PSNR of ours against our fp32 >= 40 dB,
  and our fp32 (one frame a pass, the loop's rounding) within 1e-4 of the loop. It prints the CPU's kind and flags.
* GPU (when there is one, or ``--device cuda``): the per-frame loop in fp32 against ours batched in bf16 with
  channels_last; PSNR of the bf16 frames against fp32 (target >= 40 dB, as FOMM's).

python -m benchmarks.tpsmm_animation [--frames 8] [--batch N] [--cpu_precision auto|fp32|bf16] [--size 256]
    [--gpu_frames 64]

The official checkpoint cannot be downloaded here, so both run on the same seeded random weights, with batch-norm
statistics calibrated on random frames so the frames compared have content: the speed does not depend on the
values. TPSMM's source-only work is a smaller share of a frame than FOMM's: the demo already detects the source's
keypoints once, and what it redoes every frame, the inpainting encoder, is about an eighth of a frame (its decoder
and dense motion dominate), so on the CPU in fp32 ours can be at most about 1.3 times as fast, less over few
frames; the rest of a bf16 gain is the bf16 convolutions' (2.2 times fp32's on AVX-512 BF16), so over few frames
the source's work weighs on the ratio.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import torch

from benchmarks.common import cpu_kind
from benchmarks.fomm_animation import _timed, psnr
from generation.precision import half_dtype, precision_name
from generation.tpsmm import AnimationOptions, animate, build_vox256
from generation.tpsmm.animate import per_frame_reference
from generation.tpsmm.checkpoint import calibrate_batch_norm


def compare(device: torch.device, frames: int, options: AnimationOptions, size: int = 256, repeats: int = 2) -> dict:
    """Best-of-``repeats`` fps of the per-frame loop (fp32) and of ``animate`` with ``options``, alternating so
    a slow spell of the machine hits both, and our fp32 output for the agreement checks."""
    torch.manual_seed(0)
    networks = build_vox256()
    calibrate_batch_norm(networks)  # keypoints spread over the frame, so the frames compared have content
    networks = networks.to(device)
    ours_networks = networks
    if options.channels_last:  # a copy: the per-frame loop keeps the demo's default layout
        ours_networks = copy.deepcopy(networks).to(memory_format=torch.channels_last)
    source = torch.rand(1, 3, size, size, device=device)
    driving = torch.rand(frames, 3, size, size, device=device)
    animate(ours_networks, source, driving[:2], options)  # warm-up
    per_frame_reference(networks, source, driving[:1])
    timings: dict[str, list[float]] = {"per-frame loop": [], "ours": []}
    for _ in range(repeats):
        seconds, looped = _timed(lambda: per_frame_reference(networks, source, driving), device)
        timings["per-frame loop"].append(seconds)
        seconds, ours = _timed(lambda: animate(ours_networks, source, driving, options), device)
        timings["ours"].append(seconds)
    # fp32, one frame a pass: the loop's rounding exactly, so the agreement checks the algorithm (batches sum their
    # convolutions in another order)
    ours_fp32 = animate(networks, source, driving, AnimationOptions(batch_size=1))
    fps = {name: frames / min(seconds) for name, seconds in timings.items()}
    return {"fps": fps, "ratio": fps["ours"] / fps["per-frame loop"], "looped": looped.float(), "ours": ours.float(),
            "ours_fp32": ours_fp32.float()}  # fmt: skip


@dataclass
class BenchmarkConfig:
    frames: int = field(default=8, metadata={"help": "driving frames on the CPU"})
    batch: int | None = field(default=None, metadata={"help": "driving frames per pass on the CPU through the "
                              f"keypoints and dense motion (default {AnimationOptions.cpu_batch_size})"})  # fmt: skip
    cpu_precision: Literal["auto", "fp32", "bf16"] = field(
        default="auto", metadata={"help": "ours on the CPU; auto: bf16 where the CPU computes in it natively"}
    )
    size: int = field(default=256, metadata={"help": "frame side on the CPU, a multiple of 128 (vox: 256)"})
    gpu_frames: int = field(default=64, metadata={"help": "driving frames on the GPU"})
    gpu_batch: int = 16
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def __post_init__(self):
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch sees no CUDA device here")
        if self.size % 128:
            raise SystemExit(f"--size {self.size}: TPSMM needs a multiple of 128")


def main(argv: list[str] | None = None) -> None:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(BenchmarkConfig, description=__doc__.split("\n\n")[0])
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    if args.device in ("auto", "cpu"):
        cpu = torch.device("cpu")
        half = {"auto": half_dtype("bf16", cpu), "fp32": None, "bf16": torch.bfloat16}[args.cpu_precision]
        options = AnimationOptions(batch_size=args.batch, autocast_dtype=half, channels_last=half is not None)
        result = compare(cpu, args.frames, options, args.size)
        difference = float((result["ours_fp32"] - result["looped"]).abs().max())
        precision, batch = precision_name(half), args.batch or options.cpu_batch_size
        print(f"TPSMM vox-256 animation on the CPU ({cpu_kind()}), {args.frames} driving frames at "
              f"{args.size}x{args.size}, {torch.get_num_threads()} threads; ours in {precision}")  # fmt: skip
        print(f"  per-frame loop fp32 {result['fps']['per-frame loop']:.3f} fps, ours (batch {batch}, inpainting 1) "
              f"{result['fps']['ours']:.3f} fps, ratio {result['ratio']:.2f}"
              + (" (target >= 2.5)" if half is not None else ""))  # fmt: skip
        if half is not None:
            print(f"  PSNR {precision} vs fp32 {psnr(result['ours'], result['ours_fp32']):.1f} dB (target >= 40); "
                  "keypoints, thin-plate solves and the motions' softmax in fp32")  # fmt: skip
        verdict = "ok" if difference <= 1e-4 else "OVER 1e-4"
        print(f"  our fp32 against the loop: max difference {difference:.1e} ({verdict}; frame std "
              f"{float(result['looped'].std()):.3f})")  # fmt: skip
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        options = AnimationOptions(batch_size=args.gpu_batch, autocast_dtype=torch.bfloat16, channels_last=True)
        result = compare(torch.device("cuda"), args.gpu_frames, options)
        difference = float((result["ours_fp32"] - result["looped"]).abs().max())
        print(f"TPSMM vox-256 animation on {torch.cuda.get_device_name()}, {args.gpu_frames} driving frames")
        print(f"  per-frame loop fp32 {result['fps']['per-frame loop']:.1f} fps, ours bf16 batch {args.gpu_batch} "
              f"channels_last {result['fps']['ours']:.1f} fps, ratio {result['ratio']:.1f}; PSNR bf16 vs fp32 "
              f"{psnr(result['ours'], result['ours_fp32']):.1f} dB (target >= 40); fp32 max difference "
              f"{difference:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()

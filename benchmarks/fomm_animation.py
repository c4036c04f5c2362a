"""FOMM animation speed: frames per second of our batched animation (source keypoints and features once, many
driving frames per forward pass, inference mode) against the demo's per-frame loop (one driving frame per pass,
the source encoded every frame), same weights and inputs, in one run on the CPU. Target ratio >= 1.25; the
outputs must agree within 1e-4 in fp32.

python -m benchmarks.fomm_animation [--frames 8] [--batch N]

The official checkpoint cannot be downloaded here, so both run on the same seeded random weights: the speed and
the agreement do not depend on the values.
"""

from __future__ import annotations

import argparse
import time

import torch

from generation.fomm import AnimationOptions, animate, build_vox256
from generation.fomm.animate import per_frame_reference


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=None, help="driving frames per pass (default: 1 on the CPU)")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    kp_detector, generator = build_vox256()
    source, driving = torch.rand(1, 3, 256, 256), torch.rand(args.frames, 3, 256, 256)
    options = AnimationOptions(batch_size=args.batch)
    batch = args.batch or 1
    animate(kp_detector, generator, source, driving[:2], options)  # warm-up
    timings = {"per-frame loop": [], "batched": []}
    for _ in range(2):  # alternate, so a slow spell of the machine hits both
        started = time.perf_counter()
        looped = per_frame_reference(kp_detector, generator, source, driving)
        timings["per-frame loop"].append(time.perf_counter() - started)
        started = time.perf_counter()
        batched = animate(kp_detector, generator, source, driving, options)
        timings["batched"].append(time.perf_counter() - started)
    fps = {name: args.frames / min(seconds) for name, seconds in timings.items()}
    difference = float((batched - looped).abs().max())
    print(f"FOMM vox-256 animation, {args.frames} driving frames at 256x256, {torch.get_num_threads()} threads")
    print(f"  per-frame loop {fps['per-frame loop']:.2f} fps, batched (batch {batch}) {fps['batched']:.2f} fps, "
          f"ratio {fps['batched'] / fps['per-frame loop']:.2f} (target >= 1.25); max difference {difference:.1e} "
          f"({'ok' if difference <= 1e-4 else 'OVER 1e-4'})")  # fmt: skip


if __name__ == "__main__":
    main()

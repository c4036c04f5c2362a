"""python -m generation.mini --out DIR --size {smoke,default,large} --seed N"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .generate import SIZES, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generation.mini",
        description="Make the synthetic mini DeepFake MNIST+ in the official release layout (offline, CPU).",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to write the release layout into")
    parser.add_argument("--size", choices=sorted(SIZES), default="default",
                        help="smoke: 7 identities x 16 frames; default: 20 x 48; large: 60 x 64")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives byte-identical videos")
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    generate(args.out, SIZES[args.size], seed=args.seed, workers=args.workers, progress=not args.no_progress)
    print(f"wrote the {args.size} mini to {args.out} in {time.perf_counter() - started:.1f} s "
          f"(contact sheet: {args.out / 'contact_sheet.png'})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

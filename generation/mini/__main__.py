"""python -m generation.mini --out DIR --size {smoke,default,large} --seed N"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from dataset_script.console import configure_logging

from .generate import SIZES, generate

logger = logging.getLogger("generation.mini")


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
    parser.add_argument("--no_progress", "--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    configure_logging()
    started = time.perf_counter()
    generate(args.out, SIZES[args.size], seed=args.seed, workers=args.workers, progress=not args.no_progress)
    logger.info("wrote the %s mini to %s in %.1f s (contact sheet: %s)", args.size, args.out,
                time.perf_counter() - started, args.out / "contact_sheet.png")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

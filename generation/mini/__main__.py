"""python -m generation.mini --output_dir DIR [--layout {dmplus,faceforensics,celeb_df,folders,dfdc}]
[--animator {keypoint,tps}] [--size ...] [--seed N]"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from dataset_script.console import add_old_spelling, configure_logging
from dataset_script.schema import QUALITIES

from .generate import ANIMATORS, SIZES, generate
from .replicas import write_celeb_df, write_dfdc, write_faceforensics, write_folders

logger = logging.getLogger("generation.mini")

LAYOUTS = ("dmplus", "faceforensics", "celeb_df", "folders", "dfdc")
SIZE_HELP = (
    "dmplus: smoke 7 identities x 16 frames, default 20 x 48, large 60 x 64; "
    "faceforensics: smoke 6 ids (3 pairs) x 12 frames of 192x144, default 40 ids (20 pairs) x 32 frames of "
    "320x256, four methods each; celeb_df: smoke 6 celebrities x 2 videos + 4 YouTube-real, 12 fakes, 12 frames of "
    "224x144, default 16 x 2 + 8, 64 fakes, 32 frames of 384x256; folders: smoke 6 people, 12 fakes, 12 frames of "
    "192x144, default 16 x 2 videos, 64 fakes, 32 frames of 320x256; dfdc: smoke 2 parts of 3 reals + 3 fakes, 12 "
    "frames of 256x144, default 4 parts of 5 + 10, 32 frames of 512x288"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m generation.mini",
        description="Make the synthetic mini DeepFake MNIST+ in the official release layout, or offline replicas "
        "of FaceForensics++ and Celeb-DF-v2 in theirs (synthetic people, offline, CPU).",
    )
    parser.add_argument("--output_dir", dest="out", type=Path, required=True,
                        help="folder to write the release layout into")  # fmt: skip
    parser.add_argument("--layout", choices=LAYOUTS, default="dmplus",
                        help="dmplus: the DeepFake MNIST+ mini (default); faceforensics, celeb_df, dfdc, folders: a "
                        "replica of that layout, full frames with the face off centre")  # fmt: skip
    parser.add_argument("--animator", choices=sorted(ANIMATORS), default="keypoint",
                        help="dmplus only: what makes the fakes, from the same plan (people, pairs, reals, seeds): "
                        "keypoint (default), FOMM's motion model; tps, thin-plate splines with TPSMM's occlusion "
                        "handling and decoder (method TPSMM), for tests on an unseen generator")  # fmt: skip
    parser.add_argument("--size", choices=sorted(SIZES), default="default", help=SIZE_HELP)
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives byte-identical videos")
    parser.add_argument("--qualities", nargs="+", choices=QUALITIES, default=list(QUALITIES),
                        help="faceforensics only: which qualities to write (c23, c40 are made from raw)")  # fmt: skip
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    add_old_spelling(parser, "--out", "--output_dir")
    add_old_spelling(parser, "--no-progress", "--no_progress")
    args = parser.parse_args(argv)
    if args.layout != "dmplus" and args.animator != "keypoint":
        parser.error("--animator is for --layout dmplus (the replicas make their own methods' fakes)")
    if args.layout != "dmplus" and args.size == "large":
        parser.error(f"--layout {args.layout} has the sizes smoke and default")
    if args.layout != "faceforensics" and sorted(args.qualities) != sorted(QUALITIES):
        parser.error("--qualities is for --layout faceforensics (the mini builds its qualities at build time, and "
                     "Celeb-DF-v2 ships one)")  # fmt: skip
    configure_logging()
    started = time.perf_counter()
    progress = not args.no_progress
    if args.layout == "faceforensics":
        write_faceforensics(args.out, args.size, args.seed, args.qualities, args.workers, progress)
    elif args.layout == "celeb_df":
        write_celeb_df(args.out, args.size, args.seed, args.workers, progress)
    elif args.layout in ("folders", "dfdc"):
        (write_folders if args.layout == "folders" else write_dfdc)(args.out, args.size, args.seed, args.workers,
                                                                    progress)  # fmt: skip
    else:
        generate(args.out, SIZES[args.size], seed=args.seed, workers=args.workers, progress=progress,
                 animator=args.animator)  # fmt: skip
        logger.info("wrote the %s mini (%s animator) to %s in %.1f s (contact sheet: %s)", args.size, args.animator,
                    args.out, time.perf_counter() - started, args.out / "contact_sheet.png")  # fmt: skip
        return 0
    logger.info("wrote the %s %s replica to %s in %.1f s", args.size, args.layout, args.out,
                time.perf_counter() - started)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

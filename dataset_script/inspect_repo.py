"""Load a built dataset repo and print its configurations and split sizes (the demo's check that it loads).

python -m dataset_script.inspect_repo DIR [--configs raw,c23-yaw]
"""

from __future__ import annotations

import argparse
import sys

from datasets import get_dataset_config_names, load_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataset_script.inspect_repo", description=__doc__.split("\n\n")[0])
    parser.add_argument("repo", help="a dataset repo folder (or a Hub id)")
    parser.add_argument("--configs", help="comma-separated configurations (default: all)")
    args = parser.parse_args(argv)
    names = args.configs.split(",") if args.configs else get_dataset_config_names(args.repo)
    print(f"{args.repo}: {len(names)} configurations")
    for name in names:
        dataset = load_dataset(args.repo, name)
        sizes = ", ".join(f"{split} {len(rows)}" for split, rows in dataset.items())
        print(f"  {name:<22} {sizes}")
    first = load_dataset(args.repo, names[0], split="test")[0]
    frames = first["video"].get_frames_at([0]).data  # the `video` column decodes to a torchcodec VideoDecoder
    print(f"decoded a {names[0]} test clip: frame shape {tuple(frames.shape[1:])}, label {first['label']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

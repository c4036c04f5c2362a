"""What the Space answers through its default (auto) framing on a built mini's identity-test clips.

    python -m benchmarks.space_verdicts [--dataset demo_output/deepfake_mnist_plus] [--model demo_output/detector]

Three groups: the released crops of real and of fake clips, and the whole-frame originals the real ones were cut
from (``full_frames/`` beside the mini, where the mini keeps them). For each: video accuracy, which framing the Space
took, and the range of fake scores. A measurement, not a test: a check costs about half a second on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

from dataset_script.release import FULL_FRAMES_FOLDER

from .common import raw_clips

SPACE = Path(__file__).resolve().parents[1] / "spaces" / "detector"


def test_clips(repo: Path, folder: Path, source: Path | None = None) -> dict[str, list[tuple[Path, str]]]:
    """Group name -> (clip, true label) of the identity-test split (the paper's split where the build made none);
    the released crops are written out of the repo's shards into ``folder`` unless the build kept them. The whole
    frames come from ``source`` (the mini the repo was built from; default: the source its build recorded)."""
    rows = list(csv.DictReader((repo / "splits.csv").open()))
    column = "identity_split" if any(row.get("identity_split") for row in rows) else "split"
    # the build records its source as it was given: a relative one is relative to where the build ran
    source = source or Path(json.loads((repo / "build_info.json").read_text())["config"]["source"])
    if not (source / FULL_FRAMES_FOLDER).is_dir():
        print(f"no {FULL_FRAMES_FOLDER}/ under {source}: no whole frames to try (give the mini with --mini)")
    groups: dict[str, list[tuple[Path, str]]] = {"real crops": [], "fake crops": [], "real whole frames": []}
    for label in ("real", "fake"):
        groups[f"{label} crops"] = [(clip, label) for clip in raw_clips(repo, folder, label=label, split="test")]
    for row in (row for row in rows if row[column] == "test"):
        original = source / FULL_FRAMES_FOLDER / row["source_file"]
        if row["label"] == "real" and original.is_file():
            groups["real whole frames"].append((original, "real"))
    return groups


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=Path("demo_output/deepfake_mnist_plus"))
    parser.add_argument("--model", default="demo_output/detector")
    parser.add_argument(
        "--mini",
        type=Path,
        help="the mini the dataset was built from, for its whole frames "
        "(default: the source in the dataset's build_info.json)",
    )
    args = parser.parse_args(argv)
    if not (args.dataset / "splits.csv").is_file():
        parser.error(f"{args.dataset} is not a built dataset (no splits.csv): give --dataset, the folder "
                     "dataset_script.build wrote (make demo's is demo_output/deepfake_mnist_plus)")  # fmt: skip
    sys.path.insert(0, str(SPACE))
    from clip_check import ClipChecker

    checker = ClipChecker([args.model], cam_frames=1)
    print("| clips | n | video accuracy | framing taken | fake score (min-max) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="space-verdicts-") as folder:
        for name, clips in test_clips(args.dataset, Path(folder), args.mini).items():
            if not clips:
                print(f"| {name} | 0 | - | - | - |")
                continue
            reports = [(checker.check(path), label) for path, label in clips]
            right = sum(report.verdict == label for report, label in reports) / len(reports)
            framings = dict(Counter(report.framing for report, _ in reports))
            scores = [report.fake_score for report, _ in reports]
            print(f"| {name} | {len(reports)} | {right:.3f} | {framings} | {min(scores):.2f}-{max(scores):.2f} |")


if __name__ == "__main__":
    main()

"""Inputs for ``generation/generate.py`` made from mini people, so the generation pipeline can be tried (and
tested, and benchmarked) offline: driving videos in action folders, some uncropped (the face in a larger frame,
off centre, as a camera would film it), and source faces as images and videos.

    python -m generation.mini.generation_inputs --output_dir generation_inputs
    python generation/generate.py --backend warp --sources generation_inputs/sources \\
        --driving generation_inputs/driving --output_dir generated
"""

from __future__ import annotations

import argparse
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from dataset_script.console import add_old_spelling, configure_logging
from dataset_script.release import FULL_FRAMES_FOLDER
from dataset_script.schema import ACTIONS

from ..motion import to_numpy_image
from .actions import source_pose
from .cast import identity_for
from .face import render
from .generate import ClipPlan, make_clip

logger = logging.getLogger(__name__)

UNCROPPED_PAD = "pad=480:360:200:70:gray"
"""Where an uncropped driving video's 256x256 picture sits: in a 480x360 frame, off centre."""


@dataclass
class GenerationInputs:
    root: Path
    driving: list[tuple[str, str]]
    """(action, identity) of each driving video: ``driving/<action>/<identity>.mp4``."""
    source_images: list[str]
    source_videos: list[str]

    @property
    def sources(self) -> list[str]:
        return self.source_images + self.source_videos


def write_generation_inputs(root: Path, actions: tuple[str, ...] = ("blink", "yaw"), source_images: int = 2,
                            source_videos: int = 1, frames: int = 12, uncropped: tuple[str, ...] = ("yaw",),
                            seed: int = 0) -> GenerationInputs:  # fmt: skip
    """One driving video per action (identities ``person001``...), then the sources' identities; the driving
    videos of the ``uncropped`` actions are padded into a larger frame. The videos' whole-frame originals are kept
    apart, in ``full_frames/``, so that ``driving/`` holds action folders only."""
    names = [f"person{index:03d}" for index in range(1, len(actions) + source_images + source_videos + 1)]
    driving = list(zip(actions, names, strict=False))
    images = names[len(actions) : len(actions) + source_images]
    videos = names[len(actions) + source_images :]
    for index, (action, name) in enumerate(driving):
        plan = ClipPlan(f"{action}/{name}.mp4", "real", action, name, "", seed * 1000 + 100 + index)
        make_clip(plan, root / "driving", seed, frames, room_per_clip=False,
                  originals=root / FULL_FRAMES_FOLDER / "driving")  # fmt: skip
        if action in uncropped:
            clip = root / "driving" / plan.file
            padded = clip.with_name(f".{clip.stem}.padded.mp4")
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(clip), "-vf", UNCROPPED_PAD,
                            "-c:v", "libx264", "-crf", "12", str(padded)], check=True)  # fmt: skip
            padded.replace(clip)
    (root / "sources").mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(images):
        pose = source_pose(torch.Generator().manual_seed(seed * 1000 + index))
        face = to_numpy_image(render(identity_for(name, seed), pose))[0]
        Image.fromarray(face).save(root / "sources" / f"{name}.png")
    for index, name in enumerate(videos):
        plan = ClipPlan(f"{name}.mp4", "real", "yaw", name, "", seed * 1000 + 7 + index)
        make_clip(plan, root / "sources", seed, 8, room_per_clip=False, originals=root / FULL_FRAMES_FOLDER / "sources")
    return GenerationInputs(root, driving, images, videos)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m generation.mini.generation_inputs",
                                     description=__doc__.split("\n\n")[0])  # fmt: skip
    parser.add_argument("--output_dir", dest="out", type=Path, required=True)
    add_old_spelling(parser, "--out", "--output_dir")
    parser.add_argument("--actions", default="blink,yaw", help="comma-separated actions, one driving video each")
    parser.add_argument("--source_images", type=int, default=2)
    parser.add_argument("--source_videos", type=int, default=1)
    parser.add_argument("--frames", type=int, default=12, help="frames per driving video")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    unknown = [action for action in args.actions.split(",") if action not in ACTIONS]
    if unknown:
        parser.error(f"--actions: unknown {', '.join(unknown)}; choose from {', '.join(ACTIONS)}")
    inputs = write_generation_inputs(args.out, tuple(args.actions.split(",")), args.source_images, args.source_videos,
                                     args.frames, seed=args.seed)  # fmt: skip
    configure_logging()
    logger.info("wrote %d driving videos and %d sources under %s", len(inputs.driving), len(inputs.sources), args.out)


if __name__ == "__main__":
    main()

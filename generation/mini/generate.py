"""Making the synthetic mini: real clips of procedural people performing the ten actions, and fakes that animate
one still frame of each person with another person's motion, written in the official release layout.

As DeepFake MNIST+ was made: each real clip is filmed as a whole frame and released as its face crop, and each fake
is animated from a cropped source frame (``filming``); the whole-frame originals are kept in ``full_frames/``.

Each identity films one real clip per action and is the source of one fake per action, so identity carries
no label. A fake's driver is another identity's real clip of the same action, chosen inside the source's
identity split (train/validation/test, as ``dataset_script.build`` deals them), so the identity-disjoint split
keeps test people out of training entirely. Every clip has its own seed: the same ``--seed`` gives
byte-identical videos, in any order and with any number of workers.

The fakes are made by one of ``ANIMATORS`` from the same plan: ``keypoint`` (the default, FOMM's motion model) or
``tps`` (thin-plate splines with TPSMM's occlusion handling and decoder), for tests on an unseen generator.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dataset_script.compression import default_workers
from dataset_script.face_crops import FACE_CROP_FILE
from dataset_script.files import write_text_atomically
from dataset_script.frames import keep_freed_memory
from dataset_script.release import FULL_FRAMES_FOLDER, ManifestRow, read_manifest, release_folder, write_manifest
from dataset_script.schema import ACTIONS
from dataset_script.splits import identity_split, stable_hash

from ..video import write_video
from .animate import animate, camera_jitter, generator_resynthesis, to_uint8_frames
from .cast import clip_seed, filmed_person, identity_for, identity_names, real_trajectory
from .filming import FPS, MINI_FACE_CROP, ORIGINAL_CRF, film_whole_frames, released_crop, source_frame, whole_frame_shot
from .sheet import write_contact_sheet
from .tps_animate import tps_animate


@dataclass(frozen=True)
class MiniSize:
    identities: int
    frames: int


SIZES = {
    "smoke": MiniSize(identities=7, frames=16),  # the least at which every split of every config is non-empty
    "default": MiniSize(identities=20, frames=48),
    "large": MiniSize(identities=60, frames=64),
}


@dataclass(frozen=True)
class Animator:
    animate: Callable[..., torch.Tensor]
    """(source image, source identity, source pose, driving identity, driving motion, camera jitter, generator,
    placement of the source's scene in its image) to the fake's frames (T, 3, H, W), floats in [0, 1] as released."""
    method: str
    """The manifest's method for its fakes; empty leaves the build's default (FOMM), as the mini has always had."""


def _keypoint_fake(source_image, source, pose, driver, motion, jitter, generator, placement) -> torch.Tensor:
    return generator_resynthesis(animate(source_image, source, pose, driver, motion, jitter, placement=placement),
                                 generator)  # fmt: skip


ANIMATORS = {"keypoint": Animator(_keypoint_fake, ""), "tps": Animator(tps_animate, "TPSMM")}


ClipPlan = ManifestRow
"""One video to make is one manifest row; a fake names its driver, a real clip of ``driving_id`` doing ``action``."""


def plan_clips(size: MiniSize, seed: int) -> list[ClipPlan]:
    """Every clip of the mini, with file names shuffled by seed so the paper split mixes identities."""
    names = identity_names(size.identities)
    groups: dict[str, list[str]] = {}
    for name, split in identity_split(names).items():
        groups.setdefault(split, []).append(name)
    plans = []
    for action in ACTIONS:
        for name in names:
            plans.append(ClipPlan("", "real", action, name, "", clip_seed(seed, "real", name, action)))
        for members in groups.values():
            members = sorted(members, key=lambda member: stable_hash(f"{seed}:{action}:{member}"))
            for index, name in enumerate(members):  # a cyclic shift: each real clip drives exactly one fake
                driver = members[(index + 1) % len(members)]
                plans.append(ClipPlan("", "fake", action, name, driver, clip_seed(seed, "fake", name, action)))
    reals = [plan for plan in plans if plan.label == "real"]
    folders = [(release_folder(None), reals)]
    folders += [
        (release_folder(action), [p for p in plans if p.label == "fake" and p.action == action]) for action in ACTIONS
    ]
    named = []
    for folder, members in folders:
        members = sorted(members, key=lambda p: stable_hash(f"{seed}:name:{p.label}:{p.action}:{p.source_id}"))
        named += [ClipPlan(f"{folder}/{i:05d}.mp4", p.label, p.action, p.source_id, p.driving_id, p.seed)
                  for i, p in enumerate(members)]  # fmt: skip
    return named


def make_clip(plan: ClipPlan, out: Path, seed: int, frames: int, animator: str = "keypoint",
              room_per_clip: bool = True, originals: Path | None = None) -> None:  # fmt: skip
    """Film (real) or animate (fake) one clip and encode it; a finished file is kept as is.

    A real clip is filmed as a whole frame, kept under ``originals`` (default: the release's ``full_frames/``) at
    the clip's own path, and released as its face crop (``filming``). ``room_per_clip`` films the person in the
    clip's own setting (``cast.filmed_person``); False keeps the person's first one, as the fixed offline generation
    inputs do."""
    target = out / plan.file
    if target.exists():
        return
    generator = torch.Generator().manual_seed(plan.seed)
    setting = plan.seed if room_per_clip else None
    if plan.label == "real":
        original = (out / FULL_FRAMES_FOLDER if originals is None else originals) / plan.file
        if not original.exists():  # kept from a run stopped before its crop was written
            person = filmed_person(plan.source_id, seed, setting)
            motion = real_trajectory(plan.source_id, plan.action, seed, frames)
            shot = whole_frame_shot(person, torch.Generator().manual_seed(clip_seed(plan.seed, "shot")))
            write_video(film_whole_frames(person, motion, shot, generator), original, FPS, ORIGINAL_CRF)
        write_video(released_crop(original).permute(0, 2, 3, 1).numpy(), target, FPS)
        return
    # the source frame is cut from a video of its own; of the driver only the motion's geometry is used
    source, driver = filmed_person(plan.source_id, seed, setting), identity_for(plan.driving_id, seed)
    still = source_frame(source, plan.seed, frames)
    motion = real_trajectory(plan.driving_id, plan.action, seed, frames)
    video = ANIMATORS[animator].animate(still.image, source, still.state, driver, motion,
                                        camera_jitter(frames, generator), generator, still.placement)  # fmt: skip
    write_video(to_uint8_frames(video), target, FPS)  # the generator's output: no camera noise


def _work(batch: list[ClipPlan], out: Path, seed: int, frames: int, animator: str) -> int:
    torch.set_num_threads(1)  # one clip per core: processes scale better than threads on small tensors
    keep_freed_memory()
    for plan in batch:
        make_clip(plan, out, seed, frames, animator)
    return len(batch)


def _check_animator(out: Path, animator: str) -> str:
    """The manifest method of ``animator``'s fakes; refuses a folder whose manifest says another animator made it."""
    if animator not in ANIMATORS:
        raise ValueError(f"unknown mini animator {animator!r}: choose one of {', '.join(ANIMATORS)}")
    method = ANIMATORS[animator].method
    made = {row.method for row in (read_manifest(out) or {}).values() if row.label == "fake"}
    if made and made != {method}:
        others = [name for name, other in ANIMATORS.items() if other.method in made]
        raise ValueError(
            f"{out} holds a mini made by the {', '.join(others) or 'another'} animator; a rerun only finishes "
            f"missing clips, so write the {animator} animator's mini to another --out folder"
        )
    return method


def generate(out: Path, size: MiniSize, seed: int = 0, workers: int | None = None, progress: bool = True,
             animator: str = "keypoint") -> Path:  # fmt: skip
    """Write the mini into ``out`` (release layout, manifest.csv, the face-crop record, the real clips' whole-frame
    originals in full_frames/, a contact sheet); reruns finish what is missing.

    ``animator`` (a name in ``ANIMATORS``) makes the fakes; reals, file names, pairs and seeds do not depend on it."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg was not found on PATH; install it (Debian/Ubuntu: apt-get install -y ffmpeg)")
    method = _check_animator(out, animator)
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_clips(size, seed)
    workers = workers or default_workers()
    batches = [plans[i :: workers * 8] for i in range(workers * 8)]
    with ProcessPoolExecutor(max_workers=workers) as pool, tqdm(
        total=len(plans), desc="mini clips", unit="clip", disable=not progress
    ) as bar:  # fmt: skip
        repeat = len(batches)
        settings = [out] * repeat, [seed] * repeat, [size.frames] * repeat, [animator] * repeat
        for done in pool.map(_work, batches, *settings):
            bar.update(done)
    # Real rows record the action the person performed; the dataset itself gives real clips no action.
    rows = [replace(p, method=method if p.label == "fake" else "") for p in plans]
    write_manifest(out, rows)
    write_text_atomically(out / FACE_CROP_FILE, json.dumps(MINI_FACE_CROP.as_dict()))  # the build copies it
    write_contact_sheet(out, plans, seed, size.frames)
    return out

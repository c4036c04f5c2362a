"""A DFDC replica in the layout of the DeepFake Detection Challenge's training parts:

    dfdc_train_part_N/<name>.mp4        ten lowercase letters a name, as DFDC's (aaqaifqrwn.mp4)
    dfdc_train_part_N/metadata.json     {"<name>.mp4": {"label": "REAL" | "FAKE", "split": "train",
                                                        "original": "<the real video's name>.mp4" | null}}

Each part films its own actors; a fake swaps another actor of the same part into a real video's frames and names
that video as its ``original``, as DFDC's do. DFDC's fakes come from several face-swap models it does not name:
here Deepfakes' and FaceSwap's manipulations, alternately. Landscape whole frames (16:9), x264 at CRF 23.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dataset_script.files import write_text_atomically
from dataset_script.splits import stable_hash

from .write import Clip, Fake, ReplicaSize, check_settings, settings_of, write_note, write_videos

METHODS = ("Deepfakes", "FaceSwap")
FPS = 30
CRF = 23
NAME_LETTERS = 10


@dataclass(frozen=True)
class DfdcSize:
    parts: int
    videos: ReplicaSize
    """Each part's: ``people`` actors, each filmed once, and ``sources_per_take`` fakes of each real video."""


SIZES = {
    "smoke": DfdcSize(2, ReplicaSize(frames=12, height=144, width=256, people=3)),
    "default": DfdcSize(4, ReplicaSize(frames=32, height=288, width=512, people=5, sources_per_take=2)),
}
"""smoke: 2 parts of 3 real videos and 3 fakes (12 videos), 12 frames of 256x144; default: 4 parts of 5 real
videos and 10 fakes (60 videos), 32 frames of 512x288."""


def video_name(seed: int, key: str) -> str:
    """Ten lowercase letters, fixed by ``key``, as DFDC names its videos."""
    number, letters = stable_hash(f"{seed}:dfdc-name:{key}"), []
    for _ in range(NAME_LETTERS):
        number, digit = divmod(number, 26)
        letters.append(chr(ord("a") + digit))
    return "".join(letters) + ".mp4"


def plan(size: DfdcSize, seed: int) -> dict[str, list[Clip]]:
    """The clips of each part folder: a real video of each of its actors, with fakes from the next actors' faces."""
    parts, videos = {}, size.videos
    if videos.people < 2:
        raise ValueError(f"a DFDC replica needs 2 actors a part at least (a fake takes another's face), not "
                         f"{videos.people}")  # fmt: skip
    for part in range(size.parts):
        actors = [f"dfdc-p{part}-a{index}" for index in range(videos.people)]
        clips = []
        for index, actor in enumerate(actors):
            take = f"{actor}_0000"
            real = f"dfdc_train_part_{part}/{video_name(seed, take)}"
            fakes = []
            for number in range(1, videos.sources_per_take + 1):
                source = actors[(index + number) % len(actors)]
                path = f"dfdc_train_part_{part}/{video_name(seed, f'{take}-{source}')}"
                fakes.append(Fake(path, METHODS[(index + number) % len(METHODS)], source, f"{source}_0000", FPS))
            clips.append(Clip(actor, take, FPS, real, tuple(fakes)))
        parts[f"dfdc_train_part_{part}"] = clips
    return parts


def metadata(clips: list[Clip]) -> dict[str, dict]:
    """A part's ``metadata.json``: each video's label, the challenge's ``split`` (train), a fake's original."""
    entries = {}
    for clip in clips:
        original = Path(clip.real).name
        entries[original] = {"label": "REAL", "split": "train", "original": None}
        for fake in clip.fakes:
            entries[Path(fake.path).name] = {"label": "FAKE", "split": "train", "original": original}
    return dict(sorted(entries.items()))


def write_dfdc(out: Path, size_name: str = "default", seed: int = 0, workers: int | None = None,
               progress: bool = True) -> Path:  # fmt: skip
    """Write (or finish) the DFDC replica of ``size_name`` in ``out``."""
    size = SIZES[size_name]
    videos = size.videos
    settings = {**settings_of("dfdc", size_name, videos, seed, None), "parts": size.parts}
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, settings)
    parts = plan(size, seed)
    write_videos(out, [clip for clips in parts.values() for clip in clips], videos, seed, None, CRF, workers,
                 progress)  # fmt: skip
    for part, clips in parts.items():
        write_text_atomically(out / part / "metadata.json", json.dumps(metadata(clips), indent=1) + "\n")
    write_note(
        out,
        "DFDC",
        f"""
Layout as the DeepFake Detection Challenge's training parts: {len(parts)} folders `dfdc_train_part_N/` of
{videos.people} real videos and {videos.people * videos.sources_per_take} fakes each, named by ten letters, and
each part's `metadata.json` mapping a video's name to its label (REAL or FAKE), the challenge's split (train) and a
fake's original (the real video whose frames it was made from). Every video is x264 at CRF 23, {videos.frames} frames of
{videos.width}x{videos.height} at {FPS} fps.""",
        settings,
    )
    return out

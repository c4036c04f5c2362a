"""A FaceForensics++ replica in the layout its download script writes:

    original_sequences/youtube/<q>/videos/NNN.mp4
    manipulated_sequences/<Method>/<q>/videos/TTT_SSS.mp4     (TTT's video, SSS's face or expressions)
    splits/train.json, splits/val.json, splits/test.json      (lists of id pairs, as the official split files)

for the four methods Deepfakes, Face2Face, FaceSwap, NeuralTextures and the qualities raw, c23, c40. As in the
real dataset, the ids are paired: a pair [a, b] gives the fakes a_b and b_a of every method, and the pair (both
originals and all their fakes) belongs to one split. The official files hold 360/70/70 pairs (720/140/140 of the
1,000 originals); the replica keeps those shares. Raw is rendered losslessly (FF++'s raw is lossless H.264);
c23 and c40 are made from raw with FF++'s own command (``dataset_script.compression``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from dataset_script.files import write_text_atomically
from dataset_script.schema import QUALITIES
from dataset_script.splits import stable_hash

from .write import Clip, Fake, ReplicaSize, check_settings, settings_of, write_note, write_videos

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
SPLIT_FILES = {"train": "train.json", "val": "val.json", "test": "test.json"}
SPLIT_SHARES = {"val": 70 / 500, "test": 70 / 500}
"""The official split files' shares of the pairs; the rest is train."""
RAW_CRF = 0
"""Lossless, as FaceForensics++'s raw videos are."""
FRAME_RATES = (25, 30)
"""The YouTube originals come at either; each replica video gets one, kept by its fakes."""

SIZES = {
    "smoke": ReplicaSize(frames=12, height=144, width=192, people=6),
    "default": ReplicaSize(frames=32, height=256, width=320, people=40),
}
"""smoke: 6 ids (3 pairs, split 1/1/1), 12 frames of 192x144, 30 videos per quality; default: 40 ids (20 pairs,
14/3/3), 32 frames of 320x256, 200 videos per quality."""


def video_ids(size: ReplicaSize) -> list[str]:
    if size.people < 6 or size.people % 2:
        raise ValueError(f"a FaceForensics++ replica needs an even number of at least 6 ids, not {size.people}")
    return [f"{index:03d}" for index in range(size.people)]


def id_pairs(size: ReplicaSize, seed: int) -> list[tuple[str, str]]:
    """The ids paired at random (by seed), each id in exactly one pair."""
    ids = sorted(video_ids(size), key=lambda name: stable_hash(f"{seed}:ffpp-pair:{name}"))
    return [(ids[i], ids[i + 1]) for i in range(0, len(ids), 2)]


def split_pairs(pairs: Sequence[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """train/val/test pairs in the official shares, val and test never empty."""
    val = max(1, round(len(pairs) * SPLIT_SHARES["val"]))
    test = max(1, round(len(pairs) * SPLIT_SHARES["test"]))
    train = len(pairs) - val - test
    return {"train": list(pairs[:train]), "val": list(pairs[train : train + val]), "test": list(pairs[train + val :])}


def original_path(video: str) -> str:
    return f"original_sequences/youtube/{{quality}}/videos/{video}.mp4"


def manipulated_path(method: str, target: str, source: str) -> str:
    return f"manipulated_sequences/{method}/{{quality}}/videos/{target}_{source}.mp4"


def _fps(video: str, seed: int) -> int:
    return FRAME_RATES[stable_hash(f"{seed}:ffpp-fps:{video}") % len(FRAME_RATES)]


def plan(size: ReplicaSize, seed: int) -> list[Clip]:
    """One clip per original: its real video, and its fakes (it is their target) of every method."""
    clips = []
    for first, second in id_pairs(size, seed):
        for target, source in ((first, second), (second, first)):
            fakes = tuple(Fake(manipulated_path(method, target, source), method, f"ff{source}", f"ff{source}",
                               _fps(source, seed)) for method in METHODS)  # fmt: skip
            clips.append(Clip(f"ff{target}", f"ff{target}", _fps(target, seed), original_path(target), fakes))
    return clips


def write_splits(out: Path, size: ReplicaSize, seed: int) -> None:
    for split, pairs in split_pairs(id_pairs(size, seed)).items():
        write_text_atomically(out / "splits" / SPLIT_FILES[split], json.dumps([list(p) for p in pairs], indent=2))


def write_faceforensics(out: Path, size_name: str = "default", seed: int = 0, qualities: Sequence[str] = QUALITIES,
                        workers: int | None = None, progress: bool = True) -> Path:  # fmt: skip
    """Write (or finish) the FaceForensics++ replica of ``size_name`` in ``out``, in ``qualities``."""
    unknown = sorted(set(qualities) - set(QUALITIES))
    if unknown or not qualities:
        raise ValueError(f"qualities must be some of {QUALITIES}, got {list(qualities)}")
    size = SIZES[size_name]
    qualities = [q for q in QUALITIES if q in qualities]
    settings = settings_of("faceforensics", size_name, size, seed, qualities)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, settings)
    write_videos(out, plan(size, seed), size, seed, qualities, RAW_CRF, workers, progress)
    write_splits(out, size, seed)
    counts = {split: len(pairs) for split, pairs in split_pairs(id_pairs(size, seed)).items()}
    write_note(
        out,
        "FaceForensics++",
        f"""
Layout as FaceForensics++'s download script writes it: `original_sequences/youtube/<q>/videos/NNN.mp4` and
`manipulated_sequences/<Method>/<q>/videos/TTT_SSS.mp4` (target TTT's video with source SSS's face or
expressions) for {", ".join(METHODS)}, in {", ".join(qualities)}. `splits/` holds train/val/test.json as the
official split files (not part of the real download): {counts["train"]}/{counts["val"]}/{counts["test"]} id
pairs; a pair [a, b] puts originals a and b and fakes a_b and b_a of every method in that split. Raw is
lossless H.264; c23 and c40 were made from raw with FaceForensics++'s command (libx264 -crf 23 / -crf 40).
{size.people} originals of {size.frames} frames, {size.width}x{size.height}, each at 25 or 30 fps.""",
        settings,
    )
    return out

"""The Celeb-DF-v2 layout in the build.

    Celeb-real/idA_NNNN.mp4          real interviews of celebrity A
    YouTube-real/NNNNN.mp4           real YouTube videos (no identity given)
    Celeb-synthesis/idA_idB_NNNN.mp4 A's video idA_NNNN with B's face swapped in
    List_of_testing_videos.txt       the test split: "<label> <relative path>" lines, where 1 = REAL and 0 = FAKE

The test list's labels are the opposite of ours (real 0, fake 1), so they are mapped, and checked against the
folder each video is in. Everything else is train, less a validation split carved from it by identity (the person
whose video it is), seeded and written into the repo as data.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..card import CardText
from ..clips import BuildConfig, BuildError, Clip, Problems
from ..configs import ConfigSpec, subset_rows
from ..release import SourceVideo
from ..schema import FAKE, LABEL_NAMES, REAL, SPLITS, VIDEO_EXTENSIONS
from ..source_folder import SourceFolder, read_utf8
from ..splits import SPLIT_FRACTIONS, stable_hash
from .faceforensics import container_infos

logger = logging.getLogger(__name__)

FOLDERS: dict[str, int] = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
TEST_LIST = "List_of_testing_videos.txt"
TEST_LIST_LABELS: dict[str, int] = {"1": REAL, "0": FAKE}
"""The test list's labels in ours: in that file 1 means real and 0 means fake."""
METHOD = "Celeb-DF"
QUALITY = "raw"
"""Celeb-DF ships one quality; the videos are kept as released (then face-cropped)."""
CITATION = """@inproceedings{li2020celebdf,
  title     = {Celeb-DF: A Large-scale Challenging Dataset for DeepFake Forensics},
  author    = {Li, Yuezun and Yang, Xin and Sun, Pu and Qi, Honggang and Lyu, Siwei},
  booktitle = {IEEE Conference on Computer Vision and Pattern Recognition (CVPR)},
  year      = {2020}
}"""


def recognise(source: Path) -> bool:
    return (source / TEST_LIST).is_file() or any((source / folder).is_dir() for folder in FOLDERS)


def read_test_list(path: Path, listing: SourceFolder) -> dict[str, int]:
    """Our label of each test video, by path relative to the release folder (checked by ``listing`` first)."""
    if listing.file(path) is None:
        raise BuildError(f"{path} not found: Celeb-DF-v2's test split comes with the download as {TEST_LIST}; put it "
                         "in the release folder")  # fmt: skip
    labels = {}
    for number, line in enumerate(read_utf8(path).splitlines(), start=1):
        if not line.strip():
            continue
        flag, _, relative = line.strip().partition(" ")
        if flag not in TEST_LIST_LABELS or not relative.strip():
            raise BuildError(f"{path}, line {number}: {line!r} is not '<1 real | 0 fake> <relative path>'")
        relative, label = relative.strip(), TEST_LIST_LABELS[flag]
        if labels.setdefault(relative, label) != label:  # listed twice alike is harmless
            raise BuildError(f"{path}, line {number}: {relative!r} is listed again with the other label; keep the "
                             "line with the right one")  # fmt: skip
    return labels


def _identities(folder: str, stem: str) -> tuple[str | None, str | None]:
    """(source_id, driving_id): a real clip's person; a fake's swapped-in face (B) and target video's person (A)."""
    parts = stem.split("_")
    if folder == "Celeb-real" and len(parts) >= 2:
        return parts[0], None
    if folder == "Celeb-synthesis" and len(parts) >= 3:
        return parts[1], parts[0]
    return None, None


def scan(listing: SourceFolder, config: BuildConfig, problems: Problems, workers: int) -> list[Clip]:
    source = config.source
    test_labels = read_test_list(source / TEST_LIST, listing)
    if QUALITY not in config.qualities:
        raise BuildError(f"Celeb-DF-v2 has one quality, {QUALITY} (as released); pass --qualities {QUALITY}")
    present = {path.name for path in listing.folders(source)}
    problems.unknown_folders += sorted(present - set(FOLDERS))
    videos = []
    for folder in (name for name in FOLDERS if name in present):
        for path in listing.files(source / folder):
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                videos.append((folder, path))
            else:
                problems.bad_files[f"{folder}/{path.name}"] = "not a video file"
    found = {f"{folder}/{path.name}" for folder, path in videos}
    for relative in sorted(set(test_labels) - found):
        problems.bad_files[relative] = f"listed in {TEST_LIST} but not found"
    infos = container_infos([path for _, path in videos], workers, config.progress)
    clips = []
    for (folder, path), info in zip(videos, infos, strict=True):
        relative = f"{folder}/{path.name}"
        if isinstance(info, str):
            problems.bad_files[relative] = info
            continue
        label = FOLDERS[folder]
        if relative in test_labels and test_labels[relative] != label:
            listed = test_labels[relative]
            problems.bad_files[relative] = (f"{TEST_LIST} labels it {LABEL_NAMES[listed]} (its flag "
                                            f"{1 - listed}), but it is in {folder}/")  # fmt: skip
            continue
        source_id, driving_id = _identities(folder, path.stem)
        clips.append(Clip(
            source=SourceVideo(path, relative, folder, None), info=info, video_id=f"{folder}/{path.stem}",
            label=label, source_id=source_id, driving_id=driving_id,
            split=SPLITS[2] if relative in test_labels else SPLITS[0],
            method=METHOD if label == FAKE else None, qualities={QUALITY: path},
        ))  # fmt: skip
    return clips


def _person(clip: Clip) -> str:
    """Whose video a clip is: a Celeb-real clip's person, a fake's target; a YouTube video stands alone."""
    return clip.driving_id or clip.source_id or clip.video_id


def carve_validation(clips: list[Clip], seed: int = 0) -> None:
    """Move the training clips of 15% of the training identities (by ``_person``, drawn by seed) to validation."""
    people = sorted({_person(clip) for clip in clips if clip.split == SPLITS[0]},
                    key=lambda person: (stable_hash(f"{seed}:{person}"), person))  # fmt: skip
    count = max(1, round(len(people) * SPLIT_FRACTIONS[1])) if len(people) > 1 else 0
    chosen = set(people[:count])
    for clip in clips:
        if clip.split == SPLITS[0] and _person(clip) in chosen:
            clip.split = SPLITS[1]


def assign(clips: list[Clip], seed: int = 0) -> bool:
    carve_validation(clips, seed)
    return False


def configs(clips: list[Clip], qualities) -> list[ConfigSpec]:
    return [ConfigSpec(QUALITY, QUALITY, subset_rows)]


def card_text(clips: list[Clip], qualities, config: BuildConfig) -> CardText:
    frames = "every frame" if config.max_frames is None else f"the first {config.max_frames} frames"
    return CardText(
        pretty_name="Celeb-DF-v2 (face crops)",
        tags=["deepfake-detection", "face-swap", "celeb-df"],
        default_config=QUALITY,
        intro="""\
Celeb-DF-v2 (Li et al., CVPR 2020): real celebrity interviews (Celeb-real), real YouTube videos
(YouTube-real) and face swaps among the celebrities (Celeb-synthesis), here as 256x256 face clips in the row schema
every dataset of this project shares, so a detector trained on one is evaluated on another unchanged.""",
        usage="""\
from datasets import load_dataset
ds = load_dataset("PATH/TO/THIS/FOLDER", "raw")""",
        configurations="""\
* `raw`: every video, as released (Celeb-DF ships one quality), face-cropped.

`method` is `Celeb-DF` for the swaps and empty for real clips; a swap `idA_idB_NNNN` has `driving_id` A (whose
video it is) and `source_id` B (whose face is put in); a Celeb-real clip's `source_id` is its person.""",
        clip_folders="the face clips as files (folder = Celeb-real, YouTube-real or Celeb-synthesis)",
        disk_note=f"""\
Each video was face-cropped to 256x256 ({frames}; `--max_frames`) and stored losslessly
(RGB H.264, `-qp 0`): lossless crops take more bytes than the compressed sources they come from.""",
        splits=f"""\
`test` is `{TEST_LIST}` (whose labels, 1 = real and 0 = fake, are the opposite of ours and were mapped,
and checked against each video's folder). The rest is training, less `validation`: every training clip of 15% of
the training identities (the person whose video it is; each YouTube video on its own), drawn with seed
{config.validation_seed}. Membership is in `splits.csv`.""",
        built_note="""\
Each video's face tube was found by MTCNN (the main face, followed through the frames); one square 1.3x
the tube's extent, edge-padded where it leaves the frame, cut the clip (the box is in `splits.csv`). The build
writes into a temporary folder and renames it at the end; finished crops are reused by reruns.""",
        licence="""\
Celeb-DF-v2 is licensed to each user who accepts its terms of use (research only, no redistribution):
this repository is yours alone. Never push it to a public repository; `python -m dataset_script.build
--push_to_hub` makes it private unless you say otherwise.""",
        citation=CITATION,
    )

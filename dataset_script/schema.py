"""The data schema: the row every built repo holds (DeepFake MNIST+, FaceForensics++, Celeb-DF-v2, DFDC and one's own
collections alike), labels, actions, qualities, and the DeepFake MNIST+ release's folder names.

Everything else in the project imports these names instead of repeating them.
"""

from __future__ import annotations

LABEL_NAMES: tuple[str, ...] = ("real", "fake")
"""Class names in label order: ``real`` = 0, ``fake`` = 1 (the convention of FaceForensics++ and DeepfakeBench)."""
REAL, FAKE = 0, 1

ACTIONS: tuple[str, ...] = (
    "blink",
    "open_mouth",
    "yaw",
    "nod",
    "right_slope",
    "left_slope",
    "look_up",
    "smile",
    "surprise",
    "embarrassment",
)
"""The ten animation actions, canonical names in the paper's order."""

QUALITIES: tuple[str, ...] = ("raw", "c23", "c40")
"""``raw`` is the release as shipped; ``c23``/``c40`` are FaceForensics++'s H.264 CRF levels."""

CRF_BY_QUALITY: dict[str, int] = {"c23": 23, "c40": 40}

REAL_FOLDER = "real"
"""Canonical folder (and ``action``-less class) name of real clips in datasets we build."""

RELEASE_FOLDER_TO_ACTION: dict[str, str] = {
    "blink": "blink",
    "mouth": "open_mouth",
    "yaw": "yaw",
    "nod": "nod",
    "right_slope": "right_slope",
    "left_slope": "left_slope",
    "up": "look_up",
    "smile": "smile",
    "surpise": "surprise",  # sic: the official release misspells it
    "embarrass": "embarrassment",
}
"""Folder names of the official release (github huangjiadidi/DeepFakeMnist) mapped to canonical actions."""

ACTION_TO_RELEASE_FOLDER: dict[str, str] = {action: folder for folder, action in RELEASE_FOLDER_TO_ACTION.items()}

REAL_FOLDER_CANDIDATES: tuple[str, ...] = ("original", "real")
"""The release does not document its real-video folder; the authors' figures call that class ``original``."""

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".webm")

SPLITS: tuple[str, ...] = ("train", "validation", "test")
IDENTITY_SPLIT_PREFIX = "identity_"
"""Identity-disjoint splits are published next to the paper splits as ``identity_train`` etc."""

DMPLUS_METHOD = "FOMM"
"""The manipulation method of DeepFake MNIST+'s fakes, where a generation manifest names none."""

ROW_COLUMNS: dict[str, tuple[str, str]] = {
    "video": ("video", "the clip itself (bytes inside the row); decodes to a torchcodec VideoDecoder"),
    "label": ("label", "real = 0, fake = 1"),
    "method": (
        "string",
        "how a fake was made: FOMM (DeepFake MNIST+), the FaceForensics++ method folder "
        "(Deepfakes, Face2Face, FaceSwap, NeuralTextures, FaceShifter), Celeb-DF, DFDC, or what a collection of "
        "one's own names (its fake/<Method>/ folder, its list's method column); empty for real clips",
    ),
    "action": ("string", "DeepFake MNIST+'s animation action of a fake; empty for real clips and other datasets"),
    "quality": ("string", "raw, c23 or c40"),
    "video_id": ("string", "unique in the repo: <folder>/<file stem>"),
    "source_id": (
        "string",
        "the identity whose face is shown (a real clip's person; a fake's source face); in a collection of one's "
        "own, the identity its list or --identity_pattern gives",
    ),
    "driving_id": (
        "string",
        "a fake's target or driving identity: the person whose video gives the motion "
        "(DeepFake MNIST+) or the frames the face is put into (FaceForensics++, Celeb-DF; DFDC: the original "
        "video's name); empty for reals",
    ),
    "num_frames": ("int64", "frames in the clip"),
}
"""THE row schema, the contract between the build and everything downstream (training, evaluation, the Space):
column -> (type, meaning). Every source layout produces exactly these columns, so a detector trained on one
dataset is evaluated on another unchanged. Types are `datasets` value types; ``video`` and ``label`` are the
``Video`` and ``ClassLabel(LABEL_NAMES)`` features (``card.ROW_FEATURES`` turns this into `datasets` Features)."""

EVAL_FRAMES_PER_VIDEO = 32
"""Test protocol: 32 evenly spaced frames per video (DeepfakeBench's convention)."""


def action_config_name(quality: str, action: str) -> str:
    """Name of the per-action configuration, for example ``c40-yaw``."""
    return f"{quality}-{action}"


def all_config_names() -> list[str]:
    """The 33 configurations: one per quality, then one per (quality, action)."""
    names = list(QUALITIES)
    names += [action_config_name(q, a) for q in QUALITIES for a in ACTIONS]
    return names


def canonical_action(folder_name: str) -> str | None:
    """Canonical action for a release folder name, accepting canonical names too; None if unknown."""
    if folder_name in RELEASE_FOLDER_TO_ACTION:
        return RELEASE_FOLDER_TO_ACTION[folder_name]
    if folder_name in ACTIONS:
        return folder_name
    return None

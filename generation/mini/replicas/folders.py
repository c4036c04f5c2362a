"""A collection of one's own in the build's folders layout (``dataset_script.layouts.folders``), as a lab with its
own generator would arrange it:

    real/id{P}/{TTTT}.mp4                      person P's videos, a folder each
    fake/<Method>/id{T}_id{S}_{TTTT}.mp4       T's video TTTT with S's face (or expressions), made by <Method>

Whole frames with the face off centre, as the other replicas; every video x264 at CRF 23. Each person's takes are
faked by both methods with the next person's face (in a ring), so ``--identity_pattern 'id\\d+'`` finds the
person whose video it is in every path, and an identity split keeps a fake with its target's real videos.
"""

from __future__ import annotations

from pathlib import Path

from .write import Clip, Fake, ReplicaSize, check_settings, settings_of, write_note, write_videos

METHODS = ("FaceSwap", "Face2Face")
"""Two of the replicas' manipulations, under their own names: the method folders of ``fake/``."""
FPS = 25
CRF = 23

SIZES = {
    "smoke": ReplicaSize(frames=12, height=144, width=192, people=6),
    "default": ReplicaSize(frames=32, height=256, width=320, people=16, takes_per_person=2),
}
"""smoke: 6 people x 1 video, 12 fakes (18 videos), 12 frames of 192x144; default: 16 people x 2 videos, 64 fakes
(96 videos), 32 frames of 320x256."""


def people(size: ReplicaSize) -> list[str]:
    if size.people < 2:
        raise ValueError(f"a folders replica needs at least 2 people (a fake takes another's face), not {size.people}")
    return [f"id{index}" for index in range(size.people)]


def plan(size: ReplicaSize) -> list[Clip]:
    """One clip per real video, with its fakes by each method from the next person's face."""
    names = people(size)
    clips = []
    for index, target in enumerate(names):
        source = names[(index + 1) % len(names)]
        for take in range(size.takes_per_person):
            fakes = tuple(Fake(f"fake/{method}/{target}_{source}_{take:04d}.mp4", method, f"own-{source}",
                               f"own-{source}_0000", FPS) for method in METHODS)  # fmt: skip
            clips.append(Clip(f"own-{target}", f"own-{target}_{take:04d}", FPS, f"real/{target}/{take:04d}.mp4", fakes))
    return clips


def write_folders(out: Path, size_name: str = "default", seed: int = 0, workers: int | None = None,
                  progress: bool = True) -> Path:  # fmt: skip
    """Write (or finish) the folders replica of ``size_name`` in ``out``."""
    size = SIZES[size_name]
    settings = settings_of("folders", size_name, size, seed, None)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, settings)
    clips = plan(size)
    write_videos(out, clips, size, seed, None, CRF, workers, progress)
    write_note(
        out,
        "A collection of one's own (folders)",
        f"""
Layout as `python -m dataset_script.build SOURCE --layout folders` reads it: `real/id{{P}}/{{TTTT}}.mp4`
({size.people} people x {size.takes_per_person} videos, a folder each) and `fake/<Method>/id{{T}}_id{{S}}_{{TTTT}}.mp4`
for {", ".join(METHODS)}: person T's video with the next person S's face or expressions. Build it with
`--identity_pattern 'id\\d+'` to split by person. Every video is x264 at CRF 23, {size.frames} frames of
{size.width}x{size.height} at {FPS} fps.""",
        settings,
    )
    return out

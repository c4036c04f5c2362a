"""A Celeb-DF-v2 replica in the release's layout:

    Celeb-real/id{A}_{NNNN}.mp4            celebrity A's videos
    YouTube-real/{NNNNN}.mp4               other people's videos (no fakes are made of them)
    Celeb-synthesis/id{A}_id{B}_{NNNN}.mp4 A's video NNNN with celebrity B's face swapped in
    List_of_testing_videos.txt             ``<label> <folder>/<file>`` per test video, 1 = REAL, 0 = FAKE

Celeb-DF-v2 ships one quality of mp4s; the replica encodes each video once with x264 at CRF 23 (the CRF of
FaceForensics++'s c23). Swaps pair celebrities inside the test group or inside the rest, so no test identity is
seen in training, and the test list holds the test group's real videos and fakes and a third of YouTube-real.
"""

from __future__ import annotations

from pathlib import Path

from dataset_script.files import write_text_atomically
from dataset_script.splits import stable_hash

from .write import Clip, Fake, ReplicaSize, check_settings, settings_of, write_note, write_videos

REAL_LABEL, FAKE_LABEL = 1, 0
"""Celeb-DF-v2's test list marks real videos 1 and fakes 0: the opposite of the project's labels."""
TEST_LIST = "List_of_testing_videos.txt"
CELEB_REAL, YOUTUBE_REAL, SYNTHESIS = "Celeb-real", "YouTube-real", "Celeb-synthesis"
METHOD = "Celeb-DF"
FPS = 30
CRF = 23

SIZES = {
    "smoke": ReplicaSize(frames=12, height=144, width=224, people=6, takes_per_person=2, youtube=4),
    "default": ReplicaSize(
        frames=32, height=256, width=384, people=16, takes_per_person=2, youtube=8, sources_per_take=2
    ),  # fmt: skip
}
"""smoke: 6 celebrities x 2 videos, 4 YouTube-real, 12 fakes (28 videos), 12 frames of 224x144; default:
16 celebrities x 2 videos, 8 YouTube-real, 64 fakes (104 videos), 32 frames of 384x256."""


def celebrities(size: ReplicaSize) -> list[str]:
    return [f"id{index}" for index in range(size.people)]


def test_celebrities(size: ReplicaSize, seed: int) -> list[str]:
    """A quarter of the celebrities (at least two, so they can swap among themselves) form the test group."""
    if size.people < 4:
        raise ValueError(f"a Celeb-DF-v2 replica needs at least 4 celebrities, not {size.people}")
    ordered = sorted(celebrities(size), key=lambda name: stable_hash(f"{seed}:celebdf-test:{name}"))
    return sorted(ordered[: max(2, round(size.people / 4))])


def test_youtube(size: ReplicaSize) -> list[int]:
    return list(range(size.youtube - max(1, round(size.youtube / 3)), size.youtube)) if size.youtube else []


def plan(size: ReplicaSize, seed: int) -> list[Clip]:
    """One clip per Celeb-real video (with its swaps) and one per YouTube-real video."""
    test = set(test_celebrities(size, seed))
    groups = [[name for name in celebrities(size) if name in test], [n for n in celebrities(size) if n not in test]]
    clips = []
    for group in groups:
        group = sorted(group, key=lambda name: stable_hash(f"{seed}:celebdf-swap:{name}"))
        for index, target in enumerate(group):
            for take in range(size.takes_per_person):
                others = group[index + 1 :] + group[:index]
                sources = dict.fromkeys(others[(take + k) % len(others)] for k in range(size.sources_per_take))
                fakes = tuple(Fake(f"{SYNTHESIS}/{target}_{source}_{take:04d}.mp4", METHOD, f"celeb-{source}",
                                   f"celeb-{source}_0000", FPS) for source in sources)  # fmt: skip
                clips.append(Clip(f"celeb-{target}", f"celeb-{target}_{take:04d}", FPS,
                                  f"{CELEB_REAL}/{target}_{take:04d}.mp4", fakes))  # fmt: skip
    for index in range(size.youtube):
        clips.append(Clip(f"youtube-{index:05d}", f"youtube-{index:05d}", FPS, f"{YOUTUBE_REAL}/{index:05d}.mp4"))
    return sorted(clips, key=lambda clip: clip.take)


def test_list(size: ReplicaSize, seed: int) -> list[tuple[int, str]]:
    """(Celeb-DF label, path) of every test video: the test group's real videos and fakes, some YouTube-real."""
    test = set(test_celebrities(size, seed))
    lines = [(REAL_LABEL, f"{YOUTUBE_REAL}/{index:05d}.mp4") for index in test_youtube(size)]
    for clip in plan(size, seed):
        if clip.person.removeprefix("celeb-") in test:
            lines.append((REAL_LABEL, clip.real))
            lines += [(FAKE_LABEL, fake.path) for fake in clip.fakes]
    return sorted(lines, key=lambda line: (-line[0], line[1]))


def write_celeb_df(out: Path, size_name: str = "default", seed: int = 0, workers: int | None = None,
                   progress: bool = True) -> Path:  # fmt: skip
    """Write (or finish) the Celeb-DF-v2 replica of ``size_name`` in ``out``."""
    size = SIZES[size_name]
    settings = settings_of("celeb_df", size_name, size, seed, None)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, settings)
    clips = plan(size, seed)
    write_videos(out, clips, size, seed, None, CRF, workers, progress)
    lines = test_list(size, seed)
    write_text_atomically(out / TEST_LIST, "".join(f"{label} {path}\n" for label, path in lines))
    fakes = sum(len(clip.fakes) for clip in clips)
    write_note(
        out,
        "Celeb-DF-v2",
        f"""
Layout as the Celeb-DF-v2 release: `{CELEB_REAL}/id{{A}}_{{NNNN}}.mp4` ({size.people} celebrities x
{size.takes_per_person} videos), `{YOUTUBE_REAL}/{{NNNNN}}.mp4` ({size.youtube} videos), and
`{SYNTHESIS}/id{{A}}_id{{B}}_{{NNNN}}.mp4` ({fakes} fakes: celebrity A's video NNNN with B's face swapped in).
`{TEST_LIST}` lists the {len(lines)} test videos as `<label> <folder>/<file>`, where **1 = real and 0 = fake**
(the opposite of the project's labels); the test celebrities ({", ".join(test_celebrities(size, seed))}) swap
only among themselves. Every video is x264 at CRF 23, {size.frames} frames of {size.width}x{size.height} at
{FPS} fps.""",
        settings,
    )
    return out

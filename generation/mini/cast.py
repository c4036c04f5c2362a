"""The mini's cast: its procedural people, each clip's seed, and the motion of each person's real clips.

The generator, the contact sheet and the offline generation inputs all draw the same people and motions from
here, so a person or a real clip is the same wherever it is made."""

from __future__ import annotations

import torch

from dataset_script.splits import stable_hash

from .actions import action_trajectory
from .face import FaceState, Identity


def identity_names(count: int) -> list[str]:
    return [f"person{index:03d}" for index in range(count)]


def clip_seed(seed: int, *parts: str) -> int:
    return stable_hash(":".join([str(seed), *parts])) % (2**62)


def identity_for(name: str, seed: int) -> Identity:
    return Identity.sample(name, torch.Generator().manual_seed(clip_seed(seed, "identity", name)))


def filmed_person(name: str, seed: int, clip: int | None) -> Identity:
    """``name`` as one clip (of seed ``clip``) films them: the same person, in that clip's own room and light;
    ``clip`` None keeps the setting the person was first drawn in."""
    person = identity_for(name, seed)
    if clip is None:
        return person
    return person.in_setting(torch.Generator().manual_seed(clip_seed(clip, "setting")))


def real_trajectory(name: str, action: str, seed: int, frames: int) -> FaceState:
    """The motion of ``name``'s real clip of ``action``; fakes driven by that clip reuse it exactly."""
    return action_trajectory(action, frames, torch.Generator().manual_seed(clip_seed(seed, "real", name, action)))

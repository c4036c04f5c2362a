"""Who a procedural person is: everything that stays fixed for them (head, face, colours), and the setting (room,
shirt, light) a video films them in. ``face`` renders them; ``body`` paints their shoulders and room."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

SKIN_TONES = (
    (0.96, 0.80, 0.69), (0.91, 0.73, 0.60), (0.84, 0.64, 0.50), (0.76, 0.55, 0.41),
    (0.66, 0.46, 0.33), (0.55, 0.37, 0.26), (0.44, 0.29, 0.20), (0.40, 0.27, 0.19),
)  # fmt: skip
"""The darkest is as dark as MTCNN, the face detector of the crops and the Space, still finds in 97 % of a crop's
frames; at (0.35, 0.23, 0.16) it missed 1 frame in 13 once the mini was cut from whole frames."""
HAIR_COLOURS = ((0.10, 0.07, 0.05), (0.25, 0.16, 0.09), (0.45, 0.30, 0.16), (0.70, 0.55, 0.30), (0.55, 0.55, 0.55))
IRIS_COLOURS = ((0.30, 0.18, 0.08), (0.15, 0.30, 0.55), (0.25, 0.40, 0.25), (0.45, 0.30, 0.15))


@dataclass
class Identity:
    """What stays fixed for one person, and the setting (room, shirt, light) they were first drawn in: a video
    films them in its own (``in_setting``)."""

    name: str
    radii: tuple[float, float, float]  # head ellipsoid half-axes (x, y, z)
    head_y: float  # where the head sits in the frame
    skin: tuple[float, float, float]
    eye_x: float
    eye_y: float
    eye_size: tuple[float, float]
    iris: tuple[float, float, float]
    brow_thickness: float
    brow_colour: tuple[float, float, float]
    nose: tuple[float, float, float]  # nose ellipsoid half-axes
    mouth_y: float
    mouth_width: float
    lip_colour: tuple[float, float, float]
    hair_colour: tuple[float, float, float]
    hairline: float
    background: tuple[tuple[float, float, float], tuple[float, float, float]]
    shirt: tuple[float, float, float]
    light: tuple[float, float, float]

    @classmethod
    def sample(cls, name: str, generator: torch.Generator) -> Identity:
        uniform, pick, jitter = _draws(generator)
        skin = jitter(pick(SKIN_TONES), 0.03)
        light = _light(uniform)  # drawn here, as it always was, so every person looks as before
        return cls(
            name=name,
            radii=(uniform(0.46, 0.54), uniform(0.60, 0.68), uniform(0.48, 0.54)),
            head_y=uniform(-0.16, -0.06),
            skin=skin,
            eye_x=uniform(0.33, 0.40),
            eye_y=uniform(-0.16, -0.08),
            eye_size=(uniform(0.12, 0.15), uniform(0.06, 0.075)),
            iris=jitter(pick(IRIS_COLOURS)),
            brow_thickness=uniform(0.025, 0.045),
            brow_colour=jitter(pick(HAIR_COLOURS[:3])),
            nose=(uniform(0.07, 0.09), uniform(0.15, 0.19), uniform(0.08, 0.11)),
            mouth_y=uniform(0.38, 0.46),
            mouth_width=uniform(0.26, 0.33),
            lip_colour=jitter((0.72, 0.36, 0.36), 0.06),
            hair_colour=jitter(pick(HAIR_COLOURS), 0.03),
            hairline=uniform(-0.62, -0.42),
            **_room_and_shirt(uniform, jitter),
            light=light,
        )

    def in_setting(self, generator: torch.Generator) -> Identity:
        """The same person filmed elsewhere: a new wall, shirt and light, drawn from ``generator``.

        Each video of a person has its own setting, as a person's videos in VoxCeleb or FaceForensics++ do, so
        the few training people show a detector hundreds of rooms and lights, not one each, and it cannot tie a
        new person's room to a label."""
        uniform, _, jitter = _draws(generator)
        return replace(self, light=_light(uniform), **_room_and_shirt(uniform, jitter))


def _draws(generator: torch.Generator):
    """Three ways of drawing from ``generator``: a uniform float, a pick from options, a jittered colour."""

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * torch.rand((), generator=generator).item()

    def pick(options):
        return options[int(torch.randint(len(options), (), generator=generator))]

    def jitter(colour, amount=0.04):
        return tuple(min(1.0, max(0.0, c + uniform(-amount, amount))) for c in colour)

    return uniform, pick, jitter


def _light(uniform) -> tuple[float, float, float]:
    """The key light's direction, from above and in front, normalised."""
    light = (uniform(-0.6, 0.6), uniform(-0.7, -0.1), 1.0)
    norm = math.sqrt(sum(c * c for c in light))
    return tuple(c / norm for c in light)


def _room_and_shirt(uniform, jitter) -> dict:
    """Where a person is filmed: the wall behind them (top and bottom colours) and their shirt."""
    return {
        "background": (jitter((uniform(0.2, 0.8),) * 3, 0.15), jitter((uniform(0.2, 0.8),) * 3, 0.15)),
        "shirt": (uniform(0.05, 0.9), uniform(0.05, 0.9), uniform(0.05, 0.9)),
    }

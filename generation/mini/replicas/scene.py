"""Full-frame takes for the replicas: a person filmed talking in a room, the face smaller than the frame and off
centre, moving over the clip, as in the YouTube and celebrity videos FaceForensics++ and Celeb-DF-v2 start from.

A take is everything about one filmed clip that its fakes must share with it: the framing, the room, the motion,
the camera's shake and its sensor noise. Each comes from the take's own seed, so a fake re-films exactly the
frames of the real video it is made from, and only its manipulation differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from dataset_script.schema import ACTIONS

from ...motion import to_numpy_image
from ..actions import action_trajectory
from ..animate import camera_jitter, film, geometry_keypoints, sensor_noise
from ..body import LOWEST_VISIBLE
from ..cast import clip_seed
from ..face import FaceState, Identity, Shot, render

SHOT_HEIGHT_UNITS = (2.3, 2.6)
"""Scene units a frame's height spans (the default square close-up spans 2): the head fills about half of it."""
FACE_COLUMN = (0.25, 0.4)
"""Where across the frame the face sits (a share of the width, mirrored half of the time): never in the middle."""
POSE_SCALE = 0.5
"""The share of an action's head turn kept in a talking take."""
DRIFT_UNITS = (0.08, 0.16)
"""How far the person sways across the frame over a clip, in scene units (about 7 to 14 px at 256 px high)."""


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def frame_shot(height: int, width: int, generator: torch.Generator) -> Shot:
    """A framing of the person at the scene's origin: the head in the upper half, off centre left or right."""
    span = _uniform(generator, *SHOT_HEIGHT_UNITS)
    pixel = span / height
    top = min(_uniform(generator, -1.2, -1.0), LOWEST_VISIBLE - span)
    column = _uniform(generator, *FACE_COLUMN)
    if torch.rand((), generator=generator).item() < 0.5:
        column = 1 - column
    return Shot(height, width, pixel, -column * width * pixel, top)


def backdrop(shot: Shot, generator: torch.Generator) -> torch.Tensor:
    """A room behind the person, (1, 3, H, W): a lit wall, a floor or desk edge, and a few framed shapes (windows,
    pictures, shelves) at random places, so the background has edges of its own as real footage does."""
    grid = shot.grid()
    x, y = grid[..., 0], grid[..., 1]
    wall = torch.rand(3, generator=generator) * 0.6 + 0.2
    room = wall.view(3, 1, 1) * (0.85 + 0.15 * torch.cos(_uniform(generator, 1, 3) * x + _uniform(generator, 0, 6)))
    floor_at = _uniform(generator, 0.9, 1.4)
    floor = torch.rand(3, generator=generator) * 0.5 + 0.1
    room = torch.where((y > floor_at)[None], floor.view(3, 1, 1), room)
    for _ in range(int(torch.randint(2, 5, (), generator=generator))):
        centre_x = _uniform(generator, shot.left, shot.left + shot.width * shot.pixel)
        centre_y = _uniform(generator, shot.top, floor_at)
        half_w, half_h = _uniform(generator, 0.15, 0.6), _uniform(generator, 0.1, 0.5)
        colour = torch.rand(3, generator=generator)
        inside = torch.sigmoid((torch.minimum(half_w - (x - centre_x).abs(), half_h - (y - centre_y).abs())) / 0.01)
        frame_edge = torch.sigmoid((torch.minimum(half_w + 0.03 - (x - centre_x).abs(),
                                                  half_h + 0.03 - (y - centre_y).abs())) / 0.01)  # fmt: skip
        room = torch.lerp(room, (colour * 0.3).view(3, 1, 1).expand_as(room), frame_edge[None])
        room = torch.lerp(room, colour.view(3, 1, 1).expand_as(room), inside[None])
    return room[None].clamp(0, 1)


def _bumps(frames: int, count: int, width: float, generator: torch.Generator) -> torch.Tensor:
    """``count`` short bumps (0 -> 1 -> 0 over about ``width`` frames) at random times."""
    time = torch.arange(frames, dtype=torch.float32)
    total = torch.zeros(frames)
    for _ in range(count):
        at = _uniform(generator, 0, frames - 1)
        total = torch.maximum(total, torch.exp(-(((time - at) / (width / 2)) ** 2)))
    return total


def talking_trajectory(frames: int, generator: torch.Generator, fps: float = 25.0) -> FaceState:
    """A person talking to the camera: one of the ten actions (for head motion and an expression), with speech
    moving the mouth at syllable rate, blinks, and a slow sway across the frame."""
    action = ACTIONS[int(torch.randint(len(ACTIONS), (), generator=generator))]
    state = action_trajectory(action, frames, generator)
    # FaceForensics++ chose videos of mostly frontal faces (its trackers needed them): turns stay moderate.
    state.yaw, state.pitch, state.roll = (POSE_SCALE * angle for angle in (state.yaw, state.pitch, state.roll))
    time = torch.arange(frames, dtype=torch.float32) / fps
    rate, phase = _uniform(generator, 3.0, 5.0), _uniform(generator, 0, math.pi)
    speaking = torch.sigmoid(torch.sin(2 * math.pi * _uniform(generator, 0.2, 0.5) * time + phase) * 4 + 1)
    speech = _uniform(generator, 0.25, 0.6) * torch.sin(math.pi * rate * time + phase).abs() ** 1.5 * speaking
    state.mouth_open = torch.maximum(state.mouth_open, speech)
    blinks = _bumps(frames, int(torch.randint(1, 3, (), generator=generator)), fps * 0.12, generator)
    state.eyelid = torch.maximum(state.eyelid, blinks)
    state.smile = state.smile + _uniform(generator, 0.0, 0.35)
    drift = _uniform(generator, *DRIFT_UNITS)
    progress = torch.linspace(-0.5, 0.5, frames)
    state.tx = state.tx + drift * torch.sin(math.pi * progress + _uniform(generator, -1, 1))
    state.ty = state.ty + 0.4 * drift * torch.sin(2 * math.pi * progress + _uniform(generator, 0, 6))
    return state


@dataclass(frozen=True)
class Take:
    """One filmed clip: ``person`` (an identity's name) in the framing, room and motion of the clip ``name``."""

    person: Identity
    name: str
    seed: int
    frames: int
    height: int
    width: int
    fps: int

    def _generator(self, part: str) -> torch.Generator:
        return torch.Generator().manual_seed(clip_seed(self.seed, "take", self.name, part))

    @cached_property
    def shot(self) -> Shot:
        return frame_shot(self.height, self.width, self._generator("shot"))

    @cached_property
    def backdrop(self) -> torch.Tensor:
        return backdrop(self.shot, self._generator("room"))

    @cached_property
    def motion(self) -> FaceState:
        return talking_trajectory(self.frames, self._generator("motion"), self.fps)

    @cached_property
    def shake(self) -> torch.Tensor:
        """The camera's shake, (T, 2) in pixels."""
        return camera_jitter(self.frames, self._generator("shake"), size=2)

    def film(self, identity: Identity, motion: FaceState, shot: Shot | None = None,
             shake: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """``identity`` performing ``motion`` in this take's room, through its camera (``shot``: a crop of the
        take's frame; ``shake``: another shake, in pixels), as floats (T, 3, H, W), noise-free."""
        shot, shake = shot or self.shot, self.shake if shake is None else shake
        left = round((shot.left - self.shot.left) / shot.pixel)
        top = round((shot.top - self.shot.top) / shot.pixel)
        room = self.backdrop[..., top : top + shot.height, left : left + shot.width]
        frames = render(identity, motion, shot=shot, backdrop=room)
        return film(frames, shake * 2 / torch.tensor([shot.width, shot.height]))

    @cached_property
    def real(self) -> np.ndarray:
        """The real video, uint8 (T, H, W, 3): the person with their own motion, with the camera's noise."""
        frames = to_numpy_image(self.film(self.person, self.motion))
        return sensor_noise(frames, self._generator("noise"))

    def keypoints(self, identity: Identity, motion: FaceState) -> torch.Tensor:
        """The renderer's face keypoints of ``identity`` doing ``motion``, (T, K, 2) in this take's scene units."""
        return geometry_keypoints(identity, motion)[0]

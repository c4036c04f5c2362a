"""The paper's ten actions as trajectories of the talking head's state, with random timing and amplitude."""

from __future__ import annotations

import math

import torch

from dataset_script.schema import ACTIONS

from .face import FaceState


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def envelope(frames: int, generator: torch.Generator, peaks: int = 1) -> torch.Tensor:
    """0 -> 1 -> 0 over a random stretch of the clip (cosine ramps), repeated ``peaks`` times."""
    time = torch.arange(frames, dtype=torch.float32) / max(frames - 1, 1)
    start = _uniform(generator, 0.05, 0.3)
    length = _uniform(generator, 0.45, 0.75) * (1 - start)
    phase = ((time - start) / length).clamp(0, 1)
    return torch.sin(math.pi * phase * peaks).abs() ** 1.5 * (phase > 0) * (phase < 1)


def idle(frames: int, generator: torch.Generator) -> FaceState:
    """The small, slow sway of a person holding still."""
    time = torch.arange(frames, dtype=torch.float32) / 25.0
    state = FaceState.neutral(frames)
    for name, amplitude in (("yaw", 2.5), ("pitch", 2.0), ("roll", 1.5), ("tx", 0.015), ("ty", 0.01)):
        wave = sum(
            _uniform(generator, 0.3, 1.0) * torch.sin(2 * math.pi * _uniform(generator, 0.1, 0.6) * time
                                                    + _uniform(generator, 0, 2 * math.pi))
            for _ in range(2)
        )  # fmt: skip
        setattr(state, name, amplitude * wave / 2 + _uniform(generator, -amplitude, amplitude))
    return state


def action_trajectory(action: str, frames: int, generator: torch.Generator) -> FaceState:
    """A person performing ``action`` over ``frames`` frames (25 fps), on top of their idle sway."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; choose from {ACTIONS}")
    state = idle(frames, generator)
    side = 1.0 if torch.rand((), generator=generator).item() < 0.5 else -1.0
    if action == "blink":
        peaks = int(torch.randint(1, 4, (), generator=generator))
        state.eyelid = envelope(frames, generator, peaks) ** 0.5 * _uniform(generator, 0.9, 1.0)
    elif action == "open_mouth":
        state.mouth_open = envelope(frames, generator) * _uniform(generator, 0.6, 1.0)
    elif action == "yaw":
        state.yaw = state.yaw + side * envelope(frames, generator) * _uniform(generator, 22, 38)
    elif action == "nod":
        peaks = int(torch.randint(1, 3, (), generator=generator))
        state.pitch = state.pitch + envelope(frames, generator, peaks) * _uniform(generator, 12, 22)
    elif action == "right_slope":
        state.roll = state.roll + envelope(frames, generator) * _uniform(generator, 12, 25)
    elif action == "left_slope":
        state.roll = state.roll - envelope(frames, generator) * _uniform(generator, 12, 25)
    elif action == "look_up":
        state.pitch = state.pitch - envelope(frames, generator) * _uniform(generator, 12, 22)
    elif action == "smile":
        curve = envelope(frames, generator)
        state.smile = curve * _uniform(generator, 0.7, 1.0)
        state.mouth_open = curve * _uniform(generator, 0.0, 0.25)
    elif action == "surprise":
        curve = envelope(frames, generator)
        state.brow_raise = curve * _uniform(generator, 0.7, 1.0)
        state.eyelid = -curve * _uniform(generator, 0.5, 1.0)
        state.mouth_open = curve * _uniform(generator, 0.4, 0.8)
    elif action == "embarrassment":
        curve = envelope(frames, generator)
        state.pitch = state.pitch + curve * _uniform(generator, 10, 18)
        state.yaw = state.yaw + side * curve * _uniform(generator, 8, 18)
        state.smile = curve * _uniform(generator, 0.3, 0.6)
        state.eyelid = curve * _uniform(generator, 0.2, 0.4)
    return state


def source_pose(generator: torch.Generator) -> FaceState:
    """A near-frontal, neutral frame, as the paper picks frontal source frames."""
    state = FaceState.neutral(1)
    state.yaw[:] = _uniform(generator, -4, 4)
    state.pitch[:] = _uniform(generator, -3, 3)
    state.roll[:] = _uniform(generator, -3, 3)
    return state

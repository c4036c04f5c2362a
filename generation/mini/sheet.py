"""The mini's contact sheet: per action, the source face (as cropped), the driving frame, the fake and a real clip.

It depends on the generator's pieces (the cast), never on the generator itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from dataset_script.files import atomic_path
from dataset_script.frames import read_frames
from dataset_script.schema import ACTIONS

from ..motion import to_numpy_image
from .cast import filmed_person, real_trajectory
from .face import FaceState
from .filming import source_frame

COLUMNS = ("source (A)", "driving (B, real)", "fake (A animated by B)", "real (A)")
THUMB = 128
LABEL_WIDTH = 120
HEADER = 22


def peak_frame(state: FaceState) -> int:
    """The frame where the action is strongest (largest departure from the first frame)."""
    values = torch.stack([state.yaw / 30, state.pitch / 20, state.roll / 20, state.eyelid, state.mouth_open,
                          state.smile, state.brow_raise], -1)  # fmt: skip
    return int((values - values[:1]).abs().sum(-1).argmax())


def write_contact_sheet(out: Path, plans, seed: int, frames: int) -> Path:
    canvas = Image.new("RGB", (LABEL_WIDTH + THUMB * len(COLUMNS), HEADER + THUMB * len(ACTIONS)), "white")
    draw = ImageDraw.Draw(canvas)
    for column, title in enumerate(COLUMNS):
        draw.text((LABEL_WIDTH + column * THUMB + 4, 5), title, fill="black")
    real_file = {(p.source_id, p.action): p.file for p in plans if p.label == "real"}
    for row, action in enumerate(ACTIONS):
        fake = min((p for p in plans if p.label == "fake" and p.action == action), key=lambda p: p.file)
        motion = real_trajectory(fake.driving_id, action, seed, frames)
        peak = peak_frame(motion)
        own_peak = peak_frame(real_trajectory(fake.source_id, action, seed, frames))
        source = source_frame(filmed_person(fake.source_id, seed, fake.seed), fake.seed, frames).image
        tiles = [
            to_numpy_image(source)[0],
            read_frames(out / real_file[(fake.driving_id, action)], [peak])[0].permute(1, 2, 0).numpy(),
            read_frames(out / fake.file, [peak])[0].permute(1, 2, 0).numpy(),
            read_frames(out / real_file[(fake.source_id, action)], [own_peak])[0].permute(1, 2, 0).numpy(),
        ]
        top = HEADER + row * THUMB
        draw.text((6, top + THUMB // 2 - 6), action, fill="black")
        for column, tile in enumerate(tiles):
            image = Image.fromarray(np.ascontiguousarray(tile)).resize((THUMB, THUMB), Image.BILINEAR)
            canvas.paste(image, (LABEL_WIDTH + column * THUMB, top))
    path = out / "contact_sheet.png"
    with atomic_path(path, suffix=".png") as partial:
        canvas.save(partial)
    return path

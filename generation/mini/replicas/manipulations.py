"""The replicas' manipulations, each made the way its method works, with the mini's renderer.

Every fake starts from the very frames of its target's real video (same room, motion, shake and sensor noise)
and replaces one region of each frame with a re-rendering, as the real methods paste their output back into the
target frame:

* face swap (Deepfakes, FaceSwap, Celeb-DF-v2): the source person's inner face (skin, eyes, brows, nose, lips) on
  the target's head, in the target's pose and expression, blended into the target frame over an ellipse from
  brows to below the lips. The source's skin meets the target's at the blending boundary, and the colour
  correction leaves part of the mismatch. Deepfakes' autoencoder decodes the face at a lower resolution (soft)
  and blends it with a wide feathered mask; FaceSwap's graphics pipeline pastes a sharp, landmark-fitted face
  with a hard edge that jitters from frame to frame with the fitting error; Celeb-DF's improved synthesis is
  sharper than Deepfakes, colour-corrected and feathered wide;
* expression reenactment (Face2Face): the target person re-rendered with the source video's expressions (lids,
  brows, mouth, smile), a slightly smoothed model-based rendering over the inner face;
* mouth re-rendering (NeuralTextures): only the mouth region, with the source's mouth motion, through a neural
  renderer that loses a little detail; eyes and brows stay the target's own pixels.

Generated faces carry no camera noise unless the method copies real pixels (FaceSwap's texture does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ...motion import to_numpy_image
from ..animate import sensor_noise
from ..face import FaceState, Identity, Shot
from .scene import Take

INNER_FACE_TRAITS = ("skin", "eye_x", "eye_y", "eye_size", "iris", "brow_thickness", "brow_colour", "nose",
                     "mouth_y", "mouth_width", "lip_colour")  # fmt: skip
"""What a face swap takes from the source: the inner face. Head shape, hair, light and room stay the target's."""
MAX_MISMATCH = 0.03
"""The most mean colour difference (per channel, of 1) that a correction leaves: a visible seam, not a mask."""
EXPRESSION_FIELDS = {"none": (), "all": ("eyelid", "mouth_open", "smile", "brow_raise"),
                     "mouth": ("mouth_open", "smile")}  # fmt: skip


@dataclass(frozen=True)
class Manipulation:
    name: str
    appearance: str
    """``source``: the source's inner face on the target (a swap); ``target``: the target re-rendered."""
    expression: str
    """Which expression fields come from the source's video: a key of ``EXPRESSION_FIELDS``."""
    region: str
    """``face`` (brows to below the lips) or ``mouth``."""
    decoder_side: int
    """Pixels across the face that the generator outputs (Deepfakes' autoencoder: 64); 0: the frame's own."""
    feather: float
    """Width of the blending boundary, in pixels."""
    colour_correction: float
    """Share of the mean colour difference inside the region that is corrected (1: none left)."""
    misregistration: float
    """Per-frame error of the pasted face's position, in pixels (landmark fitting)."""
    camera_noise: bool
    """Whether the pasted region keeps camera noise (pixels copied from a real frame)."""


MANIPULATIONS: dict[str, Manipulation] = {
    m.name: m
    for m in (
        Manipulation("Deepfakes", "source", "none", "face", 64, 4.0, 0.5, 0.0, False),
        Manipulation("Face2Face", "target", "all", "face", 0, 2.5, 0.9, 0.3, False),
        Manipulation("FaceSwap", "source", "none", "face", 0, 0.6, 0.3, 0.8, True),
        Manipulation("NeuralTextures", "target", "mouth", "mouth", 0, 2.0, 1.0, 0.0, False),
        Manipulation("Celeb-DF", "source", "none", "face", 256, 5.0, 0.85, 0.0, False),
    )
}
"""The manipulations by name: FaceForensics++'s four methods (their folder names) and Celeb-DF-v2's synthesis."""


def swapped_identity(target: Identity, source: Identity) -> Identity:
    """The target's head with the source's inner face."""
    return replace(target, **{trait: getattr(source, trait) for trait in INNER_FACE_TRAITS})


def mixed_motion(target: FaceState, source: FaceState, expression: str) -> FaceState:
    """The target's motion with the named expression fields taken from the source's."""
    return replace(target, **{field: getattr(source, field) for field in EXPRESSION_FIELDS[expression]})


def region_mask(keypoints: torch.Tensor, region: str, shot: Shot, feather: float) -> torch.Tensor:
    """A soft (T, 1, H, W) mask of ``region`` over ``shot``'s pixels, from the renderer's keypoints (T, K, 2):
    an ellipse turned with the eyes' line, 1 inside, falling to 0 over about ``feather`` pixels at its edge."""
    eyes, brows = keypoints[:, 1:3], keypoints[:, 3:5]
    corners, chin = keypoints[:, 6:8], keypoints[:, 9]
    across = eyes[:, 1] - eyes[:, 0]
    across = across / across.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    if region == "face":
        top = brows.mean(1)
        centre = top + 0.45 * (chin - top)
        half_across = 1.15 * (eyes[:, 1] - eyes[:, 0]).norm(dim=-1)
        half_along = 0.52 * (chin - top).norm(dim=-1)
    elif region == "mouth":
        mouth = corners.mean(1)
        centre = mouth + 0.15 * (chin - mouth)
        half_across = 0.8 * (corners[:, 1] - corners[:, 0]).norm(dim=-1)
        half_along = 0.8 * (chin - mouth).norm(dim=-1)
    else:
        raise ValueError(f"unknown region {region!r}; choose face or mouth")
    offset = shot.grid()[None] - centre[:, None, None, :]  # (T, H, W, 2)
    along_axis = torch.stack([-across[:, 1], across[:, 0]], -1)
    u = (offset * across[:, None, None, :]).sum(-1) / half_across[:, None, None]
    v = (offset * along_axis[:, None, None, :]).sum(-1) / half_along[:, None, None]
    outside = (torch.sqrt(u**2 + v**2) - 1) * half_along[:, None, None] / shot.pixel  # ~pixels past the edge
    return torch.sigmoid(-outside / max(feather / 4, 1e-3))[:, None]


def _box(mask: torch.Tensor, margin: int) -> tuple[int, int, int, int]:
    """The pixel box (left, top, right, bottom) where any frame's mask is above 1/1000, grown by ``margin``."""
    rows = torch.nonzero(mask.amax((0, 1, 3)) > 1e-3).flatten()
    columns = torch.nonzero(mask.amax((0, 1, 2)) > 1e-3).flatten()
    height, width = mask.shape[-2:]
    return (max(0, int(columns[0]) - margin), max(0, int(rows[0]) - margin),
            min(width, int(columns[-1]) + 1 + margin), min(height, int(rows[-1]) + 1 + margin))  # fmt: skip


def _decode_at(frames: torch.Tensor, side: int, face_pixels: float) -> torch.Tensor:
    """What a generator that outputs ``side`` pixels across a face of ``face_pixels`` gives: the detail finer
    than that is gone (nothing, where the face is no wider than ``side``)."""
    scale = side / face_pixels
    if not side or scale >= 1:
        return frames
    small = F.interpolate(frames, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(small, size=frames.shape[-2:], mode="bilinear", align_corners=False)


def manipulate(method: str, target: Take, source: Take, generator: torch.Generator) -> np.ndarray:
    """The fake of ``method`` made from ``target``'s real video with ``source``'s face or expressions:
    uint8 (T, H, W, 3), the target's real frames outside the manipulated region."""
    manipulation = MANIPULATIONS[method]
    identity = target.person
    if manipulation.appearance == "source":
        identity = swapped_identity(target.person, source.person)
    motion = mixed_motion(target.motion, source.motion, manipulation.expression)
    # The region covers the target's face and the re-rendered one (a source's mouth may open wider).
    mask = torch.maximum(
        region_mask(target.keypoints(target.person, target.motion), manipulation.region, target.shot,
                    manipulation.feather),
        region_mask(target.keypoints(identity, motion), manipulation.region, target.shot, manipulation.feather),
    )  # fmt: skip
    left, top, right, bottom = _box(mask, margin=4)
    mask = mask[..., top:bottom, left:right]
    # Only the manipulated box is re-rendered; the fitting error moves the pasted face with the camera's shake.
    shake = target.shake
    if manipulation.misregistration:
        shake = shake + (torch.rand(shake.shape, generator=generator) * 2 - 1) * manipulation.misregistration
    crop = target.shot.crop(left, top, right, bottom)
    face_pixels = (mask[:, 0] > 0.5).any(1).sum(-1).float().mean().item()  # the region's width
    face = _decode_at(target.film(identity, motion, crop, shake), manipulation.decoder_side, face_pixels)
    real = torch.from_numpy(target.real[:, top:bottom, left:right]).permute(0, 3, 1, 2).float() / 255
    weight = mask / mask.sum((2, 3), keepdim=True).clamp_min(1e-6)
    difference = ((real - face) * weight).sum((2, 3), keepdim=True)
    mismatch = ((1 - manipulation.colour_correction) * difference).clamp(-MAX_MISMATCH, MAX_MISMATCH)
    face = face + difference - mismatch
    face = face.clamp(0, 1)
    if manipulation.camera_noise:
        face = torch.from_numpy(sensor_noise(to_numpy_image(face), generator)).permute(0, 3, 1, 2).float() / 255
    fake = target.real.copy()
    fake[:, top:bottom, left:right] = to_numpy_image(torch.lerp(real, face, mask))
    return fake

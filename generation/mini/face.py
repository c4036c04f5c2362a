"""A procedural talking head, rendered from scratch every frame (vectorised in torch over frames).

The head is a rotated ellipsoid with a nose ellipsoid attached, ray-cast orthographically per pixel, so that
pose hides the far side of the face and shading follows the pose. Eyes, lids, brows, lips, teeth and hair are
painted in the head's own surface coordinates (u, v), so they move with it; eyelids cover the eyes and the
inside of the mouth shows when it opens. ``identity.Identity`` is everything that stays fixed for a person;
``FaceState`` is what changes from frame to frame. Coordinates are FOMM's: (x, y) in [-1, 1], x right, y down,
z to the viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..motion import make_coordinate_grid
from .body import render_body, room_behind
from .drawing import ellipse, paint, soft
from .identity import Identity


@dataclass
class FaceState:
    """What changes from frame to frame; each field is a (T,) tensor. Angles in degrees."""

    yaw: torch.Tensor
    pitch: torch.Tensor
    roll: torch.Tensor
    tx: torch.Tensor
    ty: torch.Tensor
    eyelid: torch.Tensor  # 0 open, 1 closed, negative wide open
    mouth_open: torch.Tensor  # 0 closed .. 1 wide
    smile: torch.Tensor  # 0 .. 1
    brow_raise: torch.Tensor  # 0 .. 1

    @classmethod
    def neutral(cls, frames: int) -> FaceState:
        return cls(**{field.name: torch.zeros(frames) for field in fields(cls)})

    def __len__(self) -> int:
        return self.yaw.shape[0]

    def select(self, index) -> FaceState:
        return FaceState(**{field.name: getattr(self, field.name)[index] for field in fields(self)})


def rotation_matrices(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """(T, 3, 3) head-to-camera rotations: yaw about y, then pitch about x (positive looks down), then roll."""
    y, p, r = (torch.deg2rad(angle) for angle in (yaw, pitch, roll))
    zeros, ones = torch.zeros_like(y), torch.ones_like(y)
    rot_y = torch.stack([torch.cos(y), zeros, torch.sin(y), zeros, ones, zeros, -torch.sin(y), zeros, torch.cos(y)], -1)
    rot_x = torch.stack([ones, zeros, zeros, zeros, torch.cos(p), torch.sin(p), zeros, -torch.sin(p), torch.cos(p)], -1)
    rot_z = torch.stack([torch.cos(r), -torch.sin(r), zeros, torch.sin(r), torch.cos(r), zeros, zeros, zeros, ones], -1)
    return rot_z.view(-1, 3, 3) @ rot_x.view(-1, 3, 3) @ rot_y.view(-1, 3, 3)


def head_centres(identity: Identity, state: FaceState) -> torch.Tensor:
    """(T, 3) head centre in camera space."""
    zeros = torch.zeros_like(state.tx)
    return torch.stack([state.tx, state.ty + identity.head_y, zeros], dim=-1)


def nose_centre(identity: Identity) -> torch.Tensor:
    """Nose ellipsoid centre in head coordinates: on the face, pushed out so its tip stands proud."""
    a, b, c = identity.radii
    return torch.tensor([0.0, 0.1 * b, c * 0.9])


def _ray_ellipsoid(origin: list[torch.Tensor], direction: torch.Tensor, radii) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest-to-viewer hit of rays ``origin + s * direction`` with an axis-aligned ellipsoid.

    ``origin`` is three (T, H, W) coordinate planes; ``direction`` is (T, 3), one per frame (orthographic)."""
    inverse = [1 / r**2 for r in radii]
    d = [direction[:, i, None, None] for i in range(3)]
    a = sum(d[i] * d[i] * inverse[i] for i in range(3))
    b = 2 * sum(origin[i] * (d[i] * inverse[i]) for i in range(3))
    c = sum(origin[i] * origin[i] * inverse[i] for i in range(3)) - 1
    discriminant = b * b - 4 * a * c
    s = (torch.sqrt(discriminant.clamp_min(0)) - b) / (2 * a)
    return discriminant > 0, s


TEXTURE_SIZE = 160


def face_texture(identity: Identity, state: FaceState, size: int = TEXTURE_SIZE) -> torch.Tensor:
    """Albedo of the face in surface coordinates (u, v) in [-1, 1]: (T, 3, size, size), one per frame.

    Painting at texture resolution and sampling it per pixel is several times cheaper than painting per
    pixel, and the bilinear lookup anti-aliases every feature for free."""
    frames = len(state)
    grid = make_coordinate_grid(size, size)
    u, v = grid[..., 0][None], grid[..., 1][None]
    texture = torch.tensor(identity.skin).view(1, 3, 1, 1).repeat(frames, 1, size, size)
    ex, ey = identity.eye_x, identity.eye_y
    eru, erv = identity.eye_size
    shade = torch.ones(1, size, size)
    for side in (-1.0, 1.0):  # eye sockets are a little darker than the cheeks
        shade = shade - 0.2 * torch.exp(-(((u - side * ex) / (eru * 1.5)) ** 2) - ((v - ey) / (erv * 2.4)) ** 2)
    cheeks = torch.exp(-(((torch.abs(u) - 0.45) / 0.2) ** 2) - ((v - 0.2) / 0.2) ** 2)
    texture = texture * shade[:, None] * (1 + 0.05 * cheeks[:, None])
    wide = (-state.eyelid).clamp_min(0)[:, None, None]
    closure = state.eyelid.clamp(0, 1)[:, None, None]
    eye_rv = erv * (1 + 0.35 * wide)
    lid_colour = tuple(0.82 * x for x in identity.skin)
    for side in (-1.0, 1.0):
        cu = side * ex
        eye = soft(ellipse(u, v, cu, ey, eru, eye_rv), 0.08)
        iris_distance = torch.sqrt((u - cu) ** 2 + (v - ey) ** 2)
        eyeball = torch.full_like(texture, 0.93)
        eyeball = paint(eyeball, identity.iris, soft(iris_distance - 0.055, 0.006).expand(frames, -1, -1))
        eyeball = paint(eyeball, (0.02, 0.02, 0.02), soft(iris_distance - 0.024, 0.005).expand(frames, -1, -1))
        glint = soft(torch.sqrt((u - cu + 0.018) ** 2 + (v - ey + 0.02) ** 2) - 0.011, 0.004)
        eyeball = paint(eyeball, (1.0, 1.0, 1.0), glint.expand(frames, -1, -1))
        lid_edge = ey - eye_rv + 2 * eye_rv * closure  # the upper lid comes down as the eye closes
        eyeball = paint(eyeball, lid_colour, soft(v - lid_edge, 0.006))
        texture = paint(texture, eyeball, eye)
        lash = torch.exp(-(((v - lid_edge) / 0.012) ** 2)) * soft(ellipse(u, v, cu, ey, eru * 1.08, eye_rv * 1.3), 0.05)
        texture = paint(texture, (0.07, 0.05, 0.04), 0.85 * lash)
        brow_v = ey - eye_rv - 0.08 - 0.09 * state.brow_raise[:, None, None] - 0.04 * (1 - ((u - cu) / 0.17) ** 2)
        brow = soft(torch.abs(v - brow_v) - identity.brow_thickness, 0.008) * soft(torch.abs(u - cu) - 0.17, 0.012)
        texture = paint(texture, identity.brow_colour, brow)

    # Mouth: lips along a line that curls up at the corners when smiling; the lower lip drops as it opens.
    smile = state.smile[:, None, None]
    opening = 0.2 * state.mouth_open[:, None, None]
    mouth_width = identity.mouth_width * (1 + 0.18 * smile)
    across = (u / mouth_width).clamp(-1, 1)
    within = soft(torch.abs(u) - mouth_width, 0.01)
    line = identity.mouth_y - 0.07 * smile * across**2 + 0.02 * smile
    lip = 0.05 * (1 - across**2).clamp_min(0) ** 0.5
    gap = opening * (1 - across**2).clamp_min(0)
    upper_lip = soft(torch.abs(v - (line - lip / 2)) - lip / 2, 0.006)
    cavity = soft(torch.abs(v - (line + gap / 2)) - gap / 2, 0.005) * (gap > 0.004)
    lower_lip = soft(torch.abs(v - (line + gap + lip * 0.6)) - lip * 0.6, 0.006)
    texture = paint(texture, identity.lip_colour, (upper_lip + lower_lip).clamp(0, 1) * within)
    mouth_inside = paint(torch.full_like(texture, 0.0) + torch.tensor((0.28, 0.06, 0.07)).view(1, 3, 1, 1),
                          (0.94, 0.93, 0.87), soft(v - (line + 0.045), 0.006))  # fmt: skip
    texture = paint(texture, mouth_inside, cavity * within)
    return texture


EXPRESSION_STEP = 1 / 40


def expression_textures(identity: Identity, state: FaceState) -> torch.Tensor:
    """One texture per frame, painted once per distinct expression (quantised to 1/40: a lid step of under
    half a texel), since most frames of a clip share most of their expression."""
    expression = torch.stack([state.eyelid, state.mouth_open, state.smile, state.brow_raise], -1)
    quantised = torch.round(expression / EXPRESSION_STEP) * EXPRESSION_STEP
    unique, inverse = torch.unique(quantised, dim=0, return_inverse=True)
    zeros = torch.zeros(len(unique))
    distinct = FaceState(zeros, zeros, zeros, zeros, zeros, *unique.unbind(-1))
    return face_texture(identity, distinct)[inverse]


@dataclass(frozen=True)
class Shot:
    """A camera framing other than the default square close-up: a ``height`` x ``width`` frame whose pixels are
    ``pixel`` scene units apart, its top-left corner at scene point (``left``, ``top``). The person stays at the
    scene's origin, so a wider shot makes the face smaller and the corner decides where in the frame it sits."""

    height: int
    width: int
    pixel: float
    left: float
    top: float

    def grid(self) -> torch.Tensor:
        """(H, W, 2) scene (x, y) of each pixel's centre."""
        xs = self.left + (torch.arange(self.width, dtype=torch.float32) + 0.5) * self.pixel
        ys = self.top + (torch.arange(self.height, dtype=torch.float32) + 0.5) * self.pixel
        return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)

    def to_pixels(self, points: torch.Tensor) -> torch.Tensor:
        """Scene (x, y) points (..., 2) in this frame's pixel units (column, row), pixel centres at +0.5."""
        return (points - torch.tensor([self.left, self.top])) / self.pixel

    def crop(self, left: int, top: int, right: int, bottom: int) -> Shot:
        """The part of this frame from pixel column ``left`` and row ``top`` up to (not including) ``right`` and
        ``bottom``, as a shot of its own: rendering it gives those pixels of this shot's frame."""
        return Shot(bottom - top, right - left, self.pixel, self.left + left * self.pixel, self.top + top * self.pixel)


def render(identity: Identity, state: FaceState, size: int = 256, chunk: int = 12, shot: Shot | None = None,
           backdrop: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
    """Render frames (T, 3, size, size), floats in [0, 1], noise-free (the camera adds noise later).

    ``shot`` frames the scene otherwise (then frames are (T, 3, shot.height, shot.width) and ``size`` is unused),
    and ``backdrop`` (1, 3, H, W) replaces the plain wall behind the person, for full-frame videos."""
    if shot is None:
        grid, limits = make_coordinate_grid(size, size), None
    else:
        grid, limits = shot.grid(), torch.tensor([shot.width, shot.height])
    px, py = grid[..., 0][None], grid[..., 1][None]  # (1, H, W)
    room = room_behind(identity, px, py) if backdrop is None else backdrop
    reach = max(identity.radii[1], nose_centre(identity)[2].item() + identity.nose[2]) * 1.02
    images = torch.empty(len(state), 3, *px.shape[-2:])  # filled chunk by chunk: no copy of the whole clip at the end
    for start in range(0, len(state), chunk):
        part = state.select(slice(start, start + chunk))
        centre = head_centres(identity, part)
        image = render_body(identity, centre, room, px, py, images[start : start + chunk])
        # Ray-cast only the box the head reaches in these few frames: about half the frame.
        if shot is None:
            low = ((centre[:, :2].amin(0) - reach + 1) * size / 2).floor().clamp(0, size).int().tolist()
            high = ((centre[:, :2].amax(0) + reach + 1) * size / 2).ceil().clamp(0, size).int().tolist()
        else:
            low = torch.minimum(shot.to_pixels(centre[:, :2].amin(0) - reach).floor().clamp_min(0), limits)
            high = torch.minimum(shot.to_pixels(centre[:, :2].amax(0) + reach).ceil().clamp_min(0), limits)
            low, high = low.int().tolist(), high.int().tolist()
        (x0, y0), (x1, y1) = low, high
        if x1 > x0 and y1 > y0:
            box = image[:, :, y0:y1, x0:x1]
            head, on_head = _render_head(identity, part, centre, px[:, y0:y1, x0:x1], py[:, y0:y1, x0:x1])
            # only the head's shading can leave [0, 1]: the room and the body are blends of colours inside it
            image[:, :, y0:y1, x0:x1] = torch.where(on_head[:, None], head.clamp_(0, 1), box)
    return images


def _render_head(identity: Identity, state: FaceState, centre: torch.Tensor, px: torch.Tensor, py: torch.Tensor):
    rotation = rotation_matrices(state.yaw, state.pitch, state.roll)  # (T, 3, 3)

    # Rays along -z from the viewer, in head coordinates: o = R^T (p - c), d = R^T e_z. The per-pixel work is written
    # per coordinate plane (no (T, H, W, 3) tensors, no per-pixel einsum; einsum only on the (T, 3) per-frame
    # vectors), which makes the whole render several times faster.
    offset = -torch.einsum("tji,tj->ti", rotation, centre)  # R^T (-c)
    origin = [
        rotation[:, 0, i, None, None] * px + rotation[:, 1, i, None, None] * py + offset[:, i, None, None]
        for i in range(3)
    ]
    direction = rotation[:, 2, :]
    hit_head, s_head = _ray_ellipsoid(origin, direction, identity.radii)
    nose_at = nose_centre(identity).tolist()
    nose_origin = [origin[i] - nose_at[i] for i in range(3)]
    hit_nose, s_nose = _ray_ellipsoid(nose_origin, direction, identity.nose)
    on_nose = hit_nose & (~hit_head | (s_nose > s_head))
    on_head = hit_head | on_nose
    s = torch.where(on_nose, s_nose, s_head)
    local = [origin[i] + s * direction[:, i, None, None] for i in range(3)]
    nose_local = [local[i] - nose_at[i] for i in range(3)]

    a, b, c = identity.radii
    u, v, w = local[0] / a, local[1] / b, local[2] / c
    normal = [torch.where(on_nose, nose_local[i] / identity.nose[i] ** 2, local[i] / identity.radii[i] ** 2)
              for i in range(3)]  # fmt: skip
    normal_length = torch.sqrt(sum(n * n for n in normal)).clamp_min(1e-6)
    light = torch.tensor(identity.light)
    half = light + torch.tensor([0.0, 0.0, 1.0])
    half = half / half.norm()
    # n_world . L = n_local . (R^T L): rotate the two light vectors once per frame instead of every normal.
    light_local = torch.einsum("tji,j->ti", rotation, light)
    half_local = torch.einsum("tji,j->ti", rotation, half)
    diffuse = (sum(normal[i] * light_local[:, i, None, None] for i in range(3)) / normal_length).clamp_min(0)
    specular = (sum(normal[i] * half_local[:, i, None, None] for i in range(3)) / normal_length).clamp_min(0)
    specular = specular * specular
    specular = specular * specular
    specular = specular * specular * specular * specular * specular  # ** 20, as products: pow is slow

    texture = expression_textures(identity, state)
    albedo = torch.nn.functional.grid_sample(texture, torch.stack([u, v], -1).clamp(-1, 1), align_corners=False)
    nu, nv, nw = (nose_local[i] / identity.nose[i] for i in range(3))
    nostrils = sum(soft(ellipse(nu, nv, side * 0.42, 0.66, 0.24, 0.15), 0.1) for side in (-1.0, 1.0))
    albedo = paint(albedo, (0.2, 0.1, 0.08), 0.85 * nostrils * on_nose * (nw > 0))
    hair = (
        (v < identity.hairline + 0.2 * u**2) | ((torch.abs(u) > 0.84) & (v < 0.1)) | ((w < -0.1) & (v < 0.35))
    ) & ~on_nose
    hair_colour = torch.tensor(identity.hair_colour).view(1, 3, 1, 1) * (0.9 + 0.1 * torch.sin(40 * u + 6 * v))[:, None]
    albedo = torch.where(hair[:, None], hair_colour, albedo)

    specular = specular * (~hair)
    shaded = albedo * (0.3 + 0.75 * diffuse[:, None]) + 0.1 * specular[:, None]

    return shaded, on_head

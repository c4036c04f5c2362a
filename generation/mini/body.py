"""What the mini's renderer draws around a head: the room behind the person, and their neck and shirt."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .drawing import ellipse, paint, soft

if TYPE_CHECKING:
    from .identity import Identity


SHOULDERS_TOP = 0.85
"""Where the shirt's ellipse (centre y 1.35, half-height 0.5) begins; it ends at 1.85."""
LOWEST_VISIBLE = 1.8
"""Below the shirt's end the neck would show, so no framing of a person reaches lower."""
BODY_REACH = 1.0
"""The shirt's half-width; the neck is narrower."""
_SOFT_EDGE_REACH = 0.15
"""Past this many scene units from a soft edge (softness 0.01) the shape's weight is below 1e-6: nothing to paint."""


def room_behind(identity: Identity, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """The wall behind the person, (1, 3, H, W): a vertical gradient with soft uneven lighting."""
    top, bottom = identity.background
    gradient = ((py + 1) / 2).clamp(0, 1)[:, None]  # a whole frame reaches past the close-up's [-1, 1]: no overshoot
    room = torch.lerp(torch.tensor(top).view(1, 3, 1, 1), torch.tensor(bottom).view(1, 3, 1, 1), gradient)
    return room * (0.9 + 0.1 * torch.cos(3 * px + 2 * py))[:, None]


def render_body(identity: Identity, centre: torch.Tensor, room: torch.Tensor, px, py,
                body: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Neck and shirt in front of the room, written into ``body`` (T, 3, H, W), which is returned.

    Painted only inside the window they can reach this chunk (below the head's centre, within the shirt's width of
    it); the rest of the frame is the room. A whole frame is mostly room, so this saves most of the work there."""
    half_neck = identity.radii[0] * 0.5
    body.copy_(room.expand_as(body))
    rows, columns = py[0, :, 0].contiguous(), px[0, 0, :].contiguous()  # the grids are separable: y by row, x by column
    highest = min(float(centre[:, 1].min()), SHOULDERS_TOP) - _SOFT_EDGE_REACH
    left = float(centre[:, 0].min()) * 0.5 - BODY_REACH - _SOFT_EDGE_REACH  # the neck (0.8 x) lies inside the shirt
    right = float(centre[:, 0].max()) * 0.5 + BODY_REACH + _SOFT_EDGE_REACH
    y0 = int(torch.searchsorted(rows, torch.tensor(highest)))
    x0, x1 = (int(i) for i in torch.searchsorted(columns, torch.tensor([left, right])))
    if y0 < len(rows) and x1 > x0:
        window = (..., slice(y0, None), slice(x0, x1))
        body[window] = _paint_body(identity, centre, body[window], px[window], py[window], half_neck)
    return body


def _paint_body(identity: Identity, centre: torch.Tensor, room: torch.Tensor, px, py, half_neck: float):
    neck_x = px - centre[:, 0, None, None] * 0.8
    neck = soft(torch.abs(neck_x) - half_neck, 0.01) * (py > centre[:, 1, None, None])
    neck_shade = 0.45 + 0.3 * (1 - (neck_x / half_neck) ** 2).clamp_min(0)
    neck_colour = torch.tensor(identity.skin).view(1, 3, 1, 1) * neck_shade[:, None]
    body = torch.lerp(room, neck_colour, neck[:, None])
    shoulders = soft(ellipse(px, py, centre[:, 0, None, None] * 0.5, 1.35, BODY_REACH, 0.5), 0.01)
    return paint(body, identity.shirt, shoulders)

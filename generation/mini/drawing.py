"""Drawing primitives of the mini's renderer: soft-edged shapes and blending colours into frames."""

from __future__ import annotations

import torch


def soft(distance: torch.Tensor, softness: float = 0.01) -> torch.Tensor:
    """Anti-aliased inside test: 1 well inside (distance < 0), 0 outside."""
    return torch.sigmoid(-distance / softness)


def ellipse(u, v, cu, cv, ru, rv):
    """How far (u, v) lies outside the ellipse centred at (cu, cv) with half-axes (ru, rv), in units of its size."""
    return torch.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2) - 1


def paint(canvas: torch.Tensor, colour, amount: torch.Tensor) -> torch.Tensor:
    """Blend ``colour`` (an RGB triple or a (T, 3, ...) tensor) into canvas (T, 3, ...) by ``amount`` (T, ...)."""
    if not torch.is_tensor(colour):
        colour = torch.tensor(colour, dtype=canvas.dtype).view(1, 3, *([1] * (canvas.ndim - 2)))
    return torch.lerp(canvas, colour.expand_as(canvas), amount[:, None])

"""Area resampling of uint8 frames from a summed-area table: whole frames (an image pyramid) and many boxes at once.

``interpolate(mode="area")`` is adaptive average pooling: each output pixel is the mean of a rectangle of input
pixels. From a table of prefix sums any rectangle's sum is four look-ups, exact in integers, so a frame's pyramid
levels and thousands of boxes cut from it cost in proportion to the pixels they give, not to those they read, and
the means come out to the bit as ``interpolate`` gives them (MTCNN's stages in ``dataset_script.mtcnn`` rely on
that to agree with facenet-pytorch's).
"""

from __future__ import annotations

import functools

import torch


def area_bins(start: torch.Tensor, end: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first and past-the-last input pixel of each of ``size`` bins over each span [start, end) (K,): (K, size)
    each, the bins of ``adaptive_avg_pool``, which may overlap by a pixel."""
    length, index = (end - start)[:, None], torch.arange(size, device=start.device)
    return start[:, None] + index * length // size, start[:, None] + ((index + 1) * length + size - 1) // size


@functools.lru_cache(maxsize=64)
def _whole_span_bins(length: int, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``area_bins`` over a whole frame's side, and each bin's pixel count as float32 (the same for every frame and
    chunk of a pyramid level, so worked out once)."""
    whole = torch.zeros(1, dtype=torch.long, device=device)
    first, end = (bins[0] for bins in area_bins(whole, whole + length, size))
    return first, end, (end - first).float()


class SummedAreaTable:
    """Prefix sums of ``count`` uint8 frames (3, H, W), exact in integers, filled a few frames at a time.

    Laid out (H + 1, count, 3, W + 1), so that the rows a pyramid level needs are whole-row copies."""

    def __init__(self, count: int, height: int, width: int, device: torch.device | str = "cpu"):
        self.dtype = torch.int32 if 255 * height * width < 2**31 else torch.int64
        self.table = torch.empty(height + 1, count, 3, width + 1, dtype=self.dtype, device=device)
        self.table[0], self.table[..., 0] = 0, 0  # ``fill`` writes the rest
        self.height, self.width = height, width
        self.index_dtype = torch.int32 if self.table.numel() < 2**31 else torch.int64

    def fill(self, start: int, frames: torch.Tensor) -> None:
        """The table of uint8 frames (n, 3, H, W), those from ``start`` on."""
        part = self.table[1:, start : start + len(frames), :, 1:]
        part.copy_(frames.to(self.dtype).cumsum(-1, dtype=self.dtype).permute(2, 0, 1, 3))
        for row in range(1, self.height):  # a vectorised add per row: faster than a cumulative sum across rows
            part[row] += part[row - 1]

    def resized(self, start: int, stop: int, height: int, width: int) -> torch.Tensor:
        """Frames ``start`` to ``stop`` resized to ``height`` x ``width``: float32 (n, 3, height, width) in
        channels-last memory (the layout P-Net's convolutions run fastest on)."""
        row0, row1, row_counts = _whole_span_bins(self.height, height, self.table.device)
        col0, col1, col_counts = _whole_span_bins(self.width, width, self.table.device)
        frames = self.table[:, start:stop]
        rows = frames.index_select(0, row1) - frames.index_select(0, row0)  # (height, n, 3, W + 1)
        # gather, not index_select: twice as fast along the innermost dimension
        col0, col1 = (cols.expand(*rows.shape[:-1], width) for cols in (col0, col1))
        means = torch.div(rows.gather(3, col1) - rows.gather(3, col0), row_counts[:, None, None, None])
        # Divided as PyTorch's adaptive average pooling divides, by the bin's height and then its width; both while
        # the width is the innermost dimension, where dividing by a row of counts is fast.
        means.div_(col_counts)
        return torch.empty(means.permute(1, 2, 0, 3).shape, device=means.device,
                           memory_format=torch.channels_last).copy_(means.permute(1, 2, 0, 3))  # fmt: skip

    def boxes_resized(self, frames: torch.Tensor, spans: torch.Tensor, size: int) -> torch.Tensor:
        """Each span (K, 4: x0, y0, x1, y1, half-open pixels) of its frame (K,) resized to ``size`` x ``size``: float32
        (K, 3, size, size) in channels-last memory, as ``interpolate(crop, size, mode="area")`` gives each."""
        row0, row1 = area_bins(spans[:, 1], spans[:, 3], size)
        col0, col1 = area_bins(spans[:, 0], spans[:, 2], size)
        count, channels, row_length = self.table.shape[1:]
        rows = torch.stack([row0, row1], dim=1) * (count * channels * row_length)
        cols = torch.stack([col0, col1], dim=1) + (frames * channels * row_length)[:, None, None]
        channel = torch.arange(channels, device=frames.device) * row_length
        corner = rows.to(self.index_dtype)[:, :, :, None, None] + cols.to(self.index_dtype)[:, None, None]
        index = corner[..., None] + channel.to(self.index_dtype)  # (K, 2, size, 2, size, 3): channels innermost
        corners = self.table.view(-1).index_select(0, index.view(-1)).view(index.shape)
        sums = corners[:, 1, :, 1] - corners[:, 0, :, 1] - corners[:, 1, :, 0] + corners[:, 0, :, 0]
        heights, widths = (row1 - row0).float()[:, :, None, None], (col1 - col0).float()[:, None, :, None]
        return (sums / heights / widths).permute(0, 3, 1, 2)

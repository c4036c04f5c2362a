"""MTCNN face detection (Zhang et al. 2016) with facenet-pytorch's weights and arithmetic, batched over frames.

facenet-pytorch crops and resizes every candidate box on its own before R-Net and O-Net, one ``interpolate`` call
per box, and its P-Net spends as long again in ``max_pool2d``: together about half its time on a batch of frames.
Here each stage's candidates of all frames are cut out and resized at once from a summed-area table of the frames
(``dataset_script.summed_area``: facenet's resize is an area average, and four look-ups per output pixel give it
to the bit), the scale pyramid comes from the same table, P-Net's 2x2 pooling is element-wise maxima of strided
views, and non-maximum suppression runs on all frames at once with the frame as the group. The work goes in parts
small enough for the cache, on channels-last maps, one part per torch thread (``dataset_script.parts_in_threads``).
Everything else (the pyramid's scales, the thresholds, the box regressions, squaring, clipping to the frame, the
landmarks, which boxes each stage keeps) follows facenet-pytorch 2.6.0 (MIT) operation by operation, so boxes and
landmarks agree with its to float rounding (about 1e-4 pixels). The weights are the state dicts in
facenet-pytorch's wheel; nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from .parts_in_threads import PartsInThreads
from .summed_area import SummedAreaTable

MIN_FACE_SIZE = 20
PYRAMID_FACTOR = 0.709
THRESHOLDS = (0.6, 0.7, 0.7)
"""Each stage's least face probability, facenet-pytorch's defaults."""
PNET_SCALE_NMS, PNET_NMS, RNET_NMS, ONET_NMS = 0.5, 0.7, 0.7, 0.7
"""Overlap above which a weaker box goes: within one pyramid scale, across scales, after R-Net (all IoU), after
O-Net (intersection over the smaller box's area)."""
PNET_PIXELS = 200_000
"""Pixels of the pyramid's largest level that P-Net sees at once."""
CROPS_AT_ONCE = {24: 256, 48: 64}
"""R-Net's and O-Net's crops per pass: their first maps then stay in the cache (about twice as fast as thousands at
once), and a busy frame's thousands of candidates need little memory."""


def facenet_weights(name: str) -> dict[str, torch.Tensor]:
    """The state dict ``pnet``, ``rnet`` or ``onet`` shipped in facenet-pytorch's wheel (found without importing
    the package, whose import pulls in much more)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("MTCNN's weights come with facenet-pytorch: pip install --no-deps facenet-pytorch==2.6.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.pt"
    return torch.load(path, weights_only=True, map_location="cpu")


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(x, 2, 2, ceil_mode=True)`` as element-wise maxima of strided views: several times faster on a
    CPU than PyTorch's pooling kernel at P-Net's map sizes, and the same values."""
    height, width = x.shape[-2:]
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    pooled = torch.empty((*x.shape[:-2], (height + 1) // 2, (width + 1) // 2), dtype=x.dtype, device=x.device,
                         memory_format=layout)  # fmt: skip
    rows = torch.maximum(x[..., 0 : height - 1 : 2, :], x[..., 1:height:2, :])
    torch.maximum(rows[..., 0 : width - 1 : 2], rows[..., 1:width:2], out=pooled[..., : height // 2, : width // 2])
    # ceil_mode: an odd last row or column is a window of its own
    if width % 2:
        pooled[..., : height // 2, -1] = rows[..., -1]
    if height % 2:
        last = x[..., -1, :]
        torch.maximum(last[..., 0 : width - 1 : 2], last[..., 1:width:2], out=pooled[..., -1, : width // 2])
        if width % 2:
            pooled[..., -1, -1] = last[..., -1]
    return pooled


class PNet(nn.Module):
    """Proposal net: fully convolutional, one 12x12 window per output cell (stride 2)."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box offsets (N, h, w, 4) and the face probability (N, h, w) of each cell."""
        x = max_pool_2x2(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        # The two 1x1 heads as one product over channels: PyTorch runs such thin 1x1 convolutions on a slow path.
        weight = torch.cat([self.conv4_2.weight, self.conv4_1.weight]).flatten(1)
        cells = F.linear(x.permute(0, 2, 3, 1), weight, torch.cat([self.conv4_2.bias, self.conv4_1.bias]))
        # softmax over two classes, as a logistic of their difference: torch's softmax is slow over a dimension of 2
        return cells[..., :4], torch.sigmoid(cells[..., 5] - cells[..., 4])


def _flatten_as_trained(x: torch.Tensor) -> torch.Tensor:
    # The weights came from Caffe, whose dense layers read a map width-first.
    return x.permute(0, 3, 2, 1).reshape(len(x), -1)


class RNet(nn.Module):
    """Refinement net on 24x24 crops."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box offsets (K, 4) and the face probability (K,)."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_as_trained(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), self.dense5_1(x).softmax(dim=1)[:, 1]


class ONet(nn.Module):
    """Output net on 48x48 crops: the final box, probability and five landmarks."""

    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Box offsets (K, 4), landmarks (K, 10: five x then five y, relative to the crop) and probability (K,)."""
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = max_pool_2x2(self.prelu3(self.conv3(x)))
        x = self.prelu5(self.dense5(_flatten_as_trained(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), self.dense6_1(x).softmax(dim=1)[:, 1]


@dataclass
class Candidates:
    """Boxes of all frames at one stage: (K, 4) corners x0, y0, x1, y1, their scores, frame indices and, until they
    are applied, the net's box offsets (K, 4)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    frames: torch.Tensor
    offsets: torch.Tensor | None = None

    def __getitem__(self, keep: torch.Tensor) -> Candidates:
        offsets = None if self.offsets is None else self.offsets[keep]
        return Candidates(self.boxes[keep], self.scores[keep], self.frames[keep], offsets)

    def __len__(self) -> int:
        return len(self.boxes)

    @staticmethod
    def empty(device: torch.device) -> Candidates:
        boxes, scores = torch.zeros(0, 4, device=device), torch.zeros(0, device=device)
        return Candidates(boxes, scores, torch.zeros(0, dtype=torch.long, device=device), boxes.clone())

    @staticmethod
    def cat(parts: list[Candidates]) -> Candidates:
        return Candidates(*(torch.cat([getattr(part, name) for part in parts])
                            for name in ("boxes", "scores", "frames", "offsets")))  # fmt: skip


@dataclass(frozen=True)
class FrameFaces:
    """One frame's faces, largest first (as facenet-pytorch orders them)."""

    boxes: np.ndarray
    """(K, 4) float32: x0, y0, x1, y1."""
    probabilities: np.ndarray
    """(K,) float32."""
    landmarks: np.ndarray
    """(K, 5, 2) float32: eyes, nose, mouth corners."""


def pyramid_scales(height: int, width: int, min_face_size: int, factor: float) -> list[float]:
    """Scales at which P-Net's 12-pixel window sees faces from ``min_face_size`` up to the frame's short side."""
    scale = 12.0 / min_face_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale, side = scale * factor, side * factor
    return scales


def _normalised(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - 127.5) * 0.0078125


def _regressed(boxes: torch.Tensor, offsets: torch.Tensor, inclusive: bool) -> torch.Tensor:
    """Boxes moved by offsets in units of their size; P-Net's sizes are x1 - x0, the later stages' x1 - x0 + 1."""
    extra = 1 if inclusive else 0
    width, height = boxes[:, 2] - boxes[:, 0] + extra, boxes[:, 3] - boxes[:, 1] + extra
    return boxes + offsets * torch.stack([width, height, width, height], dim=1)


def _squared(boxes: torch.Tensor) -> torch.Tensor:
    """Each box grown along its shorter side into a square about the same centre."""
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(width, height)
    x0, y0 = boxes[:, 0] + width * 0.5 - side * 0.5, boxes[:, 1] + height * 0.5 - side * 0.5
    return torch.stack([x0, y0, x0 + side, y0 + side], dim=1)


def _pixel_spans(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The pixels facenet-pytorch crops for each box: its corners truncated to integers and clipped to the frame,
    as half-open spans x0, y0, x1, y1 (its 1-based inclusive start is one pixel before the truncated corner)."""
    corners = boxes.trunc().int()
    x0, y0 = corners[:, 0].clamp(min=1) - 1, corners[:, 1].clamp(min=1) - 1
    x1, y1 = corners[:, 2].clamp(max=width), corners[:, 3].clamp(max=height)
    return torch.stack([x0, y0, x1, y1], dim=1).long()


def nms_by_smaller_area(candidates: Candidates, threshold: float) -> torch.Tensor:
    """Indices kept by greedy suppression within each frame, strongest first, where overlap is the intersection over
    the smaller box's area and sizes count both end pixels (O-Net's last step, as facenet-pytorch does it)."""
    order = candidates.scores.argsort(descending=True, stable=True)
    boxes, frames = candidates.boxes[order], candidates.frames[order]
    area = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    top_left = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    intersection = (bottom_right - top_left + 1).clamp(min=0).prod(dim=2)
    overlaps = intersection / torch.minimum(area[:, None], area[None, :]) > threshold
    suppresses = (overlaps & (frames[:, None] == frames[None, :])).cpu().numpy()
    removed, kept = np.zeros(len(order), dtype=bool), []
    for index in range(len(order)):  # after O-Net a frame holds a few boxes: this loop is short
        if not removed[index]:
            kept.append(index)
            removed |= suppresses[index]
    return order[torch.as_tensor(kept, dtype=torch.long, device=order.device)]


class MTCNN:
    """The three stages on batches of frames; ``detect`` answers as ``facenet_pytorch.MTCNN(keep_all=True)
    .detect(frames, landmarks=True)`` does, per frame."""

    def __init__(self, device: str | torch.device = "cpu", min_face_size: int = MIN_FACE_SIZE,
                 factor: float = PYRAMID_FACTOR, thresholds: tuple[float, float, float] = THRESHOLDS):  # fmt: skip
        self.device = torch.device(device)
        self.min_face_size, self.factor, self.thresholds = min_face_size, factor, thresholds
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        self._parts = PartsInThreads(self.device)  # each stage's parts: frames for P-Net, crops for R- and O-Net
        for name, net in (("pnet", self.pnet), ("rnet", self.rnet), ("onet", self.onet)):
            net.load_state_dict(facenet_weights(name))
            net.eval().to(self.device)

    @torch.inference_mode()
    def detect(self, frames: torch.Tensor) -> list[FrameFaces]:
        """Faces of each uint8 frame of (N, 3, H, W)."""
        if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != torch.uint8:
            raise ValueError(f"expected uint8 frames shaped (N, 3, H, W), got {tuple(frames.shape)} {frames.dtype}")
        if not len(frames):
            return []
        frames = frames.to(self.device)
        table = SummedAreaTable(len(frames), *frames.shape[-2:], device=self.device)
        candidates = self._proposals(frames, table)
        landmarks = torch.zeros(0, 5, 2, device=self.device)
        if len(candidates):
            candidates = self._refined(candidates, table)
            if len(candidates):
                candidates, landmarks = self._outputs(candidates, table)
        return self._per_frame(candidates, landmarks, len(frames))

    def _proposals(self, frames: torch.Tensor, table: SummedAreaTable) -> Candidates:
        """P-Net over the scale pyramid: squared boxes, at most one per face and scale. Fills ``table``."""
        height, width = frames.shape[-2:]
        scales = pyramid_scales(height, width, self.min_face_size, self.factor)
        if not scales:  # a frame smaller than the least face
            return Candidates.empty(self.device)
        # A few frames at a time keep the table's rows and P-Net's maps in the cache: twice as fast as all at once.
        # The small levels take more frames a time, as their cost is mostly that of starting the operations.
        levels = [(int(height * scale + 1), int(width * scale + 1)) for scale in scales]
        at_once = [max(1, PNET_PIXELS // (level[0] * level[1])) for level in levels]
        step, count = at_once[0], len(frames)
        large = sum(frames_at_once < 2 * step for frames_at_once in at_once)  # levels shrink: the first ones

        def cells(level: int, start: int, stop: int) -> Candidates:
            return self._cells(table.resized(start, stop, *levels[level]), scales[level], start)

        def chunk(start: int) -> list[Candidates]:  # these frames' rows of the table, and their large levels
            table.fill(start, frames[start : start + step])
            return [cells(level, start, min(start + step, count)) for level in range(large)]

        def small_level(level_and_start: tuple[int, int]) -> Candidates:
            level, start = level_and_start
            return cells(level, start, min(start + at_once[level], count))

        found = [part for parts in self._parts.map(chunk, range(0, count, step)) for part in parts]
        found += self._parts.map(small_level, [(level, start) for level in range(large, len(scales))
                                         for start in range(0, count, at_once[level])])  # fmt: skip
        candidates = Candidates.cat(found)
        candidates = candidates[batched_nms(candidates.boxes, candidates.scores, candidates.frames, PNET_NMS)]
        candidates.boxes = _squared(_regressed(candidates.boxes, candidates.offsets, inclusive=False))
        return candidates

    def _cells(self, resized: torch.Tensor, scale: float, first_frame: int) -> Candidates:
        """P-Net's face cells in frames resized to ``scale``, the weaker of overlapping ones in a frame dropped."""
        cell_offsets, probability = self.pnet(resized.sub_(127.5).mul_(0.0078125))  # _normalised, in place
        hit = probability >= self.thresholds[0]
        frame, row, col = hit.nonzero(as_tuple=True)
        cells = torch.stack([col, row], dim=1).float()
        # A cell is a 12-pixel window at stride 2 of the resized frame, mapped back to the frame's pixels.
        boxes = torch.cat([((2 * cells + 1) / scale).floor(), ((2 * cells + 11 + 1) / scale).floor()], dim=1)
        cells = Candidates(boxes, probability[hit], frame + first_frame, cell_offsets[hit])
        return cells[batched_nms(cells.boxes, cells.scores, cells.frames, PNET_SCALE_NMS)]

    def _scored(self, net: nn.Module, candidates: Candidates, table: SummedAreaTable, size: int):
        """``net`` on every candidate's crop, resized to ``size``; candidates whose crop is empty (boxes wholly
        outside the frame) are dropped first. The kept candidates and the net's outputs."""
        spans = _pixel_spans(candidates.boxes, table.height, table.width)
        inside = (spans[:, 2] > spans[:, 0]) & (spans[:, 3] > spans[:, 1])
        candidates, spans = candidates[inside], spans[inside]
        step = CROPS_AT_ONCE[size]

        def part(start: int) -> tuple[torch.Tensor, ...]:
            crops = table.boxes_resized(candidates.frames[start : start + step], spans[start : start + step], size)
            return net(_normalised(crops))

        parts = self._parts.map(part, range(0, len(candidates), step))
        return candidates, [torch.cat(outputs) for outputs in zip(*parts, strict=True)]

    def _refined(self, candidates: Candidates, table: SummedAreaTable) -> Candidates:
        """R-Net on 24x24 crops: squared boxes of the candidates it believes."""
        candidates, (offsets, probability) = self._scored(self.rnet, candidates, table, 24)
        candidates = Candidates(candidates.boxes, probability, candidates.frames, offsets)
        candidates = candidates[probability > self.thresholds[1]]
        candidates = candidates[batched_nms(candidates.boxes, candidates.scores, candidates.frames, RNET_NMS)]
        candidates.boxes = _squared(_regressed(candidates.boxes, candidates.offsets, inclusive=True))
        return candidates

    def _outputs(self, candidates: Candidates, table: SummedAreaTable) -> tuple[Candidates, torch.Tensor]:
        """O-Net on 48x48 crops: the final boxes and their landmarks (K, 5, 2)."""
        candidates, (offsets, marks, probability) = self._scored(self.onet, candidates, table, 48)
        believed = probability > self.thresholds[2]
        candidates = Candidates(candidates.boxes, probability, candidates.frames, offsets)[believed]
        boxes, marks = candidates.boxes, marks[believed]
        # Landmarks are fractions of the box O-Net saw (its size counting both end pixels), from its 1-based corner.
        width, height = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
        xs = width[:, None] * marks[:, :5] + boxes[:, 0:1] - 1
        ys = height[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1
        candidates.boxes = _regressed(boxes, candidates.offsets, inclusive=True)
        keep = nms_by_smaller_area(candidates, ONET_NMS)
        return candidates[keep], torch.stack([xs, ys], dim=2)[keep]

    @staticmethod
    def _per_frame(candidates: Candidates, landmarks: torch.Tensor, count: int) -> list[FrameFaces]:
        boxes, scores = candidates.boxes.cpu().numpy(), candidates.scores.cpu().numpy()
        frames, landmarks = candidates.frames.cpu().numpy(), landmarks.cpu().numpy()
        faces = []
        for frame in range(count):
            mine = np.flatnonzero(frames == frame)
            area = (boxes[mine, 2] - boxes[mine, 0]) * (boxes[mine, 3] - boxes[mine, 1])
            mine = mine[np.argsort(-area, kind="stable")]
            faces.append(FrameFaces(boxes[mine], scores[mine], landmarks[mine]))
        return faces

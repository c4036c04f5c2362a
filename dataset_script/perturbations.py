"""What a clip goes through between a camera and a detector, at five levels each: DeeperForensics-1.0's seven
perturbations (Jiang et al. 2020), the field's robustness protocol, plus rescaling.

The levels are DeeperForensics-1.0's own (``get_distortion_parameter`` in its perturbation code,
github.com/EndlessSora/DeeperForensics-1.0, ``perturbation/``): level 1 is the mildest, 5 the strongest, and level 0
leaves the clip as it is. Where our operation differs from that code, the entry says how and why.

Frame perturbations take one video's uint8 frames (T, 3, H, W) and return uint8 frames of the same shape. Whatever
is random (block positions, noise) is drawn from the ``generator`` passed in, so a seed gives the same frames; each
frame gets its own draws, as DeeperForensics-1.0 perturbs each frame on its own. Video compression is the one
perturbation of a whole clip: x264's motion search and rate control see every frame, so it re-encodes the clip's
file (``compress_at_levels``, through ``dataset_script.compression``) rather than the sampled frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .compression import CompressionJob, compress_videos

LEVELS = (1, 2, 3, 4, 5)

FramePerturbation = Callable[[torch.Tensor, float, torch.Generator | None], torch.Tensor]


@dataclass(frozen=True)
class Perturbation:
    """One kind of perturbation: its short name (DeeperForensics-1.0's), what it does, its parameter at each level
    and, for those that work on frames, the operation (None for video compression, which re-encodes the file)."""

    name: str
    description: str
    parameters: tuple[float, ...]
    """The operation's parameter at levels 1 to 5."""
    unit: str
    operation: FramePerturbation | None = None

    @property
    def on_video(self) -> bool:
        return self.operation is None

    def parameter(self, level: int) -> float:
        if level not in LEVELS:
            raise ValueError(f"{self.name}: level {level} does not exist; use 0 (none) or one of {LEVELS}")
        return self.parameters[level - 1]

    def __call__(self, frames: torch.Tensor, level: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``frames`` (uint8, T x 3 x H x W) at ``level``; level 0 returns them as they are."""
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[1] != 3:
            raise ValueError(f"{self.name}: expected uint8 frames shaped (T, 3, H, W), not {frames.dtype} "
                             f"{tuple(frames.shape)}")  # fmt: skip
        if level == 0:
            return frames
        parameter = self.parameter(level)
        if self.operation is None:
            raise TypeError(f"{self.name} re-encodes the whole video: use compress_at_levels, then read its output")
        return self.operation(frames, parameter, generator)


def to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Floats on the 0-255 scale rounded and clipped back to uint8."""
    return pixels.round_().clamp_(0, 255).to(torch.uint8)


# JPEG's full-range BT.601 YCbCr (JFIF), on [0, 1] with chroma centred on 0.5. DeeperForensics-1.0 converts through
# OpenCV's YCrCb and then rescales to the studio range (16-235/240); the full range scales the noise the same way up to
# a factor of 255/219, and keeps a saturation factor of 1 an exact identity.
_RGB_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCBCR_TO_RGB = torch.linalg.inv(_RGB_TO_YCBCR)
_CHROMA_OFFSET = torch.tensor([0.0, 0.5, 0.5]).view(1, 3, 1, 1)


def _to_ycbcr(frames: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,tjhw->tihw", _RGB_TO_YCBCR, frames.float() / 255.0) + _CHROMA_OFFSET


def _from_ycbcr(ycbcr: torch.Tensor) -> torch.Tensor:
    return to_uint8(torch.einsum("ij,tjhw->tihw", _YCBCR_TO_RGB, ycbcr - _CHROMA_OFFSET) * 255.0)


def color_saturation(frames: torch.Tensor, factor: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Chroma (Cb, Cr) pulled towards grey by ``factor``: 0 leaves luma only."""
    ycbcr = _to_ycbcr(frames)
    ycbcr[:, 1:] = 0.5 + (ycbcr[:, 1:] - 0.5) * factor
    return _from_ycbcr(ycbcr)


def color_contrast(frames: torch.Tensor, factor: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Every value times ``factor``: DeeperForensics-1.0's contrast change squeezes the range to [0, 255 x factor]
    towards black (its code truncates; we round)."""
    return to_uint8(frames.float() * factor)


BLOCK_SIDE, BLOCK_GREY = 8, 128


def block_wise(frames: torch.Tensor, blocks: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``blocks`` grey 8x8 squares per 256 pixels of the short side (DeeperForensics-1.0's count), at random places
    in each frame. Frames under 256 pixels get the 256-pixel count, where that code would put none."""
    count, height, width = frames.shape[0], frames.shape[-2], frames.shape[-1]
    if min(height, width) <= BLOCK_SIDE:
        raise ValueError(f"BW: frames of {height}x{width} have no room for {BLOCK_SIDE}-pixel blocks")
    per_frame = int(blocks) * max(1, min(height, width) // 256)
    # top-left corners from 0 to side - 1 - BLOCK_SIDE, as DeeperForensics-1.0's randint(0, side - 1 - width)
    tops = torch.randint(height - BLOCK_SIDE, (count, per_frame), generator=generator)
    lefts = torch.randint(width - BLOCK_SIDE, (count, per_frame), generator=generator)
    offsets = torch.arange(BLOCK_SIDE)
    rows = (tops[..., None] + offsets)[..., :, None].expand(-1, -1, -1, BLOCK_SIDE)
    columns = (lefts[..., None] + offsets)[..., None, :].expand(-1, -1, BLOCK_SIDE, -1)
    frame = torch.arange(count).view(count, 1, 1, 1).expand_as(rows)
    covered = torch.zeros(count, height, width, dtype=torch.bool)
    covered[frame, rows, columns] = True
    return frames.masked_fill(covered[:, None], BLOCK_GREY)


def gaussian_noise_color(frames: torch.Tensor, variance: float, generator: torch.Generator | None = None
                         ) -> torch.Tensor:  # fmt: skip
    """White Gaussian noise of ``variance`` added to Y, Cb and Cr on a [0, 1] scale."""
    ycbcr = _to_ycbcr(frames)
    noise = torch.randn(ycbcr.shape, generator=generator)
    return _from_ycbcr(ycbcr + math.sqrt(variance) * noise)


def gaussian_blur(frames: torch.Tensor, kernel: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """A ``kernel`` x ``kernel`` Gaussian with sigma ``kernel / 6`` (DeeperForensics-1.0's ``cv2.GaussianBlur``
    arguments), mirrored at the border without repeating the edge pixel (OpenCV's default, torch's ``reflect``)."""
    size = int(kernel)
    half = size // 2
    if min(frames.shape[-2:]) <= half:
        raise ValueError(f"GB: frames of {tuple(frames.shape[-2:])} are too small for a {size}-pixel kernel")
    return to_uint8(separable_gaussian(frames.float(), size / 6, half, "reflect"))


def separable_gaussian(pixels: torch.Tensor, sigma: float, half: int, pad_mode: str,
                       memory_format: torch.memory_format = torch.channels_last) -> torch.Tensor:  # fmt: skip
    """Float frames (N, C, H, W) blurred by a Gaussian of ``sigma`` cut at ``half`` pixels each side, padded with
    ``pad_mode`` (F.pad's), along rows and then columns, the convolutions run on ``memory_format``.

    Depthwise convolutions run several times faster on channels-last memory than on NCHW on a CPU (measured:
    ``benchmarks/upload_augment.py``, whose baseline passes ``torch.contiguous_format``); decoded frames are
    channels-last already, the frame cache's are not."""
    size, channels = 2 * half + 1, pixels.shape[1]
    taps = torch.exp(-0.5 * (torch.arange(size, dtype=torch.float32) - half).square() / sigma**2)
    taps /= taps.sum()
    pixels = F.pad(pixels.contiguous(memory_format=memory_format), (half, half, half, half), mode=pad_mode)
    pixels = F.conv2d(pixels, taps.view(1, 1, 1, size).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(pixels, taps.view(1, 1, size, 1).repeat(channels, 1, 1, 1), groups=channels)


def jpeg_compression(frames: torch.Tensor, quality: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each frame through a real JPEG encode and decode at ``quality`` (libjpeg, 4:2:0 chroma)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    encoded = encode_jpeg(list(frames), quality=int(quality))
    return torch.stack(decode_jpeg(encoded))


def _resize(pixels: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    # antialias only matters when shrinking; it makes the kernel's footprint follow the scale, as PIL's and
    # ffmpeg's scalers do, so that a downscale averages rather than skips pixels
    return F.interpolate(pixels, size=size, mode=mode, antialias=mode != "bilinear", align_corners=False)


def rescale(frames: torch.Tensor, factor: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Down to ``factor`` of the size and back up: a platform's transcode to a lower resolution (bicubic, the
    default kernel of ffmpeg's scaler and of PIL's resize, antialiased) shown at the original size again
    (bilinear, as a player or a detector's input resize does)."""
    height, width = frames.shape[-2:]
    small = (max(1, round(height * factor)), max(1, round(width * factor)))
    down = _resize(frames.float(), small, "bicubic")
    return to_uint8(_resize(down, (height, width), "bilinear"))


def zoom(frames: torch.Tensor, factor: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Enlarged by ``factor`` (bicubic) and cropped back to the original size around the centre: a crop-and-scale
    that leaves the face larger and its finest detail interpolated."""
    height, width = frames.shape[-2:]
    large = (round(height * factor), round(width * factor))
    pixels = _resize(frames.float(), large, "bicubic")
    top, left = (large[0] - height) // 2, (large[1] - width) // 2
    return to_uint8(pixels[..., top : top + height, left : left + width])


PERTURBATIONS: dict[str, Perturbation] = {
    p.name: p
    for p in (
        # DeeperForensics-1.0's seven, with its levels: CS, CC, BW, GNC, GB and VC as its code has them
        Perturbation("CS", "colour saturation change (YCbCr chroma scaling)", (0.4, 0.3, 0.2, 0.1, 0.0), "chroma x",
                     color_saturation),
        Perturbation("CC", "colour contrast change (values scaled)", (0.85, 0.725, 0.6, 0.475, 0.35), "x",
                     color_contrast),
        Perturbation("BW", "local block-wise distortion (grey 8x8 blocks)", (16, 32, 48, 64, 80), "blocks",
                     block_wise),
        Perturbation("GNC", "white Gaussian noise in YCbCr", (0.001, 0.002, 0.005, 0.01, 0.05), "variance",
                     gaussian_noise_color),
        Perturbation("GB", "Gaussian blur (sigma = kernel / 6)", (7, 9, 13, 17, 21), "px kernel", gaussian_blur),
        # DeeperForensics-1.0's code implements "JPEG" as a down-and-up resize by 2 to 6 (what LipForensics calls
        # pixelation), not as JPEG; we encode real JPEG, at qualities of our own from a web re-save (80) to the
        # blocky end (10), and RS below covers resampling
        Perturbation("JPEG", "JPEG compression (libjpeg quality)", (80, 60, 40, 20, 10), "quality",
                     jpeg_compression),
        Perturbation("VC", "video compression (H.264, libx264 CRF)", (30, 32, 35, 38, 40), "CRF"),
        # beyond DeeperForensics-1.0: rescaling, what uploads go through most (our levels)
        Perturbation("RS", "rescaling down and up (bicubic down, bilinear up)", (0.9, 0.8, 0.7, 0.6, 0.5), "x size",
                     rescale),
        Perturbation("ZOOM", "rescaling: zoom in (bicubic) and centre crop", (1.1, 1.15, 1.2, 1.25, 1.3), "x size",
                     zoom),
    )
}  # fmt: skip
"""Every perturbation by name, in the order of DeeperForensics-1.0's tables, then rescaling."""


def compressed_path(folder: Path, source: Path, level: int) -> Path:
    """Where ``compress_at_levels`` puts ``source`` compressed at ``level``."""
    return folder / f"crf{int(PERTURBATIONS['VC'].parameter(level))}" / f"{source.stem}.mp4"


def compress_at_levels(sources: Sequence[Path], folder: Path, levels: Iterable[int] = LEVELS, progress: bool = True,
                       workers: int | None = None) -> dict[Path, dict[int, Path]]:  # fmt: skip
    """Each source re-encoded with libx264 at the CRF of each video-compression level, from one decode per source
    (``dataset_script.compression``: the command of the c23/c40 qualities); outputs made before are reused. Returns
    each source's output per level. The sources' names (stems) must differ."""
    levels = [level for level in levels if level]
    stems = [source.stem for source in sources]
    if len(set(stems)) != len(stems):
        raise ValueError("compress_at_levels: two sources share a file name; their outputs would collide")
    outputs = {source: {level: compressed_path(folder, source, level) for level in levels} for source in sources}
    for paths in outputs.values():
        for path in paths.values():
            path.parent.mkdir(parents=True, exist_ok=True)
    crf = {level: int(PERTURBATIONS["VC"].parameter(level)) for level in levels}
    jobs = [CompressionJob(source, tuple((path, crf[level]) for level, path in outputs[source].items()))
            for source in sources]  # fmt: skip
    compress_videos(jobs, workers=workers, progress=progress, desc="re-encoding (VC)")
    return outputs

"""Training augmentation with what an uploaded clip goes through before a detector sees it.

A detector trained on pixel-exact dataset crops learns the finest pixel structure, and reads any resampling as a
generator's trace: the Space's own crop of an upload (another box, another resize) then turned every real clip
"fake". So training crops go through an upload's life, one draw per video (a clip stays one clip): a crop a few
pixels off and zoomed a little, a resize to another resolution and back with random kernels, a real H.264
re-encode at a random CRF (PyAV, in-process: an ffmpeg process per sample would cost more than the step), and mild
blur and noise. ``benchmarks``' robustness experiment (``python -m training.experiments robustness``) measures what
it buys.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .perturbations import separable_gaussian, to_uint8

KERNELS = ("bilinear", "bicubic", "area", "nearest-exact")
"""The resampling kernels an upload may have met: in phones, editors, players and the Space's own crop."""


def _uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _log_uniform(generator: torch.Generator | None, low: float, high: float) -> float:
    return math.exp(_uniform(generator, math.log(low), math.log(high)))


def _kernel(generator: torch.Generator | None) -> str:
    return KERNELS[int(torch.randint(len(KERNELS), (), generator=generator))]


def resize(frames: torch.Tensor, size: int, kernel: str) -> torch.Tensor:
    """uint8 frames (N, 3, H, W) to ``size`` x ``size`` with ``kernel``, antialiased where the kernel allows, back
    to uint8 as every resampler an upload meets writes 8-bit pixels.

    Bilinear and bicubic run on PyTorch's uint8 channels-last kernels, 2 to 3 times faster than on floats (the
    result stays channels-last in memory); ``area`` has no uint8 kernel and goes through floats."""
    if kernel == "area":
        return to_uint8(F.interpolate(frames.float(), size=(size, size), mode="area"))
    if kernel == "nearest-exact":
        return F.interpolate(frames, size=(size, size), mode=kernel)
    return F.interpolate(frames.contiguous(memory_format=torch.channels_last), size=(size, size), mode=kernel,
                         antialias=True, align_corners=False)  # fmt: skip


def reencode(frames: torch.Tensor, crf: int) -> torch.Tensor:
    """uint8 frames (N, 3, H, W) through libx264 at ``crf`` (yuv420p, as uploads are) and back, in memory."""
    import av

    count, _, height, width = frames.shape
    height, width = height - height % 2, width - width % 2  # 4:2:0 needs even sides
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        for frame in frames[..., :height, :width].permute(0, 2, 3, 1).contiguous().numpy():
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer, "r", format="h264") as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    out = frames.clone()
    out[..., :height, :width] = torch.from_numpy(np.stack(decoded[:count])).permute(0, 3, 1, 2)
    return out


@dataclass(frozen=True)
class UploadAugment:
    """One video's frames through an upload's life; each step happens with its probability, its strength drawn
    from its range. The defaults span what the Space meets: a rescale by 0.75 to 1.33, a crop up to 1.35 times
    tighter than the dataset's and a shift of a few pixels, CRF 18 (a phone) to 40 (FaceForensics++' c40).

    About a quarter of the videos stay untouched. With each step more likely (reframe 0.8, rescale and re-encode
    0.5, blur and noise 0.25: 3 % of videos untouched) the demo's 8 epochs on the mini's 14 training people were
    too few: 3 of 10 seeds missed raw's bar, two of them with video AUC 0.85 (docs/benchmarks.md).

    The reframe zooms in only, half the time. A tighter crop is an upsampling of the face, which smooths its finest
    structure as a generator does; zooming 0.85 to 1.25 a third of the time, the demo's detector called real clips
    zoomed 1.2x fake (seed 42: video accuracy 0.567), zooming 1.0 to 1.35 half the time it calls them real
    (0.950 at 8 epochs, 0.967 at the demo's 10). A looser crop mostly adds edge padding around the face, which the
    demo's centre crop never sees."""

    reframe_probability: float = 0.5
    zoom_range: tuple[float, float] = (1.0, 1.35)
    max_shift: int = 4
    rescale_probability: float = 0.3
    scale_range: tuple[float, float] = (0.75, 1.33)
    reencode_probability: float = 0.3
    crf_range: tuple[int, int] = (18, 40)
    blur_probability: float = 0.15
    blur_sigma_range: tuple[float, float] = (0.3, 1.0)
    noise_probability: float = 0.15
    noise_std_range: tuple[float, float] = (1.0, 4.0)
    """In grey levels of 255."""

    def __call__(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """uint8 (N, 3, S, S) face crops to uint8 crops of the same shape."""
        size = frames.shape[-1]
        out = frames
        if float(torch.rand((), generator=generator)) < self.reframe_probability:
            out = self._reframe(out, generator)
        if float(torch.rand((), generator=generator)) < self.rescale_probability:
            scaled = max(8, round(size * _log_uniform(generator, *self.scale_range)))
            out = resize(resize(out, scaled, _kernel(generator)), size, _kernel(generator))
        if float(torch.rand((), generator=generator)) < self.blur_probability:
            sigma = _uniform(generator, *self.blur_sigma_range)
            out = to_uint8(separable_gaussian(out.float(), sigma, math.ceil(3 * sigma), "replicate"))
        if float(torch.rand((), generator=generator)) < self.noise_probability:
            std = _uniform(generator, *self.noise_std_range)
            out = to_uint8(out.float() + std * torch.randn(out.shape, generator=generator))
        if float(torch.rand((), generator=generator)) < self.reencode_probability:
            low, high = self.crf_range
            out = reencode(out, int(torch.randint(low, high + 1, (), generator=generator)))
        return out

    def _reframe(self, frames: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """Another crop of the same face: the square ``size / zoom`` around the centre moved by a few pixels,
        edge-padded where it leaves the frame, resized back with a random kernel."""
        size = frames.shape[-1]
        side = max(8, round(size / _log_uniform(generator, *self.zoom_range)))
        shift = torch.randint(-self.max_shift, self.max_shift + 1, (2,), generator=generator).tolist()
        left, top = (size - side) // 2 + shift[0], (size - side) // 2 + shift[1]
        pad = max(0, -left, -top, left + side - size, top + side - size)
        if pad:
            frames = F.pad(frames, (pad, pad, pad, pad), mode="replicate")
        region = frames[..., top + pad : top + pad + side, left + pad : left + pad + side]
        return resize(region, size, _kernel(generator))


UPLOADS = UploadAugment()


def describe_augmentation(augment: bool) -> str:
    """What a model card records of the training augmentation: "none", or each step's probability and range."""
    if not augment:
        return "none"
    u = UPLOADS
    return (f"reframe p{u.reframe_probability} zoom {u.zoom_range[0]}-{u.zoom_range[1]} shift <= {u.max_shift} px, "
            f"rescale p{u.rescale_probability} x{u.scale_range[0]}-{u.scale_range[1]}, "
            f"H.264 p{u.reencode_probability} CRF {u.crf_range[0]}-{u.crf_range[1]}, "
            f"blur p{u.blur_probability} sigma {u.blur_sigma_range[0]}-{u.blur_sigma_range[1]}, "
            f"noise p{u.noise_probability} std {u.noise_std_range[0]}-{u.noise_std_range[1]}; "
            "then mirror and colour gains")  # fmt: skip

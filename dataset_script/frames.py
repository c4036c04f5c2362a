"""Reading frames from videos, and the frame-sampling transform for ``set_transform``/``with_transform``.

Training takes K random frames per video; evaluation takes 32 evenly spaced frames (DeepfakeBench's protocol).
Only the frames needed are decoded, in one forward pass (sorted indices, so the decoder never seeks back;
x264's default GOP is 250 frames, so per-frame seeking would decode most of the clip again and again).
Frames are resized and normalised for a timm ``pretrained_cfg``, so every detector sees what it was built for.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from .files import atomic_path
from .probe import without_internals
from .schema import EVAL_FRAMES_PER_VIDEO
from .upload_augment import UPLOADS

Decoder = Literal["torchcodec", "decord"]
VideoSource = str | Path | bytes | dict | io.BufferedIOBase
"""A path, the file's bytes, a ``datasets`` Video dict, or a binary file object open for reading (the decoder then
reads through it: FFmpeg gets no file name to resolve)."""


def keep_freed_memory() -> None:
    """Stop glibc returning each freed frame buffer to the OS: re-faulting those pages costs a third of the time
    of loops over large frame tensors (rendering, training steps). Harmless where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except OSError:
        pass


class VideoReadError(RuntimeError):
    """A video that cannot give the frames asked of it; the message names the file."""


class FrameSizeChanged(VideoReadError):
    """A decoded frame whose size is not the one the stream declared (a clip whose resolution changes midway)."""

    def __init__(self, name: str, index: int, declared: tuple[int, int], found: tuple[int, int]):
        self.index, self.declared, self.found = index, declared, found
        super().__init__(f"{name}: frame {index} is {found[0]}x{found[1]}, the stream declared {declared[0]}x"
                         f"{declared[1]}")  # fmt: skip


def evenly_spaced_indices(num_frames: int, count: int = EVAL_FRAMES_PER_VIDEO) -> np.ndarray:
    """``count`` frame indices spread from first to last frame; every frame when the clip is shorter."""
    if num_frames <= count:
        return np.arange(num_frames)
    return np.unique(np.linspace(0, num_frames - 1, count).round().astype(np.int64))


def random_indices(num_frames: int, count: int, generator: torch.Generator | None = None) -> np.ndarray:
    """``count`` random distinct frames, sorted (with repeats only when the clip is shorter than ``count``)."""
    if num_frames >= count:
        chosen = torch.randperm(num_frames, generator=generator)[:count]
    else:
        chosen = torch.randint(num_frames, (count,), generator=generator)
    return np.sort(chosen.numpy())


def _describe(source: VideoSource) -> str:
    if isinstance(source, dict):
        return str(source.get("path") or "<video bytes>")
    if isinstance(source, io.IOBase):
        return str(getattr(source, "name", "<video file object>"))
    return "<video bytes>" if isinstance(source, bytes) else str(source)


def _as_decoder_input(source: VideoSource, want_file_object: bool) -> Any:
    if hasattr(source, "_hf_encoded"):  # a VideoDecoder that `datasets` decoded; reopen its file or bytes
        source = source._hf_encoded
    if isinstance(source, dict):
        source = source.get("bytes") or source.get("path")
    if isinstance(source, bytes):
        return io.BytesIO(source) if want_file_object else source
    if isinstance(source, io.IOBase):
        return source
    return str(source)


class VideoFrames:
    """An open video: its frame count and frame rate (``fps``, 0.0 when the container does not say), and
    ``read(indices)`` giving uint8 frames shaped (N, 3, H, W).

    ``stream_index`` (torchcodec only) decodes that stream; otherwise the decoder takes FFmpeg's "best" video stream,
    which need not be the first."""

    def __init__(self, source: VideoSource, decoder: Decoder = "torchcodec", stream_index: int | None = None):
        self.name = _describe(source)
        self.decoder_name = decoder
        if stream_index is not None and decoder != "torchcodec":
            raise ValueError(f"{decoder} decodes FFmpeg's best video stream and cannot be given another: use "
                             "torchcodec")  # fmt: skip
        try:
            if decoder == "torchcodec":
                from torchcodec.decoders import VideoDecoder

                self._reader = VideoDecoder(_as_decoder_input(source, False), stream_index=stream_index,
                                            seek_mode="exact", num_ffmpeg_threads=1)  # fmt: skip
                self.num_frames = int(self._reader.metadata.num_frames or 0)
                self.fps = float(self._reader.metadata.average_fps or 0.0)
            elif decoder == "decord":
                import decord

                self._reader = decord.VideoReader(_as_decoder_input(source, True), ctx=decord.cpu(0), num_threads=1)
                self.num_frames = len(self._reader)
                self.fps = float(self._reader.get_avg_fps() or 0.0)
            else:
                raise ValueError(f"unknown decoder {decoder!r}; use 'torchcodec' or 'decord'")
        except ValueError:
            raise
        except Exception as error:  # decoders raise their own types; callers need one, with the file named
            reason = without_internals(str(error))
            raise VideoReadError(f"{self.name}: cannot open video ({type(error).__name__}: {reason})") from error

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        indices = [int(i) for i in indices]
        try:
            if self.decoder_name == "torchcodec":
                return self._reader.get_frames_at(indices).data
            frames = self._reader.get_batch(indices).asnumpy()
            return torch.from_numpy(frames).permute(0, 3, 1, 2)
        except Exception as error:
            reason = without_internals(str(error))
            raise VideoReadError(f"{self.name}: cannot decode frames {indices[:4]}... ({reason})") from error

    def read_decodable(self, indices: Sequence[int], size: tuple[int, int]) -> dict[int, torch.Tensor]:
        """Those of ``indices`` that decode, each uint8 (3, H, W), where a damaged clip loses some: in one batch
        when every frame decodes, else frame by frame, leaving out those that fail. ``size`` is (width, height) as
        the stream declares it; the first frame of another size raises FrameSizeChanged, before any later frame
        is decoded (the batch's buffer is allocated at the declared size, a frame-by-frame read at each frame's)."""
        indices = [int(i) for i in indices]
        try:
            frames = self.read(indices)
        except VideoReadError:  # one bad frame fails the batch: find which
            return self._read_one_by_one(indices, size)
        if tuple(frames.shape[-1:-3:-1]) != size:
            raise FrameSizeChanged(self.name, indices[0], size, (frames.shape[-1], frames.shape[-2]))
        return dict(zip(indices, frames, strict=True))

    def _read_one_by_one(self, indices: list[int], size: tuple[int, int]) -> dict[int, torch.Tensor]:
        decoded = {}
        for index in indices:
            try:
                if self.decoder_name == "torchcodec":
                    frame = self._reader.get_frame_at(index).data  # sized as decoded, not as the stream declares
                else:
                    frame = torch.from_numpy(self._reader[index].asnumpy()).permute(2, 0, 1)
            except Exception:  # decoders raise their own types; a frame that fails is left out
                continue
            if (frame.shape[-1], frame.shape[-2]) != size:
                raise FrameSizeChanged(self.name, index, size, (frame.shape[-1], frame.shape[-2]))
            decoded[index] = frame
        return decoded


def read_frames(source: VideoSource, indices: Sequence[int], decoder: Decoder = "torchcodec") -> torch.Tensor:
    """Decode just ``indices`` of a video (a path, bytes, or a ``datasets`` Video dict) as uint8 (N, 3, H, W)."""
    return VideoFrames(source, decoder).read(indices)


def fit_frames(frames: torch.Tensor, pretrained_cfg: dict) -> torch.Tensor:
    """uint8 (N, 3, H, W) resized and cropped to a timm model's input, still uint8 when no resizing was needed.

    As timm's evaluation transform: resize so the short side is ``input / crop_pct``, then take the centre
    ``input`` square. ``crop_pct`` 1.0 resizes the whole frame; 0.5 on 256-pixel frames with input 128 takes the
    centre at native resolution, where resizing would average away the finest traces of animation. A resized
    result is float in [0, 1].
    """
    _, height, width = pretrained_cfg.get("input_size", (3, 224, 224))
    crop_pct = float(pretrained_cfg.get("crop_pct") or 1.0)
    scale_height, scale_width = math.floor(height / crop_pct), math.floor(width / crop_pct)
    pixels = frames
    if pixels.shape[-2:] != (scale_height, scale_width):
        mode = "bicubic" if pretrained_cfg.get("interpolation") == "bicubic" else "bilinear"
        pixels = F.interpolate(pixels.float().div_(255.0), size=(scale_height, scale_width), mode=mode,
                               antialias=True, align_corners=False)  # fmt: skip
    if (scale_height, scale_width) != (height, width):  # crop before converting what is thrown away
        top, left = (scale_height - height) // 2, (scale_width - width) // 2
        pixels = pixels[..., top : top + height, left : left + width]
    return pixels


def fit_frames_uint8(frames: torch.Tensor, pretrained_cfg: dict) -> torch.Tensor:
    """``fit_frames``, rounded back to uint8 when it resized: frames as stored or shown at the model's input."""
    fitted = fit_frames(frames, pretrained_cfg)
    if fitted.dtype != torch.uint8:
        fitted = fitted.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return fitted


def standardise_frames(pixels: torch.Tensor, pretrained_cfg: dict) -> torch.Tensor:
    """Frames at the model's input size (uint8, or float in [0, 1]) minus its mean, over its std."""
    if pixels.dtype == torch.uint8:
        pixels = pixels.float().div_(255.0)
    mean = torch.tensor(pretrained_cfg.get("mean", (0.485, 0.456, 0.406))).view(1, 3, 1, 1)
    std = torch.tensor(pretrained_cfg.get("std", (0.229, 0.224, 0.225))).view(1, 3, 1, 1)
    return (pixels - mean) / std


def normalise_frames(frames: torch.Tensor, pretrained_cfg: dict) -> torch.Tensor:
    """uint8 (N, 3, H, W) to the float input a timm model expects: its input size, crop, mean and std."""
    return standardise_frames(fit_frames(frames, pretrained_cfg), pretrained_cfg)


GAIN_RANGE = (0.9, 1.1)


def augment_frames(frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One video's frames (N, 3, H, W; uint8, or floats in [0, 1]) mirrored left to right half the time and each
    channel scaled by a gain in ``GAIN_RANGE``: floats in [0, 1].

    Both keep every frame's fine structure, where a generator's traces are, and vary what a few training people
    would otherwise let a detector tie to a label: which way a face is lit and turned, its colours, its contrast.
    The same draw for all the video's frames, so a clip stays one clip."""
    if frames.dtype == torch.uint8:
        frames = frames.float().div_(255.0)
    if torch.rand((), generator=generator) < 0.5:
        frames = frames.flip(-1)
    low, high = GAIN_RANGE
    gains = low + (high - low) * torch.rand(1, frames.shape[1], 1, 1, generator=generator)
    return (frames * gains).clamp_(0, 1)


class FrameCache:
    """Every frame of a video decoded once, fitted to a model's input, and kept as uint8 in one ``.npy`` file.

    Frame-extraction pipelines (FaceForensics++, DeepfakeBench) decode their videos to images once before
    training; this does the same lazily: the first epoch decodes and writes, later epochs read a memory map.
    On a CPU, decoding a high-quality clip costs more than a light detector's step, so epochs after the first
    run several times faster. A cached file is keyed by the video (path, size and modification time, or the
    hash of its bytes) and the input geometry; it is written to a temporary name and renamed, so concurrent
    DataLoader workers and killed runs never leave half a file. Disk: input² x 3 bytes per frame.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    @staticmethod
    def geometry(pretrained_cfg: dict | None) -> str:
        if pretrained_cfg is None:
            return "as-decoded"
        _, height, width = pretrained_cfg.get("input_size", (3, 224, 224))
        crop_pct = float(pretrained_cfg.get("crop_pct") or 1.0)
        return f"{height}x{width}-crop{crop_pct:g}-{pretrained_cfg.get('interpolation') or 'bilinear'}"

    def path(self, source: VideoSource, pretrained_cfg: dict | None) -> Path:
        encoded = _as_decoder_input(source, want_file_object=False)
        if isinstance(encoded, bytes):
            identity = hashlib.sha1(encoded).hexdigest()
        else:
            stat = os.stat(encoded)
            identity = f"{Path(encoded).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        key = hashlib.sha1(identity.encode()).hexdigest()[:24]
        return self.directory / self.geometry(pretrained_cfg) / f"{key}.npy"

    def frames(self, source: VideoSource, pretrained_cfg: dict | None, decoder: Decoder = "torchcodec") -> np.ndarray:
        """All frames of ``source`` at the input geometry (None: as decoded), uint8 (N, 3, h, w), memory-mapped
        from the cache."""
        path = self.path(source, pretrained_cfg)
        if not path.exists():
            video = VideoFrames(source, decoder)
            fitted = video.read(range(video.num_frames))
            if pretrained_cfg is not None:
                fitted = fit_frames_uint8(fitted, pretrained_cfg)
            with atomic_path(path, per_process=True) as partial:  # processes may fill the same entry at once
                np.save(partial, fitted.numpy())
        return np.load(path, mmap_mode="r")


@dataclass
class FrameSampler:
    """A ``set_transform`` callable: each video becomes ``pixel_values`` (K, 3, H, W) and its ``labels``.

    ``on_error="raise"`` stops on a corrupt or too-short video with a VideoReadError naming it;
    ``on_error="skip"`` gives that row zero frames and ``skipped=True``, and ``collate_frames`` drops it and
    counts it in the batch's ``num_skipped``. A video is too short when it has fewer than ``min_frames``.
    """

    pretrained_cfg: dict
    frames_per_video: int = EVAL_FRAMES_PER_VIDEO
    train: bool = False
    decoder: Decoder = "torchcodec"
    on_error: Literal["raise", "skip"] = "raise"
    min_frames: int = 1
    video_column: str = "video"
    generator: torch.Generator | None = field(default=None, repr=False)
    cache: FrameCache | None = None
    """Read frames from a FrameCache (filled on first use) instead of decoding every time."""
    augment: bool = False
    """Training only: each video's whole face crops through an upload's life (``upload_augment.UPLOADS``), then
    fitted to the model's input and mirrored and colour-scaled (``augment_frames``)."""

    def _indices(self, num_frames: int, name: str) -> np.ndarray:
        if num_frames < max(1, self.min_frames):
            raise VideoReadError(f"{name}: {num_frames} frames, fewer than the {self.min_frames} needed")
        if self.train:
            return random_indices(num_frames, self.frames_per_video, self.generator)
        return evenly_spaced_indices(num_frames, self.frames_per_video)

    def sample(self, source: VideoSource) -> torch.Tensor:
        augmenting = self.train and self.augment
        # an upload's resampling and re-encoding happen to the whole crop, before the model's own resize and crop
        geometry = None if augmenting else self.pretrained_cfg
        if self.cache is not None:
            cached = self.cache.frames(source, geometry, self.decoder)
            indices = self._indices(len(cached), _describe(source))
            frames = torch.from_numpy(np.ascontiguousarray(cached[indices]))
            fitted = frames if geometry is not None else None
        else:
            video = VideoFrames(source, self.decoder)
            indices = self._indices(video.num_frames, video.name)
            frames, fitted = video.read(indices), None
        if augmenting:
            fitted = augment_frames(fit_frames(UPLOADS(frames, self.generator), self.pretrained_cfg), self.generator)
        elif fitted is None:
            fitted = fit_frames(frames, self.pretrained_cfg)
        return standardise_frames(fitted, self.pretrained_cfg)

    def __call__(self, batch: dict[str, list]) -> dict[str, list]:
        _, height, width = self.pretrained_cfg.get("input_size", (3, 224, 224))
        pixel_values, skipped = [], []
        for source in batch[self.video_column]:
            try:
                pixel_values.append(self.sample(source))
                skipped.append(False)
            except VideoReadError:
                if self.on_error == "raise":
                    raise
                pixel_values.append(torch.empty(0, 3, height, width))
                skipped.append(True)
        out = {key: values for key, values in batch.items() if key != self.video_column}
        out["pixel_values"] = pixel_values
        out["skipped"] = skipped
        if "label" in batch:
            out["labels"] = out.pop("label")
        return out


def collate_frames(rows: list[dict]) -> dict[str, torch.Tensor]:
    """Flatten videos into one batch of frames; ``video_index`` maps each frame to its row among the kept ones,
    and ``kept_rows`` those rows to their place in ``rows``."""
    kept_rows = [index for index, row in enumerate(rows) if not row.get("skipped")]
    kept = [rows[index] for index in kept_rows]
    batch = {"num_skipped": torch.tensor(len(rows) - len(kept)), "kept_rows": torch.tensor(kept_rows, dtype=torch.long)}
    if not kept:
        batch["pixel_values"] = torch.empty(0)
        batch["labels"] = torch.empty(0, dtype=torch.long)
        batch["video_index"] = torch.empty(0, dtype=torch.long)
        return batch
    counts = [row["pixel_values"].shape[0] for row in kept]
    batch["pixel_values"] = torch.cat([row["pixel_values"] for row in kept])
    batch["video_index"] = torch.repeat_interleave(torch.arange(len(kept)), torch.tensor(counts))
    if "labels" in kept[0]:
        batch["labels"] = torch.repeat_interleave(torch.tensor([row["labels"] for row in kept]), torch.tensor(counts))
    return batch

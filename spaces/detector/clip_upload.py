"""Reading an uploaded clip as hostile: the frames a check scores, or ClipRejected saying what is wrong and what to do.

The order matters. The file's size first; then its format, from its first bytes, before any demuxer sees it (an
HLS playlist or a concat script would open what it names); then its one video stream, measured and held to the
limits; then the decoder, told that stream and reading through a file object (FFmpeg gets no file name to resolve
and no protocol); then only the frames asked for, each held to the measured size. A damaged clip is scored on the
frames that decode when they are at least half of those asked for, and the report names the rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from dataset_script.frames import Decoder, FrameSizeChanged, VideoFrames, VideoReadError, evenly_spaced_indices
from dataset_script.probe import (
    SeveralVideoStreams,
    UnacceptedContainer,
    VideoMetadata,
    VideoProbeError,
    read_untrusted_metadata,
)
from dataset_script.schema import EVAL_FRAMES_PER_VIDEO

logger = logging.getLogger(__name__)

COMPLETE_VIDEO = "upload a complete MP4, WebM, MOV or AVI video"


class ClipRejected(ValueError):
    """A clip that cannot be checked; the message is for the person who uploaded it."""


@dataclass(frozen=True)
class ClipLimits:
    max_megabytes: float = 50.0
    max_seconds: float = 60.0
    min_side: int = 64
    max_width: int = 1920
    max_height: int = 1920
    min_frames: int = 8
    """Fewer decodable frames than this get no verdict: a third of a second at 25 fps says too little."""
    max_frames: int = 3600
    """60 s at 60 fps. The decoder counts a clip's frames itself, whatever its header says of its duration, and
    decoding the frames asked for may mean decoding every frame before them."""

    def check_file(self, path: Path) -> None:
        megabytes = path.stat().st_size / 1e6
        if megabytes > self.max_megabytes:
            raise ClipRejected(f"the file is {megabytes:.0f} MB, over the {self.max_megabytes:g} MB limit: "
                               "trim or re-encode it")  # fmt: skip

    def check(self, metadata: VideoMetadata) -> None:
        """The measured stream's size and duration, before a frame is decoded."""
        width, height = metadata.width, metadata.height
        if min(width, height) < self.min_side:
            raise ClipRejected(f"the video is {width}x{height}, too small to hold a face a detector can judge "
                               f"(at least {self.min_side} pixels a side)")  # fmt: skip
        if width > self.max_width or height > self.max_height:
            raise ClipRejected(f"the video is {width}x{height}, over the {self.max_width}x{self.max_height} limit: "
                               "downscale it first, e.g. `ffmpeg -i in.mp4 -vf scale=-2:720 out.mp4`")  # fmt: skip
        if metadata.duration > self.max_seconds:
            raise ClipRejected(f"the clip lasts {metadata.duration:.0f} s, over the {self.max_seconds:g} s limit: "
                               f"trim it, e.g. `ffmpeg -i in.mp4 -t {self.max_seconds:g} out.mp4`")  # fmt: skip

    def check_frame_count(self, frames: int) -> None:
        """The frames the decoder found, before it decodes any."""
        if frames == 0:
            raise ClipRejected("the video has no frames")
        if frames > self.max_frames:
            raise ClipRejected(f"the clip has {frames} frames, over the {self.max_frames} limit: trim it or lower "
                               "its frame rate, e.g. `ffmpeg -i in.mp4 -t 30 -r 30 out.mp4`")  # fmt: skip

    def check_decoded(self, frames: int, asked: int) -> None:
        """Enough frames decoded for a verdict: at least half of those asked for, and ``min_frames``."""
        if frames * 2 < asked:
            decoded = f"only {frames}" if frames else "none"
            raise ClipRejected(f"{decoded} of the {asked} frames asked for could be decoded: the file is damaged or "
                               f"truncated; {COMPLETE_VIDEO}")  # fmt: skip
        if frames < self.min_frames:
            held = f"only {frames} of its frames decode" if frames < asked else f"the clip has {_frames(frames)}"
            raise ClipRejected(f"{held}, and a verdict needs at least {self.min_frames}: upload a longer clip")


def _frames(count: int) -> str:
    return f"{count} frame" if count == 1 else f"{count} frames"


@dataclass
class DecodedClip:
    metadata: VideoMetadata
    indices: np.ndarray
    """The numbers of the frames decoded, ascending."""
    frames: torch.Tensor
    """uint8 (N, 3, H, W)."""
    frames_asked: int = 0
    frames_missing: list[int] = field(default_factory=list)
    """Frames asked for that did not decode (damaged, or beyond the end of a truncated file)."""


def read_clip(path: Path, limits: ClipLimits, decoder: Decoder) -> DecodedClip:
    """The frames of ``path`` to score (``EVAL_FRAMES_PER_VIDEO`` evenly spaced), or ClipRejected."""
    limits.check_file(path)
    metadata = measure(path, decoder)
    limits.check(metadata)
    with path.open("rb") as upload:  # the decoder reads through this: FFmpeg gets no name to resolve
        video = open_decoder(upload, metadata, decoder)
        limits.check_frame_count(video.num_frames)
        # across the frames the file declares, where it declares more than are there: a truncated clip's missing
        # end counts as missing, not as a shorter clip
        asked = evenly_spaced_indices(max(metadata.declared_frames, video.num_frames), EVAL_FRAMES_PER_VIDEO)
        decoded = decode(video, asked[asked < video.num_frames], metadata)
    limits.check_decoded(len(decoded), len(asked))
    missing = sorted(set(asked.tolist()) - set(decoded))
    if missing:
        logger.info("%s: %d of %d frames asked for did not decode", path.name, len(missing), len(asked))
    indices = np.asarray(sorted(decoded))
    frames = torch.stack([decoded[index] for index in indices])
    return DecodedClip(metadata, indices, frames, len(asked), missing)


def measure(path: Path, decoder: Decoder) -> VideoMetadata:
    """The one video stream the check decodes. Cover art beside it is ignored where the decoder is told which
    stream to decode (torchcodec); decord takes FFmpeg's pick, so a file for it must hold one video stream only."""
    try:
        return read_untrusted_metadata(path, allow_cover_art=decoder == "torchcodec")
    except (UnacceptedContainer, SeveralVideoStreams) as error:  # their messages say what to do
        raise ClipRejected(str(error).removeprefix(f"{path}: ")) from error
    except VideoProbeError as error:
        reason = str(error).removeprefix(f"{path}: ")
        if reason.startswith("not a readable video"):
            reason += ": it may be truncated or corrupt, or not a video at all"
        raise ClipRejected(f"{reason}; {COMPLETE_VIDEO}") from error


def open_decoder(upload: BinaryIO, metadata: VideoMetadata, decoder: Decoder) -> VideoFrames:
    stream_index = metadata.stream_index if decoder == "torchcodec" else None
    try:
        return VideoFrames(upload, decoder, stream_index=stream_index)
    except VideoReadError as error:
        if metadata.duration == 0 and metadata.declared_frames == 0:  # a stream's header and nothing after it
            raise ClipRejected("the video has no frames") from error
        logger.info("decoder refused an upload: %s", error)
        raise ClipRejected(f"the video cannot be decoded: it may be truncated or corrupt; {COMPLETE_VIDEO}") from error


def decode(video: VideoFrames, indices: np.ndarray, metadata: VideoMetadata) -> dict[int, torch.Tensor]:
    """Frame number -> frame, for those of ``indices`` that decode at the measured size."""
    try:
        return video.read_decodable(indices, (metadata.width, metadata.height))
    except FrameSizeChanged as error:
        declared, found = (f"{width}x{height}" for width, height in (error.declared, error.found))
        if error.index == indices[0]:
            what = f"the frames are {found}, not the {declared} the file declares"
        else:
            what = f"the resolution changes mid-clip, from {declared} to {found} by frame {error.index}"
        raise ClipRejected(f"{what}; the check needs one size throughout: re-encode the clip at one size, e.g. "
                           "`ffmpeg -i in.mp4 -vf scale=640:-2 out.mp4`") from error  # fmt: skip

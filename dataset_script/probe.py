"""Probing input videos before a build: each must be readable, and its size and frame count are read.

A healthy file is probed without decoding: its packets are counted in-process (PyAV demuxes, it does not decode)
and must match the frame count the container declares. Anything suspicious (a file that will not open, no
declared count, fewer packets than declared, a demuxer error) is then decoded fully by ffprobe
(``-count_frames``), which names what is wrong: a truncated file whose header still claims the full length is
caught by its decode errors and by reading fewer frames than declared. ``decode_all`` decodes every file so.
The build's encodes decode each file once more anyway and report decoder errors by name (``compression``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    num_frames: int
    fps: float
    codec: str


class VideoProbeError(ValueError):
    """A file that is not a readable video; the message says why."""


def _ffprobe() -> str:
    path = shutil.which("ffprobe")
    if path is None:
        raise VideoProbeError(
            "ffprobe was not found on PATH; install ffmpeg (Debian/Ubuntu: `apt-get install -y ffmpeg`)."
        )
    return path


def _parse_rate(rate: str) -> float:
    numerator, _, denominator = rate.partition("/")
    return float(numerator) / float(denominator or 1) if float(denominator or 1) else 0.0


def ffmpeg_reason(stderr: str, default: str) -> str:
    """The first thing ffmpeg or ffprobe complained of, without the component address that says nothing to users."""
    reason = next((line.strip() for line in stderr.splitlines() if line.strip()), default)
    return re.sub(r"^\[[^\]]+ @ 0x[0-9a-f]+\] ", "", reason)


def _existing_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise VideoProbeError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise VideoProbeError(f"{path}: zero-byte file")
    return path


def _counted_without_decoding(path: Path) -> VideoInfo | None:
    """``path`` described from its packets alone, or None when anything about it calls for a full decode."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            declared, codec = stream.frames, stream.codec_context
            if declared <= 0 or not codec.width or not codec.height:
                return None
            packets = sum(1 for packet in container.demux(stream) if packet.size)
            rate = stream.average_rate
    except (av.error.FFmpegError, OSError, ValueError):
        return None
    if packets != declared:
        return None
    return VideoInfo(codec.width, codec.height, packets, float(rate) if rate else 0.0, codec.name)


def only_a_video_stream(path: str | Path) -> bool:
    """Whether ``path`` opens and holds one stream, a video one (no audio, subtitles or cover art beside it)."""
    import av

    try:
        with av.open(str(path)) as container:
            return len(container.streams) == 1 and container.streams[0].type == "video"
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def probe_video(path: str | Path, decode_all: bool = False) -> VideoInfo:
    """Describe ``path``, or raise VideoProbeError saying what is wrong with it (see the module's note)."""
    path = _existing_file(path)
    if not decode_all and (info := _counted_without_decoding(path)) is not None:
        return info
    command = [
        _ffprobe(), "-v", "error", "-select_streams", "v:0", "-count_frames",
        "-show_entries", "stream=codec_name,width,height,nb_frames,nb_read_frames,avg_frame_rate",
        "-of", "json", str(path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    errors = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    streams = json.loads(result.stdout or "{}").get("streams", []) if result.returncode == 0 else []
    if not streams:
        reason = errors[0] if errors else "no video stream (audio-only or not a video)"
        raise VideoProbeError(f"{path}: not a readable video: {reason}")
    stream = streams[0]
    frames_read = int(stream.get("nb_read_frames") or 0)
    frames_declared = int(stream.get("nb_frames") or 0)
    if frames_read == 0:
        if errors:
            raise VideoProbeError(f"{path}: truncated or corrupt: no decodable frames ({errors[0]})")
        raise VideoProbeError(f"{path}: no decodable frames")
    if errors or (frames_declared and frames_read < frames_declared):
        detail = errors[0] if errors else f"{frames_read} of {frames_declared} declared frames decoded"
        raise VideoProbeError(f"{path}: truncated or corrupt: {detail}")
    return VideoInfo(
        width=int(stream["width"]),
        height=int(stream["height"]),
        num_frames=frames_read,
        fps=_parse_rate(stream.get("avg_frame_rate", "0/1")),
        codec=stream.get("codec_name", ""),
    )


@dataclass(frozen=True)
class VideoMetadata:
    """What a container says of its first video stream, read without decoding (cheap even for a 4K file)."""

    width: int
    height: int
    duration: float
    """Seconds; 0.0 when the container does not say."""
    declared_frames: int
    """0 when the container does not say."""
    fps: float
    codec: str
    pixel_format: str


def read_metadata(path: str | Path) -> VideoMetadata:
    """The first video stream's size, duration, frame count and format, or VideoProbeError saying what is wrong.

    Read in-process by PyAV from the same FFmpeg fields ffprobe shows (its start alone costs about 0.1 s, most of
    a Space request's decode stage); a file PyAV cannot open goes to ffprobe, which names what is wrong."""
    import av

    path = _existing_file(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                kinds = sorted({stream.type for stream in container.streams})
                raise VideoProbeError(f"{path}: no video stream ({_no_video(kinds)})")
            stream = container.streams.video[0]
            codec = stream.codec_context
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:  # the container's duration, in FFmpeg's microseconds, as ffprobe falls back to it
                duration = container.duration / av.time_base if container.duration is not None else 0.0
            rate = stream.average_rate
            return VideoMetadata(width=codec.width or 0, height=codec.height or 0, duration=duration,
                                 declared_frames=stream.frames or 0, fps=float(rate) if rate else 0.0,
                                 codec=codec.name or "", pixel_format=codec.pix_fmt or "")  # fmt: skip
    except (av.error.FFmpegError, OSError):
        return _metadata_from_ffprobe(path)


def _no_video(kinds: list[str]) -> str:
    return f"only {' and '.join(kinds)} streams" if kinds else "no streams"


def _metadata_from_ffprobe(path: Path) -> VideoMetadata:
    command = [
        _ffprobe(), "-v", "error", "-show_entries",
        "stream=codec_type,codec_name,width,height,pix_fmt,nb_frames,avg_frame_rate,duration:format=duration",
        "-of", "json", str(path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise VideoProbeError(f"{path}: not a readable video ({ffmpeg_reason(result.stderr, 'unknown format')})")
    described = json.loads(result.stdout or "{}")
    streams = described.get("streams", [])
    video = next((stream for stream in streams if stream.get("codec_type") == "video"), None)
    if video is None:
        kinds = sorted({stream.get("codec_type", "unknown") for stream in streams})
        raise VideoProbeError(f"{path}: no video stream ({_no_video(kinds)})")
    duration = video.get("duration") or described.get("format", {}).get("duration") or 0.0
    return VideoMetadata(
        width=int(video.get("width") or 0),
        height=int(video.get("height") or 0),
        duration=float(duration),
        declared_frames=int(video.get("nb_frames") or 0),
        fps=_parse_rate(video.get("avg_frame_rate", "0/1")),
        codec=video.get("codec_name", ""),
        pixel_format=video.get("pix_fmt", ""),
    )


def probe_videos(
    paths: list[Path], workers: int, progress: bool = True, decode_all: bool = False
) -> tuple[dict[Path, VideoInfo], dict[Path, str]]:
    """Probe many files in parallel; returns (infos of good files, reason per bad file)."""
    infos: dict[Path, VideoInfo] = {}
    problems: dict[Path, str] = {}

    def attempt(path: Path) -> tuple[Path, VideoInfo | None, str | None]:
        try:
            return path, probe_video(path, decode_all), None
        except VideoProbeError as error:
            return path, None, str(error).removeprefix(f"{path}: ")

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, info, problem in tqdm(
            pool.map(attempt, paths),
            total=len(paths),
            desc="probing",
            unit="video",
            disable=not progress,
        ):
            if info is not None:
                infos[path] = info
            else:
                problems[path] = problem or "unreadable"
    return infos, problems

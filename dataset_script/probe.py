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
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


_FFMPEG_COMPONENT = re.compile(r"\[[^\]\n]+ @ (?:0x)?[0-9a-fA-F]+\] ?")
"""FFmpeg's log prefix, ``[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c8a0]``: a C address, nothing a user can act on."""
_SOURCE_LOCATION = re.compile(r"\b\w+, \S+\.(?:cpp|cc|c|h):\d+, ")
"""torchcodec's ``function, /path/to/File.cpp:252, `` before its message."""


def without_internals(message: str) -> str:
    """``message`` without FFmpeg's component addresses and decoders' source locations."""
    return _SOURCE_LOCATION.sub("", _FFMPEG_COMPONENT.sub("", message)).strip()


def ffmpeg_reason(stderr: str, default: str) -> str:
    """The first thing ffmpeg or ffprobe complained of, without the internals that say nothing to users."""
    reason = next((line.strip() for line in stderr.splitlines() if line.strip()), default)
    return without_internals(reason)


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
    """What a container says of one video stream, read without decoding (cheap even for a 4K file)."""

    width: int
    height: int
    duration: float
    """Seconds; 0.0 when the container does not say."""
    declared_frames: int
    """0 when the container does not say."""
    fps: float
    codec: str
    pixel_format: str
    stream_index: int = 0
    """FFmpeg's index of the stream described, among all the file's streams: the one to decode."""


def read_metadata(path: str | Path) -> VideoMetadata:
    """The first video stream's size, duration, frame count and format, or VideoProbeError saying what is wrong.

    Read in-process by PyAV from the same FFmpeg fields ffprobe shows (its start alone costs about 0.1 s, most of
    a Space request's decode stage); a file PyAV cannot open goes to ffprobe, which names what is wrong. For files
    from strangers use ``read_untrusted_metadata``."""
    import av

    path = _existing_file(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                kinds = sorted({stream.type for stream in container.streams})
                raise VideoProbeError(f"{path}: no video stream ({_no_video(kinds)})")
            return _described(container, container.streams.video[0])
    except (av.error.FFmpegError, OSError):
        return _metadata_from_ffprobe(path)


def _described(container, stream) -> VideoMetadata:
    """VideoMetadata of a PyAV video ``stream`` of ``container``."""
    import av

    codec = stream.codec_context
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    else:  # the container's duration, in FFmpeg's microseconds, as ffprobe falls back to it
        duration = container.duration / av.time_base if container.duration is not None else 0.0
    rate = stream.average_rate
    return VideoMetadata(width=codec.width or 0, height=codec.height or 0, duration=duration,
                         declared_frames=stream.frames or 0, fps=float(rate) if rate else 0.0, codec=codec.name or "",
                         pixel_format=codec.pix_fmt or "", stream_index=stream.index)  # fmt: skip


ACCEPTED_CONTAINERS = {
    "mov": "MP4, MOV, M4V, 3GP",  # FFmpeg's "mov,mp4,m4a,3gp,3g2,mj2" demuxer
    "matroska": "MKV, WebM",  # "matroska,webm"
    "avi": "AVI",
}
"""The only demuxers that open files from strangers (FFmpeg's name: the formats users know them as). Each reads
the one file it is given; the hls, concat, image2 and similar demuxers open the files or URLs a file names."""
UNACCEPTED_CONTAINER = (f"not a video file of an accepted format ({', '.join(ACCEPTED_CONTAINERS.values())}); "
                        "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 out.mp4`")  # fmt: skip
"""The one message for every refused format: it must not vary with what the file names or its demuxer would find."""
FFMPEG_PROBE_BYTES = 2048
"""What FFmpeg's format probing reads first (``PROBE_BUF_MIN``); it stops there when a demuxer is sure."""
_QUICKTIME_SURE = frozenset({b"ftyp", b"moov", b"mdat", b"pnot", b"udta"})
"""Boxes that make FFmpeg's mov prober sure of a file (its full score); the brands below excepted."""
_QUICKTIME_STILL_BRANDS = frozenset({b"jp2 ", b"jxl "})
"""``ftyp`` brands of still images, which the mov prober leaves to others."""
_QUICKTIME_PADDING = frozenset({b"wide", b"free", b"skip", b"junk"})
"""Boxes old QuickTime files start with before the first that counts."""
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_MATROSKA_DOCTYPES = (b"matroska", b"webm")
_AVI_FORMS = frozenset({b"AVI ", b"AVIX"})
_NO_PROTOCOL = {"protocol_whitelist": ""}
"""For anything a demuxer would open beside the file it reads (a playlist's entry, an external track): no
protocol at all, not even ``file``."""
_DEMUXER_OPTIONS = {"mov": {"enable_drefs": "0", "use_absolute_path": "0"}}
"""FFmpeg's defaults, pinned: an MP4 track's data reference may name another file, which must never be opened."""


class UnacceptedContainer(VideoProbeError):
    """A file whose first bytes are none of ``ACCEPTED_CONTAINERS``."""


class SeveralVideoStreams(VideoProbeError):
    """A file from a stranger with more than one video stream (``read_untrusted_metadata``)."""


def sniff_container(path: str | Path) -> str:
    """The demuxer of ``ACCEPTED_CONTAINERS`` that ``path``'s first bytes call for, or UnacceptedContainer.

    Decided from the bytes alone, before FFmpeg sees the file: its own probing picks any of its demuxers,
    playlists and concat scripts included, and those open what they name. A file passes only where FFmpeg's prober
    for that demuxer is sure of it in its first read, so that a decoder that probes for itself (torchcodec cannot
    be told a format) comes to the same demuxer or, where another prober is as sure, to none."""
    path = _existing_file(path)  # never a FIFO or a device, whose read could block
    with path.open("rb") as file:
        head = file.read(FFMPEG_PROBE_BYTES)
    for name, recognises in (("mov", _is_quicktime), ("matroska", _is_matroska), ("avi", _is_avi)):
        if recognises(head):
            return name
    raise UnacceptedContainer(f"{path}: {UNACCEPTED_CONTAINER}")


def _is_quicktime(head: bytes) -> bool:
    """A box FFmpeg's mov prober is sure of, after nothing but padding boxes (its ``mov_probe``, stricter)."""
    offset = 0
    while offset + 12 <= len(head):
        size, kind = int.from_bytes(head[offset : offset + 4], "big"), head[offset + 4 : offset + 8]
        if kind in _QUICKTIME_SURE:
            return not (kind == b"ftyp" and head[offset + 8 : offset + 12] in _QUICKTIME_STILL_BRANDS)
        if kind not in _QUICKTIME_PADDING or size < 8:
            return False
        offset += size
    return False


def _is_matroska(head: bytes) -> bool:
    """An EBML header naming a Matroska or WebM document type, as FFmpeg's matroska prober wants for its full score."""
    if not head.startswith(_EBML_MAGIC) or len(head) < 5 or head[4] == 0:
        return False
    size_length = 8 - head[4].bit_length() + 1  # an EBML variable-length integer: its leading zeros give its length
    size = int.from_bytes(head[4 : 4 + size_length], "big") & ((1 << (7 * size_length)) - 1)
    header = head[4 + size_length : 4 + size_length + size]
    return len(header) == size and any(doctype in header for doctype in _MATROSKA_DOCTYPES)


def _is_avi(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] in _AVI_FORMS


@contextmanager
def open_untrusted(path: str | Path) -> Iterator[Any]:
    """PyAV's container of ``path``, opened as the demuxer its first bytes call for (``sniff_container``), read
    through a Python file object so that FFmpeg has no file name to resolve, and with no protocol for anything it
    would open besides; VideoProbeError (UnacceptedContainer) for a format that is not accepted."""
    import av

    path = _existing_file(path)
    container_format = sniff_container(path)
    options = {**_NO_PROTOCOL, **_DEMUXER_OPTIONS.get(container_format, {})}
    # a stranger's tags need not be UTF-8
    with path.open("rb") as file, av.open(file, format=container_format, options=options,
                                          metadata_errors="replace") as container:  # fmt: skip
        yield container


def _is_cover_art(stream) -> bool:
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def read_untrusted_metadata(path: str | Path, allow_cover_art: bool = True) -> VideoMetadata:
    """``read_metadata`` for a file from a stranger: opened by ``open_untrusted`` (never by ffprobe, which would
    probe any format), and holding one video stream, whose index the caller must decode. Several are refused: a
    decoder picks one by its own rules (a small first stream could front a 4K one), and limits read from another
    would not hold. Cover art (an attached picture) is no video stream where ``allow_cover_art``."""
    import av

    path = _existing_file(path)
    try:
        with open_untrusted(path) as container:
            videos = [s for s in container.streams.video if not (allow_cover_art and _is_cover_art(s))]
            if not videos:
                kinds = sorted({"cover picture" if _is_cover_art(s) else s.type for s in container.streams})
                raise VideoProbeError(f"{path}: no video stream ({_no_video(kinds)})")
            if len(videos) > 1:
                sizes = ", ".join(f"{s.codec_context.width}x{s.codec_context.height}" for s in videos)
                raise SeveralVideoStreams(f"{path}: {len(videos)} video streams ({sizes}), and only a file with one "
                                          "can be checked: keep the one you mean, e.g. `ffmpeg -i IN -map 0:v:0 -c "
                                          "copy out.mp4`")  # fmt: skip
            return _described(container, videos[0])
    except (av.error.FFmpegError, OSError) as error:
        reason = without_internals(getattr(error, "strerror", None) or str(error))
        raise VideoProbeError(f"{path}: not a readable video ({reason})") from error


def _no_video(kinds: list[str]) -> str:
    return f"only {' and '.join(kinds)} streams" if kinds else "no streams"


def _metadata_from_ffprobe(path: Path) -> VideoMetadata:
    command = [
        _ffprobe(), "-v", "error", "-show_entries",
        "stream=index,codec_type,codec_name,width,height,pix_fmt,nb_frames,avg_frame_rate,duration:format=duration",
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
        stream_index=int(video.get("index") or 0),
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

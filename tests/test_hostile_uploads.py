"""The Space reads every upload as hostile: playlists and other formats that open what they name are refused before
any demuxer sees them, with one message; limits hold for the stream that is decoded; damaged, too short and
resolution-switching clips are named as such; no FFmpeg internals reach a message; nothing is left behind; and
mutated files end in a report or a refusal, in bounded time and memory."""

from __future__ import annotations

import logging
import os
import random
import resource
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import pytest

from tests.factories import ffmpeg, importable_space, make_clip

importable_space()

from app import details, missing_frames  # noqa: E402
from clip_check import CheckReport, ClipChecker, ClipRejected  # noqa: E402

from dataset_script.frames import VideoFrames  # noqa: E402
from dataset_script.probe import UNACCEPTED_CONTAINER, without_internals  # noqa: E402

logger = logging.getLogger(__name__)

ANSWER_SECONDS = 20.0
"""The longest a check of these small files may take before the test calls it hung (they take well under 1 s)."""


def outcome(checker: ClipChecker, path: Path, already_cropped: bool = True) -> CheckReport | ClipRejected:
    """What ``checker`` makes of ``path`` within ANSWER_SECONDS: a report or a refusal. Any other exception is
    raised here, on the test's thread; no answer in time fails the test."""
    answer: dict[str, object] = {}

    def check() -> None:
        try:
            answer["value"] = checker.check(path, framing="crop" if already_cropped else "whole_frame")
        except ClipRejected as refusal:
            answer["value"] = refusal
        except BaseException as error:  # raised below, where pytest sees it
            answer["error"] = error

    thread = threading.Thread(target=check, daemon=True)
    thread.start()
    thread.join(ANSWER_SECONDS)
    assert not thread.is_alive(), f"{path.name}: no answer in {ANSWER_SECONDS:g} s"
    if "error" in answer:
        raise answer["error"]
    return answer["value"]


def refusal(checker: ClipChecker, path: Path, already_cropped: bool = True) -> str:
    """The message ``checker`` refuses ``path`` with, which must be in the user's terms."""
    answer = outcome(checker, path, already_cropped)
    assert isinstance(answer, ClipRejected), f"{path.name} was checked, not refused"
    message = str(answer)
    for internal in ("@ 0x", ".cpp", "mov,mp4", "pre-allocated", str(path.parent)):
        assert internal not in message, f"{internal!r} in {message!r}"
    return message


# --- formats that open what they name -----------------------------------------------------------------------------


def _manifest(target: str) -> bytes:
    return ('<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
            'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period><AdaptationSet><Representation id="1" '
            f'bandwidth="1000"><BaseURL>{target}</BaseURL><SegmentBase/></Representation></AdaptationSet></Period>'
            "</MPD>").encode()  # fmt: skip


PLAYLISTS: dict[str, tuple[str, Callable[[str], bytes]]] = {
    "HLS playlist": (
        ".m3u8",
        lambda target: f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{target}\n#EXT-X-ENDLIST\n".encode(),
    ),
    "ffconcat script": (".ffconcat", lambda target: f"ffconcat version 1.0\nfile '{target}'\n".encode()),
    "DASH manifest": (".mpd", _manifest),
    # starts as old QuickTime files do (a padding box), which FFmpeg's own probing rates below the manifest after it
    "padding box before a manifest": (".mp4", lambda target: b"\0\0\0\x08skip" + _manifest(target)),
    "list of file: and concat: URLs": (".txt", lambda target: f"file:{target}\nconcat:{target}|{target}\n".encode()),
}
"""Kind -> (the name's suffix, the file naming ``target``). Each names it as FFmpeg would resolve it: relative to
the upload's own folder (the concat demuxer refuses absolute names)."""


@contextmanager
def readers_of(fifo: Path) -> Iterator[list[bool]]:
    """Records whether anything opens ``fifo`` to read while the block runs, and lets it go on. Opening a FIFO to
    read blocks until a writer comes; a non-blocking open to write succeeds only while a reader waits, and frees it."""
    opened: list[bool] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            try:
                descriptor = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader
                continue
            opened.append(True)
            os.close(descriptor)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield opened
    finally:
        done.set()
        watcher.join()


@pytest.mark.parametrize("kind", list(PLAYLISTS))
def test_a_playlist_is_refused_with_one_message_and_what_it_names_is_never_opened(checker, tmp_path, kind):
    """A file of the kind names another beside it: an existing clip, a missing file, or a FIFO, which nothing can
    open to read without the test seeing it (with FFmpeg's probing and no allowlist, the HLS playlist opens it)."""
    make_clip(tmp_path / "secret.mp4", frames=8)
    os.mkfifo(tmp_path / "pipe.ts")
    suffix, write = PLAYLISTS[kind]
    messages = {}
    with readers_of(tmp_path / "pipe.ts") as opened:
        for target in ("secret.mp4", "missing.ts", "pipe.ts"):
            upload = tmp_path / f"upload-{Path(target).stem}{suffix}"
            upload.write_bytes(write(target))
            messages[target] = refusal(checker, upload)
    assert not opened, f"the checker opened the FIFO that the {kind} names"
    assert set(messages.values()) == {UNACCEPTED_CONTAINER}, messages  # one message, whatever the target


def test_ffmpeg_internals_never_reach_a_message():
    component = "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c8a0e2c0] moov atom not found"
    assert without_internals(component) == "moov atom not found"
    located = ("cannot decode frames [0]... (convert_video_av_frame_to_frame_output, /__w/torchcodec/src/"
               "CpuDeviceInterface.cpp:252, Expected pre-allocated tensor)")  # fmt: skip
    assert without_internals(located) == "cannot decode frames [0]... (Expected pre-allocated tensor)"


# --- limits hold for the stream that is decoded -------------------------------------------------------------------


def test_a_small_first_stream_cannot_front_a_large_one(checker, tmp_path):
    """The decoder's own pick is the default-disposition stream, the second: its 2000x2000 frames would pass limits
    read from the first. A file with two video streams is refused."""
    decoy = tmp_path / "decoy.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:r=25:d=0.4", "-f", "lavfi", "-i",
           "color=c=gray:s=2000x2000:r=25:d=0.2", "-map", "0:v", "-map", "1:v", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv420p", "-disposition:v:0", "0", "-disposition:v:1", "default",
           str(decoy))  # fmt: skip
    assert decoy.stat().st_size < 100_000 and checker.limits.max_width < 2000
    assert VideoFrames(str(decoy)).read([0]).shape[-2:] == (2000, 2000)  # what the decoder picks unless told
    assert VideoFrames(str(decoy), stream_index=0).read([0]).shape[-2:] == (64, 64)
    assert "2 video streams (64x64, 2000x2000)" in refusal(checker, decoy)


def test_cover_art_beside_the_video_is_no_second_stream(checker, tmp_path):
    """An attached picture (a thumbnail that tools embed) over the size limit: the video is measured and decoded."""
    cover = tmp_path / "cover.png"
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=2000x2000", "-frames:v", "1", str(cover))
    video = make_clip(tmp_path / "video.mp4", frames=10)
    covered = tmp_path / "covered.mp4"
    ffmpeg("-i", str(video), "-i", str(cover), "-map", "0", "-map", "1", "-c:v:0", "copy", "-c:v:1", "png",
           "-disposition:v:1", "attached_pic", str(covered))  # fmt: skip
    with av.open(str(covered)) as container:
        assert [stream.codec_context.width for stream in container.streams.video] == [64, 2000]
    report = outcome(checker, covered)
    assert isinstance(report, CheckReport) and report.metadata.stream_index == 0
    # a crop of another size than the detector's training crops is resized to theirs
    assert len(report.frames) == 10 and all(frame.crop.shape == (256, 256, 3) for frame in report.frames)


# --- clips that decode only in part ------------------------------------------------------------------------------


def test_a_clip_whose_resolution_changes_midway_is_refused_in_plain_words(checker, tmp_path):
    parts = []
    for size in ("128x96", "256x192"):
        parts.append(tmp_path / f"{size}.h264")
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={size}:r=25:d=0.5", "-c:v", "libx264", "-pix_fmt", "yuv420p",
               str(parts[-1]))  # fmt: skip
    joined = tmp_path / "joined.h264"
    joined.write_bytes(b"".join(part.read_bytes() for part in parts))
    switching = tmp_path / "switching.mp4"
    ffmpeg("-r", "25", "-i", str(joined), "-c", "copy", str(switching))
    message = refusal(checker, switching)
    assert message.startswith("the resolution changes mid-clip, from 128x96 to 256x192 by frame ")


def cut_after_packet(clip: Path, packets: int, out: Path) -> Path:
    """``clip`` (index first) cut after its first ``packets`` packets: the index still declares every frame."""
    with av.open(str(clip)) as container:
        ends = sorted(packet.pos + packet.size for packet in container.demux(container.streams.video[0]) if packet.size)
    out.write_bytes(clip.read_bytes()[: ends[packets - 1]])
    return out


@pytest.fixture
def indexed_clip(tmp_path) -> Path:
    """48 frames with the index (moov) before them, as phones and `-movflags +faststart` write them."""
    clip = tmp_path / "indexed.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:r=25", "-frames:v", "48", "-c:v", "libx264", "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", str(clip))  # fmt: skip
    return clip


def test_a_clip_missing_some_frames_is_scored_and_the_report_says_so(checker, indexed_clip, tmp_path):
    whole = outcome(checker, indexed_clip)
    assert whole.frames_asked == 32 and not whole.frames_missing and not missing_frames(whole)
    damaged = outcome(checker, cut_after_packet(indexed_clip, 40, tmp_path / "cut40.mp4"))
    assert isinstance(damaged, CheckReport) and damaged.frames_asked == 32
    assert damaged.frames_missing and max(damaged.frames_missing) == 47
    assert len(damaged.frames) + len(damaged.frames_missing) == 32
    assert not {frame.index for frame in damaged.frames} & set(damaged.frames_missing)
    said = missing_frames(damaged)
    assert said.startswith(f"{len(damaged.frames_missing)} of the 32 frames asked for could not be decoded")
    assert "**Frames missing:** " in details(damaged)


def test_a_clip_missing_most_of_its_frames_is_refused(checker, indexed_clip, tmp_path):
    message = refusal(checker, cut_after_packet(indexed_clip, 16, tmp_path / "cut16.mp4"))
    assert "of the 32 frames asked for could be decoded: the file is damaged or truncated" in message


@pytest.mark.parametrize("frames", [1, 7])
def test_a_clip_too_short_for_a_verdict_is_refused(checker, clip_factory, frames):
    assert checker.limits.min_frames == 8
    message = refusal(checker, clip_factory(frames=frames))
    assert message.startswith(f"the clip has {frames} frame") and "a verdict needs at least 8" in message


def test_a_clip_of_the_minimum_length_is_checked(checker, clip_factory):
    assert len(outcome(checker, clip_factory(frames=8)).frames) == 8


# --- nothing left behind ------------------------------------------------------------------------------------------


def test_checks_leave_no_file_behind(checker, tmp_path, monkeypatch, indexed_clip):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    shutil.copy(indexed_clip, uploads / "whole.mp4")
    cut_after_packet(indexed_clip, 40, uploads / "cut40.mp4")
    cut_after_packet(indexed_clip, 10, uploads / "cut10.mp4")
    (uploads / "list.m3u8").write_bytes(PLAYLISTS["HLS playlist"][1]("whole.mp4"))
    before = sorted(tmp_path.rglob("*"))
    for upload in sorted(uploads.iterdir()):
        outcome(checker, upload, already_cropped=False)
    assert sorted(tmp_path.rglob("*")) == before


# --- mutated files ------------------------------------------------------------------------------------------------

MUTANTS_PER_FORMAT = 30
MAX_RSS_GROWTH_MB = 400
"""Peak memory a mutant may add over checking its intact clip. A mutant can claim any size up to the limits, and
the 32 frames asked for are allocated at the claimed size: 1920x1920 would take 354 MB."""


def _boxes(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(offset, length) of the MP4 boxes from ``start`` to ``end``."""
    found, offset = [], start
    while offset + 8 <= end:
        size = int.from_bytes(data[offset : offset + 4], "big")
        if size < 8 or offset + size > end:
            break
        found.append((offset, size))
        offset += size
    return found


def _ebml_number(data: bytes, offset: int) -> tuple[int, int]:
    """An EBML variable-length integer at ``offset``: (value, its length in bytes)."""
    length = 9 - data[offset].bit_length()
    value = int.from_bytes(data[offset : offset + length], "big") & ((1 << (7 * length)) - 1)
    return value, length


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(offset, length) of the EBML elements from ``start`` to ``end``."""
    found, offset = [], start
    while offset < end and data[offset]:
        id_length = 9 - data[offset].bit_length()
        size, size_length = _ebml_number(data, offset + id_length)
        length = id_length + size_length + size
        if offset + length > end:
            break
        found.append((offset, length))
        offset += length
    return found


def duplicate_box(data: bytes, rng: random.Random, mp4: bool) -> bytes:
    """One box (MP4: a top-level box or one of moov's; WebM: one of the Segment's elements) written twice, the
    parent's size left as it was: both a repeated box and a parent that ends inside its children."""
    if mp4:
        top = _boxes(data, 0, len(data))
        moov = next(((offset, size) for offset, size in top if data[offset + 4 : offset + 8] == b"moov"), None)
        candidates = top + (_boxes(data, moov[0] + 8, moov[0] + moov[1]) if moov else [])
    else:
        _, segment = _elements(data, 0, len(data))[:2]
        _, size_length = _ebml_number(data, segment[0] + 4)
        candidates = _elements(data, segment[0] + 4 + size_length, segment[0] + segment[1])
    offset, length = rng.choice(candidates)
    return data[: offset + length] + data[offset : offset + length] + data[offset + length :]


def truncate(data: bytes, rng: random.Random, mp4: bool) -> bytes:
    return data[: rng.randrange(1, len(data))]


def flip_bytes(data: bytes, rng: random.Random, mp4: bool) -> bytes:
    mutated = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        mutated[rng.randrange(len(mutated))] ^= rng.randint(1, 255)
    return bytes(mutated)


MUTATIONS = (truncate, flip_bytes, duplicate_box)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@pytest.mark.slow
def test_mutated_mp4_and_webm_end_in_a_report_or_a_refusal_in_bounded_time_and_memory(detector_dir, tmp_path):
    """60 mutants (fixed seed) through the face-crop path and, every other one, the already-cropped path (where the
    detector and its CAMs run on whatever decoded). A checker of the test's own: a hung decode would stall it."""
    seeds = {"mp4": make_clip(tmp_path / "seed.mp4", frames=16), "webm": tmp_path / "seed.webm"}
    ffmpeg("-i", str(seeds["mp4"]), "-c:v", "libvpx", "-b:v", "200k", str(seeds["webm"]))
    checker = ClipChecker([str(detector_dir)], cam_frames=2)
    for seed in seeds.values():  # models loaded, buffers of an intact clip's size allocated, before the baseline
        assert isinstance(outcome(checker, seed, already_cropped=True), CheckReport)
        assert "face" in str(outcome(checker, seed, already_cropped=False))  # a test pattern: no face
    baseline = peak_rss_mb()
    rng = random.Random(20240530)
    growth: dict[str, float] = {}
    refused = 0
    for number in range(2 * MUTANTS_PER_FORMAT):
        kind = "mp4" if number % 2 == 0 else "webm"
        mutation = rng.choice(MUTATIONS)
        mutant = tmp_path / "mutants" / f"{number:02d}-{mutation.__name__}.{kind}"
        mutant.parent.mkdir(exist_ok=True)
        mutant.write_bytes(mutation(seeds[kind].read_bytes(), rng, kind == "mp4"))
        answer = outcome(checker, mutant, already_cropped=number % 4 >= 2)
        refused += isinstance(answer, ClipRejected)
        growth[mutant.name] = peak_rss_mb() - baseline
    worst = max(growth, key=growth.get)
    logger.info("%d mutants, %d refused; peak RSS %.0f MB before them, worst %s +%.1f MB", len(growth), refused,
                baseline, worst, growth[worst])  # fmt: skip
    assert growth[worst] < MAX_RSS_GROWTH_MB, f"{worst} raised peak memory by {growth[worst]:.0f} MB"
    assert 0 < refused < 2 * MUTANTS_PER_FORMAT  # the mutations both break files and leave some checkable

import subprocess

import pytest

from dataset_script.compression import CompressionError, CompressionJob, compress_videos, ffmpeg_command
from dataset_script.probe import VideoProbeError, probe_video


def test_probe_reads_size_and_frame_count(clip_factory):
    info = probe_video(clip_factory(frames=20, size=48))
    assert (info.width, info.height, info.num_frames, info.codec) == (48, 48, 20, "h264")
    assert info.fps == pytest.approx(25)


def _truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


@pytest.mark.parametrize(
    "make_bad,expected",
    [
        (lambda p: (p.write_bytes(b""), p)[1], "zero-byte"),
        (lambda p: (p.write_text("not a video at all"), p)[1], "not a readable video"),
        (None, "truncated or corrupt"),
    ],
)
def test_probe_names_what_is_wrong(tmp_path, clip_factory, make_bad, expected):
    if make_bad is None:
        path = clip_factory(frames=40)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(path), "-c", "copy", "-movflags",
                        "+faststart", str(tmp_path / "fs.mp4")], check=True)  # fmt: skip
        path = _truncate(tmp_path / "fs.mp4")
    else:
        path = make_bad(tmp_path / "bad.mp4")
    with pytest.raises(VideoProbeError, match=expected) as caught:
        probe_video(path)
    assert str(path) in str(caught.value)


def test_probe_rejects_audio_only(tmp_path):
    audio = tmp_path / "tone.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "sine=d=0.5", str(audio)], check=True)
    with pytest.raises(VideoProbeError, match="no video stream"):
        probe_video(audio)


def test_compression_is_faceforensics_command():
    command = ffmpeg_command("in.mp4", "out.mp4", 23)
    assert command[command.index("-c:v") + 1] == "libx264"
    assert command[command.index("-crf") + 1] == "23"
    assert "-preset" not in command  # FaceForensics++ uses x264's default preset


def test_compression_keeps_size_fps_frames_and_is_resumable(tmp_path, clip_factory):
    sources = [clip_factory(frames=18, size=64, seed=s) for s in range(3)]
    jobs = [CompressionJob(s, tmp_path / "c40" / s.name, 40) for s in sources]
    assert compress_videos(jobs, workers=2, progress=False) == 3
    for job in jobs:
        before, after = probe_video(job.source), probe_video(job.target)
        assert (after.width, after.height, after.num_frames, after.fps) == (
            before.width, before.height, before.num_frames, before.fps)  # fmt: skip
        assert after.codec == "h264"
    heavier = sum(job.target.stat().st_size for job in jobs)
    assert heavier < sum(job.source.stat().st_size for job in jobs)
    mtimes = [job.target.stat().st_mtime_ns for job in jobs]
    assert compress_videos(jobs, workers=2, progress=False) == 0  # a rerun reuses finished outputs
    assert [job.target.stat().st_mtime_ns for job in jobs] == mtimes


def test_failed_encode_leaves_nothing_and_names_the_file(tmp_path, clip_factory):
    bad = tmp_path / "bad.mp4"
    bad.write_text("garbage")
    good = clip_factory()
    jobs = [CompressionJob(bad, tmp_path / "out" / "bad.mp4", 23), CompressionJob(good, tmp_path / "out" / "g.mp4", 23)]
    with pytest.raises(CompressionError, match="bad.mp4") as caught:
        compress_videos(jobs, workers=2, progress=False)
    assert "1 of 2 encodes failed" in str(caught.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["g.mp4"]  # no partial file left behind

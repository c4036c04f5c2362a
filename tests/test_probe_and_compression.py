import subprocess

import pytest

from dataset_script.compression import CompressionError, CompressionJob, compress_videos, ffmpeg_command
from dataset_script.probe import VideoProbeError, _metadata_from_ffprobe, probe_video, read_metadata
from tests.factories import damage_inside


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


def test_metadata_read_in_process_is_what_ffprobe_reports(tmp_path):
    """``read_metadata`` reads the container in-process; ffprobe, which it replaced for readable files, must report
    the same size, duration, frame count, rate and formats, whatever the container declares or leaves out."""
    made = {
        "mp4": ["-f", "lavfi", "-i", "testsrc2=s=48x32:r=30:d=0.4", "-pix_fmt", "yuv420p"],
        "webm": ["-f", "lavfi", "-i", "testsrc2=s=32x32:r=25:d=0.4", "-c:v", "libvpx-vp9", "-b:v", "100k"],
        "mkv": ["-f", "lavfi", "-i", "testsrc2=s=32x32:r=25:d=0.4", "-f", "lavfi", "-i", "sine=d=0.4", "-shortest"],
        "avi": ["-f", "lavfi", "-i", "testsrc2=s=32x32:r=12:d=0.5", "-c:v", "mjpeg"],
    }
    for suffix, inputs in made.items():
        path = tmp_path / f"clip.{suffix}"
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *inputs, str(path)], check=True)
        assert read_metadata(path) == _metadata_from_ffprobe(path), suffix
    header_only = tmp_path / "no_frames.y4m"  # a video stream's header and not one frame: nothing declared
    header_only.write_text("YUV4MPEG2 W64 H64 F25:1 Ip A1:1 C420jpeg\n")
    assert read_metadata(header_only) == _metadata_from_ffprobe(header_only)
    assert read_metadata(tmp_path / "clip.mp4").declared_frames == 12
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("meeting notes\n" * 20)
    with pytest.raises(VideoProbeError, match="notes.mp4: not a readable video"):
        read_metadata(not_a_video)


def test_compression_is_faceforensics_command():
    command = ffmpeg_command("in.mp4", [("out.mp4", 23)])
    assert command[command.index("-c:v") + 1] == "libx264"
    assert command[command.index("-crf") + 1] == "23"
    assert "-preset" not in command  # FaceForensics++ uses x264's default preset


def test_one_decode_makes_every_quality_byte_identical_to_one_encode_each_and_resumes(tmp_path, clip_factory):
    sources = [clip_factory(frames=18, size=64, seed=s) for s in range(3)]
    jobs = [CompressionJob(s, ((tmp_path / "c23" / s.name, 23), (tmp_path / "c40" / s.name, 40))) for s in sources]
    assert compress_videos(jobs, workers=2, progress=False) == 6
    for job in jobs:
        before = probe_video(job.source, decode_all=True)
        for target, crf in job.outputs:
            after = probe_video(target, decode_all=True)
            assert (after.width, after.height, after.num_frames, after.fps, after.codec) == (
                before.width, before.height, before.num_frames, before.fps, "h264")  # fmt: skip
            alone = tmp_path / "alone" / f"{crf}-{target.name}"
            compress_videos([CompressionJob.single(job.source, alone, crf)], workers=1, progress=False)
            assert alone.read_bytes() == target.read_bytes()
    c23, c40 = (sum((tmp_path / q / s.name).stat().st_size for s in sources) for q in ("c23", "c40"))
    assert c40 < c23 < sum(s.stat().st_size for s in sources)
    deleted = tmp_path / "c40" / sources[1].name
    mtimes = {target: target.stat().st_mtime_ns for job in jobs for target, _ in job.outputs if target != deleted}
    deleted.unlink()
    assert compress_videos(jobs, workers=2, progress=False) == 1  # only the missing output is made again
    assert deleted.exists() and {target: target.stat().st_mtime_ns for target in mtimes} == mtimes


def test_clips_share_an_ffmpeg_with_the_same_bytes_and_a_damaged_one_among_them_is_named(
    tmp_path, clip_factory, monkeypatch
):
    """Sources holding only a video stream are encoded several to an ffmpeg process, to the same bytes as alone; a
    source damaged inside fails its group's ffmpeg, and then each of the group runs alone, so the failure names it
    and the others are made; a source with audio is encoded alone, as ffmpeg's own stream choice has it."""
    from dataset_script import compression

    good = [clip_factory(frames=18, size=64, seed=seed) for seed in range(4)]
    damaged = damage_inside(clip_factory(frames=40, size=64, seed=9))
    with_audio = tmp_path / "with_audio.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=25:d=0.6", "-f", "lavfi",
                    "-i", "sine=d=0.6", "-c:v", "libx264", "-c:a", "aac", "-shortest", str(with_audio)],
                   check=True)  # fmt: skip
    sources = [*good, damaged, with_audio]
    jobs = [CompressionJob(s, ((tmp_path / "c23" / s.name, 23), (tmp_path / "c40" / s.name, 40))) for s in sources]
    starts = []
    run = subprocess.run
    monkeypatch.setattr(
        compression.subprocess, "run", lambda command, **kw: starts.append(command) or run(command, **kw)
    )
    with pytest.raises(CompressionError, match="1 of 6 encodes failed") as caught:
        compress_videos(jobs, workers=1, progress=False, clips_per_ffmpeg=8)
    assert list(caught.value.failures) == [damaged]
    assert max(command.count("-i") for command in starts) > 1 and len(starts) < len(jobs)
    monkeypatch.undo()
    for job in jobs:
        if job.source != damaged:
            for target, crf in job.outputs:
                alone = tmp_path / "alone" / f"{crf}-{target.name}"
                compress_videos([CompressionJob.single(job.source, alone, crf)], workers=1, progress=False)
                assert alone.read_bytes() == target.read_bytes(), target
    for quality in ("c23", "c40"):  # nothing of the damaged source, and no partial file left behind
        assert not (tmp_path / quality / damaged.name).exists() and not list((tmp_path / quality).glob(".*"))
    assert "audio" in compression.subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0",
         str(tmp_path / "c23" / with_audio.name)], capture_output=True, text=True).stdout  # fmt: skip


def test_a_file_damaged_inside_passes_the_packet_count_but_its_encode_names_it(tmp_path, clip_factory):
    damaged = damage_inside(clip_factory(frames=40, size=64))
    assert probe_video(damaged).num_frames == 40  # packets intact: the probe has no reason to decode
    with pytest.raises(VideoProbeError, match="truncated or corrupt"):
        probe_video(damaged, decode_all=True)
    job = CompressionJob(damaged, ((tmp_path / "c23.mp4", 23), (tmp_path / "c40.mp4", 40)))
    with pytest.raises(CompressionError, match=damaged.name) as caught:
        compress_videos([job], workers=1, progress=False)
    assert list(caught.value.failures) == [damaged]
    assert list(tmp_path.glob("c*.mp4")) == [] and list(tmp_path.glob(".*partial*")) == []  # nothing half-made


def test_failed_encode_leaves_nothing_and_names_the_file(tmp_path, clip_factory):
    bad = tmp_path / "bad.mp4"
    bad.write_text("garbage")
    good = clip_factory()
    pairs = ((bad, "bad.mp4"), (good, "g.mp4"))
    jobs = [CompressionJob.single(source, tmp_path / "out" / name, 23) for source, name in pairs]
    with pytest.raises(CompressionError, match="bad.mp4") as caught:
        compress_videos(jobs, workers=2, progress=False)
    assert "1 of 2 encodes failed" in str(caught.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["g.mp4"]  # no partial file left behind

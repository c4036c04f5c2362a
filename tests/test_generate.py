"""generate.py end to end on real MTCNN and real encodes: jobs sharded over two processes under
``accelerate launch`` each run exactly once, a killed run resumes to the same result, bad inputs and failed
checks are recorded with their reasons, and the output builds into a loadable dataset."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dataset_script.faces import FaceError
from dataset_script.frames import VideoFrames
from dataset_script.release import read_manifest
from generation.backends import LANDMARK_TEMPLATE, landmark_keypoints
from generation.face_tracks import FaceTrack
from generation.generate import GenerationConfig, generate, main
from generation.jobs import BOOKKEEPING, REAL_JOB, JobPlanError, plan_jobs, shard
from generation.mini.generation_inputs import write_generation_inputs
from generation.precision import half_dtype, precision_name

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "generation" / "generate.py"
DRIVING = [("blink", "person001"), ("yaw", "person002")]
SOURCES = ["person003", "person004"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    made = write_generation_inputs(tmp_path_factory.mktemp("generation_inputs"))
    assert made.driving == DRIVING and made.source_images == SOURCES and made.source_videos == ["person005"]
    return made.root


def run_script(*args: str, launcher: list[str] | None = None, **popen) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [*(launcher or [sys.executable]), str(SCRIPT), *args, "--no_progress"]
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen)  # fmt: skip


def logged_jobs(out: Path) -> list[str]:
    lines = [
        line for log in sorted((out / BOOKKEEPING / "logs").glob("*.jsonl")) for line in log.read_text().splitlines()
    ]
    return [json.loads(line)["job_id"] for line in lines]


def released_files(out: Path) -> set[str]:
    return {
        p.relative_to(out).as_posix() for p in out.rglob("*.mp4") if not p.relative_to(out).as_posix().startswith(".")
    }


def test_jobs_have_stable_ids_and_every_shard_split_keeps_each_job_once(inputs, tmp_path):
    jobs = plan_jobs(inputs / "sources", inputs / "driving")
    ids = [job.job_id for job in jobs]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == len(DRIVING) * (1 + len(SOURCES) + 1)
    assert "yaw/person002/@real" in ids and "blink/person001/person005" in ids
    real = next(job for job in jobs if job.job_id == f"yaw/person002/{REAL_JOB}")
    assert (real.output, real.source_id) == ("original/yaw--person002.mp4", "person002")
    fake = next(job for job in jobs if job.job_id == "blink/person001/person003")
    assert (fake.output, fake.source_id, fake.driving_id) == (
        "blink/person003--person001.mp4",
        "person003",
        "person001",
    )
    # a new source adds its jobs and renames nothing
    more = tmp_path / "sources"
    more.mkdir()
    for path in (inputs / "sources").iterdir():
        (more / path.name).symlink_to(path)
    (more / "person000.png").symlink_to(inputs / "sources" / "person003.png")
    grown = {job.job_id: job for job in plan_jobs(more, inputs / "driving")}
    assert all(grown[job.job_id] == job for job in jobs) and len(grown) == len(jobs) + len(DRIVING)
    for count in range(0, 13):
        for processes in range(1, 5):
            shares = [shard(list(range(count)), index, processes) for index in range(processes)]
            assert sorted(sum(shares, [])) == list(range(count))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.slow
def test_paper_pairing_real_clips_from_sources_and_identity_patterns(inputs, tmp_path):
    driving = tmp_path / "driving" / "blink"
    driving.mkdir(parents=True)
    for name in ("id50_a", "id50_b", "id51_c"):
        (driving / f"{name}.mp4").symlink_to(inputs / "driving" / "blink" / "person001.mp4")
    sources = tmp_path / "sources"
    sources.mkdir()
    for index in range(24):
        (sources / f"id{index:02d}_clip.png").symlink_to(inputs / "sources" / "person003.png")
    (sources / "id99_talk.mp4").symlink_to(inputs / "sources" / "person005.mp4")

    def fakes(jobs):
        return {job.source: job.driving for job in jobs if not job.is_real}

    jobs = plan_jobs(sources, tmp_path / "driving", "one_per_action", "sources", r"^(id\d+)_")
    paired = fakes(jobs)
    assert len(paired) == 25 and len(set(paired.values())) > 1  # one driving video each, not all the same one
    real = [job for job in jobs if job.is_real]
    assert [(j.job_id, j.output, j.action, j.source_id) for j in real] == [
        ("@sources/id99_talk", "original/id99_talk.mp4", "", "id99")
    ]  # the source video's own clip; images give none
    fake = next(job for job in jobs if job.source == "id03_clip.png")
    assert (fake.source_id, fake.driving_id) == ("id03", paired["id03_clip.png"].split("/")[1][:4])
    (driving / "id52_d.mp4").symlink_to(inputs / "driving" / "blink" / "person001.mp4")
    moved = {s: d for s, d in fakes(plan_jobs(sources, tmp_path / "driving", "one_per_action", "none")).items()
             if d != paired[s]}  # fmt: skip
    assert moved and all(d == "blink/id52_d.mp4" for d in moved.values())  # only those preferring it move
    # end to end: the source video's real clip is its face crop, listed as a real clip of its own identity
    config = GenerationConfig(backend="warp", sources=inputs / "sources", driving=inputs / "driving",
                              output_dir=tmp_path / "out", pairing="one_per_action", real_clips="sources", max_frames=6,
                              best_frame=True, no_progress=True)  # fmt: skip
    summary = generate(config)
    assert (summary.jobs, summary.done) == (len(DRIVING) * 3 + 1, len(DRIVING) * 3 + 1)
    row = read_manifest(tmp_path / "out")["original/person005.mp4"]
    assert (row.label, row.action, row.source_id, row.driving_id) == ("real", "", "person005", "")
    references = {json.loads(p.read_text()).get("reference_frame") for p in (tmp_path / "out").rglob("person00?.json")}
    assert references - {None} and references - {None} <= set(range(6))  # fakes start from their best frame
    clip = VideoFrames(tmp_path / "out" / "original" / "person005.mp4")
    assert clip.num_frames == 6 and clip.read([0]).shape == (1, 3, 256, 256)
    with pytest.raises(JobPlanError, match="does not match id50_a.mp4"):
        plan_jobs(sources, tmp_path / "driving", identity_pattern=r"^(id\d)_")
    with pytest.raises(JobPlanError, match="has no group"):
        plan_jobs(sources, tmp_path / "driving", identity_pattern=r"^id")


def test_a_bad_layout_is_refused_with_what_to_fix(inputs, tmp_path, caplog):
    (tmp_path / "driving" / "dance").mkdir(parents=True)
    with pytest.raises(JobPlanError, match="not actions: dance"):
        plan_jobs(inputs / "sources", tmp_path / "driving")
    (tmp_path / "driving" / "dance").rmdir()
    (tmp_path / "driving" / "yaw").mkdir()
    (tmp_path / "driving" / "yaw" / "take1.txt").write_text("x")
    with pytest.raises(JobPlanError, match="not videos .*: yaw/take1.txt; move them out"):
        plan_jobs(inputs / "sources", tmp_path / "driving")
    (tmp_path / "driving" / "yaw" / "take1.txt").unlink()
    for folder in ("yaw", "mouth", "open_mouth"):  # two folders of one action, one name in both
        (tmp_path / "driving" / folder).mkdir(exist_ok=True)
    for folder in ("mouth", "open_mouth"):
        (tmp_path / "driving" / folder / "take1.mp4").symlink_to(inputs / "driving" / "yaw" / "person002.mp4")
    with pytest.raises(JobPlanError, match="several open_mouth videos named take1"):
        plan_jobs(inputs / "sources", tmp_path / "driving")
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "notes.txt").write_text("x")
    with pytest.raises(JobPlanError, match="notes.txt; move them out"):
        plan_jobs(tmp_path / "sources", inputs / "driving")
    # the command's own main, in-process: what it logs at ERROR is what the terminal shows
    status = main(["--backend", "fomm", "--sources", str(inputs / "sources"), "--driving", str(inputs / "driving"),
                   "--output_dir", str(tmp_path / "out"), "--no_progress"])  # fmt: skip
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert status == 2 and any("--backend fomm needs --checkpoint" in message for message in errors)
    assert not (tmp_path / "out").exists()


def test_the_choices_of_the_command_line_are_the_registries(capsys):
    from transformers import HfArgumentParser

    from generation.backends import BACKENDS
    from generation.jobs import PAIRINGS, REAL_CLIPS

    parser = HfArgumentParser(GenerationConfig)
    described = " ".join(parser.format_help().split())
    for choices in (sorted(BACKENDS), PAIRINGS, REAL_CLIPS):
        assert "{" + ",".join(choices) + "}" in described
    assert all(f"{name}: {factory.summary}" in described for name, factory in BACKENDS.items())
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(
            ["--backend", "nope", "--sources", "s", "--driving", "d", "--output_dir", "o"]
        )
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_landmark_frames_recover_the_affine_motion_of_the_face():
    size = 256
    template = (LANDMARK_TEMPLATE + 1) * size / 2  # in crop pixels
    linear = torch.tensor([[1.1, -0.2], [0.15, 0.9]])
    moved = (template - size / 2) @ linear.T + size / 2 + torch.tensor([10.0, -6.0])
    keypoints, jacobians = landmark_keypoints(torch.stack([template, moved]).numpy(), size)
    assert keypoints.shape == (2, 6, 2) and jacobians.shape == (2, 6, 2, 2)
    torch.testing.assert_close(keypoints[0, 1:], LANDMARK_TEMPLATE, atol=1e-5, rtol=0)
    torch.testing.assert_close(jacobians[0], torch.eye(2).expand(6, 2, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(jacobians[1], linear.expand(6, 2, 2), atol=1e-5, rtol=0)  # pixels or [-1, 1]: same


def test_a_long_video_is_cropped_in_chunks_with_the_same_result(inputs, monkeypatch):
    from dataset_script.faces import FaceDetector
    from generation import face_tracks

    detector, video = FaceDetector(), inputs / "driving" / "yaw" / "person002.mp4"  # uncropped: 480x360
    whole = face_tracks.video_track(video, detector)
    monkeypatch.setattr(face_tracks, "DECODE_CHUNK", 5)  # 12 frames: chunks of 5, 5 and 2
    chunked = face_tracks.video_track(video, detector)
    assert whole.frames.shape == (12, 3, 256, 256) and torch.equal(whole.frames, chunked.frames)
    # MTCNN sees batches of 12 and of 5, 5 and 2: oneDNN picks kernels by shape (and AMX has its own), so its
    # landmarks may differ in the fifth significant digit (3.8e-5 px seen on an AMX CPU). A thousandth of a pixel
    # is far below anything a crop or an animation can tell apart.
    np.testing.assert_allclose(whole.landmarks, chunked.landmarks, rtol=0, atol=1e-3)
    assert whole.found.all() and whole.fps == 25
    eyes = whole.landmarks[:, :2].mean(axis=1)  # the face sits in the crop's middle, not at the frame's offset
    assert (np.abs(eyes - 128) < 64).all()


def test_frames_without_a_face_get_landmarks_from_their_neighbours():
    landmarks = np.zeros((5, 5, 2), np.float32)
    landmarks[:, :, 0] = np.arange(5)[:, None] * 10.0
    landmarks[[1, 2, 4]] = np.nan  # lost in the middle and at the end
    track = FaceTrack(torch.zeros(5, 3, 8, 8, dtype=torch.uint8), landmarks, 25.0)
    assert track.found.tolist() == [True, False, False, True, False]
    filled = track.filled_landmarks()
    assert filled[:, 0, 0].tolist() == [0.0, 10.0, 20.0, 30.0, 30.0]  # interpolated, then held
    with pytest.raises(FaceError, match="no frame"):
        FaceTrack(track.frames, np.full((5, 5, 2), np.nan, np.float32), 25.0).filled_landmarks()


@pytest.fixture(scope="module")
def two_process_run(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two_processes") / "generated"
    with socket.socket() as probe:  # a free port for the processes' rendezvous, not the fixed default
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(port)]  # fmt: skip
    process = run_script("--backend", "warp", "--sources", str(inputs / "sources"), "--driving",
                         str(inputs / "driving"), "--output_dir", str(out), "--cpu", "true",
                         launcher=launcher)  # fmt: skip
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return out


@pytest.mark.slow
def test_two_processes_under_accelerate_run_each_job_exactly_once(inputs, two_process_run):
    out = two_process_run
    jobs = plan_jobs(inputs / "sources", inputs / "driving")
    per_process = {log.stem: [json.loads(line)["job_id"] for line in log.read_text().splitlines()]
                   for log in (out / BOOKKEEPING / "logs").glob("*.jsonl")}  # fmt: skip
    assert sorted(per_process) == ["process-0", "process-1"] and all(per_process.values())
    assert sorted(logged_jobs(out)) == sorted(job.job_id for job in jobs)  # each once, none lost
    manifest = read_manifest(out)
    assert set(manifest) == released_files(out) == {job.output for job in jobs}
    assert {row.label for row in manifest.values()} == {"real", "fake"}
    record = json.loads((out / BOOKKEEPING / "records" / "yaw" / "person002" / "person003.json").read_text())
    assert record["status"] == "done" and record["checks"]["face_presence"]["score"] >= 0.9
    assert record["frames"] == 12 and record["fps"] == 25


@pytest.mark.slow
def test_the_output_builds_into_a_loadable_dataset(two_process_run, tmp_path):
    from datasets import load_dataset

    from dataset_script.build import main as build_main

    repo = tmp_path / "deepfake_mnist_plus"
    assert build_main([str(two_process_run), "--output_dir", str(repo), "--qualities", "raw", "--allow_missing_actions",
                       "--no_progress"]) == 0  # fmt: skip
    rows = load_dataset(str(repo), "raw", split="train")
    assert len(rows) > 0 and set(rows["label"]) <= {0, 1}
    for row in rows:
        assert row["video"].get_frames_at([0]).data.shape[-2:] == (256, 256)  # the release's face crops


@pytest.mark.slow
def test_a_run_killed_midway_resumes_to_the_same_result(inputs, two_process_run, tmp_path, caplog):
    out = tmp_path / "generated"
    args = ("--backend", "warp", "--sources", str(inputs / "sources"), "--driving", str(inputs / "driving"),
            "--output_dir", str(out))  # fmt: skip
    first = run_script(*args, start_new_session=True)
    log = out / BOOKKEEPING / "logs" / "process-0.jsonl"
    deadline = time.monotonic() + 300
    while not (log.exists() and len(log.read_text().splitlines()) >= 2) and first.poll() is None:
        assert time.monotonic() < deadline, "the first run logged no jobs"
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.communicate()
    finished_before = set(logged_jobs(out))
    assert 2 <= len(finished_before) < 8 and not (out / "manifest.csv").exists()
    with caplog.at_level(logging.INFO, logger="generation.generate"):  # the rerun in-process: only the kill needs one
        assert main([*args, "--no_progress"]) == 0
    output = caplog.text
    ran_again = logged_jobs(out)[len(finished_before) :]
    assert not set(ran_again) & finished_before  # recorded jobs were not redone
    assert sorted(logged_jobs(out)) == sorted(logged_jobs(two_process_run))
    assert read_manifest(out) == read_manifest(two_process_run)
    assert released_files(out) == released_files(two_process_run)
    assert not [p for p in out.rglob("*partial*")]
    assert f"{len(finished_before)} of 8 jobs were finished before this run" in output


@pytest.mark.slow
def test_bad_inputs_and_failed_checks_are_recorded_not_dropped(tmp_path, inputs):
    from generation.fomm import build_vox256
    from tests.factories import write_official_style_checkpoint

    sources, driving = tmp_path / "sources", tmp_path / "driving" / "yaw"
    sources.mkdir()
    driving.mkdir(parents=True)
    (sources / "person003.png").symlink_to(inputs / "sources" / "person003.png")
    gradient = np.tile(np.linspace(0, 255, 128, dtype=np.uint8)[None, :, None], (128, 1, 3))
    Image.fromarray(gradient).save(sources / "wall.png")  # no face
    (driving / "person002.mp4").symlink_to(inputs / "driving" / "yaw" / "person002.mp4")
    (driving / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))  # a header, then nothing
    torch.manual_seed(0)
    checkpoint = tmp_path / "vox-cpk.pth.tar"
    write_official_style_checkpoint(checkpoint, build_vox256())  # random weights: no face survives them
    config = GenerationConfig(backend="fomm", sources=sources, driving=tmp_path / "driving",
                              output_dir=tmp_path / "out", checkpoint=checkpoint, max_frames=3,
                              no_progress=True)  # fmt: skip
    summary = generate(config)
    # done: the real crop; rejected: the fake; errors: the wall's fake, and the broken video's three jobs
    assert (summary.done, summary.rejected, summary.errors) == (1, 1, 4)
    report = (tmp_path / "out" / "generation_report.csv").read_text()
    assert report.count("broken.mp4: cannot open video") == 3
    assert "yaw/person002/wall,error,yaw/wall--person002.mp4,source wall.png: no face found" in report
    assert "yaw/person002/person003,rejected,yaw/person003--person002.mp4,face_presence: a face in 0 of 3" in report
    assert (tmp_path / "out" / BOOKKEEPING / "rejected" / "yaw" / "person003--person002.mp4").is_file()
    assert set(read_manifest(tmp_path / "out")) == {"original/yaw--person002.mp4"}
    # each job's record says what its animator ran in: the default bf16 where this CPU computes in it natively
    records = [json.loads(path.read_text()) for path in (tmp_path / "out" / BOOKKEEPING / "records").rglob("*.json")]
    animated = [record for record in records if "reference_frame" in record]
    expected = precision_name(half_dtype("bf16", torch.device("cpu")))
    assert animated and {record["precision"] for record in animated} == {expected}
    again = generate(config)  # nothing left to do, and the same answer
    assert (again.done, again.rejected, again.errors) == (1, 1, 4)
    with pytest.raises(JobPlanError, match="other settings .*max_frames 3 -> 4"):
        generate(GenerationConfig(**{**config.__dict__, "max_frames": 4}))

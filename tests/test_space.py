"""The Space: the clip check on mini clips and on every bad input, through gradio_client, and in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from dataset_script.shards import export_clips
from tests.factories import ffmpeg, importable_space, write_card

SPACE = importable_space()

from clip_check import ClipChecker, ClipLimits, ClipRejected, read_detector_card  # noqa: E402

from dataset_script.frames import normalise_frames  # noqa: E402
from modeling import create_detector, save_detector  # noqa: E402
from training.model_card import GENERATED, SYNTHETIC_MINI  # noqa: E402


def frame_fake_probabilities(detector_dir: Path, crops: list[np.ndarray]) -> np.ndarray:
    """Each (H, W, 3) uint8 crop's fake probability, computed apart from the Space's checker: timm loads the saved
    folder with its saved input config, the fake class is the one config.json names "fake", softmax of its logits."""
    config = json.loads((detector_dir / "config.json").read_text())
    names = config.get("label_names") or [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    fake = names.index("fake")  # transformers 5 writes label_names, older ones id2label
    model = timm.create_model(f"local-dir:{detector_dir}", pretrained=True).eval()
    pixels = normalise_frames(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2), model.pretrained_cfg)
    with torch.inference_mode():
        return model(pixels).softmax(-1)[:, fake].double().numpy()


def expected_verdict(detector_dir: Path, report) -> str:
    """The verdict the report must carry: the mean of the frames' fake probabilities, computed apart, against 0.5."""
    probabilities = frame_fake_probabilities(detector_dir, [frame.crop for frame in report.frames])
    assert np.allclose([frame.fake_score for frame in report.frames], probabilities, atol=1e-5)
    return "fake" if probabilities.mean() >= 0.5 else "real"


@pytest.fixture(scope="module")
def mini_clips(smoke_mini_repo, tmp_path_factory) -> dict[str, Path]:
    names = {"real": "raw/real/00000.mp4", "fake": "raw/yaw/00000.mp4"}
    files = export_clips(smoke_mini_repo, names.values(), tmp_path_factory.mktemp("mini_clips"))
    return {label: files[name] for label, name in names.items()}


@pytest.fixture(scope="module")
def bad_clips(tmp_path_factory, mini_clips) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_clips")
    made = {}
    made["not a video"] = folder / "notes.mp4"
    made["not a video"].write_text("these are meeting notes, not a video\n" * 50)
    made["zero-byte"] = folder / "empty.mp4"
    made["zero-byte"].write_bytes(b"")
    whole = mini_clips["real"].read_bytes()
    made["truncated"] = folder / "truncated.mp4"
    made["truncated"].write_bytes(whole[: len(whole) // 3])
    fragmented = folder / "fragmented.mp4"  # its moov holds the track and no sample; fragments hold the frames
    ffmpeg("-i", str(mini_clips["real"]), "-c", "copy", "-movflags", "frag_keyframe+empty_moov", str(fragmented))
    made["zero frames"] = folder / "no_frames.mp4"  # a valid video stream header and not one frame after it
    made["zero frames"].write_bytes(fragmented.read_bytes().split(b"moof")[0][:-4])
    made["no face"] = folder / "pattern.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=256x256:r=25:d=1", "-pix_fmt", "yuv420p", str(made["no face"]))
    made["several faces"] = folder / "two_people.mp4"
    ffmpeg("-i", str(mini_clips["real"]), "-i", str(mini_clips["fake"]), "-filter_complex", "hstack=inputs=2",
           "-pix_fmt", "yuv420p", str(made["several faces"]))  # fmt: skip
    made["32x32"] = folder / "tiny.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=32x32:r=25:d=1", "-pix_fmt", "yuv420p", str(made["32x32"]))
    made["4K"] = folder / "uhd.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=3840x2160:r=25:d=0.08", "-preset", "ultrafast", "-pix_fmt",
           "yuv420p", str(made["4K"]))  # fmt: skip
    made["over-long"] = folder / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x64:r=1:d=45", "-pix_fmt", "yuv420p", str(made["over-long"]))
    made["audio only"] = folder / "speech.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(made["audio only"]))
    return made


EXPECTED_MESSAGES = {
    "not a video": "not a video file of an accepted format",
    "zero-byte": "zero-byte",
    "truncated": "truncated",
    "zero frames": "no frames",
    "no face": "already a face crop",
    "several faces": "2 faces of similar size and no clear main one in frame 0; crop the video to one person$",
    "32x32": "too small",
    "4K": "3840x2160",
    "over-long": "45 s, over the 30 s limit",
    "audio only": "no video stream",
}


@pytest.mark.parametrize("kind", ["real", "fake"])
def test_a_mini_clip_gets_a_verdict_with_faces_cams_and_timings(checker, detector_dir, mini_clips, kind):
    report = checker.check(mini_clips[kind])  # auto: a released clip is a crop as the detector's record says
    assert report.framing == "crop" and report.framing_reason.startswith("chosen automatically: the face fills")
    assert 0.0 <= report.fake_score <= 1.0 and report.verdict == expected_verdict(detector_dir, report)
    assert report.fake_score == pytest.approx(sum(f.fake_score for f in report.frames) / len(report.frames))
    smoke_frames = 16  # the smoke mini's clips are shorter than 32 frames: every frame is used
    assert len(report.frames) == smoke_frames and len(report.frames_without_face) <= 2  # MTCNN finds the faces
    assert all(frame.crop.shape == (256, 256, 3) for frame in report.frames)
    with_cam = [frame for frame in report.frames if frame.cam is not None]
    assert len(with_cam) == 4 and with_cam[0].cam.shape == (64, 64, 3)  # the centre the model sees, at its input
    assert set(report.seconds) == {"decode", "face crop", "model", "CAM"}
    told = checker.check(mini_clips[kind], framing="crop")  # the override: no face is looked for
    assert "face crop" not in told.seconds and told.framing_reason.startswith("chosen by hand")
    assert all(np.array_equal(a.crop, b.crop) for a, b in zip(told.frames, report.frames, strict=True))
    recut = checker.check(mini_clips[kind], framing="whole_frame")  # the override the other way: cut again
    assert recut.framing == "whole_frame" and len(recut.frames) == smoke_frames
    assert recut.verdict == expected_verdict(detector_dir, recut)
    assert recut.fake_score != report.fake_score  # other pixels, another score


@pytest.mark.parametrize("kind", ["real", "fake"])
def test_faces_found_at_key_frames_agree_with_detecting_every_frame(checker, mini_clips, kind):
    """The Space runs MTCNN on every 4th frame and interpolates between (``detect_at_key_frames``): on the mini's
    clips the boxes agree with detecting every frame at a mean IoU of 0.9 or more (single frames less: MTCNN's own
    boxes jitter from frame to frame), at a third of the detections, and no frame with a face loses it."""
    from dataset_script.faces import box_iou, detect_at_key_frames, main_face
    from dataset_script.frames import VideoFrames, evenly_spaced_indices

    video = VideoFrames(str(mini_clips[kind]))
    frames = video.read(evenly_spaced_indices(video.num_frames))
    every = checker.faces.detect(frames)
    keyed = detect_at_key_frames(checker.faces, frames, stride=checker.face_stride)
    assert all(b for a, b in zip(every, keyed, strict=True) if a)
    ious = [box_iou(main_face(a).box, main_face(b).box) for a, b in zip(every, keyed, strict=True) if a]
    assert len(ious) >= len(frames) // 2 and sum(ious) / len(ious) >= 0.9


@pytest.mark.parametrize("kind", list(EXPECTED_MESSAGES))
def test_every_bad_input_is_refused_with_a_clear_message(checker, bad_clips, kind):
    with pytest.raises(ClipRejected, match=EXPECTED_MESSAGES[kind]):
        checker.check(bad_clips[kind])


@pytest.mark.parametrize("verdict", ["real", "fake"])
def test_the_verdict_is_the_class_the_frames_lean_to(detector_dir, mini_clips, tmp_path, verdict):
    """A detector whose head leans hard to one class: every frame and the verdict must say that class."""
    model, info = create_detector("mesoinception4_hp", pretrained=False, input_size=64, crop_pct=0.5)
    with torch.no_grad():
        model.get_classifier().weight.zero_()
        model.get_classifier().bias.copy_(torch.tensor([4.0, -4.0] if verdict == "real" else [-4.0, 4.0]))
    leaning = save_detector(model, info, tmp_path / f"says-{verdict}")
    report = ClipChecker([str(leaning)], cam_frames=1).check(mini_clips["real"], framing="crop")
    fake_score = 1 / (1 + np.exp(-8.0)) if verdict == "fake" else 1 / (1 + np.exp(8.0))
    assert all(frame.fake_score == pytest.approx(fake_score) for frame in report.frames)
    assert report.verdict == verdict and report.fake_score == pytest.approx(fake_score)


def test_an_odd_pixel_format_and_size_is_checked(checker, mini_clips, tmp_path):
    odd = tmp_path / "odd.mkv"
    ffmpeg("-i", str(mini_clips["fake"]), "-vf", "scale=255:251", "-pix_fmt", "yuv444p", "-c:v", "libx264", str(odd))
    report = checker.check(odd)
    assert report.metadata.pixel_format == "yuv444p" and (report.metadata.width, report.metadata.height) == (255, 251)
    assert len(report.frames) >= 14


def test_an_oversized_file_and_a_missing_upload_are_refused(detector_dir, mini_clips):
    strict = ClipChecker([str(detector_dir)], ClipLimits(max_megabytes=0.01))
    with pytest.raises(ClipRejected, match="over the 0.01 MB limit"):
        strict.check(mini_clips["real"])
    with pytest.raises(ClipRejected, match="no video uploaded"):
        strict.check(None)


def test_a_missing_detector_says_how_to_get_one(tmp_path):
    with pytest.raises(SystemExit, match="make demo"):
        ClipChecker([str(tmp_path / "nowhere")])


def test_loads_and_checks_called_from_any_thread_run_on_one_thread(detector_dir, mini_clips, monkeypatch):
    """Torch work on a second thread gives it an OpenMP team of its own, and then every team sleeps between ops
    (ClipChecker says why): the detector's load, the decode, the face crop and a rejection all happen on the
    checker's one thread, whichever thread calls, and the caller gets the result or the error."""
    import threading

    import clip_check

    workers: dict[str, set[int]] = {}

    def on_record(name: str):
        real = getattr(clip_check, name)

        def recorded(*args, **kwargs):
            workers.setdefault(name, set()).add(threading.get_ident())
            return real(*args, **kwargs)

        monkeypatch.setattr(clip_check, name, recorded)

    for name in ("detector", "read_clip", "detect_at_key_frames"):
        on_record(name)
    checker = ClipChecker([str(detector_dir)], cam_frames=1)
    callers, reports = {threading.get_ident()}, [checker.check(mini_clips["real"])]
    rejections = []

    def from_another_thread():  # records what happened; the asserts below run on the test's thread
        callers.add(threading.get_ident())
        reports.append(checker.check(mini_clips["fake"]))
        try:
            checker.check(mini_clips["fake"], model="nobody")
        except ClipRejected as error:
            rejections.append(str(error))

    caller = threading.Thread(target=from_another_thread)
    caller.start()
    caller.join()
    assert [report.verdict in ("real", "fake") for report in reports] == [True, True]
    assert len(rejections) == 1 and "unknown model 'nobody'" in rejections[0]
    assert set(workers) == {"detector", "read_clip", "detect_at_key_frames"}
    (worker,) = set.union(*workers.values())
    assert len(callers) == 2 and worker not in callers


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(detector_dir, smoke_mini_repo, tmp_path_factory):
    """``app.py`` launched as a user runs it, on a free port; yields its URL."""
    port = free_port()
    log = (tmp_path_factory.mktemp("served") / "app.log").open("w")
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, str(SPACE / "app.py"), "--model", str(detector_dir), "--examples", str(smoke_mini_repo)]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited early:\n{Path(log.name).read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        raise RuntimeError(f"app.py did not start in 120 s:\n{Path(log.name).read_text()}")
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_the_launched_app_answers_through_gradio_client_and_survives_bad_input(
    served_app, checker, detector_dir, mini_clips, bad_clips
):
    from gradio_client import Client, handle_file

    verdicts = {}  # what the served app must answer: the checker's verdicts, themselves checked against frames
    for kind in ("fake", "real"):
        report = checker.check(mini_clips[kind], framing="crop")
        verdicts[kind] = expected_verdict(detector_dir, report)
    client = Client(served_app, verbose=False)
    label, about, plot, gallery, details = client.predict(handle_file(str(mini_clips["fake"])), "crop",
                                                          api_name="/predict")  # fmt: skip
    assert label["label"] == verdicts["fake"] and not label.get("confidences")  # uncalibrated: no confidence bars
    assert f"**{label['label']}**: fake score 0." in about and "not a probability" in about
    assert "means nothing" in about and "`demo_output/deepfake_mnist_plus`" in about
    assert len(gallery) == 16 and "Frames used:** 16" in details  # 8 crops and their CAMs
    with pytest.raises(Exception, match="not a video file of an accepted format"):
        client.predict(handle_file(str(bad_clips["not a video"])), "whole_frame", api_name="/predict")
    with pytest.raises(Exception, match="already a face crop"):
        client.predict(handle_file(str(bad_clips["no face"])), "whole_frame", api_name="/predict")
    again, *_ = client.predict(handle_file(str(mini_clips["real"])), "crop", api_name="/predict")
    assert again["label"] == verdicts["real"]  # still serving


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.browser
def test_a_real_browser_uploads_a_clip_and_sees_the_verdict(served_app, checker, detector_dir, mini_clips, tmp_path):
    assert CHROMIUM and CHROMEDRIVER, "install Debian's chromium and chromium-driver (make setup does)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1700", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        browser.get(served_app)
        wait = WebDriverWait(browser, 90)
        upload = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "input[type=file]")))
        upload.send_keys(str(mini_clips["fake"]))  # framing left at auto, as a visitor would
        wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "video")))
        # what the detector learnt from is on the page before any check
        assert "Trained on synthetic faces only" in browser.find_element(By.TAG_NAME, "body").text
        browser.find_element(By.XPATH, "//button[normalize-space()='Check']").click()
        wait.until(expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), "Frames used"))
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Frames used: 16" in body and "Framing: scored as a face crop, chosen automatically" in body
        report = checker.check(mini_clips["fake"])
        shown = browser.find_element(By.CSS_SELECTOR, "[data-testid='label-output-value']").text.strip()
        assert shown == expected_verdict(detector_dir, report)  # the page's verdict, not just the two words
        assert "not a probability" in body and "means nothing" in body
        screenshot = tmp_path / "space.png"
        browser.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
        if target := os.environ.get("SPACE_SCREENSHOT"):  # how the README's screenshot is made
            shutil.copy(screenshot, target)
    finally:
        browser.quit()


SPLITS_COLUMNS = ["video_id", "label", "action", "source_id", "driving_id", "source_file", "width", "height",
                  "num_frames", "fps", "split", "identity_split"]  # fmt: skip


@pytest.mark.parametrize("identities", [True, False])
def test_examples_are_test_clips_of_a_built_repo_with_or_without_identity_splits(tmp_path, identities):
    """The build always writes the identity_split column, empty where identities are unknown: then the paper's
    split says which clips are test clips."""
    from app import find_examples

    clips = {  # video_id: (label, paper split, identity split)
        "real/00000": ("real", "train", "test"), "real/00001": ("real", "test", "train"),
        "real/00002": ("real", "test", "test"), "yaw/00000": ("fake", "test", "validation"),
        "yaw/00001": ("fake", "validation", "test"), "nod/00000": ("fake", "test", "test"),
    }  # fmt: skip
    lines = [",".join(SPLITS_COLUMNS)]
    for video_id, (label, split, identity_split) in clips.items():
        action = "" if label == "real" else video_id.split("/")[0]
        lines.append(f"{video_id},{label},{action},p1,,{video_id}.mp4,64,64,16,25,{split},"
                     f"{identity_split if identities else ''}")  # fmt: skip
        (tmp_path / "raw" / video_id).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "raw" / f"{video_id}.mp4").write_bytes(b"clip")
    (tmp_path / "splits.csv").write_text("\n".join(lines) + "\n")
    column = 2 if identities else 1
    expected = [str(tmp_path / "raw" / f"{video_id}.mp4") for label in ("fake", "real")
                for video_id, row in clips.items() if row[0] == label and row[column] == "test"]  # fmt: skip
    assert find_examples(tmp_path) == expected and len(expected) == 4
    (tmp_path / "raw" / "nod" / "00000.mp4").unlink()  # a clip the repo lacks is not offered
    assert str(tmp_path / "raw" / "nod" / "00000.mp4") not in find_examples(tmp_path)


def test_several_detectors_are_offered_in_a_dropdown(detector_dir, tmp_path):
    from app import build_app

    model, info = create_detector("mesoinception4", pretrained=False, input_size=64)
    second = save_detector(model, info, tmp_path / "second")
    app = build_app(ClipChecker([str(detector_dir), str(second)]), [])
    dropdowns = [c for c in app.config["components"] if c["type"] == "dropdown"]
    assert len(dropdowns) == 1 and [choice[0] for choice in dropdowns[0]["props"]["choices"]] == [
        str(detector_dir),
        str(second),
    ]
    single = build_app(ClipChecker([str(detector_dir)]), [])
    assert not [c for c in single.config["components"] if c["type"] == "dropdown"]


def test_the_idle_queue_polls_at_the_spaces_rate_which_gradio_reads(detector_dir):
    import inspect

    from app import QUEUE_POLL_SECONDS, build_app
    from gradio.queueing import Queue

    app = build_app(ClipChecker([str(detector_dir)]), [])
    assert app._queue.sleep_when_free == QUEUE_POLL_SECONDS == 0.01
    # the attribute set is the one Gradio's queue loop sleeps on (a rename in an upgrade would make it a no-op)
    assert "asyncio.sleep(self.sleep_when_free)" in inspect.getsource(Queue.start_processing)


# --- what the page says of the detector and of its number ---------------------------------------------------


def test_the_provenance_of_a_mini_trained_detector_warns_about_real_people(tmp_path):
    card = read_detector_card(str(write_card(tmp_path / "mini-detector", SYNTHETIC_MINI, temperature=1.5)))
    text = card.provenance()
    assert card.synthetic and text.startswith("> **Trained on synthetic faces only.**")
    assert "its verdict on a real person's video means nothing" in text
    assert "`demo_output/deepfake_mnist_plus`, the synthetic mini" in text and "configuration `raw`" in text
    assert "identity-disjoint split" in text
    assert "**Test** (`raw`, split `identity_test`): video accuracy 0.875, video AUC 0.938." in text
    assert "**Calibrated:** temperature 1.5" in text and "raw 0.210 before, 0.040 after" in text


def test_the_provenance_of_a_detector_trained_on_real_data_has_no_such_warning(tmp_path):
    card = read_detector_card(str(write_card(tmp_path / "ffpp-detector", GENERATED, dataset="lab/deepfake_mnist_plus",
                                             split_protocol="paper")))  # fmt: skip
    text = card.provenance()
    assert not card.synthetic and "synthetic" not in text and "means nothing" not in text
    assert "`lab/deepfake_mnist_plus`, faces animated by this project's generators" in text
    assert "the paper's split" in text and "split `test`" in text
    assert "**Not calibrated**" in text and "scores, not probabilities" in text


def test_a_detector_without_a_card_says_its_training_is_unknown(tmp_path, detector_dir):
    bare = tmp_path / "bare"
    shutil.copytree(detector_dir, bare)
    (bare / "README.md").unlink()
    assert f"**Trained on:** unknown: `{bare}` has no model card" in read_detector_card(str(bare)).provenance()
    (bare / "README.md").write_text("---\nlicense: mit\n---\n# an older card\n")
    assert "does not record its training data" in read_detector_card(str(bare)).provenance()
    (bare / "README.md").write_text("---\n: not: yaml\n---\n")
    assert "cannot be read" in read_detector_card(str(bare)).provenance()
    (bare / "README.md").unlink()
    config = json.loads((bare / "config.json").read_text())
    (bare / "config.json").write_text(json.dumps({**config, "calibration_temperature": "hot"}))
    assert read_detector_card(str(bare)).temperature is None  # nonsense is not a calibration


def test_the_page_shows_a_probability_only_for_a_calibrated_detector(detector_dir, mini_clips, tmp_path):
    from app import verdict_label, verdict_text

    calibrated_dir = tmp_path / "calibrated"
    shutil.copytree(detector_dir, calibrated_dir)
    write_card(calibrated_dir, temperature=2.0)
    both = ClipChecker([str(detector_dir), str(calibrated_dir)], cam_frames=1)
    raw = both.check(mini_clips["fake"], framing="crop", model=str(detector_dir))
    scaled = both.check(mini_clips["fake"], framing="crop", model=str(calibrated_dir))
    assert not raw.calibrated and scaled.calibrated

    def margins(report):
        scores = np.array([frame.fake_score for frame in report.frames], dtype=np.float64)
        return np.log(scores) - np.log1p(-scores)

    assert np.allclose(margins(scaled), margins(raw) / 2.0, atol=1e-4)  # softmax(logits / T), T = 2
    label = verdict_label(scaled)
    assert set(label) == {"fake", "real"} and label["fake"] == pytest.approx(scaled.fake_score)
    assert verdict_label(raw) == raw.verdict  # a bare verdict: no confidence bars for a score
    text = verdict_text(scaled, both.cards[str(calibrated_dir)])
    assert f"fake probability {scaled.fake_score:.2f}" in text and "score" not in text.split("\n")[0]
    text = verdict_text(raw, both.cards[str(detector_dir)])
    assert f"fake score {raw.fake_score:.2f}" in text and "not a probability" in text.split("\n")[0]

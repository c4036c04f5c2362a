"""The mini's offline replicas of FaceForensics++ and Celeb-DF-v2: release layouts, split files and test list,
qualities, determinism, resumption, faces MTCNN can find, and manipulations that change what their method does."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import av
import pytest
import torch

from dataset_script.compression import ffmpeg_command
from dataset_script.faces import FaceDetector, main_face
from dataset_script.frames import read_frames
from generation.mini.replicas import celeb_df, faceforensics
from generation.mini.replicas.manipulations import region_mask
from generation.mini.replicas.write import STAGING, take_of

FF_SIZE, CD_SIZE = faceforensics.SIZES["smoke"], celeb_df.SIZES["smoke"]
METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")


@pytest.fixture(scope="module")
def ffpp(tmp_path_factory):
    out = tmp_path_factory.mktemp("replicas") / "FaceForensics++"
    return faceforensics.write_faceforensics(out, "smoke", seed=0, workers=2, progress=False)


@pytest.fixture(scope="module")
def celebdf(tmp_path_factory):
    """Made through the command line, so the CLI's --layout path is exercised end to end."""
    out = tmp_path_factory.mktemp("replicas") / "Celeb-DF-v2"
    command = [sys.executable, "-m", "generation.mini", "--layout", "celeb_df", "--size", "smoke", "--output_dir",
               str(out), "--workers", "2", "--no_progress"]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    return out


def _videos(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*.mp4")}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def _all_frames(path: Path) -> torch.Tensor:
    return read_frames(path, list(range(_frame_count(path)))).float()


def _splits(root: Path) -> dict[str, list[list[str]]]:
    return {split: json.loads((root / "splits" / f"{split}.json").read_text()) for split in ("train", "val", "test")}


@pytest.mark.slow
def test_faceforensics_has_the_release_layout(ffpp):
    pairs = [pair for pairs in _splits(ffpp).values() for pair in pairs]
    ids = [f"{index:03d}" for index in range(FF_SIZE.people)]
    expected = set()
    for quality in ("raw", "c23", "c40"):
        expected |= {f"original_sequences/youtube/{quality}/videos/{video}.mp4" for video in ids}
        for method in METHODS:
            for first, second in pairs:
                expected |= {f"manipulated_sequences/{method}/{quality}/videos/{first}_{second}.mp4",
                             f"manipulated_sequences/{method}/{quality}/videos/{second}_{first}.mp4"}  # fmt: skip
    assert _videos(ffpp) == expected
    assert len(expected) == 3 * 5 * FF_SIZE.people
    assert not (ffpp / STAGING).exists()
    note = (ffpp / "README.md").read_text()
    assert "synthetic" in note and '"seed": 0' in note


@pytest.mark.slow
def test_split_files_cover_every_pair_once_and_name_existing_videos(ffpp):
    splits = _splits(ffpp)
    assert [len(splits[split]) for split in ("train", "val", "test")] == [1, 1, 1]
    ids = [video for pairs in splits.values() for pair in pairs for video in pair]
    assert sorted(ids) == [f"{index:03d}" for index in range(FF_SIZE.people)]  # every id in exactly one pair
    for pairs in splits.values():
        for pair in pairs:
            assert len(pair) == 2 and all(re.fullmatch(r"\d{3}", video) for video in pair)
            first, second = pair
            for target, source in ((first, second), (second, first)):
                assert (ffpp / f"original_sequences/youtube/c23/videos/{target}.mp4").exists()
                for method in METHODS:
                    assert (ffpp / f"manipulated_sequences/{method}/c23/videos/{target}_{source}.mp4").exists()


@pytest.mark.slow
def test_celeb_df_has_the_release_layout_and_its_test_list_labels_real_1(celebdf):
    videos = _videos(celebdf)
    real = {v for v in videos if re.fullmatch(r"Celeb-real/id\d+_\d{4}\.mp4", v)}
    youtube = {v for v in videos if re.fullmatch(r"YouTube-real/\d{5}\.mp4", v)}
    fakes = {v for v in videos if re.fullmatch(r"Celeb-synthesis/id\d+_id\d+_\d{4}\.mp4", v)}
    assert videos == real | youtube | fakes
    assert (len(real), len(youtube), len(fakes)) == (CD_SIZE.people * CD_SIZE.takes_per_person, CD_SIZE.youtube,
                                                     CD_SIZE.people * CD_SIZE.takes_per_person)  # fmt: skip
    for fake in fakes:  # id{A}_id{B}_{NNNN}: A's video NNNN exists, and B is another celebrity
        target, source, take = re.fullmatch(r"Celeb-synthesis/(id\d+)_(id\d+)_(\d{4})\.mp4", fake).groups()
        assert f"Celeb-real/{target}_{take}.mp4" in real and source != target
    lines = [line.split(" ") for line in (celebdf / "List_of_testing_videos.txt").read_text().splitlines()]
    assert lines and all(len(line) == 2 for line in lines)
    for label, path in lines:
        assert path in videos
        assert label == ("0" if path.startswith("Celeb-synthesis/") else "1")  # 1 = real, 0 = fake
    assert {label for label, _ in lines} == {"0", "1"}
    # No test celebrity appears in a video outside the test list (swaps stay inside the test group).
    listed = {path for _, path in lines}
    test_people = {re.search(r"(id\d+)_", path).group(1) for path in listed if path.startswith("Celeb-real/")}
    for video in (real | fakes) - listed:
        assert not set(re.findall(r"id\d+", video)) & test_people, video
    assert "1 = real and 0 = fake" in (celebdf / "README.md").read_text()


@pytest.mark.slow
def test_c23_and_c40_are_ffpp_compressions_of_raw(ffpp, tmp_path):
    for relative in ("original_sequences/youtube/{}/videos/000.mp4", "manipulated_sequences/FaceSwap/{}/videos/"
                     + next((ffpp / "manipulated_sequences/FaceSwap/raw/videos").glob("*.mp4")).name):  # fmt: skip
        raw, c23, c40 = (ffpp / relative.format(quality) for quality in ("raw", "c23", "c40"))
        assert raw.stat().st_size > c23.stat().st_size > c40.stat().st_size
        assert _frame_count(c23) == _frame_count(c40) == FF_SIZE.frames
        assert read_frames(c40, [0]).shape == (1, 3, FF_SIZE.height, FF_SIZE.width)
        again = tmp_path / "again.mp4"
        subprocess.run(ffmpeg_command(raw, [(again, 23)]), check=True)
        assert _sha(again) == _sha(c23)  # made from raw by FaceForensics++'s own command
        # c40 is the lossiest: furthest from raw
        raw_frames = _all_frames(raw)
        assert (_all_frames(c40) - raw_frames).abs().mean() > (_all_frames(c23) - raw_frames).abs().mean()


@pytest.mark.slow
def test_one_quality_alone_is_byte_identical_and_reruns_finish_what_is_missing(ffpp, tmp_path):
    alone = faceforensics.write_faceforensics(tmp_path / "c23", "smoke", seed=0, qualities=["c23"], progress=False)
    assert _videos(alone) == {v for v in _videos(ffpp) if "/c23/" in v}
    assert all(_sha(alone / v) == _sha(ffpp / v) for v in _videos(alone))  # same seed, same bytes
    assert not (alone / STAGING).exists()
    # An interrupted run: a raw fake and a c40 original missing, a partial file left behind.
    lost = [ffpp / "manipulated_sequences/Deepfakes/raw/videos" / sorted(
        p.name for p in (ffpp / "manipulated_sequences/Deepfakes/raw/videos").glob("*.mp4"))[0],
        ffpp / "original_sequences/youtube/c40/videos/001.mp4"]  # fmt: skip
    before = {path: _sha(path) for path in lost}
    kept = ffpp / "original_sequences/youtube/raw/videos/000.mp4"
    kept_time = kept.stat().st_mtime_ns
    for path in lost:
        path.unlink()
    faceforensics.write_faceforensics(ffpp, "smoke", seed=0, workers=2, progress=False)
    assert {path: _sha(path) for path in lost} == before
    assert kept.stat().st_mtime_ns == kept_time  # finished videos are not rewritten
    with pytest.raises(ValueError, match="seed"):
        faceforensics.write_faceforensics(ffpp, "smoke", seed=1, progress=False)


@pytest.mark.slow
def test_mtcnn_finds_the_face_in_real_videos_and_nearly_all_fakes(ffpp, celebdf):
    real = [ffpp / f"original_sequences/youtube/c23/videos/{video:03d}.mp4" for video in range(3)]
    real += sorted(celebdf.glob("*-real/*.mp4"))[::4]
    fakes = [next((ffpp / f"manipulated_sequences/{m}/c23/videos").glob("*.mp4")) for m in METHODS]
    fakes += sorted(celebdf.glob("Celeb-synthesis/*.mp4"))[::4]
    detector = FaceDetector()

    def faces_of(videos):  # one batch per frame size: MTCNN's cost is mostly per call
        by_size = {}
        for video in videos:
            frames = read_frames(video, [0, 5, 11])
            by_size.setdefault(frames.shape, []).append(frames)
        return [found for batches in by_size.values() for found in detector.detect(torch.cat(batches))]

    real_faces, fake_faces = faces_of(real), faces_of(fakes)
    assert len(real_faces) == 3 * len(real) and all(len(found) == 1 for found in real_faces)
    assert all(main_face(found) for found in real_faces)  # raises FaceError where there is none or no main one
    # Measured on whole smoke replicas: about 95% of swapped frames (the mini's faces, 50 px wide, are near
    # MTCNN's limit once another person's inner face is blended in); the build reports the rest by name.
    assert sum(len(found) == 1 for found in fake_faces) >= 0.9 * len(fake_faces)


def _take_and_masks(ffpp, target: str, region: str):
    clip = next(c for c in faceforensics.plan(FF_SIZE, 0) if c.take == f"ff{target}")
    take = take_of(clip.person, clip.take, clip.fps, FF_SIZE, 0)
    mask = region_mask(take.keypoints(take.person, take.motion), region, take.shot, 0.0)[:, 0]
    return clip, mask


@pytest.mark.slow
def test_each_manipulation_changes_its_region_and_nothing_far_from_it(ffpp):
    target = "000"
    clip, face = _take_and_masks(ffpp, target, "face")
    _, mouth = _take_and_masks(ffpp, target, "mouth")
    original = _all_frames(ffpp / f"original_sequences/youtube/raw/videos/{target}.mp4").mean(1)
    grown = torch.nn.functional.max_pool2d(face[:, None], 15, stride=1, padding=7)[:, 0]  # well past any feather
    upper_face = (face > 0.99) & (torch.nn.functional.max_pool2d(mouth[:, None], 9, 1, 4)[:, 0] < 0.01)
    sharpness = {}
    for fake in clip.fakes:
        frames = _all_frames(ffpp / fake.path.format(quality="raw")).mean(1)
        change = (frames - original).abs()
        assert change[grown < 0.5].mean() < 0.5, fake.method  # raw is lossless: the rest is the target's pixels
        if fake.method == "NeuralTextures":
            assert change[mouth > 0.99].mean() > 3 * max(change[upper_face].mean(), 0.3)
            assert change[upper_face].mean() < 1.0  # eyes and brows are the target's own
        else:
            assert change[face > 0.99].mean() > 4.0, fake.method
        laplacian = frames[:, 1:-1, 1:-1] * 4 - frames[:, :-2, 1:-1] - frames[:, 2:, 1:-1] - frames[:, 1:-1, :-2] \
            - frames[:, 1:-1, 2:]  # fmt: skip
        sharpness[fake.method] = laplacian.abs()[face[:, 1:-1, 1:-1] > 0.99].mean().item()
    # Deepfakes' generated face (no camera noise; at default size also decoded at 64 px) is softer than FaceSwap's
    # landmark-fitted one, which keeps the camera texture of the source frames.
    assert sharpness["FaceSwap"] > 1.2 * sharpness["Deepfakes"]


def test_the_same_plan_for_the_same_seed_and_another_for_another():
    assert faceforensics.id_pairs(FF_SIZE, 0) == faceforensics.id_pairs(FF_SIZE, 0)
    assert faceforensics.id_pairs(FF_SIZE, 0) != faceforensics.id_pairs(FF_SIZE, 3)
    size = faceforensics.SIZES["default"]
    shares = [len(pairs) for pairs in faceforensics.split_pairs(faceforensics.id_pairs(size, 0)).values()]
    assert shares == [14, 3, 3] and sum(shares) * 2 == size.people


@pytest.mark.parametrize("argv", [["--layout", "celeb_df", "--qualities", "c23"],
                                  ["--layout", "faceforensics", "--size", "large"]])  # fmt: skip
def test_the_command_line_refuses_options_a_layout_does_not_have(argv, tmp_path, capsys):
    from generation.mini.__main__ import main

    with pytest.raises(SystemExit):
        main(["--output_dir", str(tmp_path), *argv])
    assert "--layout" in capsys.readouterr().err

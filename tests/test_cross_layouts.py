"""FaceForensics++ and Celeb-DF-v2 layouts through the build: full frames with a face off centre become 256x256
lossless face clips in the shared row schema, with labels and splits exactly as the split files say, and every bad
input named."""

from __future__ import annotations

import csv
import functools
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import get_dataset_config_names, load_dataset

from dataset_script.build import BuildConfig, build, parse_args
from dataset_script.compression import CompressionJob, compress_one
from dataset_script.faces import crop_face
from dataset_script.frames import VideoFrames
from dataset_script.hub import licensed_per_user
from dataset_script.layouts import recognise_layout
from dataset_script.release import write_manifest
from dataset_script.shards import read_clips
from generation.mini.cast import identity_for
from generation.mini.face import FaceState, render
from generation.video import write_video
from tests.factories import release_rows

FRAMES, HEIGHT, WIDTH, FACE = 4, 192, 256, 112
IDS = ["000", "001", "002", "003", "004", "005"]
PAIRS = {"train": [["000", "001"]], "val": [["002", "003"]], "test": [["004", "005"]]}
METHODS = ("Deepfakes", "Face2Face")


@functools.cache
def _face(name: str) -> np.ndarray:
    """A mini person, (T, FACE, FACE, 3) uint8, turning a little."""
    state = FaceState.neutral(FRAMES)
    state.yaw = torch.linspace(-8, 8, FRAMES)
    return (render(identity_for(name, 0), state, size=FACE) * 255).round().byte().permute(0, 2, 3, 1).numpy()


def _frames(faces: list[tuple[np.ndarray, int, int]], seed: int) -> np.ndarray:
    """Full frames (T, HEIGHT, WIDTH, 3): a textured background with each face pasted at (top, left)."""
    rng = np.random.default_rng(seed)
    frames = np.repeat(rng.integers(40, 200, (1, HEIGHT, WIDTH, 3), dtype=np.uint8), FRAMES, axis=0)
    for face, top, left in faces:
        frames[:, top : top + face.shape[1], left : left + face.shape[2]] = face
    return frames


def _write(frames: np.ndarray, path: Path, qualities: dict[str, Path]) -> None:
    """``path`` at raw (near lossless), and at each other quality made from it with FF++'s command."""
    write_video(frames, path, crf=0)
    for crf, target in qualities.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        compress_one(CompressionJob.single(path, target, crf))


FACE_AT = (40, 120)  # top, left: off centre, in the right half of the frame


def make_faceforensics(root: Path) -> Path:
    """Originals of six ids and two methods' fakes of every pair, at raw and c23 (c40 absent), and split files."""
    faces = {name: _face(f"person{name}") for name in IDS}
    pairs = [(a, b) for pairs in PAIRS.values() for a, b in pairs]
    videos = {f"original_sequences/youtube/{{q}}/videos/{name}": (faces[name], i) for i, name in enumerate(IDS)}
    for m, method in enumerate(METHODS):
        for a, b in pairs:
            for target, source in ((a, b), (b, a)):
                # the source's face where the target sat; Face2Face keeps the target's face, mouth from the source
                face = faces[source].copy() if method == "Deepfakes" else faces[target].copy()
                if method == "Face2Face":
                    face[:, FACE // 2 :] = faces[source][:, FACE // 2 :]
                key = f"manipulated_sequences/{method}/{{q}}/videos/{target}_{source}"
                videos[key] = (face, 100 * m + IDS.index(target))
    for key, (face, seed) in videos.items():
        path = root / (key.format(q="raw") + ".mp4")
        _write(_frames([(face, *FACE_AT)], seed), path, {23: root / (key.format(q="c23") + ".mp4")})
    (root / "splits").mkdir()
    for name, split_pairs in PAIRS.items():
        (root / "splits" / f"{name}.json").write_text(json.dumps(split_pairs))
    return root


FACE_OF = {"id0": "000", "id1": "001", "id2": "002", "id3": "003", "yt0": "004", "yt1": "005"}
CELEB_VIDEOS = {
    "Celeb-real/id0_0000": ["id0"],
    "Celeb-real/id0_0001": ["id0"],
    "Celeb-real/id1_0000": ["id1"],
    "Celeb-real/id2_0000": ["id2"],
    "YouTube-real/00000": ["yt0"],
    "YouTube-real/00001": ["yt1"],
    "Celeb-synthesis/id0_id1_0000": ["id1"],
    "Celeb-synthesis/id1_id0_0000": ["id0"],
    "Celeb-synthesis/id2_id0_0000": ["id0"],
    "Celeb-synthesis/id0_id2_0001": ["id2"],
}
CELEB_TEST_LIST = "1 Celeb-real/id0_0001.mp4\n1 YouTube-real/00001.mp4\n0 Celeb-synthesis/id0_id2_0001.mp4\n"


def make_celeb_df(root: Path, videos=CELEB_VIDEOS, test_list: str = CELEB_TEST_LIST) -> Path:
    for index, (stem, people) in enumerate(videos.items()):
        pasted = []
        for number, person in enumerate(people):
            face = _face(f"person{FACE_OF[person]}")  # the FaceForensics++ source's people: rendered once
            pasted.append((face, FACE_AT[0], FACE_AT[1] - 110 * number))
        write_video(_frames(pasted, 1000 + index), root / f"{stem}.mp4", crf=0)
    (root / "List_of_testing_videos.txt").write_text(test_list)
    return root


@pytest.fixture(scope="module")
def faceforensics_source(tmp_path_factory) -> Path:
    return make_faceforensics(tmp_path_factory.mktemp("ffpp") / "FaceForensics")


@pytest.fixture(scope="module")
def faceforensics_repo(faceforensics_source) -> Path:
    out = faceforensics_source.parent / "ffpp_repo"
    # the crops kept as files too, for the tests to look at each
    return build(BuildConfig(source=faceforensics_source, output_dir=out, progress=False, workers=1, device="cpu",
                             keep_clips=True))  # fmt: skip


@pytest.fixture(scope="module")
def celeb_df_repo(tmp_path_factory) -> Path:
    source = make_celeb_df(tmp_path_factory.mktemp("celeb") / "Celeb-DF-v2")
    return build(
        BuildConfig(source=source, output_dir=source.parent / "celeb_repo", progress=False, workers=1, device="cpu")
    )


def _splits_csv(repo: Path) -> dict[str, dict]:
    with (repo / "splits.csv").open() as handle:
        return {row["video_id"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_faceforensics_configs_labels_and_splits_are_as_the_split_files_say(faceforensics_repo):
    names = get_dataset_config_names(str(faceforensics_repo))
    assert sorted(names) == sorted(["raw", "c23", *(f"{q}-{m}" for q in ("raw", "c23") for m in METHODS)])
    info = json.loads((faceforensics_repo / "build_info.json").read_text())
    assert info["layout"] == "faceforensics" and info["qualities_absent"] == ["c40"]
    assert "c40 absent" in (faceforensics_repo / "README.md").read_text()
    for quality in ("raw", "c23"):
        whole = load_dataset(str(faceforensics_repo), quality)
        for split, pairs in (("train", PAIRS["train"]), ("validation", PAIRS["val"]), ("test", PAIRS["test"])):
            (a, b), rows = pairs[0], whole[split]
            fakes = {f"{m}/{t}_{s}" for m in METHODS for t, s in ((a, b), (b, a))}
            assert set(rows["video_id"]) == {f"original/{a}", f"original/{b}"} | fakes
            assert {row["video_id"]: row["label"] for row in rows} == {
                video_id: int(not video_id.startswith("original/")) for video_id in rows["video_id"]
            }
            assert set(rows["quality"]) == {quality}
        deepfakes = load_dataset(str(faceforensics_repo), f"{quality}-Deepfakes", split="train")
        assert sorted(zip(deepfakes["video_id"], deepfakes["method"], strict=True)) == [
            ("Deepfakes/000_001", "Deepfakes"), ("Deepfakes/001_000", "Deepfakes"),
            ("original/000", None), ("original/001", None),
        ]  # fmt: skip
        fake = next(row for row in deepfakes if row["video_id"] == "Deepfakes/000_001")
        assert (fake["driving_id"], fake["source_id"], fake["action"]) == ("000", "001", None)


@pytest.mark.slow
def test_crops_are_256_lossless_with_one_box_for_every_quality_and_the_face_inside(faceforensics_repo):
    source = Path(json.loads((faceforensics_repo / "build_info.json").read_text())["config"]["source"])
    rows = _splits_csv(faceforensics_repo)
    for video_id in ("original/003", "Deepfakes/004_005"):
        box = tuple(json.loads((faceforensics_repo / "face_boxes" / f"{video_id}.json").read_text())["box"])
        assert rows[video_id]["face_box"] == " ".join(map(str, box))
        # the pasted face (FACE_AT, FACE wide) lies inside the square, which is not much larger than 1.3x it
        left, top, right, bottom = box
        assert left <= FACE_AT[1] + FACE // 4 and right >= FACE_AT[1] + 3 * FACE // 4
        assert top <= FACE_AT[0] + FACE // 4 and bottom >= FACE_AT[0] + 3 * FACE // 4
        assert right - left == bottom - top <= 1.3 * 1.3 * FACE
        for quality in ("raw", "c23"):
            folder, stem = video_id.split("/")
            original = folder == "original"
            file = (f"original_sequences/youtube/{quality}/videos/{stem}.mp4" if original
                    else f"manipulated_sequences/{folder}/{quality}/videos/{stem}.mp4")  # fmt: skip
            full = VideoFrames(source / file)
            crop = VideoFrames(faceforensics_repo / quality / f"{video_id}.mp4")
            stored = crop.read(range(crop.num_frames))
            assert tuple(stored.shape) == (FRAMES, 3, 256, 256)
            assert torch.equal(stored, crop_face(full.read(range(FRAMES)), box, 256, margin=0.0)), (video_id, quality)


@pytest.mark.slow
def test_a_rebuild_reuses_finished_crops(faceforensics_source, faceforensics_repo, tmp_path, caplog):
    """From the crop files a build kept (--keep_clips), then from the shards of a build that kept none."""
    repo = tmp_path / "ffpp_repo"
    shutil.copytree(faceforensics_repo, repo)
    names = [f"{quality}/{path.relative_to(repo / quality)}" for quality in ("raw", "c23")
             for path in (repo / quality).rglob("*.mp4")]  # fmt: skip
    crops = read_clips(repo, names)
    assert len(crops) == 2 * (6 + 12)
    for rerun in ("from files", "from shards"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="dataset_script.build"):
            build(BuildConfig(source=faceforensics_source, output_dir=repo, progress=False, workers=1, device="cpu"))
        assert "face crops: 0 videos cropped, 18 reused, 0 failed" in caplog.text, rerun
        assert not (repo / "c23").exists() and read_clips(repo, names) == crops, rerun
    assert json.loads((repo / "build_info.json").read_text())["clips"] == 6 + 12


def test_one_cpu_worker_crops_on_the_calling_thread(faceforensics_source, tmp_path, monkeypatch):
    """A second thread doing torch work would give it an OpenMP team of its own and make every team sleep between
    MTCNN's small ops (``crop_videos`` says why): one CPU worker runs MTCNN on the thread that calls."""
    import threading

    from dataset_script import face_crops

    detecting_threads = set()
    real_detect = face_crops.FaceDetector.detect

    def detect(self, frames):
        detecting_threads.add(threading.get_ident())
        return real_detect(self, frames)

    monkeypatch.setattr(face_crops.FaceDetector, "detect", detect)
    names = ("000", "001")
    originals = faceforensics_source / "original_sequences" / "youtube" / "raw" / "videos"
    jobs = [face_crops.CropJob(name, (("raw", originals / f"{name}.mp4"),), (("raw", tmp_path / f"{name}.mp4"),),
                               tmp_path / f"{name}.json", None) for name in names]  # fmt: skip
    records, failures, reused = face_crops.crop_videos(jobs, workers=1, device="cpu", progress=False)
    assert (sorted(records), failures, reused) == (list(names), {}, 0)
    assert detecting_threads == {threading.get_ident()}
    assert all(VideoFrames(tmp_path / f"{name}.mp4").num_frames == FRAMES for name in names)


@pytest.mark.slow
def test_celeb_df_test_list_means_1_real_0_fake_and_validation_is_carved_by_identity(celeb_df_repo):
    assert get_dataset_config_names(str(celeb_df_repo)) == ["raw"]
    dataset = load_dataset(str(celeb_df_repo), "raw")
    test = {row["video_id"]: row["label"] for row in dataset["test"]}
    # the list flags these 1, 1 and 0: real, real, fake, which are 0, 0 and 1 in our labels
    assert test == {"Celeb-real/id0_0001": 0, "YouTube-real/00001": 0, "Celeb-synthesis/id0_id2_0001": 1}
    assert len(dataset["train"]) + len(dataset["validation"]) == len(CELEB_VIDEOS) - 3
    assert len(dataset["validation"]) >= 1

    def person(row):
        return row["driving_id"] or row["source_id"] or row["video_id"]

    assert not {person(r) for r in dataset["train"]} & {person(r) for r in dataset["validation"]}
    fake = next(row for row in dataset["train"].to_list() + dataset["validation"].to_list()
                if row["video_id"] == "Celeb-synthesis/id2_id0_0000")  # fmt: skip
    assert (fake["label"], fake["method"], fake["driving_id"], fake["source_id"]) == (1, "Celeb-DF", "id2", "id0")
    card = (celeb_df_repo / "README.md").read_text()
    assert "Li, Yuezun" in card and "never push it to a public" in card.lower()
    assert licensed_per_user(celeb_df_repo)  # so a push makes a private repo unless told otherwise
    frames = dataset["test"][0]["video"].get_frames_at([0]).data
    assert tuple(frames.shape) == (1, 3, 256, 256)


def test_layout_is_recognised_from_the_folders_and_the_flag_overrides(faceforensics_source, tmp_path):
    assert recognise_layout(faceforensics_source).name == "faceforensics"
    (tmp_path / "Celeb-real").mkdir()
    assert recognise_layout(tmp_path).name == "celeb_df"
    assert recognise_layout(tmp_path, "dmplus").name == "dmplus"
    config = parse_args(["src", "--output_dir", "o", "--layout", "celeb_df", "--max_frames", "all", "--splits", "s"])
    assert (config.layout, config.max_frames, config.splits) == ("celeb_df", None, Path("s"))
    assert parse_args(["src", "--output_dir", "o", "--max_frames", "32"]).max_frames == 32


def _copy_ffpp(source: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(source, tmp_path / "src", copy_function=shutil.copy))


@pytest.mark.parametrize(
    "breaker,message",
    [
        (lambda root: (root / "splits" / "val.json").unlink(), "split files missing from"),
        (lambda root: (root / "splits" / "test.json").write_text("[]"), "pair 004_005 is in no split file"),
        (lambda root: (root / "original_sequences/youtube/c23/videos/002.mp4").write_bytes(b"\x00" * 64),
         "original_sequences/youtube/c23/videos/002.mp4: not a readable video"),
    ],
)  # fmt: skip
def test_faceforensics_bad_input_is_named_and_nothing_is_written(faceforensics_source, tmp_path, run_build, breaker,
                                                                 message):  # fmt: skip
    source = _copy_ffpp(faceforensics_source, tmp_path)
    breaker(source)
    code, log = run_build(source, tmp_path / "repo")
    assert code == 2 and message in log
    assert not (tmp_path / "repo").exists()


def test_celeb_df_label_disagreeing_with_its_folder_and_a_missing_list_are_named(tmp_path, run_build):
    videos = {"Celeb-real/id0_0000": ["id0"], "Celeb-synthesis/id0_id1_0000": ["id1"]}
    source = make_celeb_df(tmp_path / "src", videos, "0 Celeb-real/id0_0000.mp4\n1 Celeb-real/id9_0000.mp4\n")
    code, log = run_build(source, tmp_path / "repo")
    assert code == 2
    assert "Celeb-real/id0_0000.mp4: List_of_testing_videos.txt labels it fake (its flag 0)" in log
    assert "Celeb-real/id9_0000.mp4: listed in List_of_testing_videos.txt but not found" in log
    (source / "List_of_testing_videos.txt").unlink()
    code, log = run_build(source, tmp_path / "repo", "--layout", "celeb_df")
    assert code == 2 and "List_of_testing_videos.txt not found" in log
    assert not (tmp_path / "repo").exists()


def test_no_face_and_several_faces_are_named_and_skip_bad_files_builds_the_rest(tmp_path, run_build):
    videos = {"Celeb-real/id0_0000": ["id0"], "Celeb-real/id1_0000": [], "Celeb-real/id2_0000": ["id2", "id3"],
              "Celeb-synthesis/id0_id1_0000": ["id1"]}  # fmt: skip
    source = make_celeb_df(tmp_path / "src", videos, "0 Celeb-synthesis/id0_id1_0000.mp4\n")
    code, log = run_build(source, tmp_path / "repo")
    assert code == 2
    assert "Celeb-real/id1_0000.mp4: no face found in any of its 4 frames" in log
    assert "Celeb-real/id2_0000.mp4: 2 faces of similar size and no clear main one" in log
    assert not (tmp_path / "repo").exists()
    code, _ = run_build(source, tmp_path / "repo", "--skip_bad_files")
    assert code == 0
    dataset = load_dataset(str(tmp_path / "repo"), "raw")
    assert sorted(v for split in dataset.values() for v in split["video_id"]) == [
        "Celeb-real/id0_0000", "Celeb-synthesis/id0_id1_0000"]  # fmt: skip


def test_deepfake_mnist_plus_rows_say_fomm_unless_the_manifest_names_another_method(release_copy, tmp_path):
    source = release_copy()
    rows = release_rows(per_folder=3)
    rows[-1].method = "TPSMM"  # a generated set may name its animator; an empty method is the release's FOMM
    write_manifest(source, rows)
    out = build(BuildConfig(source=source, output_dir=tmp_path / "repo", qualities=("raw",), progress=False))
    dataset = load_dataset(str(out), "raw")
    methods = {row["video_id"]: row["method"] for split in dataset.values() for row in split}
    named = f"{rows[-1].action}/{Path(rows[-1].file).stem}"
    assert methods.pop(named) == "TPSMM"
    assert {video_id: method for video_id, method in methods.items() if method != "FOMM"} == {
        video_id: None for video_id in methods if video_id.startswith("real/")
    }
    assert set(dataset) == {"train", "validation", "test", "identity_train", "identity_validation", "identity_test"}

"""The build end to end on a tiny release folder: 33 configs load, bad inputs are refused, nothing half-written."""

import csv
import shutil
import subprocess
import sys

import pytest
from datasets import ClassLabel, get_dataset_config_names, load_dataset

from dataset_script.build import BuildConfig, BuildError, build
from dataset_script.schema import ACTIONS, QUALITIES
from tests.conftest import make_clip, make_release

PER_FOLDER = 7  # 5 train, 1 validation, 1 test per folder


def test_all_33_configs_load_with_expected_split_sizes(built_repo, monkeypatch):
    monkeypatch.chdir(built_repo.parent)
    names = get_dataset_config_names("deepfake_mnist_plus")
    assert sorted(names) == sorted([*QUALITIES, *(f"{q}-{a}" for q in QUALITIES for a in ACTIONS)])
    for name in names:
        dataset = load_dataset("deepfake_mnist_plus", name)
        whole = name in QUALITIES
        folders = 11 if whole else 2
        assert {split: len(rows) for split, rows in dataset.items()} == {
            "train": 5 * folders,
            "validation": folders,
            "test": folders,
        }, name
        train = dataset["train"]
        assert isinstance(train.features["label"], ClassLabel) and train.features["label"].names == ["real", "fake"]
        assert set(train["quality"]) == {name.split("-")[0]}
        if not whole:  # one action's fakes plus as many real clips
            action = name.split("-", 1)[1]
            assert sorted(train["label"]) == [0] * 5 + [1] * 5
            assert set(train["action"]) == {action, None}


def test_video_column_decodes_at_each_quality(built_repo):
    for quality in QUALITIES:
        row = load_dataset(str(built_repo), quality, split="test")[0]
        frames = row["video"].get_frames_at([0, 15]).data
        assert tuple(frames.shape) == (2, 3, 64, 64)
        assert row["num_frames"] == 16


def test_compression_degrades_in_order(built_repo):
    sizes = {q: sum(p.stat().st_size for p in (built_repo / q).glob("*/*.mp4")) for q in QUALITIES}
    assert sizes["c40"] < sizes["c23"]


def test_split_membership_is_written_as_data(built_repo):
    with (built_repo / "splits.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 11 * PER_FOLDER
    yaw = sorted((row for row in rows if row["action"] == "yaw"), key=lambda row: row["source_file"])
    assert [row["split"] for row in yaw] == ["train"] * 5 + ["validation", "test"]
    assert {row["source_file"].split("/")[0] for row in rows if row["action"] == "surprise"} == {"surpise"}
    card = (built_repo / "README.md").read_text()
    assert "configs:" in card and "c40-yaw" in card and "@inproceedings" in card


def test_rerun_reuses_compressions(tmp_path):
    source = make_release(tmp_path / "src", per_folder=3, frames=8, size=32)
    out = tmp_path / "repo"
    build(BuildConfig(source=source, out=out, progress=False))
    encoded = {p: p.stat().st_mtime_ns for p in (out / "c23").glob("*/*.mp4")}
    build(BuildConfig(source=source, out=out, progress=False))
    assert {p: p.stat().st_mtime_ns for p in (out / "c23").glob("*/*.mp4")} == encoded
    assert not list(tmp_path.glob(".repo*"))  # no staging or retired folder left behind


def _break_missing(root):
    shutil.rmtree(root / "yaw")


def _break_empty(root):
    for path in (root / "nod").iterdir():
        path.unlink()


def _break_corrupt(root):
    (root / "smile" / "0001.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 3000)


def _break_truncated(root):
    path = root / "blink" / "0002.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(path), "-c", "copy", "-movflags", "+faststart",
                    str(path.with_name("fs.mp4"))], check=True)  # fmt: skip
    data = path.with_name("fs.mp4").read_bytes()
    path.with_name("fs.mp4").unlink()
    path.write_bytes(data[: len(data) // 2])


def _break_zero(root):
    (root / "up" / "0003.mp4").write_bytes(b"")


def _break_non_video(root):
    (root / "mouth" / "notes.txt").write_text("hello")


def _break_unknown(root):
    make_clip(root / "holiday" / "0000.mp4", frames=8, size=32)


@pytest.mark.parametrize(
    "breaker,message",
    [
        (_break_missing, "missing action folders:\n  - yaw"),
        (_break_empty, "empty folders:\n  - nod"),
        (_break_corrupt, "smile/0001.mp4: not a readable video"),
        (_break_truncated, "blink/0002.mp4: truncated or corrupt"),
        (_break_zero, "up/0003.mp4: zero-byte file"),
        (_break_non_video, "mouth/notes.txt: not a video file"),
        (_break_unknown, "unknown folders (not an action of the release, nor the real folder):\n  - holiday"),
    ],
)
def test_bad_input_is_reported_and_nothing_is_written(tmp_path, breaker, message):
    source = make_release(tmp_path / "src", per_folder=3, frames=8, size=32)
    breaker(source)
    out = tmp_path / "repo"
    result = subprocess.run(
        [sys.executable, "-m", "dataset_script.build", str(source), "--out", str(out), "--no-progress"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "summary:" in result.stderr and "--skip-bad-files" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # not even a staging folder


def test_skip_bad_files_builds_the_rest(tmp_path):
    source = make_release(tmp_path / "src", per_folder=3, frames=8, size=32)
    _break_zero(source)
    _break_unknown(source)
    out = build(BuildConfig(source=source, out=tmp_path / "repo", skip_bad_files=True, progress=False))
    look_up = load_dataset(str(out), "raw-look_up")
    assert sum(len(rows) for rows in look_up.values()) == 6  # the 3 good fakes, and as many reals
    info = (out / "build_info.json").read_text()
    assert "up/0003.mp4: zero-byte file" in info and "holiday" in info
    assert not (out / "raw" / "holiday").exists()


def test_real_folder_by_flag_and_manifest_gives_identity_split(tmp_path):
    source = make_release(tmp_path / "src", per_folder=7, frames=8, size=32, real_folder="vox", with_manifest=True)
    with pytest.raises(BuildError, match="real clips"):
        build(BuildConfig(source=source, out=tmp_path / "nope", progress=False, qualities=("raw",)))
    out = build(
        BuildConfig(source=source, out=tmp_path / "repo", real_folder="vox", qualities=("raw",), progress=False)
    )
    dataset = load_dataset(str(out), "raw")
    assert {"identity_train", "identity_validation", "identity_test"} <= set(dataset)
    train_ids = set(dataset["identity_train"]["source_id"])
    assert train_ids and not train_ids & set(dataset["identity_test"]["source_id"])
    assert dataset["train"][0]["source_id"].startswith("id")


def test_a_rebuild_with_other_content_is_not_served_from_a_stale_cache(tmp_path):
    """`datasets` keys its cache on the card's YAML; the card records sizes, so new content means a new key."""
    first = make_release(tmp_path / "first", per_folder=3, frames=8, size=32)
    second = make_release(tmp_path / "second", per_folder=3, frames=12, size=32)
    for source, parent in ((first, "a"), (second, "b")):
        out = build(BuildConfig(source=source, out=tmp_path / parent / "deepfake_mnist_plus", qualities=("raw",),
                                progress=False))  # fmt: skip
        frames = set(load_dataset(str(out), "raw", split="train")["num_frames"])
        assert frames == {8 if parent == "a" else 12}

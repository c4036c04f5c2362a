"""The build end to end on a tiny release folder: 33 configs load, bad inputs are refused, nothing half-written,
and a built repo loads wherever it is moved."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from datasets import ClassLabel, Video, get_dataset_config_names, load_dataset

import dataset_script.shards as shards
from dataset_script.build import BuildConfig, BuildError, build, main, parse_args
from dataset_script.files import atomic_path, recover_interrupted_replace, replace_folder, retired_folder
from dataset_script.release import write_manifest
from dataset_script.schema import ACTIONS, QUALITIES
from dataset_script.shards import export_clips, read_clips
from dataset_script.splits import stable_hash
from tests.factories import copy_release, damage_inside, make_clip, make_release, release_rows

PER_FOLDER = 7  # 5 train, 1 validation, 1 test per folder


@pytest.mark.slow
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
    sizes = {
        q: sum(
            len(video["bytes"])
            for path in (built_repo / "data" / q).glob("*.parquet")
            for video in pq.read_table(path, columns=["video"]).column("video").to_pylist()
        )
        for q in QUALITIES
    }
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


@pytest.mark.parametrize("keep_clips", [False, True])
def test_rerun_reuses_compressions(tmp_path, release_copy, keep_clips):
    """From the clip files the build kept (--keep_clips), else from its shards, their only copy by default."""
    source = release_copy()
    out = tmp_path / "repo"
    build(BuildConfig(source=source, output_dir=out, progress=False, keep_clips=keep_clips))
    first = json.loads((out / "build_info.json").read_text())
    video_ids = [row["video_id"] for row in csv.DictReader((out / "splits.csv").open())]
    names = [f"{quality}/{video_id}.mp4" for quality in ("c23", "c40") for video_id in video_ids]
    encoded = read_clips(out, names)
    assert first["encoded"] == len(names) == len(encoded) and first["reused"] == 0
    assert (out / "c23").is_dir() == keep_clips and (first["disk_bytes"]["video_files"] > 0) == keep_clips
    build(BuildConfig(source=source, output_dir=out, progress=False, keep_clips=keep_clips))
    second = json.loads((out / "build_info.json").read_text())
    assert second["encoded"] == 0 and second["reused"] == len(names)
    assert read_clips(out, names) == encoded
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
def test_bad_input_is_reported_and_nothing_is_written(tmp_path, release_copy, caplog, breaker, message):
    source = release_copy()
    breaker(source)
    # the command's own main, in-process: what it logs at ERROR is what the terminal shows on stderr
    assert main([str(source), "--output_dir", str(tmp_path / "repo"), "--no_progress"]) == 2
    errors = "\n".join(record.getMessage() for record in caplog.records if record.levelname == "ERROR")
    assert message in errors
    assert "summary:" in errors and "--skip_bad_files" in errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # not even a staging folder


def test_a_clip_damaged_inside_is_named_when_its_encode_fails_and_can_be_skipped(tmp_path, release_copy, caplog):
    """The probe counts packets without decoding; a clip whose packets are all there but whose stream is damaged is
    caught by the one decode that makes c23 and c40, and reported like any bad file."""
    source = release_copy()
    damage_inside(source / "smile" / "0001.mp4")
    assert main([str(source), "--output_dir", str(tmp_path / "repo"), "--no_progress"]) == 2
    errors = "\n".join(record.getMessage() for record in caplog.records if record.levelname == "ERROR")
    assert "smile/0001.mp4: truncated or corrupt" in errors and "--skip_bad_files" in errors
    assert not (tmp_path / "repo").exists()
    out = build(BuildConfig(source=source, output_dir=tmp_path / "repo", skip_bad_files=True, progress=False))
    assert "smile/0001.mp4: truncated or corrupt" in (out / "build_info.json").read_text()
    names = [f"{q}/smile/{clip.name}" for q in QUALITIES for clip in (source / "smile").iterdir()]
    assert sorted(read_clips(out, names)) == sorted(name for name in names if not name.endswith("/0001.mp4"))


def test_a_rerun_after_a_failed_build_does_not_reuse_clips_whose_source_changed_since(tmp_path, release_copy):
    """A failed build keeps its staging folder for the rerun; a clip rewritten in between (in place: the staged raw
    is a hard link to it) is encoded again, not served from what the failed build made of its old content."""
    source = release_copy()
    damage_inside(source / "smile" / "0001.mp4")
    with pytest.raises(BuildError, match="smile/0001.mp4: truncated or corrupt"):
        build(BuildConfig(source=source, output_dir=tmp_path / "repo", progress=False))
    changed = source / "blink" / "0002.mp4"
    make_clip(changed, frames=8, size=32, seed=99)  # other content, same name
    shutil.copyfile(source / "smile" / "0000.mp4", source / "smile" / "0001.mp4")  # the damage fixed
    out = build(BuildConfig(source=source, output_dir=tmp_path / "repo", progress=False))
    assert read_clips(out, ["raw/blink/0002.mp4"]) == {"raw/blink/0002.mp4": changed.read_bytes()}
    assert not (out / "staged_from.json").exists()  # the staging's own record stays out of the repo
    fresh = tmp_path / "fresh"
    build(BuildConfig(source=source, output_dir=fresh, progress=False))
    names = [f"{quality}/blink/0002.mp4" for quality in QUALITIES]
    assert read_clips(out, names) == read_clips(fresh, names) and len(read_clips(out, names)) == 3


def test_the_command_exits_2_and_says_why_on_stderr(tmp_path, release_copy):
    """One run of the real command line (the cases above call its ``main``): the exit status and stderr a shell sees."""
    source = release_copy()
    _break_empty(source)
    result = subprocess.run(
        [sys.executable, "-m", "dataset_script.build", str(source), "--output_dir", str(tmp_path / "repo"),
         "--no_progress"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "empty folders:\n  - nod" in result.stderr and "--skip_bad_files" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_flags_are_spelled_as_hf_does_and_the_dashed_spellings_still_work():
    common = ["src", "--output_dir", "repo", "--push_to_hub", "lab/x"]
    flags = ["--real_folder", "originals", "--skip_bad_files", "--allow_missing_actions", "--no_progress"]
    underscored = parse_args([*common, *flags])
    assert parse_args([*common, *(flag.replace("_", "-") for flag in flags)]) == underscored
    assert underscored.real_folder == "originals" and underscored.skip_bad_files and not underscored.progress
    assert underscored.allow_missing_actions and underscored.push_to_hub == "lab/x"


def test_skip_bad_files_builds_the_rest(tmp_path, release_copy):
    source = release_copy()
    _break_zero(source)
    _break_unknown(source)
    out = build(BuildConfig(source=source, output_dir=tmp_path / "repo", qualities=("raw",), skip_bad_files=True,
                            progress=False))  # fmt: skip
    look_up = load_dataset(str(out), "raw-look_up")
    assert sum(len(rows) for rows in look_up.values()) == 6  # the 3 good fakes, and as many reals
    info = (out / "build_info.json").read_text()
    assert "up/0003.mp4: zero-byte file" in info and "holiday" in info
    assert not any("holiday" in row["source_file"] for row in csv.DictReader((out / "splits.csv").open()))


def test_real_folder_by_flag_and_manifest_gives_identity_split(tmp_path, small_release):
    source = copy_release(small_release, tmp_path / "src", real_folder="vox")
    write_manifest(source, release_rows(PER_FOLDER, real_folder="vox"))
    with pytest.raises(BuildError, match="real clips"):
        build(BuildConfig(source=source, output_dir=tmp_path / "nope", progress=False, qualities=("raw",)))
    out = build(
        BuildConfig(source=source, output_dir=tmp_path / "repo", real_folder="vox", qualities=("raw",), progress=False)
    )
    dataset = load_dataset(str(out), "raw")
    assert {"identity_train", "identity_validation", "identity_test"} <= set(dataset)
    train_ids = set(dataset["identity_train"]["source_id"])
    assert train_ids and not train_ids & set(dataset["identity_test"]["source_id"])
    assert dataset["train"][0]["source_id"].startswith("id")


def test_a_rebuild_with_other_content_is_not_served_from_a_stale_cache(tmp_path, release_copy):
    """`datasets` keys its cache on the card's YAML; the card records sizes, so new content means a new key."""
    first = release_copy("first")
    second = make_release(tmp_path / "second", per_folder=3, frames=12, size=32)
    for source, parent in ((first, "a"), (second, "b")):
        out = build(BuildConfig(source=source, output_dir=tmp_path / parent / "deepfake_mnist_plus", qualities=("raw",),
                                progress=False))  # fmt: skip
        frames = set(load_dataset(str(out), "raw", split="train")["num_frames"])
        assert frames == {8 if parent == "a" else 12}


def _card_header(repo: Path) -> dict:
    return yaml.safe_load((repo / "README.md").read_text().split("---\n", 2)[1])


def test_the_card_points_at_parquet_rows_only_and_the_shards_are_the_only_copy(built_repo, tmp_path):
    for config in _card_header(built_repo)["configs"]:
        for entry in config["data_files"]:
            paths = entry["path"]
            assert paths and all(path.startswith("data/") and path.endswith(".parquet") for path in paths)
    with (built_repo / "splits.csv").open() as handle:
        video_ids = [row["video_id"] for row in csv.DictReader(handle)]
    assert not any((built_repo / quality).exists() for quality in QUALITIES)  # no clip files without --keep_clips
    names = [f"{quality}/{video_id}.mp4" for quality in QUALITIES for video_id in video_ids]
    exported = export_clips(built_repo, names[:3] + ["raw/no/such.mp4"], tmp_path / "clips")
    assert list(exported) == names[:3]  # for the Space's examples: files written out of the shards, in order
    assert all(path.read_bytes() == read_clips(built_repo, [name])[name] for name, path in exported.items())


def test_a_moved_repo_loads_and_decodes_from_its_new_place(tmp_path, release_copy):
    """Rows carry the videos: `datasets` keys its cache on the card, not on the place, so paths there would go stale."""
    source = release_copy()
    first = build(BuildConfig(source=source, output_dir=tmp_path / "a" / "deepfake_mnist_plus", qualities=("raw",),
                              progress=False))  # fmt: skip
    before = load_dataset(str(first), "raw", split="test")
    assert tuple(before[0]["video"].get_frames_at([0]).data.shape) == (1, 3, 32, 32)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    moved = tmp_path / "b" / "deepfake_mnist_plus"
    after = load_dataset(str(moved), "raw", split="test")
    assert after["video_id"] == before["video_id"]
    frames = after[len(after) - 1]["video"].get_frames_at([0, 7]).data
    assert tuple(frames.shape) == (2, 3, 32, 32)
    for row in after.cast_column("video", Video(decode=False)):
        assert row["video"]["bytes"] and not os.path.isabs(row["video"]["path"])
        assert row["video"]["path"] == f"raw/{row['video_id']}.mp4"


def _rows(paths) -> list[shards.ShardRow]:
    columns = {"label": 0, "action": None, "quality": "raw", "source_id": None, "driving_id": None, "num_frames": 8}
    return [shards.ShardRow(path, f"raw/{path.name}", {**columns, "video_id": path.stem}) for path in paths]


def test_shards_hold_at_most_their_size_in_bounded_row_groups(clip_factory, tmp_path, monkeypatch):
    clips = [clip_factory(frames=8, size=32, seed=seed) for seed in range(5)]
    largest = max(path.stat().st_size for path in clips)
    monkeypatch.setattr(shards, "ROW_GROUP_BYTES", 1)  # one clip per row group
    written = shards.write_split_shards(_rows(clips), tmp_path / "repo", "raw", "train", shard_bytes=2 * largest)
    assert [path.name for path in written] == [f"train-{n:05d}-of-00003.parquet" for n in range(3)]
    assert not list((tmp_path / "repo").rglob(".*"))  # no partial shard left
    tables = [pq.read_table(path) for path in written]
    assert [len(table) for table in tables] == [2, 2, 1]
    assert [pq.ParquetFile(path).num_row_groups for path in written] == [2, 2, 1]
    videos = [video for table in tables for video in table.column("video").to_pylist()]
    assert [video["bytes"] for video in videos] == [path.read_bytes() for path in clips]
    assert shards.shard_pattern("raw", "train") == "data/raw/train-*.parquet"


def _folder(path: Path, content: str) -> Path:
    path.mkdir(parents=True)
    (path / "build_info.json").write_text(content)
    return path


class Crash(Exception):
    """Stands for the process dying at that point."""


@pytest.mark.parametrize("as_folder", [False, True])
def test_atomic_path_puts_a_whole_file_or_folder_in_place_or_nothing(tmp_path, as_folder):
    target = tmp_path / "out" / "clip.mp4"

    def write(partial: Path, text: str) -> None:
        assert partial.parent == target.parent and partial.name.startswith(".") and partial.suffix == ".mp4"
        if as_folder:
            partial.mkdir()
            (partial / "part").write_text(text)
        else:
            partial.write_text(text)

    def read() -> str:
        return (target / "part").read_text() if as_folder else target.read_text()

    with atomic_path(target) as partial:
        write(partial, "first")
    with pytest.raises(Crash), atomic_path(target) as partial:
        write(partial, "half")
        raise Crash
    assert read() == "first" and sorted(p.name for p in target.parent.iterdir()) == ["clip.mp4"]
    with atomic_path(target) as partial:  # a folder replaces the one before it
        write(partial, "second")
    assert read() == "second" and sorted(p.name for p in target.parent.iterdir()) == ["clip.mp4"]
    with pytest.raises(Crash), atomic_path(target, keep_on_failure=True) as partial:
        write(partial, "kept")
        raise Crash
    assert read() == "second" and partial.exists()  # left for a rerun to reuse


@pytest.mark.parametrize("crash_at,survivor", [("set_aside", "old"), ("move_in", "old"), ("delete_old", "new")])
def test_a_replacement_cut_short_anywhere_leaves_one_whole_folder(tmp_path, monkeypatch, crash_at, survivor):
    out, new = _folder(tmp_path / "repo", "old"), _folder(tmp_path / ".repo.partial", "new")
    retired = retired_folder(out)
    real_replace, real_rmtree = os.replace, shutil.rmtree

    def replace(source, target):
        if (crash_at, Path(source)) in (("set_aside", out), ("move_in", new)):
            raise Crash
        return real_replace(source, target)

    def rmtree(path, *args, **kwargs):
        if crash_at == "delete_old" and Path(path) == retired:
            raise Crash
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    with pytest.raises(Crash):
        replace_folder(new, out)
    monkeypatch.undo()
    recover_interrupted_replace(out)  # what the next build does first
    assert (out / "build_info.json").read_text() == survivor
    assert not retired.exists()
    replace_folder(_folder(tmp_path / ".next", "next"), out)
    assert (out / "build_info.json").read_text() == "next" and not retired.exists()


def test_a_build_after_a_crash_mid_swap_recovers_the_previous_build_first(tmp_path, monkeypatch, release_copy):
    source = release_copy()
    out = tmp_path / "repo"
    build(BuildConfig(source=source, output_dir=out, qualities=("raw",), progress=False))
    first_info = json.loads((out / "build_info.json").read_text())
    real_replace = os.replace

    def replace(source, target):
        if Path(target) == out:
            raise Crash
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Crash):
        build(BuildConfig(source=source, output_dir=out, qualities=("raw",), progress=False))
    monkeypatch.undo()
    assert not out.exists() and retired_folder(out).exists()  # the moment the old code never came back from
    with pytest.raises(BuildError, match="unknown qualities"):  # even a build that stops early puts it back
        build(BuildConfig(source=source, output_dir=out, qualities=("c99",), progress=False))
    assert json.loads((out / "build_info.json").read_text()) == first_info
    assert len(load_dataset(str(out), "raw", split="test")) == 11
    build(BuildConfig(source=source, output_dir=out, qualities=("raw",), progress=False))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["repo", "src"]


def test_the_face_crop_a_release_records_is_kept_and_a_bad_record_refused(release_copy, tmp_path, run_build):
    from dataset_script.faces import FaceCropRecord

    source = release_copy()
    code, logged = run_build(source, tmp_path / "unrecorded")
    info = json.loads((tmp_path / "unrecorded" / "build_info.json").read_text())
    assert code == 0 and info["face_crop"] is None and "none could be measured" in logged  # noise: no face
    assert "Face crop: not recorded" in (tmp_path / "unrecorded" / "README.md").read_text()
    record = FaceCropRecord(margin=1.0, origin="the release's generator")
    (source / "face_crop.json").write_text(json.dumps(record.as_dict()))
    assert run_build(source, tmp_path / "recorded")[0] == 0
    assert json.loads((tmp_path / "recorded" / "build_info.json").read_text())["face_crop"] == record.as_dict()
    assert "grown 2x into a square" in (tmp_path / "recorded" / "README.md").read_text()
    (source / "face_crop.json").write_text(json.dumps({**record.as_dict(), "margin": "wide"}))
    code, logged = run_build(source, tmp_path / "refused")
    assert (
        code == 2 and "face_crop.json" in logged and "margin 'wide'" in logged and not (tmp_path / "refused").exists()
    )


def _expected_rows(rows: list[dict], quality: str, action: str | None, split_name: str) -> list[tuple]:
    """The rows a configuration's split holds, by the paper's rule (Fig. 5), from splits.csv alone: a quality's
    configuration holds every clip of the split; an action's, its fakes and as many of the split's reals, drawn by a
    hash of the action and the video id."""
    column, split = ("identity_split", split_name.removeprefix("identity_")) if split_name.startswith("identity_") \
        else ("split", split_name)  # fmt: skip
    members = [row for row in rows if row[column] == split]
    if action is not None:
        fakes = [row for row in members if row["label"] == "fake" and row["action"] == action]
        reals = sorted((row for row in members if row["label"] == "real"),
                       key=lambda row: stable_hash(action + row["video_id"]))  # fmt: skip
        members = fakes + reals[: len(fakes)]
    return sorted((row["video_id"], row["label"], row["action"] or None, quality) for row in members)


def test_every_configuration_holds_its_rows_and_each_clip_is_stored_once_per_quality(built_repo):
    with (built_repo / "splits.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    label_names = ("real", "fake")
    for config in _card_header(built_repo)["configs"]:
        name = config["config_name"]
        quality, _, action = name.partition("-")
        for entry in config["data_files"]:
            tables = [pq.read_table(path, columns=["video_id", "label", "action", "quality"])
                      for pattern in entry["path"] for path in sorted(built_repo.glob(pattern))]  # fmt: skip
            held = sorted(
                (video_id, label_names[label], action_, quality_)
                for table in tables
                for video_id, label, action_, quality_ in zip(*table.to_pydict().values(), strict=True)
            )
            assert held == _expected_rows(rows, quality, action or None, entry["split"]), (name, entry["split"])
            if not action:  # a quality's whole configuration names each cell of splits by one pattern
                assert not any("-real-" in pattern or "-fake-" in pattern for pattern in entry["path"]), name
    for quality in QUALITIES:
        stored = [
            video_id
            for path in (built_repo / "data" / quality).glob("*.parquet")
            for video_id in pq.read_table(path, columns=["video_id"]).column("video_id").to_pylist()
        ]
        assert sorted(stored) == sorted(row["video_id"] for row in rows), quality  # every clip, and once
    assert {path.parent.name for path in (built_repo / "data").glob("*/*.parquet")} == set(QUALITIES)
    # and `datasets` reads the same rows through the card
    for name in ("raw", "raw-blink", "c40-yaw"):
        quality, _, action = name.partition("-")
        for split in ("train", "test"):
            loaded = load_dataset(str(built_repo), name, split=split).cast_column("video", Video(decode=False))
            held = sorted((row["video_id"], label_names[row["label"]], row["action"], row["quality"]) for row in loaded)
            assert held == _expected_rows(rows, quality, action or None, split), (name, split)

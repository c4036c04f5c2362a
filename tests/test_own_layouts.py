"""A collection of one's own and DFDC through the build: folders, a CSV list and DFDC's parts give labels, methods
and splits exactly as given (or dealt by identity, keeping a DFDC fake with its original), ``--test_only`` puts
everything into test, face crops are kept as they are while whole frames are cropped, and every bad input is
named (exit 2) with nothing written."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest
from datasets import get_dataset_config_names, get_dataset_split_names, load_dataset

from dataset_script.build import main, parse_args
from dataset_script.faces import FACE_CROP
from dataset_script.layouts import recognise_layout
from dataset_script.shards import read_clips
from generation.mini.__main__ import main as mini_main
from generation.mini.replicas import dfdc, folders
from tests.factories import make_clips

NO_CROPS = ("--face_crops", "no")  # the labels and splits do not need faces: the clips are placed as they are


@pytest.fixture(scope="module")
def folders_replica(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("own") / "collection"
    assert mini_main(["--layout", "folders", "--size", "smoke", "--output_dir", str(out), "--workers", "2",
                      "--no_progress"]) == 0  # fmt: skip
    return out


@pytest.fixture(scope="module")
def dfdc_replica(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("own") / "DFDC"
    assert (
        mini_main(["--layout", "dfdc", "--size", "smoke", "--output_dir", str(out), "--workers", "2", "--no_progress"])
        == 0
    )
    return out


def collection(root: Path, files: list[str], frames: int = 4) -> Path:
    """Tiny square clips (noise, no face) at ``files``, paths relative to ``root``, one ffmpeg for all; a ``.txt``
    is a note."""
    make_clips({root / name: seed for seed, name in enumerate(files) if not name.endswith(".txt")}, frames, size=32)
    for note in (name for name in files if name.endswith(".txt")):
        (root / note).write_text("not a video")
    return root


def rows_of(repo: Path, config: str = "raw") -> dict[str, dict]:
    """Every row of a configuration by video id, with its split."""
    return {row["video_id"]: {**row, "split": split} for split, rows in load_dataset(str(repo), config).items()
            for row in rows.remove_columns("video")}  # fmt: skip


def splits_csv(repo: Path) -> dict[str, dict]:
    with (repo / "splits.csv").open() as handle:
        return {row["video_id"]: row for row in csv.DictReader(handle)}


def test_the_replicas_have_their_layouts(folders_replica, dfdc_replica):
    assert sorted(p.relative_to(folders_replica).as_posix() for p in folders_replica.rglob("*.mp4")) == sorted(
        [f"real/id{i}/0000.mp4" for i in range(6)]
        + [f"fake/{m}/id{i}_id{(i + 1) % 6}_0000.mp4" for m in folders.METHODS for i in range(6)])  # fmt: skip
    for part in ("dfdc_train_part_0", "dfdc_train_part_1"):
        entries = json.loads((dfdc_replica / part / "metadata.json").read_text())
        assert {name for name in entries} == {path.name for path in (dfdc_replica / part).glob("*.mp4")}
        fakes = {name: entry for name, entry in entries.items() if entry["label"] == "FAKE"}
        assert len(fakes) == len(entries) / 2 and all(entry["split"] == "train" for entry in entries.values())
        assert all(entries[entry["original"]]["label"] == "REAL" for entry in fakes.values())
    assert dfdc.video_name(0, "x") == dfdc.video_name(0, "x") != dfdc.video_name(1, "x")


def test_folders_give_labels_methods_and_an_identity_split(folders_replica, tmp_path, run_build):
    code, _ = run_build(folders_replica, tmp_path / "repo", "--identity_pattern", r"id\d+", *NO_CROPS)
    assert code == 0
    repo = tmp_path / "repo"
    assert sorted(get_dataset_config_names(str(repo))) == ["raw", "raw-Face2Face", "raw-FaceSwap"]
    rows = rows_of(repo)
    assert len(rows) == 18
    for video_id, row in rows.items():
        label = 1 if video_id.startswith("fake/") else 0
        assert row["label"] == label and row["method"] == (video_id.split("/")[1] if label else None)
        # the pattern's match in the path: the real video's person, the fake's target (first in its name)
        assert row["source_id"] == (video_id.split("/")[2].split("_")[0] if label else video_id.split("/")[1])
    sides = {}
    for row in rows.values():
        sides.setdefault(row["source_id"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in sides.values()) and {s for v in sides.values() for s in v} == {
        "train", "validation", "test"}  # fmt: skip
    # kept as they are: the repo's files are the collection's own
    kept = read_clips(repo, ["raw/real/id0/0000.mp4"])["raw/real/id0/0000.mp4"]
    assert kept == (folders_replica / "real" / "id0" / "0000.mp4").read_bytes()
    assert splits_csv(repo)["real/id0/0000"]["face_box"] == ""
    command = (repo / "README.md").read_text().split("## How it was built", 1)[1]
    assert "--face_crops no --identity_pattern 'id\\d+'" in command


def test_split_folders_are_honoured_and_test_only_puts_everything_into_test(tmp_path, run_build):
    files = {"train/real/a.mp4": "train", "train/real/more/b.mp4": "train", "train/fake/Mine/c.mp4": "train",
             "validation/real/d.mp4": "validation", "val/fake/Mine/e.mp4": "validation",
             "test/real/f.mp4": "test", "test/fake/g.mp4": "test"}  # fmt: skip
    source = collection(tmp_path / "src", list(files))
    assert recognise_layout(source).name == "folders"
    assert run_build(source, tmp_path / "repo", *NO_CROPS)[0] == 0
    rows = rows_of(tmp_path / "repo")
    assert {video_id: row["split"] for video_id, row in rows.items()} == {
        name.rsplit(".", 1)[0]: split for name, split in files.items()
    }
    assert rows["test/fake/g"]["method"] is None and rows["val/fake/Mine/e"]["method"] == "Mine"
    assert rows["train/real/more/b"]["label"] == 0 and rows["train/fake/Mine/c"]["label"] == 1
    assert run_build(source, tmp_path / "scored", *NO_CROPS, "--test_only")[0] == 0
    assert get_dataset_split_names(str(tmp_path / "scored"), "raw") == ["test"]
    assert len(load_dataset(str(tmp_path / "scored"), "raw", split="test")) == len(files)


def test_without_identities_the_split_is_by_file_within_each_class_and_method_and_seeded(tmp_path, run_build):
    files = [f"real/r{i}.mp4" for i in range(7)] + [f"fake/{m}/{m}{i}.mp4" for m in ("A", "B") for i in range(7)]
    source = collection(tmp_path / "src", files)
    splits = {}
    for seed in ("0", "0", "5"):
        out = tmp_path / f"repo{len(splits)}"
        assert run_build(source, out, *NO_CROPS, "--split_seed", seed)[0] == 0
        rows = rows_of(out)
        for folder in ("real/", "fake/A/", "fake/B/"):  # 7 of each: 5/1/1 within the class and method
            counts = [sum(1 for v, r in rows.items() if v.startswith(folder) and r["split"] == s)
                      for s in ("train", "validation", "test")]  # fmt: skip
            assert counts == [5, 1, 1], (folder, counts)
        splits[len(splits)] = {video_id: row["split"] for video_id, row in rows.items()}
    assert splits[0] == splits[1] != splits[2]


def test_a_csv_list_gives_labels_splits_identities_and_methods(tmp_path, caplog):
    source = collection(tmp_path / "src", ["clips/a.mp4", "clips/b.mp4", "other/c.avi", "d.mp4"])
    (tmp_path / "list.csv").write_text("path,label,split,identity,method,action\n"
                                       "clips/a.mp4,real,train,p1,,\n"
                                       "./clips/b.mp4,1,test,p1,LivePortrait,yaw\n"
                                       "other/c.avi,FAKE,val,p2,,\n"
                                       "d.mp4,0,test,p3,,\n")  # fmt: skip
    with caplog.at_level(logging.INFO):  # the build's own main: run_build keeps warnings only
        code = main([str(source), "--output_dir", str(tmp_path / "repo"), "--list", str(tmp_path / "list.csv"),
                     *NO_CROPS, "--workers", "1", "--no_progress"])  # fmt: skip
    assert code == 0 and "2 real and 2 fake clips, labels read as 0 = real and 1 = fake" in caplog.text
    rows = rows_of(tmp_path / "repo")
    got = {video_id: (row["label"], row["split"], row["source_id"], row["method"], row["action"])
           for video_id, row in rows.items()}  # fmt: skip
    assert got == {"clips/a": (0, "train", "p1", None, None), "clips/b": (1, "test", "p1", "LivePortrait", "yaw"),
                   "other/c": (1, "validation", "p2", None, None), "real/d": (0, "test", "p3", None, None)}  # fmt: skip
    assert read_clips(tmp_path / "repo", ["raw/other/c.avi"])  # kept as it is, in its own container


def test_a_csv_list_with_identities_deals_them_to_one_side_each(tmp_path, run_build):
    files = [f"v{i}.mp4" for i in range(14)]
    source = collection(tmp_path / "src", files)
    lines = [f"{name},{'real' if i % 2 else 'fake'},person{i // 2}" for i, name in enumerate(files)]
    (source / "list.csv").write_text("path,label,identity\n" + "\n".join(lines) + "\n")
    assert run_build(source, tmp_path / "repo", "--list", str(source / "list.csv"), *NO_CROPS)[0] == 0
    sides = {}
    for row in rows_of(tmp_path / "repo").values():
        sides.setdefault(row["source_id"], set()).add(row["split"])
    assert len(sides) == 7 and all(len(splits) == 1 for splits in sides.values())


def test_dfdc_is_recognised_and_a_fake_stays_with_its_original(dfdc_replica, tmp_path, run_build):
    assert recognise_layout(dfdc_replica).name == "dfdc"
    assert run_build(dfdc_replica, tmp_path / "repo", *NO_CROPS)[0] == 0
    rows = rows_of(tmp_path / "repo")
    metadata = {f"{part.name}/{Path(name).stem}": entry for part in dfdc_replica.glob("dfdc_train_part_*")
                for name, entry in json.loads((part / "metadata.json").read_text()).items()}  # fmt: skip
    assert set(rows) == set(metadata)
    for video_id, row in rows.items():
        entry = metadata[video_id]
        assert row["label"] == (entry["label"] == "FAKE")
        if row["label"]:
            original = f"{video_id.split('/')[0]}/{Path(entry['original']).stem}"
            assert (row["method"], row["driving_id"]) == ("DFDC", Path(entry["original"]).stem)
            assert row["split"] == rows[original]["split"], video_id
    assert {row["split"] for row in rows.values()} == {"train", "validation", "test"}
    assert run_build(dfdc_replica, tmp_path / "one", *NO_CROPS, "--parts", "1", "--test_only")[0] == 0
    assert {video_id.split("/")[0] for video_id in rows_of(tmp_path / "one")} == {"dfdc_train_part_1"}


def _metadata_entry(source: Path, name: str, entry: str) -> None:
    path = source / "dfdc_train_part_0" / "metadata.json"
    path.write_text(path.read_text().replace("{\n", f'{{\n "{name}": {entry},\n', 1))


@pytest.mark.parametrize(
    "breaker,message",
    [
        (lambda s: (s / "dfdc_train_part_0" / "metadata.json").write_text('{\n "a.mp4": {"label": "REAL",}\n}'),
         "metadata.json, line 2: not JSON"),
        (lambda s: _metadata_entry(s, "zz.mp4", '{"label": "MAYBE"}'), "line 2: zz.mp4: label 'MAYBE' is neither"),
        (lambda s: _metadata_entry(s, "zz.mp4", '{"label": "FAKE", "original": null}'),
         "zz.mp4: a FAKE whose original None is not the file name of a real video"),
        (lambda s: _metadata_entry(s, "zz.mp4", '{"label": "REAL"}'),
         "dfdc_train_part_0/zz.mp4: listed in metadata.json but not found"),
        (lambda s: shutil.copy(next(s.glob("*/*.mp4")), s / "dfdc_train_part_1" / "stray.mp4"),
         "dfdc_train_part_1/stray.mp4: not in metadata.json"),
        (lambda s: (s / "dfdc_train_part_1" / "metadata.json").unlink(), "no metadata.json; each DFDC part comes"),
        (lambda s: (s / "extras").mkdir(), "unknown folders (not a dfdc_train_part_N folder):\n  - extras"),
    ],
)  # fmt: skip
def test_bad_dfdc_input_is_named_and_nothing_is_written(dfdc_replica, tmp_path, run_build, breaker, message):
    source = Path(shutil.copytree(dfdc_replica, tmp_path / "src"))
    breaker(source)
    code, log = run_build(source, tmp_path / "repo", *NO_CROPS)
    assert code == 2 and message in log, log
    assert not (tmp_path / "repo").exists()


LIST_HEADER = "path,label,split,method\n"


@pytest.mark.parametrize(
    "rows,message",
    [
        ("a.mp4,real,,\na.mp4,real,,\n", "line 3: a.mp4 again (first at line 2)"),
        ("a.mp4,maybe,,\n", "line 2: label 'maybe' is none of real, fake, 0 (real), 1 (fake)"),
        ("../a.mp4,real,,\n", "line 2: path '../a.mp4' climbs out of its folder"),
        ("/etc/passwd,real,,\n", "line 2: path '/etc/passwd' is absolute"),
        ("a.mp4,real,,Mine\n", "line 2: a real clip has no method and no action"),
        ("a.mp4,fake,train,\nb.mp4,real,,\n", "line 3: no split, while 1 rows give one"),
        ("a.mp4,fake,,Live/Portrait\n", "line 2: the method name 'Live/Portrait' would name a configuration"),
        ("a.mp4,fake,,\nmissing.mp4,real,,\n", "missing.mp4: list.csv, line 3: listed but not found"),
        ("a.mp4,fake,,\nnotes.txt,real,,\n", "notes.txt: list.csv, line 3: not a video file"),
        ("a.mp4,fake,,\nout/x.mp4,real,,\n", "out/x.mp4: list.csv, line 3: out links to"),
    ],
)  # fmt: skip
def test_bad_list_rows_are_named_by_file_and_line(tmp_path, run_build, rows, message):
    source = collection(tmp_path / "src", ["a.mp4", "b.mp4", "notes.txt"])
    if "out/" in rows:  # only there: a link out of SOURCE is a problem of its own, whatever the list says
        (source / "out").symlink_to(collection(tmp_path / "outside", ["x.mp4"]), target_is_directory=True)
    (tmp_path / "list.csv").write_text(LIST_HEADER + rows)
    code, log = run_build(source, tmp_path / "repo", "--list", str(tmp_path / "list.csv"), *NO_CROPS)
    assert code == 2 and message in log, log
    assert not (tmp_path / "repo").exists()


@pytest.mark.parametrize(
    "files,flags,message",
    [
        (["real/a.mp4", "fake/b.mp4", "extras/c.mp4"], (), "unknown folders (neither real/ nor fake/"),
        (["real/a.mp4", "fake/b.mp4", "fake/c.txt"], (), "fake/c.txt: not a video file"),
        (["real/a.mp4", "fake/Bad Name/b.mp4"], (), "fake/Bad Name: the method name 'Bad Name'"),
        (["real/id1.mp4", "fake/b.mp4"], ("--identity_pattern", r"id\d"), "fake/b.mp4: --identity_pattern 'id\\\\d' "
         "finds no identity"),
        (["real/a.mp4", "fake/b.mp4"], ("--identity_pattern", "(unclosed"), "is not a regular expression"),
        (["real/a.mp4", "fake/b.mp4"], ("--parts", "0"), "--parts is for the dfdc layout"),
        (["real/a.mp4", "fake/b.mp4"], ("--qualities", "c23"), "pass --qualities raw"),
        (["real/a.mp4", "real/a.avi", "fake/b.mp4"], (), "real/a.mp4: its video id real/a (folder and name"),
        (["real/a.mp4", "fake/b.mp4"], ("--face_crops", "maybe"), "invalid choice: 'maybe'"),
    ],
)  # fmt: skip
def test_bad_folders_input_is_named_and_nothing_is_written(tmp_path, run_build, capsys, files, flags, message):
    source = collection(tmp_path / "src", files)
    try:
        code, log = run_build(source, tmp_path / "repo", "--layout", "folders", *NO_CROPS, *flags)
    except SystemExit as exit_:  # argparse refuses a choice itself, on stderr
        code, log = exit_.code, capsys.readouterr().err
    assert code == 2 and message in log, log
    assert not (tmp_path / "repo").exists()


def test_list_implies_the_csv_layout_and_only_dfdc_takes_parts():
    assert parse_args(["src", "--output_dir", "o", "--list", "l.csv"]).layout == "csv"
    config = parse_args(["src", "--output_dir", "o", "--parts", "0,3-5", "--face_crops", "yes", "--test_only"])
    assert (config.parts, config.face_crops, config.test_only, config.layout) == ("0,3-5", "yes", True, None)
    from dataset_script.layouts.dfdc import parse_parts

    assert parse_parts("0,3-5") == {0, 3, 4, 5}
    with pytest.raises(Exception, match="is not a part number or a range like 3-5"):
        parse_parts("5-3")


@pytest.mark.slow
def test_whole_frames_are_cropped_and_face_crops_kept_as_they_are(folders_replica, tmp_path, run_build):
    whole = {"real/id0/0000.mp4": "real/person.mp4", "fake/FaceSwap/id0_id1_0000.mp4": "fake/FaceSwap/swap.mp4"}
    first = tmp_path / "first"
    for name, new in whole.items():
        (first / new).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(folders_replica / name, first / new)
    assert run_build(first, tmp_path / "cropped")[0] == 0  # auto: both are whole frames
    boxes = splits_csv(tmp_path / "cropped")
    assert all(boxes[video_id]["face_box"] for video_id in ("real/person", "fake/FaceSwap/swap"))
    # the build's own crop of the real video is a face crop; the fake is still a whole frame
    second = tmp_path / "second"
    (second / "real").mkdir(parents=True)
    crop = read_clips(tmp_path / "cropped", ["raw/real/person.mp4"])["raw/real/person.mp4"]
    (second / "real" / "crop.mp4").write_bytes(crop)
    shutil.copytree(first / "fake", second / "fake")
    assert run_build(second, tmp_path / "mixed")[0] == 0
    rows = splits_csv(tmp_path / "mixed")
    assert rows["real/crop"]["face_box"] == "" and rows["fake/FaceSwap/swap"]["face_box"]
    kept = read_clips(tmp_path / "mixed", ["raw/real/crop.mp4"])["raw/real/crop.mp4"]
    assert kept == (second / "real" / "crop.mp4").read_bytes()
    info = json.loads((tmp_path / "mixed" / "build_info.json").read_text())
    assert info["face_crop"] == FACE_CROP.as_dict() and info["licensed_per_user"]


def test_cross_dataset_refuses_two_test_repos_of_one_name(tmp_path):
    """Each test repo's folder name heads its column of the table and keys its results: two alike would merge."""
    from training.experiments.command import main as experiments_main

    with pytest.raises(SystemExit, match="--test_on names two repos called repo"):
        experiments_main(["cross_dataset", "--dataset_name", str(tmp_path / "main"), "--train_config", "raw",
                          "--test_on", f"{tmp_path / 'a' / 'repo'}:raw,{tmp_path / 'b' / 'repo'}:raw",
                          "--scale", "smoke", "--output_dir", str(tmp_path / "out")])  # fmt: skip

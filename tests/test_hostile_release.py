"""A release is untrusted input: links out of it are refused by name and never opened (followed only when asked,
and then copied, never linked), clashing names and malformed manifests are named with their line and the fix, and
FFmpeg's internals stay out of the messages. Every refusal is exit 2 with nothing written."""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dataset_script.clips import as_reason
from dataset_script.release import write_manifest
from tests.factories import damage_inside, make_clip, release_rows

PER_FOLDER = 3  # the tiny release's clips a folder (``release_copy``)
RAW = ("--qualities", "raw")

_recording: list[list[str]] = []


def _record_paths(event: str, args: tuple) -> None:
    """Python's audit events that name a path: files opened, folders listed, links made, files copied, commands run
    (ffprobe and ffmpeg get their files as arguments)."""
    if not _recording:
        return
    if event in ("open", "os.scandir", "os.listdir"):
        paths = args[:1]
    elif event in ("os.link", "os.symlink", "shutil.copyfile"):
        paths = args[:2]
    elif event == "subprocess.Popen":
        paths = args[1] if isinstance(args[1], list | tuple) else [args[1]]
    else:
        return
    for record in _recording:
        record.extend(os.fsdecode(path) for path in paths if isinstance(path, str | bytes | os.PathLike))


sys.addaudithook(_record_paths)  # for the process's life (hooks cannot be removed); idle unless a test records


@contextmanager
def paths_opened() -> Iterator[list[str]]:
    """The paths opened, listed, linked, copied or handed to PyAV or a command in the block, as they were given."""
    import av

    record: list[str] = []
    real_open = av.open

    def open_and_record(file, *args, **kwargs):  # PyAV opens in C, where no audit event fires
        record.append(os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    av.open = open_and_record
    _recording.append(record)
    try:
        yield record
    finally:
        av.open = real_open
        _recording.remove(record)


def _resolving_into(paths: list[str], folder: Path) -> list[str]:
    """Those of ``paths`` that, every link followed, lie in ``folder``."""
    inside = []
    for path in paths:
        try:
            if Path(path).resolve().is_relative_to(folder.resolve()):
                inside.append(path)
        except (OSError, RuntimeError, ValueError):  # not a path at all (a flag of ffmpeg's, a loop)
            continue
    return inside


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A folder beside the release with a clip whose content is in no release clip."""
    make_clip(tmp_path / "elsewhere" / "clip.mp4", frames=8, size=32, seed=77)
    return tmp_path / "elsewhere"


def _link_a_clip(source: Path, elsewhere: Path) -> str:
    (source / "blink" / "0009.mp4").symlink_to(elsewhere / "clip.mp4")
    return f"blink/0009.mp4 -> {elsewhere / 'clip.mp4'}"


def _link_an_action_folder(source: Path, elsewhere: Path) -> str:
    shutil.move(source / "yaw", elsewhere / "yaw")
    (source / "yaw").symlink_to(elsewhere / "yaw", target_is_directory=True)
    return f"yaw -> {elsewhere / 'yaw'}"


def _link_the_manifest(source: Path, elsewhere: Path) -> str:
    write_manifest(elsewhere, release_rows(PER_FOLDER))
    (source / "manifest.csv").symlink_to(elsewhere / "manifest.csv")
    return f"manifest.csv: a link to {elsewhere / 'manifest.csv'}, outside {source}"


@pytest.mark.parametrize("link", [_link_a_clip, _link_an_action_folder, _link_the_manifest])
def test_a_link_out_of_the_release_is_named_and_refused_and_what_it_points_at_never_opened(
    release_copy, elsewhere, tmp_path, run_build, link
):
    source = release_copy()
    named = link(source, elsewhere)
    with paths_opened() as opened:
        code, log = run_build(source, tmp_path / "repo", *RAW)
    assert code == 2 and named in log and "--follow_links_outside_source" in log
    assert _resolving_into(opened, elsewhere) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["elsewhere", "src"]  # no repo, not even staging


def _layout_with_a_link_out(layout: str, root: Path, elsewhere: Path) -> str:
    """A FaceForensics++ or Celeb-DF folder of plain clips whose fakes' folder is a link to ``elsewhere``: the refusal
    comes before any face is looked for, so the clips need none."""
    if layout == "faceforensics":
        make_clip(root / "original_sequences/youtube/raw/videos/000.mp4", frames=8, size=32)
        make_clip(elsewhere / "Deepfakes/raw/videos/000_000.mp4", frames=8, size=32, seed=1)
        for name, pairs in (("train", [["000", "000"]]), ("val", []), ("test", [])):
            (root / "splits").mkdir(exist_ok=True)
            (root / "splits" / f"{name}.json").write_text(json.dumps(pairs))
        linked = root / "manipulated_sequences" / "Deepfakes"
        linked.parent.mkdir()
    else:
        make_clip(root / "Celeb-real/id0_0000.mp4", frames=8, size=32)
        make_clip(elsewhere / "Celeb-synthesis/id1_id0_0000.mp4", frames=8, size=32, seed=1)
        (root / "List_of_testing_videos.txt").write_text("1 Celeb-real/id0_0000.mp4\n")
        linked = root / "Celeb-synthesis"
    linked.symlink_to(elsewhere / linked.name, target_is_directory=True)
    return f"{linked.relative_to(root).as_posix()} -> {elsewhere / linked.name}"


@pytest.mark.parametrize("layout", ["faceforensics", "celeb_df"])
def test_every_layout_refuses_a_link_out_of_its_folder(tmp_path, elsewhere, run_build, layout):
    source = tmp_path / "src"
    named = _layout_with_a_link_out(layout, source, elsewhere)
    with paths_opened() as opened:
        code, log = run_build(source, tmp_path / "repo", "--layout", layout)
    assert code == 2 and named in log
    assert _resolving_into(opened, elsewhere) == []
    assert not (tmp_path / "repo").exists()


@pytest.fixture
def fifo(elsewhere) -> Iterator[Path]:
    """A FIFO out of the release: whatever opens it blocks until a writer comes. A watchdog comes after 20 s, so that
    a build that did open it ends (on an empty read) and the test fails instead of hanging; ``fifo.opened`` says."""
    path = elsewhere / "pipe.mp4"
    os.mkfifo(path)
    opened = threading.Event()

    def unblock() -> None:
        try:  # a writer's non-blocking open succeeds only while a reader is waiting
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            opened.set()
        except OSError:
            pass

    watchdog = threading.Timer(20, unblock)
    watchdog.start()
    yield path, opened
    watchdog.cancel()
    unblock()


@pytest.mark.parametrize("name", ["manifest.csv", "blink/0009.mp4"])
@pytest.mark.parametrize("follow", [False, True])
def test_a_fifo_linked_into_the_release_is_never_opened(release_copy, fifo, tmp_path, run_build, name, follow):
    """Opening a FIFO blocks: a build that opened this one would hang until the watchdog. Followed on request, it is
    still refused by name, as neither a file nor a folder."""
    path, opened = fifo
    source = release_copy()
    (source / name).symlink_to(path)
    flags = ["--follow_links_outside_source"] if follow else []
    code, log = run_build(source, tmp_path / "repo", *RAW, *flags)
    assert code == 2 and name in log
    assert not opened.is_set(), "the build opened the FIFO and waited for the watchdog"
    assert not (tmp_path / "repo").exists()


def _links_to(repo: Path, elsewhere: Path) -> list[str]:
    """Entries of ``repo`` that are symbolic links, or hard links to (the same inode as) a file of ``elsewhere``."""
    outside = {(path.stat().st_dev, path.stat().st_ino) for path in elsewhere.rglob("*") if path.is_file()}
    return [str(path.relative_to(repo)) for path in repo.rglob("*")
            if path.is_symlink() or (path.stat().st_dev, path.stat().st_ino) in outside]  # fmt: skip


def _release_with_links(source: Path, elsewhere: Path) -> list[str]:
    """Links out (a clip, an action folder) and one inside (a clip linked by a relative path to another folder's)."""
    (source / "smile" / "0009.mp4").symlink_to(Path("..") / "blink" / "0000.mp4")
    return [_link_a_clip(source, elsewhere), _link_an_action_folder(source, elsewhere)]


def test_skip_bad_files_leaves_links_out_named_and_the_repo_holds_no_link(release_copy, elsewhere, tmp_path,
                                                                           run_build):  # fmt: skip
    source = release_copy()
    named = _release_with_links(source, elsewhere)
    code, log = run_build(
        source, tmp_path / "repo", *RAW, "--skip_bad_files", "--allow_missing_actions", "--keep_clips"
    )
    assert code == 0 and all(link in log for link in named)
    repo = tmp_path / "repo"
    assert not (repo / "raw" / "blink" / "0009.mp4").exists() and not (repo / "raw" / "yaw").exists()
    assert _links_to(repo, elsewhere) == []
    linked_inside = repo / "raw" / "smile" / "0009.mp4"  # a link within the release is built, as a file
    assert linked_inside.read_bytes() == (source / "blink" / "0000.mp4").read_bytes()
    assert all(link in json.loads((repo / "build_info.json").read_text())["skipped"] for link in named)


def test_follow_links_outside_source_builds_from_copies_never_links(release_copy, elsewhere, tmp_path, run_build):
    source = release_copy()
    _release_with_links(source, elsewhere)
    code, log = run_build(source, tmp_path / "repo", *RAW, "--follow_links_outside_source", "--keep_clips")
    assert code == 0 and "following 2 links out of" in log
    repo = tmp_path / "repo"
    assert (repo / "raw" / "blink" / "0009.mp4").read_bytes() == (elsewhere / "clip.mp4").read_bytes()
    assert sorted(path.name for path in (repo / "raw" / "yaw").iterdir()) == sorted(
        path.name for path in (elsewhere / "yaw").iterdir()
    )
    assert _links_to(repo, elsewhere) == []
    assert all(path.stat().st_nlink == 1 for path in elsewhere.rglob("*.mp4"))


def _clashing_files(source: Path) -> str:
    for name in ("Clip.mp4", "clip.mp4"):
        shutil.copyfile(source / "nod" / "0000.mp4", source / "nod" / name)
    return "nod/Clip.mp4: differs from clip.mp4 only by case"


def _clashing_folders(source: Path) -> str:
    shutil.copytree(source / "smile", source / "Smile")
    return "smile: differs from Smile only by case"


def _control_character(source: Path) -> str:
    shutil.copyfile(source / "nod" / "0000.mp4", source / "nod" / "evil\n  - everything: fine.mp4")
    return "nod/evil\\n  - everything: fine.mp4: its name holds a control character"


def _fifo_inside(source: Path) -> str:
    os.mkfifo(source / "up" / "0009.mp4")
    return "up/0009.mp4: neither a regular file nor a folder"


@pytest.mark.parametrize("breaker", [_clashing_files, _clashing_folders, _control_character, _fifo_inside])
def test_names_that_clash_or_cannot_be_shown_are_named(release_copy, tmp_path, run_build, breaker):
    source = release_copy()
    message = breaker(source)
    code, log = run_build(source, tmp_path / "repo", *RAW)
    assert code == 2 and message in log and "--skip_bad_files" in log
    assert "evil\n" not in log  # a name cannot forge a line of the report
    assert not (tmp_path / "repo").exists()


def _manifest_lines(source: Path) -> list[str]:
    """The lines of a valid manifest of the tiny release, header first, rows sorted by file (blink/0000.mp4 first)."""
    return write_manifest(source, release_rows(PER_FOLDER)).read_text().splitlines(keepends=True)


def _row(lines: list[str], file: str) -> int:
    return next(index for index, line in enumerate(lines) if line.startswith(f"{file},"))


def _contradicting_label(lines: list[str]) -> str:
    lines[1] = lines[1].replace(",fake,", ",real,")
    return "blink/0000.mp4: manifest.csv labels it real, but it is in blink/, a folder of fake clips"


def _neither_label(lines: list[str]) -> str:
    lines[2] = lines[2].replace(",fake,", ",maybe,")
    return "manifest.csv: 1 malformed row:\n  - line 3: label 'maybe' is neither real nor fake"


def _listed_twice(lines: list[str]) -> str:
    lines.append(lines[1])
    return f"line {len(lines)}: blink/0000.mp4 again (first at line 2)"


def _missing_column(lines: list[str]) -> str:
    lines[:] = [",".join(line.split(",")[:3] + line.split(",")[4:]) for line in lines]
    return "manifest.csv, line 1: the header has no column source_id; it must name file, label, source_id"


def _seed_not_a_number(lines: list[str]) -> str:
    row = _row(lines, "smile/0001.mp4")
    fields = lines[row].split(",")
    lines[row] = ",".join([*fields[:5], "4.5e", *fields[6:]])
    return f"line {row + 1}: seed '4.5e' is not a whole number"


@pytest.mark.parametrize(
    "breaker", [_contradicting_label, _neither_label, _listed_twice, _missing_column, _seed_not_a_number]
)
def test_manifest_rows_that_contradict_repeat_or_are_malformed_are_named_by_line(release_copy, tmp_path, run_build,
                                                                                  breaker):  # fmt: skip
    source = release_copy()
    lines = _manifest_lines(source)
    message = breaker(lines)
    (source / "manifest.csv").write_text("".join(lines))
    code, log = run_build(source, tmp_path / "repo", *RAW)
    assert code == 2 and message in log and "Traceback" not in log
    assert not (tmp_path / "repo").exists()


def test_a_manifest_that_is_not_utf8_or_not_json_lines_is_named_with_its_line(release_copy, tmp_path, run_build):
    source = release_copy()
    lines = _manifest_lines(source)
    (source / "manifest.csv").write_bytes("".join(lines[:4]).encode() + b"blink/0002.mp4,fake,blink,id\xff\n")
    code, log = run_build(source, tmp_path / "repo", *RAW)
    assert code == 2 and "manifest.csv, line 5: not UTF-8 text (byte 0xff at column 29); save the file as UTF-8" in log
    (source / "manifest.csv").unlink()
    good = json.dumps({"file": "blink/0000.mp4", "label": "fake", "source_id": "id00"})
    (source / "manifest.jsonl").write_text(f'{good}\n{{"file": blink}}\n["blink/0001.mp4"]\n')
    code, log = run_build(source, tmp_path / "repo", *RAW)
    assert code == 2 and "manifest.jsonl: 2 malformed rows" in log
    assert "line 2: not JSON (Expecting value at column 10)" in log and "line 3: a JSON list, not an object" in log
    assert "remove manifest.jsonl to build without identities" in log
    assert not (tmp_path / "repo").exists()


def test_ffmpeg_component_addresses_stay_out_of_the_build_messages(release_copy, tmp_path, run_build):
    """Found by the probe (the container's index missing) and by the encode (a stream damaged inside)."""
    source = release_copy()
    truncated = source / "smile" / "0001.mp4"
    truncated.write_bytes(truncated.read_bytes()[:3000])  # the index (moov) is at the end
    damage_inside(source / "blink" / "0002.mp4")
    code, log = run_build(source, tmp_path / "repo", "--qualities", "raw,c23", "--skip_bad_files")
    assert code == 0
    assert "smile/0001.mp4: not a readable video: moov atom not found" in log
    assert "blink/0002.mp4: truncated or corrupt: " in log and "@ 0x" not in log
    nested = "[vist#0:0/h264 @ 0x55d9f4005980] [dec:h264 @ 0x55d9f4006000] error while decoding MB 1 0\x1b[0m"
    assert as_reason(f"truncated or corrupt: {nested}") == "truncated or corrupt: error while decoding MB 1 0\\x1b[0m"

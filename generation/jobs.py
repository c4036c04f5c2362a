"""The generation job list and its bookkeeping: which (source, driving video) pairs there are, which are finished,
and the record each finished job leaves beside the output.

Every driving video gives one real job (its face crop, a real clip of the release) and one fake job per source
(the source animated by it). Job ids and output names come from file names alone, so adding a source or a
driving video never renames what exists, and the sorted list is the same in every process.

Bookkeeping lives in ``OUT/.generation/`` (hidden, so ``dataset_script.build`` ignores it): one JSON record per
job, written atomically after its video, and one log per process of the jobs it ran.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from dataset_script.release import REAL_RELEASE_FOLDER, release_folder
from dataset_script.schema import ACTIONS, VIDEO_EXTENSIONS, canonical_action

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
BOOKKEEPING = ".generation"
REAL_JOB = "@real"
"""The last part of a real job's id, where a fake job has its source's name."""

DONE, REJECTED, ERROR = "done", "rejected", "error"


class JobPlanError(ValueError):
    """The inputs do not fit the expected layout; the message lists what and how to fix it."""


@dataclass(frozen=True)
class Job:
    job_id: str
    """``<action>/<driving stem>/<source stem>``, or ``<action>/<driving stem>/@real`` for the real crop."""
    action: str
    driving: str
    """Path relative to ``--driving``: ``<action folder>/<file>``."""
    source: str | None
    """Path relative to ``--sources``; None for a real job."""
    output: str
    """Path relative to ``--out`` in the release layout."""

    @property
    def is_real(self) -> bool:
        return self.source is None

    @property
    def driving_id(self) -> str:
        return Path(self.driving).stem

    @property
    def source_id(self) -> str:
        """The identity shown: the source's for a fake, the driving video's person for a real clip."""
        return Path(self.source).stem if self.source is not None else self.driving_id


def _visible_files(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if entry.is_file() and not entry.name.startswith("."))


def list_sources(sources: Path) -> list[Path]:
    """The face images and videos of ``--sources``; anything else is an error that names the files."""
    if not sources.is_dir():
        raise JobPlanError(f"--sources {sources} is not a folder; pass a folder of face images or videos")
    files = _visible_files(sources)
    unsupported = [f.name for f in files if f.suffix.lower() not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS]
    if unsupported:
        raise JobPlanError(
            f"--sources {sources} holds files that are neither images ({', '.join(IMAGE_EXTENSIONS)}) nor videos "
            f"({', '.join(VIDEO_EXTENSIONS)}): {', '.join(unsupported[:10])}; move them out of the folder"
        )
    stems: dict[str, str] = {}
    for path in files:
        if path.stem in stems:
            raise JobPlanError(f"--sources: {stems[path.stem]} and {path.name} share a name; output names come "
                               f"from file names, so rename one")  # fmt: skip
        stems[path.stem] = path.name
    if not files:
        raise JobPlanError(f"--sources {sources} holds no face images or videos")
    return files


def list_driving(driving: Path) -> dict[str, list[Path]]:
    """Driving videos per canonical action from ``--driving``'s action folders (canonical or release names)."""
    if not driving.is_dir():
        raise JobPlanError(f"--driving {driving} is not a folder; pass a folder with one sub-folder per action")
    by_action: dict[str, list[Path]] = {}
    unknown, folder_of = [], {}
    for folder in sorted(entry for entry in driving.iterdir() if entry.is_dir() and not entry.name.startswith(".")):
        action = canonical_action(folder.name)
        if action is None:
            unknown.append(folder.name)
            continue
        if action in folder_of:
            raise JobPlanError(
                f"--driving: folders {folder_of[action]} and {folder.name} are both {action}; merge them"
            )
        folder_of[action] = folder.name
        videos = [path for path in _visible_files(folder) if path.suffix.lower() in VIDEO_EXTENSIONS]
        stems = [path.stem for path in videos]
        duplicated = sorted({stem for stem in stems if stems.count(stem) > 1})
        if duplicated:
            raise JobPlanError(f"--driving {folder.name}: several videos named {', '.join(duplicated)}; rename them")
        by_action[action] = videos
    if unknown:
        raise JobPlanError(f"--driving holds folders that are not actions: {', '.join(unknown)}; name each "
                           f"after its action ({', '.join(ACTIONS)}) or its release folder name")  # fmt: skip
    if not any(by_action.values()):
        raise JobPlanError(f"--driving {driving} holds no driving videos ({', '.join(VIDEO_EXTENSIONS)}) in its "
                           f"action folders")  # fmt: skip
    return by_action


def plan_jobs(sources: Path, driving: Path) -> list[Job]:
    """Every job, sorted by id: each driving video's real crop and its animation of every source."""
    source_files = list_sources(sources)
    jobs = []
    for action, videos in list_driving(driving).items():
        for video in videos:
            relative = video.relative_to(driving).as_posix()
            jobs.append(Job(f"{action}/{video.stem}/{REAL_JOB}", action, relative, None,
                            f"{REAL_RELEASE_FOLDER}/{action}--{video.stem}.mp4"))  # fmt: skip
            for source in source_files:
                jobs.append(Job(f"{action}/{video.stem}/{source.stem}", action, relative, source.name,
                                f"{release_folder(action)}/{source.stem}--{video.stem}.mp4"))  # fmt: skip
    return sorted(jobs, key=lambda job: job.job_id)


def write_json_atomically(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True))
    os.replace(partial, path)


class JobRecords:
    """The per-job records under ``OUT/.generation/records``: what happened to each job, and its output."""

    def __init__(self, out: Path):
        self.out = out
        self.root = out / BOOKKEEPING / "records"

    def path(self, job: Job) -> Path:
        return self.root / f"{job.job_id}.json"

    def read(self, job: Job) -> dict | None:
        try:
            return json.loads(self.path(job).read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError:
            return None  # a record is written atomically, so this is damage from outside: redo the job

    def write(self, job: Job, status: str, **details) -> dict:
        record = {"job_id": job.job_id, "status": status, **asdict(job), **details}
        write_json_atomically(self.path(job), record)
        return record

    def is_finished(self, job: Job, retry_errors: bool = False) -> bool:
        """A job is finished when its record says so and, for a done job, its video is there at the recorded
        size; an error counts as finished unless ``retry_errors``."""
        record = self.read(job)
        if record is None:
            return False
        if record["status"] == DONE:
            video = self.out / job.output
            return video.is_file() and video.stat().st_size == record.get("bytes")
        return record["status"] == REJECTED or (record["status"] == ERROR and not retry_errors)


def shard(jobs: list, process_index: int, num_processes: int) -> list:
    """This process's contiguous share of ``jobs``: every job in exactly one share, shares differing by at most
    one job. Contiguous, because jobs sorted by id come grouped by driving video, whose face crop a process then
    computes once."""
    start = len(jobs) * process_index // num_processes
    end = len(jobs) * (process_index + 1) // num_processes
    return jobs[start:end]

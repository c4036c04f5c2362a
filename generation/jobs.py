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
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from dataset_script.files import write_text_atomically
from dataset_script.release import MANIFEST_NAMES, REAL_RELEASE_FOLDER, read_manifest, release_folder, scan_release
from dataset_script.schema import ACTIONS, VIDEO_EXTENSIONS, canonical_action
from dataset_script.source_folder import printable
from dataset_script.splits import stable_hash

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
BOOKKEEPING = ".generation"
REAL_JOB = "@real"
"""The last part of a driving video's real job's id, where a fake job has its source's name."""
SOURCE_REAL_JOBS = "@sources"
"""The first part of a source video's real job's id."""

DONE, REJECTED, ERROR = "done", "rejected", "error"


class JobPlanError(ValueError):
    """The inputs do not fit the expected layout; the message lists what and how to fix it."""


@dataclass(frozen=True)
class Job:
    job_id: str
    """``<action>/<driving stem>/<source stem>`` for a fake, ``<action>/<driving stem>/@real`` for a driving
    video's crop, ``@sources/<source stem>`` for a source video's crop."""
    label: str
    """``real`` or ``fake``."""
    action: str
    """The action performed; empty for a source video's real clip."""
    driving: str | None
    """Path relative to ``--driving``: ``<action folder>/<file>``; None for a source video's real clip."""
    source: str | None
    """Path relative to ``--sources``; None for a driving video's real clip."""
    output: str
    """Path relative to ``--output_dir`` in the release layout."""
    source_id: str
    """The identity shown: the source's for a fake, the filmed person's for a real clip."""
    driving_id: str
    """The identity whose motion a fake copies; empty for a real clip."""

    @property
    def is_real(self) -> bool:
        return self.label == "real"


PAIRINGS = ("all", "one_per_action", "manifest")
"""Which driving videos animate each source (``generate.py --pairing``): see ``plan_jobs``."""
PAIR_SEPARATOR = "--"
"""Between the source's and the driving video's names in a fake's file name: ``<source>--<driving>.mp4``."""
REAL_CLIPS = ("driving", "sources", "none")
"""Where the real clips come from (``generate.py --real_clips``): see ``plan_jobs``."""


class Identities:
    """Identity of a file from its name: the whole stem, or the first group of ``pattern`` searched in it (for
    names such as VoxCeleb's ``id10001_1zcIwhmdeo4_00001``, ``^(id\\d+)``)."""

    def __init__(self, pattern: str | None = None):
        try:
            self.pattern = re.compile(pattern) if pattern else None
        except re.error as error:
            raise JobPlanError(f"--identity_pattern {pattern!r} is not a regular expression ({error})") from error
        if self.pattern is not None and self.pattern.groups < 1:
            raise JobPlanError(f"--identity_pattern {pattern!r} has no group; put the identity in (...)")

    def __call__(self, path: Path) -> str:
        if self.pattern is None:
            return path.stem
        match = self.pattern.search(path.stem)
        if match is None:
            raise JobPlanError(f"--identity_pattern {self.pattern.pattern!r} does not match {path.name}; "
                               f"fix the pattern or rename the file")  # fmt: skip
        return match.group(1)


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
    """Driving videos per canonical action from ``--driving``'s action folders (canonical or release names), read
    as the build reads a release; what does not fit is an error that names it."""
    if not driving.is_dir():
        raise JobPlanError(f"--driving {driving} is not a folder; pass a folder with one sub-folder per action")
    scan = scan_release(driving)
    if scan.unknown_folders or scan.real_folder:
        names = ", ".join(scan.unknown_folders + ([scan.real_folder] if scan.real_folder else []))
        raise JobPlanError(f"--driving holds folders that are not actions: {names}; name each after its action "
                           f"({', '.join(ACTIONS)}) or its release folder name")  # fmt: skip
    if scan.refused_entries:
        listed = "; ".join(f"{printable(name)}: {reason}" for name, reason in sorted(scan.refused_entries.items()))
        raise JobPlanError(f"--driving holds entries that cannot be used: {listed}")
    if scan.non_video_files:
        raise JobPlanError(f"--driving holds files that are not videos ({', '.join(VIDEO_EXTENSIONS)}): "
                           f"{', '.join(scan.non_video_files[:10])}; move them out")  # fmt: skip
    by_action: dict[str, list[Path]] = {}
    for video in scan.videos:
        by_action.setdefault(video.action, []).append(video.path)
    for action, videos in by_action.items():  # two folders of one action (mouth, open_mouth) or a.mp4 and a.avi
        stems = [path.stem for path in videos]
        duplicated = sorted({stem for stem in stems if stems.count(stem) > 1})
        if duplicated:
            raise JobPlanError(f"--driving: several {action} videos named {', '.join(duplicated)}; output names come "
                               f"from file names, so rename them")  # fmt: skip
    if not by_action:
        raise JobPlanError(f"--driving {driving} holds no driving videos ({', '.join(VIDEO_EXTENSIONS)}) in its "
                           f"action folders")  # fmt: skip
    return dict(sorted(by_action.items()))


def chosen_driving(source: str, videos: list[Path]) -> Path:
    """The one driving video of an action a source is paired with under ``one_per_action``: highest stable hash
    of the pair, so adding a driving video moves only the sources that now prefer it, and adding a source moves
    nothing."""
    return max(videos, key=lambda video: (stable_hash(f"{source}|{video.name}"), video.name))


def manifest_pairs(manifest: Path, source_files: list[Path], driving: dict[str, list[Path]],
                   identity: Identities) -> set[tuple[str, str, str]]:  # fmt: skip
    """The (action, source file name, driving path) of every fake of an earlier generated set's manifest (a
    ``manifest.csv`` or its folder), matched to ``--sources`` and ``--driving`` by the ``<source>--<driving>`` file
    names generate.py writes, else by identities when those name exactly one file each. What cannot be matched is
    an error that lists it: an unseen-generator set must show the same people doing the same actions."""
    if not manifest.exists():
        raise JobPlanError(f"--pairing_manifest {manifest} does not exist; pass the manifest.csv of the set to repeat")
    folder = manifest if manifest.is_dir() else manifest.parent
    if manifest.is_file() and manifest.name not in MANIFEST_NAMES:
        raise JobPlanError(f"--pairing_manifest {manifest}: expected {' or '.join(MANIFEST_NAMES)} or its folder")
    try:
        rows = read_manifest(folder)
    except ValueError as error:
        raise JobPlanError(f"--pairing_manifest: {error}") from error
    if rows is None:
        raise JobPlanError(f"--pairing_manifest {manifest}: no {' or '.join(MANIFEST_NAMES)} there; pass the folder a "
                           f"generate.py run wrote")  # fmt: skip
    by_stem = {path.stem: path.name for path in source_files}
    by_identity: dict[str, list[str]] = {}
    for path in source_files:
        by_identity.setdefault(identity(path), []).append(path.name)
    pairs, unmatched = set(), []
    for row in sorted(rows.values(), key=lambda row: row.file):
        if row.label != "fake":
            continue
        action = canonical_action(row.action) or row.action
        videos = {video.stem: video for video in driving.get(action, [])}
        stem = Path(row.file).stem
        # either name may hold the separator itself: try every split
        splits = [(stem[:at], stem[at + len(PAIR_SEPARATOR) :]) for at in range(len(stem))
                  if stem.startswith(PAIR_SEPARATOR, at)]  # fmt: skip
        by_name = [(by_stem[s], videos[d]) for s, d in splits if s in by_stem and d in videos]
        if len(by_name) == 1:
            chosen = by_name[0]
        else:
            sources = by_identity.get(row.source_id, [])
            drivers = [video for video in videos.values() if identity(video) == row.driving_id]
            chosen = (sources[0], drivers[0]) if len(sources) == len(drivers) == 1 else None
        if chosen is None:
            unmatched.append(f"{row.file} ({row.action}: {row.source_id} driven by {row.driving_id})")
        else:
            pairs.add((action, chosen[0], chosen[1].name))
    if unmatched:
        raise JobPlanError(f"--pairing_manifest: {len(unmatched)} fakes have no source and driving video here: "
                           f"{', '.join(unmatched[:5])}; put those files in --sources and --driving (same names, or "
                           f"names whose --identity_pattern identities are unique)")  # fmt: skip
    if not pairs:
        raise JobPlanError(f"--pairing_manifest {manifest} lists no fakes to pair")
    return pairs


def plan_jobs(sources: Path, driving: Path, pairing: str = "all", real_clips: str = "driving",
              identity_pattern: str | None = None, pairing_manifest: Path | None = None) -> list[Job]:  # fmt: skip
    """Every job, sorted by id.

    ``pairing``: ``all`` animates every source with every driving video; ``one_per_action`` with one driving
    video of each action (as the paper, many sources and a few driving videos per action); ``manifest`` each source
    with the driving videos it has in ``pairing_manifest``, an earlier set's (``manifest_pairs``). ``real_clips``:
    the face crops of the ``driving`` videos, of the ``sources`` that are videos (the paper's real clips are the
    VoxCeleb videos its sources come from), or ``none``."""
    if pairing not in PAIRINGS:
        raise JobPlanError(f"--pairing {pairing!r}: choose one of {', '.join(PAIRINGS)}")
    if (pairing == "manifest") != (pairing_manifest is not None):
        raise JobPlanError("--pairing manifest and --pairing_manifest go together: pass both (the manifest.csv of "
                           "the set whose pairs to reuse) or neither")  # fmt: skip
    if real_clips not in REAL_CLIPS:
        raise JobPlanError(f"--real_clips {real_clips!r}: choose one of {', '.join(REAL_CLIPS)}")
    identity = Identities(identity_pattern)
    source_files = list_sources(sources)
    by_action = list_driving(driving)
    pairs = manifest_pairs(pairing_manifest, source_files, by_action, identity) if pairing == "manifest" else None
    jobs = []
    for action, videos in by_action.items():
        for video in videos:
            relative = video.relative_to(driving).as_posix()
            if real_clips == "driving":
                jobs.append(Job(f"{action}/{video.stem}/{REAL_JOB}", "real", action, relative, None,
                                f"{REAL_RELEASE_FOLDER}/{action}--{video.stem}.mp4", identity(video), ""))  # fmt: skip
            for source in source_files:
                if pairing == "one_per_action" and chosen_driving(source.name, videos) != video:
                    continue
                if pairs is not None and (action, source.name, video.name) not in pairs:
                    continue
                jobs.append(Job(f"{action}/{video.stem}/{source.stem}", "fake", action, relative, source.name,
                                f"{release_folder(action)}/{source.stem}{PAIR_SEPARATOR}{video.stem}.mp4",
                                identity(source), identity(video)))  # fmt: skip
    if real_clips == "sources":
        for source in source_files:
            if source.suffix.lower() in VIDEO_EXTENSIONS:
                jobs.append(Job(f"{SOURCE_REAL_JOBS}/{source.stem}", "real", "", None, source.name,
                                f"{REAL_RELEASE_FOLDER}/{source.stem}.mp4", identity(source), ""))  # fmt: skip
    return sorted(jobs, key=lambda job: job.job_id)


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
        write_text_atomically(self.path(job), json.dumps(record, indent=1, sort_keys=True))
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

"""Generate DeepFake MNIST+ style data at scale: crop the faces of driving videos and source faces with MTCNN,
animate every source with every driving video, check the fakes, and write the release layout with a manifest.

    accelerate launch generation/generate.py --backend fomm --checkpoint vox-cpk.pth.tar \\
        --sources faces/ --driving driving/ --output_dir generated/
    python generation/generate.py --backend warp --sources faces/ --driving driving/ --output_dir generated/
    python -m dataset_script.build generated/ --output_dir deepfake_mnist_plus
    python generation/generate.py --backend tpsmm --checkpoint vox.pth.tar --sources faces/ --driving driving/ \
        --pairing manifest --pairing_manifest generated/manifest.csv --output_dir unseen_tpsmm/

``--driving`` holds one sub-folder per action (``blink``, ``open_mouth``..., or the release's names) of driving
videos, uncropped or cropped; ``--sources`` holds face images or videos (the most frontal face of a video is
used). Fakes animate every source with every driving video, or (``--pairing one_per_action``, as the paper) with
one driving video per action, or (``--pairing manifest``) with the driving videos it has in an earlier set's
manifest, so that a set made by another animator shows the same people doing the same actions; real clips are
the face crops of the driving videos, or (``--real_clips sources``, as the paper) of the source videos. The
manifest names each fake's generator (``method``: ``FOMM``, ``TPSMM``, ``keypoint_warp``).

Jobs are sorted by stable ids; the main process decides which are finished and tells the others, and each
process takes a contiguous share, so every job runs exactly once. Each video is written atomically and then
its record (``OUTPUT_DIR/.generation/records``), so an interrupted run is resumed by running the same command
again. Fakes that fail a check (``--checks``; by default a face in at least 90% of the frames) are recorded as
rejected, kept under ``OUTPUT_DIR/.generation/rejected`` and left out of the manifest. Inputs with no usable face
are recorded as errors with the reason, and the run goes on.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import torch
from accelerate.logging import get_logger
from tqdm.auto import tqdm

from dataset_script.console import add_old_progress_switch, add_old_spelling, configure_logging
from dataset_script.faces import FaceDetector, FaceError
from dataset_script.files import write_text_atomically
from dataset_script.frames import VideoReadError
from dataset_script.probe import VideoProbeError
from dataset_script.release import ManifestRow, write_manifest
from generation.backends import BACKENDS, BackendOptions, backend_class, backends_help, create_backend
from generation.face_tracks import FaceTrack, VideoTracks, source_track
from generation.filters import CheckContext, run_checks, validate_checks
from generation.fomm import best_reference_frame
from generation.jobs import (
    BOOKKEEPING,
    DONE,
    ERROR,
    PAIRINGS,
    REAL_CLIPS,
    REJECTED,
    SOURCE_REAL_JOBS,
    Job,
    JobPlanError,
    JobRecords,
    plan_jobs,
    shard,
)
from generation.video import write_video

logger = get_logger("generation.generate")  # not __name__: run as a script, that is __main__
"""Speaks in the main process only (accelerate's logger), so a multi-process run reports once."""

INPUT_ERRORS = (FaceError, VideoReadError, VideoProbeError)
"""What bad input raises; such a job is recorded as an error and the run goes on."""


@dataclass
class GenerationConfig:
    backend: str = field(metadata={"choices": sorted(BACKENDS), "help": backends_help()})
    sources: Path = field(metadata={"help": "folder of source face images or videos"})
    driving: Path = field(metadata={"help": "folder with one sub-folder of driving videos per action"})
    output_dir: Path = field(metadata={"help": "output folder: the release layout plus manifest.csv"})
    checkpoint: Path | None = field(default=None, metadata={
        "help": "fomm: vox-cpk.pth.tar, tpsmm: vox.pth.tar, or their .safetensors conversions"})  # fmt: skip
    pairing: str = field(default="all", metadata={"choices": PAIRINGS,
        "help": "all: every source with every driving video; one_per_action: each source with one driving video "
                "of each action (the paper: many sources, a few driving videos per action); manifest: the pairs of "
                "--pairing_manifest"})  # fmt: skip
    pairing_manifest: Path | None = field(default=None, metadata={
        "help": "with --pairing manifest: the manifest.csv (or its folder) of an earlier generated set, whose "
                "source and driving pairs to animate again"})  # fmt: skip
    real_clips: str = field(default="driving", metadata={"choices": REAL_CLIPS,
        "help": "real clips from the face crops of the driving videos, of the source videos (the paper's real clips "
                "are the VoxCeleb videos of its sources), or none"})  # fmt: skip
    identity_pattern: str | None = field(default=None, metadata={
        "help": "regular expression whose first group is a file's identity (default: the file name), e.g. "
                "'^(id\\d+)' for VoxCeleb names"})  # fmt: skip
    checks: list[str] = field(default_factory=lambda: ["face_presence"],
                              metadata={"help": "checks every fake must pass ('none' for none)"})  # fmt: skip
    min_face_fraction: float = field(default=0.9, metadata={"help": "face_presence: share of frames with a face"})
    best_frame: bool = field(default=False, metadata={"help": "measure motion from the driving frame whose "
                                                               "landmarks are closest to the source's"})  # fmt: skip
    max_frames: int = field(default=0, metadata={"help": "use only the first N driving frames (0: all)"})
    animation_mode: Literal["relative", "standard", "avd"] | None = field(default=None, metadata={
        "help": "tpsmm: relative (the default: the driving motion relative to its first frame, scaled to the "
                "source's face), standard (the driving keypoints as they are) or avd (the AVD network's, on "
                "checkpoints that have it), as TPSMM's demo --mode"})  # fmt: skip
    precision: Literal["fp32", "bf16", "fp16"] = field(default="bf16", metadata={
        "help": "the animator's heavy layers, fomm's and tpsmm's, on GPUs and in bf16 on CPUs that compute in it "
                "natively (AVX-512 BF16 or AMX; others run fp32); each job's record says what it ran in"})  # fmt: skip
    retry_errors: bool = field(default=False, metadata={"help": "run again the jobs recorded as errors"})
    cpu: bool = field(default=False, metadata={"help": "run on the CPU even where there are GPUs"})
    no_progress: bool = field(default=False, metadata={"help": "no progress bars (by default one per process)"})

    @property
    def check_names(self) -> list[str]:
        return [] if self.checks in ([], ["none"]) else list(self.checks)

    def settings(self) -> dict:
        """What decides a job's output: a rerun into the same folder must use the same."""
        checkpoint = None
        if self.checkpoint is not None and self.checkpoint.is_file():
            checkpoint = f"{self.checkpoint.name}:{self.checkpoint.stat().st_size}"
        pairing = self.pairing if self.pairing_manifest is None else f"{self.pairing}:{self.pairing_manifest}"
        return {"backend": self.backend, "checkpoint": checkpoint, "checks": self.check_names,
                "pairing": pairing, "real_clips": self.real_clips, "identity_pattern": self.identity_pattern,
                "min_face_fraction": self.min_face_fraction, "best_frame": self.best_frame,
                "max_frames": self.max_frames, "precision": self.precision,
                # only when given, so that folders generated before the option existed still resume
                **({"animation_mode": self.animation_mode} if self.animation_mode else {})}  # fmt: skip


def check_settings(config: GenerationConfig) -> None:
    """Record the run's settings on the first run; refuse a rerun into the same folder with others."""
    path = config.output_dir / BOOKKEEPING / "settings.json"
    wanted = config.settings()
    if path.exists():
        earlier = json.loads(path.read_text())
        changed = {key: (earlier.get(key), value) for key, value in wanted.items() if earlier.get(key) != value}
        if changed:
            described = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise JobPlanError(f"{config.output_dir} was generated with other settings ({described}); rerun with the "
                               f"same settings to resume, or choose a new --output_dir")  # fmt: skip
    else:
        write_text_atomically(path, json.dumps(wanted, indent=1, sort_keys=True))


class Worker:
    """Runs jobs in one process: MTCNN, the backend and the checks, and a cache of source faces."""

    def __init__(self, config: GenerationConfig, device: torch.device, process_index: int):
        self.config, self.process_index = config, process_index
        self.records = JobRecords(config.output_dir)
        self.detector = FaceDetector(device=device)
        self.backend = create_backend(
            config.backend, BackendOptions(config.checkpoint, device, config.precision, config.animation_mode)
        )
        self.videos = VideoTracks(
            config.output_dir / BOOKKEEPING / "faces", self.detector, max_frames=config.max_frames
        )
        self.check_context = CheckContext(self.detector, config.min_face_fraction)
        self._sources: dict[str, FaceTrack | Exception] = {}
        self.log = config.output_dir / BOOKKEEPING / "logs" / f"process-{process_index}.jsonl"
        self.log.parent.mkdir(parents=True, exist_ok=True)

    def source(self, name: str) -> FaceTrack:
        if name not in self._sources:
            try:
                self._sources[name] = source_track(self.config.sources / name, self.detector)
            except INPUT_ERRORS as error:
                self._sources[name] = error
        found = self._sources[name]
        if isinstance(found, Exception):
            raise found
        return found

    def run(self, job: Job) -> dict:
        started = time.perf_counter()
        details: dict = {"process": self.process_index, "backend": self.config.backend,
                         "precision": self.backend.precision}  # fmt: skip
        try:
            if job.driving is not None:
                driving = self.videos.get(self.config.driving / job.driving, str(Path(job.driving).with_suffix("")))
            else:  # a source video's real clip
                driving = self.videos.get(self.config.sources / job.source,
                                          f"{SOURCE_REAL_JOBS}/{Path(job.source).stem}", role="source")  # fmt: skip
            details.update(frames=len(driving.frames), fps=driving.fps)
            if job.is_real:
                frames, status = driving.frames.permute(0, 2, 3, 1).numpy(), DONE
                target = self.config.output_dir / job.output
            else:
                source = self.source(job.source)
                reference = 0
                if self.config.best_frame:
                    landmarks = torch.from_numpy(driving.filled_landmarks())
                    reference = best_reference_frame(torch.from_numpy(source.landmarks), landmarks)
                frames = self.backend.animate(source, driving, reference)
                checks = run_checks(self.config.check_names, torch.from_numpy(frames).permute(0, 3, 1, 2),
                                    self.check_context)  # fmt: skip
                details.update(reference_frame=reference, checks={name: asdict(r) for name, r in checks.items()})
                failed = [f"{name}: {result.reason}" for name, result in checks.items() if not result.passed]
                status = REJECTED if failed else DONE
                target = self.config.output_dir / (job.output if not failed else f"{BOOKKEEPING}/rejected/{job.output}")
                if failed:
                    details["reason"] = "; ".join(failed)
            write_video(frames, target, driving.fps)
            details.update(bytes=target.stat().st_size, path=target.relative_to(self.config.output_dir).as_posix())
        except INPUT_ERRORS as error:
            status, details["reason"] = ERROR, str(error)
        details["seconds"] = round(time.perf_counter() - started, 3)
        record = self.records.write(job, status, **details)
        with self.log.open("a") as log:
            log.write(json.dumps({"job_id": job.job_id, "status": status, "time": time.time()}) + "\n")
        return record


@dataclass
class Summary:
    jobs: int
    done: int
    rejected: int
    errors: int
    manifest: Path
    report: Path

    def __str__(self) -> str:
        return (f"{self.jobs} jobs: {self.done} done, {self.rejected} rejected by checks, {self.errors} errors "
                f"(each with its reason in {self.report.name}); manifest: {self.manifest}")  # fmt: skip


def finish(config: GenerationConfig, jobs: list[Job]) -> Summary:
    """Write the manifest of the finished videos and a report of every job (status and reason)."""
    records = JobRecords(config.output_dir)
    method = backend_class(config.backend).method
    rows, report_rows, counts = [], [], {DONE: 0, REJECTED: 0, ERROR: 0}
    for job in jobs:
        record = records.read(job) or {"status": "not run", "reason": "no record; run the command again"}
        counts[record["status"]] = counts.get(record["status"], 0) + 1
        report_rows.append({"job_id": job.job_id, "status": record["status"], "output": job.output,
                            "reason": record.get("reason", "")})  # fmt: skip
        if record["status"] == DONE:
            rows.append(ManifestRow(job.output, job.label, job.action, job.source_id, job.driving_id, 0,
                                    method="" if job.is_real else method))  # fmt: skip
    manifest = write_manifest(config.output_dir, rows)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["job_id", "status", "output", "reason"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(report_rows)
    report = write_text_atomically(config.output_dir / "generation_report.csv", text.getvalue())
    for leftover in config.output_dir.rglob(".*.partial*"):  # from processes killed mid-write; their jobs were redone
        leftover.unlink(missing_ok=True)
    return Summary(len(jobs), counts[DONE], counts[REJECTED], counts[ERROR], manifest, report)


def generate(config: GenerationConfig) -> Summary | None:
    """Run this process's share of the unfinished jobs; the main process returns the summary, others None."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState(cpu=config.cpu or not torch.cuda.is_available())
    plan: tuple | JobPlanError | ValueError
    if state.is_main_process:
        try:
            backend_class(config.backend).check_options(
                BackendOptions(config.checkpoint, animation_mode=config.animation_mode)
            )
            validate_checks(config.check_names)
            jobs = plan_jobs(config.sources, config.driving, config.pairing, config.real_clips, config.identity_pattern,
                             config.pairing_manifest)  # fmt: skip
            config.output_dir.mkdir(parents=True, exist_ok=True)
            check_settings(config)
            records = JobRecords(config.output_dir)
            plan = (jobs, [job for job in jobs if not records.is_finished(job, config.retry_errors)])
        except (JobPlanError, ValueError, FileNotFoundError) as error:
            plan = error
    if state.num_processes > 1:
        plan = broadcast_object_list([plan if state.is_main_process else None])[0]
    if isinstance(plan, Exception):
        raise plan
    jobs, pending = plan
    mine = shard(pending, state.process_index, state.num_processes)
    if mine:
        worker = Worker(config, state.device, state.process_index)
        progress = tqdm(mine, desc=f"process {state.process_index}", unit="job", position=state.process_index,
                        disable=config.no_progress)  # fmt: skip
        for job in progress:
            worker.run(job)
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    summary = finish(config, jobs)
    logger.info("%d of %d jobs were finished before this run. %s", len(jobs) - len(pending), len(jobs), summary)
    return summary


def parse_args(argv: list[str] | None = None) -> GenerationConfig:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(GenerationConfig, description=__doc__.split("\n\n")[0])
    add_old_spelling(parser, "--out", "--output_dir")
    add_old_progress_switch(parser)
    (config,) = parser.parse_args_into_dataclasses(args=argv)
    return config


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    configure_logging()
    try:
        generate(config)
    except (JobPlanError, ValueError, FileNotFoundError) as error:
        logger.error("%s", error)  # every process has the error; the main one says it
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

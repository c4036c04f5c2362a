"""Robustness, beyond the paper: one detector scored on the test split under each perturbation of
DeeperForensics-1.0's protocol and rescaling (``dataset_script.perturbations``), at each of five levels.

    python -m training.experiments robustness --dataset_name D --model_dir demo_output/detector --scale quick

Without ``--model_dir`` it trains the experiment's cell first (reusing one that another experiment trained). Every
perturbed test goes through ``training.evaluation.predict``, the evaluation of every other result: only the frames
it reads differ (``PerturbedFrameSampler``). Level 0, the clean test split, is scored once and heads every row.
Writes ``robustness.md`` (video accuracy and AUC per perturbation and level, and what each level is),
``robustness.png`` (a curve per perturbation) and ``robustness.json``; each score is kept as it is made in
``robustness/scores.json``, so an interrupted run resumes, and ``robustness/videos/`` holds the re-encoded clips.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from datasets import Dataset, Video
from tqdm.auto import tqdm

from dataset_script.files import write_bytes_atomically, write_text_atomically
from dataset_script.frames import FrameSampler, VideoFrames, VideoSource, normalise_frames
from dataset_script.perturbations import LEVELS, PERTURBATIONS, Perturbation, compress_at_levels
from training.experiments.cells import Cell, RunSettings, run_cell
from training.records import package_versions, save_figure_atomically
from training.tables import markdown_table

logger = logging.getLogger(__name__)

NAME = "robustness"
TITLE = "Robustness: video accuracy and AUC under DeeperForensics-1.0's perturbations and rescaling"
CLEAN = "clean"
"""The key of the unperturbed test's score: level 0 of every perturbation."""
FRAMES_PER_VIDEO = {"smoke": 2, "quick": 8, "paper": 32}
"""Evenly spaced frames scored per video at each scale: the paper scale's 32 is the protocol of every other test;
the quick scale scores the split 46 times (9 perturbations x 5 levels + 1), so a quarter of that keeps it to
minutes on 2 cores."""
METRICS = {"video_accuracy": "video accuracy %", "video_auc": "video AUC %"}


@dataclass
class RobustnessConfig:
    dataset_name: str
    config: str
    """The configuration whose test split is perturbed (and that a trained cell trains on)."""
    split_protocol: str
    output_dir: Path
    model_dir: Path | None = None
    """An already trained detector folder; None trains ``model`` as a cell of this experiment."""
    model: str = "resnet10t"
    scale: str = "quick"
    seed: int = 42
    perturbations: tuple[str, ...] = tuple(PERTURBATIONS)
    frames_per_video: int | None = None
    """Default: ``FRAMES_PER_VIDEO`` of the scale."""
    frame_cache: Path | None = None
    """Decoded frames for training the cell (the perturbed test reads the videos themselves)."""
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")
    progress: bool = True

    def __post_init__(self):
        unknown = [name for name in self.perturbations if name not in PERTURBATIONS]
        if unknown:
            raise ValueError(f"unknown perturbations {unknown}; use some of {', '.join(PERTURBATIONS)}")
        if self.config.startswith("mixed"):
            raise ValueError("robustness tests one quality: give a configuration such as raw, not mixed")
        self.frames_per_video = self.frames_per_video or FRAMES_PER_VIDEO[self.scale]

    @property
    def work_dir(self) -> Path:
        return self.output_dir / NAME


def video_key(source: VideoSource) -> str:
    """A clip's identity, the same whichever split or run holds it: the hash of its bytes (a built repo's rows carry
    them), else of its path."""
    if isinstance(source, dict):
        source = source.get("bytes") or source.get("path")
    data = source if isinstance(source, bytes) else str(Path(source).resolve()).encode()
    return hashlib.sha1(data).hexdigest()[:20]


@dataclass
class PerturbedFrameSampler(FrameSampler):
    """Evaluation's frame sampler with one perturbation at one level applied to the decoded frames before they are
    fitted to the model's input, as the perturbation would reach a detector in a clip; video compression reads the
    clip's re-encoded copy instead. Each clip's random draws come from the seed, the perturbation, the level and the
    clip itself, so a score does not depend on the order or batching of the split. Frames are decoded every time:
    a FrameCache holds frames already fitted to the input, past where a perturbation belongs."""

    perturbation: Perturbation | None = None
    level: int = 0
    seed: int = 0
    reencoded: dict[str, dict[int, Path]] = field(default_factory=dict)
    """Video compression: each clip's (by ``video_key``) re-encoded file per level."""

    def _generator(self, key: str) -> torch.Generator:
        text = f"{self.seed}|{self.perturbation.name}|{self.level}|{key}".encode()
        return torch.Generator().manual_seed(int.from_bytes(hashlib.sha1(text).digest()[:8], "little") >> 1)

    def sample(self, source: VideoSource) -> torch.Tensor:
        key = video_key(source)
        perturbation = self.perturbation if self.level else None
        if perturbation is not None and perturbation.on_video:
            source = self.reencoded[key][self.level]
        video = VideoFrames(source, self.decoder)
        frames = video.read(self._indices(video.num_frames, video.name))
        if perturbation is not None and not perturbation.on_video:
            frames = perturbation(frames, self.level, self._generator(key))
        return normalise_frames(frames, self.pretrained_cfg)


def reencode_split(split: Dataset, folder: Path, progress: bool) -> dict[str, dict[int, Path]]:
    """Every clip of ``split`` re-encoded at each video-compression level, by ``video_key``. The clips are written
    out first (ffmpeg reads files; a built repo's rows hold bytes), named by key, and kept for a rerun."""
    sources = {}
    for row in tqdm(split.cast_column("video", Video(decode=False)).select_columns(["video"]), desc="writing clips",
                    unit="video", disable=not progress):  # fmt: skip
        video = row["video"]
        key = video_key(video)
        path = folder / "sources" / f"{key}.mp4"
        if video.get("bytes") is None:
            path = Path(video["path"])  # already a file: encode from it
        elif not path.exists():  # atomic: a clip cut short by a crash would be re-encoded as it is on a rerun
            write_bytes_atomically(path, video["bytes"])
        sources[key] = path
    outputs = compress_at_levels(list(sources.values()), folder, progress=progress)
    return {key: outputs[path] for key, path in sources.items()}


def _score_key(perturbation: str, level: int) -> str:
    return CLEAN if level == 0 else f"{perturbation}:{level}"


def _detector_stamp(detector: Path) -> list:
    """What changes when a detector folder is trained again: its files' names, sizes and times."""
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in detector.iterdir() if p.is_file())


def score_perturbations(cfg: RobustnessConfig, detector: Path) -> dict[str, dict]:
    """Metrics of the clean test split and of each perturbation and level, by ``_score_key``. Scores kept in
    ``scores.json`` for the same detector, data and settings are not made again."""
    from modeling import load_detector
    from training.data import load_split, split_name
    from training.evaluation import predict

    settings = {"detector": str(detector.resolve()), "stamp": _detector_stamp(detector), "dataset": cfg.dataset_name,
                "config": cfg.config, "split_protocol": cfg.split_protocol, "frames_per_video": cfg.frames_per_video,
                "seed": cfg.seed}  # fmt: skip
    store = cfg.work_dir / "scores.json"
    saved = json.loads(store.read_text()) if store.exists() else {}
    scores = saved.get("scores", {}) if saved.get("settings") == json.loads(json.dumps(settings)) else {}
    wanted = [(CLEAN, 0)] + [(name, level) for name in cfg.perturbations for level in LEVELS]
    todo = [(name, level) for name, level in wanted if _score_key(name, level) not in scores]
    if not todo:
        return scores
    model, info = load_detector(str(detector))
    pretrained_cfg = info.pretrained_cfg(model)
    split = load_split(cfg.dataset_name, cfg.config, split_name("test", cfg.split_protocol))
    reencoded = {}
    if any(level and PERTURBATIONS[name].on_video for name, level in todo):
        reencoded = reencode_split(split, cfg.work_dir / "videos", cfg.progress)
    for name, level in tqdm(todo, desc=NAME, unit="test", disable=not cfg.progress):
        sampler = PerturbedFrameSampler(pretrained_cfg, cfg.frames_per_video, perturbation=PERTURBATIONS.get(name),
                                        level=level, seed=cfg.seed, reencoded=reencoded)  # fmt: skip
        predictions = predict(model, split, pretrained_cfg, device=cfg.device, progress=False, sampler=sampler)
        scores[_score_key(name, level)] = predictions.metrics()
        write_text_atomically(store, json.dumps({"settings": settings, "scores": scores}, indent=2))
        logger.info("%s level %d: video accuracy %.4f", name, level, scores[_score_key(name, level)]["video_accuracy"])
    return scores


def pivot(scores: dict[str, dict], perturbations, metric: str) -> dict[str, dict[str, float | None]]:
    """Rows per perturbation, a column per level (0 the clean test): ``metric`` in %, None where not scored."""

    def percent(key: str) -> float | None:
        value = scores.get(key, {}).get(metric)
        return None if value is None else round(100 * value, 2)

    return {name: {str(level): percent(_score_key(name, level)) for level in (0, *LEVELS)} for name in perturbations}


def level_table(perturbations) -> list[str]:
    rows = {name: {"what": PERTURBATIONS[name].description, "unit": PERTURBATIONS[name].unit,
                   **{str(level): f"{PERTURBATIONS[name].parameter(level):g}" for level in LEVELS}}
            for name in perturbations}  # fmt: skip
    return markdown_table(rows, "perturbation")


def markdown(cfg: RobustnessConfig, detector: Path, scores: dict[str, dict]) -> str:
    lines = [f"# {TITLE}", "", f"Detector `{detector}`, test split of {cfg.config}, {cfg.frames_per_video} frames per "
             "video; level 0 is the clean test split.", ""]  # fmt: skip
    for metric, heading in METRICS.items():
        lines += [f"{heading} by level:", "", *markdown_table(pivot(scores, cfg.perturbations, metric), "perturbation"),
                  ""]  # fmt: skip
    lines += ["What each level is (DeeperForensics-1.0's levels; JPEG, RS and ZOOM ours: see "
              "dataset_script/perturbations.py):", "", *level_table(cfg.perturbations)]  # fmt: skip
    return "\n".join(lines) + "\n"


def draw(cfg: RobustnessConfig, scores: dict[str, dict]):
    """A panel per metric, a curve per perturbation over levels 0 to 5 (all start at the clean test's score)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(METRICS), figsize=(10, 4), sharey=True)
    for axis, (metric, heading) in zip(axes, METRICS.items(), strict=True):
        for name, values in pivot(scores, cfg.perturbations, metric).items():
            placed = [(int(level), value) for level, value in values.items() if value is not None]
            axis.plot([x for x, _ in placed], [y for _, y in placed], marker="o", label=name)
        axis.set_xticks([0, *LEVELS])
        axis.set_xlabel("level (0: clean)")
        axis.set_ylabel(heading)
        axis.set_ylim(0, 100)
        axis.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle(TITLE, fontsize=9)
    figure.tight_layout()
    return figure


def run_robustness(cfg: RobustnessConfig) -> dict:
    """The detector (``cfg.model_dir``, or the cell trained here) scored under every perturbation and level; the
    table, plot and record written to ``cfg.output_dir``. Returns the record."""
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    cells = []
    detector = cfg.model_dir
    if detector is None:
        cell = Cell(cfg.model, cfg.config, (cfg.config,))
        logger.info("[%s] training %s", NAME, cell.name)
        settings = RunSettings(cfg.scale, cfg.dataset_name, cfg.split_protocol, cfg.seed, cfg.output_dir,
                               cfg.frame_cache)  # fmt: skip
        result = run_cell(cell, settings)
        cells.append({**asdict(cell), "name": cell.name, "test": result["test"]})
        detector = settings.cell_dir(cell)
    scores = score_perturbations(cfg, detector)
    record = {
        "experiment": NAME, "title": TITLE, "scale": cfg.scale, "dataset": cfg.dataset_name,
        "split_protocol": cfg.split_protocol, "seed": cfg.seed, "versions": package_versions(),
        "detector": str(detector), "test_config": cfg.config, "frames_per_video": cfg.frames_per_video,
        "perturbations": {name: {"description": PERTURBATIONS[name].description, "unit": PERTURBATIONS[name].unit,
                                 "parameters": PERTURBATIONS[name].parameters} for name in cfg.perturbations},
        "scores": scores, "cells": cells,
    }  # fmt: skip
    write_text_atomically(cfg.output_dir / f"{NAME}.md", markdown(cfg, detector, scores))
    write_text_atomically(cfg.output_dir / f"{NAME}.json", json.dumps(record, indent=2, default=str))
    save_figure_atomically(draw(cfg, scores), cfg.output_dir / f"{NAME}.png")
    return record


def trained_on(detector: Path) -> tuple[str | None, str | None]:
    """The configuration and split protocol a detector folder was trained on, from the ``results.json`` that
    ``train.py`` writes beside it; (None, None) where it has none."""
    results = detector / "results.json"
    if not results.exists():
        return None, None
    data = json.loads(results.read_text()).get("data", {})
    config = data.get("dataset_config_name")
    # a mixed-quality detector has no one quality to be tested on: the caller picks one
    return (None if config is None or config.startswith("mixed") else config), data.get("split_protocol")

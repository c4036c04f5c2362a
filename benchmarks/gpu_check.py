"""The GPU check, prepared to run in one go (under 8 minutes on one H200): FOMM and TPSMM batched in bf16 against
their per-frame fp32 loops, a ResNet50 epoch through train.py against the bare loop, and generate.py --backend fomm
end to end.

On the device machine, from the repository root. First, here: ``bash benchmarks/gpu_wheels.sh`` (fills ``.whl/``
with the wheels of our dependencies that the machine's image lacks, and ffmpeg/ffprobe). Then the device tool's call:

    run(carry=[".whl"], timeout_s=600, command="python3 -m pip install -q --no-index --no-deps --no-compile
        --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit;
        PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 python3 -m benchmarks.gpu_check
        --out_json $OUT/gpu_check.json 2>&1 | tee $OUT/gpu_check.log")

(the command is one line; it is wrapped here). Here, on the CPU, at tiny sizes, to see that it runs end to end:

    python -m benchmarks.gpu_check --cpu_smoke true --out_json /tmp/gpu_check.json

What it prints, each figure with its target and PASS or MISS:

* FOMM vox-256: ``animate`` batched, bf16 autocast, channels_last against the demo's per-frame fp32 loop, same
  random weights with calibrated batch-norm statistics (the official checkpoint cannot be fetched): frames per
  second ratio (target >= 10) and PSNR of the bf16 frames against fp32 (target >= 40 dB).
* TPSMM vox-256: the same comparison for the second animator (``benchmarks.tpsmm_animation``), same targets.
* Training: a ResNet50 epoch of the default mini through ``training/train.py`` (paper recipe, 8 videos x 8 frames
  a step, --bf16, --channels_last, --frame_cache_dir, filled by an epoch before), images per second of its steps
  against the bare forward/backward/step loop on the GPU (target >= 0.85), and the GPU's utilisation meanwhile.
* Generation: ``generate.py --backend fomm`` on a handful of jobs (48-frame driving videos), random calibrated
  weights: seconds per clip, end to end and per FOMM job.

Without a CUDA device each stage stops with a message saying so, unless --cpu_smoke (then the figures are not
measurements: sizes are tiny and the targets are a GPU's).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("benchmarks.gpu_check")


@dataclass
class GpuCheckConfig:
    out_json: Path = field(metadata={"help": "where the JSON summary of every figure is written"})
    cpu_smoke: bool = field(default=False, metadata={"help": "run every stage on the CPU at tiny sizes (no figures)"})
    dataset: Path | None = field(
        default=None,
        metadata={"help": "a built dataset repo to train on (default: generate the mini and build its raw config)"},
    )
    mini_size: str = field(default="default", metadata={"help": "size of the generated mini (smoke under --cpu_smoke)"})
    fomm_frames: int = field(default=64, metadata={"help": "driving frames in the FOMM and TPSMM comparisons"})
    fomm_batch: int = field(default=16, metadata={"help": "driving frames per pass, batched"})
    train_workers: int = field(default=8, metadata={"help": "DataLoader workers of the train.py run"})
    generation_actions: str = field(default="blink,yaw,smile", metadata={"help": "one driving video each"})
    generation_sources: int = field(default=2, metadata={"help": "source images, each animated by every driver"})
    generation_frames: int = field(default=48, metadata={"help": "frames per driving video"})
    stages: str = field(default="fomm,tpsmm,training,generation", metadata={"help": "comma-separated subset"})

    def __post_init__(self):
        if self.cpu_smoke:  # tiny: the point is to run every line, not to measure
            self.mini_size, self.fomm_frames, self.fomm_batch, self.train_workers = "smoke", 2, 2, 1
            self.generation_actions, self.generation_sources, self.generation_frames = "yaw", 1, 6
        unknown = set(self.stages.split(",")) - set(STAGES)
        if unknown:
            raise ValueError(f"--stages: unknown {sorted(unknown)}; choose from {', '.join(STAGES)}")


class Report:
    """Figures with their targets, printed as they come and kept for the JSON summary."""

    def __init__(self, smoke: bool):
        self.smoke, self.stages = smoke, {}

    def figure(self, stage: str, name: str, value: float, target: float | None = None, unit: str = "",
               higher_is_better: bool = True) -> None:  # fmt: skip
        verdict = None
        if target is not None:
            verdict = "PASS" if (value >= target if higher_is_better else value <= target) else "MISS"
        entry = {"value": value, "target": target, "unit": unit, "verdict": verdict}
        self.stages.setdefault(stage, {"status": "ran", "figures": {}})["figures"][name] = entry
        shown = f"  {name}: {value:.3g}{unit}"
        if target is not None:
            shown += f" (target {'>=' if higher_is_better else '<='} {target:g}{unit}): {verdict}"
        print(shown + (" [cpu smoke: not a measurement]" if self.smoke and target is not None else ""), flush=True)

    def note(self, stage: str, key: str, value) -> None:
        self.stages.setdefault(stage, {"status": "ran", "figures": {}})[key] = value

    def stopped(self, stage: str, status: str, message: str) -> None:
        self.stages[stage] = {"status": status, "message": message, "figures": {}}
        print(f"  {status.upper()}: {message}", flush=True)


def preflight() -> dict[str, str]:
    """What the stages need beyond torch, each with its version or why it is missing: printed first, so a run on a
    machine without some of them says at once which stage will fail and why."""
    found = {}
    for module in ("datasets", "pyarrow", "transformers", "accelerate", "timm", "av", "torchcodec", "facenet_pytorch"):
        try:
            found[module] = getattr(__import__(module), "__version__", "present")
        except Exception as error:  # torchcodec raises OSError-like errors when it finds no FFmpeg libraries
            found[module] = f"MISSING ({type(error).__name__}: {str(error).splitlines()[0][:160]})"
    for tool in ("ffmpeg", "ffprobe", "nvidia-smi"):
        found[tool] = shutil.which(tool) or "MISSING"
    for name, value in found.items():
        print(f"  {name}: {value}")
    return found


def ensure_video_tools(work: Path) -> None:
    """ffmpeg and ffprobe on PATH: as they are, or unpacked from ``.whl/bin/ffmpeg-ffprobe.tar.xz`` (what
    gpu_wheels.sh leaves there)."""
    packed = ROOT / ".whl" / "bin" / "ffmpeg-ffprobe.tar.xz"
    missing = [tool for tool in ("ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing and packed.is_file():
        folder = work / "bin"
        with tarfile.open(packed, "r:xz") as archive:
            archive.extractall(folder, members=[archive.getmember(tool) for tool in missing], filter="data")
        for tool in missing:
            (folder / tool).chmod(0o755)
        os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ['PATH']}"
        logger.warning("unpacked %s from %s into %s", ", ".join(missing), packed, folder)


class UtilisationSampler:
    """The GPU's utilisation (percent of time a kernel ran) sampled every ``every`` s in a thread: NVML through
    torch where it has pynvml, else nvidia-smi."""

    def __init__(self, every: float = 0.2):
        self.every, self.samples, self._stop = every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def read() -> float | None:
        try:
            return float(torch.cuda.utilization())
        except Exception:  # no pynvml, or NVML refused: ask nvidia-smi
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=5, check=True).stdout  # fmt: skip
                return float(out.split()[0])
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return None

    def _run(self):
        while not self._stop.is_set():
            value = self.read()
            if value is not None:
                self.samples.append((time.perf_counter(), value))
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def mean(self, start: float, end: float) -> float | None:
        inside = [value for moment, value in self.samples if start <= moment <= end]
        return sum(inside) / len(inside) if inside else None


def animation_stage(model: str) -> Callable:
    """The stage that compares one animator (``fomm`` or ``tpsmm``) batched in bf16 with its per-frame fp32 loop,
    through that animator's own benchmark (``benchmarks.<model>_animation``)."""

    def stage(config: GpuCheckConfig, device: torch.device, report: Report, work: Path) -> None:
        import importlib

        from benchmarks.fomm_animation import psnr

        benchmark = importlib.import_module(f"benchmarks.{model}_animation")
        options = benchmark.AnimationOptions(batch_size=config.fomm_batch, autocast_dtype=torch.bfloat16,
                                             channels_last=True)  # fmt: skip
        result = benchmark.compare(device, config.fomm_frames, options)
        print(f"  {config.fomm_frames} driving frames at 256x256: per-frame loop fp32 "
              f"{result['fps']['per-frame loop']:.1f} fps, batched bf16 channels_last (batch {config.fomm_batch}) "
              f"{result['fps']['ours']:.1f} fps", flush=True)  # fmt: skip
        report.note(model, "fps", result["fps"])
        report.figure(model, "fps ratio, batched bf16 / per-frame fp32", result["ratio"], 10, "x")
        report.figure(model, "PSNR bf16 vs fp32", psnr(result["ours"], result["ours_fp32"]), 40, " dB")
        difference = float((result["ours_fp32"] - result["looped"]).abs().max())
        report.note(model, "fp32 max difference to the loop", difference)

    return stage


def make_dataset(config: GpuCheckConfig, work: Path, report: Report) -> Path:
    """The mini generated by its command (``python -m generation.mini``) and its raw config built."""
    from dataset_script.build import BuildConfig, build

    started = time.perf_counter()
    command = [sys.executable, "-m", "generation.mini", "--output_dir", str(work / "mini"), "--size", config.mini_size,
               "--seed", "0", "--no_progress"]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, env=subprocess_env())
    generated = time.perf_counter()
    out = build(BuildConfig(source=work / "mini", output_dir=work / "deepfake_mnist_plus", qualities=("raw",),
                            progress=False))  # fmt: skip
    report.note("training", "mini", {"size": config.mini_size, "generate_s": round(generated - started, 1),
                                     "build_s": round(time.perf_counter() - generated, 1)})  # fmt: skip
    return out


@contextmanager
def step_timer_in_train_py(skip: int):
    """train.py's Trainer with a callback timing its steps after the first ``skip`` (start-up and the DataLoader
    workers' spawn left out), as benchmarks.training_throughput times its own Trainer."""
    import training.train as train_module
    from benchmarks.training_throughput import StepTimer

    class CountingStepTimer(StepTimer):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            super().on_step_end(args, state, control, **kwargs)
            self.steps = max(0, state.global_step - self.skip)  # steps inside [started, ended]

    timer, plain = CountingStepTimer(skip), train_module.Trainer

    class TimedTrainer(plain):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.add_callback(timer)

    train_module.Trainer = TimedTrainer
    try:
        yield timer
    finally:
        train_module.Trainer = plain


def training_stage(config: GpuCheckConfig, device: torch.device, report: Report, work: Path) -> None:
    from benchmarks.training_throughput import bare_frames_per_second
    from training.train import main as train_main

    dataset = config.dataset or make_dataset(config, work, report)
    videos, frames, size = (2, 2, 64) if config.cpu_smoke else (8, 8, 224)
    argv = ["--preset", "paper", "--model_name_or_path", "resnet50", "--pretrained", "random",
            "--dataset_name", str(dataset), "--num_train_epochs", "1", "--per_device_train_batch_size", str(videos),
            "--frames_per_video", str(frames), "--input_size", str(size), "--eval_strategy", "no",
            "--save_strategy", "no", "--load_best_model_at_end", "false", "--test_config_names", "none",
            "--frame_cache_dir", str(work / "frame_cache"), "--channels_last", "true",
            "--dataloader_num_workers", str(config.train_workers), "--report_to", "none", "--disable_tqdm", "true",
            "--logging_steps", "1000"]  # fmt: skip
    smoke = ["--use_cpu", "true", "--max_steps", "4", "--eval_frames_per_video", "2"]
    argv += smoke if config.cpu_smoke else ["--bf16", "true"]
    skip = 1 if config.cpu_smoke else 5
    # the first epoch fills the frame cache (as a run's first epoch does); the second is the one measured
    with step_timer_in_train_py(skip):
        train_main([*argv, "--output_dir", str(work / "resnet50-fill")])
    with step_timer_in_train_py(skip) as timer, UtilisationSampler() as sampler:
        train_main([*argv, "--output_dir", str(work / "resnet50")])
    if timer.started is None or timer.steps < 1:
        report.stopped("training", "failed", f"the epoch had no more than {skip} steps to time; use a larger mini")
        return
    # the Trainer's own samples per second include its start-up; the timer's figures are the steps alone
    timed_steps = timer.steps
    report.note("training", "train_py_metrics", json.loads((work / "resnet50" / "results.json").read_text())["train"])
    trainer_ips = timed_steps * videos * frames / (timer.ended - timer.started)
    bare_ips = bare_frames_per_second("resnet50", size, 1.0, videos, frames, max(timed_steps, 3), skip=3,
                                      device=device.type, channels_last=True,
                                      autocast_dtype=None if config.cpu_smoke else torch.bfloat16)  # fmt: skip
    print(f"  ResNet50 {size}px, {videos} videos x {frames} frames a step, frame cache, "
          f"{'fp32 (cpu smoke)' if config.cpu_smoke else 'bf16'}, channels_last: train.py {trainer_ips:.1f} img/s, "
          f"bare loop {bare_ips:.1f} img/s over {timed_steps} steps", flush=True)  # fmt: skip
    report.note("training", "images_per_second", {"train.py": trainer_ips, "bare loop": bare_ips})
    report.figure("training", "train.py / bare loop", trainer_ips / bare_ips, 0.85, "x")
    utilisation = sampler.mean(timer.started, timer.ended)
    if utilisation is None:
        report.note("training", "gpu_utilisation", "not available (no CUDA device, or neither NVML nor nvidia-smi)")
        print("  GPU utilisation: not available here", flush=True)
    else:
        report.figure("training", "GPU utilisation during the timed steps", utilisation, None, " %")


def generation_stage(config: GpuCheckConfig, device: torch.device, report: Report, work: Path) -> None:
    from generation.fomm.checkpoint import build_vox256, calibrate_batch_norm
    from generation.jobs import JobRecords, plan_jobs
    from generation.mini.generation_inputs import write_generation_inputs

    actions = tuple(config.generation_actions.split(","))
    uncropped = ("yaw",) if "yaw" in actions else ()  # a face in a larger frame: MTCNN finds and crops it
    inputs = write_generation_inputs(work / "generation_inputs", actions, config.generation_sources, 0,
                                     config.generation_frames, uncropped=uncropped)  # fmt: skip
    torch.manual_seed(0)
    kp_detector, generator = build_vox256()
    calibrate_batch_norm(kp_detector, generator)  # frames with content, as in benchmarks.fomm_animation
    checkpoint = work / "vox-random-calibrated.pth.tar"  # the official checkpoint's layout, loaded strictly
    torch.save({"kp_detector": kp_detector.state_dict(), "generator": generator.state_dict()}, checkpoint)
    out = work / "generated"
    command = [sys.executable, str(ROOT / "generation" / "generate.py"), "--backend", "fomm", "--checkpoint",
               str(checkpoint), "--sources", str(inputs.root / "sources"), "--driving", str(inputs.root / "driving"),
               "--output_dir", str(out), "--no_progress"]  # fmt: skip
    command += ["--cpu", "true"] if device.type == "cpu" else []
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=subprocess_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        report.stopped("generation", "failed", f"generate.py exited {result.returncode}: {result.stderr[-2000:]}")
        return
    records = JobRecords(out)
    jobs = plan_jobs(inputs.root / "sources", inputs.root / "driving")
    made = [(job, records.read(job)) for job in jobs]
    statuses = {job.job_id: record["status"] if record else "not run" for job, record in made}
    fomm = [record["seconds"] for job, record in made if record and job.label == "fake" and "seconds" in record]
    per_clip = 48 / config.generation_frames  # seconds per 48-frame clip from clips of generation_frames
    report.note("generation", "jobs", statuses)
    print(f"  {len(jobs)} jobs ({len(fomm)} FOMM fakes) of {config.generation_frames}-frame driving videos in "
          f"{seconds:.1f} s end to end; statuses: {sorted(set(statuses.values()))}", flush=True)  # fmt: skip
    report.figure("generation", "seconds per 48-frame clip, end to end", seconds / len(jobs) * per_clip, None, " s")
    if fomm:
        report.figure("generation", "seconds per 48-frame FOMM fake (its job alone)",
                      sum(fomm) / len(fomm) * per_clip, None, " s")  # fmt: skip


def subprocess_env() -> dict[str, str]:
    """The repository importable from scripts run by path (generate.py), and nothing fetched from the Hub."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


NO_CUDA = (
    "no CUDA device here (torch.cuda.is_available() is False): run this on the GPU machine, or pass "
    "--cpu_smoke true to run it tiny on the CPU"
)
STAGES: dict[str, tuple[str, Callable]] = {
    "fomm": ("FOMM vox-256: batched bf16 channels_last vs the per-frame fp32 loop", animation_stage("fomm")),
    "tpsmm": ("TPSMM vox-256: batched bf16 channels_last vs the per-frame fp32 loop", animation_stage("tpsmm")),
    "training": ("ResNet50 epoch through train.py (frame cache, bf16, channels_last) vs the bare loop", training_stage),
    "generation": ("generate.py --backend fomm end to end, random calibrated weights", generation_stage),
}


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    from dataset_script.console import configure_logging

    (config,) = HfArgumentParser(GpuCheckConfig, description=__doc__.split("\n\n")[0]).parse_args_into_dataclasses(
        args=argv)  # fmt: skip
    configure_logging(logging.WARNING)  # the figures, not every library's progress
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda and not config.cpu_smoke else "cpu")
    report = Report(config.cpu_smoke)
    summary = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
               "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
               "torch": torch.__version__, "stages": report.stages}  # fmt: skip
    smoke = " -- CPU SMOKE RUN at tiny sizes: nothing below is a measurement" if config.cpu_smoke else ""
    print(f"GPU check on {summary['device']} (torch {torch.__version__}){smoke}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dfmp-gpu-check-") as folder:
        work = Path(folder)
        ensure_video_tools(work)
        print("\n[preflight] what the stages need beyond torch")
        summary["preflight"] = preflight()
        for name in config.stages.split(","):
            title, run = STAGES[name]
            print(f"\n[{name}] {title}", flush=True)
            if device.type != "cuda" and not config.cpu_smoke:
                report.stopped(name, "skipped", NO_CUDA)
                continue
            stage_started = time.perf_counter()
            try:
                (work / name).mkdir()
                run(config, device, report, work / name)
            except Exception as error:  # one stage's failure must not cost the others' figures
                logger.exception("stage %s failed", name)
                report.stopped(name, "failed", f"{type(error).__name__}: {error}")
            report.stages[name]["seconds"] = round(time.perf_counter() - stage_started, 1)
            print(f"  ({report.stages[name]['seconds']} s)", flush=True)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    config.out_json.parent.mkdir(parents=True, exist_ok=True)
    config.out_json.write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nall stages in {summary['seconds']} s; summary: {config.out_json}")
    return 1 if any(stage["status"] == "failed" for stage in report.stages.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

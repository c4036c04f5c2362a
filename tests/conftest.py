"""Fixtures: a session's own caches, and tiny data in tmp_path built with the factories of ``tests.factories``."""

from __future__ import annotations

import gc
import json
import logging
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _share_the_cores_between_workers() -> None:
    """Under pytest-xdist each worker's math libraries get its share of the cores, and so do the commands a test
    starts: two workers each spinning two OpenMP threads on two cores make a 24-ms forward pass take 600 ms. (One
    thread a worker measured 188 s for the suite on 2 cores; two threads that sleep when idle, 195 s.)"""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, len(os.sched_getaffinity(0)) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, threads)


_share_the_cores_between_workers()

from tests.factories import (  # noqa: E402
    copy_release,
    importable_space,
    make_clip,
    make_release,
    remove_shared_data,
    shared_by_workers,
    write_card,
)


def pytest_collection_finish(session) -> None:
    """What collection imported (torch, transformers, gradio and the rest) lives as long as the run: out of the
    garbage collector's full passes, which every ``Trainer.train`` starts, they cost 0.3 s a pass instead of nothing."""
    gc.freeze()


def pytest_sessionfinish(session, exitstatus) -> None:
    """After a green run the data the workers shared goes too (about 2 GB: minis, built repos, trained cells, the
    datasets cache), as a passing test's own folder does; a failed run keeps it to look at. The run's common folder
    is the main process's base temp (xdist hands each worker a folder inside it)."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if exitstatus == 0 and factory is not None and "PYTEST_XDIST_WORKER" not in os.environ:
        remove_shared_data(factory.getbasetemp())


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: a worker per core, at most four (each holds its own models and module fixtures in memory)."""
    return max(1, min(len(os.sched_getaffinity(0)), 4))


@pytest.fixture(scope="session", autouse=True)
def isolated_datasets_cache(tmp_path_factory):
    """Each test run gets its own `datasets` cache, so no test reads what an earlier run prepared; its workers share
    it (`datasets` locks what it prepares), so that each configuration is prepared once per run."""
    previous = os.environ.get("HF_DATASETS_CACHE")
    os.environ["HF_DATASETS_CACHE"] = str(shared_by_workers(tmp_path_factory, "datasets_cache", lambda folder: folder))
    import datasets.config

    datasets.config.HF_DATASETS_CACHE = Path(os.environ["HF_DATASETS_CACHE"])
    yield
    if previous is None:
        os.environ.pop("HF_DATASETS_CACHE")
    else:
        os.environ["HF_DATASETS_CACHE"] = previous


@pytest.fixture
def clip_factory(tmp_path):
    counter = iter(range(10_000))

    def factory(**kwargs) -> Path:
        return make_clip(tmp_path / "clips" / f"clip{next(counter)}.mp4", **kwargs)

    return factory


@pytest.fixture
def run_build(caplog):
    """``run_build(source, out, *flags)``: the build command's ``main`` in-process, on one CPU worker, as (exit
    status, what it logged at WARNING and above: on a terminal, its stderr)."""
    from dataset_script.build import main

    def run(source: Path, out: Path, *flags: str) -> tuple[int, str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            code = main(
                [str(source), "--output_dir", str(out), "--no_progress", "--workers", "1", "--device", "cpu", *flags]
            )
        return code, caplog.text

    return run


@pytest.fixture(scope="session")
def small_release(tmp_path_factory) -> Path:
    """One release folder shared read-only by the tests that only read it."""
    return shared_by_workers(tmp_path_factory, "release", lambda folder: make_release(folder / "DeepFakeMnist"))


@pytest.fixture(scope="session")
def tiny_release(tmp_path_factory) -> Path:
    """A release of 3 clips a folder, 8 frames of 32x32, encoded once per session: a template that tests copy
    (``release_copy``) rather than encode again, and never touch themselves."""

    def make(folder: Path) -> Path:
        return make_release(folder / "DeepFakeMnist", per_folder=3, frames=8, size=32)

    return shared_by_workers(tmp_path_factory, "tiny_release", make)


@pytest.fixture
def release_copy(tiny_release, tmp_path):
    """``release_copy(name="src")``: this test's own writable copy of ``tiny_release`` at ``tmp_path / name``."""
    return lambda name="src": copy_release(tiny_release, tmp_path / name)


@pytest.fixture(scope="session")
def built_repo(tmp_path_factory, small_release) -> Path:
    """The small release built into ``deepfake_mnist_plus/`` once per session."""
    from dataset_script.build import BuildConfig, build

    return shared_by_workers(tmp_path_factory, "built",
                             lambda folder: build(BuildConfig(source=small_release,
                                                              output_dir=folder / "deepfake_mnist_plus",
                                                              progress=False)))  # fmt: skip


@pytest.fixture(scope="session")
def smoke_mini(tmp_path_factory) -> Path:
    """The smoke mini in the release layout, made once per session through its command's ``main`` (in-process:
    the same parser and code as ``python -m generation.mini``, without an interpreter's start)."""
    from generation.mini.__main__ import main

    def make(folder: Path) -> Path:
        assert main(["--output_dir", str(folder / "mini"), "--size", "smoke", "--seed", "3", "--no_progress"]) == 0
        return folder / "mini"

    return shared_by_workers(tmp_path_factory, "smoke_mini", make)


@pytest.fixture
def one_thread():
    """Torch on one thread, as the mini's workers run it: float sums (MTCNN's among them) may round differently with
    another number of threads, so a test that remakes a mini clip or its face box byte for byte needs this."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cpuinfo(tmp_path, monkeypatch):
    """``cpuinfo(flags)`` makes this machine's CPU read as one with those /proc/cpuinfo flags (None: no such file),
    for everything that asks ``dataset_script.hardware``; the real reading is back after the test."""
    from dataset_script import hardware

    def pretend(flags: str | None) -> None:
        path = tmp_path / "cpuinfo"
        path.unlink(missing_ok=True)
        if flags is not None:
            path.write_text(f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        monkeypatch.setattr(hardware, "CPUINFO", path)
        hardware.cpu_has_native_bf16.cache_clear()

    yield pretend
    hardware.cpu_has_native_bf16.cache_clear()


@pytest.fixture(scope="session")
def smoke_mini_repo(tmp_path_factory, smoke_mini) -> Path:
    """The smoke mini built (raw only: compression is tested elsewhere); shared read-only."""
    from dataset_script.build import BuildConfig, build

    return shared_by_workers(tmp_path_factory, "smoke_mini_repo",
                             lambda folder: build(BuildConfig(source=smoke_mini,
                                                              output_dir=folder / "deepfake_mnist_plus",
                                                              qualities=("raw",), progress=False)))  # fmt: skip


@pytest.fixture
def hf_hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache for this test (in-process and for subprocesses), whatever the machine's
    holds: what is in it is what the test puts there (``tests.factories.cache_timm_weights``)."""
    import huggingface_hub.constants

    cache = tmp_path / "hf_hub_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def detector_dir(tmp_path_factory, smoke_mini_repo) -> Path:
    """An untrained detector of the demo's kind with the demo's card (mini data, uncalibrated) and the smoke mini's
    face crop in its config.json, as train.py copies it there: the Space's plumbing does not need a good one."""
    from modeling import create_detector, save_detector
    from training.train import record_in_config

    model, info = create_detector("mesoinception4_hp", pretrained=False, input_size=64, crop_pct=0.5)
    folder = write_card(save_detector(model, info, tmp_path_factory.mktemp("space") / "detector"))
    face_crop = json.loads((smoke_mini_repo / "build_info.json").read_text())["face_crop"]
    record_in_config(folder, {"face_crop": face_crop})
    return folder


@pytest.fixture(scope="module")
def checker(detector_dir):
    """The Space's ClipChecker serving ``detector_dir``, with a 5 MB and 30 s limit and the default sizes."""
    importable_space()
    from clip_check import ClipChecker, ClipLimits

    return ClipChecker([str(detector_dir)], ClipLimits(max_megabytes=5, max_seconds=30), cam_frames=4)

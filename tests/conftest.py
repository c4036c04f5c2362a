"""Fixture factories: tiny release-layout folders made with real ffmpeg encodes, in tmp_path."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from dataset_script.release import ManifestRow, release_folder, write_manifest  # noqa: E402
from dataset_script.schema import ACTIONS  # noqa: E402


def make_clip(path: Path, frames: int = 16, size: int = 64, seed: int = 0, fps: int = 25) -> Path:
    """A short H.264 clip whose content depends on ``seed`` (moving test pattern plus seeded noise)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    source = f"testsrc2=size={size}x{size}:rate={fps},noise=alls={10 + seed % 30}:allf=t,hue=h={seed * 37 % 360}"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source,
         "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def make_release(
    root: Path,
    per_folder: int = 7,
    frames: int = 16,
    size: int = 64,
    real_folder: str = "original",
    with_manifest: bool = False,
    identities: int = 7,
) -> Path:
    """A release-layout folder: every action folder (release names) and a real folder, ``per_folder`` clips each."""
    rows, seed = [], 0
    for action in [None, *ACTIONS]:
        folder = real_folder if action is None else release_folder(action)
        for index in range(per_folder):
            name = f"{index:04d}.mp4"
            make_clip(root / folder / name, frames=frames, size=size, seed=seed)
            seed += 1
            source = f"id{(index + seed) % identities:02d}"
            rows.append(
                ManifestRow(
                    file=f"{folder}/{name}",
                    label="real" if action is None else "fake",
                    action=action or "",
                    source_id=source,
                    driving_id="" if action is None else f"id{(index + seed + 1) % identities:02d}",
                    seed=seed,
                )
            )
    if with_manifest:
        write_manifest(root, rows)
    return root


@pytest.fixture(scope="session", autouse=True)
def isolated_datasets_cache(tmp_path_factory):
    """Each test session gets its own `datasets` cache, so no test reads what an earlier run prepared."""
    previous = os.environ.get("HF_DATASETS_CACHE")
    os.environ["HF_DATASETS_CACHE"] = str(tmp_path_factory.mktemp("datasets_cache"))
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


@pytest.fixture(scope="session")
def small_release(tmp_path_factory) -> Path:
    """One release folder shared read-only by the tests that only read it."""
    return make_release(tmp_path_factory.mktemp("release") / "DeepFakeMnist")


@pytest.fixture(scope="session")
def built_repo(tmp_path_factory, small_release) -> Path:
    """The small release built into ``deepfake_mnist_plus/`` once per session."""
    from dataset_script.build import BuildConfig, build

    out = tmp_path_factory.mktemp("built") / "deepfake_mnist_plus"
    return build(BuildConfig(source=small_release, out=out, progress=False))


@pytest.fixture(scope="session")
def smoke_mini_repo(tmp_path_factory) -> Path:
    """The smoke mini, generated and built (raw only: compression is tested elsewhere)."""
    from dataset_script.build import BuildConfig, build
    from generation.mini.generate import SIZES, generate

    root = tmp_path_factory.mktemp("smoke_mini")
    generate(root / "mini", SIZES["smoke"], seed=3, progress=False)
    return build(BuildConfig(source=root / "mini", out=root / "deepfake_mnist_plus", qualities=("raw",),
                             progress=False))  # fmt: skip

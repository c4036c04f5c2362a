"""Factories that build tiny test data in a folder: clips, release-layout folders, FOMM checkpoints, HF cache entries.

Test modules import these from here (never from ``conftest`` or from one another); ``conftest`` wraps some of them
as fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock

from dataset_script.release import ManifestRow, release_folder, write_manifest
from dataset_script.schema import ACTIONS

if TYPE_CHECKING:
    import torch

SPACE = Path(__file__).resolve().parents[1] / "spaces" / "detector"
"""The Space's folder. Not a package (a top-level ``spaces`` would shadow the Hub's own), so its modules import
with it on sys.path: ``importable_space()``."""


def importable_space() -> Path:
    """The Space's modules (``clip_check``, ``app``) importable as the Space itself imports them."""
    if str(SPACE) not in sys.path:
        sys.path.insert(0, str(SPACE))
    return SPACE


def write_card(
    folder: Path,
    kind: str | None = None,
    temperature: float | None = None,
    dataset: str = "demo_output/deepfake_mnist_plus",
    split_protocol: str = "identity",
) -> Path:
    """The model card (and config.json temperature) that training/train.py writes, for a detector in ``folder``;
    ``kind`` is the training data's kind, the mini's by default."""
    from training.calibration import Calibration
    from training.model_card import SYNTHETIC_MINI, ModelCard, TrainingData

    calibration = Calibration(
        temperature,
        "40 frames of the validation split",
        test_ece={"raw": {"before": 0.21, **({"after": 0.04} if temperature else {})}},
    )
    card = ModelCard(
        model_id=folder.name, architecture="mesoinception4_hp", input_size=64, crop_pct=0.5, init="random",
        dataset=dataset, data_config="raw", split_protocol=split_protocol, recipe={},
        train_counts={"real": 9, "fake": 9},
        test_metrics={"raw": {"frame_accuracy": 0.9, "video_accuracy": 0.875, "video_auc": 0.9375}},
        training_data=TrainingData(kind or SYNTHETIC_MINI, "set by the test"), calibration=calibration,
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text(card.render())
    if temperature is not None:
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        config_path.write_text(json.dumps({**config, "calibration_temperature": temperature}))
    return folder


def ffmpeg(*args: str) -> None:
    """An ffmpeg command that overwrites its output and says nothing unless it fails."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_clip(path: Path, frames: int = 16, size: int = 64, seed: int = 0, fps: int = 25) -> Path:
    """A short H.264 clip whose content depends on ``seed`` (moving test pattern plus seeded noise)."""
    make_clips({path: seed}, frames, size, fps)
    return path


def make_clips(seeds: dict[Path, int], frames: int = 16, size: int = 64, fps: int = 25) -> None:
    """``make_clip`` for each path with its seed, all in one ffmpeg process: starting one costs more than encoding
    a clip this small, and a release has dozens."""
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    for seed in seeds.values():
        pattern = f"testsrc2=size={size}x{size}:rate={fps},noise=alls={10 + seed % 30}:allf=t,hue=h={seed * 37 % 360}"
        command += ["-f", "lavfi", "-i", pattern]
    for index, path in enumerate(seeds):
        path.parent.mkdir(parents=True, exist_ok=True)
        command += ["-map", f"{index}:v", "-frames:v", str(frames), "-c:v", "libx264", "-threads", "1",
                    "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(command, check=True)


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
    rows = release_rows(per_folder, real_folder, identities)
    seeds = {root / row.file: row.seed - 1 for row in rows}
    halves = [dict(list(seeds.items())[half::2]) for half in range(2)]  # two processes keep CI's two cores busy
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda half: make_clips(half, frames, size), halves))
    if with_manifest:
        write_manifest(root, rows)
    return root


def release_rows(per_folder: int = 7, real_folder: str = "original", identities: int = 7) -> list[ManifestRow]:
    """The manifest rows of ``make_release``'s folder (its clips' seeds are ``row.seed - 1``), so that a test can
    give a copied release a manifest without encoding its clips again."""
    rows, seed = [], 0
    for action in [None, *ACTIONS]:
        folder = real_folder if action is None else release_folder(action)
        for index in range(per_folder):
            seed += 1
            rows.append(
                ManifestRow(
                    file=f"{folder}/{index:04d}.mp4",
                    label="real" if action is None else "fake",
                    action=action or "",
                    source_id=f"id{(index + seed) % identities:02d}",
                    driving_id="" if action is None else f"id{(index + seed + 1) % identities:02d}",
                    seed=seed,
                )
            )
    return rows


def copy_release(template: Path, root: Path, real_folder: str | None = None) -> Path:
    """A writable copy of a session's release ``template`` at ``root`` (tests break or extend their copy, never the
    template), its real folder renamed to ``real_folder`` if given: encoding the clips again would cost far more."""
    shutil.copytree(template, root)
    if real_folder is not None:
        (root / "original").rename(root / real_folder)
    return root


def write_official_style_checkpoint(path: Path, networks, **replace) -> dict:
    """A FOMM checkpoint laid out as the official ``vox-cpk.pth.tar`` (generator, kp_detector, discriminator,
    optimizer, epoch), from ``networks`` = (kp_detector, generator) with the generator's values nudged, so that a
    test sees they were loaded; ``replace`` swaps whole entries."""
    import torch  # here, not at the top: conftest imports this module in pytest's main process, which runs no test

    kp_detector, generator = networks
    # values other than the fresh networks' (relative: variances stay positive)
    generator_state = {k: v * (1 + 0.01 * torch.randn_like(v)) if v.is_floating_point() else v
                       for k, v in generator.state_dict().items()}  # fmt: skip
    checkpoint = {"generator": generator_state, "kp_detector": kp_detector.state_dict(),
                  "discriminator": {"down_blocks.0.conv.weight": torch.zeros(1)},
                  "optimizer_generator": {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0]}]},
                  "epoch": 99}  # fmt: skip
    checkpoint.update(replace)
    torch.save(checkpoint, path)
    return checkpoint


def cache_timm_weights(cache: Path, name: str, state_dict: dict[str, torch.Tensor]) -> Path:
    """An HF hub cache entry under ``cache`` holding ``state_dict`` as timm's pretrained weights for model ``name``,
    laid out as ``hf_hub_download`` leaves it (refs/main naming a snapshot), so offline code finds and loads it."""
    import timm
    from safetensors.torch import save_file

    repo, _, revision = timm.models.get_pretrained_cfg(name).hf_hub_id.partition("@")
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / (revision or "main")).write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    save_file({key: value.contiguous() for key, value in state_dict.items()}, str(snapshot / "model.safetensors"))
    return snapshot / "model.safetensors"


def damage_inside(path):
    """Scramble bytes in the middle of the stream: the container and its packet count stay intact."""
    data = bytearray(path.read_bytes())
    for index in range(len(data) // 3, len(data) // 3 + 800):
        data[index] = (data[index] * 7 + 13) % 256
    path.write_bytes(bytes(data))
    return path


SHARED = "shared_by_workers"
"""The folder, in a run's common temporary folder, that holds what the workers share."""


def shared_by_workers(tmp_path_factory, name: str, make: Callable[[Path], Path]) -> Path:
    """``make(folder)`` run once per test run, its result shared read-only. Under pytest-xdist the first worker
    that needs it makes it in the run's common temporary folder while the others wait, so that no session fixture
    is made once per worker; without xdist it is an ordinary session folder."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return make(tmp_path_factory.mktemp(name))
    folder = tmp_path_factory.getbasetemp().parent / SHARED / name
    made = folder.with_name(name + ".made")  # holds the result's path inside the folder, written when it is whole
    folder.parent.mkdir(exist_ok=True)
    with FileLock(folder.with_name(name + ".lock")):
        if not made.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            made.write_text(str(make(folder).relative_to(folder)))
        return folder / made.read_text()


def remove_shared_data(root: Path) -> None:
    """Everything ``shared_by_workers`` made in the run's common folder ``root``, removed."""
    shutil.rmtree(root / SHARED, ignore_errors=True)

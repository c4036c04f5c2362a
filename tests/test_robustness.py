"""The perturbations of the robustness experiment change frames more at each level, from the seed alone, keeping their
shape; the experiment scores a detector through evaluation's own path and writes its table, plot and record."""

import json

import pytest
import torch
from PIL import Image

from dataset_script.frames import FrameSampler, VideoFrames
from dataset_script.perturbations import LEVELS, PERTURBATIONS, compress_at_levels, separable_gaussian
from training.experiments.command import main
from training.experiments.report import build_report
from training.experiments.robustness import PerturbedFrameSampler

FRAME_PERTURBATIONS = [name for name, perturbation in PERTURBATIONS.items() if not perturbation.on_video]
RANDOM = ("BW", "GNC")  # the ones that draw from the generator
SMOKE = ["--scale", "smoke", "--split_protocol", "paper"]
# one of each path through the sampler: frames perturbed as they are, from random draws, rescaled, and the clip
# re-encoded (each operation is tested above; the whole set triples the test's time for no other path)
SCORED = ("CS", "GNC", "VC", "RS")


def psnr(frames: torch.Tensor, original: torch.Tensor) -> float:
    mse = (frames.float() - original.float()).square().mean()
    return float("inf") if mse == 0 else float(10 * torch.log10(255**2 / mse))


def all_frames(path) -> torch.Tensor:
    video = VideoFrames(path)
    return video.read(range(video.num_frames))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_further_at_each_level(distances: list[float]) -> None:
    """PSNR against the original falls level after level (0.3 dB of slack for a random draw), and clearly overall."""
    assert all(later < earlier + 0.3 for earlier, later in zip(distances, distances[1:], strict=False)), distances
    assert distances[-1] < distances[0] - 1.0, distances


@pytest.fixture
def frames(clip_factory) -> torch.Tensor:
    return all_frames(clip_factory(frames=4, size=64, seed=5))


@pytest.mark.parametrize("name", FRAME_PERTURBATIONS)
def test_each_level_moves_frames_further_from_the_original(frames, name):
    perturbation = PERTURBATIONS[name]
    assert perturbation(frames, 0) is frames  # level 0 is the clip as it is
    distances = []
    for level in LEVELS:
        perturbed = perturbation(frames, level, seeded(0))
        assert perturbed.shape == frames.shape and perturbed.dtype == torch.uint8
        distances.append(psnr(perturbed, frames))
    assert_further_at_each_level(distances)


@pytest.mark.parametrize("name", FRAME_PERTURBATIONS)
def test_a_seed_gives_the_same_frames(frames, name):
    perturbation = PERTURBATIONS[name]
    assert torch.equal(perturbation(frames, 3, seeded(7)), perturbation(frames, 3, seeded(7)))
    if name in RANDOM:
        assert not torch.equal(perturbation(frames, 3, seeded(7)), perturbation(frames, 3, seeded(8)))


@pytest.mark.parametrize("sigma, half", [(0.5, 1), (1.0, 3), (2.5, 7)])
def test_the_separable_blur_is_the_two_dimensional_gaussian(sigma, half):
    # the blur runs as two 1-D convolutions on channels-last memory (for speed); the reference is one 2-D
    # convolution with the outer product of the normalised taps, on NCHW memory
    pixels = torch.rand(2, 3, 24, 20, generator=seeded(1)) * 255
    taps = torch.exp(-0.5 * (torch.arange(2 * half + 1, dtype=torch.float64) - half).square() / sigma**2)
    taps /= taps.sum()
    kernel = torch.outer(taps, taps).float().expand(3, 1, -1, -1)
    padded = torch.nn.functional.pad(pixels, (half,) * 4, mode="reflect")
    reference = torch.nn.functional.conv2d(padded, kernel, groups=3)
    for memory_format in (torch.channels_last, torch.contiguous_format):  # the layout changes speed, not values
        blurred = separable_gaussian(pixels, sigma, half, "reflect", memory_format=memory_format)
        assert blurred.shape == pixels.shape
        torch.testing.assert_close(blurred, reference, atol=1e-3, rtol=0)


def test_levels_and_inputs_outside_the_protocol_are_refused(frames):
    with pytest.raises(ValueError, match="level 6"):
        PERTURBATIONS["GB"](frames, 6)
    with pytest.raises(ValueError, match="uint8"):
        PERTURBATIONS["GB"](frames.float(), 1)
    with pytest.raises(TypeError, match="re-encodes"):
        PERTURBATIONS["VC"](frames, 1)


def test_video_compression_reencodes_the_clip_at_each_crf(clip_factory, tmp_path):
    clip = clip_factory(frames=8, size=64, seed=5)
    original = all_frames(clip)
    outputs = compress_at_levels([clip], tmp_path / "vc", progress=False, workers=1)[clip]
    distances = []
    for level in LEVELS:
        assert outputs[level].parent.name == f"crf{PERTURBATIONS['VC'].parameter(level)}"
        decoded = all_frames(outputs[level])
        assert decoded.shape == original.shape
        distances.append(psnr(decoded, original))
    assert_further_at_each_level(distances)
    made = {level: path.stat().st_mtime_ns for level, path in outputs.items()}
    compress_at_levels([clip], tmp_path / "vc", progress=False, workers=1)  # made before: reused
    assert {level: path.stat().st_mtime_ns for level, path in outputs.items()} == made


def test_level_zero_reads_what_evaluation_reads(clip_factory):
    clip = clip_factory(frames=8, size=64)
    config = {"input_size": (3, 32, 32), "crop_pct": 1.0}
    plain = FrameSampler(config, 4).sample(str(clip))
    assert torch.equal(PerturbedFrameSampler(config, 4, perturbation=PERTURBATIONS["GNC"], level=0).sample(str(clip)),
                       plain)  # fmt: skip
    noisy = [PerturbedFrameSampler(config, 4, perturbation=PERTURBATIONS["GNC"], level=5, seed=1).sample(str(clip))
             for _ in range(2)]  # fmt: skip
    assert torch.equal(noisy[0], noisy[1]) and not torch.equal(noisy[0], plain)


@pytest.mark.slow
def test_robustness_at_smoke_scale_writes_its_table_plot_and_record(built_repo, tmp_path, monkeypatch):
    out = tmp_path / "experiments"
    record = main(["robustness", "--dataset_name", str(built_repo), *SMOKE, "--output_dir", str(out),
                   "--perturbations", ",".join(SCORED)])  # fmt: skip
    table = (out / "robustness.md").read_text()
    accuracy = table.split("video accuracy % by level:", 1)[1].split("video AUC", 1)[0]
    rows = [line for line in accuracy.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    assert rows[0] == "| perturbation | 0 | 1 | 2 | 3 | 4 | 5 |"
    assert [row.split(" | ")[0].lstrip("| ") for row in rows[1:]] == list(SCORED)
    assert all(" - " not in row for row in rows)  # every perturbation scored at every level
    assert len({row.split(" | ")[1] for row in rows[1:]}) == 1  # level 0 is one clean test, shared by every row
    with Image.open(out / "robustness.png") as image:
        assert image.format == "PNG"
    saved = json.loads((out / "robustness.json").read_text())
    assert saved["scale"] == "smoke" and saved["frames_per_video"] == 2 and len(saved["scores"]) == 1 + 5 * len(SCORED)
    assert saved["scores"] == record["scores"]
    detector = out / "cells" / record["cells"][0]["name"]
    assert saved["detector"] == str(detector)

    # on a detector folder trained before, and resumed: nothing is scored again
    import training.evaluation

    monkeypatch.setattr(training.evaluation, "predict", lambda *a, **k: pytest.fail("scored again"))
    again = main(["robustness", "--dataset_name", str(built_repo), *SMOKE, "--output_dir", str(out),
                  "--perturbations", ",".join(SCORED), "--model_dir", str(detector)])  # fmt: skip
    assert again["scores"] == record["scores"] and again["cells"] == []

    report = build_report(out, tmp_path / "report.md")
    ours = report.split("## Robustness", 1)[1].split("\n## ", 1)[0]
    assert "![robustness](" in ours and "| RS |" in ours and "Beyond the paper" in ours

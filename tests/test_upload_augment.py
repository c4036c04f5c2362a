"""Training augmentation with an upload's life: shapes kept, a seed gives the same frames, each step does what it
says, and the sampler applies it to whole crops before the model's own resize and crop."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dataset_script.frames import FrameCache, FrameSampler
from dataset_script.upload_augment import KERNELS, UPLOADS, UploadAugment, describe_augmentation, reencode, resize
from tests.factories import make_clip

NOTHING = UploadAugment(reframe_probability=0, rescale_probability=0, reencode_probability=0, blur_probability=0,
                        noise_probability=0)  # fmt: skip


def face_like(count=4, size=64) -> torch.Tensor:
    """Smooth frames with fine detail on top: what resampling and compression take away."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    base = 128 + 60 * torch.sin(x / 9.0) * torch.cos(y / 7.0)
    detail = 20 * ((x + y) % 2)  # a one-pixel checker: the finest structure there is
    frames = torch.stack([base + detail + 3 * index for index in range(count)])
    return frames[:, None].repeat(1, 3, 1, 1).clamp(0, 255).to(torch.uint8)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).square().mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_shape_and_type_are_kept_and_a_seed_gives_the_same_frames():
    frames = face_like()
    first = UPLOADS(frames, torch.Generator().manual_seed(3))
    assert first.shape == frames.shape and first.dtype == torch.uint8
    assert torch.equal(first, UPLOADS(frames, torch.Generator().manual_seed(3)))
    draws = [UPLOADS(frames, torch.Generator().manual_seed(seed)) for seed in range(6)]
    assert len({d.numpy().tobytes() for d in draws}) > 1  # draws differ from video to video
    assert torch.equal(NOTHING(frames, torch.Generator().manual_seed(0)), frames)


def test_each_step_changes_the_fine_structure_as_an_upload_would():
    frames = face_like()
    steps = {
        "reframe": replace(NOTHING, reframe_probability=1.0, zoom_range=(1.2, 1.2)),
        "rescale": replace(NOTHING, rescale_probability=1.0, scale_range=(0.75, 0.75)),
        "blur": replace(NOTHING, blur_probability=1.0, blur_sigma_range=(1.0, 1.0)),
        "noise": replace(NOTHING, noise_probability=1.0, noise_std_range=(4.0, 4.0)),
        "reencode": replace(NOTHING, reencode_probability=1.0, crf_range=(40, 40)),
    }
    for name, augment in steps.items():
        changed = augment(frames, torch.Generator().manual_seed(1))
        assert 15 < psnr(changed, frames) < 60, name  # changed, and still the same picture
    zoomed = steps["reframe"](frames, torch.Generator().manual_seed(1))
    assert zoomed.float().std() > 0  # an edge-padded crop of the frame, not a blank


@pytest.mark.parametrize("kernel", KERNELS)
def test_resizing_on_uint8_resamples_as_the_float_kernels_do(kernel):
    # the augmentation resamples uint8 frames on PyTorch's uint8 kernels for speed; they must be the same
    # resampling as the float kernels (antialiased where the kernel allows), up to rounding
    frames = face_like(size=96)
    for size in (72, 128):
        antialias = kernel in ("bilinear", "bicubic")
        reference = F.interpolate(frames.float(), size=(size, size), mode=kernel, antialias=antialias,
                                  align_corners=False if antialias else None)  # fmt: skip
        resized = resize(frames, size, kernel)
        assert resized.dtype == torch.uint8 and resized.shape == (4, 3, size, size)
        assert (resized.float() - reference.clamp(0, 255)).abs().mean() < 0.6, (kernel, size)


def test_the_reframe_only_tightens_the_crop():
    # a bright ring at the crop's border: any zoom-out or large shift would leave it in view, a tighter crop
    # pushes it out past the frame
    frames = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    frames[..., :, :2] = frames[..., :, -2:] = frames[..., :2, :] = frames[..., -2:, :] = 255
    reframe = replace(NOTHING, reframe_probability=1.0, max_shift=0)
    for seed in range(8):
        reframed = reframe(frames, torch.Generator().manual_seed(seed))
        assert reframed.float().mean() <= frames.float().mean() + 1e-6, seed


def test_a_reencode_keeps_the_picture_closer_the_lower_its_crf():
    frames = face_like(count=6)
    assert psnr(reencode(frames, 18), frames) > psnr(reencode(frames, 40), frames) > 20


def test_the_sampler_augments_whole_crops_and_caches_them_as_decoded(tmp_path):
    mini_clip = make_clip(tmp_path / "clip.mp4", frames=6, size=64)
    cfg = {"input_size": (3, 32, 32), "crop_pct": 0.5, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    cache = FrameCache(tmp_path / "cache")
    plain = FrameSampler(cfg, frames_per_video=2, train=True, cache=cache)
    augmented = FrameSampler(cfg, frames_per_video=2, train=True, cache=cache, augment=True,
                             generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert plain.sample(mini_clip).shape == augmented.sample(mini_clip).shape == (2, 3, 32, 32)
    assert {folder.name for folder in (tmp_path / "cache").iterdir()} == {"as-decoded", FrameCache.geometry(cfg)}
    assert not FrameSampler(cfg, frames_per_video=2, augment=True).train  # evaluation never augments


def test_the_model_cards_line_names_each_steps_probability_and_range():
    line = describe_augmentation(True)
    for probability in (UPLOADS.reframe_probability, UPLOADS.rescale_probability, UPLOADS.reencode_probability):
        assert f"p{probability}" in line
    assert f"CRF {UPLOADS.crf_range[0]}-{UPLOADS.crf_range[1]}" in line
    assert describe_augmentation(False) == "none"

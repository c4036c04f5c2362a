import numpy as np
import pytest
import torch
from datasets import Dataset, Video

from dataset_script.frames import (
    GAIN_RANGE,
    FrameCache,
    FrameSampler,
    VideoReadError,
    augment_frames,
    collate_frames,
    evenly_spaced_indices,
    normalise_frames,
    random_indices,
    read_frames,
)
from training.data import with_sampling

CFG = {"input_size": (3, 40, 40), "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}


def test_evenly_spaced_indices_span_the_clip():
    indices = evenly_spaced_indices(250, 32)
    assert len(indices) == 32 and indices[0] == 0 and indices[-1] == 249
    assert np.all(np.diff(indices) > 0)
    assert list(evenly_spaced_indices(10, 32)) == list(range(10))


def test_random_indices_are_sorted_distinct_and_seeded():
    first = random_indices(100, 8, torch.Generator().manual_seed(3))
    again = random_indices(100, 8, torch.Generator().manual_seed(3))
    assert list(first) == list(again) and len(set(first)) == 8 and list(first) == sorted(first)


def test_decoders_give_identical_frames(clip_factory):
    path = clip_factory(frames=30, size=64)  # decord mis-copies some small widths (48); real clips are 256
    indices = [0, 7, 15, 29]
    torchcodec_frames = read_frames(path, indices, "torchcodec")
    assert torchcodec_frames.shape == (4, 3, 64, 64) and torchcodec_frames.dtype == torch.uint8
    assert torch.equal(torchcodec_frames, read_frames(path, indices, "decord"))
    assert not torch.equal(torchcodec_frames[0], torchcodec_frames[3])


def test_normalise_uses_the_pretrained_cfg():
    white = torch.full((1, 3, 20, 20), 255, dtype=torch.uint8)
    out = normalise_frames(white, CFG)
    assert out.shape == (1, 3, 40, 40)
    assert torch.allclose(out, torch.full_like(out, 2.0))  # (1 - 0.5) / 0.25


def test_augmentation_mirrors_and_scales_colours_but_keeps_each_frames_structure():
    frames = torch.randint(40, 200, (3, 3, 16, 16), dtype=torch.uint8)
    original = frames.float() / 255
    mirrored = 0
    for seed in range(40):
        made = augment_frames(frames, torch.Generator().manual_seed(seed))
        red, mirrored_red = made[:, 0] / made[:, 0].mean(), original[:, 0].flip(-1) / original[:, 0].mean()
        flipped = bool(torch.allclose(red, mirrored_red))  # a channel's gain cancels against its mean
        mirrored += flipped
        seen = original.flip(-1) if flipped else original
        gains = made.mean((0, 2, 3)) / seen.mean((0, 2, 3))
        assert torch.allclose(made, seen * gains.view(1, 3, 1, 1), atol=1e-5)  # one gain per channel, no blur
        assert ((gains >= GAIN_RANGE[0] - 1e-4) & (gains <= GAIN_RANGE[1] + 1e-4)).all()
        assert not torch.allclose(gains, gains[0].expand(3))  # the channels' gains differ: colours shift
    assert 10 < mirrored < 30  # mirrored about half the time


def test_only_training_frames_are_augmented(clip_factory):
    path = str(clip_factory(frames=6, seed=0))
    dataset = Dataset.from_dict({"video": [path], "label": [0]}).cast_column("video", Video())
    plain = with_sampling(dataset, FrameSampler(CFG, train=False, augment=True))[0]["pixel_values"]
    assert torch.equal(plain, with_sampling(dataset, FrameSampler(CFG, train=False))[0]["pixel_values"])
    seeded = torch.Generator().manual_seed(0)
    sampler = FrameSampler(CFG, frames_per_video=6, train=True, augment=True, generator=seeded)
    assert not torch.allclose(with_sampling(dataset, sampler)[0]["pixel_values"], plain)


@pytest.mark.parametrize("decoder", ["torchcodec", "decord"])
def test_sampler_in_a_dataloader_with_workers(clip_factory, decoder):
    paths = [str(clip_factory(frames=20, seed=s)) for s in range(4)]
    dataset = Dataset.from_dict({"video": paths, "label": [0, 1, 0, 1]}).cast_column("video", Video())
    sampled = with_sampling(dataset, FrameSampler(CFG, frames_per_video=5, train=True, decoder=decoder))
    loader = torch.utils.data.DataLoader(sampled, batch_size=2, num_workers=2, collate_fn=collate_frames)
    batches = list(loader)
    assert [b["pixel_values"].shape for b in batches] == [(10, 3, 40, 40)] * 2
    assert batches[0]["labels"].tolist() == [0] * 5 + [1] * 5
    evaluation = with_sampling(dataset, FrameSampler(CFG, train=False, decoder=decoder))
    assert evaluation[0]["pixel_values"].shape == (20, 3, 40, 40)  # a 20-frame clip gives all its frames


def test_corrupt_video_raises_naming_it_or_is_skipped_and_counted(tmp_path, clip_factory):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 100)
    paths = [str(clip_factory(frames=12)), str(bad)]
    dataset = Dataset.from_dict({"video": paths, "label": [0, 1]})
    strict = with_sampling(dataset, FrameSampler(CFG, frames_per_video=4, train=True))
    with pytest.raises(VideoReadError, match="broken.mp4"):
        strict[1]
    lenient = with_sampling(dataset, FrameSampler(CFG, frames_per_video=4, train=True, on_error="skip"))
    batch = collate_frames([lenient[0], lenient[1]])
    assert batch["num_skipped"].item() == 1 and batch["pixel_values"].shape[0] == 4


def test_too_short_video_is_an_error(clip_factory):
    sampler = FrameSampler(CFG, frames_per_video=4, train=True, min_frames=16)
    with pytest.raises(VideoReadError, match="8 frames, fewer than the 16 needed"):
        sampler.sample(str(clip_factory(frames=8)))


def test_a_centre_crop_keeps_native_pixels():
    frames = torch.randint(0, 256, (2, 3, 256, 256), dtype=torch.uint8)
    cfg = {"input_size": (3, 128, 128), "crop_pct": 0.5, "mean": (0.5,) * 3, "std": (0.5,) * 3}
    expected = frames[..., 64:192, 64:192].float() / 255 * 2 - 1
    assert torch.allclose(normalise_frames(frames, cfg), expected, atol=1e-6)
    resized = normalise_frames(frames, {**cfg, "crop_pct": 1.0})
    assert resized.shape == (2, 3, 128, 128) and not torch.allclose(resized, expected)


@pytest.mark.parametrize("crop_pct", [0.5, 1.0])
def test_frame_cache_gives_the_decoded_frames_and_is_reused(tmp_path, clip_factory, crop_pct):
    path = str(clip_factory(frames=12, size=64, seed=1))
    cfg = {**CFG, "input_size": (3, 32, 32), "crop_pct": crop_pct}  # 0.5: a native crop; 1.0: a resize
    cache = FrameCache(tmp_path / "cache")
    direct = FrameSampler(cfg, frames_per_video=6).sample(path)
    cached = FrameSampler(cfg, frames_per_video=6, cache=cache)
    first, again = cached.sample(path), cached.sample(path)
    files = list((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 1 and not list((tmp_path / "cache").rglob(".*"))  # no partial file left
    assert torch.equal(first, again)
    tolerance = 0.0 if crop_pct == 0.5 else 0.51 / 255 / 0.25  # a resize is stored rounded to uint8
    assert (first - direct).abs().max() <= tolerance + 1e-6
    mtime = files[0].stat().st_mtime_ns
    cached.sample(path)
    assert files[0].stat().st_mtime_ns == mtime  # read, not written again
    FrameSampler({**cfg, "input_size": (3, 16, 16)}, frames_per_video=6, cache=cache).sample(path)
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2  # another geometry, another file


def test_frame_cache_notices_a_replaced_video(tmp_path, clip_factory):
    path = clip_factory(frames=8, size=64, seed=1)
    sampler = FrameSampler(CFG, frames_per_video=8, cache=FrameCache(tmp_path / "cache"))
    before = sampler.sample(str(path))
    clip_factory(frames=8, size=64, seed=2).replace(path)
    after = sampler.sample(str(path))
    assert not torch.equal(before, after)
    decoded = FrameSampler(CFG, frames_per_video=8).sample(str(path))
    assert (after - decoded).abs().max() <= 0.51 / 255 / 0.25 + 1e-6  # stored rounded to uint8

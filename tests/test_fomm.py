"""Our FOMM vox-256: the official checkpoint's exact parameter layout, strict safe loading, and its outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from generation.fomm import build_vox256, load_vox256
from generation.fomm.checkpoint import calibrate_batch_norm
from generation.fomm.checkpoint import main as convert_main
from tests.bf16_products import bf16_as_this_cpu_would
from tests.factories import write_official_style_checkpoint

REFERENCE = Path(__file__).resolve().parent / "reference" / "fomm-vox256"  # the official checkpoint's manifest


def reference(name: str) -> dict:
    path = REFERENCE / name
    assert path.is_file(), f"{path} is missing: copy it from shared/reference/fomm-vox256"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def networks():
    torch.manual_seed(0)
    kp_detector, generator = build_vox256()
    calibrate_batch_norm(kp_detector, generator)  # so that the frames compared below are far from flat
    return kp_detector, generator


def test_state_dicts_equal_the_official_manifest(networks):
    for name, module in zip(("kp_detector", "generator"), networks, strict=True):
        expected = reference(f"{name}_keys.json")
        state = module.state_dict()
        assert {k: list(v.shape) for k, v in state.items()} == expected
        for key, tensor in state.items():
            assert tensor.dtype == (torch.int64 if key.endswith("num_batches_tracked") else torch.float32), key
        summary = reference("summary.json")[name]
        assert sum(p.numel() for p in module.parameters()) == summary["n_params"]


def test_forward_outputs_have_the_reference_shapes(networks):
    kp_detector, generator = networks
    summary = reference("summary.json")
    frames = torch.rand(1, 3, 256, 256)
    with torch.inference_mode():
        keypoints = kp_detector(frames)
        out = generator(frames, kp_driving=keypoints, kp_source=keypoints)
    for name, result in (("kp_detector", keypoints), ("generator", out)):
        for key, shape in summary[name]["forward_out"].items():
            assert list(result[key].shape) == shape, (name, key)
    assert keypoints["value"].abs().max() <= 1.0  # a softmax-weighted mean of grid positions
    assert 0.0 <= float(out["prediction"].min()) and float(out["prediction"].max()) <= 1.0
    assert torch.allclose(out["mask"].sum(1), torch.ones(1, 64, 64), atol=1e-5)


def test_loads_a_checkpoint_of_the_official_structure_strictly(tmp_path, networks):
    path = tmp_path / "vox-cpk.pth.tar"
    written = write_official_style_checkpoint(path, networks)
    kp_detector, generator = load_vox256(path)
    assert not kp_detector.training and not generator.training
    for key, value in written["generator"].items():
        assert torch.equal(generator.state_dict()[key], value), key
    safetensors = tmp_path / "vox-256.safetensors"
    convert_main([str(path), "--out", str(safetensors)])
    again_kp, again_generator = load_vox256(safetensors)
    frames = torch.rand(2, 3, 128, 128)
    with torch.inference_mode():
        source_kp, driving_kp = kp_detector(frames[:1]), kp_detector(frames[1:])
        first = generator(frames[:1], driving_kp, source_kp)["prediction"]
        second = again_generator(frames[:1], again_kp(frames[1:]), again_kp(frames[:1]))["prediction"]
    assert torch.equal(first, second)


def test_a_wrong_checkpoint_is_refused_clearly(tmp_path, networks):
    missing = tmp_path / "no_generator.pth.tar"
    torch.save({"kp_detector": networks[0].state_dict()}, missing)
    with pytest.raises(ValueError, match="no generator entry"):
        load_vox256(missing)
    truncated_state = dict(networks[1].state_dict())
    truncated_state.pop("final.bias")
    incomplete = tmp_path / "incomplete.pth.tar"
    write_official_style_checkpoint(incomplete, networks, generator=truncated_state)
    with pytest.raises(ValueError, match="final.bias"):
        load_vox256(incomplete)
    with pytest.raises(FileNotFoundError, match="vox-cpk.pth.tar"):
        load_vox256(tmp_path / "absent.pth.tar")


def test_source_features_computed_once_serve_a_batch_of_driving_frames(networks):
    kp_detector, generator = networks
    source, driving = torch.rand(1, 3, 128, 128), torch.rand(3, 3, 128, 128)
    with torch.inference_mode():
        kp_source, kp_driving = kp_detector(source), kp_detector(driving)
        per_frame = torch.cat([
            generator(source, {k: v[i : i + 1] for k, v in kp_driving.items()}, kp_source)["prediction"]
            for i in range(3)
        ])  # fmt: skip
        batched_source = source.expand(3, -1, -1, -1)
        kp_source_batch = {k: v.expand(3, *v.shape[1:]) for k, v in kp_source.items()}
        batched = generator(batched_source, kp_driving, kp_source_batch,
                            source_features=generator.encode(source))["prediction"]  # fmt: skip
    assert torch.allclose(per_frame, batched, atol=1e-4)


@pytest.mark.slow  # animates a clip twice at full size (about 8 s)
def test_batched_animation_equals_the_per_frame_loop(networks):
    from generation.fomm.animate import AnimationOptions, animate, per_frame_reference

    kp_detector, generator = networks
    torch.manual_seed(1)
    source, driving = torch.rand(1, 3, 128, 128), torch.rand(4, 3, 128, 128)  # any size divisible by 32 runs
    ours = animate(kp_detector, generator, source, driving, AnimationOptions(batch_size=1))
    batched = animate(kp_detector, generator, source, driving, AnimationOptions(batch_size=3))
    # the CPU default: keypoints and dense motion of 8 frames a pass, the decoder one frame at a time
    by_default = animate(kp_detector, generator, source, driving)
    whole_chunks = animate(kp_detector, generator, source, driving, AnimationOptions(decoder_batch_size=8))
    looped = per_frame_reference(kp_detector, generator, source, driving)
    assert ours.shape == batched.shape == by_default.shape == (4, 3, 128, 128)
    assert looped.std() > 0.03  # frames with content, so agreement means something
    assert (ours - looped).abs().max() < 1e-4
    # A batch sums its convolutions in another order; the keypoints' sharp softmax (temperature 0.1) grows that
    # rounding on random weights, so batches agree less closely (the GPU path, checked there in bf16 by PSNR).
    for other in (batched, by_default, whole_chunks):
        assert (other - looped).abs().max() < 1e-3
    assert (by_default - whole_chunks).abs().max() < 1e-4  # how the decoder is batched changes only rounding


def test_bf16_keeps_the_frames_within_40_db_of_fp32_because_keypoints_and_motion_stay_fp32(networks):
    """bf16 everywhere took these frames to 16 dB; the keypoints and the dense motion in fp32 keep them above 40."""
    from generation.fomm.animate import AnimationOptions, animate

    kp_detector, generator = networks
    torch.manual_seed(4)
    source, driving = torch.rand(1, 3, 128, 128), torch.rand(3, 3, 128, 128)
    fp32 = animate(kp_detector, generator, source, driving)
    with bf16_as_this_cpu_would():
        bf16 = animate(kp_detector, generator, source, driving, AnimationOptions(autocast_dtype=torch.bfloat16))
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.inference_mode():
        keypoints = kp_detector(driving)
        motion = generator.dense_motion_network(source.expand(3, -1, -1, -1), keypoints, kp_detector(source))
    assert keypoints["value"].dtype == motion["deformation"].dtype == torch.float32
    mse = float((bf16.clamp(0, 1) - fp32.clamp(0, 1)).pow(2).mean())
    assert 0 < mse and 10 * math.log10(1 / mse) >= 40


def test_phase_upsampling_equals_upsampling_then_convolving():
    from generation.fomm.blocks import UpBlock2d, phase_upsampling

    torch.manual_seed(2)
    block = UpBlock2d(6, 5).eval()
    block.norm.running_mean.normal_()
    block.norm.running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 6, 9, 13)  # odd, unequal sides: every phase meets a border
    with torch.inference_mode():
        plain = block(x)
        with phase_upsampling(block):
            assert block.phase_upsampling
            by_phase = block(x)
        assert not block.phase_upsampling and torch.equal(block(x), plain)
        block.conv.weight.mul_(2)  # new weights: the kept phase kernels must not be reused
        with phase_upsampling(block):
            doubled = block(x)
        block.phase_upsampling = False
        assert torch.allclose(doubled, block(x), atol=1e-5)
    assert by_phase.shape == plain.shape == (2, 5, 18, 26)
    assert torch.allclose(by_phase, plain, atol=1e-5) and not torch.equal(doubled, plain)


def test_the_best_reference_frame_is_the_pose_closest_to_the_source():
    from generation.fomm import best_reference_frame

    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.5, 0.5]])
    driving = torch.stack([square * torch.tensor([2.0, 1.0]), square * 3 + 5, square + torch.tensor([0.3, 0.0])])
    driving[2, 4] += 0.2  # the same pose, nose a little off
    assert best_reference_frame((square * 0.5)[None], driving) == 1  # size and place do not matter


@pytest.mark.slow
def test_animating_from_a_reference_frame_equals_the_demos_forwards_and_backwards_passes(networks):
    """The FOMM demo's --find_best_frame animates driving[best:] and driving[:best + 1] reversed, each from its first
    frame, and joins them; ``animate(reference_frame=best)`` (what generate.py's --best_frame uses) must match."""
    from generation.fomm.animate import AnimationOptions, animate, per_frame_reference

    kp_detector, generator = networks
    torch.manual_seed(3)
    source, driving, best = torch.rand(1, 3, 128, 128), torch.rand(4, 3, 128, 128), 2
    one_at_a_time = AnimationOptions(batch_size=1)  # the loop's rounding exactly (batches: see the test above)
    ours = animate(kp_detector, generator, source, driving, one_at_a_time, reference_frame=best)
    forwards = per_frame_reference(kp_detector, generator, source, driving[best:])
    backwards = per_frame_reference(kp_detector, generator, source, driving[: best + 1].flip(0))
    demo = torch.cat([backwards.flip(0)[:-1], forwards])
    assert ours.shape == demo.shape == (4, 3, 128, 128)
    assert (ours - demo).abs().max() < 1e-4
    from_first = animate(kp_detector, generator, source, driving)
    assert (from_first - demo).abs().max() > 1e-3  # the reference frame matters, so agreement means something

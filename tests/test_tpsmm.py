"""Our TPSMM vox-256: the official checkpoint's exact parameter layout, strict safe loading, its outputs, the
thin-plate-spline math, batched animation against the demo's loop, and the ``tpsmm`` backend end to end through
generate.py (reusing an earlier set's pairs) into a built dataset."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from dataset_script.release import ManifestRow, write_manifest
from generation.motion import TPS_REGULARIZATION, fit_tps, make_coordinate_grid, tps_kernel, tps_motions, tps_transform
from generation.tpsmm import TPSMM, VOX256, AnimationOptions, animate, build_vox256, load_tpsmm
from generation.tpsmm.animate import per_frame_reference
from generation.tpsmm.checkpoint import calibrate_batch_norm
from generation.tpsmm.checkpoint import main as convert_main
from tests.bf16_products import bf16_as_this_cpu_would

REFERENCE = Path(__file__).resolve().parent / "reference" / "tpsmm-vox256"  # the official checkpoint's manifest


def reference(name: str) -> dict:
    path = REFERENCE / name
    assert path.is_file(), f"{path} is missing: copy it from shared/reference/tpsmm-vox256"
    return json.loads(path.read_text())


def write_official_style_checkpoint(path: Path, networks: TPSMM, **replace) -> dict:
    """A TPSMM checkpoint laid out as the official ``vox.pth.tar``: the four networks' entries with values nudged
    away from ``networks``' (so a test sees they were loaded), the training-only ``bg_predictor`` (zeros in the
    manifest's shapes), optimizers and the epoch; ``replace`` swaps whole entries (None drops one)."""
    checkpoint: dict = {name: {k: v * (1 + 0.01 * torch.randn_like(v)) if v.is_floating_point() else v.clone()
                               for k, v in module.state_dict().items()}
                        for name, module in networks.parts().items()}  # fmt: skip
    checkpoint["bg_predictor"] = {key: torch.zeros(shape, dtype=torch.int64 if key.endswith("num_batches_tracked")
                                                   else torch.float32)
                                  for key, shape in reference("bg_predictor_keys.json").items()}  # fmt: skip
    checkpoint.update(optimizer={"state": {}, "param_groups": [{"lr": 2e-4, "params": [0]}]},
                      optimizer_bg_predictor={"state": {}, "param_groups": [{"lr": 2e-4, "params": [0]}]},
                      epoch=99)  # fmt: skip
    checkpoint.update(replace)
    torch.save({key: value for key, value in checkpoint.items() if value is not None}, path)
    return checkpoint


NARROW = {**VOX256, "generator": {**VOX256["generator"], "block_expansion": 8, "max_features": 32},
          "dense_motion": {**VOX256["dense_motion"], "block_expansion": 8, "max_features": 64}}  # fmt: skip
"""TPSMM vox-256 with narrow decoders: the same code and structure at a fraction of the work."""


def with_meaningful_norms(networks: TPSMM) -> TPSMM:
    """Random weights whose norms matter: batch-norm statistics calibrated on random frames (so keypoints spread
    over the frame instead of saturating), instance-norm scales and shifts away from the identity."""
    for norm in networks.modules():
        if isinstance(norm, nn.InstanceNorm2d):
            with torch.no_grad():
                norm.weight.uniform_(0.5, 1.5)
                norm.bias.normal_(0.0, 0.2)
    calibrate_batch_norm(networks)
    return networks


@pytest.fixture(scope="module")
def networks() -> TPSMM:
    torch.manual_seed(0)
    return with_meaningful_norms(build_vox256())


@pytest.fixture(scope="module")
def checkpoint(networks, tmp_path_factory) -> tuple[Path, dict]:
    path = tmp_path_factory.mktemp("tpsmm_checkpoint") / "vox.pth.tar"
    return path, write_official_style_checkpoint(path, networks)


def test_state_dicts_equal_the_official_manifest(networks):
    summary = reference("summary.json")["networks"]
    for name, module in networks.parts().items():
        state = module.state_dict()
        assert [(k, list(v.shape)) for k, v in state.items()] == list(reference(f"{name}_keys.json").items()), name
        for key, tensor in state.items():
            assert tensor.dtype == (torch.int64 if key.endswith("num_batches_tracked") else torch.float32), key
        assert sum(p.numel() for p in module.parameters()) == summary[name]["n_params"], name
        assert sum(b.numel() for b in module.buffers()) == summary[name]["n_buffer_elements"], name
    kernel = networks.dense_motion_network.state_dict()["down.weight"]  # a persistent buffer, in the checkpoint
    assert torch.allclose(kernel.sum((1, 2, 3)), torch.ones(3)) and kernel[0, 0, 6, 6] == kernel.max()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in networks.inpainting_network.modules())


def test_forward_outputs_have_the_reference_shapes(networks):
    summary = reference("summary.json")["networks"]

    def shapes(value):
        if isinstance(value, dict):
            return {key: shapes(item) for key, item in value.items()}
        if isinstance(value, list):
            return [shapes(item) for item in value]
        return {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}

    torch.manual_seed(1)
    source, driving = torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256)
    with torch.inference_mode():
        kp_source, kp_driving = networks.kp_detector(source), networks.kp_detector(driving)
        motion = networks.dense_motion_network(source, kp_driving, kp_source)
        out = networks.inpainting_network(source, motion)
        avd = networks.avd_network(kp_source, kp_driving)
    assert shapes(kp_source) == summary["kp_detector"]["forward_out"]
    assert shapes(motion) == summary["dense_motion_network"]["forward_out"]
    assert shapes(out) == summary["inpainting_network"]["forward_out"]
    assert shapes(avd) == summary["avd_network"]["forward_out"]
    assert kp_source["fg_kp"].abs().max() < 1 and kp_source["fg_kp"].std() > 0.1  # spread, not saturated
    assert torch.allclose(motion["contribution_maps"].sum(1), torch.ones(1, 64, 64), atol=1e-5)
    assert 0.0 <= float(out["prediction"].min()) and float(out["prediction"].max()) <= 1.0


def test_loads_a_checkpoint_of_the_official_structure_strictly(checkpoint, networks, tmp_path):
    path, written = checkpoint
    loaded = load_tpsmm(path)
    assert not loaded.training and loaded.avd_network is not None
    for name, module in loaded.parts().items():
        state = module.state_dict()
        assert state.keys() == written[name].keys()
        assert all(torch.equal(state[key], value) for key, value in written[name].items()), name
    safetensors = tmp_path / "tpsmm-vox256.safetensors"
    convert_main([str(path), "--out", str(safetensors)])
    again = load_tpsmm(safetensors)
    assert again.state_dict().keys() == loaded.state_dict().keys()
    assert all(torch.equal(value, again.state_dict()[key]) for key, value in loaded.state_dict().items())
    # the demo loads avd_network only when the file has one; then mode avd is refused, the others work
    without = tmp_path / "no_avd.pth.tar"
    torch.save({name: written[name] for name in ("kp_detector", "dense_motion_network", "inpainting_network")},
               without)  # fmt: skip
    no_avd = load_tpsmm(without)
    assert no_avd.avd_network is None and list(no_avd.parts()) == ["kp_detector", "dense_motion_network",
                                                                   "inpainting_network"]  # fmt: skip
    with pytest.raises(ValueError, match="mode avd needs a checkpoint with an avd_network"):
        animate(no_avd, torch.rand(1, 3, 128, 128), torch.rand(1, 3, 128, 128), AnimationOptions(mode="avd"))


def test_a_wrong_checkpoint_is_refused_clearly(tmp_path, networks):
    missing = tmp_path / "no_inpainting.pth.tar"
    torch.save({"kp_detector": networks.kp_detector.state_dict(),
                "dense_motion_network": networks.dense_motion_network.state_dict()}, missing)  # fmt: skip
    with pytest.raises(ValueError, match="no inpainting_network entry .*TPSMM's vox.pth.tar"):
        load_tpsmm(missing)
    state = dict(networks.dense_motion_network.state_dict())
    state.pop("down.weight")  # FOMM-style code that builds the anti-alias kernel as a plain tensor loses it
    incomplete = tmp_path / "incomplete.pth.tar"
    torch.save({"kp_detector": networks.kp_detector.state_dict(), "dense_motion_network": state,
                "inpainting_network": networks.inpainting_network.state_dict()}, incomplete)  # fmt: skip
    with pytest.raises(ValueError, match=r"(?s)dense_motion_network does not fit TPSMM vox-256.*down\.weight"):
        load_tpsmm(incomplete)
    pickled_code = tmp_path / "code.pth.tar"
    torch.save({"kp_detector": networks.kp_detector}, pickled_code)  # a whole module: unpickling would run code
    with pytest.raises(ValueError, match="not a loadable TPSMM checkpoint"):
        load_tpsmm(pickled_code)
    with pytest.raises(FileNotFoundError, match="vox.pth.tar"):
        load_tpsmm(tmp_path / "absent.pth.tar")
    with pytest.raises(ValueError, match="choose one of relative, standard, avd"):
        AnimationOptions(mode="absolute")


def test_tps_fitting_reproduces_a_known_tps_map():
    torch.manual_seed(2)
    control = torch.rand(3, 5, 2, dtype=torch.float64) * 1.6 - 0.8
    # a genuine thin-plate spline: radial weights orthogonal to the affine functions of the control points
    rows = torch.cat([control, torch.ones(3, 5, 1, dtype=torch.float64)], dim=-1)
    weights = torch.randn(3, 5, 2, dtype=torch.float64) * 0.3
    weights = weights - rows @ torch.linalg.solve(rows.mT @ rows, rows.mT @ weights)
    affine = torch.eye(2, 3, dtype=torch.float64) + 0.1 * torch.randn(3, 2, 3, dtype=torch.float64)

    def known(points: torch.Tensor) -> torch.Tensor:  # the map, from its definition, at points (3, P, 2)
        radial = tps_kernel((points[:, :, None] - control[:, None]).pow(2).sum(-1)) @ weights
        return points @ affine[..., :2].mT + affine[..., None, :, 2] + radial

    targets = known(control)
    fitted_affine, fitted_weights = fit_tps(control, targets, regularization=0.0)
    grid = make_coordinate_grid(9, 11, pixel_centers=False, dtype=torch.float64)
    expected = known(grid.reshape(1, -1, 2).expand(3, -1, -1)).view(3, 9, 11, 2)
    torch.testing.assert_close(fitted_affine.double(), affine, atol=1e-4, rtol=0)
    torch.testing.assert_close(fitted_weights.double(), weights, atol=1e-4, rtol=0)
    torch.testing.assert_close(tps_transform(grid, control, fitted_affine, fitted_weights).double(), expected,
                               atol=1e-4, rtol=0)  # fmt: skip
    # TPSMM's system: 0.01 on the whole diagonal of [[U, P], [P^T, 0]], inverted (summary.json's notes)
    kernel = tps_kernel((control[:, :, None] - control[:, None]).pow(2).sum(-1))
    system = torch.cat([torch.cat([kernel, rows], -1), torch.cat([rows.mT, torch.zeros(3, 3, 3).double()], -1)], 1)
    right = torch.cat([targets, torch.zeros(3, 3, 2, dtype=torch.float64)], 1)
    official = torch.inverse(system + TPS_REGULARIZATION * torch.eye(8, dtype=torch.float64)) @ right
    regularized_affine, regularized_weights = fit_tps(control, targets)
    torch.testing.assert_close(regularized_affine.double(), official[:, 5:].mT, atol=1e-5, rtol=0)
    torch.testing.assert_close(regularized_weights.double(), official[:, :5], atol=1e-5, rtol=0)
    assert (regularized_weights.double() - weights).abs().max() > 1e-3  # the regularization matters
    # keypoints in groups of five, one spline per group, the identity first
    motions = tps_motions(grid.float(), targets.reshape(1, 15, 2).float(), control.reshape(1, 15, 2).float())
    assert motions.shape == (1, 4, 9, 11, 2) and torch.equal(motions[0, 0], grid.float())
    per_group = tps_transform(grid, targets, *fit_tps(targets, control))
    torch.testing.assert_close(motions[0, 1:].double(), per_group.double(), atol=1e-5, rtol=0)


def test_batched_animation_equals_the_per_frame_loop():
    torch.manual_seed(3)
    networks = with_meaningful_norms(TPSMM(config=NARROW).eval())
    source, driving = torch.rand(1, 3, 128, 128), torch.rand(3, 3, 128, 128)  # sides: multiples of 128
    looped = per_frame_reference(networks, source, driving)
    ours = animate(networks, source, driving, AnimationOptions(batch_size=1))  # the source's work once
    batched = animate(networks, source, driving, AnimationOptions(batch_size=3))
    # the CPU default: keypoints and dense motion of 8 frames a pass, the inpainting one frame at a time
    by_default = animate(networks, source, driving)
    assert ours.shape == batched.shape == by_default.shape == (3, 3, 128, 128)
    assert looped.std() > 0.03 and (looped[1:] - looped[:1]).abs().max() > 1e-2  # content, and motion
    assert (ours - looped).abs().max() < 1e-4
    for other in (batched, by_default):  # convolutions of a batch sum in another order
        assert (other - looped).abs().max() < 1e-3
    avd = animate(networks, source, driving[:2], AnimationOptions(mode="avd", batch_size=2))
    assert (avd[:1] - per_frame_reference(networks, source, driving[:1], mode="avd")).abs().max() < 1e-3
    assert (avd - looped[:2]).abs().max() > 1e-3  # a different mode moves differently


@pytest.mark.slow  # animates at full size in two precisions
def test_bf16_keeps_the_frames_within_40_db_of_fp32_because_keypoints_tps_and_blending_stay_fp32(networks):
    """The keypoints, the thin-plate solves and the softmax that blends the motions stay float32 under autocast;
    the hourglass and the inpainting network run bf16 channels_last, as on a CPU with native bf16."""
    torch.manual_seed(4)
    source, driving = torch.rand(1, 3, 128, 128), torch.rand(3, 3, 128, 128)
    fp32 = animate(networks, source, driving)
    half = copy.deepcopy(networks).to(memory_format=torch.channels_last)
    with bf16_as_this_cpu_would():
        bf16 = animate(half, source, driving, AnimationOptions(autocast_dtype=torch.bfloat16, channels_last=True))
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
            keypoints = half.kp_detector(driving)
            motion = half.dense_motion_network(source, keypoints, half.kp_detector(source))
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape and fp32.std() > 0.03
    assert keypoints["fg_kp"].dtype == motion["contribution_maps"].dtype == motion["deformation"].dtype == torch.float32
    assert motion["occlusion_map"][0].dtype == torch.bfloat16  # the hourglass did run in bf16
    mse = float((bf16.clamp(0, 1) - fp32.clamp(0, 1)).pow(2).mean())
    assert 0 < mse and 10 * math.log10(1 / mse) >= 40


@pytest.mark.parametrize("native", [True, False])
def test_the_backend_runs_bf16_only_where_the_cpu_computes_in_it_natively(checkpoint, cpuinfo, native):
    from generation.backends import BackendOptions, create_backend

    cpuinfo("fpu avx512f avx512_bf16" if native else "fpu avx2")
    backend = create_backend("tpsmm", BackendOptions(checkpoint[0], torch.device("cpu"), "bf16"))
    assert backend.precision == ("bf16" if native else "fp32")
    assert backend.options.autocast_dtype == (torch.bfloat16 if native else None)
    layout = torch.channels_last if native else torch.contiguous_format  # oneDNN's bf16 convolutions want it
    assert backend.networks.inpainting_network.final.weight.is_contiguous(memory_format=layout)


def test_manifest_pairing_reuses_an_earlier_sets_pairs(generation_inputs, tmp_path):
    from generation.jobs import JobPlanError, plan_jobs

    sources, driving = generation_inputs / "sources", generation_inputs / "driving"
    earlier = tmp_path / "earlier"
    write_manifest(earlier, [
        ManifestRow("blink/person003--person001.mp4", "fake", "blink", "person003", "person001", 0, "FOMM"),
        ManifestRow("original/blink--person001.mp4", "real", "", "person001", "", 0),
    ])  # fmt: skip
    jobs = plan_jobs(sources, driving, "manifest", pairing_manifest=earlier / "manifest.csv")
    assert [(job.job_id, job.label) for job in jobs] == [("blink/person001/@real", "real"),
                                                         ("blink/person001/person003", "fake")]  # fmt: skip
    # rows named otherwise pair by identities; rows that fit nothing here are listed
    by_identity = ManifestRow("blink/0001.mp4", "fake", "blink", "person002", "person001", 0)
    write_manifest(earlier, [by_identity])
    assert [job.source for job in plan_jobs(sources, driving, "manifest", "none", pairing_manifest=earlier)] == [
        "person002.png"
    ]
    write_manifest(earlier, [by_identity, ManifestRow("blink/0002.mp4", "fake", "blink", "person009", "person001", 0)])
    with pytest.raises(JobPlanError, match=r"1 fakes have no source .*blink/0002.mp4 \(blink: person009"):
        plan_jobs(sources, driving, "manifest", pairing_manifest=earlier)
    with pytest.raises(JobPlanError, match="go together"):
        plan_jobs(sources, driving, "manifest")
    with pytest.raises(JobPlanError, match="no manifest.csv"):
        plan_jobs(sources, driving, "manifest", pairing_manifest=tmp_path)
    with pytest.raises(JobPlanError, match="does not exist"):  # not the manifest of the folder above
        plan_jobs(sources, driving, "manifest", pairing_manifest=earlier / "manifest.jsonl")


@pytest.fixture(scope="module")
def generation_inputs(tmp_path_factory) -> Path:
    from generation.mini.generation_inputs import write_generation_inputs

    made = write_generation_inputs(tmp_path_factory.mktemp("tpsmm_inputs"), actions=("blink",), source_images=2,
                                   source_videos=0, frames=4, uncropped=())  # fmt: skip
    assert made.driving == [("blink", "person001")] and made.source_images == ["person002", "person003"]
    return made.root


@pytest.mark.slow
def test_the_backend_end_to_end_through_generate_into_a_built_dataset(generation_inputs, checkpoint, tmp_path):
    from datasets import load_dataset

    from dataset_script.build import main as build_main
    from generation.generate import GenerationConfig, generate

    earlier = tmp_path / "earlier"  # the FOMM set whose pairs the unseen-generator set repeats
    write_manifest(earlier, [ManifestRow("blink/person002--person001.mp4", "fake", "blink", "person002",
                                         "person001", 0, "FOMM")])  # fmt: skip
    out = tmp_path / "unseen"
    config = GenerationConfig(backend="tpsmm", sources=generation_inputs / "sources",
                              driving=generation_inputs / "driving", output_dir=out, checkpoint=checkpoint[0],
                              pairing="manifest", pairing_manifest=earlier / "manifest.csv", max_frames=2,
                              checks=["none"], no_progress=True)  # fmt: skip
    summary = generate(config)  # random weights make no face, so no face check here
    assert (summary.jobs, summary.done, summary.errors) == (2, 2, 0)
    with (out / "manifest.csv").open(newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    assert {file: row["method"] for file, row in rows.items()} == {"blink/person002--person001.mp4": "TPSMM",
                                                                   "original/blink--person001.mp4": ""}  # fmt: skip
    record = json.loads((out / ".generation" / "records" / "blink" / "person001" / "person002.json").read_text())
    assert record["backend"] == "tpsmm" and record["frames"] == 2
    repo = tmp_path / "unseen_repo"
    assert build_main([str(out), "--output_dir", str(repo), "--qualities", "raw", "--allow_missing_actions",
                       "--no_progress"]) == 0  # fmt: skip
    videos = list(load_dataset(str(repo), "raw", split="train"))  # both clips: too few to split
    assert sorted(row["label"] for row in videos) == [0, 1]
    for row in videos:
        assert row["video"].get_frames_at([0]).data.shape[-2:] == (256, 256)
        if "method" in row:  # the cross-dataset schema's column: the generator of a fake, none for a real clip
            assert (row["method"] or "") == ("TPSMM" if row["label"] == 1 else "")


@pytest.mark.slow
def test_the_backend_animates_in_the_mode_asked_for_and_refuses_one_it_cannot(checkpoint, tmp_path):
    from generation.backends import BackendOptions, backend_class, create_backend

    source, driving = torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256)  # the modes differ on one frame
    made = {}
    for mode in ("relative", "standard"):
        backend = create_backend("tpsmm", BackendOptions(checkpoint[0], animation_mode=mode))
        assert backend.options.mode == mode
        made[mode] = backend.frames(source, driving, reference=0)
    assert not torch.allclose(made["relative"], made["standard"])  # the mode reaches the animation
    assert create_backend("tpsmm", BackendOptions(checkpoint[0])).options.mode == "relative"  # the demo's default
    without_avd = tmp_path / "no_avd.pth.tar"
    written = torch.load(checkpoint[0], weights_only=True)
    torch.save({name: written[name] for name in ("kp_detector", "dense_motion_network", "inpainting_network")},
               without_avd)  # fmt: skip
    with pytest.raises(ValueError, match="avd needs a checkpoint with an avd_network entry.*relative or standard"):
        create_backend("tpsmm", BackendOptions(without_avd, animation_mode="avd"))
    with pytest.raises(ValueError, match="--animation_mode 'sideways': --backend tpsmm has relative, standard, avd"):
        create_backend("tpsmm", BackendOptions(checkpoint[0], animation_mode="sideways"))
    for backend in ("fomm", "warp"):
        with pytest.raises(ValueError, match=f"--animation_mode is for --backend tpsmm; --backend {backend}"):
            backend_class(backend).check_options(BackendOptions(checkpoint[0], animation_mode="standard"))

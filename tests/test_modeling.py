"""Detectors: the registry, MesoInception-4, and saving in a form both transformers and timm load."""

import json
from pathlib import Path

import pytest
import timm
import torch
from transformers import AutoModelForImageClassification

import modeling
from modeling import PAPER_MODELS, cam_inputs, create_detector, save_detector
from tests.factories import cache_timm_weights


def test_mesoinception4_is_registered_with_its_pretrained_cfg():
    model = timm.create_model("mesoinception4", num_classes=2)
    assert model.pretrained_cfg["input_size"] == (3, 256, 256)
    assert model.pretrained_cfg["mean"] == (0.5, 0.5, 0.5) and model.pretrained_cfg["std"] == (0.5, 0.5, 0.5)
    assert sum(p.numel() for p in model.parameters()) == 28_632  # 28,615 of the original, plus a second logit
    assert model(torch.randn(2, 3, 256, 256)).shape == (2, 2)
    assert model.forward_features(torch.randn(1, 3, 256, 256)).shape == (1, 16, 32, 32)


@pytest.mark.parametrize("name", sorted(PAPER_MODELS))
def test_every_paper_model_builds_with_two_classes_and_its_input_size(name, hf_hub_cache):
    model, info = create_detector(name, pretrained=None)
    assert model.get_classifier().out_features == 2
    assert info.input_size == PAPER_MODELS[name]
    assert info.init == "random"  # the test's cache is empty, whatever the machine's holds


def test_any_timm_model_and_a_clear_error_for_unknown_names(hf_hub_cache):
    model, info = create_detector("resnet18", pretrained=None)
    assert model.get_classifier().out_features == 2 and info.input_size == 224
    with pytest.raises(ValueError, match="unknown model 'resnet5000'"):
        create_detector("resnet5000")
    with pytest.raises(FileNotFoundError, match="no ImageNet weights"):
        create_detector("resnet18", pretrained=True)


def test_imagenet_weights_in_the_cache_are_used_and_recorded(hf_hub_cache):
    torch.manual_seed(0)
    imagenet = timm.create_model("test_resnet").state_dict()  # a 1000-class head, as timm's hub weights have
    cache_timm_weights(hf_hub_cache, "test_resnet", imagenet)
    for pretrained in (None, True):
        model, info = create_detector("test_resnet", pretrained=pretrained)
        assert info.init == "imagenet" and model.get_classifier().out_features == 2
        backbone = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
        assert backbone and all(torch.equal(value, imagenet[key]) for key, value in backbone.items())
    _, info = create_detector("test_resnet", pretrained=False)
    assert info.init == "random"


def test_xception_can_train_its_classifier_only():
    model, info = create_detector("legacy_xception", freeze_backbone=True)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"} and info.frozen_backbone


@pytest.mark.parametrize("name", ["mesoinception4", "resnet50"])
def test_saved_detector_loads_in_transformers_and_timm_with_identical_logits(tmp_path, name):
    model, info = create_detector(name)
    model.eval()
    save_detector(model, info, tmp_path)
    wrapped = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(wrapped).__name__ == "TimmWrapperForImageClassification"
    assert wrapped.config.id2label == {0: "real", 1: "fake"}
    reloaded = timm.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = model(pixels)
        assert torch.equal(wrapped(pixel_values=pixels).logits, expected)
        assert torch.equal(reloaded(pixels), expected)
    assert tuple(reloaded.pretrained_cfg["input_size"]) == (3, info.input_size, info.input_size)


def test_cam_inputs_give_features_and_classifier_weights_where_pooling_is_global():
    resnet, _ = create_detector("resnet18")
    features, weights = cam_inputs(resnet.eval(), torch.randn(1, 3, 64, 64))
    assert features.shape[1] == weights.shape[1] == 512
    meso, _ = create_detector("mesoinception4")
    features, weights = cam_inputs(meso.eval(), torch.randn(1, 3, 64, 64))
    assert features.shape[1] == 16 and weights is None  # not a global-pooled linear head: Grad-CAM instead


def test_a_save_that_fails_midway_leaves_the_saved_detector_whole(tmp_path, monkeypatch):
    import modeling.transformers_wrapper as wrapper

    model, info = create_detector("mesoinception4")
    save_detector(model, info, tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}

    def disk_full(state, path, metadata=None):
        Path(path).write_bytes(b"half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(wrapper, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_detector(create_detector("mesoinception4")[0], info, tmp_path)
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before  # nothing half-written, no temp


def test_modeling_exports_its_public_names():
    assert {"create_detector", "save_detector", "wrap", "MesoInception4"} <= set(modeling.__all__)


def test_high_pass_variant_sees_only_the_residual_and_adds_no_parameters():
    plain = timm.create_model("mesoinception4", num_classes=2)
    high_pass = timm.create_model("mesoinception4_hp", num_classes=2)
    assert sum(p.numel() for p in high_pass.parameters()) == sum(p.numel() for p in plain.parameters())
    flat = torch.full((1, 3, 32, 32), 0.7)
    assert high_pass.input_filter(flat).abs().max() < 1e-5  # content without texture leaves nothing
    checker = (torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 2.0 - 1
    residual = high_pass.input_filter(flat + 0.01 * checker)[0, 0, 1:-1, 1:-1]
    assert residual.abs().min() > 0.05  # a faint pixel-level pattern comes out amplified


def test_load_detector_reads_saved_folders_and_names_what_is_wrong(tmp_path):
    model, info = create_detector("mesoinception4_hp", input_size=128, crop_pct=0.5)
    save_detector(model, info, tmp_path / "saved")
    loaded, loaded_info = modeling.load_detector(str(tmp_path / "saved"))
    assert (loaded_info.name, loaded_info.input_size, loaded_info.crop_pct) == ("mesoinception4_hp", 128, 0.5)
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.eval()(pixels), model.eval()(pixels))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="without config.json"):
        modeling.load_detector(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="neither a timm model name"):
        modeling.load_detector("not-a-model")


def test_a_saved_detector_takes_another_input_size_and_crop_when_asked(tmp_path):
    model, info = create_detector("mesoinception4_hp", input_size=128, crop_pct=0.5)
    saved = str(save_detector(model, info, tmp_path / "saved"))
    _, kept = modeling.detector(saved)
    assert (kept.input_size, kept.crop_pct) == (128, 0.5)
    loaded, changed = modeling.detector(saved, input_size=256, crop_pct=1.0, pretrained=None, num_classes=2)
    assert (changed.input_size, changed.crop_pct) == (256, 1.0)
    cfg = changed.pretrained_cfg(loaded)  # what every reader of frames uses
    assert cfg["input_size"] == (3, 256, 256) and cfg["crop_pct"] == 1.0
    assert loaded.eval()(torch.randn(1, 3, 256, 256)).shape == (1, 2)
    _, only_crop = modeling.load_detector(saved, crop_pct=0.75)
    assert (only_crop.input_size, only_crop.crop_pct) == (128, 0.75)


def test_a_saved_detector_refuses_what_cannot_apply_to_it(tmp_path):
    model, info = create_detector("mesoinception4", input_size=64)
    saved = save_detector(model, info, tmp_path / "saved")
    with pytest.raises(ValueError, match="pretrained=False cannot apply"):
        modeling.detector(str(saved), pretrained=False)
    with pytest.raises(ValueError, match="num_classes=3 cannot apply"):
        modeling.detector(str(saved), num_classes=3)
    with pytest.raises(ValueError, match="input_size must be a positive"):
        modeling.detector(str(saved), input_size=0)
    config = json.loads((saved / "config.json").read_text())
    config["pretrained_cfg"]["fixed_input_size"] = True  # as a ViT's
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="takes 64x64 inputs only"):
        modeling.detector(str(saved), input_size=96)
    assert modeling.detector(str(saved), input_size=64, crop_pct=0.5)[1].crop_pct == 0.5  # the crop may change

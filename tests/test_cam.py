"""Class activation maps (CAM for globally pooled heads, Grad-CAM otherwise) and the Figure 7 grid."""

import numpy as np
import torch
from PIL import Image

from modeling import create_detector, save_detector
from modeling.cam import class_activation_maps, overlay
from training.experiments.cam_figure import CamArguments, action_rows, write_figure


def test_cam_of_a_pooled_model_is_the_classifier_row_on_the_features():
    model, _ = create_detector("resnet18")
    model.eval()
    pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    maps = class_activation_maps(model, pixels)
    assert maps.shape == (2, 64, 64) and maps.min() >= 0 and maps.max() <= 1
    with torch.no_grad():
        features = model.forward_features(pixels)
    raw = torch.relu(torch.einsum("nchw,c->nhw", features, model.get_classifier().weight[1]))
    assert raw.shape[-1] == 2  # a 64 input pools to 2x2 features, upsampled to the input
    expected = torch.nn.functional.interpolate(raw[:, None], size=(64, 64), mode="bilinear")[:, 0]
    expected = expected / expected.flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1)
    assert torch.allclose(maps, expected, atol=1e-5)


def test_grad_cam_for_a_dense_head_and_an_overlay():
    model, _ = create_detector("mesoinception4_hp", input_size=64)
    pixels = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    maps = class_activation_maps(model, pixels)
    assert maps.shape == (3, 64, 64) and 0 <= maps.min() and maps.max() <= 1
    frame = np.full((64, 64, 3), 128, np.uint8)
    laid = overlay(frame, maps[0].numpy())
    assert laid.dtype == np.uint8 and laid.shape == frame.shape and not np.array_equal(laid, frame)


def test_the_figure_has_one_row_per_action(smoke_mini_repo, tmp_path):
    model, info = create_detector("mesoinception4_hp", input_size=64)
    detector = save_detector(model, info, tmp_path / "detector")
    args = CamArguments(str(detector), str(smoke_mini_repo), "raw", frames_per_row=3, output_dir=str(tmp_path))
    rows = action_rows(args)
    assert len(rows) == 10 and all(len(images) == 3 and len(scores) == 3 for _, images, scores in rows)
    path = write_figure(rows, tmp_path / "cam.png", "test")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.height > image.width  # ten rows of three

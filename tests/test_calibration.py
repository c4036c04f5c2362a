"""training/calibration.py on cases with known answers: a known temperature, calibrated and overconfident data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.calibration import (
    TEMPERATURE_BOUNDS,
    SeparatedFrames,
    calibrate,
    calibrated_probability,
    expected_calibration_error,
    fake_margin,
    fit_decision_offset,
    fit_temperature,
    margin_from_probability,
    shift_decision,
)


def calibrated_frames(count: int = 40_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True margins and labels drawn from sigmoid(margin): sigmoid(margin) is exactly calibrated for them."""
    rng = np.random.default_rng(seed)
    margin = rng.normal(0.0, 2.5, count)
    labels = (rng.random(count) < 1.0 / (1.0 + np.exp(-margin))).astype(int)
    return margin, labels


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_the_fit_recovers_the_temperature_that_made_the_logits(true_temperature):
    margin, labels = calibrated_frames()
    logits = torch.as_tensor(np.stack([np.zeros_like(margin), margin * true_temperature], 1))
    fitted = calibrate(logits, labels, "synthetic frames").temperature
    assert fitted == pytest.approx(true_temperature, rel=0.05)


def test_ece_is_near_zero_when_calibrated_and_large_when_overconfident():
    margin, labels = calibrated_frames()
    assert expected_calibration_error(calibrated_probability(margin, 1.0), labels) < 0.01
    overconfident = calibrated_probability(margin * 4.0, 1.0)
    assert expected_calibration_error(overconfident, labels) > 0.1
    rescued = calibrated_probability(margin * 4.0, fit_temperature(margin * 4.0, labels))
    assert expected_calibration_error(rescued, labels) < 0.01


def test_ece_of_a_hand_worked_case():
    # every confidence is 0.9 (one bin), three of four predictions are right: |0.75 - 0.9| = 0.15
    assert expected_calibration_error(np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 0, 0, 0])) == pytest.approx(0.15)
    # two bins: 0.6 right (|1 - 0.6| = 0.4) and 0.95 wrong (|0 - 0.95|), each half the frames
    assert expected_calibration_error(np.array([0.6, 0.05]), np.array([1, 1])) == pytest.approx(0.675)


def test_scaling_keeps_every_prediction_and_margins_survive_probabilities():
    margin, _ = calibrated_frames(1000)
    for temperature in (0.3, 3.0):
        assert np.array_equal(calibrated_probability(margin, temperature) >= 0.5, margin >= 0)
    probabilities = calibrated_probability(margin, 1.0)
    assert np.allclose(margin_from_probability(probabilities), margin, atol=1e-6)
    assert np.allclose(fake_margin(torch.tensor([[1.0, 3.0], [2.0, -1.0]])).numpy(), [2.0, -3.0])


def test_frames_all_classified_correctly_give_no_temperature(caplog):
    separated = np.array([[0.0, -3.0], [0.0, -2.0], [0.0, 2.0], [0.0, 3.0]])
    with pytest.raises(SeparatedFrames, match="all 4 frames are classified correctly"):
        fit_temperature(fake_margin(torch.as_tensor(separated)), np.array([0, 0, 1, 1]))
    calibration = calibrate(torch.as_tensor(separated), np.array([0, 0, 1, 1]), "four frames")
    assert calibration.temperature is None and "cannot tell how sure" in calibration.not_calibrated_because
    assert set(calibration.measure("raw", np.array([0.9, 0.2]), np.array([1, 1]))) == {"before"}
    # one mistake is enough for the NLL to have a minimum, inside the bounds
    mixed = calibrate(torch.as_tensor(separated), np.array([0, 1, 1, 1]), "four frames").temperature
    assert TEMPERATURE_BOUNDS[0] < mixed < TEMPERATURE_BOUNDS[1]


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="no frames"):
        fit_temperature(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="0 \\(real\\) or 1 \\(fake\\)"):
        fit_temperature(np.array([1.0]), np.array([2]))
    with pytest.raises(ValueError, match="positive finite"):
        calibrated_probability(np.array([1.0]), 0.0)
    with pytest.raises(ValueError, match="\\(N, 2\\)"):
        fake_margin(torch.zeros(3, 3))


def test_outputs_that_know_nothing_are_scaled_to_one_half(caplog):
    # every margin comes once with each label: the margins say nothing, and the NLL falls as T grows for ever
    margin = np.array([-4.0, -1.0, 2.0, 5.0] * 2)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    temperature = fit_temperature(margin, labels)
    assert temperature == pytest.approx(TEMPERATURE_BOUNDS[1]) and "upper bound" in caplog.text
    assert np.abs(calibrated_probability(margin, temperature) - 0.5).max() < 0.02


# --- the decision offset ---------------------------------------------------------------------------------


@pytest.mark.parametrize("true_offset", [-1.5, 0.0, 2.0])
def test_the_offset_fit_finds_where_the_decision_belongs(true_offset):
    """Frames exactly calibrated at margin m, seen through a detector that adds ``true_offset`` to every margin: the
    fit finds where a frame is as likely real as fake, the added offset, which temperature scaling cannot move."""
    margin, labels = calibrated_frames()
    assert fit_decision_offset(margin + true_offset, labels) == pytest.approx(true_offset, abs=0.1)


def test_separated_frames_put_the_decision_in_the_middle_of_the_gap():
    margin = np.array([-3.0, -1.0, 2.0, 5.0])
    assert fit_decision_offset(margin, np.array([0, 0, 1, 1])) == pytest.approx(0.5)  # between -1 and 2
    assert fit_decision_offset(margin + 4.0, np.array([0, 0, 1, 1])) == pytest.approx(4.5)  # reals raised: so is it
    with pytest.raises(ValueError, match="real \\(0\\) and fake \\(1\\) frames, both"):
        fit_decision_offset(margin, np.array([1, 1, 1, 1]))


def test_moving_the_decision_lowers_every_margin_by_the_offset():
    torch.manual_seed(0)
    head, features = torch.nn.Linear(16, 2), torch.randn(64, 16)
    before = fake_margin(head(features).detach())
    shift_decision(head, 1.25)
    torch.testing.assert_close(fake_margin(head(features).detach()), before - 1.25, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="two-class bias"):
        shift_decision(torch.nn.Linear(16, 2, bias=False), 1.0)

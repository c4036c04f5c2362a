"""Temperature scaling (Guo et al., ICML 2017) and expected calibration error, for two-class detectors.

A detector's softmax output is a score: nothing in training makes 0.9 mean "fake nine times in ten". Temperature
scaling divides the logits by one scalar T fitted on held-out frames; it keeps every prediction (so accuracy and
AUC are unchanged) and only changes how sure the outputs claim to be. With two classes the softmax depends on the
logit margin ``z_fake - z_real`` alone, so everything here works on margins: ``p_fake = sigmoid(margin / T)``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dataset_script.schema import FAKE

logger = logging.getLogger(__name__)

ECE_BINS = 15
"""Guo et al.'s bin count, so ECE values compare with the literature."""
TEMPERATURE_BOUNDS = (0.01, 100.0)
"""Where a fit may land: far outside any sane temperature, there only to keep a fit on odd data finite."""
_PROBABILITY_FLOOR = 1e-7
"""float32 probabilities carry about 7 digits: below this distance from 0 or 1 their margin is noise."""


class SeparatedFrames(ValueError):
    """Held-out frames that the detector gets all right: they leave the temperature undetermined (T -> 0)."""


def fake_margin(logits: torch.Tensor, fake_index: int = FAKE) -> torch.Tensor:
    """``z_fake - z_real`` of (N, 2) logits: all a two-class softmax depends on."""
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(f"expected (N, 2) real/fake logits, got shape {tuple(logits.shape)}")
    return (logits[:, fake_index] - logits[:, 1 - fake_index]).double()


def margin_from_probability(fake_probability: np.ndarray) -> np.ndarray:
    """The margin behind saved fake probabilities (for outputs kept only as probabilities, such as test scores)."""
    p = np.clip(np.asarray(fake_probability, dtype=np.float64), _PROBABILITY_FLOOR, 1.0 - _PROBABILITY_FLOOR)
    return np.log(p) - np.log1p(-p)


def calibrated_probability(margin: np.ndarray | torch.Tensor, temperature: float) -> np.ndarray:
    """Fake probability after temperature scaling."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"the temperature must be a positive finite number, not {temperature!r}")
    margin = torch.as_tensor(np.asarray(margin, dtype=np.float64))
    return torch.sigmoid(margin / temperature).numpy()


def _margins_and_labels(margin, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 tensors of one margin per 0/1 label, or a ValueError saying what is wrong."""
    margin = torch.as_tensor(np.asarray(margin, dtype=np.float64))
    labels = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    if margin.ndim != 1 or margin.shape != labels.shape:
        raise ValueError(f"need one margin per label, got shapes {tuple(margin.shape)} and {tuple(labels.shape)}")
    if margin.numel() == 0:
        raise ValueError("cannot fit a calibration on no frames")
    if not set(labels.unique().tolist()) <= {0.0, 1.0}:
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return margin, labels


def _fit_scaling(margin: torch.Tensor, labels: torch.Tensor, with_offset: bool, max_iter: int) -> tuple[float, float]:
    """(T, b) minimising the negative log-likelihood of ``labels`` under ``sigmoid((margin - b) / T)``, b held at 0
    unless ``with_offset``. LBFGS on log T: T stays positive without a constraint, and the NLL is smooth there."""
    low, high = (math.log(bound) for bound in TEMPERATURE_BOUNDS)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    offset = torch.zeros((), dtype=torch.float64, requires_grad=with_offset)
    parameters = [log_t, offset] if with_offset else [log_t]
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits((margin - offset) / log_t.clamp(low, high).exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().clamp(low, high).exp()), float(offset.detach())


def fit_temperature(margin: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, max_iter: int = 100) -> float:
    """The T that minimises the negative log-likelihood of ``labels`` (real 0, fake 1) under ``sigmoid(margin / T)``."""
    margin, labels = _margins_and_labels(margin, labels)
    if bool(((margin > 0) == (labels == 1)).all()):
        # the NLL then falls for ever as T shrinks: any T we returned would be a claim the data cannot back
        raise SeparatedFrames(f"all {margin.numel()} frames are classified correctly, so they cannot tell how sure "
                              "the detector should be: no temperature fits them")  # fmt: skip
    temperature, _ = _fit_scaling(margin, labels, with_offset=False, max_iter=max_iter)
    low, high = (math.log(bound) for bound in TEMPERATURE_BOUNDS)
    if math.log(temperature) >= high - 1e-6:
        logger.warning("the temperature fit stopped at its upper bound, T = %g: the outputs tell these frames' "
                       "classes apart no better than chance, so every calibrated probability is about 0.5",
                       temperature)  # fmt: skip
    elif math.log(temperature) <= low + 1e-6:
        logger.warning("the temperature fit stopped at its lower bound, T = %g", temperature)
    return temperature


def fit_decision_offset(
    margin: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor, max_iter: int = 200
) -> float:
    """The margin ``b`` at which a frame is as likely real as fake on held-out frames: Platt scaling's offset, fitted
    with its scale by minimising the negative log-likelihood of ``sigmoid((margin - b) / T)``. Where the frames are
    separated the likelihood has no minimum, and ``b`` is the middle of the gap between the classes instead.

    Temperature scaling keeps the decision at margin 0 wherever a detector put it. On the mini a detector ranks the
    test clips almost perfectly (video AUC >= 0.99 at c40, under a zoom or blur) and still calls real clips fake,
    because a degradation raises every real clip's margin: what is wrong is where the decision sits, not the ranking.
    """
    margin, labels = _margins_and_labels(margin, labels)
    if set(labels.unique().tolist()) != {0.0, 1.0}:
        raise ValueError("an offset needs real (0) and fake (1) frames, both")
    highest_real, lowest_fake = float(margin[labels == 0].max()), float(margin[labels == 1].min())
    if highest_real < lowest_fake:
        return (highest_real + lowest_fake) / 2
    return _fit_scaling(margin, labels, with_offset=True, max_iter=max_iter)[1]


def shift_decision(classifier: torch.nn.Module, offset: float, fake_index: int = FAKE) -> None:
    """Move a two-class head's decision to margin ``offset``: its biases change so that every margin falls by
    ``offset``, and whoever reads the saved weights (evaluation, the Space, the experiments) decides there."""
    bias = getattr(classifier, "bias", None)
    if not isinstance(bias, torch.Tensor) or bias.shape != (2,):
        raise ValueError(f"cannot move the decision of a head without a two-class bias ({type(classifier).__name__})")
    with torch.no_grad():
        bias[fake_index] -= offset / 2
        bias[1 - fake_index] += offset / 2


def expected_calibration_error(fake_probability: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE of the predicted class: the frame-weighted mean, over ``bins`` equal-width bins of confidence, of
    |accuracy - mean confidence|. 0 is perfectly calibrated; a detector sure of everything and right 75% of the
    time scores 0.25."""
    p = np.asarray(fake_probability, dtype=np.float64)
    labels = np.asarray(labels)
    if p.shape != labels.shape or p.ndim != 1:
        raise ValueError(f"need one probability per label, got shapes {p.shape} and {labels.shape}")
    if p.size == 0:
        raise ValueError("the calibration error of no frames is undefined")
    predicted = (p >= 0.5).astype(int)
    confidence = np.where(predicted == 1, p, 1.0 - p)
    correct = (predicted == labels).astype(np.float64)
    # bins are (lo, hi]; a confidence of exactly 0 cannot occur for the predicted class (it is at least 0.5)
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    error = 0.0
    for index in np.unique(which):
        members = which == index
        error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(error)


@dataclass
class Calibration:
    """What the model card and config.json record of a detector's temperature scaling."""

    temperature: float | None
    """None: not calibrated (``not_calibrated_because`` says why); the outputs are scores, not probabilities."""
    fitted_on: str
    """Which frames the temperature was fitted on, e.g. ``validation split identity_validation, 168 frames``."""
    not_calibrated_because: str | None = None
    test_ece: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per test configuration: ``{"before": ECE, "after": ECE}`` on its test frames (``after`` only if calibrated)."""
    decision_offset: float | None = None
    """The margin the head's decision was moved to before anything was tested (``fit_decision_offset``); None: not
    moved."""
    offset_fitted_on: str | None = None

    def measure(self, config: str, fake_probability: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Record ECE before (and after) scaling on one test set's frames, given as uncalibrated probabilities."""
        ece = {"before": expected_calibration_error(fake_probability, labels)}
        if self.temperature is not None:
            after = calibrated_probability(margin_from_probability(fake_probability), self.temperature)
            ece["after"] = expected_calibration_error(after, labels)
        self.test_ece[config] = ece
        return ece

    def to_dict(self) -> dict:
        values = {"method": "temperature scaling", "temperature": self.temperature, "fitted_on": self.fitted_on,
                  "ece_bins": ECE_BINS, "test_ece": self.test_ece}  # fmt: skip
        if self.not_calibrated_because:
            values["not_calibrated_because"] = self.not_calibrated_because
        if self.decision_offset is not None:
            values.update(decision_offset=self.decision_offset, offset_fitted_on=self.offset_fitted_on)
        return values


def calibrate(logits: torch.Tensor, labels: np.ndarray | torch.Tensor, fitted_on: str) -> Calibration:
    """Fit the temperature on (N, 2) held-out frame logits; frames that leave it undetermined give no temperature."""
    try:
        temperature = fit_temperature(fake_margin(torch.as_tensor(logits)), labels)
    except SeparatedFrames as error:
        logger.warning("not calibrating: %s (%s); the detector's outputs stay scores", error, fitted_on)
        return Calibration(None, fitted_on, not_calibrated_because=str(error))
    logger.info("calibration: temperature %.4f fitted on %s", temperature, fitted_on)
    return Calibration(temperature, fitted_on)

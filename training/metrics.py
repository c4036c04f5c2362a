"""Detection metrics on scikit-learn: frame and video accuracy and AUC, EER, AP.

A video's score is the mean fake-probability of its frames (32 evenly spaced ones at test time); a score of
0.5 or more says fake. Every function raises a clear error on a split with one class only, where AUC, EER and AP
are undefined.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dataset_script.schema import FAKE, LABEL_NAMES, REAL

THRESHOLD = 0.5


class SingleClassError(ValueError):
    """AUC, EER and AP need both real and fake examples."""


def _check_two_classes(labels: np.ndarray, what: str) -> None:
    present = set(np.unique(labels).tolist())
    if present != {REAL, FAKE}:
        names = dict(enumerate(LABEL_NAMES))
        have = ", ".join(names.get(v, str(v)) for v in sorted(present)) or "nothing"
        raise SingleClassError(
            f"{what}: AUC, EER and AP need both real ({REAL}) and fake ({FAKE}) examples, but the labels hold only "
            f"{have}; evaluate a split (or subset) that has both classes"
        )


def accuracy(labels: Sequence[int], fake_probability: Sequence[float], threshold: float = THRESHOLD) -> float:
    labels, scores = np.asarray(labels), np.asarray(fake_probability, dtype=np.float64)
    if labels.size == 0:
        raise ValueError("accuracy of no examples is undefined")
    return float(((scores >= threshold).astype(int) == labels).mean())


def auc(labels: Sequence[int], fake_probability: Sequence[float], what: str = "AUC") -> float:
    labels = np.asarray(labels)
    _check_two_classes(labels, what)
    from sklearn.metrics import roc_auc_score  # here, not at the top: importing scikit-learn costs every command 0.7 s

    return float(roc_auc_score(labels, np.asarray(fake_probability, dtype=np.float64)))


def equal_error_rate(labels: Sequence[int], fake_probability: Sequence[float]) -> float:
    """The error rate where the false-positive and false-negative rates meet (linearly interpolated on the ROC)."""
    labels = np.asarray(labels)
    _check_two_classes(labels, "EER")
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, np.asarray(fake_probability, dtype=np.float64))
    fnr = 1.0 - tpr
    gap = fnr - fpr  # decreasing from 1 to -1 along the curve
    crossing = int(np.flatnonzero(gap <= 0)[0])
    if crossing == 0 or gap[crossing] == 0:
        return float(fpr[crossing] if gap[crossing] == 0 else (fpr[0] + fnr[0]) / 2)
    before, after = crossing - 1, crossing
    weight = gap[before] / (gap[before] - gap[after])
    return float(fpr[before] + weight * (fpr[after] - fpr[before]))


def average_precision(labels: Sequence[int], fake_probability: Sequence[float]) -> float:
    labels = np.asarray(labels)
    _check_two_classes(labels, "AP")
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, np.asarray(fake_probability, dtype=np.float64)))


def video_scores(
    video_index: Sequence[int], frame_labels: Sequence[int], fake_probability: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) per video: the mean fake-probability of its frames. Videos keep first-seen order."""
    video_index = np.asarray(video_index)
    frame_labels = np.asarray(frame_labels)
    scores = np.asarray(fake_probability, dtype=np.float64)
    videos, first, inverse = np.unique(video_index, return_index=True, return_inverse=True)
    sums = np.bincount(inverse, weights=scores, minlength=len(videos))
    counts = np.bincount(inverse, minlength=len(videos))
    labels_per_video = frame_labels[first]
    mixed = np.bincount(inverse, weights=(frame_labels != labels_per_video[inverse]), minlength=len(videos))
    if mixed.any():
        raise ValueError("frames of one video carry different labels; video_index does not match the labels")
    order = np.argsort(first, kind="stable")
    return labels_per_video[order], (sums / counts)[order]


def detection_metrics(
    frame_labels: Sequence[int], fake_probability: Sequence[float], video_index: Sequence[int] | None = None
) -> dict[str, float]:
    """The paper's frame accuracy plus frame AUC; with ``video_index``, also video accuracy/AUC, EER and AP.

    EER and AP are computed on video scores when videos are known (the detector's verdict is per video),
    otherwise on frames.
    """
    metrics = {
        "frame_accuracy": accuracy(frame_labels, fake_probability),
        "frame_auc": auc(frame_labels, fake_probability, "frame AUC"),
    }
    labels, scores = np.asarray(frame_labels), np.asarray(fake_probability)
    if video_index is not None:
        labels, scores = video_scores(video_index, frame_labels, fake_probability)
        metrics["video_accuracy"] = accuracy(labels, scores)
        metrics["video_auc"] = auc(labels, scores, "video AUC")
    metrics["eer"] = equal_error_rate(labels, scores)
    metrics["ap"] = average_precision(labels, scores)
    return metrics

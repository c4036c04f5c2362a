"""DeepFake MNIST+ detection metrics as an `evaluate` module: ``evaluate.load("training/deepfake_detection")``.

The numbers are those of ``training.metrics`` (scikit-learn underneath), so users of ``evaluate`` and of
``dmplus evaluate`` (``training.evaluate_detector``) get the same ones.
"""

import datasets
import evaluate

from dataset_script.card import CITATION
from training.metrics import detection_metrics

_DESCRIPTION = """Frame accuracy and AUC of fake probabilities; with `video_ids`, video accuracy and AUC (a video's
score is the mean fake probability of its frames), EER and AP on videos. Threshold 0.5; labels real=0, fake=1."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: fake probability of each frame (float in [0, 1]).
    references: label of each frame (0 real, 1 fake).
    video_ids: optional, the video each frame belongs to (int).
Returns:
    frame_accuracy, frame_auc, and eer, ap; with video_ids also video_accuracy, video_auc.
Example:
    >>> metric = evaluate.load("training/deepfake_detection")
    >>> metric.compute(predictions=[0.1, 0.9], references=[0, 1])["frame_accuracy"]
    1.0
"""

_CITATION = CITATION


class DeepfakeDetection(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # video_ids is a keyword of compute(), passed through whole, not a per-example feature
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, video_ids=None):
        return detection_metrics(references, predictions, video_ids)

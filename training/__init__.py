"""Training and evaluating DeepFake MNIST+ detectors: data subsets, metrics, the Trainer entry point."""

from .data import MIXED, Subset, load_split, with_sampling
from .evaluation import Predictions, predict
from .metrics import SingleClassError, detection_metrics

__all__ = ["MIXED", "Predictions", "SingleClassError", "Subset", "detection_metrics", "load_split", "predict",
           "with_sampling"]  # fmt: skip

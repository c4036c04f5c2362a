"""Detectors for DeepFake MNIST+: timm models (MesoInception-4 is ours), one factory, the transformers wrapper."""

from .factory import LABELS, PAPER_MODELS, DetectorInfo, create_detector, detector, load_detector
from .mesonet import MesoInception4
from .transformers_wrapper import FAKE_CLASS, cam_inputs, fake_probability, save_detector, timm_model_of, wrap

__all__ = ["FAKE_CLASS", "LABELS", "PAPER_MODELS", "DetectorInfo", "MesoInception4", "cam_inputs", "create_detector",
           "detector", "fake_probability", "load_detector", "save_detector", "timm_model_of", "wrap"]  # fmt: skip

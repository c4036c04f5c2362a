"""The synthetic mini DeepFake MNIST+: procedural talking heads animated by keypoint warping (or, for an unseen
generator, thin-plate splines), offline on a CPU."""

from .generate import ANIMATORS, SIZES, MiniSize, generate

__all__ = ["ANIMATORS", "SIZES", "MiniSize", "generate"]
